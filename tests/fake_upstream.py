"""A fake LLM upstream: a real HTTP server speaking the OpenAI and Anthropic streaming APIs.

Built from the providers' public API references (chat completions streaming:
https://platform.openai.com/docs/api-reference/chat-streaming; Messages
streaming: https://docs.anthropic.com/en/docs/build-with-claude/streaming),
served by hypercorn's trio worker on 127.0.0.1, so raceway's providers are
tested over real sockets, the same way they meet the internet.

One server hosts any number of named upstreams, by the first path segment::

    POST /{name}/v1/chat/completions   OpenAI format   (base_url: {url}/{name}/v1)
    POST /{name}/v1/messages           Anthropic format (base_url: {url}/{name})
    GET  /{name}/v1/models             either, by the headers sent

Each name follows a :class:`Behaviour`: latency per phase (before the
headers, before the first token, between chunks), a fault (429 with
retry-after, 500, 401, never answering, disconnecting or stalling mid-stream,
a truncated stream, a malformed chunk, an error event), whether a role-only
chunk comes first. Every request is recorded as an :class:`Exchange`
(headers, JSON body, when the headers went out, when the client
disconnected), and tests wait for facts with :meth:`FakeUpstream.wait_until`
instead of sleeping.

In tests::

    async with serve_fake_upstream() as up:
        up.behave("slow", first_token_delay=0.3)
        ...  # base_url: up.openai_url("slow") / up.anthropic_url("slow")

As a script, for trying the CLI by hand::

    python tests/fake_upstream.py --port 8900 --profile fast
    # prints a config whose providers point at the named upstreams below
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

FAULTS = (
    None,
    "rate_limit",  # 429 with retry-after (the value of `retry_after`)
    "server_error",  # 500
    "unauthorized",  # 401 (also whenever `api_key` is set and the request's key differs)
    "hang",  # never sends headers
    "disconnect",  # drops the connection after `fault_after` content chunks
    "truncate",  # ends the body cleanly after `fault_after` chunks: no [DONE] / message_stop
    "malformed",  # a chunk that is not JSON after `fault_after` chunks
    "stall",  # stops sending after `fault_after` chunks, keeps the connection open
    "stream_error",  # an in-stream error object/event after `fault_after` chunks
    "linger",  # a complete answer, but the body does not end after [DONE] / message_stop
)


@attrs.define(kw_only=True)
class Behaviour:
    """How one named upstream answers. Times are seconds."""

    text: str = "Hello from the fake upstream, streamed word by word."
    headers_delay: float = 0.0
    first_token_delay: float = 0.0
    chunk_delay: float = 0.0
    role_chunk: bool = (
        True  # OpenAI: a role-only first chunk; Anthropic: message_start, content_block_start, ping
    )
    fault: str | None = attrs.field(default=None, validator=attrs.validators.in_(FAULTS))
    fault_after: int = 1
    retry_after: str | None = "2"
    api_key: str | None = None  # expected key; None accepts any
    echo_key: bool = False  # 401 bodies quote the whole key (a careless upstream)
    model_list: tuple[str, ...] = ("fake-model-1", "fake-model-2")


@attrs.define(eq=False)
class Exchange:
    """One request the fake upstream received, and what became of it (trio clock times)."""

    name: str
    api: str  # "openai", "anthropic" or "models"
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    received_at: float
    client_port: int | None = (
        None  # the client's side of the connection (same port: a reused connection)
    )
    headers_sent_at: float | None = None
    first_token_at: float | None = None
    finished_at: float | None = None  # the whole response went out
    disconnected_at: float | None = None  # the client went away first
    chunks_sent: int = 0

    @property
    def ended(self) -> bool:
        return self.finished_at is not None or self.disconnected_at is not None


class FakeUpstream:
    """The server's state: behaviours by name, and every exchange so far."""

    def __init__(self) -> None:
        self.url = ""
        self.default = Behaviour()
        self.behaviours: dict[str, Behaviour] = {}
        self.exchanges: list[Exchange] = []
        self._changed = trio.Event()
        self.app = Starlette(
            routes=[
                Route("/{name}/v1/chat/completions", self._openai, methods=["POST"]),
                Route("/{name}/v1/messages", self._anthropic, methods=["POST"]),
                Route("/{name}/v1/models", self._models, methods=["GET"]),
                Route("/_fake/exchanges", self._exchanges, methods=["GET"]),
            ]
        )
        # trio's clock and time.monotonic() tick together; this turns one into the other.
        self.monotonic_offset = 0.0

    # ---------------------------------------------------------------- test API

    def behave(self, name: str, **settings: Any) -> Behaviour:
        """Set how upstream ``name`` answers (fields of :class:`Behaviour`)."""
        behaviour = self.behaviours[name] = Behaviour(**settings)
        return behaviour

    def openai_url(self, name: str) -> str:
        return f"{self.url}/{name}/v1"

    def anthropic_url(self, name: str) -> str:
        return f"{self.url}/{name}"

    def requests(self, name: str | None = None) -> list[Exchange]:
        return [e for e in self.exchanges if name is None or e.name == name]

    async def wait_until(self, predicate: Callable[[], Any]) -> Any:
        """Wait (no polling) until ``predicate()`` is true after some exchange changed."""
        while True:
            value = predicate()
            if value:
                return value
            await self._changed.wait()

    async def wait_ended(self, name: str, count: int = 1) -> list[Exchange]:
        """Wait until ``count`` exchanges of ``name`` have ended (finished or disconnected)."""
        return await self.wait_until(  # type: ignore[no-any-return]
            lambda: (
                [e for e in self.requests(name) if e.ended]
                if sum(e.ended for e in self.requests(name)) >= count
                else None
            )
        )

    def changed(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    # ---------------------------------------------------------------- endpoints

    def _behaviour(self, name: str) -> Behaviour:
        return self.behaviours.get(name, self.default)

    async def _record(self, request: Request, api: str) -> Exchange:
        raw = await request.body()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        exchange = Exchange(
            name=request.path_params["name"],
            api=api,
            method=request.method,
            path=request.url.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            received_at=trio.current_time(),
            client_port=request.client.port if request.client else None,
        )
        self.exchanges.append(exchange)
        self.changed()
        return exchange

    async def _openai(self, request: Request) -> Response:
        ex = await self._record(request, "openai")
        b = self._behaviour(ex.name)
        key = _bearer(ex.headers.get("authorization", ""))
        if error := _auth_error(b, key, "openai"):
            return Scripted(self, ex, b, error=error)
        if (
            not isinstance(ex.body, dict)
            or not isinstance(ex.body.get("messages"), list)
            or not ex.body.get("model")
        ):
            return Scripted(
                self,
                ex,
                b,
                error=(
                    400,
                    _openai_error("messages and model are required", "invalid_request_error"),
                ),
            )
        return Scripted(self, ex, b, fmt="openai")

    async def _anthropic(self, request: Request) -> Response:
        ex = await self._record(request, "anthropic")
        b = self._behaviour(ex.name)
        if error := _auth_error(b, ex.headers.get("x-api-key"), "anthropic"):
            return Scripted(self, ex, b, error=error)
        problem = _anthropic_problem(ex)
        if problem:
            return Scripted(
                self, ex, b, error=(400, _anthropic_error(problem, "invalid_request_error"))
            )
        return Scripted(self, ex, b, fmt="anthropic")

    async def _exchanges(self, request: Request) -> Response:
        """Every exchange so far (``?name=`` to filter), times on ``time.monotonic()``'s clock.

        For a client in another process (the benchmark) to compare the
        server's view of a request with its own, on the one clock both share.
        """
        name = request.query_params.get("name")
        offset = self.monotonic_offset

        def mono(t: float | None) -> float | None:
            return None if t is None else t + offset

        return JSONResponse(
            [
                {
                    "name": e.name,
                    "api": e.api,
                    "client_port": e.client_port,
                    "received": mono(e.received_at),
                    "headers_sent": mono(e.headers_sent_at),
                    "first_token": mono(e.first_token_at),
                    "finished": mono(e.finished_at),
                    "disconnected": mono(e.disconnected_at),
                    "chunks_sent": e.chunks_sent,
                    "user": e.body.get("user") if isinstance(e.body, dict) else None,
                }
                for e in self.requests(name)
            ]
        )

    async def _models(self, request: Request) -> Response:
        ex = await self._record(request, "models")
        b = self._behaviour(ex.name)
        anthropic = "anthropic-version" in ex.headers or "x-api-key" in ex.headers
        key = (
            ex.headers.get("x-api-key")
            if anthropic
            else _bearer(ex.headers.get("authorization", ""))
        )
        if error := _auth_error(b, key, "anthropic" if anthropic else "openai"):
            return Scripted(self, ex, b, error=error)
        if b.fault in ("server_error", "rate_limit", "hang"):
            return Scripted(
                self, ex, b, error=_fault_error(b, "anthropic" if anthropic else "openai")
            )
        ex.finished_at = trio.current_time()
        self.changed()
        if anthropic:
            data = [
                {"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"}
                for m in b.model_list
            ]
            return JSONResponse(
                {
                    "data": data,
                    "has_more": False,
                    "first_id": data[0]["id"],
                    "last_id": data[-1]["id"],
                }
            )
        return JSONResponse(
            {
                "object": "list",
                "data": [
                    {"id": m, "object": "model", "created": 0, "owned_by": "fake"}
                    for m in b.model_list
                ],
            }
        )


class Scripted(Response):
    """Plays one behaviour over ASGI while watching for the client's disconnect."""

    def __init__(
        self,
        upstream: FakeUpstream,
        exchange: Exchange,
        behaviour: Behaviour,
        *,
        fmt: str = "openai",
        error: tuple[int, dict[str, Any], dict[str, str]]
        | tuple[int, dict[str, Any]]
        | None = None,
    ) -> None:
        super().__init__()
        self.upstream = upstream
        self.exchange = exchange
        self.behaviour = behaviour
        self.fmt = fmt
        if error is None and behaviour.fault in (
            "rate_limit",
            "server_error",
            "unauthorized",
            "hang",
        ):
            error = _fault_error(behaviour, fmt)
        self.error = error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ex = self.exchange

        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                while True:
                    message = await receive()
                    # hypercorn also says http.disconnect once a complete
                    # response is out; only an earlier one is the client leaving.
                    if message["type"] == "http.disconnect" and ex.finished_at is None:
                        ex.disconnected_at = trio.current_time()
                        self.upstream.changed()
                        nursery.cancel_scope.cancel()
                        return

            nursery.start_soon(watch)
            await self._play(send)
            nursery.cancel_scope.cancel()

    async def _play(self, send: Send) -> None:
        b, ex = self.behaviour, self.exchange
        await trio.sleep(b.headers_delay)
        if b.fault == "hang" and self.error is not None and self.error[0] == 0:
            await trio.sleep_forever()
        if self.error is not None:
            status, payload, *extra = self.error
            headers = extra[0] if extra else {}
            body = json.dumps(payload).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": _headers(
                        {
                            "content-type": "application/json",
                            "content-length": str(len(body)),
                            **headers,
                        }
                    ),
                }
            )
            ex.headers_sent_at = trio.current_time()
            await self._finish(send, body)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": _headers(
                    {"content-type": "text/event-stream", "cache-control": "no-cache"}
                ),
            }
        )
        ex.headers_sent_at = trio.current_time()
        self.upstream.changed()
        script = _openai_script(ex, b) if self.fmt == "openai" else _anthropic_script(ex, b)
        async for kind, payload in script:
            if kind == "abort":  # leave without ending the body: the server drops the connection
                return
            if kind == "stall":
                await trio.sleep_forever()
            if kind == "token" and ex.first_token_at is None:
                ex.first_token_at = trio.current_time()
                self.upstream.changed()
            await send({"type": "http.response.body", "body": payload, "more_body": True})
            if kind == "token":
                ex.chunks_sent += 1
        await self._finish(send, b"")

    async def _finish(self, send: Send, body: bytes) -> None:
        """The last piece of a complete response: from here on, it is finished."""
        self.exchange.finished_at = trio.current_time()
        self.upstream.changed()
        await send({"type": "http.response.body", "body": body, "more_body": False})


# -------------------------------------------------------------------- formats


def _words(text: str) -> list[str]:
    return re.findall(r"\S+\s*", text) or [""]


def _limit(body: dict[str, Any], *keys: str) -> int | None:
    for key in keys:
        value = body.get(key)
        if isinstance(value, int) and value > 0:
            return value
    return None


async def _tokens(b: Behaviour, words: list[str]) -> AsyncIterator[tuple[int, str]]:
    """The content pieces, paced: first token delay, then the gap between chunks."""
    for i, word in enumerate(words):
        await trio.sleep(b.first_token_delay if i == 0 else b.chunk_delay)
        yield i, word


def _fault_due(b: Behaviour, i: int) -> str | None:
    if (
        b.fault in ("disconnect", "truncate", "malformed", "stall", "stream_error")
        and i == b.fault_after
    ):
        return b.fault
    return None


def _sse(data: Any, event: str | None = None) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data)
    prefix = f"event: {event}\n" if event else ""
    return f"{prefix}data: {text}\n\n".encode()


async def _openai_script(ex: Exchange, b: Behaviour) -> AsyncIterator[tuple[str, bytes]]:
    body = ex.body
    model = body["model"]
    created = int(time.time())
    words = _words(b.text)
    limit = _limit(body, "max_completion_tokens", "max_tokens")
    finish = "stop"
    if limit is not None and limit < len(words):
        words, finish = words[:limit], "length"

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        obj = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": None,
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ],
        }
        if include_usage:
            obj["usage"] = None
        return _sse(obj)

    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    if b.role_chunk:
        yield "meta", chunk({"role": "assistant", "content": ""})
    async for i, word in _tokens(b, words):
        fault = _fault_due(b, i)
        if fault:
            async for step in _fault_steps(fault, "openai"):
                yield step
            return
        yield "token", chunk({"content": word})
    if _fault_due(b, len(words)):
        async for step in _fault_steps(b.fault or "", "openai"):
            yield step
        return
    yield "meta", chunk({}, finish)
    if include_usage:
        prompt = sum(len(str(m.get("content", "")).split()) for m in body["messages"])
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": len(words),
            "total_tokens": prompt + len(words),
        }
        yield (
            "meta",
            _sse(
                {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [],
                    "usage": usage,
                }
            ),
        )
    yield "meta", _sse("[DONE]")
    if b.fault == "linger":
        yield "stall", b""


async def _anthropic_script(ex: Exchange, b: Behaviour) -> AsyncIterator[tuple[str, bytes]]:
    body = ex.body
    words = _words(b.text)
    limit = _limit(body, "max_tokens")
    stop = "end_turn"
    if limit is not None and limit < len(words):
        words, stop = words[:limit], "max_tokens"
    prompt = sum(len(str(m.get("content", "")).split()) for m in body["messages"]) + len(
        str(body.get("system", "")).split()
    )
    start = {
        "type": "message_start",
        "message": {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": body["model"],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": prompt, "output_tokens": 1},
        },
    }
    opening = [
        _sse(start, "message_start"),
        _sse(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
            "content_block_start",
        ),
        _sse({"type": "ping"}, "ping"),
    ]
    if b.role_chunk:
        for part in opening:
            yield "meta", part
    async for i, word in _tokens(b, words):
        if i == 0 and not b.role_chunk:
            for part in opening:
                yield "meta", part
        fault = _fault_due(b, i)
        if fault:
            async for step in _fault_steps(fault, "anthropic"):
                yield step
            return
        yield (
            "token",
            _sse(
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": word},
                },
                "content_block_delta",
            ),
        )
    if _fault_due(b, len(words)):
        async for step in _fault_steps(b.fault or "", "anthropic"):
            yield step
        return
    yield "meta", _sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
    yield (
        "meta",
        _sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": len(words)},
            },
            "message_delta",
        ),
    )
    yield "meta", _sse({"type": "message_stop"}, "message_stop")
    if b.fault == "linger":
        yield "stall", b""


async def _fault_steps(fault: str, fmt: str) -> AsyncIterator[tuple[str, bytes]]:
    if fault == "disconnect":
        yield "abort", b""
    elif fault == "stall":
        yield "stall", b""
    elif fault == "malformed":
        event = None if fmt == "openai" else "content_block_delta"
        yield "meta", _sse('{"choices": [{"delta": {"content": "oops', event)
    elif fault == "stream_error":
        if fmt == "openai":
            yield (
                "meta",
                _sse(
                    _openai_error(
                        "The server had an error while processing your request.", "server_error"
                    )
                ),
            )
        else:
            yield "meta", _sse(_anthropic_error("Overloaded", "overloaded_error"), "error")
    # truncate: nothing more; the body ends cleanly without the end marker


# -------------------------------------------------------------------- errors


def _openai_error(message: str, type_: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def _anthropic_error(message: str, type_: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": type_, "message": message}}


def _bearer(value: str) -> str | None:
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _auth_error(b: Behaviour, key: str | None, fmt: str) -> tuple[int, dict[str, Any]] | None:
    if b.fault != "unauthorized" and (b.api_key is None or key == b.api_key):
        return None
    shown = key if b.echo_key else (f"{key[:3]}***{key[-4:]}" if key and len(key) > 8 else "***")
    if fmt == "openai":
        if key is None:
            msg = "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth."
        else:
            msg = f"Incorrect API key provided: {shown}. You can find your API key at https://platform.openai.com/account/api-keys."
        return 401, _openai_error(msg, "invalid_request_error", "invalid_api_key")
    msg = (
        "x-api-key header is required"
        if key is None
        else f"invalid x-api-key {shown}"
        if b.echo_key
        else "invalid x-api-key"
    )
    return 401, _anthropic_error(msg, "authentication_error")


def _fault_error(b: Behaviour, fmt: str) -> tuple[int, dict[str, Any], dict[str, str]]:
    if b.fault == "hang":
        return (0, {}, {})
    if b.fault == "rate_limit":
        headers = {} if b.retry_after is None else {"retry-after": b.retry_after}
        if fmt == "openai":
            return (
                429,
                _openai_error(
                    "Rate limit reached for requests. Please try again later.",
                    "requests",
                    "rate_limit_exceeded",
                ),
                headers,
            )
        return (
            429,
            _anthropic_error(
                "Number of requests has exceeded your rate limit.", "rate_limit_error"
            ),
            headers,
        )
    if b.fault == "unauthorized":
        status, payload = _auth_error(b, None, fmt) or (401, {})
        return status, payload, {}
    if fmt == "openai":
        return (
            500,
            _openai_error(
                "The server had an error while processing your request. Sorry about that!",
                "server_error",
            ),
            {},
        )
    return 500, _anthropic_error("Internal server error", "api_error"), {}


def _anthropic_problem(ex: Exchange) -> str | None:
    if "anthropic-version" not in ex.headers:
        return "anthropic-version: header is required"
    body = ex.body
    if not isinstance(body, dict):
        return "body must be a JSON object"
    if not body.get("model"):
        return "model: Field required"
    if not isinstance(body.get("max_tokens"), int):
        return "max_tokens: Field required"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: Field required"
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ("user", "assistant"):
            role = m.get("role") if isinstance(m, dict) else None
            return f"messages.{i}.role: Input should be 'user' or 'assistant' (got {role!r}); use the top-level system parameter"
    return None


def _headers(values: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in values.items()]


# -------------------------------------------------------------------- serving


@asynccontextmanager
async def serve_fake_upstream(
    port: int = 0, *, upstream: FakeUpstream | None = None
) -> AsyncIterator[FakeUpstream]:
    """Serve a :class:`FakeUpstream` on 127.0.0.1 (an ephemeral port by default) while inside."""
    up = upstream or FakeUpstream()
    config = HypercornConfig()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.loglevel = "WARNING"
    config.graceful_timeout = 0.1
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(serve, up.app, config)  # type: ignore[arg-type]
        up.url = binds[0]
        up.monotonic_offset = time.monotonic() - trio.current_time()
        try:
            yield up
        finally:
            nursery.cancel_scope.cancel()


# Named upstreams for the standalone script (any other name gets --profile).
PROFILES: dict[str, dict[str, Any]] = {
    "instant": {},
    "prompt": {"first_token_delay": 0.02},
    "fast": {"headers_delay": 0.02, "first_token_delay": 0.05, "chunk_delay": 0.02},
    "slow": {"headers_delay": 0.1, "first_token_delay": 0.6, "chunk_delay": 0.05},
    "slow_headers": {"headers_delay": 0.4, "first_token_delay": 0.0, "chunk_delay": 0.02},
    "fast_headers": {"headers_delay": 0.0, "first_token_delay": 0.8, "chunk_delay": 0.02},
    "rate_limited": {"fault": "rate_limit", "retry_after": "3"},
    "broken": {"fault": "server_error"},
    "unauthorized": {"fault": "unauthorized"},
    "hang": {"fault": "hang"},
    "disconnect": {"fault": "disconnect", "fault_after": 2, "chunk_delay": 0.05},
    "truncated": {"fault": "truncate", "fault_after": 2},
    "malformed": {"fault": "malformed", "fault_after": 0},
    "stall": {"fault": "stall", "fault_after": 2},
}


def example_config(url: str) -> str:
    """A raceway config racing a few named upstreams of a server at ``url``."""
    return f"""\
# raceway config for the fake upstream at {url}
timeout_ms: 5000
grace_period_ms: 200
default_virtual_model: fast
providers:
  fake_fast: {{type: openai, base_url: "{url}/fast/v1", model: fake-gpt}}
  fake_slow: {{type: anthropic, base_url: "{url}/slow", api_key_env: null, model: fake-claude}}
  fake_headers: {{type: openai, base_url: "{url}/fast_headers/v1", model: fake-gpt}}
  fake_broken: {{type: openai, base_url: "{url}/broken/v1", model: fake-gpt}}
virtual_models:
  fast:
    providers: [{{name: fake_fast}}, {{name: fake_slow}}, {{name: fake_headers}}, {{name: fake_broken}}]
    strategy: first_wins
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument(
        "--profile",
        default="fast",
        choices=sorted(PROFILES),
        help="behaviour of names not listed in PROFILES",
    )
    parser.add_argument("--text", default=None, help="the answer every upstream streams")
    args = parser.parse_args(argv)

    async def run() -> None:
        up = FakeUpstream()
        extra = {"text": args.text} if args.text else {}
        up.default = Behaviour(**{**PROFILES[args.profile], **extra})
        for name, settings in PROFILES.items():
            up.behave(name, **{**settings, **extra})
        async with serve_fake_upstream(args.port, upstream=up):
            print(
                f"fake upstream on {up.url} (Ctrl-C to stop); named upstreams: {', '.join(PROFILES)}",
                file=sys.stderr,
            )
            print(example_config(up.url))
            sys.stdout.flush()
            await trio.sleep(math.inf)

    try:
        trio.run(run)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
