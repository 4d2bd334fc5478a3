"""Python providers for CLI tests (imported by path in subprocesses)."""

from collections.abc import AsyncIterator

from raceway import Request


async def broken(request: Request) -> AsyncIterator[str]:
    raise RuntimeError("upstream on fire")
    yield ""  # pragma: no cover


async def fine(request: Request) -> AsyncIterator[str]:
    yield f"echo: {request.messages[-1]['content']}"


async def first_word_then_hang(request: Request) -> AsyncIterator[str]:
    """Answers one word, then never finishes (for interrupting ``raceway run``)."""
    import trio

    yield "thinking..."
    await trio.sleep_forever()


async def late_fine(request: Request) -> AsyncIterator[str]:
    """Answers after 100 ms (of trio's clock), so faster failures are booked first."""
    import trio

    await trio.sleep(0.1)
    yield "late but fine"
