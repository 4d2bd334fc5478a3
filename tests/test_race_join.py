"""Nothing outlives a race: its attempts run in the engine's nursery, and the caller's exit waits for them.

On trio's virtual clock (``autojump_clock``), with a wall-clock guard so a
spin fails instead of hanging.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio

import raceway
from raceway._attempt import Attempt
from raceway._race import Race

MSG = [{"role": "user", "content": "hi"}]


class Slow(raceway.Provider):
    """Answers after ``delay``; when stopped, takes ``cleanup`` seconds (shielded) to let go."""

    def __init__(self, name: str, delay: float, cleanup: float = 0.0) -> None:
        super().__init__(name)
        self.delay, self.cleanup = delay, cleanup
        self.closed_at: list[float] = []

    async def stream(self, request: raceway.Request) -> AsyncIterator[str]:
        try:
            await trio.sleep(self.delay)
            yield "answer from " + self.name
            await trio.sleep(self.delay)
            yield " and more"
        finally:
            with trio.CancelScope(shield=True):
                await trio.sleep(self.cleanup)
            self.closed_at.append(trio.current_time())


def config(*names: str) -> raceway.Config:
    return raceway.Config(
        monitor=raceway.MonitorConfig(socket="off"),
        performance_file="off",
        providers={"unused": raceway.SimProvider()},
        virtual_models={"v": raceway.VirtualModel(providers=[raceway.ProviderRef(name=n) for n in names])},
    )


# A wall-clock guard: on the virtual clock a spinning driver would never time out by itself.
pytestmark = pytest.mark.timeout(10)


class Chunky(Slow):
    """Answers with one Chunk (which the attempt keeps with ``Attempt.take``)."""

    async def stream(self, request: raceway.Request) -> AsyncIterator[Any]:
        await trio.sleep(self.delay)
        yield raceway.Chunk("chunk from " + self.name)


async def test_leaving_the_stream_waits_for_a_loser_that_is_slow_to_let_go(autojump_clock: Any) -> None:
    fast, slow = Slow("fast", 0.1), Slow("slow", 0.5, cleanup=0.3)
    async with raceway.open_engine(config("fast", "slow"), providers={"fast": fast, "slow": slow}) as engine:
        t0 = trio.current_time()
        async with engine.stream(MSG, "v") as race:
            async for _ in race:
                break  # the caller leaves after the first chunk
        # The loser was stopped at the decision (0.1 s) and took 0.3 s to let go; the winner
        # was stopped when the caller left. The block ended only after both.
        assert trio.current_time() - t0 == pytest.approx(0.4)
        assert len(slow.closed_at) == 1 and slow.closed_at[0] - t0 == pytest.approx(0.4)
        assert len(fast.closed_at) == 1
        assert race.provider == "fast"


async def test_a_caller_cancelled_from_outside_stops_and_waits_for_every_attempt(autojump_clock: Any) -> None:
    a, b = Slow("a", 5.0, cleanup=0.2), Slow("b", 6.0)
    async with raceway.open_engine(config("a", "b"), providers={"a": a, "b": b}) as engine:
        t0 = trio.current_time()
        with trio.move_on_after(1.0) as scope:
            await engine.complete(MSG, "v")
        assert scope.cancelled_caught
        assert trio.current_time() - t0 == pytest.approx(1.2)  # a's cleanup is waited for
        assert len(a.closed_at) == 1 and len(b.closed_at) == 1
        # The engine races on.
        assert (await engine.complete(MSG, "v")).provider == "a"


async def test_a_bug_in_an_attempt_task_reaches_the_caller_and_the_engine_races_on(
    autojump_clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    providers = {"a": Chunky("a", 0.1), "b": Chunky("b", 0.2)}
    async with raceway.open_engine(config("a", "b"), providers=providers) as engine:
        real = Race._attempt_completed

        def broken(self: Race, a: Attempt) -> None:
            raise RuntimeError("bookkeeping bug")

        monkeypatch.setattr(Race, "_attempt_completed", broken)
        with pytest.raises(RuntimeError, match="bookkeeping bug"):
            await engine.complete(MSG, "v")
        monkeypatch.setattr(Race, "_attempt_completed", real)
        assert (await engine.complete(MSG, "v")).text == "chunk from a"


class Interrupted(Slow):
    """Raises KeyboardInterrupt after ``delay`` the first time, as Ctrl-C landing in a provider's code would."""

    async def stream(self, request: raceway.Request) -> AsyncIterator[str]:
        await trio.sleep(self.delay)
        if not self.closed_at:
            self.closed_at.append(trio.current_time())
            raise KeyboardInterrupt
        yield "late"


async def test_a_keyboard_interrupt_in_an_attempt_reaches_its_caller_at_once(autojump_clock: Any) -> None:
    winner, ctrl_c = Slow("w", 0.1), Interrupted("k", 0.15)
    async with raceway.open_engine(config("w", "k"), providers={"w": winner, "k": ctrl_c}) as engine:
        t0 = trio.current_time()
        with pytest.raises(KeyboardInterrupt):
            async with engine.stream(MSG, "v") as race:
                async for _ in race:  # the winner streams on at 0.1 and 0.2: the interrupt comes between
                    pass
        assert trio.current_time() - t0 == pytest.approx(0.15)
        assert len(winner.closed_at) == 1
        assert (await engine.complete(MSG, "v")).provider == "w"  # the engine was not hurt
