"""Python providers for the fleet tests (imported by path, also in subprocesses)."""

from collections.abc import AsyncIterator

import trio

from raceway import RateLimitedError, Request


async def fine(request: Request) -> AsyncIterator[str]:
    yield "ok"


async def limited(request: Request) -> AsyncIterator[str]:
    raise RateLimitedError("429 Too Many Requests", retry_after=30.0, provider="limited")
    yield ""  # pragma: no cover


async def slow(request: Request) -> AsyncIterator[str]:
    await trio.sleep(0.03)
    yield "slow"


#: The event ``held`` waits on (a test sets a fresh one per run).
HOLD: list[trio.Event] = []


async def held(request: Request) -> AsyncIterator[str]:
    await HOLD[0].wait()
    yield "late"
