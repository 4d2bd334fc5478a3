"""What the dashboard shows, one object each: a race, a participant, a provider, a log line, a filter.

Plain data with the small derivations views need (labels, spans, figures from
the engine's partial statistics); :mod:`dashboard.model` folds wire messages
into them. Nothing here imports Textual or raceway: these are the
dashboard's own words for what the wire carries.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

#: First-token times kept per provider for its sparkline.
TTFT_SAMPLES = 60
#: A running race's timeline leaves this much room past "now" for it to grow into.
RUNNING_HEADROOM = 1.15

# Attempt states. The first three are live; the rest are how an attempt ended.
PENDING = "pending"  # named in race_started, not started (yet)
RUNNING = "running"  # started, no first token yet
ANSWERED = "answered"  # first token seen, the race not decided or it still streams
WON = "won"
LOST = "lost"  # answered, another attempt won
FAILED = "failed"
CANCELLED = "cancelled"  # stopped before its first token
NOT_STARTED = "not_started"  # hedged never needed it
BENCHED = "benched"  # cooling down: sat the race out (not_started, error_kind cooldown)
UNKNOWN = "unknown"  # the connection was lost before it ended
ENDED = frozenset({WON, LOST, FAILED, CANCELLED, NOT_STARTED, BENCHED, UNKNOWN})


def attempt_status(status: str, error_kind: str | None) -> str:
    """The view's state of an attempt the engine recorded as ``status``.

    The engine records a participant that sat the race out while cooling down
    as ``not_started`` with ``error_kind`` ``cooldown``: that is not "unneeded".
    """
    if status == NOT_STARTED and error_kind == "cooldown":
        return BENCHED
    return status


def label_of(provider: str, model: str) -> str:
    """``provider/model``, the key of a provider's row (as the tracker names it)."""
    return f"{provider}/{model}"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


@dataclass(slots=True)
class AttemptView:
    """One participant of a race as the dashboard knows it."""

    index: int
    provider: str
    model: str
    status: str = PENDING
    started_ms: float | None = None  # from the race's start
    ttft_ms: float | None = None  # from the attempt's own start
    ended_ms: float | None = None  # from the race's start
    error_kind: str | None = None
    error: str | None = None
    # A failover restarted it (a second attempt of the same participant): how its first try went.
    earlier: AttemptView | None = None

    @property
    def label(self) -> str:
        return label_of(self.provider, self.model)

    @property
    def restarted(self) -> bool:
        """Whether this is a failover's restart of a participant that raced before."""
        return self.earlier is not None

    def restart(self, started_ms: float) -> None:
        """A failover starts this participant again: keep its first try, run afresh from ``started_ms``."""
        self.earlier = AttemptView(
            self.index, self.provider, self.model, self.status, self.started_ms, self.ttft_ms,
            self.ended_ms, self.error_kind, self.error,
        )  # fmt: skip
        self.status, self.started_ms = RUNNING, started_ms
        self.ttft_ms = self.ended_ms = self.error_kind = self.error = None

    @property
    def token_ms(self) -> float | None:
        """When its first token came, on the race's clock."""
        if self.ttft_ms is None:
            return None
        return (self.started_ms or 0.0) + self.ttft_ms


@dataclass(slots=True)
class RaceView:
    """One race: its participants and, once known, how it ended."""

    race_id: str
    seq: int
    virtual_model: str
    strategy: str
    started_ts: float  # engine wall clock at the race's start
    attempts: list[AttemptView]
    live: bool = True  # seen from its start (not only from race_finished)
    winner: int | None = None
    ttft_ms: float | None = None  # caller-visible
    total_ms: float | None = None
    outcome: str | None = None  # None while running
    error: str | None = None
    last_ms: float = 0.0  # the latest elapsed_ms heard of
    # When another attempt took over from a winner that broke before its answer was committed.
    failover_ms: float | None = None
    version: int = 0

    @property
    def finished(self) -> bool:
        return self.outcome is not None

    @property
    def running(self) -> bool:
        return self.outcome is None

    @property
    def short_id(self) -> str:
        """The race's number within its engine (``626895-12`` → ``12``)."""
        head, sep, tail = self.race_id.rpartition("-")
        return tail if sep and head and tail else self.race_id[-6:]

    @property
    def title(self) -> str:
        """How the race is named everywhere (list, log, details): ``#12``."""
        return f"#{self.short_id}"

    @property
    def labels(self) -> frozenset[str]:
        return frozenset(a.label for a in self.attempts)

    def span_ms(self, now_ts: float, expected_ms: float = 0.0) -> float:
        """How much race time its timeline covers.

        A finished race: start to end. A running one: up to ``now_ts``, and at
        least ``expected_ms`` (how long such races usually take), so its bars
        grow across the cell as it runs instead of always filling it.
        """
        ends = [self.last_ms, self.total_ms or 0.0, self.failover_ms or 0.0]
        for a in self.attempts:
            ends.append(a.ended_ms or 0.0)
            ends.append(a.token_ms or 0.0)
        if self.running:
            ends.append((now_ts - self.started_ts) * 1000.0 * RUNNING_HEADROOM)
            ends.append(expected_ms)
        return max(1.0, *ends)

    def touch(self) -> None:
        self.version += 1


@dataclass(slots=True)
class ProviderView:
    """One ``provider/model``: the engine's statistics and recent first-token times.

    ``stats`` is the engine's dict as sent (``races``, ``wins``, ``failures``,
    ``ttft_p50_ms``, ``score``, ``cooldown_until``...); every accessor copes with
    a missing or odd key, since the format may grow.
    """

    label: str
    stats: dict[str, Any] = field(default_factory=dict)
    samples: deque[float] = field(default_factory=lambda: deque(maxlen=TTFT_SAMPLES))
    # The sparkline's scale: fixed per provider, it only ever widens, so a bar
    # keeps its meaning from one redraw to the next.
    floor_ms: float = math.inf
    ceiling_ms: float = 0.0
    version: int = 0

    def add_sample(self, ttft_ms: float) -> None:
        self.samples.append(ttft_ms)
        if ttft_ms > self.ceiling_ms:
            self.ceiling_ms = nice_ceiling(ttft_ms)
        if ttft_ms < self.floor_ms:
            self.floor_ms = nice_floor(ttft_ms)
        self.version += 1

    def _int(self, key: str) -> int | None:
        value = _number(self.stats.get(key))
        return None if value is None else int(value)

    @property
    def races(self) -> int | None:
        return self._int("races")

    @property
    def wins(self) -> int | None:
        return self._int("wins")

    @property
    def win_rate(self) -> float | None:
        races, wins = self.races, self.wins
        if not races or wins is None:
            return None
        return wins / races

    @property
    def failures(self) -> int | None:
        value = self.stats.get("failures")
        if isinstance(value, dict):
            return sum(int(n) for n in value.values() if _number(n) is not None)
        number = _number(value)
        return None if number is None else int(number)

    @property
    def failure_kinds(self) -> dict[str, int]:
        value = self.stats.get("failures")
        if not isinstance(value, dict):
            return {}
        return {str(k): int(n) for k, n in value.items() if _number(n) is not None}

    @property
    def ttft_p50_ms(self) -> float | None:
        return _number(self.stats.get("ttft_p50_ms"))

    @property
    def ttft_p95_ms(self) -> float | None:
        return _number(self.stats.get("ttft_p95_ms"))

    @property
    def score(self) -> float | None:
        return _number(self.stats.get("score"))

    @property
    def cost_usd(self) -> float | None:
        """What its attempts cost at the engine's prices (``None``: not reported)."""
        return _number(self.stats.get("cost_usd"))

    @property
    def wasted_cost_usd(self) -> float | None:
        """The part of that spent on attempts that did not win."""
        return _number(self.stats.get("wasted_cost_usd"))

    def cooldown_left_s(self, now_ts: float) -> float | None:
        """Seconds of cooldown left at ``now_ts`` (engine clock); ``None`` when not cooling down.

        ``0.0`` when the cooldown is over but the provider still awaits its
        trial race (the engine keeps ``cooldown_until`` until it answers).
        """
        until = _number(self.stats.get("cooldown_until"))
        if until is None:
            return None
        return max(0.0, until - now_ts)


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10ⁿ that is at least ``value`` (a sparkline's scale)."""
    if value <= 0:
        return 1.0
    scale = 1.0
    while scale * 10 < value:
        scale *= 10
    while scale > value:
        scale /= 10
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if scale * step >= value:
            return scale * step
    return scale * 10  # pragma: no cover - the loop always returns


def nice_floor(value: float) -> float:
    """The largest of 1, 2, 2.5, 5 × 10ⁿ (or 0) that is at most ``value``."""
    if value < 1:
        return 0.0
    scale = 1.0
    while scale * 10 <= value:
        scale *= 10
    for step in (5.0, 2.5, 2.0, 1.0):
        if scale * step <= value:
            return scale * step
    return scale  # pragma: no cover - step 1.0 always fits


# Log levels: how an entry is coloured.
INFO, GOOD, WARN, BAD, MUTED = "info", "good", "warn", "bad", "muted"


@dataclass(slots=True, frozen=True)
class LogEntry:
    """One line of the event log."""

    seq: int
    ts: float
    glyph: str
    text: str
    level: str = INFO
    race: str | None = None  # the race's short id, shown as #12
    virtual_model: str | None = None
    labels: frozenset[str] = frozenset()
    engine: bool = True  # False: about the connection, not from the engine


@dataclass(slots=True, frozen=True)
class Filter:
    """Which races and log entries to show: one virtual model, one provider, or all."""

    virtual_model: str | None = None
    provider: str | None = None  # a provider/model label

    @property
    def active(self) -> bool:
        return self.virtual_model is not None or self.provider is not None

    def describe(self) -> str:
        parts = []
        if self.virtual_model is not None:
            parts.append(f"model={self.virtual_model}")
        if self.provider is not None:
            parts.append(f"provider={self.provider}")
        return " ".join(parts)

    def race(self, race: RaceView) -> bool:
        if self.virtual_model is not None and race.virtual_model != self.virtual_model:
            return False
        return self.provider is None or self.provider in race.labels

    def entry(self, entry: LogEntry) -> bool:
        if not entry.engine:
            return True  # connection news always shows
        if self.virtual_model is not None and entry.virtual_model != self.virtual_model:
            return False
        return self.provider is None or self.provider in entry.labels
