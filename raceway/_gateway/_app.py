"""The gateway's ASGI application: routes, gateway keys, and one race per request.

A request to ``/v1/chat/completions`` or ``/v1/messages`` is read (under
``serve.max_body_bytes``), checked, translated into the engine's
OpenAI-format messages, and raced: a stream as ``engine.stream()`` races, a
whole answer as ``engine.complete()`` does (``Engine.open_race(hold=True)``:
nothing is committed before the end, so a winner that breaks midway is
replaced). What happens next is decided by the race, not by the first byte:

* until the race is decided nothing is sent, so a race that fails gets its
  own status — 502 (every provider failed; each one's reason, redacted) or
  504 (the deadline) — in the caller's API shape;
* once decided, a stream's headers go out (``x-raceway-race-id``,
  ``x-raceway-winner``, ``x-raceway-ttft-ms``, ``x-raceway-strategy``) with
  the winner's first chunk; a whole answer waits for the end;
* a winner that breaks after the stream began ends it with the format's own
  error event, never a silent truncation.

While a race runs, a second task waits for the client's ``http.disconnect``;
when it comes it cancels the request's nursery, which leaves the race's
context: the race is abandoned and every attempt is
cancelled at once, closing its upstream connection.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import trio
from attrs import frozen

from .._chunk import Chunk
from .._errors import (
    AllProvidersFailedError,
    NoSuchModelError,
    RaceTimeoutError,
    StrategyError,
    StreamInterruptedError,
)
from . import _anthropic, _openai
from ._exchange import (
    Answer,
    ApiError,
    ClientGone,
    Exchange,
    Final,
    Headers,
    Outbox,
    bad_request,
    header,
)
from ._fields import json_body
from ._health import HealthCache
from ._metrics import CONTENT_TYPE, GatewayMetrics
from ._openai import ChatRequest

if TYPE_CHECKING:
    from .._config import ServeConfig
    from .._engine import Engine
    from .._race import Race

log = logging.getLogger("raceway.gateway")

#: After a shutdown cancels a stream, how long its closing error event may take.
GOODBYE_TIMEOUT_S = 0.5
_KEYLIKE = re.compile(r"(?:\bsk-[A-Za-z0-9_\-*.]{3,}|\bBearer\s+\S+)")


@frozen
class Format:
    """One API's way of answering."""

    name: str
    error: Callable[[ApiError, str | None], dict[str, Any]]
    whole: Callable[[Final, str, int], dict[str, Any]]
    stream: Callable[[str, str, int, bool], Any]


OPENAI = Format(
    "openai", lambda err, _: _openai.error_body(err), _openai.completion, _openai.ChatStream
)
ANTHROPIC = Format(
    "anthropic",
    _anthropic.error_body,
    lambda final, race_id, _: _anthropic.message(final, race_id),
    lambda race_id, model, _, __: _anthropic.MessageStream(race_id, model),
)


class GatewayApp:
    """The ASGI app of ``raceway serve`` for one engine.

    ``keys`` are SHA-256 digests of the gateway keys (empty: no keys needed).
    ``nursery`` (set by ``serve_gateway``) runs work no single request owns.
    """

    def __init__(self, engine: Engine, settings: ServeConfig, keys: tuple[bytes, ...] = ()) -> None:
        self.engine = engine
        self.limit = settings.max_body_bytes
        self.keys = keys
        self.metrics = GatewayMetrics(engine)
        self.health = HealthCache(engine, self.redact)
        self.created = int(time.time())
        self._strategies: dict[str | None, str] = {}
        self._routes: dict[str, tuple[tuple[str, ...], Callable[[Exchange], Awaitable[None]]]] = {
            "/v1/chat/completions": (("POST",), self._chat),
            "/v1/messages": (("POST",), self._messages),
            "/v1/models": (("GET", "HEAD"), self._models),
            "/healthz": (("GET", "HEAD"), self._healthz),
            "/metrics": (("GET", "HEAD"), self._metrics),
        }

    @property
    def nursery(self) -> trio.Nursery | None:
        return self.health.nursery

    @nursery.setter
    def nursery(self, nursery: trio.Nursery | None) -> None:
        self.health.nursery = nursery

    # ------------------------------------------------------------ ASGI

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    async def _http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path: str = scope["path"]
        route = path if path in self._routes else "/v1/models/{id}" if path.startswith("/v1/models/") else "other"
        metrics = self.metrics
        answered = metrics.requests.labels

        def count(status: int) -> None:
            answered(route, str(status)).inc()

        ex = Exchange(scope, receive, send, count)
        fmt = ANTHROPIC if path == "/v1/messages" or "anthropic-version" in ex.headers else OPENAI
        metrics.requests_in_flight.inc()
        try:
            await self._dispatch(ex, fmt)
        except ClientGone:
            pass
        except ApiError as err:
            await self._fail(ex, err, fmt)
        except Exception:
            log.exception("raceway serve: %s %s failed", ex.method, path)
            if not ex.started:
                await self._fail(ex, ApiError(500, "internal error in the raceway gateway", "internal"), fmt)
        finally:
            metrics.requests_in_flight.dec()
            if not ex.started:
                count(499)  # (nginx's "client closed request": no answer went out)

    async def _dispatch(self, ex: Exchange, fmt: Format) -> None:
        path = ex.path
        if path.startswith("/v1/") and self.keys:
            self._authorize(ex)
        entry = self._routes.get(path)
        if entry is None and path.startswith("/v1/models/"):
            entry = (("GET", "HEAD"), self._model)
        if entry is None:
            known = ", ".join(self._routes)
            raise ApiError(404, f"Unknown request URL: {ex.method} {path} (routes: {known})", "not_found", code="unknown_url")
        methods, handler = entry
        if ex.method not in methods:
            raise ApiError(
                405, f"{ex.method} is not allowed on {path}; use {methods[0]}", "method_not_allowed",
                headers=[header("allow", ", ".join(methods))],
            )
        await handler(ex)

    def _authorize(self, ex: Exchange) -> None:
        """A 401 unless the request carries a gateway key (Bearer or x-api-key)."""
        offered = []
        scheme, _, token = ex.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            offered.append(token.strip())
        if ex.headers.get("x-api-key", "").strip():
            offered.append(ex.headers["x-api-key"].strip())
        if not offered:
            raise ApiError(401, "Missing gateway key: send 'Authorization: Bearer KEY' or 'x-api-key: KEY'.", "authentication")
        ok = False
        for token in offered:
            digest = hashlib.sha256(token.encode()).digest()
            for key in self.keys:  # every key, every time: no early exit to time
                ok |= hmac.compare_digest(digest, key)
        if not ok:
            raise ApiError(401, "Invalid gateway key.", "authentication")

    async def _fail(self, ex: Exchange, err: ApiError, fmt: Format) -> None:
        if ex.started:
            return
        race_id = next((v.decode() for k, v in err.headers if k == b"x-raceway-race-id"), None)
        await ex.respond(err.status, json.dumps(fmt.error(err, race_id)).encode(), err.headers)

    def redact(self, text: str) -> str:
        """``text`` with anything key-like removed (providers redact their own keys already)."""
        return _KEYLIKE.sub("[redacted]", text)

    # ------------------------------------------------------------ plain endpoints

    def _model_entries(self) -> list[dict[str, Any]]:
        created_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.created))
        return [
            {
                # OpenAI's model object, with Anthropic's fields beside it: both SDKs read it.
                "id": m.id, "object": "model", "created": self.created, "owned_by": "raceway",
                "type": "model", "display_name": m.display_name, "created_at": created_at,
                "description": m.description, "strategy": m.strategy, "providers": list(m.providers),
            }
            for m in self.engine.models()
        ]

    async def _models(self, ex: Exchange) -> None:
        data = self._model_entries()
        await ex.respond_json(
            200,
            {"object": "list", "data": data, "has_more": False,
             "first_id": data[0]["id"] if data else None, "last_id": data[-1]["id"] if data else None},
        )

    async def _model(self, ex: Exchange) -> None:
        wanted = ex.path.removeprefix("/v1/models/")
        entries = self._model_entries()
        for entry in entries:
            if entry["id"] == wanted:
                await ex.respond_json(200, entry)
                return
        known = ", ".join(e["id"] for e in entries)
        raise ApiError(404, f"unknown virtual model {wanted!r} (known: {known})", "not_found", param="model")

    async def _healthz(self, ex: Exchange) -> None:
        report = await self.health.get()
        providers = {
            name: {"healthy": True} if error is None else {"healthy": False, "error": error}
            for name, error in report.providers.items()
        }
        await ex.respond_json(200 if report.ok else 503, {"status": "ok" if report.ok else "unhealthy", "providers": providers})

    async def _metrics(self, ex: Exchange) -> None:
        await ex.respond(200, self.metrics.render(), [], (b"content-type", CONTENT_TYPE.encode()))

    # ------------------------------------------------------------ races

    async def _chat(self, ex: Exchange) -> None:
        request = _openai.parse_chat(json_body(await ex.body(self.limit)))
        await self._serve_race(ex, request, OPENAI)

    async def _messages(self, ex: Exchange) -> None:
        request = _anthropic.parse_messages(json_body(await ex.body(self.limit)))
        await self._serve_race(ex, request, ANTHROPIC)

    async def _serve_race(self, ex: Exchange, request: ChatRequest, fmt: Format) -> None:
        """Race for ``request`` while watching for the client to leave."""
        async with trio.open_nursery() as nursery:
            ex.tasks = nursery
            nursery.start_soon(ex.watch_disconnect, nursery.cancel_scope.cancel)
            try:
                await self._race(ex, request, fmt)
            except ApiError as err:
                await self._fail(ex, err, fmt)
            finally:
                nursery.cancel_scope.cancel()

    def _strategy(self, model: str | None) -> str:
        strategy = self._strategies.get(model)
        if strategy is None:
            strategy = self.engine.config.resolve(model).strategy
            if len(self._strategies) < 1024:  # (legacy mode takes any model name: bounded)
                self._strategies[model] = strategy
        return strategy

    async def _race(self, ex: Exchange, request: ChatRequest, fmt: Format) -> None:
        try:
            # A one-piece answer is complete()'s race: a winner that breaks is replaced.
            context = self.engine.open_race(request.messages, request.model, request.params, hold=not request.stream)
            strategy = self._strategy(request.model)
        except NoSuchModelError as exc:
            raise ApiError(404, str(exc), "not_found", param="model") from None
        except (ValueError, TypeError) as exc:
            raise bad_request("messages", str(exc)) from None
        entered = False
        try:
            async with context as race:
                entered = True
                await self._answer(ex, request, fmt, race, strategy)
        except (ValueError, TypeError) as exc:  # the engine's own check of the messages
            if entered:
                raise
            raise bad_request("messages", str(exc)) from None

    async def _answer(self, ex: Exchange, request: ChatRequest, fmt: Format, race: Race, strategy: str) -> None:
        t0 = trio.current_time()
        headers = [
            header("x-raceway-race-id", race.race_id),
            header("x-raceway-strategy", strategy),
            header("x-request-id", race.race_id),
            header("request-id", race.race_id),
        ]
        if not request.stream:
            await self._whole(ex, fmt, race, headers)
            return
        first: Chunk | None
        try:
            first = await race.__anext__()
        except StopAsyncIteration:
            first = None
        except (AllProvidersFailedError, StreamInterruptedError, StrategyError) as exc:
            raise self._race_error(exc, headers) from None
        headers.append(header("x-raceway-winner", f"{race.provider}/{race.model}"))
        headers.append(header("x-raceway-ttft-ms", f"{(trio.current_time() - t0) * 1000:.1f}"))
        await self._stream(ex, request, fmt, race, first, headers)

    def _race_error(self, exc: Exception, headers: Headers) -> ApiError:
        """A race that ended without an answer, as the API's error (redacted)."""
        if isinstance(exc, RaceTimeoutError):
            return ApiError(504, self.redact(str(exc)), "timeout", headers=headers)
        if isinstance(exc, AllProvidersFailedError):
            return ApiError(502, self.redact(str(exc)), "all_providers_failed", headers=headers)
        if isinstance(exc, StreamInterruptedError):
            return ApiError(502, self.redact(str(exc)), "interrupted", headers=headers)
        return ApiError(500, self.redact(str(exc)), "internal", headers=headers)

    async def _whole(self, ex: Exchange, fmt: Format, race: Race, headers: Headers) -> None:
        """A one-piece answer: the race read to its end, failing over while it can (as ``complete()``)."""
        try:
            result = await race.run_to_end()
        except (AllProvidersFailedError, StreamInterruptedError, StrategyError) as exc:
            raise self._race_error(exc, headers) from None
        headers.append(header("x-raceway-winner", f"{result.provider}/{result.model}"))
        headers.append(header("x-raceway-ttft-ms", f"{result.ttft_ms:.1f}"))
        body = fmt.whole(Answer().final(result), race.race_id, int(time.time()))
        await ex.respond(200, json.dumps(body).encode(), headers)

    async def _stream(
        self, ex: Exchange, request: ChatRequest, fmt: Format, race: Race, first: Chunk | None, headers: Headers
    ) -> None:
        encoder = fmt.stream(race.race_id, race.model or "", int(time.time()), request.include_usage)
        await ex.start_stream(headers)
        outbox = Outbox()
        assert ex.tasks is not None
        ex.tasks.start_soon(outbox.write_to, ex)
        try:
            try:
                await outbox.put(encoder.start(first) + (encoder.chunk(first) if first is not None else b""))
                async for chunk in race:
                    data = encoder.chunk(chunk)
                    if data:
                        await outbox.put(data)
                await outbox.put(encoder.end(race.result))
            except StreamInterruptedError as exc:
                await outbox.put(encoder.error(ApiError(502, self.redact(str(exc)), "interrupted")))
            outbox.close()
            await outbox.done.wait()
            await ex.write(b"", more=False)
        except trio.Cancelled:
            if not ex.disconnected:  # the gateway is stopping: say so, do not just stop
                with trio.CancelScope(shield=True, deadline=trio.current_time() + GOODBYE_TIMEOUT_S):
                    try:
                        goodbye = ApiError(503, "the raceway gateway is shutting down", "interrupted")
                        await ex.write(outbox.take() + encoder.error(goodbye), more=False)
                    except Exception:
                        pass
            raise
