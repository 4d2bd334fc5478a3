"""Latency estimates, the data: a decaying log-bucket histogram with right-censored observations.

:class:`CensoredHistogram` is what a :class:`~raceway._estimate.LatencySketch`
stores and how it learns: the bucket geometry (:func:`bucket_of`), the
decay by observation count, adding, censoring, merging, and the plain-data
form that ``performance_file`` and the fleet's Redis hold. What is read off
it — the Kaplan–Meier curve and its quantiles — is ``_estimate.py``'s; why
the buckets, the decay and the merge are built this way is said there too.
"""

from __future__ import annotations

import math
from typing import Any, Self

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

_INV_MIN = 1.0 / MIN_MS
_log2 = math.log2
_NAN = math.nan


def bucket_of(ms: float) -> int:
    """The bucket a value (ms) falls in."""
    if ms <= MIN_MS:
        return 0
    i = int(math.log2(ms * _INV_MIN) * STEPS_PER_DOUBLING)
    return i if i < BUCKETS else BUCKETS - 1


class CensoredHistogram:
    """A decaying log-bucket histogram of latencies (ms) with right-censored observations."""

    __slots__ = (
        "_since",
        "c_sum",
        "c_w",
        "e_same",
        "e_sum",
        "e_w",
        "event_mass",
        "hi",
        "lo",
        "mass",
        "scale",
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
        self._since = -1  # observations since the estimates were computed (-1: never)

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

    def merge(self, other: CensoredHistogram) -> None:
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
    def from_json(cls, data: Any) -> Self:
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
    def of(cls, values: list[float]) -> Self:
        """A sketch of ``values``, oldest first (reads version-1 sample lists)."""
        s = cls()
        for v in values:
            s.add(v)
        return s


def _weight(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
        raise ValueError(f"sketch weights must be non-negative numbers, not {value!r}")
    return float(value)
