"""The winner's stream moves to the caller's task (``Provider.movable_stream``).

Once a race is decided, a provider whose stream may be read from any task
hands it to the caller at its next chunk, and the caller reads the rest
itself: no hand-off per chunk. Everything else about the winner is as
before — its idle timeout, its failures, the failover of ``complete()``,
closing it when the caller leaves — which these tests pin, on trio's
virtual clock, with provider objects that note which task read each chunk.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
from test_race_join import MSG, config

import raceway

pytestmark = pytest.mark.timeout(10)  # a wall-clock guard: the virtual clock never times out by itself



class Words(raceway.Provider):
    """Streams ``words`` (the first after ``first`` s, then one every ``gap`` s); notes each chunk's task.

    ``break_at``: raise a provider error instead of that word; ``stall_at``:
    hang there; ``bad_at``: yield a number there (a protocol error).
    """

    movable_stream = True

    def __init__(self, name: str, first: float, words: list[str], gap: float = 0.01, **faults: int) -> None:
        super().__init__(name)
        self.first, self.words, self.gap, self.faults = first, words, gap, faults
        self.readers: list[trio.lowlevel.Task] = []
        self.closed = 0

    async def stream(self, request: raceway.Request) -> AsyncIterator[Any]:
        try:
            await trio.sleep(self.first)
            for i, word in enumerate(self.words):
                if i:
                    await trio.sleep(self.gap)
                if self.faults.get("break_at") == i:
                    raise raceway.ProviderError("broke mid-stream", self.name)
                if self.faults.get("stall_at") == i:
                    await trio.sleep_forever()
                if self.faults.get("bad_at") == i:
                    yield 42
                self.readers.append(trio.lowlevel.current_task())
                yield raceway.Chunk(word)
        finally:
            self.closed += 1


class Fixed(Words):
    """The same, read in its attempt's task to the end (the default for providers written in code)."""

    movable_stream = False


WORDS = ["one ", "two ", "three ", "four"]


async def test_the_caller_reads_the_winners_stream_after_its_next_chunk(autojump_clock: Any) -> None:
    win, lose = Words("win", 0.1, WORDS), Words("lose", 0.5, WORDS)
    async with raceway.open_engine(config("win", "lose"), providers={"win": win, "lose": lose}) as engine:
        me = trio.lowlevel.current_task()
        got = []
        async with engine.stream(MSG, "v") as race:
            async for chunk in race:
                got.append((chunk.text, trio.current_time()))
        assert "".join(t for t, _ in got) == "one two three four" == race.result.text
    # The first token and the chunk that came while the decision was made were read in the
    # attempt's task; from then on, in the caller's. Each chunk reaches the caller when it comes.
    assert [r is me for r in win.readers] == [False, False, True, True]
    assert [round(t - got[0][1], 3) for _, t in got] == [0.0, 0.01, 0.02, 0.03]
    assert win.closed == 1 and lose.closed == 1
    assert [(a.provider, a.status) for a in race.result.attempts] == [("win", "won"), ("lose", "cancelled")]


async def test_a_provider_written_in_code_stays_in_its_task(autojump_clock: Any) -> None:
    win = Fixed("win", 0.1, WORDS)
    async with raceway.open_engine(config("win"), providers={"win": win}) as engine:
        me = trio.lowlevel.current_task()
        result = await engine.complete(MSG, "v")
    assert result.text == "one two three four"
    assert all(r is not me for r in win.readers)


async def test_leaving_early_closes_the_stream_the_caller_held(autojump_clock: Any) -> None:
    win = Words("win", 0.1, WORDS * 5)
    async with raceway.open_engine(config("win"), providers={"win": win}) as engine:
        async with engine.stream(MSG, "v") as race:
            async for chunk in race:
                if chunk.text == "three ":
                    break
        assert win.closed == 1  # closed before the block ended
        assert len(win.readers) == 3


async def test_a_stall_after_the_hand_over_is_the_idle_timeout(autojump_clock: Any) -> None:
    win = Words("win", 0.1, WORDS, stall_at=3)
    async with raceway.open_engine(config("win", idle_timeout_ms=200), providers={"win": win}) as engine:
        t0 = trio.current_time()
        with pytest.raises(raceway.StreamInterruptedError, match="no next chunk within 200 ms") as caught:
            async with engine.stream(MSG, "v") as race:
                async for _ in race:
                    pass
        assert trio.current_time() - t0 == pytest.approx(0.1 + 0.02 + 0.2)  # 200 ms after "three "
        assert caught.value.partial_text == "one two three "
        assert win.closed == 1


async def test_complete_fails_over_when_the_handed_over_stream_breaks(autojump_clock: Any) -> None:
    # Grace 1 s: the loser answers within it, so it replaces the winner that broke.
    win, spare = Words("win", 0.1, WORDS, break_at=3), Words("spare", 0.15, ["spare answer"])
    cfg = config("win", "spare", grace_period_ms=1000)
    async with raceway.open_engine(cfg, providers={"win": win, "spare": spare}) as engine:
        result = await engine.complete(MSG, "v")
    assert result.provider == "spare" and result.text == "spare answer"
    assert {a.provider: a.status for a in result.attempts} == {"win": "failed", "spare": "won"}
    assert win.closed == 1


async def test_a_bad_item_after_the_hand_over_is_the_providers_protocol_error(autojump_clock: Any) -> None:
    win = Words("win", 0.1, WORDS, bad_at=2)
    async with raceway.open_engine(config("win"), providers={"win": win}) as engine:
        with pytest.raises(raceway.StreamInterruptedError, match="provider yielded a int") as caught:
            async with engine.stream(MSG, "v") as race:
                async for _ in race:
                    pass
    assert caught.value.partial_text == "one two "
    assert isinstance(caught.value.__cause__, raceway.ProviderProtocolError)
    assert win.closed == 1


async def test_an_iterator_object_handed_over_is_closed_when_it_stalls(autojump_clock: Any) -> None:
    class Stalling:
        """An async iterator object (not a generator): a token, a second chunk, then nothing."""

        def __init__(self) -> None:
            self.n = 0
            self.closed = 0

        def __aiter__(self) -> Stalling:
            return self

        async def __anext__(self) -> str:
            self.n += 1
            await trio.sleep(0.1 if self.n < 3 else 100)
            return f"chunk{self.n} "

        async def aclose(self) -> None:
            self.closed += 1

    made: list[Stalling] = []

    class Objects(raceway.Provider):
        movable_stream = True

        def stream(self, request: raceway.Request) -> Stalling:  # type: ignore[override]
            made.append(Stalling())
            return made[-1]

    async with raceway.open_engine(config("o", idle_timeout_ms=300), providers={"o": Objects("o")}) as engine:
        with pytest.raises(raceway.StreamInterruptedError, match="no next chunk within 300 ms"):
            async with engine.stream(MSG, "v") as race:
                async for _ in race:
                    pass
    assert [s.closed for s in made] == [1]
