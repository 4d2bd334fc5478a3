"""The dashboard's state, folded from wire messages; no Textual here.

The socket worker buffers lines; a timer feeds them to :meth:`DashboardModel.feed`
and then asks the widgets to redraw what changed. Everything this module keeps
is bounded: :data:`RACE_HISTORY` races, :data:`LOG_HISTORY` log entries,
:data:`TTFT_SAMPLES` samples per provider, so a dashboard left open for a week
uses the memory it used after a minute.

Change tracking is by version numbers rather than queues of "dirty" ids: every
race and provider carries a ``version`` bumped on each change, and the model
has one per collection. A view remembers the versions it drew and redraws the
rows whose version moved. Unlike a set of dirty ids this stays bounded however
long the view is paused.

Time is the engine's: ``ts`` of the messages (wall clock of the engine's host),
so rates and timelines do not depend on when the dashboard happened to read a
line, and a recorded script always shows the same figures.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from raceway import wire

#: Races kept for the Races panel (newest on top); older ones are dropped.
RACE_HISTORY = 200
#: Entries kept for the event log (the log widget keeps as many lines).
LOG_HISTORY = 1_000
#: First-token times kept per provider for its sparkline.
TTFT_SAMPLES = 60
#: Rates (races/s, events/s) are averaged over this many seconds of engine time.
RATE_WINDOW_S = 5.0
#: Ids of dropped races remembered, so a late event of one does not revive it.
EVICTED_MEMORY = 2_000
#: A running race's timeline leaves this much room past "now" for it to grow into.
RUNNING_HEADROOM = 1.15
#: Weight of each finished race in a virtual model's typical duration.
TYPICAL_ALPHA = 0.2

# Attempt states. The first three are live; the rest are how an attempt ended.
PENDING = "pending"  # named in race_started, not started (yet)
RUNNING = "running"  # started, no first token yet
ANSWERED = "answered"  # first token seen, the race not decided or it still streams
WON = "won"
LOST = "lost"  # answered, another attempt won
FAILED = "failed"
CANCELLED = "cancelled"  # stopped before its first token
NOT_STARTED = "not_started"  # hedged never needed it
UNKNOWN = "unknown"  # the connection was lost before it ended
ENDED = frozenset({WON, LOST, FAILED, CANCELLED, NOT_STARTED, UNKNOWN})


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

    @property
    def label(self) -> str:
        return label_of(self.provider, self.model)

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
    def labels(self) -> frozenset[str]:
        return frozenset(a.label for a in self.attempts)

    def span_ms(self, now_ts: float, expected_ms: float = 0.0) -> float:
        """How much race time its timeline covers.

        A finished race: start to end. A running one: up to ``now_ts``, and at
        least ``expected_ms`` (how long such races usually take), so its bars
        grow across the cell as it runs instead of always filling it.
        """
        ends = [self.last_ms, self.total_ms or 0.0]
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


class DashboardModel:
    """Everything the dashboard shows, folded from the engine's messages."""

    def __init__(self, *, race_history: int = RACE_HISTORY, log_history: int = LOG_HISTORY) -> None:
        self.race_history = race_history
        self.races: OrderedDict[str, RaceView] = OrderedDict()  # oldest first
        self.providers: dict[str, ProviderView] = {}
        self.log: deque[LogEntry] = deque(maxlen=log_history)
        self.hello: wire.Hello | None = None
        self.virtual_models: list[str] = []
        self.filter = Filter()
        self.messages = 0  # messages applied, all time
        self.invalid_lines = 0  # lines that were not messages of this protocol
        self.dropped = 0  # events the engine skipped for us, all time
        self.now_ts: float = 0.0  # the engine's clock: the latest ts heard
        self.races_version = 0
        self.providers_version = 0
        self._race_seq = 0
        self._log_seq = 0
        self._evicted: OrderedDict[str, None] = OrderedDict()
        self._race_starts: deque[float] = deque()
        self._typical: dict[str, float] = {}
        self._event_times: deque[float] = deque()

    # ------------------------------------------------------------ feeding

    def feed(self, line: bytes | str) -> bool:
        """Decode one line and apply it; ``False`` (and nothing changes) if it is not a message."""
        try:
            message = wire.decode(line)
        except wire.WireError:
            self.invalid_lines += 1
            return False
        self.apply(message)
        return True

    def feed_all(self, lines: Iterable[bytes | str]) -> int:
        """Feed many lines; how many were messages."""
        return sum(1 for line in lines if self.feed(line))

    def apply(self, message: Any) -> None:
        """Fold one decoded message into the state. Unknown kinds are ignored.

        Dispatch is by wire name (``message.type``), so kinds this dashboard
        knows but its ``raceway.wire`` may not yet decode still work once it does.
        """
        handler = self._handlers.get(getattr(message, "type", None))
        if handler is None:
            return
        self.messages += 1
        ts = getattr(message, "ts", None)
        if isinstance(ts, int | float) and ts > self.now_ts:
            self.now_ts = float(ts)
        handler(self, message)

    # ------------------------------------------------------------ queries

    def newest_first(self) -> Iterator[RaceView]:
        return reversed(self.races.values())

    def visible_races(self) -> list[RaceView]:
        """The races the filter lets through, newest first."""
        f = self.filter
        return [r for r in self.newest_first() if f.race(r)]

    def running_count(self) -> int:
        return sum(1 for r in self.races.values() if r.running)

    def race_rate(self) -> float:
        """Races started per second over the last :data:`RATE_WINDOW_S` of engine time."""
        return self._rate(self._race_starts)

    def event_rate(self) -> float:
        """Race events per second over the last :data:`RATE_WINDOW_S` of engine time."""
        return self._rate(self._event_times)

    def _rate(self, times: deque[float]) -> float:
        horizon = self.now_ts - RATE_WINDOW_S
        while times and times[0] < horizon:
            times.popleft()
        return len(times) / RATE_WINDOW_S

    @property
    def typical(self) -> dict[str, float]:
        """How long races usually take, by virtual model (see :meth:`typical_ms`)."""
        return self._typical

    def typical_ms(self, virtual_model: str) -> float:
        """How long races of ``virtual_model`` usually take (a decaying mean; 0 before the first)."""
        return self._typical.get(virtual_model, 0.0)

    def provider_labels(self) -> list[str]:
        return sorted(self.providers)

    def entries_after(self, seq: int) -> list[LogEntry]:
        """Log entries newer than ``seq`` that the filter lets through, oldest first."""
        if not self.log or self.log[-1].seq <= seq:
            return []
        out: list[LogEntry] = []
        for entry in reversed(self.log):
            if entry.seq <= seq:
                break
            out.append(entry)
        out.reverse()
        f = self.filter
        return [e for e in out if f.entry(e)]

    @property
    def log_seq(self) -> int:
        """The newest log entry's number (0: none yet)."""
        return self._log_seq

    # ------------------------------------------------------------ the dashboard's own news

    def set_filter(self, new: Filter) -> None:
        if new != self.filter:
            self.filter = new
            self.races_version += 1

    def note(self, glyph: str, text: str, level: str = INFO, *, ts: float | None = None) -> None:
        """Log something that did not come from the engine (connection news)."""
        self._log(glyph, text, level, ts=time.time() if ts is None else ts, engine=False)

    def connection_lost(self) -> None:
        """The socket closed: whatever was running is now of unknown fate."""
        for race in self.races.values():
            if race.running:
                race.outcome = UNKNOWN
                for a in race.attempts:
                    if a.status not in ENDED:
                        a.status = UNKNOWN
                race.touch()
                self.races_version += 1

    # ------------------------------------------------------------ handlers

    def _on_hello(self, m: wire.Hello) -> None:
        self.hello = m
        for vm in m.virtual_models:
            self._know_model(vm.id)
        if m.protocol != wire.PROTOCOL:
            self._log(
                "⚠",
                f"the engine speaks protocol {m.protocol}; this dashboard knows {wire.PROTOCOL} "
                "and shows what it understands",
                WARN,
                ts=m.ts,
                engine=False,
            )

    def _on_snapshot(self, m: wire.Snapshot) -> None:
        # A new session: the engine's statistics replace ours. Providers it no
        # longer knows (an engine restarted with another config) go away.
        for label in [lb for lb in self.providers if lb not in m.stats]:
            del self.providers[label]
        for label, stats in m.stats.items():
            self._set_stats(label, stats)
        self.providers_version += 1
        for finished in m.races:
            self._on_race_finished(finished, quiet=True)

    def _on_stats(self, m: wire.StatsSnapshot) -> None:
        changed = False
        for label, stats in m.providers.items():
            changed = self._set_stats(label, stats) or changed
        if changed:
            self.providers_version += 1

    def _on_dropped(self, m: wire.Dropped) -> None:
        self.dropped += m.count
        self._log(
            "⚠",
            f"the engine skipped {m.count:,} events for this dashboard (it read too slowly)",
            WARN,
            ts=m.ts,
        )

    def _on_race_started(self, m: wire.RaceStarted) -> None:
        self._count_event(m.ts)
        self._race_starts.append(m.ts)
        if m.race_id in self.races or m.race_id in self._evicted:
            return
        attempts = [
            AttemptView(index=i, provider=p, model=mo) for i, (p, mo) in enumerate(m.participants)
        ]
        race = self._add_race(
            m.race_id,
            m.virtual_model,
            m.strategy,
            m.ts - m.elapsed_ms / 1000.0,
            attempts,
            live=True,
        )
        names = ", ".join(a.label for a in attempts)
        self._log("▸", f"{m.strategy} · {names}", MUTED, ts=m.ts, race=race)

    def _attempt(self, m: Any) -> tuple[RaceView, AttemptView] | None:
        self._count_event(m.ts)
        race = self.races.get(m.race_id)
        if race is None or not 0 <= m.index < len(race.attempts):
            return None
        race.last_ms = max(race.last_ms, m.elapsed_ms)
        return race, race.attempts[m.index]

    def _on_attempt_started(self, m: wire.AttemptStarted) -> None:
        found = self._attempt(m)
        if found is None:
            return
        race, a = found
        if a.status == PENDING:
            a.status = RUNNING
        a.started_ms = m.elapsed_ms
        self._changed(race)
        if m.elapsed_ms >= 1.0:  # a late start: a hedge, worth a line
            self._log(
                "↳",
                f"{a.label} started at {m.elapsed_ms:.0f} ms",
                INFO,
                ts=m.ts,
                race=race,
                labels=a.label,
            )

    def _on_attempt_first_token(self, m: wire.AttemptFirstToken) -> None:
        found = self._attempt(m)
        if found is None:
            return
        race, a = found
        a.ttft_ms = m.ttft_ms
        if a.started_ms is None:
            a.started_ms = max(0.0, m.elapsed_ms - m.ttft_ms)
        if a.status not in ENDED:
            a.status = ANSWERED
        self._provider(a.label).add_sample(m.ttft_ms)
        self.providers_version += 1
        self._changed(race)
        self._log(
            "●",
            f"{a.label} first token after {m.ttft_ms:.0f} ms",
            INFO,
            ts=m.ts,
            race=race,
            labels=a.label,
        )

    def _on_attempt_failed(self, m: wire.AttemptFailed) -> None:
        found = self._attempt(m)
        if found is None:
            return
        race, a = found
        a.status, a.ended_ms, a.error_kind, a.error = FAILED, m.elapsed_ms, m.error_kind, m.error
        self._changed(race)
        retry = f" (retry after {m.retry_after:g} s)" if m.retry_after else ""
        self._log(
            "✗",
            f"{a.label} {m.error_kind}: {m.error}{retry}",
            BAD,
            ts=m.ts,
            race=race,
            labels=a.label,
        )

    def _on_attempt_cancelled(self, m: wire.AttemptCancelled) -> None:
        found = self._attempt(m)
        if found is None:
            return
        race, a = found
        if a.status not in ENDED:
            a.status = LOST if m.answered or a.ttft_ms is not None else CANCELLED
        a.ended_ms = m.elapsed_ms
        self._changed(race)
        how = "stopped after answering" if m.answered else "cancelled"
        self._log(
            "⊘",
            f"{a.label} {how} at {m.elapsed_ms:.0f} ms",
            MUTED,
            ts=m.ts,
            race=race,
            labels=a.label,
        )

    def _on_race_decided(self, m: wire.RaceDecided) -> None:
        found = self._attempt(m)
        if found is None:
            return
        race, a = found
        race.winner, race.ttft_ms = m.index, m.ttft_ms
        a.status = WON
        self._changed(race)
        self._log(
            "★",
            f"{a.label} wins · first token to caller {m.ttft_ms:.0f} ms",
            GOOD,
            ts=m.ts,
            race=race,
            labels=a.label,
        )

    def _on_race_finished(self, m: wire.RaceFinished, quiet: bool = False) -> None:
        if not quiet:
            self._count_event(m.ts)
        if m.race_id in self._evicted:
            return
        race = self.races.get(m.race_id)
        if race is None:
            attempts = [
                AttemptView(index=r.index, provider=r.provider, model=r.model) for r in m.attempts
            ]
            race = self._add_race(
                m.race_id,
                m.virtual_model,
                m.strategy,
                m.ts - m.elapsed_ms / 1000.0,
                attempts,
                live=False,
            )
            for r in m.attempts:  # never seen live: its first tokens count now
                if r.ttft_ms is not None:
                    self._provider(r.label).add_sample(r.ttft_ms)
            self.providers_version += 1
        records = {r.index: r for r in m.attempts}
        for a in race.attempts:
            record = records.get(a.index)
            if record is None:
                continue
            a.status = record.status
            a.started_ms, a.ttft_ms, a.ended_ms = record.started_ms, record.ttft_ms, record.ended_ms
            a.error_kind, a.error = record.error_kind, record.error
        race.outcome, race.winner, race.error = m.outcome, m.winner, m.error
        race.ttft_ms, race.total_ms = m.ttft_ms, m.total_ms
        race.last_ms = max(race.last_ms, m.elapsed_ms)
        self._changed(race)
        old = self._typical.get(m.virtual_model)
        took = race.span_ms(m.ts)
        self._typical[m.virtual_model] = took if old is None else old + TYPICAL_ALPHA * (took - old)
        if quiet:
            return
        if m.outcome == "ok":
            total = f"{m.total_ms:.0f} ms" if m.total_ms is not None else "?"
            self._log("■", f"done in {total}", MUTED, ts=m.ts, race=race)
        else:
            level = WARN if m.outcome in ("interrupted", "abandoned") else BAD
            why = f": {m.error}" if m.error else ""
            self._log("✗", f"race {m.outcome}{why}", level, ts=m.ts, race=race)

    def _on_provider_cooldown(self, m: Any) -> None:
        label = label_of(m.provider, m.model)
        view = self._provider(label)
        view.stats = {**view.stats, "cooldown_until": m.until, "cooldown_reason": m.reason}
        view.version += 1
        self.providers_version += 1
        why = {"rate_limited": "rate limited", "failures": f"{m.failures} failures in a row"}.get(
            m.reason, m.reason
        )
        self._log(
            "◐",
            f"{label} sits out races for {m.seconds:.0f} s ({why})",
            WARN,
            ts=m.ts,
            labels=label,
        )

    def _on_provider_recovered(self, m: Any) -> None:
        label = label_of(m.provider, m.model)
        view = self._provider(label)
        view.stats = {**view.stats, "cooldown_until": None, "cooldown_reason": None}
        view.version += 1
        self.providers_version += 1
        self._log("✓", f"{label} answered again: back in the races", GOOD, ts=m.ts, labels=label)

    _handlers: ClassVar[dict[str | None, Any]] = {
        "hello": _on_hello,
        "snapshot": _on_snapshot,
        "stats": _on_stats,
        "dropped": _on_dropped,
        "race_started": _on_race_started,
        "attempt_started": _on_attempt_started,
        "attempt_first_token": _on_attempt_first_token,
        "attempt_failed": _on_attempt_failed,
        "attempt_cancelled": _on_attempt_cancelled,
        "race_decided": _on_race_decided,
        "race_finished": _on_race_finished,
        # Sent by engines whose tracker has cooldowns (issue 4's monitor):
        "provider_cooldown": _on_provider_cooldown,
        "provider_recovered": _on_provider_recovered,
    }

    # ------------------------------------------------------------ helpers

    def _count_event(self, ts: float) -> None:
        self._event_times.append(ts)

    def _know_model(self, name: str) -> None:
        if name and name not in self.virtual_models:
            self.virtual_models.append(name)

    def _provider(self, label: str) -> ProviderView:
        view = self.providers.get(label)
        if view is None:
            view = self.providers[label] = ProviderView(label)
            self.providers_version += 1
        return view

    def _set_stats(self, label: str, stats: Any) -> bool:
        if not isinstance(stats, dict):
            return False
        view = self._provider(label)
        if view.stats == stats:
            return False
        view.stats = dict(stats)
        view.version += 1
        return True

    def _add_race(
        self,
        race_id: str,
        vm: str,
        strategy: str,
        started_ts: float,
        attempts: list[AttemptView],
        *,
        live: bool,
    ) -> RaceView:
        self._race_seq += 1
        race = RaceView(
            race_id=race_id,
            seq=self._race_seq,
            virtual_model=vm,
            strategy=strategy,
            started_ts=started_ts,
            attempts=attempts,
            live=live,
        )
        self.races[race_id] = race
        self._know_model(vm)
        for a in attempts:
            self._provider(a.label)
        while len(self.races) > self.race_history:
            old_id, _ = self.races.popitem(last=False)
            self._evicted[old_id] = None
            if len(self._evicted) > EVICTED_MEMORY:
                self._evicted.popitem(last=False)
        self.races_version += 1
        return race

    def _changed(self, race: RaceView) -> None:
        race.touch()
        self.races_version += 1

    def _log(
        self,
        glyph: str,
        text: str,
        level: str,
        *,
        ts: float,
        race: RaceView | None = None,
        labels: str | frozenset[str] | None = None,
        engine: bool = True,
    ) -> None:
        self._log_seq += 1
        if isinstance(labels, str):
            labels = frozenset((labels,))
        elif labels is None:
            labels = race.labels if race is not None else frozenset()
        self.log.append(
            LogEntry(
                seq=self._log_seq,
                ts=ts,
                glyph=glyph,
                text=text,
                level=level,
                race=race.short_id if race is not None else None,
                virtual_model=race.virtual_model if race is not None else None,
                labels=labels,
                engine=engine,
            )
        )
