"""What the engine makes of its races: their events for the listeners, and learning from them.

:class:`Learning` is the base of :class:`~raceway._engine.Engine` (which
holds the state) that hands every event to the engine's listeners
(``subscribe``, ``publish``) and learns each finished race into the
performance tracker (``Tracker.record``), telling the fleet's hook
(``on_learned``) and the listeners of the cooldown news it made. A race
that went well waits for the next batch (``_unlearned``: the engine's task
``Engine._learn_in_batches`` learns it within ``_engine.LEARN_BATCH_S``);
a failure is learned at once, after the batch, so cooldowns never lag.
Whoever reads the tracker out (:attr:`Learning.tracker`, the tracker's
``settle`` hook) sees every race learned.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import trio

from ._events import RaceFinished
from ._race import Race
from ._tracker import Tracker

log = logging.getLogger("raceway")


class Learning:
    """The events and the learning of an engine (a base of ``Engine``, which holds the state)."""

    # The engine's state these methods read and write (set in Engine.__init__).
    _tracker: Tracker
    _listeners: list[Callable[[Any], None]]
    _unlearned: list[Race]
    _learn_soon: trio.Event
    on_learned: Callable[[RaceFinished, tuple[Any, ...]], None] | None

    # ---------------------------------------------------------------- events

    def subscribe(self, listener: Callable[[Any], None]) -> Callable[[], None]:
        """Call ``listener(event)`` for every event from now on; returns the unsubscribe function.

        Listeners run inside the race loop: they must be quick and must not block.
        """
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def publish(self, event: Any) -> None:
        """Hand ``event`` to the listeners, as the engine's own (the fleet's news of other engines)."""
        if self._listeners:
            self._emit(event)

    def _emit(self, event: Any) -> None:
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                log.exception("raceway: an event listener failed; it stays subscribed")

    # ---------------------------------------------------------------- learning

    @property
    def tracker(self) -> Tracker:
        """The performance tracker, with every finished race learned."""
        self._learn_now()
        return self._tracker

    def _race_finished(self, race: Race) -> None:
        """Learn from a finished race: at once when anything failed, else in the next batch.

        Learning is most of what a race costs raceway after the answer, and
        nothing the caller waits for: a race that went well (every attempt
        answered or was cancelled, and nobody was cooling down) is learned
        from within ``LEARN_BATCH_S`` — and with nobody listening, its final
        event and records are written up then, too. A failure is learned at
        once — after the batch, in order — so cooldowns never lag.
        """
        quiet = race.quiet_success()
        if self._listeners:
            self._emit(race.finished_event())
        if quiet:
            self._unlearned.append(race)
            if len(self._unlearned) == 1:
                self._learn_soon.set()
            return
        self._learn_now()
        self._learn(race.finished_event())

    def _learn(self, event: RaceFinished) -> None:
        cooldown_events = self._tracker.record(event)
        if self.on_learned is not None:
            self.on_learned(event, cooldown_events)
        if self._listeners:
            for news in cooldown_events:
                self._emit(news)

    def _learn_now(self) -> None:
        if self._unlearned:
            batch, self._unlearned = self._unlearned, []
            for race in batch:
                self._learn(race.finished_event())
