"""The engine's timer heap (``raceway._timers``), on trio's virtual clock."""

from __future__ import annotations

from typing import Any

import trio

from raceway import _timers
from raceway._timers import Timers


async def test_timers_fire_at_their_times_in_order_and_cancelled_ones_do_not(autojump_clock: Any) -> None:
    timers = Timers()
    fired: list[tuple[str, float]] = []
    t0 = trio.current_time()

    def note(name: str) -> Any:
        return lambda: fired.append((name, trio.current_time() - t0))

    async with trio.open_nursery() as nursery:
        timers.at(t0 + 3, note("c"))  # filed before the task runs
        nursery.start_soon(timers.run)
        await trio.sleep(0)
        timers.at(t0 + 2, note("b"))
        doomed = timers.at(t0 + 1.5, note("never"))
        timers.at(t0 + 1, note("a"))  # earlier than the task's sleep: it wakes sooner
        timers.at(t0 + 2, note("b2"))  # a tie keeps filing order
        timers.cancel(doomed)
        timers.cancel(doomed)  # twice is harmless
        await trio.sleep(1.2)
        timers.at(t0 + 1.5, note("late"))  # filed while the task sleeps until 2
        await trio.sleep(5)
        nursery.cancel_scope.cancel()
    assert fired == [("a", 1), ("late", 1.5), ("b", 2), ("b2", 2), ("c", 3)]


async def test_cancelled_timers_are_swept_out_of_the_heap(autojump_clock: Any, monkeypatch: Any) -> None:
    """A race decided long before its deadline leaves a cancelled timer; they do not pile up."""
    monkeypatch.setattr(_timers, "COMPACT_AFTER", 10)
    timers = Timers()
    t0 = trio.current_time()
    fired: list[int] = []
    keep = timers.at(t0 + 1000, lambda: fired.append(1))
    for i in range(100):
        timers.cancel(timers.at(t0 + 30 + i, lambda: fired.append(2)))
    assert len(timers._heap) < 25
    async with trio.open_nursery() as nursery:
        nursery.start_soon(timers.run)
        await trio.sleep(2000)
        nursery.cancel_scope.cancel()
    assert fired == [1] and not timers._heap
    timers.cancel(keep)  # a fired timer: left alone
    assert timers._cancelled == 0
