"""The dashboard's state, folded from wire messages; no Textual here.

The socket worker buffers lines; a timer feeds them to :meth:`DashboardModel.feed`
and hands the model's versions to the views, which redraw when one moved.
Everything this module keeps is bounded: :data:`RACE_HISTORY` races,
:data:`LOG_HISTORY` log entries, ``TTFT_SAMPLES`` samples per provider, so a
dashboard left open for a week uses the memory it used after a minute. The
objects it keeps (:mod:`dashboard.views`) are plain data.

Change tracking is by version numbers rather than queues of "dirty" ids: every
race and provider carries a ``version`` bumped on each change, and the model
has one per collection. A view holds the version it drew as reactive state
(Textual calls its ``watch_*`` when the value moves) and redraws the rows whose
version moved. Unlike a set of dirty ids this stays bounded however
long the view is paused.

Time is the engine's: ``ts`` of the messages (wall clock of the engine's host),
so rates and timelines do not depend on when the dashboard happened to read a
line, and a recorded session always shows the same figures.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

from raceway import wire

from .views import (
    ANSWERED,
    BAD,
    BENCHED,
    CANCELLED,
    ENDED,
    FAILED,
    GOOD,
    INFO,
    LOST,
    MUTED,
    PENDING,
    RUNNING,
    UNKNOWN,
    WARN,
    WON,
    AttemptView,
    Filter,
    LogEntry,
    ProviderView,
    RaceView,
    attempt_status,
    label_of,
)

#: Races kept for the Races panel (newest on top); older ones are dropped.
RACE_HISTORY = 200
#: Entries kept for the event log (the log widget keeps as many lines).
LOG_HISTORY = 1_000
#: Rates (races/s, events/s) are averaged over this many seconds of engine time.
RATE_WINDOW_S = 5.0
#: Ids of dropped races remembered, so a late event of one does not revive it.
EVICTED_MEMORY = 2_000
#: Weight of each finished race in a virtual model's typical duration.
TYPICAL_ALPHA = 0.2


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
        """How long races usually take, by virtual model (a decaying mean; absent before the first)."""
        return self._typical

    def provider_labels(self) -> list[str]:
        return sorted(self.providers)

    def cooling(self) -> bool:
        """Whether any provider is cooling down or awaiting its trial (its cell counts down)."""
        return any(p.cooldown_left_s(self.now_ts) is not None for p in self.providers.values())

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
                self._changed(race)

    # ------------------------------------------------------------ handlers

    def _on_hello(self, m: wire.Hello) -> None:
        self.hello = m
        for vm in m.virtual_models:
            self._know_model(vm.id)
        if m.protocol != wire.PROTOCOL:
            self._log(
                "⚠", f"the engine speaks protocol {m.protocol}; this dashboard knows {wire.PROTOCOL} "
                "and shows what it understands", WARN, ts=m.ts, engine=False,
            )  # fmt: skip

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
        self._log("⚠", f"the engine skipped {m.count:,} events for this dashboard (it read too slowly)", WARN, ts=m.ts)

    def _on_race_started(self, m: wire.RaceStarted) -> None:
        self._event_times.append(m.ts)
        self._race_starts.append(m.ts)
        if m.race_id in self.races or m.race_id in self._evicted:
            return
        attempts = [AttemptView(index=i, provider=p, model=mo) for i, (p, mo) in enumerate(m.participants)]
        race = self._add_race(m.race_id, m.virtual_model, m.strategy, m.ts - m.elapsed_ms / 1000.0, attempts, live=True)
        self._log("▸", f"{m.strategy} · {', '.join(a.label for a in attempts)}", MUTED, ts=m.ts, race=race)

    def _attempt(self, m: Any) -> tuple[RaceView, AttemptView] | None:
        self._event_times.append(m.ts)
        race = self.races.get(m.race_id)
        if race is None or not 0 <= m.index < len(race.attempts):
            return None
        race.last_ms = max(race.last_ms, m.elapsed_ms)
        return race, race.attempts[m.index]

    def _on_attempt_started(self, m: wire.AttemptStarted) -> None:
        if (found := self._attempt(m)) is None:
            return
        race, a = found
        if getattr(m, "restart", False):  # a failover runs this participant again
            a.restart(m.elapsed_ms)
            self._changed(race)
            text = f"{a.label} restarts at {m.elapsed_ms:.0f} ms: failover, the winner broke"
            self._log("↻", text, WARN, ts=m.ts, race=race, labels=a.label)
            return
        if a.status == PENDING:
            a.status = RUNNING
        a.started_ms = m.elapsed_ms
        self._changed(race)
        if m.elapsed_ms >= 1.0:  # a late start: a hedge, worth a line
            self._log("↳", f"{a.label} started at {m.elapsed_ms:.0f} ms", INFO, ts=m.ts, race=race, labels=a.label)

    def _on_attempt_first_token(self, m: wire.AttemptFirstToken) -> None:
        if (found := self._attempt(m)) is None:
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
        self._log("●", f"{a.label} first token after {m.ttft_ms:.0f} ms", INFO, ts=m.ts, race=race, labels=a.label)

    def _on_attempt_failed(self, m: wire.AttemptFailed) -> None:
        if (found := self._attempt(m)) is None:
            return
        race, a = found
        a.status, a.ended_ms, a.error_kind, a.error = FAILED, m.elapsed_ms, m.error_kind, m.error
        self._changed(race)
        retry = f" (retry after {m.retry_after:g} s)" if m.retry_after else ""
        self._log("✗", f"{a.label} {m.error_kind}: {m.error}{retry}", BAD, ts=m.ts, race=race, labels=a.label)

    def _on_attempt_cancelled(self, m: wire.AttemptCancelled) -> None:
        if (found := self._attempt(m)) is None:
            return
        race, a = found
        if a.status not in ENDED:
            a.status = LOST if m.answered or a.ttft_ms is not None else CANCELLED
        a.ended_ms = m.elapsed_ms
        self._changed(race)
        how = "stopped after answering" if m.answered else "cancelled"
        self._log("⊘", f"{a.label} {how} at {m.elapsed_ms:.0f} ms", MUTED, ts=m.ts, race=race, labels=a.label)

    def _on_race_decided(self, m: wire.RaceDecided) -> None:
        if (found := self._attempt(m)) is None:
            return
        race, a = found
        if getattr(m, "failover", False):  # it replaces a winner that broke before its answer was committed
            broke = race.winner
            before = race.attempts[broke].label if broke is not None and broke < len(race.attempts) else "the winner"
            race.winner, race.ttft_ms, race.failover_ms = m.index, m.elapsed_ms, m.elapsed_ms
            a.status = WON
            self._changed(race)
            text = f"{a.label} takes over from {before} at {m.elapsed_ms:.0f} ms (failover)"
            self._log("⇄", text, GOOD, ts=m.ts, race=race, labels=frozenset((a.label, before)))
            return
        race.winner, race.ttft_ms = m.index, m.ttft_ms
        a.status = WON
        self._changed(race)
        text = f"{a.label} wins · first token to caller {m.ttft_ms:.0f} ms"
        self._log("★", text, GOOD, ts=m.ts, race=race, labels=a.label)

    def _on_race_finished(self, m: wire.RaceFinished, quiet: bool = False) -> None:
        if not quiet:
            self._event_times.append(m.ts)
        if m.race_id in self._evicted:
            return
        race = self.races.get(m.race_id)
        if race is None:
            firsts = {r.index: r for r in reversed(m.attempts)}  # a restart's second record shares its index
            attempts = [AttemptView(index=i, provider=r.provider, model=r.model) for i, r in sorted(firsts.items())]
            race = self._add_race(m.race_id, m.virtual_model, m.strategy, m.ts - m.elapsed_ms / 1000.0, attempts, live=False)
            for r in m.attempts:  # never seen live: its first tokens count now
                if r.ttft_ms is not None:
                    self._provider(r.label).add_sample(r.ttft_ms)
            self.providers_version += 1
        records: dict[int, Any] = {}
        for r in m.attempts:  # a failover's restart is a second record of its participant
            first = records.get(r.index)
            if first is not None and 0 <= r.index < len(race.attempts) and not race.attempts[r.index].restarted:
                _take_record(race.attempts[r.index], first)  # never seen live: its first try, then the restart
                race.attempts[r.index].restart(r.started_ms or 0.0)
            records[r.index] = r
        for a in race.attempts:
            if (record := records.get(a.index)) is not None:
                _take_record(a, record)
        race.outcome, race.winner, race.error = m.outcome, m.winner, m.error
        race.ttft_ms, race.total_ms = m.ttft_ms, m.total_ms
        race.last_ms = max(race.last_ms, m.elapsed_ms)
        self._changed(race)
        old = self._typical.get(m.virtual_model)
        took = race.span_ms(m.ts)
        self._typical[m.virtual_model] = took if old is None else old + TYPICAL_ALPHA * (took - old)
        if quiet:
            return
        benched = [a.label for a in race.attempts if a.status == BENCHED]
        if benched:
            self._log("◐", f"{', '.join(benched)} sat out: cooling down", WARN, ts=m.ts, race=race, labels=frozenset(benched))
        if m.outcome == "ok":
            total = f"{m.total_ms:.0f} ms" if m.total_ms is not None else "?"
            self._log("■", f"done in {total}", MUTED, ts=m.ts, race=race)
        else:
            level = WARN if m.outcome in ("interrupted", "abandoned") else BAD
            self._log("✗", f"race {m.outcome}{f': {m.error}' if m.error else ''}", level, ts=m.ts, race=race)

    def _on_provider_cooldown(self, m: Any) -> None:
        label = self._cooldown(m, until=m.until, reason=m.reason)
        why = {"rate_limited": "rate limited", "failures": f"{m.failures} failures in a row"}.get(m.reason, m.reason)
        self._log("◐", f"{label} sits out races for {m.seconds:.0f} s ({why})", WARN, ts=m.ts, labels=label)

    def _on_provider_recovered(self, m: Any) -> None:
        label = self._cooldown(m, until=None, reason=None)
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
        "provider_cooldown": _on_provider_cooldown,
        "provider_recovered": _on_provider_recovered,
    }

    # ------------------------------------------------------------ helpers

    def _cooldown(self, m: Any, *, until: float | None, reason: str | None) -> str:
        label = label_of(m.provider, m.model)
        view = self._provider(label)
        view.stats = {**view.stats, "cooldown_until": until, "cooldown_reason": reason}
        view.version += 1
        self.providers_version += 1
        return label

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
        self, race_id: str, vm: str, strategy: str, started_ts: float, attempts: list[AttemptView], *, live: bool
    ) -> RaceView:
        self._race_seq += 1
        race = RaceView(race_id, self._race_seq, vm, strategy, started_ts, attempts, live=live)
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
        vm = race.virtual_model if race is not None else None
        title = race.title if race is not None else None
        self.log.append(LogEntry(self._log_seq, ts, glyph, text, level, title, vm, labels, engine))


def _take_record(a: AttemptView, record: Any) -> None:
    """What the engine's record of an attempt says, over what the events said."""
    a.status = attempt_status(record.status, record.error_kind)
    a.started_ms, a.ttft_ms, a.ended_ms = record.started_ms, record.ttft_ms, record.ended_ms
    a.error_kind, a.error = record.error_kind, record.error
