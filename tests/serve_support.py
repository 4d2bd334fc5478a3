"""Shared by the gateway's tests: a served engine, the SDKs under asyncio, python providers.

The official SDKs are asyncio programs; pytest runs in trio mode, so
:func:`in_asyncio` runs an SDK coroutine with ``asyncio.run`` in a worker
thread while the gateway serves from the test's trio loop.

The python providers below are named in configs as ``serve_support:NAME``
(the tests folder is on ``sys.path``); they record what they were asked in
:data:`REQUESTS`, and ``forever`` what became of it in :data:`SIGNALS`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import httpx
import trio

import raceway
from raceway import Chunk, ToolCallDelta, Usage
from raceway._gateway import Gateway, open_gateway

CONFIG = """
timeout_ms: 3000
grace_period_ms: 0
monitor: {socket: off}
performance_file: off
default_virtual_model: fast
providers:
  quick: {type: sim, model: quick-1, ttft_ms: 5, sigma: 0, tokens_per_s: 2000, text: "Hello from quick."}
  slow: {type: sim, model: slow-1, ttft_ms: 400, sigma: 0, tokens_per_s: 2000, text: "Hello from slow."}
  tools: {type: python, callable: "serve_support:tool_answer", model: tool-1}
  tool_only: {type: python, callable: "serve_support:tool_only", model: tool-2}
  thinker: {type: python, callable: "serve_support:reasoning_answer", model: think-1}
  broken: {type: python, callable: "serve_support:broken", model: broken-1}
  breaks: {type: python, callable: "serve_support:breaks_midway", model: breaks-1}
  forever: {type: python, callable: "serve_support:forever", model: forever-1}
virtual_models:
  fast: {description: "quick against slow", providers: [quick, slow]}
  slowest: {providers: [slow]}
  tools: {providers: [tools]}
  tool_only: {providers: [tool_only]}
  think: {providers: [thinker]}
  failing: {providers: [broken, broken]}
  interrupted: {providers: [breaks]}
  deadline: {providers: [forever], timeout_ms: 150}
"""

#: Every request a python provider here was asked (raceway.Request objects).
REQUESTS: list[Any] = []


class Signals:
    """What ``forever`` attempts did: started, cancelled (trio events, fresh per test)."""

    def __init__(self) -> None:
        self.started = trio.Event()
        self.cancelled = trio.Event()
        self.cancelled_at = 0.0


SIGNALS = Signals()


def fresh_signals() -> Signals:
    global SIGNALS
    SIGNALS = Signals()
    return SIGNALS

#: A secret-looking string the ``broken`` provider puts in its error (the gateway must redact it).
LEAKED_KEY = "sk-live-abcdefghijklmnop"


async def tool_answer(request: Any) -> AsyncIterator[Chunk]:
    """One tool call streamed in three pieces (no text at all), with usage."""
    REQUESTS.append(request)
    yield Chunk(tool_calls=(ToolCallDelta(0, id="call_w1", name="get_weather"),))
    yield Chunk(tool_calls=(ToolCallDelta(0, arguments='{"city": '),))
    yield Chunk(tool_calls=(ToolCallDelta(0, arguments='"Paris"}'),))
    yield Chunk(
        finish_reason="tool_calls",
        usage=Usage(input_tokens=12, output_tokens=7, cached_input_tokens=4, reasoning_tokens=2),
    )


async def tool_only(request: Any) -> AsyncIterator[Chunk]:
    """A whole tool call in one delta, and no text."""
    yield Chunk(tool_calls=(ToolCallDelta(0, id="call_t1", name="lookup", arguments='{"q": 1}'),))
    yield Chunk(finish_reason="tool_calls")


async def reasoning_answer(request: Any) -> AsyncIterator[Chunk]:
    REQUESTS.append(request)
    yield Chunk(reasoning="Let me think. ")
    yield Chunk("The answer ")
    yield Chunk("is 4.", finish_reason="stop", usage=Usage(input_tokens=3, output_tokens=5))


async def broken(request: Any) -> AsyncIterator[Chunk]:
    raise raceway.ProviderHTTPError(f"HTTP 500 from upstream: key {LEAKED_KEY} was refused", 500)
    yield Chunk()  # pragma: no cover


async def breaks_midway(request: Any) -> AsyncIterator[Chunk]:
    yield Chunk("partial ")
    await trio.sleep(0.05)  # long enough for the race to hand "partial " to the caller first
    raise raceway.ProviderProtocolError("the upstream stream broke")


async def forever(request: Any) -> AsyncIterator[Chunk]:
    signals = SIGNALS
    signals.started.set()
    try:
        await trio.sleep_forever()
    finally:
        signals.cancelled_at = trio.current_time()
        signals.cancelled.set()
    yield Chunk()  # pragma: no cover


@asynccontextmanager
async def serving(config: str | raceway.Config = CONFIG) -> AsyncIterator[Gateway]:
    """An engine for ``config`` served on an ephemeral loopback port."""
    REQUESTS.clear()
    fresh_signals()
    cfg = raceway.loads_config(config) if isinstance(config, str) else config
    async with raceway.open_engine(cfg) as engine, open_gateway(engine, port=0) as gateway:
        yield gateway


def client(gateway: Gateway, **kwargs: Any) -> httpx.AsyncClient:
    """A raw HTTP client (under trio) for the gateway."""
    return httpx.AsyncClient(base_url=gateway.url, timeout=10, **kwargs)


async def in_asyncio(fn: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> Any:
    """Run the asyncio coroutine function ``fn(*args)`` in a worker thread; its result."""
    return await trio.to_thread.run_sync(lambda: asyncio.run(fn(*args)))


def openai_client(gateway: Gateway, api_key: str = "unused") -> Any:
    import openai

    return openai.AsyncOpenAI(base_url=gateway.openai_base_url, api_key=api_key, max_retries=0, timeout=10)


def anthropic_client(gateway: Gateway, api_key: str = "unused") -> Any:
    import anthropic

    return anthropic.AsyncAnthropic(base_url=gateway.anthropic_base_url, api_key=api_key, max_retries=0, timeout=10)


def sse_events(text: str) -> list[tuple[str | None, Any]]:
    """A Server-Sent Events body as (event name, data) pairs; data parsed as JSON when it is."""
    out = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        event, data = None, []
        for line in block.splitlines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        joined = "\n".join(data)
        try:
            out.append((event, json.loads(joined)))
        except ValueError:
            out.append((event, joined))
    return out


MESSAGES = [{"role": "user", "content": "Say hello."}]
