"""The performance tracker: what raceway has learned about each ``provider/model``.

It consumes ``race_finished`` events (every attempt's record is in them) and
keeps, per ``provider/model``: races, wins, losses, cancellations, failures by
kind, recent TTFT and total-latency samples (a window of
:data:`WINDOW` for percentiles) with decaying means, output size, and a score.

The score
---------

``score = 0.35 × reliability + 0.25 × win_rate + 0.40 × speed``, then pulled
back toward 0.5 as the data ages::

    reliability = (answered + 1) / (attempts + 2)      answered: produced a first token
    win_rate    = (wins + 1)     / (races + 2)
    speed       = REF / (REF + ttft_mean_s)            0.5 with no TTFT yet
    score       = 0.5 + (raw - 0.5) × exp(-age_s / STALE_S)

Each part starts at 0.5 (Laplace's rule of succession for the rates), so a
new provider starts neutral at 0.5 and a single race moves it only a little.
Speed carries the most weight so that one old win of a slow provider does not
outrank a fast newcomer (the seed's bias, NOTES.md item 2), and every attempt
counts — failures, slower answers and cancellations too (item 3).
"""

from __future__ import annotations

import math
import time
from collections import deque
from typing import Any

from attrs import define, field, frozen

from ._events import RaceFinished

#: Samples kept for percentiles (recent behaviour, bounded memory).
WINDOW = 200
#: Weight of a new sample in the decaying means (about the last 20 races).
EWMA_ALPHA = 0.1
#: TTFT at which speed scores 0.5 (a typical hosted model's first token).
REF_TTFT_S = 0.5
#: Seconds for stale knowledge to lose 63% of its pull away from neutral.
STALE_S = 3600.0
NEUTRAL = 0.5


@frozen(kw_only=True)
class ProviderStats:
    """A snapshot of one ``provider/model``'s record (see :meth:`Engine.stats`)."""

    races: int
    wins: int
    losses: int
    cancellations: int
    failures: dict[str, int]
    ttft_p50_ms: float | None
    ttft_p95_ms: float | None
    ttft_mean_ms: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_mean_ms: float | None
    output_chars: int
    score: float
    last_seen: float | None
    cooldown_until: float | None = None

    @property
    def win_rate(self) -> float:
        return self.wins / self.races if self.races else 0.0

    @property
    def failure_count(self) -> int:
        return sum(self.failures.values())


@define
class _Record:
    races: int = 0
    wins: int = 0
    losses: int = 0
    cancellations: int = 0
    answered: int = 0
    failures: dict[str, int] = field(factory=dict)
    ttft: deque[float] = field(factory=lambda: deque(maxlen=WINDOW))
    latency: deque[float] = field(factory=lambda: deque(maxlen=WINDOW))
    ttft_mean: float | None = None
    latency_mean: float | None = None
    output_chars: int = 0
    last_seen: float | None = None
    sorted_ttft: list[float] | None = None  # cache for ttft_percentile
    unsorted_since: int = 0  # samples added since the cache was made


def _ewma(old: float | None, sample: float) -> float:
    return sample if old is None else old + EWMA_ALPHA * (sample - old)


def percentile(samples: Any, q: float) -> float | None:
    """The ``q`` quantile (0..1) of ``samples`` by nearest rank; ``None`` if empty."""
    ordered = sorted(samples)
    if not ordered:
        return None
    rank = max(0, math.ceil(q * len(ordered)) - 1)
    return float(ordered[rank])


class Tracker:
    """Learns per ``provider/model`` from finished races; scores them."""

    def __init__(self, clock: Any = time.time) -> None:
        self._records: dict[str, _Record] = {}
        self._clock = clock

    def record(self, event: RaceFinished) -> None:
        """Fold one finished race into the statistics."""
        now = self._clock()
        for a in event.attempts:
            if a.status == "not_started":
                continue
            r = self._records.get(a.label)
            if r is None:
                r = self._records[a.label] = _Record()
            r.races += 1
            r.last_seen = now
            r.output_chars += a.output_chars
            if a.ttft_ms is not None:
                r.unsorted_since += 1
                r.answered += 1
                r.ttft.append(a.ttft_ms)
                r.ttft_mean = _ewma(r.ttft_mean, a.ttft_ms)
            if a.status == "won":
                r.wins += 1
                if event.total_ms is not None and a.started_ms is not None:
                    total = event.total_ms - a.started_ms
                    r.latency.append(total)
                    r.latency_mean = _ewma(r.latency_mean, total)
            elif a.status == "failed":
                kind = a.error_kind or "error"
                r.failures[kind] = r.failures.get(kind, 0) + 1
            else:
                r.losses += 1
                if a.status == "cancelled":
                    r.cancellations += 1

    def score(self, label: str) -> float:
        """The score of ``label`` in [0, 1]; 0.5 for one never seen."""
        r = self._records.get(label)
        if r is None:
            return NEUTRAL
        return self._score(r)

    def _score(self, r: _Record) -> float:
        reliability = (r.answered + 1) / (r.races + 2)
        win_rate = (r.wins + 1) / (r.races + 2)
        speed = NEUTRAL if r.ttft_mean is None else REF_TTFT_S / (REF_TTFT_S + r.ttft_mean / 1000)
        raw = 0.35 * reliability + 0.25 * win_rate + 0.40 * speed
        age = 0.0 if r.last_seen is None else max(0.0, self._clock() - r.last_seen)
        return NEUTRAL + (raw - NEUTRAL) * math.exp(-age / STALE_S)

    def ttft_percentile(self, label: str, q: float) -> float | None:
        """The ``q`` quantile of recent TTFTs of ``label`` in ms, if any were seen."""
        r = self._records.get(label)
        if r is None or not r.ttft:
            return None
        # Re-sort once a twentieth of the window is new: a hedge delay need
        # not follow every sample, and sorting per race is the hot path.
        if r.sorted_ttft is None or r.unsorted_since * 20 >= len(r.ttft):
            r.sorted_ttft = sorted(r.ttft)
            r.unsorted_since = 0
        ordered = r.sorted_ttft
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)]

    def snapshot(self) -> dict[str, ProviderStats]:
        """Every ``provider/model``'s statistics now."""
        return {label: self._stats(r) for label, r in self._records.items()}

    def _stats(self, r: _Record) -> ProviderStats:
        return ProviderStats(
            races=r.races,
            wins=r.wins,
            losses=r.losses,
            cancellations=r.cancellations,
            failures=dict(r.failures),
            ttft_p50_ms=percentile(r.ttft, 0.5),
            ttft_p95_ms=percentile(r.ttft, 0.95),
            ttft_mean_ms=r.ttft_mean,
            latency_p50_ms=percentile(r.latency, 0.5),
            latency_p95_ms=percentile(r.latency, 0.95),
            latency_mean_ms=r.latency_mean,
            output_chars=r.output_chars,
            score=self._score(r),
            last_seen=r.last_seen,
        )
