"""The attempts' side of a race: each attempt's task, and how its end is booked.

:class:`AttemptTasks` is the half of :class:`~raceway._race.Race` that runs
in the attempt tasks (the other half runs in the caller's task): it reads
one provider's stream inside the attempt's cancel scope, keeps what it
carries (``Attempt.take``), tells the race core each fact — first token,
complete answer, failure, a stop — and wakes the driver, which decides.
Nothing here decides anything; the core does.
"""

from __future__ import annotations

from collections.abc import Callable
from types import AsyncGeneratorType
from typing import Any

import trio

from ._attempt import Attempt, error_kind
from ._chunk import Chunk
from ._core import RaceCore
from ._errors import ProviderError, ProviderProtocolError, ProviderTimeoutError
from ._events import AttemptCancelled, AttemptFailed, AttemptFirstToken
from ._text import one_line


class AttemptTasks:
    """What runs in an attempt's task (a base of ``Race``, which holds the state)."""

    __slots__ = ()

    # The race's state these methods read and write (Race's slots).
    race_id: str
    _core: RaceCore
    _t0: float
    _clock: Callable[[], float]
    _wall0: float
    _ttft_timeout: float | None
    _first_token_any: bool
    _emit: Callable[[Any], None] | None
    _wake: trio.Event
    _winner: Attempt | None
    _failure: BaseException | None
    _send: trio.MemorySendChannel[Chunk | str] | None
    _handoff: trio.Event | None  # set when the winner's task hands its stream over, or ends
    _handed: Any  # the winner's stream, once the caller's task reads it
    _crash: Callable[[BaseException], None]
    _task_ended: Callable[[], None]

    def _now(self) -> float:
        return self._core.now(self._clock())

    async def _run_attempt(self, a: Attempt) -> None:
        """Read one attempt's stream: buffer it, or feed the caller once it is the winner.

        The attempt's cancel scope is also its ``ttft_timeout_ms`` watch (its
        deadline until the first token) and, for a loser, the end of its grace
        window (``Attempt.stop_at``): one scope, whichever comes first.
        """
        scope = a.scope
        assert scope is not None and a.started is not None
        if self._ttft_timeout is not None:
            scope.deadline = self._t0 + a.started + self._ttft_timeout
        failure: BaseException | None = None
        try:
            with scope:
                chunks: Any = a.provider.stream(a.request)
                try:
                    try:
                        async for item in chunks:
                            if a.closed:  # the race stopped it (and booked it): nothing more is its
                                break
                            if a.keep(item, self._first_token_any) and a.first_token is None:
                                self._first_token(a)
                            if a is self._winner and self._handoff is not None and not scope.cancel_called:
                                # The caller's task reads the rest of the stream itself (Race._next_item).
                                a.buffer.append(item)
                                self._handed = chunks
                                return
                            send = self._send
                            if a is self._winner and send is not None:
                                # A schedule point per chunk (send_nowait would save it): a winner with
                                # more data waiting must not run ahead of the caller's own writes — through
                                # the gateway that cost the first chunk 0.5-1 ms (bench_serve, 1 client).
                                await send.send(item)
                            else:
                                a.buffer.append(item)
                    finally:
                        # Closing the iterator is what closes a loser's HTTP response (an async
                        # generator that ran to its end has nothing left to close); one handed
                        # over to the caller is the caller's to close.
                        if self._handed is not chunks:
                            await close_stream(chunks)
                    a.completed = True
                except Exception as exc:
                    failure = exc
                if a.completed and a.first_token is None and failure is None:
                    failure = ProviderProtocolError("empty answer: the stream ended without any text", a.provider.name)
                    a.completed = False
            if a.closed:
                pass  # the race stopped it, and booked it then
            elif scope.cancel_called and not a.completed:
                if self._ttft_timeout is None or self._clock() >= a.stop_at:  # the end of its grace window
                    self._close_attempt(a, self._now())
                else:
                    self._attempt_failed(
                        a, ProviderTimeoutError(f"no first token within {self._ttft_timeout * 1000:.0f} ms", a.provider.name)
                    )
            elif failure is not None:
                self._attempt_failed(a, failure)
            elif a.completed:
                self._attempt_completed(a)
        except trio.Cancelled:
            # Not its own scope's (that one ends at ``with scope``): the engine is closing around the race.
            if not a.closed:
                self._attempt_failed(a, ProviderError("stopped: the engine closed", a.provider.name))
            raise
        except BaseException as exc:  # KeyboardInterrupt, a bug of ours: the caller's (_crash), not the engine's
            self._crash(exc)
        finally:
            if a is self._winner:
                if self._send is not None:
                    self._send.close()
                if self._handoff is not None:  # handed over, or ended: the caller waits for either
                    self._handoff.set()
            self._task_ended()

    def _first_token(self, a: Attempt) -> None:
        now = self._now()
        a.first_token = now
        if self._ttft_timeout is not None and a.scope is not None:
            a.scope.deadline = a.stop_at  # ttft_timeout_ms is met; idle time is the caller's watch
        self._core.first_token(a.index, now)
        if self._winner is None and self._failure is None:
            self._wake.set()
        if self._emit is not None:
            assert a.started is not None
            self._emit(
                a.event(
                    AttemptFirstToken,
                    self.race_id,
                    now,
                    self._wall0,
                    ttft_ms=(now - a.started) * 1000,
                )
            )

    def _attempt_completed(self, a: Attempt) -> None:
        now = self._now()
        a.ended = now
        if self._winner is not None and a is not self._winner:
            a.status = "lost"
        if self._core.success_on == "complete":
            self._core.completed(a.index, now, "".join(a.parts), a.finish_reason, a.tool_calls())
        else:
            self._core.completed(a.index, now, "", a.finish_reason)
        if self._winner is None and self._failure is None:
            self._wake.set()

    def _attempt_failed(self, a: Attempt, exc: BaseException) -> None:
        if a.closed:
            return
        now = self._now()
        a.ended = now
        a.error = exc
        if a is self._winner:
            a.status = "failed"  # a winner that broke; after the commit its record says failed, too
        else:
            a.status = "failed" if a.first_token is None or self._winner is None else "lost"
            self._core.failed(a.index, now, error_kind(exc))
        a.closed = True
        if self._winner is None and self._failure is None:
            self._wake.set()
        if self._emit is not None:
            self._emit(
                a.event(
                    AttemptFailed,
                    self.race_id,
                    now,
                    self._wall0,
                    error_kind=error_kind(exc),
                    error=one_line(exc),
                    retry_after=getattr(exc, "retry_after", None),
                )
            )

    def _close_attempt(self, a: Attempt, now: float) -> None:
        """Book an attempt the engine stopped: once, whoever notices first."""
        if a.closed:
            return
        a.closed = True
        if a.ended is None:
            a.ended = now
        if a.status == "running":
            a.status = "lost" if a.first_token is not None else "cancelled"
        self._core.cancelled(a.index, now)
        if a.scope is not None:
            a.scope.cancel()
        if self._emit is not None:
            self._emit(
                a.event(
                    AttemptCancelled,
                    self.race_id,
                    now,
                    self._wall0,
                    answered=a.first_token is not None,
                )
            )


async def close_stream(chunks: Any) -> None:
    """Close a provider's stream (what closes its HTTP response); one that ran to its end has nothing to close."""
    if type(chunks) is not AsyncGeneratorType or chunks.ag_frame is not None:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()
