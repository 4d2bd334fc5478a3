"""Python providers for CLI tests (imported by path in subprocesses)."""

from collections.abc import AsyncIterator

from raceway import Request


async def broken(request: Request) -> AsyncIterator[str]:
    raise RuntimeError("upstream on fire")
    yield ""  # pragma: no cover


async def fine(request: Request) -> AsyncIterator[str]:
    yield f"echo: {request.messages[-1]['content']}"
