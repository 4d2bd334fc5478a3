"""The dashboard's state, folded from wire messages; no Textual here.

This module owns the folding: :class:`DashboardModel` decodes lines and
applies each kind of message to the state it inherits from
:class:`dashboard.state.DashboardState`, which holds the races, providers and
log and answers the views' queries.

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

from collections.abc import Iterable
from typing import Any, ClassVar

from raceway import wire

from .state import EVICTED_MEMORY as EVICTED_MEMORY
from .state import LOG_HISTORY as LOG_HISTORY
from .state import RACE_HISTORY as RACE_HISTORY
from .state import RATE_WINDOW_S as RATE_WINDOW_S
from .state import DashboardState as DashboardState
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
    WARN,
    WON,
    AttemptView,
    RaceView,
    attempt_status,
    label_of,
)

#: Weight of each finished race in a virtual model's typical duration.
TYPICAL_ALPHA = 0.2


class DashboardModel(DashboardState):
    """Everything the dashboard shows, folded from the engine's messages."""

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


def _take_record(a: AttemptView, record: Any) -> None:
    """What the engine's record of an attempt says, over what the events said."""
    a.status = attempt_status(record.status, record.error_kind)
    a.started_ms, a.ttft_ms, a.ended_ms = record.started_ms, record.ttft_ms, record.ended_ms
    a.error_kind, a.error = record.error_kind, record.error
