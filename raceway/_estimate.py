"""Latency estimates: a small, mergeable, decaying histogram that understands censoring.

One :class:`LatencySketch` holds what raceway knows about one provider's time
to first token (or total latency): a log-bucket histogram of observed values
plus a second histogram of *right-censored* observations — attempts stopped
before their first token, which say only "it takes longer than this".

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
from typing import Any

#: Buckets per doubling of the value: about 9 % wide each.
STEPS_PER_DOUBLING = 8
#: The lower edge of the first bucket, in ms; anything faster shares it.
MIN_MS = 0.25
#: Bucket count: from MIN_MS up to MIN_MS × 2 ** 22 (about 17 minutes).
BUCKETS = 22 * STEPS_PER_DOUBLING
#: Observations after which an old one weighs half as much as a new one.
HALF_LIFE = 128.0
GROWTH: float = 2.0 ** (1.0 / HALF_LIFE)
#: When the scale passes this, the buckets are divided by it (exactness is kept to ~1e-16).
RENORM_AT: float = 2.0**64
#: A bucket weighing less than this fraction of a new observation is dropped at renormalisation.
NEGLIGIBLE = 1e-9
#: Below this many (effective) observations the curve is refreshed after each one...
WARM = 32.0
#: ...above, after at most this many.
REFRESH_EVERY = 8
#: The median's relative standard error, per sample, for a lognormal sample: sqrt(pi / 2).
MEDIAN_SE = math.sqrt(math.pi / 2)

_INV_MIN = 1.0 / MIN_MS
_log2 = math.log2
_NAN = math.nan
_HALF_STEP: float = 2.0 ** (0.5 / STEPS_PER_DOUBLING)
#: F values this close count as equal (so q = 0.5 of two values is the lower one, by rank).
_TIE = 1e-12


def bucket_of(ms: float) -> int:
    """The bucket a value (ms) falls in."""
    if ms <= MIN_MS:
        return 0
    i = int(math.log2(ms * _INV_MIN) * STEPS_PER_DOUBLING)
    return i if i < BUCKETS else BUCKETS - 1


class LatencySketch:
    """A decaying log-bucket histogram of latencies (ms) with right-censored observations."""

    __slots__ = (
        "_curve_f",
        "_curve_v",
        "_median",
        "_open_tail",
        "_since",
        "c_sum",
        "c_w",
        "e_same",
        "e_sum",
        "e_w",
        "event_mass",
        "hi",
        "lo",
        "log_mean",
        "log_sd",
        "mass",
        "n_effective",
        "scale",
        "spread",
        "top_censored",
    )

    def __init__(self) -> None:
        self.e_w = [0.0] * BUCKETS  # events: weight per bucket
        self.e_sum = [0.0] * BUCKETS  # events: weighted sum of values per bucket
        self.e_same = [_NAN] * BUCKETS  # events: the value, while every one in the bucket is the same
        self.c_w: list[float] | None = None  # censored, allocated on first use
        self.c_sum: list[float] | None = None
        self.scale = 1.0  # the weight the next observation gets
        self.mass = 0.0  # all weight (events and censored)
        self.event_mass = 0.0
        self.lo = BUCKETS  # occupied bucket range
        self.hi = -1
        self.top_censored = -1  # highest bucket holding censored weight
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
        self._since = -1  # observations since the curve was computed (-1: never)

    # ------------------------------------------------------------ learning

    def add(self, ms: float) -> None:
        """One observed value."""
        # bucket_of() and _grow() inlined: this runs for nearly every attempt.
        if ms <= MIN_MS:
            i = 0
        else:
            i = int(_log2(ms * _INV_MIN) * STEPS_PER_DOUBLING)
            if i >= BUCKETS:
                i = BUCKETS - 1
        w = self.scale
        e_w = self.e_w
        if self.e_same[i] != ms:  # (NaN != anything: once mixed, it stays mixed)
            self.e_same[i] = ms if e_w[i] == 0.0 else _NAN
        e_w[i] += w
        self.e_sum[i] += w * ms
        self.mass += w
        self.event_mass += w
        if i < self.lo:
            self.lo = i
        if i > self.hi:
            self.hi = i
        self.scale = w * GROWTH
        if self._since >= 0:
            self._since += 1
        if w > RENORM_AT:
            self._renormalise()

    def censor(self, ms: float) -> None:
        """One attempt that had no value after ``ms`` (stopped before it): the value exceeds ``ms``."""
        if self.c_w is None or self.c_sum is None:
            self.c_w, self.c_sum = [0.0] * BUCKETS, [0.0] * BUCKETS
        i = bucket_of(ms)
        w = self.scale
        self.c_w[i] += w
        self.c_sum[i] += w * ms
        self.mass += w
        if i < self.lo:
            self.lo = i
        if i > self.hi:
            self.hi = i
        if i > self.top_censored:
            self.top_censored = i
        self._grow()

    def _grow(self) -> None:
        self.scale *= GROWTH
        if self._since >= 0:
            self._since += 1
        if self.scale > RENORM_AT:
            self._renormalise()

    def _renormalise(self) -> None:
        k = 1.0 / self.scale
        floor = NEGLIGIBLE
        lo, hi, top = BUCKETS, -1, -1
        lists = [(self.e_w, self.e_sum)]
        if self.c_w is not None and self.c_sum is not None:
            lists.append((self.c_w, self.c_sum))
        for n, (ws, sums) in enumerate(lists):
            for i in range(self.lo, self.hi + 1):
                w = ws[i] * k
                if w < floor:
                    ws[i] = sums[i] = 0.0
                    if n == 0:
                        self.e_same[i] = _NAN
                    continue
                ws[i], sums[i] = w, sums[i] * k
                lo, hi = min(lo, i), max(hi, i)
                if n == 1:
                    top = max(top, i)
        self.lo, self.hi, self.top_censored = lo, hi, top
        self.mass = math.fsum(self.e_w) + (math.fsum(self.c_w) if self.c_w is not None else 0.0)
        self.event_mass = math.fsum(self.e_w)
        self.scale = 1.0
        self._since = -1

    def merge(self, other: LatencySketch) -> None:
        """Add ``other``'s observations, its newest weighing as much as this one's newest."""
        k = self.scale / other.scale
        for i in range(other.lo, other.hi + 1):
            if other.e_w[i] > 0.0 and self.e_same[i] != other.e_same[i]:
                self.e_same[i] = other.e_same[i] if self.e_w[i] == 0.0 else _NAN
            self.e_w[i] += other.e_w[i] * k
            self.e_sum[i] += other.e_sum[i] * k
        if other.c_w is not None and other.c_sum is not None:
            if self.c_w is None or self.c_sum is None:
                self.c_w, self.c_sum = [0.0] * BUCKETS, [0.0] * BUCKETS
            for i in range(other.lo, other.hi + 1):
                self.c_w[i] += other.c_w[i] * k
                self.c_sum[i] += other.c_sum[i] * k
            self.top_censored = max(self.top_censored, other.top_censored)
        self.mass += other.mass * k
        self.event_mass += other.event_mass * k
        self.lo, self.hi = min(self.lo, other.lo), max(self.hi, other.hi)
        self._since = -1

    # ------------------------------------------------------------ reading

    @property
    def n(self) -> float:
        """Effective number of observations (events and censored), in units of the newest."""
        return self.mass * GROWTH / self.scale

    @property
    def n_events(self) -> float:
        """Effective number of observed values."""
        return self.event_mass * GROWTH / self.scale

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

    def lower_bound(self) -> float:
        """The largest value seen (events or censoring points), ms; 0 when empty."""
        top = self.hi
        if top < 0:
            return 0.0
        best = 0.0
        if self.e_w[top] > 0.0:
            same = self.e_same[top]
            best = same if same == same else self.e_sum[top] / self.e_w[top]
        if self.c_w is not None and self.c_sum is not None and self.top_censored >= 0:
            t = self.top_censored
            best = max(best, self.c_sum[t] / self.c_w[t])
        return best

    def log_spread(self) -> float | None:
        """Half the distance between the log p16 and p84 (a lognormal's sigma), if known."""
        if self.mass <= 0.0:
            return None
        self._fresh()
        return self.spread

    # ------------------------------------------------------------ plain data

    def to_json(self) -> dict[str, Any]:
        """Plain data: the scale, the total weights, and each occupied bucket's
        ``[weight, sum, censored weight, censored sum]`` (and its one value, while it holds one)."""
        buckets: dict[str, list[float]] = {}
        c_w, c_sum = self.c_w, self.c_sum
        for i in range(self.lo, self.hi + 1):
            cw = 0.0 if c_w is None else c_w[i]
            if self.e_w[i] > 0.0 or cw > 0.0:
                body = [self.e_w[i], self.e_sum[i], cw, 0.0 if c_sum is None else c_sum[i]]
                if self.e_same[i] == self.e_same[i] and self.e_w[i] > 0.0:
                    body.append(self.e_same[i])
                buckets[str(i)] = body
        return {"scale": self.scale, "mass": self.mass, "event_mass": self.event_mass, "buckets": buckets}

    @classmethod
    def from_json(cls, data: Any) -> LatencySketch:
        """Parse :meth:`to_json`'s output; raises ``ValueError`` when it is not that."""
        if not isinstance(data, dict) or not isinstance(data.get("buckets"), dict):
            raise ValueError("a sketch must be an object with 'scale' and 'buckets'")
        s = cls()
        scale = data.get("scale")
        if isinstance(scale, bool) or not isinstance(scale, int | float) or not 0 < scale < math.inf:
            raise ValueError(f"sketch scale must be a positive number, not {scale!r}")
        s.scale = float(scale)
        for key, body in data["buckets"].items():
            try:
                i = int(key)
            except ValueError:
                raise ValueError(f"sketch bucket {key!r} is not an index") from None
            if not 0 <= i < BUCKETS or not isinstance(body, list) or len(body) not in (4, 5):
                raise ValueError(f"sketch bucket {key!r} must be an index below {BUCKETS} with 4 or 5 numbers")
            ew, es, cw, cs, *same = (_weight(v) for v in body)
            s.e_w[i], s.e_sum[i] = ew, es
            if same and ew > 0.0:
                s.e_same[i] = same[0]
            if cw > 0.0:
                if s.c_w is None or s.c_sum is None:
                    s.c_w, s.c_sum = [0.0] * BUCKETS, [0.0] * BUCKETS
                s.c_w[i], s.c_sum[i] = cw, cs
                s.top_censored = max(s.top_censored, i)
            s.mass += ew + cw
            s.event_mass += ew
            s.lo, s.hi = min(s.lo, i), max(s.hi, i)
        # The totals as accumulated (summing again would differ in the last bits).
        s.mass = _weight(data.get("mass", s.mass))
        s.event_mass = _weight(data.get("event_mass", s.event_mass))
        return s

    @classmethod
    def of(cls, values: list[float]) -> LatencySketch:
        """A sketch of ``values``, oldest first (reads version-1 sample lists)."""
        s = cls()
        for v in values:
            s.add(v)
        return s


def _weight(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
        raise ValueError(f"sketch weights must be non-negative numbers, not {value!r}")
    return float(value)
