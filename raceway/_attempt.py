"""One attempt of a race as the trio driver keeps it, and how a finished race is written up.

:class:`Attempt` is an attempt's state — its task's cancel scope, its times,
the chunks it buffered, what it answered — and :meth:`Attempt.record` its
:class:`~raceway.AttemptRecord`. :func:`failure` turns a race that ended
without a winner into the one exception the caller gets. Kept apart from
``_race.py`` so the driver reads as what it is: trio around the race core.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, TypeVar

import trio
from attrs import define, field

from ._chunk import Chunk, ThinkingBlock, ToolCall, ToolCallDelta, Usage
from ._errors import AllProvidersFailedError, ProviderError, ProviderTimeoutError, RaceTimeoutError
from ._providers import Provider, Request
from ._result import AttemptRecord, AttemptStatus
from ._text import one_line

E = TypeVar("E")


@define(slots=True, eq=False)
class Attempt:
    """One attempt: ``index`` is the race core's, ``number`` the participant's place in the virtual model."""

    index: int
    number: int  # events and records use it: a failover restart shares its participant's number
    provider: Provider
    request: Request
    scope: trio.CancelScope | None = None
    stop_at: float = math.inf  # a loser's end of the grace window (trio time)
    status: str = "not_started"  # running, then won/lost/failed/cancelled
    started: float | None = None
    first_token: float | None = None
    ended: float | None = None
    completed: bool = False
    closed: bool = False  # its final event was emitted
    parts: list[str] = field(factory=list)
    # Most answers carry no reasoning, tool calls or thinking: these stay the
    # shared empty tuple until they do (a race of 3 holds 30,000 of them at
    # 10,000 races in flight).
    reasoning: list[str] | tuple[()] = ()
    tool_deltas: list[ToolCallDelta] | tuple[()] = ()
    thinking: list[ThinkingBlock] | tuple[()] = ()
    # Chunks not yet handed to the caller: all of them before the decision,
    # and a loser's while it may still replace a broken winner. A list read
    # from ``head`` (a deque costs 600 bytes even empty).
    buffer: list[Chunk | str] = field(factory=list)
    head: int = 0
    finish_reason: str | None = None
    usage: Usage | None = None
    error: BaseException | None = None
    skipped: tuple[str, str] | None = None  # (kind, reason): it sat the race out (the cost budget)

    @property
    def label(self) -> str:
        return f"{self.provider.name}/{self.request.model}"

    def event(self, kind: Callable[..., E], race_id: str, now: float, **fields: Any) -> E:
        """An attempt event of ``kind`` about this attempt at race time ``now``."""
        return kind(
            race_id=race_id,
            ts=time.time(),
            elapsed_ms=now * 1000,
            index=self.number,
            provider=self.provider.name,
            model=self.request.model,
            **fields,
        )

    def record(self) -> AttemptRecord:
        if self.skipped is not None:
            kind, reason = self.skipped
            return AttemptRecord(
                index=self.number,
                provider=self.provider.name,
                model=self.request.model,
                status="not_started",
                error=reason,
                error_kind=kind,
            )
        status = self.status
        if status == "running":
            status = "lost" if self.first_token is not None else "cancelled"
        started, first, ended, error = self.started, self.first_token, self.ended, self.error
        return AttemptRecord(
            index=self.number,
            provider=self.provider.name,
            model=self.request.model,
            status=_status(status),
            started_ms=None if started is None else started * 1000,
            ttft_ms=None if first is None or started is None else (first - started) * 1000,
            ended_ms=None if ended is None else ended * 1000,
            error=None if error is None else one_line(error),
            error_kind=None if error is None else error_kind(error),
            retry_after=getattr(error, "retry_after", None),
            output_chars=sum(map(len, self.parts)),
            usage=self.usage,
            finish_reason=self.finish_reason,
        )

    def tool_calls(self) -> tuple[ToolCall, ...]:
        return assemble_tool_calls(list(self.tool_deltas))

    def next_buffered(self) -> Chunk | str | None:
        """The oldest chunk not yet handed over, or ``None``."""
        if self.head < len(self.buffer):
            item = self.buffer[self.head]
            self.head += 1
            return item
        return None


def _status(status: str) -> AttemptStatus:
    if status in ("won", "lost", "failed", "cancelled", "not_started"):
        return status  # type: ignore[return-value]
    raise AssertionError(f"attempt status {status!r}")


def assemble_tool_calls(deltas: list[ToolCallDelta]) -> tuple[ToolCall, ...]:
    """Whole tool calls from streamed deltas: by ``index``, the first ``id``/``name``, arguments joined."""
    calls: dict[int, list[str]] = {}
    for d in deltas:
        call = calls.setdefault(d.index, ["", "", ""])
        if d.id and not call[0]:
            call[0] = d.id
        if d.name and not call[1]:
            call[1] = d.name
        call[2] += d.arguments
    return tuple(ToolCall(id=c[0], name=c[1], arguments=c[2]) for _, c in sorted(calls.items()))


def error_kind(exc: BaseException) -> str:
    return exc.kind if isinstance(exc, ProviderError) else type(exc).__name__


def failure(
    attempts: list[Attempt],
    reason: str,
    *,
    timeout: bool,
    deadline: float,
    benched: tuple[AttemptRecord, ...],
) -> AllProvidersFailedError:
    """The error a race without a winner raises: why each attempt failed, in one line.

    ``errors`` maps each attempt's ``provider/model`` (``#2``, ``#3``... for a
    second attempt of the same label) to its error; ``__cause__`` is an
    ExceptionGroup of them all.
    """
    errors: dict[str, BaseException] = {}
    for a in attempts:
        if a.error is None:
            continue
        label = a.label
        n = 2
        while label in errors:
            label, n = f"{a.label}#{n}", n + 1
        errors[label] = a.error
    late = f"no answer before the race deadline ({deadline * 1000:.0f} ms)"
    if timeout:
        message = f"no provider answered within {deadline * 1000:.0f} ms"
        # Say why the attempts that failed before the deadline failed (a
        # missing key, a 401 naming its variable): that is what to fix.
        reasons = "; ".join(f"{a.label}: {one_line(e)}" for a in attempts if (e := a.error) and str(e) != late)
        if reasons:
            message = f"{message} ({reasons})"
        exc: AllProvidersFailedError = RaceTimeoutError(message, errors)
    else:
        detail = "; ".join(f"{a.label}: {one_line(a.error)}" for a in attempts if a.error is not None)
        exc = AllProvidersFailedError(f"all providers failed: {detail or reason}", errors)
    if benched:
        sitting = ", ".join(f"{b.label} ({b.error})" for b in benched)
        exc.args = (f"{exc.args[0]}; sitting this race out: {sitting}",)
    group = list(errors.values()) or [ProviderError(reason)]
    exc.__cause__ = ExceptionGroup("errors of every attempt", group)  # type: ignore[type-var]
    return exc


def stopped_error(a: Attempt, reason: str, *, timeout: bool, deadline: float) -> ProviderError:
    """What a still-running attempt is booked with when the race fails around it."""
    if timeout:
        return ProviderTimeoutError(f"no answer before the race deadline ({deadline * 1000:.0f} ms)", a.provider.name)
    return ProviderError(f"stopped: {reason}", a.provider.name)
