"""The engine's timers: one trio task that wakes every race's driver at its time.

A race's driver sleeps until the next fact or the time the race core named
(a hedge delay, a strategy's ``Wait``, the deadline). Sleeping under its own
``trio.move_on_at`` would cost a cancel scope per wait on every race's path;
instead each race files its time here, in one heap served by one task under
one cancel scope, and the task calls the race back when the time comes (it
sets the driver's ``trio.Event``: the driver wakes as it would for a fact).

A timer is a small list ``[when, seq, callback]``; :meth:`Timers.cancel`
blanks its callback rather than digging it out of the heap, and the heap is rebuilt
when cancelled timers outnumber live ones (a race decided long before its
deadline leaves one behind).
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable
from typing import Any

import trio

# Rebuild the heap when it holds more than this many cancelled timers, and more than live ones.
COMPACT_AFTER = 1024


class Timers:
    """Every race's wake-up time, served by :meth:`run` (one task of the engine's nursery)."""

    __slots__ = ("_cancelled", "_heap", "_scope", "_seq")

    def __init__(self) -> None:
        self._heap: list[list[Any]] = []
        self._seq = itertools.count()  # ties keep filing order, and callbacks are never compared
        self._scope: trio.CancelScope | None = None  # the serving task's sleep, until the earliest time
        self._cancelled = 0

    def at(self, when: float, callback: Callable[[], None]) -> list[Any]:
        """Call ``callback()`` at trio time ``when``; returns the timer, for :meth:`cancel`.

        The callback runs in the timers' task: it must be quick and must not raise.
        """
        timer = [when, next(self._seq), callback]
        heap = self._heap
        heapq.heappush(heap, timer)
        scope = self._scope
        if scope is not None and heap[0] is timer and when < scope.deadline:
            scope.deadline = when
        return timer

    def cancel(self, timer: list[Any]) -> None:
        """Forget ``timer`` (a timer that already fired is left alone)."""
        if timer[2] is None:
            return
        timer[2] = None
        self._cancelled += 1
        if self._cancelled > COMPACT_AFTER and self._cancelled * 2 > len(self._heap):
            self._heap = [t for t in self._heap if t[2] is not None]
            heapq.heapify(self._heap)
            self._cancelled = 0

    async def run(self) -> None:
        """Serve the timers until cancelled (the engine closing)."""
        heap = self._heap
        while True:
            with trio.CancelScope(deadline=heap[0][0] if heap else math.inf) as self._scope:
                await trio.sleep_forever()
            self._scope = None
            now = trio.current_time()
            heap = self._heap  # cancel() may have rebuilt it
            while heap and heap[0][0] <= now:
                timer = heapq.heappop(heap)
                callback, timer[2] = timer[2], None
                if callback is None:
                    self._cancelled -= 1
                else:
                    callback()
            while heap and heap[0][2] is None:  # nothing to wake for
                heapq.heappop(heap)
                self._cancelled -= 1
