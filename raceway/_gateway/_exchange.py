"""One HTTP request as the gateway sees it: ASGI in, bytes out, errors as values.

The gateway is a small raw ASGI application (no framework between a chunk
and the socket). This module owns the plumbing every endpoint shares:

* :class:`Exchange` wraps one request's ``scope``/``receive``/``send``: its
  headers, its body (read under a byte limit), a whole response, or a
  streamed one (headers once, then body pieces). ``send`` blocks while the
  client's socket is full, so a slow client holds back only its own race
  (the race's winner channel is bounded, then the upstream read pauses).
* :class:`ApiError` is an error answer: a status, a message and a neutral
  ``kind`` that each API format turns into its own error shape.
* :class:`Answer` gathers a streamed answer's pieces (text, reasoning, tool
  calls, usage, finish reason) for formats that answer in one piece.
"""

from __future__ import annotations

import json
from typing import Any

import trio

from .._chunk import Chunk, ToolCall, Usage
from .._result import RaceResult

Headers = list[tuple[bytes, bytes]]

#: How many bytes of a stream may wait for the client before the race's reader
#: waits too (then the race's own bounded channel fills and the upstream read
#: pauses): a slow client holds back only its own race.
OUTBOX_LIMIT = 64 * 1024
#: How much of an over-long body is still read (and dropped) before the 413
#: goes out, so a client that is still uploading sees the answer rather than
#: a reset connection.
OVERFLOW_DRAIN_BYTES = 1 << 20

JSON_TYPE = (b"content-type", b"application/json")
SSE_HEADERS: Headers = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # proxies in front must not hold the stream back
]


class ApiError(Exception):
    """A request answered with an error status.

    ``kind`` is one of ``invalid_request`` (400), ``authentication`` (401),
    ``not_found`` (404), ``method_not_allowed`` (405), ``request_too_large``
    (413), ``internal`` (500), ``all_providers_failed`` (502), ``timeout``
    (504) and ``interrupted`` (a stream that broke after it began). ``param``
    names the offending request field, when there is one; ``headers`` go out
    with the answer (a failed race's ``x-raceway-*``).
    """

    def __init__(
        self,
        status: int,
        message: str,
        kind: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: Headers | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        self.param = param
        self.code = code
        self.headers = headers or []


def bad_request(param: str | None, message: str) -> ApiError:
    """A 400 naming the field ``param``."""
    return ApiError(400, message, "invalid_request", param=param)


class ClientGone(Exception):
    """The client disconnected while the gateway was reading its request."""


class Exchange:
    """One HTTP request/response over ASGI."""

    __slots__ = (
        "disconnected", "headers", "on_response", "path", "receive", "scope", "send", "started", "status", "tasks",
    )

    def __init__(self, scope: dict[str, Any], receive: Any, send: Any, on_response: Any = None) -> None:
        self.scope = scope
        self.receive = receive
        self.send = send
        self.path: str = scope["path"]
        # ASGI header names are lower-case already.
        self.headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        self.started = False
        self.disconnected = False
        self.status = 0
        self.on_response = on_response  # called with the status as a response starts (metrics)
        self.tasks: trio.Nursery | None = None  # the request's nursery, while a race runs

    @property
    def method(self) -> str:
        method: str = self.scope["method"]
        return method

    async def body(self, limit: int) -> bytes:
        """The whole request body; a 413 :class:`ApiError` past ``limit`` bytes."""
        declared = self.headers.get("content-length", "")
        too_large = ApiError(
            413, f"the request body is larger than {limit} bytes (serve.max_body_bytes)", "request_too_large"
        )
        if declared.isdigit() and int(declared) > limit + OVERFLOW_DRAIN_BYTES:
            raise too_large
        parts: list[bytes] = []
        size = 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                self.disconnected = True
                raise ClientGone
            piece = message.get("body", b"")
            size += len(piece)
            if size <= limit:
                parts.append(piece)
            elif size > limit + OVERFLOW_DRAIN_BYTES:
                raise too_large
            if not message.get("more_body", False):
                break
        if size > limit:
            raise too_large
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def watch_disconnect(self, on_gone: Any) -> None:
        """After the body was read: wait for the client to leave, then call ``on_gone()``."""
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                self.disconnected = True
                on_gone()
                return

    async def respond(self, status: int, body: bytes, headers: Headers, content_type: tuple[bytes, bytes] = JSON_TYPE) -> None:
        """A whole response."""
        self.started = True
        self.status = status
        if self.on_response is not None:
            self.on_response(status)
        await self.send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [content_type, (b"content-length", str(len(body)).encode()), *headers],
            }
        )
        await self.send({"type": "http.response.body", "body": body})

    async def respond_json(self, status: int, data: Any, headers: Headers | None = None) -> None:
        await self.respond(status, json.dumps(data).encode(), headers or [])

    async def start_stream(self, headers: Headers) -> None:
        """A 200 event stream's headers; :meth:`write` sends its pieces."""
        self.started = True
        self.status = 200
        if self.on_response is not None:
            self.on_response(200)
        await self.send({"type": "http.response.start", "status": 200, "headers": [*SSE_HEADERS, *headers]})

    async def write(self, data: bytes, *, more: bool = True) -> None:
        await self.send({"type": "http.response.body", "body": data, "more_body": more})


class Outbox:
    """A stream's bytes on their way to the client, in as few writes as possible.

    Every write to a socket is a system call, and on a busy machine the
    system call, not Python, is what a streamed chunk costs. So the race's
    chunks are put here as they come, and one writer task sends whatever has
    gathered each time its previous write is done: the first chunk goes out
    at once, and a burst that arrives while a write is in flight leaves in
    the next one. At most :data:`OUTBOX_LIMIT` bytes wait; past that,
    :meth:`put` waits for the writer.
    """

    __slots__ = ("_closed", "_data", "_ready", "_room", "done")

    def __init__(self) -> None:
        self._data = bytearray()
        self._closed = False
        self._ready = trio.Event()
        self._room = trio.Event()
        self.done = trio.Event()

    async def put(self, data: bytes) -> None:
        while len(self._data) >= OUTBOX_LIMIT:
            await self._room.wait()
        self._data += data
        self._ready.set()

    def close(self) -> None:
        """Nothing more will be put: the writer ends once all is written."""
        self._closed = True
        self._ready.set()

    def take(self) -> bytes:
        """Everything waiting, now (the writer's, or a last word's)."""
        data = bytes(self._data)
        self._data.clear()
        self._room.set()
        self._room = trio.Event()
        return data

    async def write_to(self, ex: Exchange) -> None:
        """The writer task: send what gathers until closed, then set :attr:`done`."""
        try:
            while True:
                if not self._data:
                    if self._closed:
                        return
                    await self._ready.wait()
                    self._ready = trio.Event()
                    continue
                await ex.write(self.take())
        finally:
            self.done.set()


def header(name: str, value: str) -> tuple[bytes, bytes]:
    """One response header; values are made safe for the wire (no line breaks)."""
    return name.encode("latin-1"), value.replace("\r", " ").replace("\n", " ").encode("latin-1", "replace")


class Answer:
    """A streamed answer's pieces, gathered for a one-piece response."""

    __slots__ = ("calls", "finish_reason", "reasoning", "text", "usage")

    def __init__(self) -> None:
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.calls: dict[int, list[str]] = {}  # index -> [id, name, arguments...]
        self.usage: Usage | None = None
        self.finish_reason: str | None = None

    def add(self, chunk: Chunk) -> None:
        if chunk.text:
            self.text.append(chunk.text)
        if chunk.reasoning:
            self.reasoning.append(chunk.reasoning)
        for delta in chunk.tool_calls:
            call = self.calls.setdefault(delta.index, ["", ""])
            if delta.id:
                call[0] = delta.id
            if delta.name:
                call[1] = delta.name
            if delta.arguments:
                call.append(delta.arguments)
        if chunk.usage is not None:
            self.usage = chunk.usage
        if chunk.finish_reason is not None:
            self.finish_reason = chunk.finish_reason

    def final(self, result: RaceResult) -> Final:
        """What to answer: the race's result, completed by what the chunks carried."""
        calls = result.tool_calls or tuple(
            ToolCall(id=c[0], name=c[1], arguments="".join(c[2:])) for _, c in sorted(self.calls.items())
        )
        finish = result.finish_reason or self.finish_reason or ("tool_calls" if calls else "stop")
        return Final(
            text=result.text or "".join(self.text),
            reasoning=result.reasoning or "".join(self.reasoning),
            tool_calls=calls,
            usage=result.usage or self.usage,
            finish_reason=finish,
            model=result.model,
        )


class Final:
    """A whole answer, ready to be written in either API's format."""

    __slots__ = ("finish_reason", "model", "reasoning", "text", "tool_calls", "usage")

    def __init__(
        self,
        *,
        text: str,
        reasoning: str,
        tool_calls: tuple[ToolCall, ...],
        usage: Usage | None,
        finish_reason: str,
        model: str,
    ) -> None:
        self.text = text
        self.reasoning = reasoning
        self.tool_calls = tool_calls
        self.usage = usage
        self.finish_reason = finish_reason
        self.model = model
