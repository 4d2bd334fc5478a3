"""The dashboard's state and what the views ask of it; no Textual here, no wire decoding.

:class:`DashboardState` holds the races, providers and log entries that
:class:`dashboard.model.DashboardModel` folds wire messages into, bounded
(:data:`RACE_HISTORY` races, ``log_history`` entries) and versioned (each
race and provider carries a ``version``, the model one per collection), and
answers the views' queries: the races the filter lets through, rates on the
engine's clock, log entries after a number. Its helpers add a race, a
provider or a log entry and bump the versions that change.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Iterator
from typing import Any

from raceway import wire

from .views import (
    ENDED,
    INFO,
    UNKNOWN,
    AttemptView,
    Filter,
    LogEntry,
    ProviderView,
    RaceView,
)

#: Races kept for the Races panel (newest on top); older ones are dropped.
RACE_HISTORY = 200
#: Entries kept for the event log (the log widget keeps as many lines).
LOG_HISTORY = 1_000
#: Rates (races/s, events/s) are averaged over this many seconds of engine time.
RATE_WINDOW_S = 5.0
#: Ids of dropped races remembered, so a late event of one does not revive it.
EVICTED_MEMORY = 2_000


class DashboardState:
    """The races, providers and log the dashboard shows, and the queries the views make."""

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

    # ------------------------------------------------------------ helpers

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

