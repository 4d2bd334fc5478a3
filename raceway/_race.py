"""The race driver: runs one race in one trio nursery, as a strategy directs.

How a race runs
---------------

This is trio's happy eyeballs (``open_tcp_stream``) grown up. Each attempt is
a task in the race's nursery, inside its own cancel scope. The attempt task
pulls chunks from its provider; before the decision it buffers them and
reports *facts* (first token, completed, failed) to the race core
(``_core.RaceCore``), which holds the strategy and every rule. The *driver*
— which runs in the caller's task, inside ``__anext__`` — asks the core what
to do, starts attempts, and sleeps on a ``trio.Event`` under ``move_on_at``
until the next fact or the time the core named. This module keeps only
trio: tasks, cancel scopes, the winner's channel, timers; the decisions are
the core's, the same object ``raceway.testing.simulate`` drives.

When the strategy picks a winner, the caller gets the winner's buffered
chunks and then its live ones, passed over a small memory channel so a slow
caller slows the upstream read (backpressure) and nothing piles up. Each
loser's cancel scope gets a deadline: the end of the grace window. Trio
cancels it then, without a timer task of ours; closing the provider's
iterator (``aclosing``) closes its HTTP response. When the caller's stream
ends before the window closes, the losers are cancelled at once — there is
nothing left to wait for.

Why not the naive versions (the seed's bugs, NOTES.md):

* Deciding when a stream *opens* rewards fast headers, not fast answers; an
  attempt succeeds on its first non-empty token.
* Waiting for the grace timer before returning (seed bug 1) turns a 50 ms
  answer into a 1 s one: ``first_wins`` hands over the first token at once
  and lets the grace window run in the background.
* Waiting for every attempt (seed bug 4) lets one provider that ignores
  cancellation hang the race. Here nothing waits on an attempt except through
  the strategy, and the deadline (``timeout_ms``) is enforced by the driver
  even if a strategy would wait longer.
* A deadline on the whole stream (seed bug 7) kills healthy winners; here
  ``timeout_ms`` bounds the decision, ``idle_timeout_ms`` each later chunk.

Nothing outlives the race: the nursery is closed by ``engine.stream()``'s
context manager, which cancels whatever is left.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import trio
from attrs import define, field

from ._chunk import Chunk, Usage
from ._core import Decided, RaceCore, RaceFailed, StartAttempt
from ._errors import (
    AllProvidersFailedError,
    ProviderError,
    ProviderProtocolError,
    ProviderTimeoutError,
    RaceTimeoutError,
    StrategyError,
    StreamInterruptedError,
)
from ._events import (
    AttemptCancelled,
    AttemptFailed,
    AttemptFirstToken,
    AttemptStarted,
    RaceDecided,
    RaceFinished,
    RaceStarted,
)
from ._providers import Provider, Request
from ._result import AttemptRecord, RaceResult
from ._strategies import RaceSpec, StrategyProtocol

# Chunks the winner may run ahead of the caller before its upstream read pauses.
WINNER_BUFFER = 32


@define(slots=True, eq=False)
class _Attempt:
    index: int  # the strategy's index
    number: int  # the participant's place in the virtual model (events and records)
    provider: Provider
    request: Request
    scope: trio.CancelScope | None = None
    timer: trio.CancelScope | None = None
    status: str = "not_started"  # running, then won/lost/failed/cancelled
    started: float | None = None
    first_token: float | None = None
    ended: float | None = None
    completed: bool = False
    closed: bool = False  # its final event was emitted
    parts: list[str] = field(factory=list)
    buffer: deque[Chunk | str] | None = field(factory=deque)  # None once handed to the caller
    finish_reason: str | None = None
    usage: Usage | None = None
    error: BaseException | None = None


class Race:
    """One race: its attempts, the strategy, and the caller's stream of chunks.

    Made by the engine; the caller sees it as the object of
    ``async with engine.stream(...) as race``: iterate it for the winner's
    chunks, then read :attr:`result`.
    """

    def __init__(
        self,
        *,
        race_id: str,
        nursery: trio.Nursery,
        strategy: StrategyProtocol,
        spec: RaceSpec,
        attempts: list[tuple[Provider, Request]],
        virtual_model: str,
        virtual_model_desc: str,
        strategy_name: str,
        ttft_timeout: float | None,
        idle_timeout: float,
        emit: Callable[[Any], None] | None,
        on_finished: Callable[[RaceFinished], None],
        benched: tuple[AttemptRecord, ...] = (),
        numbers: tuple[int, ...] = (),
        participants: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.race_id = race_id
        self._nursery = nursery
        self._core = RaceCore(strategy, spec, trio.current_time())
        numbers = numbers or tuple(range(len(attempts)))
        self._attempts = [_Attempt(i, n, p, r) for i, (n, (p, r)) in enumerate(zip(numbers, attempts, strict=True))]
        self._virtual_model = virtual_model
        self._virtual_model_desc = virtual_model_desc
        self._strategy_name = strategy_name
        self._ttft_timeout = ttft_timeout
        self._idle_timeout = idle_timeout
        self._emit = emit
        self._on_finished = on_finished
        self._benched = benched  # cooling-down participants that sit this race out (issue 4)
        self._t0 = self._core.t0
        self._deadline = spec.deadline
        self._wake = trio.Event()
        self._wake_at = math.inf  # trio time of the core's timer (the strategy's Wait, or the deadline)
        self._winner: _Attempt | None = None
        self._decided_at: float | None = None
        self._failure: BaseException | None = None
        self._receive: trio.MemoryReceiveChannel[Chunk | str] | None = None
        self._send: trio.MemorySendChannel[Chunk | str] | None = None
        self._result: RaceResult | None = None
        self._finished = False
        self._caller_parts: list[str] = []
        if emit is not None:
            emit(
                RaceStarted(
                    race_id=race_id,
                    ts=time.time(),
                    virtual_model=virtual_model,
                    strategy=strategy_name,
                    participants=participants or tuple((p.name, r.model) for p, r in attempts),
                )
            )
        self._advance()

    # ------------------------------------------------------------ the caller

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

    def __aiter__(self) -> Race:
        return self

    async def __anext__(self) -> Chunk:
        if self._winner is None:
            if self._failure is None and not self._finished:
                await self._drive()
            if self._failure is not None:
                raise self._failure
        w = self._winner
        if w is None:  # finished without a winner: the failure was raised before
            raise StopAsyncIteration
        if w.buffer:
            item = w.buffer.popleft()
        elif self._receive is not None:
            # The winner's upstream must send its next chunk within idle_timeout_ms.
            with trio.move_on_after(self._idle_timeout) as idle:
                try:
                    item = await self._receive.receive()
                except trio.EndOfChannel:
                    self._finish_stream()
                    raise StopAsyncIteration from None
            if idle.cancelled_caught:
                self._winner_stalled(w)
                self._finish_stream()  # raises StreamInterruptedError
        else:
            self._finish_stream()
            raise StopAsyncIteration
        chunk = item if isinstance(item, Chunk) else Chunk(item)
        if chunk.text:
            self._caller_parts.append(chunk.text)
        return chunk

    def _winner_stalled(self, w: _Attempt) -> None:
        self._attempt_failed(
            w,
            ProviderTimeoutError(f"no next chunk within {self._idle_timeout * 1000:.0f} ms", w.provider.name),
            self._now(),
        )
        assert w.scope is not None
        w.scope.cancel()

    # ------------------------------------------------------------ the driver

    def _now(self) -> float:
        return self._core.now(trio.current_time())

    def _advance(self) -> None:
        """Carry out the core's answers at this instant until it waits or the race is decided."""
        core = self._core
        while self._winner is None and self._failure is None:
            action = core.next(trio.current_time())
            kind = type(action)
            if kind is StartAttempt:
                self._start(action.index, action.at)  # type: ignore[union-attr]
            elif kind is Decided:
                self._pick(action)  # type: ignore[arg-type]
            elif kind is RaceFailed:
                failed: RaceFailed = action  # type: ignore[assignment]
                if failed.error is not None:
                    self._strategy_failed(failed.error)
                else:
                    self._fail(failed.reason, failed.at, timeout=failed.outcome == "timeout")
            else:  # WakeAt
                self._wake_at = self._t0 + action.until  # type: ignore[union-attr]
                return

    async def _drive(self) -> None:
        while self._winner is None and self._failure is None:
            with trio.move_on_at(self._wake_at):
                await self._wake.wait()
            if self._wake.is_set():
                self._wake = trio.Event()
            self._advance()

    def _strategy_failed(self, error: StrategyError) -> None:
        """The strategy raised or broke a rule: stop every attempt, fail the race."""
        if self._failure is not None or self._finished:
            return
        now = self._now()
        for a in self._attempts:
            if a.status in ("running", "won") and a.ended is None:
                self._close_attempt(a, now)
        self._failure = error
        self._report_finished("failed", now, error=str(error))
        self._wake.set()

    def _start(self, i: int, now: float) -> None:
        a = self._attempts[i]
        a.status = "running"
        a.started = now
        a.scope = trio.CancelScope()
        if self._emit is not None:
            self._emit(
                AttemptStarted(
                    race_id=self.race_id,
                    ts=time.time(),
                    elapsed_ms=now * 1000,
                    index=a.number,
                    provider=a.provider.name,
                    model=a.request.model,
                )
            )
        self._nursery.start_soon(self._run_attempt, a)

    def _pick(self, decided: Decided) -> None:
        now = decided.at
        w = self._attempts[decided.index]
        self._winner = w
        self._decided_at = now
        w.status = "won"
        if w.ended is None:
            self._send, self._receive = trio.open_memory_channel[Chunk | str](WINNER_BUFFER)
        cancel_at = self._t0 + decided.cancel_losers_at
        for a in self._attempts:
            if a is w:
                continue
            a.buffer = None
            if a.scope is not None and a.ended is None:
                a.scope.deadline = cancel_at
            elif a.completed:
                a.status = "lost"
        if self._emit is not None:
            self._emit(
                RaceDecided(
                    race_id=self.race_id,
                    ts=time.time(),
                    elapsed_ms=now * 1000,
                    index=w.number,
                    provider=w.provider.name,
                    model=w.request.model,
                    ttft_ms=((w.first_token or now) - (w.started or 0.0)) * 1000,
                )
            )

    def _fail(self, reason: str, now: float, *, timeout: bool) -> None:
        errors: dict[str, BaseException] = {}
        for a in self._attempts:
            if a.status == "running" and a.ended is None:
                a.error = (
                    ProviderTimeoutError(
                        f"no answer before the race deadline ({self._deadline * 1000:.0f} ms)", a.provider.name
                    )
                    if timeout
                    else ProviderError(f"stopped: {reason}", a.provider.name)
                )
                self._close_attempt(a, now)
            if a.error is not None:
                errors[f"{a.provider.name}/{a.request.model}#{a.number}"] = a.error
        if timeout:
            message = f"no provider answered within {self._deadline * 1000:.0f} ms"
            # Say why the attempts that failed before the deadline failed (a
            # missing key, a 401 naming its variable): that is what to fix.
            reasons = "; ".join(
                f"{label.rpartition('#')[0]}: {e}"
                for label, e in errors.items()
                if not str(e).startswith("no answer before the race deadline")
            )
            if reasons:
                message = f"{message} ({reasons})"
            exc: AllProvidersFailedError = RaceTimeoutError(message, errors)
        else:
            detail = "; ".join(f"{label.rpartition('#')[0]}: {e}" for label, e in errors.items())
            exc = AllProvidersFailedError(f"all providers failed: {detail or reason}", errors)
        if self._benched:
            sitting = ", ".join(f"{b.label} ({b.error})" for b in self._benched)
            exc.args = (f"{exc.args[0]}; sitting this race out: {sitting}",)
        group = list(errors.values()) or [ProviderError(reason)]
        exc.__cause__ = ExceptionGroup("errors of every attempt", group)  # type: ignore[type-var]
        self._failure = exc
        self._report_finished("timeout" if timeout else "failed", now, error=str(exc))

    # ------------------------------------------------------------ attempts

    async def _run_attempt(self, a: _Attempt) -> None:
        assert a.scope is not None and a.started is not None
        failure: BaseException | None = None
        with a.scope:
            try:
                if self._ttft_timeout is None:
                    await self._pump(a)
                else:
                    with trio.move_on_at(self._t0 + a.started + self._ttft_timeout) as a.timer:
                        await self._pump(a)
                    if a.timer.cancelled_caught:
                        failure = ProviderTimeoutError(
                            f"no first token within {self._ttft_timeout * 1000:.0f} ms", a.provider.name
                        )
            except Exception as exc:
                failure = exc
            if a.completed and a.first_token is None and failure is None:
                failure = ProviderProtocolError("empty answer: the stream ended without any text", a.provider.name)
                a.completed = False
        now = self._now()
        if a.scope.cancel_called and not a.completed:
            self._close_attempt(a, now)
        elif failure is not None:
            self._attempt_failed(a, failure, now)
        elif a.completed:
            self._attempt_completed(a, now)
        if a is self._winner and self._send is not None:
            self._send.close()

    async def _pump(self, a: _Attempt) -> None:
        """Read one attempt's stream: buffer before the decision, feed the caller after."""
        chunks = a.provider.stream(a.request)
        try:
            async for item in chunks:
                # Providers may yield plain text as a shorthand for Chunk(text).
                if isinstance(item, str):
                    text = item
                elif isinstance(item, Chunk):
                    text = item.text
                    if item.finish_reason is not None:
                        a.finish_reason = item.finish_reason
                    if item.usage is not None:
                        a.usage = item.usage
                else:
                    raise ProviderProtocolError(
                        f"provider yielded a {type(item).__name__}; a stream yields str or raceway.Chunk",
                        a.provider.name,
                    )
                if text:
                    a.parts.append(text)
                    if a.first_token is None:
                        self._first_token(a)
                if self._winner is None:
                    a.buffer.append(item)  # type: ignore[union-attr]
                elif self._winner is a and self._send is not None:
                    await self._send.send(item)
        finally:
            # Closing the iterator is what closes a loser's HTTP response.
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()
        a.completed = True

    def _first_token(self, a: _Attempt) -> None:
        now = self._now()
        a.first_token = now
        if a.timer is not None:
            a.timer.deadline = math.inf  # ttft_timeout_ms is met; idle time is the caller's watch
        if self._winner is None and self._failure is None:
            self._core.first_token(a.index, now)
            self._wake.set()
        if self._emit is not None:
            assert a.started is not None
            self._emit(
                AttemptFirstToken(
                    race_id=self.race_id,
                    ts=time.time(),
                    elapsed_ms=now * 1000,
                    index=a.number,
                    provider=a.provider.name,
                    model=a.request.model,
                    ttft_ms=(now - a.started) * 1000,
                )
            )

    def _attempt_completed(self, a: _Attempt, now: float) -> None:
        a.ended = now
        if self._winner is not None and a is not self._winner:
            a.status = "lost"
        if self._winner is None and self._failure is None:
            self._core.completed(a.index, now, "".join(a.parts), a.finish_reason)
            self._wake.set()

    def _attempt_failed(self, a: _Attempt, exc: BaseException, now: float) -> None:
        if a.closed:
            return
        a.ended = now
        a.error = exc
        if a is not self._winner:
            a.status = "failed" if a.first_token is None or self._winner is None else "lost"
        a.closed = True
        if self._winner is None and self._failure is None:
            self._core.failed(a.index, now, _kind(exc))
            self._wake.set()
        if self._emit is not None:
            self._emit(
                AttemptFailed(
                    race_id=self.race_id,
                    ts=time.time(),
                    elapsed_ms=now * 1000,
                    index=a.number,
                    provider=a.provider.name,
                    model=a.request.model,
                    error_kind=_kind(exc),
                    error=_one_line(exc),
                    retry_after=getattr(exc, "retry_after", None),
                )
            )

    def _close_attempt(self, a: _Attempt, now: float) -> None:
        """Book an attempt the engine stopped: once, whoever notices first."""
        if a.closed:
            return
        a.closed = True
        if a.ended is None:
            a.ended = now
        if a.status == "running":
            a.status = "lost" if a.first_token is not None else "cancelled"
        if a.scope is not None:
            a.scope.cancel()
        if self._emit is not None:
            self._emit(
                AttemptCancelled(
                    race_id=self.race_id,
                    ts=time.time(),
                    elapsed_ms=now * 1000,
                    index=a.number,
                    provider=a.provider.name,
                    model=a.request.model,
                    answered=a.first_token is not None,
                )
            )

    # ------------------------------------------------------------ the end

    def _finish_stream(self) -> None:
        """The winner's stream ended: close the losers, build the result, report."""
        if self._finished:
            return
        w = self._winner
        assert w is not None and self._decided_at is not None
        now = self._now()
        if w.error is not None:
            partial = "".join(self._caller_parts)
            self._stop_losers(now)
            self._report_finished("interrupted", now, error=_one_line(w.error))
            raise StreamInterruptedError(
                f"{w.provider.name}/{w.request.model} broke off after {len(partial)} characters: "
                f"{_one_line(w.error)}",
                partial_text=partial,
                provider=w.provider.name,
                model=w.request.model,
            ) from w.error
        self._stop_losers(now)
        records = self._records()
        self._result = RaceResult(
            race_id=self.race_id,
            text="".join(w.parts),
            provider=w.provider.name,
            model=w.request.model,
            virtual_model=self._virtual_model,
            strategy=self._strategy_name,
            ttft_ms=self._decided_at * 1000,
            total_ms=now * 1000,
            finish_reason=w.finish_reason,
            usage=w.usage,
            attempts=records,
            metadata={
                "racing_winner": w.provider.name,
                "racing_latency_ms": round(self._decided_at * 1000),
                "virtual_model": self._virtual_model,
                "virtual_model_desc": self._virtual_model_desc,
            },
        )
        self._report_finished("ok", now, records=records)

    def _stop_losers(self, now: float) -> None:
        for a in self._attempts:
            if a is not self._winner and a.status == "running" and a.ended is None:
                self._close_attempt(a, now)

    def abandon(self) -> None:
        """The caller left before the end: stop everything and report it."""
        if self._finished:
            return
        now = self._now()
        for a in self._attempts:
            if a.status in ("running", "won") and a.ended is None:
                self._close_attempt(a, now)
        self._report_finished("abandoned", now)

    def _records(self) -> tuple[AttemptRecord, ...]:
        out = []
        for a in self._attempts:
            status = a.status if a.status != "running" else ("lost" if a.first_token is not None else "cancelled")
            out.append(
                AttemptRecord(
                    index=a.number,
                    provider=a.provider.name,
                    model=a.request.model,
                    status=status,  # type: ignore[arg-type]
                    started_ms=None if a.started is None else a.started * 1000,
                    ttft_ms=None
                    if a.first_token is None or a.started is None
                    else (a.first_token - a.started) * 1000,
                    ended_ms=None if a.ended is None else a.ended * 1000,
                    error=None if a.error is None else _one_line(a.error),
                    error_kind=None if a.error is None else _kind(a.error),
                    retry_after=getattr(a.error, "retry_after", None),
                    output_chars=sum(map(len, a.parts)),
                )
            )
        if not self._benched:
            return tuple(out)
        return tuple(sorted((*out, *self._benched), key=lambda r: r.index))

    def _report_finished(
        self, outcome: str, now: float, *, records: tuple[AttemptRecord, ...] | None = None, error: str | None = None
    ) -> None:
        self._finished = True
        w = self._winner
        usage = None
        if w is not None and w.usage is not None:
            usage = {"input_tokens": w.usage.input_tokens, "output_tokens": w.usage.output_tokens}
        self._on_finished(
            RaceFinished(
                race_id=self.race_id,
                ts=time.time(),
                elapsed_ms=now * 1000,
                virtual_model=self._virtual_model,
                strategy=self._strategy_name,
                outcome=outcome,
                attempts=records if records is not None else self._records(),
                winner=None if w is None else w.number,
                ttft_ms=None if self._decided_at is None else self._decided_at * 1000,
                total_ms=now * 1000,
                error=error,
                usage=usage,
            )
        )


def _kind(exc: BaseException) -> str:
    return exc.kind if isinstance(exc, ProviderError) else type(exc).__name__


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


