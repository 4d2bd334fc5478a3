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


def config(*names: str, **settings: Any) -> raceway.Config:
    return raceway.Config(
        monitor=raceway.MonitorConfig(socket="off"),
        performance_file="off",
        providers={"unused": raceway.SimProvider()},
        virtual_models={"v": raceway.VirtualModel(providers=[raceway.ProviderRef(name=n) for n in names])},
        **settings,
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


# ------------------------------------------------ regressions found in review (each failed before its fix)


class Boom(BaseException):
    """What ends an attempt's task that is no provider's failure (as KeyboardInterrupt would)."""


async def test_leaving_as_the_winners_next_chunk_comes_closes_its_stream(autojump_clock: Any) -> None:
    go = trio.Event()
    closed: list[float] = []

    class Movable(raceway.Provider):
        movable_stream = True

        async def stream(self, request: raceway.Request) -> AsyncIterator[str]:
            try:
                await trio.sleep(0.1)
                yield "one "
                await go.wait()
                yield "two "
                await trio.sleep(1)
                yield "three"
            finally:
                closed.append(trio.current_time())

    async with raceway.open_engine(config("p"), providers={"p": Movable("p")}) as engine:
        async with engine.stream(MSG, "v") as race:
            async for _ in race:
                go.set()  # its next chunk is ready: its task runs before the caller's exit
                break
        assert len(closed) == 1 and race._handed is None  # closed before the block ended


async def test_a_crash_in_the_winners_task_is_no_answer(autojump_clock: Any) -> None:
    class Crashing(raceway.Provider):
        async def stream(self, request: raceway.Request) -> AsyncIterator[str]:
            await trio.sleep(0.1)
            yield "one "
            await trio.sleep(0.1)
            yield "two "
            raise Boom()

    events: list[Any] = []
    async with raceway.open_engine(config("p"), providers={"p": Crashing("p")}) as engine:
        engine.subscribe(events.append)
        with pytest.raises(Boom):
            async with engine.stream(MSG, "v") as race:
                async for _ in race:
                    await trio.sleep(0.5)  # busy between chunks: the channel has ended when it asks again
    assert [e.outcome for e in events if isinstance(e, raceway.RaceFinished)] == ["abandoned"]


async def test_a_loser_stopped_at_the_end_does_not_change_its_record_after(autojump_clock: Any) -> None:
    go = trio.Event()

    class Late(raceway.Provider):
        async def stream(self, request: raceway.Request) -> AsyncIterator[str]:
            await go.wait()
            yield "late answer"
            await trio.sleep(10)

    class Once(raceway.Provider):
        async def stream(self, request: raceway.Request) -> AsyncIterator[str]:
            await trio.sleep(0.1)
            yield "one"  # and its stream ends: the race with it

    providers = {"w": Once("w"), "l": Late("l")}
    async with raceway.open_engine(config("w", "l", grace_period_ms=0), providers=providers) as engine:
        async with engine.stream(MSG, "v") as race:
            async for _ in race:
                go.set()  # the loser's answer comes as the race ends
        loser = [a for a in race.result.attempts if a.provider == "l"]
        assert [(a.status, a.ttft_ms, a.output_chars) for a in loser] == [("cancelled", None, 0)]


async def test_failover_does_not_pick_a_loser_past_its_grace_window(autojump_clock: Any) -> None:
    class Breaks(raceway.Provider):
        async def stream(self, request: raceway.Request) -> AsyncIterator[str]:
            await trio.sleep(0.1)
            yield "winner "
            await trio.sleep(0.15)  # breaks at 0.25, while the loser (stopped at 0.2) still closes
            raise raceway.ProviderError("broke", self.name)

    class SlowToClose(raceway.Provider):
        movable_stream = True

        async def stream(self, request: raceway.Request) -> AsyncIterator[str]:
            try:
                await trio.sleep(0.15)
                yield "loser-part-1 "
                await trio.sleep(1)
                yield "loser-part-2"
            finally:
                with trio.CancelScope(shield=True):
                    await trio.sleep(0.1)

    providers = {"w": Breaks("w"), "l": SlowToClose("l")}
    async with raceway.open_engine(config("w", "l", grace_period_ms=100), providers=providers) as engine:
        result = await engine.complete(MSG, "v")
    # Not the stopped loser's partial buffer as a whole answer: a new attempt of it, in full.
    assert result.text == "loser-part-1 loser-part-2"
    assert [(a.provider, a.status) for a in result.attempts] == [("w", "failed"), ("l", "lost"), ("l", "won")]


async def test_a_race_outliving_its_engine_ends_instead_of_hanging(autojump_clock: Any) -> None:
    # Its caller runs outside the engine's block; the engine closes mid-answer and stops the
    # winner; the failover restarts the loser cancelled at the decision. Whether that restart
    # is stopped by the closing engine or refused by its closed nursery (which used to leave
    # the race waiting, shielded, for a task that never existed) depends on the order trio
    # runs things in: either way the race ends, with an error that says the engine closed.
    class Words(raceway.Provider):
        def __init__(self, name: str, first: float) -> None:
            super().__init__(name)
            self.first = first

        async def stream(self, request: raceway.Request) -> AsyncIterator[str]:
            await trio.sleep(self.first)
            for i in range(100):
                yield f"w{i} "
                await trio.sleep(0.1)

    errors: list[BaseException] = []

    async def outside(engine: raceway.Engine, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            await engine.complete(MSG, "v")
        except Exception as exc:
            errors.append(exc)

    providers = {"w": Words("w", 0.1), "l": Words("l", 0.2)}
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            async with raceway.open_engine(config("w", "l", grace_period_ms=0), providers=providers) as engine:
                await nursery.start(outside, engine)
                await trio.sleep(0.5)
    assert len(errors) == 1 and "engine clos" in str(errors[0])
