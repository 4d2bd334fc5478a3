"""Scripted ``python`` providers for race tests: each provider name gets a script.

A test sets ``SCRIPTS[name] = Script(...)`` and points a ``python`` provider's
``callable`` at ``scripted:provider``. Every step and every cancellation is
recorded in ``LOG`` with trio's (virtual) time, so tests can assert exactly
when a loser was cancelled.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import trio
from attrs import define, field

from raceway import Chunk, Request


@define
class Script:
    """``ttft``: seconds to the first chunk; ``chunks``: the text pieces; ``gap``:
    seconds between them; ``fail_at``: raise at this time instead of answering;
    ``hang``: never answer; ``finish``: the last chunk's finish reason;
    ``stall_after``: stop sending (hang) after this many chunks; ``break_with``:
    raise this after the chunks instead of finishing."""

    ttft: float = 0.0
    chunks: list[str] = field(factory=lambda: ["hello"])
    gap: float = 0.0
    fail_at: float | None = None
    error: Exception | None = None
    hang: bool = False
    finish: str | None = "stop"
    stall_after: int | None = None
    break_with: Exception | None = None


SCRIPTS: dict[str, Script] = {}
LOG: list[tuple[str, str, float]] = []
REQUESTS: list[Request] = []


def reset() -> None:
    SCRIPTS.clear()
    LOG.clear()
    REQUESTS.clear()


def events(name: str) -> list[tuple[str, float]]:
    return [(what, t) for n, what, t in LOG if n == name]


def when(name: str, what: str) -> float | None:
    for n, w, t in LOG:
        if n == name and w == what:
            return t
    return None


async def provider(request: Request) -> AsyncIterator[Any]:
    name = request.provider
    s = SCRIPTS[name]
    REQUESTS.append(request)
    t0 = trio.current_time()
    LOG.append((name, "start", t0))
    try:
        if s.hang:
            await trio.sleep_forever()
        if s.fail_at is not None:
            await trio.sleep(s.fail_at)
            LOG.append((name, "fail", trio.current_time()))
            raise s.error or RuntimeError(f"{name} failed on purpose")
        await trio.sleep(s.ttft)
        for i, text in enumerate(s.chunks):
            if i:
                await trio.sleep(s.gap)
            if s.stall_after is not None and i >= s.stall_after:
                await trio.sleep_forever()
            LOG.append((name, "chunk", trio.current_time()))
            last = i == len(s.chunks) - 1
            yield Chunk(text, finish_reason=s.finish if last and not s.break_with else None)
        if s.break_with is not None:
            raise s.break_with
        LOG.append((name, "done", trio.current_time()))
    except trio.Cancelled:
        LOG.append((name, "cancelled", trio.current_time()))
        raise
    except GeneratorExit:
        LOG.append((name, "closed", trio.current_time()))
        raise
