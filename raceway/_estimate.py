"""Latency estimates: a small, mergeable, decaying histogram that understands censoring.

One :class:`LatencySketch` holds what raceway knows about one provider's time
to first token (or total latency): a log-bucket histogram of observed values
plus a second histogram of *right-censored* observations — attempts stopped
before their first token, which say only "it takes longer than this".
This module owns the estimates read off it (the Kaplan–Meier curve, the
quantiles, the effective sample size); the histogram itself — buckets,
decay, merging, plain data — is :class:`~raceway._estimate_histogram.CensoredHistogram`.

Why a histogram, and why this one
---------------------------------

The engine needs, per race and per participant, a few quantiles (the median
for the score and the sampled TTFT, ``1 - max_extra_load`` for the hedge
delay) of recent behaviour, and a later issue merges the estimates of many
processes through Redis. A sorted window of raw samples answers quantiles
but cannot be merged or told about censoring; ``ddsketch`` merges but knows
neither decay nor censoring and costs a Python call stack per insert. So:

* **Buckets** are geometric, :data:`STEPS_PER_DOUBLING` per doubling from
  :data:`MIN_MS` (each about 9 % wide), :data:`BUCKETS` of them (up to
  about 17 minutes). Each bucket keeps its weight and the weighted sum of its
  values, and a quantile is the nearest rank over the bucket *means*: exact
  when a bucket holds one value (tests on a virtual clock see their own
  numbers back), within half a bucket (~4.5 %) otherwise, and never lower
  when an observation moves to a higher bucket.
* **Decay is by observation count**, not by wall time: every new observation
  weighs ``2 ** (1 / HALF_LIFE)`` times the one before (the scale grows
  instead of every bucket shrinking, so an insert is O(1); the buckets are
  renormalised once the scale passes ``2 ** 64``, every ~8,000 inserts). The
  effective window is ``HALF_LIFE / ln 2`` ≈ 185 observations, whatever the
  traffic rate, and the same on a virtual clock as on a real one.
* **Censoring is Kaplan–Meier**: the survival curve is the product of
  ``1 - events / at_risk`` over the buckets, where an attempt cancelled at
  ``w`` stays "at risk" up to ``w`` and then leaves. A cancellation therefore
  never lowers an estimate, raises it only when the attempt waited longer
  than some answers did, and is never a sample of the TTFT itself — the
  losers-were-slow bias of counting only the answers that arrived in time
  goes away. When censoring hides the quantile asked for (the curve never
  falls that far), the answer is the largest value seen: a lower bound.
* **Merging** two sketches adds their buckets, the other's scaled so that the
  newest observation of each weighs the same (:meth:`LatencySketch.merge`).

The survival curve is recomputed lazily — on the first query after at most
:data:`REFRESH_EVERY` new observations (after every one while fewer than
:data:`WARM` are in) — so :meth:`add` and :meth:`censor` stay O(1) on the
race path and a query is a bisection.
"""

from __future__ import annotations

import math
from bisect import bisect_left

from ._estimate_histogram import BUCKETS as BUCKETS
from ._estimate_histogram import GROWTH as GROWTH
from ._estimate_histogram import HALF_LIFE as HALF_LIFE
from ._estimate_histogram import MIN_MS as MIN_MS
from ._estimate_histogram import NEGLIGIBLE as NEGLIGIBLE
from ._estimate_histogram import RENORM_AT as RENORM_AT
from ._estimate_histogram import STEPS_PER_DOUBLING as STEPS_PER_DOUBLING
from ._estimate_histogram import CensoredHistogram as CensoredHistogram
from ._estimate_histogram import bucket_of as bucket_of

#: Below this many (effective) observations the curve is refreshed after each one...
WARM = 32.0
#: ...above, after at most this many.
REFRESH_EVERY = 8
#: The median's relative standard error, per sample, for a lognormal sample: sqrt(pi / 2).
MEDIAN_SE = math.sqrt(math.pi / 2)

_HALF_STEP: float = 2.0 ** (0.5 / STEPS_PER_DOUBLING)
#: F values this close count as equal (so q = 0.5 of two values is the lower one, by rank).
_TIE = 1e-12


class LatencySketch(CensoredHistogram):
    """A decaying log-bucket histogram of latencies (ms) with right-censored observations,
    and the estimates read off it (its storage and learning: :class:`CensoredHistogram`)."""

    __slots__ = (
        "_curve_f",
        "_curve_v",
        "_median",
        "_open_tail",
        "log_mean",
        "log_sd",
        "n_effective",
        "spread",
    )

    def __init__(self) -> None:
        super().__init__()
        self._curve_f: list[float] = []  # the cached curve: F at each event bucket's mean...
        self._curve_v: list[float] = []  # ...and those means
        self._open_tail = False  # censoring hides the curve's end
        self._median: float | None = None  # cached with the curve
        self.spread: float | None = None  # half the log distance p16..p84 (a lognormal's sigma)
        self.log_mean: float | None = None  # mean and sd of ln(ms) over the answers, KM-weighted
        self.log_sd: float | None = None
        # What the median is worth in uncensored samples (Greenwood's variance):
        # as many as the answers without censoring, far fewer under heavy censoring.
        self.n_effective = 0.0

    # ------------------------------------------------------------ reading

    def _fresh(self) -> None:
        since = self._since
        if since < 0 or (since > 0 and (since >= REFRESH_EVERY or self.n < WARM)):
            self._compute()

    def refresh(self) -> None:
        """Bring the cached curve up to date now (for displays)."""
        if self._since != 0:
            self._compute()

    def _compute(self) -> None:
        """Kaplan–Meier over the buckets: F after each bucket that holds answers, and their means."""
        fs: list[float] = []
        vs: list[float] = []
        e_w, e_sum, e_same, c_w = self.e_w, self.e_sum, self.e_same, self.c_w
        at_risk = self.mass
        survive = 1.0
        unit = GROWTH / self.scale  # weights in observations
        greenwood = 0.0
        n_eff = -1.0
        for i in range(self.lo, self.hi + 1):
            d = e_w[i]
            if d > 0.0:
                if n_eff < 0.0:
                    r_u, d_u = at_risk * unit, d * unit
                    if r_u > d_u:
                        greenwood += d_u / (r_u * (r_u - d_u))
                survive = survive * (1.0 - d / at_risk) if at_risk > d else 0.0
                if n_eff < 0.0 and survive <= 0.5 + _TIE:
                    n_eff = (1.0 - survive) / (survive * greenwood) if survive > 0.0 and greenwood > 0.0 else self.n_events
                fs.append(1.0 - survive)
                same = e_same[i]
                vs.append(same if same == same else e_sum[i] / d)  # exact while one value (NaN: mixed)
                at_risk -= d
            if c_w is not None:
                at_risk -= c_w[i]
        self._curve_f, self._curve_v = fs, vs
        self.n_effective = min(self.n_events, n_eff) if n_eff >= 0.0 else 0.0
        self._open_tail = survive > 1e-12 and self.top_censored >= 0
        self._since = 0
        self._median = self._smooth(0.5)
        lo, hi = self._smooth(0.16), self._smooth(0.84)
        self.spread = 0.5 * math.log(hi / lo) if fs and lo > 0.0 and not self._beyond(0.84) else None
        # The mean and sd of ln(value), each answer bucket weighted by its KM jump
        # (conditional on answering by the last answer seen).
        total = fs[-1] if fs else 0.0
        if total > 0.0:
            below = 0.0
            m1 = m2 = 0.0
            for f, v in zip(fs, vs, strict=True):
                x = math.log(v if v > MIN_MS else MIN_MS)
                w = (f - below) / total
                below = f
                m1 += w * x
                m2 += w * x * x
            self.log_mean, self.log_sd = m1, math.sqrt(max(0.0, m2 - m1 * m1))
        else:
            self.log_mean = self.log_sd = None

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile (0..1) in ms; ``None`` before any observation.

        When censoring hides it (nothing is known that far), the largest value
        seen — a lower bound. With only censored observations, that bound.
        """
        if self.mass <= 0.0:
            return None
        self._fresh()
        return self._lookup(q)

    def median(self) -> float | None:
        """``smooth_quantile(0.5)``, cached with the curve."""
        if self.mass <= 0.0:
            return None
        self._fresh()
        return self._median

    def smooth_quantile(self, q: float) -> float | None:
        """Like :meth:`quantile`, but interpolated inside its bucket (log-linear, centred on the bucket's mean).

        Still exact for a bucket of one repeated value asked at its middle, and
        never lower when an observation moves up a bucket; free of the
        9 % steps of the nearest rank, which matters where estimates are
        compared (sampled TTFTs, scores) or waited for (hedge delays).
        """
        if self.mass <= 0.0:
            return None
        self._fresh()
        return self._smooth(q)

    def _beyond(self, q: float) -> bool:
        """Whether censoring hides the ``q`` quantile (the curve is current)."""
        fs = self._curve_f
        return not fs or (self._open_tail and q > fs[-1])

    def _lookup(self, q: float) -> float:
        # Nearest rank on the bucket means: the first whose F reaches q (exact
        # for repeated values; never lower when an observation moves up).
        fs, vs = self._curve_f, self._curve_v
        if not fs:
            return self.lower_bound()
        j = bisect_left(fs, q - _TIE)
        if j < len(fs):
            return vs[j]
        return max(vs[-1], self.lower_bound()) if self._open_tail else vs[-1]

    def _smooth(self, q: float) -> float:
        fs, vs = self._curve_f, self._curve_v
        if not fs or q >= fs[-1] - _TIE:
            if fs and self._open_tail:  # beyond the answers: where the curve left off, at least
                return max(vs[-1] * _HALF_STEP, self.lower_bound())
            return self._lookup(q)
        j = bisect_left(fs, q - _TIE)
        below = fs[j - 1] if j else 0.0
        frac = (q - below) / (fs[j] - below)
        step: float = 2.0 ** ((frac - 0.5) / STEPS_PER_DOUBLING)
        return vs[j] * step

    def effective(self) -> float:
        """:attr:`n_effective`, with the curve current."""
        if self.mass <= 0.0:
            return 0.0
        self._fresh()
        return self.n_effective

    def bounded(self, q: float) -> bool:
        """Whether :meth:`quantile` ``(q)`` is an estimate rather than a lower bound."""
        if self.event_mass <= 0.0:
            return False
        self._fresh()
        return not self._beyond(q)

    def log_spread(self) -> float | None:
        """Half the distance between the log p16 and p84 (a lognormal's sigma), if known."""
        if self.mass <= 0.0:
            return None
        self._fresh()
        return self.spread
