"""Providers for benchmarks: an instant answer, and one that waits for a gate."""

from __future__ import annotations

from collections.abc import AsyncIterator

import trio

from raceway import Request

GATE: list[trio.Event] = []


async def instant(request: Request) -> AsyncIterator[str]:
    yield "ok"


async def gated(request: Request) -> AsyncIterator[str]:
    await GATE[0].wait()
    yield "ok"
