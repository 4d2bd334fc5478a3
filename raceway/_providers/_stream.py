"""A streaming HTTP response, read as Server-Sent Events and closed at once.

:class:`EventSource` owns one response: it reads the body's bytes through a
bounded :class:`~._sse.LineSplitter` and an :class:`~._sse.SSEDecoder`, with
transport failures classified by the provider (:meth:`HTTPProvider.translate`).

**Closing at once.** A losing or cancelled attempt is stopped by the race
driver under trio cancellation, and an ``await`` inside a cancelled scope
raises ``Cancelled`` before it does any work; a plain ``await
response.aclose()`` in a ``finally`` may therefore never reach the socket.
:class:`EventSource.aclose` closes the response in a *shielded* scope with a
short bound (:data:`CLOSE_TIMEOUT_S`); if that bound passes it closes the
connection's network stream directly. (httpcore shields its own close
today; this makes it hold for any transport, and a test uses one whose
close must await.) An unfinished HTTP/1.1 response is never returned to
the pool (httpcore closes the connection instead), so the upstream sees the
disconnect at once: tests assert < 50 ms, the benchmark measures ~1 ms.
"""

from __future__ import annotations

import collections
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager
from typing import Any, Protocol

import httpx
import trio

from .._errors import ProviderError, ProviderProtocolError
from ._sse import MAX_EVENT_CHARS, LineSplitter, ServerSentEvent, SSEDecoder


class Reader(Protocol):
    """What reading a response needs of its provider (``HTTPProvider`` is one)."""

    name: str

    def translate(self, request: httpx.Request, *, reading: bool = False) -> AbstractContextManager[None]: ...

    def translated(self, exc: Exception, request: httpx.Request, *, reading: bool = False) -> ProviderError: ...

    def parse_json(self, data: str) -> Any: ...

#: How long closing a response may take, shielded from cancellation. Closing
#: an HTTP/1.1 connection is a ``close()`` system call plus bookkeeping (well
#: under a millisecond on loopback); the bound only matters if something
#: blocks, and then the network stream is closed directly.
CLOSE_TIMEOUT_S = 0.25
#: Bytes of a whole (non-streamed) JSON answer: as much as one event may hold.
MAX_JSON_BYTES = MAX_EVENT_CHARS
#: Events read after the end marker before giving up on draining the body
#: (draining lets the connection return to the pool for keep-alive).
DRAIN_EVENTS = 16
#: How long to wait for the body to end after the end marker. Servers end it
#: in the same write as ``[DONE]``/``message_stop``, so the terminator comes
#: with the marker's packet; one that lingers is cut off rather than making a
#: finished answer wait for the idle timeout.
DRAIN_TIMEOUT_S = 0.1


class EventSource:
    """The events of one streaming HTTP response; owns the response until closed.

    Iterate it for :class:`ServerSentEvent` objects. Transport failures while
    reading come out classified (:meth:`HTTPProvider.translate`); a line or an
    event past its bound is a :class:`~raceway.ProviderProtocolError`. Close it
    with :meth:`aclose` (``async with`` does), which is safe under cancellation.
    """

    def __init__(self, response: httpx.Response, provider: Reader) -> None:
        self.response = response
        self._provider = provider
        self._chunks: AsyncIterator[bytes] = response.aiter_bytes()
        self._lines = LineSplitter(provider=provider.name)
        self._decoder = SSEDecoder(provider=provider.name)
        self._ready: collections.deque[str] = collections.deque()
        self._ended = False

    def __aiter__(self) -> EventSource:
        return self

    async def __anext__(self) -> ServerSentEvent:
        decode = self._decoder.decode
        while True:
            while self._ready:
                event = decode(self._ready.popleft())
                if event is not None:
                    return event
            if self._ended:
                raise StopAsyncIteration
            try:  # no context manager per read: this is every chunk's path
                data = await self._chunks.__anext__()
            except StopAsyncIteration:
                self._ended = True
                self._ready.extend(self._lines.flush())
                continue
            except httpx.HTTPError as exc:
                raise self._provider.translated(exc, self.response.request, reading=True) from exc
            self._ready.extend(self._lines.feed(data))

    async def read_json(self) -> Any:
        """The whole body parsed as JSON (a server that ignored ``stream``), bounded."""
        body = bytearray()
        with self._provider.translate(self.response.request, reading=True):
            async for part in self._chunks:
                body += part
                if len(body) > MAX_JSON_BYTES:
                    raise ProviderProtocolError(
                        f"a JSON answer exceeds {MAX_JSON_BYTES} bytes", self._provider.name
                    )
        return self._provider.parse_json(body.decode("utf-8", "replace"))

    async def drain(self) -> None:
        """Read what is left after the end marker so the connection can be reused.

        Servers end the body right after their end marker, so this normally
        reads nothing but the chunked terminator; a server that keeps talking
        is cut off after :data:`DRAIN_EVENTS` events or :data:`DRAIN_TIMEOUT_S`
        (the close then drops the connection instead of pooling it).
        """
        with trio.move_on_after(DRAIN_TIMEOUT_S):
            try:
                for _ in range(DRAIN_EVENTS):
                    await self.__anext__()
            except (StopAsyncIteration, ProviderError):
                pass

    async def aclose(self) -> None:
        await aclose_response(self.response, self._chunks)

    async def __aenter__(self) -> EventSource:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


async def aclose_response(response: httpx.Response, *iterators: AsyncIterator[Any]) -> None:
    """Close ``response`` (and the iterators reading it) now, even under cancellation.

    Shielded, bounded by :data:`CLOSE_TIMEOUT_S`. If the bound passes, the
    connection's network stream is closed directly: the upstream must see the
    disconnect, whatever state the connection pool is in.
    """
    with trio.CancelScope(shield=True, deadline=trio.current_time() + CLOSE_TIMEOUT_S) as scope:
        try:
            await response.aclose()
            for it in iterators:
                aclose = getattr(it, "aclose", None)
                if aclose is not None:
                    await aclose()
        except Exception:
            pass  # a connection that breaks while closing is closed
    if scope.cancelled_caught:
        stream = response.extensions.get("network_stream")
        if stream is not None:
            with trio.CancelScope(shield=True, deadline=trio.current_time() + CLOSE_TIMEOUT_S):
                try:
                    await stream.aclose()
                except Exception:
                    pass


