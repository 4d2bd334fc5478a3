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

Each name follows a :class:`Behaviour`: what it answers (text, reasoning,
tool calls — parallel ones too, with index 0 reused if asked), latency per
phase (before the headers, before the first step, before the first visible
step after the reasoning, between chunks), a fault (429 with retry-after,
500, 404, 401, never answering, disconnecting or stalling mid-stream, a
truncated stream, a malformed or unexpected event, an error event, a line
that never ends; ``echo_headers`` makes every fault text quote the request's
headers, as a careless upstream would), whether a role-only chunk comes
first. :meth:`FakeUpstream.script` picks the behaviour per request instead (a
tool call first, then text once the tool result comes back). Requests are
checked as the real APIs check them (``fake_wire``: tool messages answer
tool calls, image blocks have valid sources, ...) and refused with a 400
otherwise. Every request is recorded as an :class:`Exchange` (headers, JSON
body, when the headers, the first reasoning and the first token went out,
when the client disconnected, bytes sent), and tests wait for facts with
:meth:`FakeUpstream.wait_until` instead of sleeping.

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
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import trio
from fake_checks import anthropic_problem, openai_problem
from fake_streams import anthropic_script, openai_script
from fake_wire import (
    FAULTS,
    STATUS_FAULTS,
    Behaviour,
    Exchange,
    Script,
    anthropic_error,
    auth_error,
    bearer,
    fault_error,
    openai_error,
)
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

__all__ = ["FAULTS", "Behaviour", "Exchange", "FakeUpstream", "serve_fake_upstream"]

#: Bytes of each piece of a line that never ends (``endless_line``).
ENDLESS_PIECE = b"x" * 65536


class FakeUpstream:
    """The server's state: behaviours by name, and every exchange so far."""

    def __init__(self) -> None:
        self.url = ""
        self.default = Behaviour()
        self.behaviours: dict[str, Behaviour] = {}
        self.scripts: dict[str, Script] = {}
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

    def script(self, name: str, choose: Script) -> None:
        """Pick upstream ``name``'s behaviour per request: ``choose(exchange)``.

        ``choose`` sees the recorded request (its JSON body) and returns the
        :class:`Behaviour` to answer it with, or ``None`` for the one set by
        :meth:`behave` (or the default).
        """
        self.scripts[name] = choose

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

    def _behaviour(self, ex: Exchange) -> Behaviour:
        choose = self.scripts.get(ex.name)
        chosen = None if choose is None else choose(ex)
        return chosen or self.behaviours.get(ex.name, self.default)

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
        b = self._behaviour(ex)
        key = bearer(ex.headers.get("authorization", ""))
        if error := auth_error(b, key, "openai"):
            return Scripted(self, ex, b, error=error)
        if problem := openai_problem(ex.body):
            return Scripted(
                self, ex, b, error=(400, openai_error(problem, "invalid_request_error"))
            )
        return Scripted(self, ex, b, fmt="openai")

    async def _anthropic(self, request: Request) -> Response:
        ex = await self._record(request, "anthropic")
        b = self._behaviour(ex)
        if error := auth_error(b, ex.headers.get("x-api-key"), "anthropic"):
            return Scripted(self, ex, b, error=error)
        if problem := anthropic_problem(ex.headers, ex.body):
            return Scripted(
                self, ex, b, error=(400, anthropic_error(problem, "invalid_request_error"))
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
        b = self._behaviour(ex)
        anthropic = "anthropic-version" in ex.headers or "x-api-key" in ex.headers
        key = (
            ex.headers.get("x-api-key")
            if anthropic
            else bearer(ex.headers.get("authorization", ""))
        )
        if error := auth_error(b, key, "anthropic" if anthropic else "openai"):
            return Scripted(self, ex, b, error=error)
        if b.fault in ("server_error", "rate_limit", "hang"):
            return Scripted(
                self, ex, b, error=fault_error(b, "anthropic" if anthropic else "openai", ex)
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
        if error is None and behaviour.fault in STATUS_FAULTS:
            error = fault_error(behaviour, fmt, exchange)
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
        script = openai_script(ex, b) if self.fmt == "openai" else anthropic_script(ex, b)
        async for kind, payload in script:
            if kind == "abort":  # leave without ending the body: the server drops the connection
                return
            if kind == "stall":
                await trio.sleep_forever()
            if kind == "endless":
                await self._endless(send)
            if kind == "token" and ex.first_token_at is None:
                ex.first_token_at = trio.current_time()
                self.upstream.changed()
            if kind == "reasoning" and ex.first_reasoning_at is None:
                ex.first_reasoning_at = trio.current_time()
                self.upstream.changed()
            await self._send(send, payload)
            if kind in ("token", "reasoning"):
                ex.chunks_sent += 1
        await self._finish(send, b"")

    async def _send(self, send: Send, payload: bytes) -> None:
        await send({"type": "http.response.body", "body": payload, "more_body": True})
        self.exchange.bytes_sent += len(payload)

    async def _endless(self, send: Send) -> None:
        """One ``data:`` line that never ends, until the client goes away."""
        await self._send(send, b"data: ")
        while True:
            await self._send(send, ENDLESS_PIECE)
            self.upstream.changed()
            await trio.sleep(0)

    async def _finish(self, send: Send, body: bytes) -> None:
        """The last piece of a complete response: from here on, it is finished."""
        self.exchange.finished_at = trio.current_time()
        self.upstream.changed()
        await send({"type": "http.response.body", "body": body, "more_body": False})


# -------------------------------------------------------------------- serving


def _headers(values: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in values.items()]


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
    "tool": {"text": "", "tool_calls": ({"name": "get_weather", "arguments": '{"city": "Paris"}'},)},
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
