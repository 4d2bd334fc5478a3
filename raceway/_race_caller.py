"""The caller's side of a race: the winner's chunks as the caller reads them, and its exit.

:class:`CallerSide` is the half of :class:`~raceway._race.Race` that runs
in the caller's task (the attempts' side is ``_race_tasks.AttemptTasks``,
its base): iterating the race drives it until it is decided
(``Race._drive``), then reads the winner — its buffered chunks, then its
live ones, either over a memory channel from the winner's task or, for a
provider whose stream may move between tasks, from the stream itself
(:meth:`CallerSide._next_item`). A winner that breaks before its answer is
committed is replaced (the core's failover); after the commit, the break is
the caller's :class:`~raceway.StreamInterruptedError`. :meth:`join` is the
caller's exit: nothing outlives the race.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn, Self

import trio

from . import _writeup as writeup
from ._attempt import Attempt, error_kind
from ._chunk import Chunk
from ._errors import ProviderTimeoutError, StreamInterruptedError
from ._race_tasks import AttemptTasks, close_stream
from ._result import RaceResult
from ._text import one_line

# How long the caller's exit waits for the winner's stream it read to close (an HTTP response).
CLOSE_TIMEOUT_S = 5.0


class CallerSide(AttemptTasks):
    """What runs in the caller's task once the race is made (a base of ``Race``, which holds the state)."""

    if not TYPE_CHECKING:  # slot-less at run time (Race has the slots); mypy checks the writes below
        __slots__ = ()

    # The race's state these methods read and write (Race's slots), and the driver's methods.
    _attempts: list[Attempt]
    _result: RaceResult | None
    _finished: bool
    _hold: bool
    _committed: bool
    _caller_parts: list[str]
    _receive: trio.MemoryReceiveChannel[Chunk | str] | None
    _idle: trio.CancelScope | None
    _idle_timeout: float
    _crashed: BaseException | None
    _live: int
    _all_done: trio.Event | None
    _drive: Callable[[], Any]
    _advance: Callable[[], None]
    _finish_stream: Callable[[Attempt], None]
    _stop_losers: Callable[[float], None]
    _report_finished: Callable[..., None]

    @property
    def result(self) -> RaceResult:
        """The :class:`RaceResult`, once the winner's stream has been read to its end."""
        if self._result is None:
            raise RuntimeError("the race has not finished: iterate it to the end first")
        return self._result

    @property
    def provider(self) -> str | None:
        """The winner's provider name, once decided."""
        return None if self._winner is None else self._winner.provider.name

    @property
    def model(self) -> str | None:
        """The winner's model, once decided."""
        return None if self._winner is None else self._winner.request.model

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Chunk:
        while True:
            w = await self._decided()
            if w is None:  # finished without a winner: the failure was raised before
                raise StopAsyncIteration
            item = await self._next_item(w)
            if item is not None:
                break
            # The winner's stream ended.
            if self._crashed is not None:  # its task did not end well: that is no answer
                self._raise_crash()
            if w.error is None:
                self._finish_stream(w)
                raise StopAsyncIteration
            if self._committed:
                raise self._interrupted(w)
            self._fail_over(w)
        chunk = item if isinstance(item, Chunk) else Chunk(item)
        if chunk.text:
            self._caller_parts.append(chunk.text)
        if not self._hold:
            self._committed = True
        return chunk

    async def run_to_end(self) -> RaceResult:
        """``complete()``: drive the race and read the winner's answer to its end, handing nothing over."""
        while True:
            w = await self._decided()
            assert w is not None
            w.head = len(w.buffer)  # nothing is handed over before the end
            while await self._next_item(w) is not None:
                pass
            if self._crashed is not None:
                self._raise_crash()
            if w.error is None:
                self._finish_stream(w)
                return self.result
            self._fail_over(w)

    async def _decided(self) -> Attempt | None:
        """The winner, once the race has one (driving it till then); raises the race's failure."""
        if self._winner is None:
            if self._failure is None and not self._finished:
                await self._drive()
            if self._failure is not None:
                raise self._failure
        return self._winner

    async def _next_item(self, w: Attempt) -> Chunk | str | None:
        """The winner's next chunk: buffered, else live; ``None`` at the end of its stream.

        Live chunks come one of two ways. A provider whose stream may move
        between tasks (``Provider.movable_stream``: the HTTP ones, ``sim``)
        hands it to the caller's task at the winner's next chunk, and the
        caller reads it from then on — no hand-off per chunk, so under load
        a chunk waits for one turn of the scheduler, not two. Any other
        stream stays in its attempt's task, which passes each chunk over a
        small memory channel (backpressure: a slow caller slows the read).
        """
        item = w.next_buffered()
        if item is not None:
            return item
        if self._handoff is not None:  # the winner's task has not yet handed its stream over
            with trio.move_on_after(self._idle_timeout) as self._idle:
                try:
                    await self._handoff.wait()
                finally:
                    self._idle = None
            if not self._handoff.is_set():
                self._idle_out(w)
                return None
            self._handoff = None
            item = w.next_buffered()  # the chunk that came with it
            if item is not None:
                return item
        if self._handed is not None:
            return await self._read_handed(w)
        receive = self._receive
        if receive is None:  # it ended: the buffer held all of it
            return None
        # What the winner sent while the caller was busy comes first, without a wait;
        # the channel ends when the winner's task does (it may end with chunks still in it).
        try:
            return receive.receive_nowait()
        except trio.WouldBlock:
            pass
        except trio.EndOfChannel:
            return None
        # The winner's upstream must send its next chunk within idle_timeout_ms.
        with trio.move_on_after(self._idle_timeout) as self._idle:
            try:
                return await receive.receive()
            except trio.EndOfChannel:
                pass
            finally:
                self._idle = None
            if self._crashed is None:
                return None
        self._idle_out(w)
        return None

    def _idle_out(self, w: Attempt) -> None:
        """The caller's wait for the winner's next chunk ended without one: a crash, or idle_timeout_ms."""
        if self._crashed is not None:
            self._raise_crash()
        self._attempt_failed(
            w, ProviderTimeoutError(f"no next chunk within {self._idle_timeout * 1000:.0f} ms", w.provider.name)
        )
        if w.scope is not None:
            w.scope.cancel()  # its task's read, if it still has the stream

    async def _read_handed(self, w: Attempt) -> Chunk | str | None:
        """The winner's next item, read in the caller's task (its stream was handed over); ``None`` at the end."""
        chunks = self._handed
        with trio.move_on_after(self._idle_timeout) as self._idle:
            try:
                item = await chunks.__anext__()
                w.keep(item, self._first_token_any)
                return item  # type: ignore[no-any-return]
            except StopAsyncIteration:
                self._handed = None
                if not w.closed:
                    w.completed = True
                    self._attempt_completed(w)
                return None
            except Exception as exc:  # the provider's failure (ProviderProtocolError: a bad item)
                self._handed = None
                await close_stream(chunks)
                self._attempt_failed(w, exc)
                return None
            finally:
                self._idle = None
        self._handed = None
        with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT_S):
            await close_stream(chunks)  # an async generator the cancelled read ended has nothing to close
        self._idle_out(w)
        return None

    def _fail_over(self, w: Attempt) -> None:
        """The winner broke before its answer was committed: the core finds another."""
        assert w.ended is not None
        clock = self._clock()
        for a in self._attempts:
            # A loser past its grace window is stopped, even if its task has not said so yet.
            if a is not w and not a.closed and a.ended is None and a.scope is not None and a.stop_at <= clock:
                self._close_attempt(a, self._now())
        self._core.winner_broke(w.ended, error_kind(w.error) if w.error is not None else "error")
        self._winner = None
        self._receive = self._send = None
        self._handoff = self._handed = None
        self._advance()

    def _interrupted(self, w: Attempt) -> StreamInterruptedError:
        """The winner broke after its answer was committed (or no provider could replace it)."""
        now = self._now()
        self._stop_losers(now)
        assert w.error is not None
        self._report_finished("interrupted", now, error=one_line(w.error), winner=w)  # the one that broke
        return writeup.interrupted(w, "".join(self._caller_parts if self._committed else w.parts))

    async def join(self) -> None:
        """Stop every attempt still running and wait until each task has ended (the caller's exit).

        The attempts run in the engine's nursery, each in its own cancel
        scope, rather than in a nursery of the race's own: the race stops
        them one by one anyway, and a nursery per race would cost a cancel
        scope and a schedule point on every race's path. This is where the
        race keeps trio's promise instead — nothing outlives it: the
        caller's ``async with`` does not end while an attempt task runs
        (shielded, as a nursery's exit waits for its children).
        """
        if self._live or self._handed is not None:
            for a in self._attempts:
                if a.scope is not None:
                    a.scope.cancel()
            with trio.CancelScope(shield=True):
                if self._live:
                    self._all_done = trio.Event()
                    await self._all_done.wait()
                if self._handed is not None:  # the winner's stream, which the caller read (or was about to)
                    chunks, self._handed = self._handed, None
                    with trio.move_on_after(CLOSE_TIMEOUT_S):
                        await close_stream(chunks)
        if self._crashed is not None:
            self._raise_crash()

    def _raise_crash(self) -> NoReturn:
        """Raise what ended an attempt's task (see :meth:`_crash`), once."""
        crashed, self._crashed = self._crashed, None
        assert crashed is not None
        raise crashed
