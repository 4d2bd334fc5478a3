"""One attempt of a race as the trio driver keeps it.

:class:`Attempt` is an attempt's state — its task's cancel scope, its times,
the chunks it buffered (:meth:`Attempt.take`), what it answered — and
:meth:`Attempt.record` its :class:`~raceway.AttemptRecord`. Kept apart from
``_race.py`` so the driver reads as what it is: trio around the race core.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar

import trio
from attrs import define, field

from ._chunk import Chunk, ThinkingBlock, ToolCall, ToolCallDelta, Usage
from ._errors import ProviderError, ProviderProtocolError
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

    def event(self, kind: Callable[..., E], race_id: str, now: float, wall0: float, **fields: Any) -> E:
        """An attempt event of ``kind`` about this attempt at race time ``now`` (``wall0``: the race's start, wall clock)."""
        return kind(
            race_id=race_id,
            ts=wall0 + now,
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
        if error is None and started is not None and first is not None and ended is not None:
            # Every race's path: an attempt that answered (the winner, a loser that answered too).
            return AttemptRecord(
                index=self.number,
                provider=self.provider.name,
                model=self.request.model,
                status=_status(status),
                started_ms=started * 1000,
                ttft_ms=(first - started) * 1000,
                ended_ms=ended * 1000,
                output_chars=sum(map(len, self.parts)),
                usage=self.usage,
                finish_reason=self.finish_reason,
            )
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

    def keep(self, item: Any, first_token_any: bool = False) -> bool:
        """Keep one item of the provider's stream (``str`` is short for ``Chunk(text)``); whether it
        counts as a first token. Anything else is the provider's protocol error."""
        if isinstance(item, str):
            if item:
                self.parts.append(item)
                return True
            return False
        if isinstance(item, Chunk):
            return self.take(item, first_token_any)
        raise ProviderProtocolError(
            f"provider yielded a {type(item).__name__}; a stream yields str or raceway.Chunk", self.provider.name
        )

    def take(self, chunk: Chunk, first_token_any: bool = False) -> bool:
        """Keep what ``chunk`` carries; whether it counts as a first token (reasoning only under ``first_token: any``)."""
        if chunk.finish_reason is not None:
            self.finish_reason = chunk.finish_reason
        if chunk.usage is not None:
            self.usage = chunk.usage
        answered = False
        if chunk.text:
            self.parts.append(chunk.text)
            answered = True
        if chunk.tool_calls:
            if not self.tool_deltas:
                self.tool_deltas = []
            self.tool_deltas.extend(chunk.tool_calls)
            answered = True
        if chunk.reasoning:
            if not self.reasoning:
                self.reasoning = []
            self.reasoning.append(chunk.reasoning)
            answered = answered or first_token_any
        if chunk.thinking_blocks:
            if not self.thinking:
                self.thinking = []
            self.thinking.extend(chunk.thinking_blocks)
        return answered

    def tool_calls(self) -> tuple[ToolCall, ...]:
        return assemble_tool_calls(list(self.tool_deltas))

    def next_buffered(self) -> Chunk | str | None:
        """The oldest chunk not yet handed over, or ``None``."""
        if self.head < len(self.buffer):
            item = self.buffer[self.head]
            self.head += 1
            return item
        return None


_STATUSES = frozenset(("won", "lost", "failed", "cancelled", "not_started"))


def _status(status: str) -> AttemptStatus:
    if status in _STATUSES:
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
