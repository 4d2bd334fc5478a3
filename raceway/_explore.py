"""Exploration and hedge delays: what the engine draws for a race from the tracker's estimates.

The why is in ``_tracker.py``'s docstring ("Exploration"); this module holds
the draws (:func:`draw`, :func:`race_prior`) and ``hedge.delay_ms: auto``
(:func:`hedge_delay`), each a function of one provider's :class:`Record`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from ._estimate import MEDIAN_SE
from ._record import NEUTRAL, RATE_PRIOR, W_RELIABILITY, W_SPEED, Record, decay, speed_of

#: An unmeasured provider's TTFT prior: a lognormal this wide (log sd) around the
#: race's measured medians, or around PRIOR_TTFT_MS when none is measured.
PRIOR_SIGMA = 1.0
PRIOR_TTFT_MS = 500.0
#: Pseudo-observations of PRIOR_SIGMA behind a measured provider's TTFT spread.
SPREAD_PRIOR_N = 3.0
#: Degrees of freedom the Student-t draws start from (a prior worth this many samples).
T_DOF_PRIOR = 2.0
#: Draws are this many times wider than the estimate's standard error. Under
#: ``hedged`` a provider is measured without bias mostly while it runs first,
#: so one whose estimate came out high is slow to correct it; wider draws try
#: it again sooner (see the module docstring for what that costs).
EXPLORE = 1.25
#: Discounted Thompson sampling: the evidence behind a draw halves for every
#: this many races recorded in which the provider produced no first token, so
#: an estimate that stopped being refreshed (a provider that looked slow and is
#: no longer tried) regains its uncertainty and is tried again.
RACE_HALF_LIFE = 45.0
RACE_DISCOUNT: float = 2.0 ** (-1.0 / RACE_HALF_LIFE)
#: The reliability estimate is an average over about this many attempts at most.
RATE_N_MAX = 2.0 / 0.05 - 1.0
#: ``hedge.delay_ms: auto``: the quantile is raised by this many standard errors
#: (``sqrt(q (1 - q) / n)``), so that with few samples the delay is long and
#: hedges are rare, and with a full window (n ≈ 185) p90 becomes about p92: the
#: budget stays a cap that is rarely reached, not a target.
HEDGE_Z = 1.0
#: Before any TTFT was seen, the hedge waits this many seconds...
AUTO_HEDGE_FALLBACK_S = 1.0
#: ...and never less or more than these.
AUTO_HEDGE_MIN_S = 0.002
AUTO_HEDGE_MAX_S = 30.0


def hedge_delay(r: Record | None, q: float) -> float:
    """``hedge.delay_ms: auto`` for a provider: its TTFT at quantile ``q``, seconds, clamped.

    The quantile is raised by :data:`HEDGE_Z` standard errors of the
    estimate (see there); :data:`AUTO_HEDGE_FALLBACK_S` before any TTFT.
    """
    if r is None or r.ttft.n_events <= 0:
        return AUTO_HEDGE_FALLBACK_S
    sketch = r.ttft
    up = q + HEDGE_Z * math.sqrt(q * (1.0 - q) / max(1.0, sketch.n))
    ms = sketch.smooth_quantile(up if up < 1.0 else 1.0) or 0.0
    return min(AUTO_HEDGE_MAX_S, max(AUTO_HEDGE_MIN_S, ms / 1000))


def draw(r: Record | None, rng: random.Random, prior_ms: float, races: int, now: float) -> tuple[float, float]:
    """One Thompson draw for a provider: ``(score, ttft_ms)`` from the uncertainty of its estimates.

    ``races`` is the tracker's count of races recorded (the discount's
    clock), ``now`` its time (staleness). Unmeasured TTFTs draw from a
    lognormal of width :data:`PRIOR_SIGMA` around ``prior_ms``.
    """
    g, gamma = rng.gauss, rng.gammavariate
    if r is None:
        ttft = prior_ms * math.exp(PRIOR_SIGMA * g(0.0, 1.0))
        rel = NEUTRAL + 0.25 * g(0.0, 1.0)
    else:
        d = 1.0 if r.updated is None else decay(now - r.updated)
        sketch = r.ttft
        n = min(sketch.n_events, r.info * RACE_DISCOUNT ** (races - r.info_race)) * d
        median = sketch.median() if n > 0.0 else None
        if median is not None and sketch.bounded(0.5) and sketch.log_mean is not None:
            n = min(n, sketch.n_effective * d)
            # Conjugate normal posterior of the mean log TTFT (= the log median of
            # a lognormal): centre and spread from the answers, the spread shrunk
            # toward PRIOR_SIGMA while few are in, Student-t tails (unknown variance).
            spread = sketch.log_sd or 0.0
            s = (n * spread + SPREAD_PRIOR_N * PRIOR_SIGMA) / (n + SPREAD_PRIOR_N)
            nu = n + T_DOF_PRIOR
            t = g(0.0, 1.0) / math.sqrt(gamma(nu / 2.0, 2.0) / nu)
            ttft = math.exp(sketch.log_mean + EXPLORE * s / math.sqrt(n + 1.0) * t)
        else:
            # Censoring hides the median: it is beyond what was seen, as far as
            # the few observations tell. Draw around that bound (or the prior,
            # if higher), as widely as they allow: never a hard floor, which
            # would shut a provider out for good after one slow answer.
            seen = sketch.n * d
            anchor = max(sketch.lower_bound(), prior_ms) if n <= 0.0 else sketch.lower_bound()
            ttft = max(anchor, 1e-3) * math.exp(MEDIAN_SE * PRIOR_SIGMA / math.sqrt(seen + 1.0) * g(0.0, 1.0))
        mean = NEUTRAL + (r.reliability - NEUTRAL) * d
        n_rel = min(r.n_reliability * d, RATE_N_MAX)
        rel = mean + math.sqrt(mean * (1.0 - mean) / (n_rel + RATE_PRIOR + 1.0)) * g(0.0, 1.0)
    rel = 0.0 if rel < 0.0 else 1.0 if rel > 1.0 else rel
    return W_RELIABILITY * rel + W_SPEED * speed_of(ttft), ttft


def race_prior(records: Sequence[Record | None]) -> float | None:
    """The prior median (ms) for a race's unmeasured participants: the geometric mean
    of the measured medians (they are presumed typical, widely); ``None`` when no
    participant has any record (nothing to explore yet)."""
    logs = 0.0
    known = 0
    for r in records:
        if r is not None and r.ttft.n_events > 0:
            median = r.ttft.median()
            if median is not None and median > 0.0:
                logs += math.log(median)
                known += 1
    if known:
        return math.exp(logs / known)
    return PRIOR_TTFT_MS if any(r is not None for r in records) else None
