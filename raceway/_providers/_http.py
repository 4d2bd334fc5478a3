"""What the network providers share: HTTP calls, Server-Sent Events, errors, closing.

This module owns four things the ``openai`` and ``anthropic`` types both need,
so that each of those modules holds only its wire format:

* **Server-Sent Events.** :class:`SSEDecoder` is a small line-based decoder
  that follows the WHATWG ``text/event-stream`` rules (``data`` lines joined
  with ``\\n``, ``event``/``id``/``retry`` fields, ``:`` comments, one optional
  space after the colon, an event dispatched on a blank line, an unfinished
  event at end of stream discarded). It sits on httpx's ``aiter_lines``, which
  already splits on ``\\n``, ``\\r\\n`` and ``\\r`` across chunk boundaries and
  decodes UTF-8 incrementally, so the decoder never sees a split line. A
  library (httpx-sse) would do the same in a few more lines of glue; this one
  is forty lines with a size bound, tested on its own.

* **Errors, classified.** Every failure leaves this module as a
  :class:`~raceway.ProviderError` kind with a one-line message that names the
  upstream's host and, for HTTP errors, the upstream's own error message
  (``error.message`` of OpenAI and Anthropic bodies). 429 becomes
  :class:`~raceway.RateLimitedError` with ``retry_after`` parsed from
  ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date); 401/403
  become :class:`~raceway.AuthenticationError` naming the variable to set.
  Messages pass through :meth:`HTTPProvider.redact`, which removes the API key
  and the configured header values: an upstream that echoes the key back
  (``Incorrect API key provided: sk-...``) must not put it in a log or event.

* **Closing at once.** A losing or cancelled attempt is stopped by the race
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

* **One pooled client.** :class:`HTTPProvider` takes the engine's shared
  ``httpx.AsyncClient`` from :class:`~raceway._providers.ProviderContext`;
  built without one (a provider used on its own) it makes its own, with the
  ``transport`` given, and closes it in :meth:`HTTPProvider.aclose`.
"""

from __future__ import annotations

import email.utils
import json
import os
import re
import socket
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import httpx
import trio
from attrs import frozen

from .._errors import (
    AuthenticationError,
    MissingAPIKeyError,
    ProviderConnectionError,
    ProviderError,
    ProviderHTTPError,
    ProviderProtocolError,
    ProviderTimeoutError,
    RateLimitedError,
)
from ._base import Provider

if TYPE_CHECKING:
    from . import ProviderContext

#: How long closing a response may take, shielded from cancellation. Closing
#: an HTTP/1.1 connection is a ``close()`` system call plus bookkeeping (well
#: under a millisecond on loopback); the bound only matters if something
#: blocks, and then the network stream is closed directly.
CLOSE_TIMEOUT_S = 0.25
#: Bytes of an error response read for its message; error bodies are small,
#: and a misbehaving upstream must not make us read megabytes to fail.
ERROR_BODY_LIMIT = 64 * 1024
#: Characters of the upstream's error message kept in ours (one line).
MESSAGE_LIMIT = 240
#: Characters of one event's ``data``: a chat chunk is a few hundred; this
#: bound stops a stream with no blank lines from growing memory forever.
MAX_EVENT_CHARS = 4 * 1024 * 1024
#: Events read after the end marker before giving up on draining the body
#: (draining lets the connection return to the pool for keep-alive).
DRAIN_EVENTS = 16
#: How long to wait for the body to end after the end marker. Servers end it
#: in the same write as ``[DONE]``/``message_stop``, so the terminator comes
#: with the marker's packet; one that lingers is cut off rather than making a
#: finished answer wait for the idle timeout.
DRAIN_TIMEOUT_S = 0.1

# Things that look like keys in upstream messages: OpenAI-style secret keys
# (also partly masked ones) and bearer tokens.
_KEYLIKE = re.compile(r"(?:\bsk-[A-Za-z0-9_\-*.]{3,}|\bBearer\s+\S+)")


# ------------------------------------------------------------ Server-Sent Events


@frozen(slots=True)
class ServerSentEvent:
    """One dispatched event: its type (``message`` by default) and its data."""

    event: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Turns ``text/event-stream`` lines into events, one line at a time.

    Feed each line (without its line ending) to :meth:`decode`; it returns an
    event when a blank line completes one. Whatever is pending when the stream
    ends is dropped, as the specification says.
    """

    def __init__(self, *, max_data_chars: int = MAX_EVENT_CHARS) -> None:
        self._event = ""
        self._data: list[str] = []
        self._size = 0
        self._last_id: str | None = None
        self._retry: int | None = None
        self._first = True
        self._max = max_data_chars

    def decode(self, line: str) -> ServerSentEvent | None:
        if self._first:
            self._first = False
            line = line.removeprefix("\ufeff")
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment (often a keep-alive)
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
            self._size += len(value) + 1
            if self._size > self._max:
                raise ProviderProtocolError(
                    f"an event in the stream exceeds {self._max} characters with no end"
                )
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._last_id = value
        elif name == "retry":
            if value.isdigit():
                self._retry = int(value)
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        data, event = self._data, self._event
        self._data, self._event, self._size = [], "", 0
        if not data:
            return None
        return ServerSentEvent(event or "message", "\n".join(data), self._last_id, self._retry)


class EventSource:
    """The events of one streaming HTTP response; owns the response until closed.

    Iterate it for :class:`ServerSentEvent` objects. Transport failures while
    reading come out classified (:meth:`HTTPProvider.translate`). Close it
    with :meth:`aclose` (``async with`` does), which is safe under cancellation.
    """

    def __init__(self, response: httpx.Response, provider: HTTPProvider) -> None:
        self.response = response
        self._provider = provider
        self._lines: AsyncIterator[str] = response.aiter_lines()
        self._decoder = SSEDecoder()

    def __aiter__(self) -> EventSource:
        return self

    async def __anext__(self) -> ServerSentEvent:
        with self._provider.translate(self.response.request, reading=True):
            async for line in self._lines:
                event = self._decoder.decode(line)
                if event is not None:
                    return event
        raise StopAsyncIteration

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
        await aclose_response(self.response, self._lines)

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


# ------------------------------------------------------------ errors


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait, from ``retry-after-ms`` or ``retry-after`` (seconds or HTTP date).

    ``None`` when neither header is there or neither parses; never negative.
    """
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            return max(0.0, float(raw_ms) / 1000)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP date is always GMT
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def upstream_message(body: bytes | str) -> str:
    """The upstream's own error message from an error body, as one line.

    Understands the OpenAI shape (``{"error": {"message": ...}}``), the
    Anthropic shape (``{"type": "error", "error": {"type": ..., "message": ...}}``)
    and the common ``message``/``detail``/``error: "..."`` variants; otherwise
    the first line of the text.
    """
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        obj = json.loads(text)
    except ValueError:
        return one_line(next((ln for ln in text.splitlines() if ln.strip()), ""))
    return error_message(obj)


def error_message(obj: Any) -> str:
    """The message of a parsed error object (see :func:`upstream_message`), one line."""
    if isinstance(obj, list) and obj and isinstance(obj[0], dict):
        obj = obj[0]  # some gateways wrap the error in a list
    message = ""
    if isinstance(obj, dict):
        err = obj.get("error")
        if isinstance(err, dict):
            message = str(err.get("message") or err.get("type") or err.get("code") or "")
        elif isinstance(err, str):
            message = err
        if not message:
            for key in ("message", "detail", "error_description"):
                value = obj.get(key)
                if isinstance(value, str) and value:
                    message = value
                    break
    elif isinstance(obj, str):
        message = obj
    return one_line(message)


def one_line(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """``text`` with its whitespace collapsed, cut to ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


# ------------------------------------------------------------ the base class


class HTTPProvider(Provider):
    """Base of providers that speak HTTP: the client, the key, errors, closing.

    Subclasses set ``type`` and implement :meth:`stream`, usually as::

        async with await self.open_events(url, body, headers) as events:
            async for event in events:
                ...

    ``definition`` is the config model (``base_url``, ``api_key_env``,
    ``headers``, ``model``, ...).
    """

    def __init__(
        self,
        name: str,
        definition: Any,
        context: ProviderContext | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(name)
        self.definition = definition
        self.base_url: str = definition.base_url.rstrip("/")
        self.api_key_env: str | None = definition.api_key_env
        self.extra_headers: dict[str, str] = dict(definition.headers)
        self._shared = None if context is None else context.http_client
        self._transport = transport
        self._own_client: httpx.AsyncClient | None = None

    # ---------------------------------------------------------------- pieces

    def client(self) -> httpx.AsyncClient:
        """The engine's pooled client, or this provider's own."""
        if self._shared is not None:
            client: httpx.AsyncClient = self._shared()
            return client
        if self._own_client is None:
            self._own_client = httpx.AsyncClient(
                transport=self._transport, timeout=httpx.Timeout(None)
            )
        return self._own_client

    def api_key(self) -> str | None:
        """The key from ``api_key_env``; ``None`` when the provider needs none.

        Raises:
            MissingAPIKeyError: the variable is named but unset or empty.
        """
        if not self.api_key_env:
            return None
        key = os.environ.get(self.api_key_env, "").strip()
        if not key:
            raise MissingAPIKeyError(self.api_key_env, self.name)
        return key

    def redact(self, text: str) -> str:
        """``text`` with the API key, configured header values and key-like strings removed."""
        secrets = []
        if self.api_key_env:
            key = os.environ.get(self.api_key_env, "").strip()
            if key:
                secrets.append(key)
        secrets.extend(v for v in self.extra_headers.values() if len(v) >= 8)
        for secret in sorted(secrets, key=len, reverse=True):
            text = text.replace(secret, "[redacted]")
        return _KEYLIKE.sub("[redacted]", text)

    def where(self, request: httpx.Request) -> str:
        """The upstream as messages name it: host and port, never the query string."""
        return request.url.netloc.decode("ascii", "replace")

    @contextmanager
    def translate(self, request: httpx.Request, *, reading: bool = False) -> Iterator[None]:
        """Turn httpx's transport exceptions into :class:`ProviderError` kinds."""
        host = self.where(request)
        try:
            yield
        except httpx.ConnectTimeout:
            raise ProviderConnectionError(f"connecting to {host} timed out", self.name) from None
        except httpx.ConnectError as exc:
            reason = self.redact(one_line(_os_reason(exc) or str(exc) or "connection failed"))
            raise ProviderConnectionError(
                f"cannot connect to {host}: {reason}", self.name
            ) from None
        except httpx.TimeoutException as exc:
            raise ProviderTimeoutError(
                f"{host} timed out: {type(exc).__name__}", self.name
            ) from None
        except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            phase = "mid-stream" if reading else "before answering"
            detail = self.redact(one_line(str(exc) or type(exc).__name__))
            raise ProviderConnectionError(
                f"connection to {host} lost {phase}: {detail}", self.name
            ) from None
        except httpx.DecodingError as exc:
            raise ProviderProtocolError(
                f"cannot decode the response of {host}: {one_line(str(exc))}", self.name
            ) from None
        except httpx.InvalidURL as exc:
            raise ProviderError(
                f"invalid URL for {host}: {one_line(str(exc))}", self.name
            ) from None
        except httpx.HTTPError as exc:
            raise ProviderError(
                f"request to {host} failed: {self.redact(one_line(str(exc) or type(exc).__name__))}",
                self.name,
            ) from None

    async def status_error(self, response: httpx.Response) -> ProviderHTTPError:
        """The classified error for a non-2xx ``response`` (its body is read, bounded)."""
        body = bytearray()
        try:
            with self.translate(response.request, reading=True):
                async for part in response.aiter_bytes():
                    body += part
                    if len(body) >= ERROR_BODY_LIMIT:
                        break
        except ProviderError:
            pass  # the status is the error; a broken body only loses its message
        message = self.redact(upstream_message(bytes(body[:ERROR_BODY_LIMIT])))
        return self.http_error(
            response.status_code,
            message or response.reason_phrase,
            host=self.where(response.request),
            headers=response.headers,
        )

    def http_error(
        self,
        status: int,
        message: str,
        *,
        host: str,
        headers: Mapping[str, str] | None = None,
    ) -> ProviderHTTPError:
        """The error kind for HTTP ``status`` with the upstream's ``message``."""
        detail = f": {message}" if message else ""
        if status == 429:
            retry_after = None if headers is None else parse_retry_after(headers)
            wait = "" if retry_after is None else f", retry after {retry_after:g} s"
            return RateLimitedError(
                f"rate limited by {host} (HTTP 429{wait}){detail}",
                retry_after=retry_after,
                provider=self.name,
            )
        if status in (401, 403):
            if self.api_key_env:
                fix = f"check the key in ${self.api_key_env}"
            else:
                fix = "this provider sends no key: set api_key_env in its definition"
            what = "authentication failed" if status == 401 else "access denied"
            return AuthenticationError(
                f"{what} at {host} (HTTP {status}){detail}; {fix}", status, self.name
            )
        return ProviderHTTPError(f"HTTP {status} from {host}{detail}", status, self.name)

    # ---------------------------------------------------------------- calls

    async def open_events(
        self, url: str, body: dict[str, Any], headers: dict[str, str]
    ) -> EventSource:
        """POST ``body`` as JSON to ``url`` and return its event stream once headers arrive.

        Raises a classified :class:`ProviderError` for a transport failure or a
        non-2xx status (the response is closed first).
        """
        client = self.client()
        request = client.build_request(
            "POST", url, json=body, headers={"accept": "text/event-stream", **headers}
        )
        with self.translate(request):
            response = await client.send(request, stream=True)
        if not response.is_success:
            try:
                raise await self.status_error(response)
            finally:
                await aclose_response(response)
        return EventSource(response, self)

    async def get_ok(self, url: str, headers: dict[str, str]) -> None:
        """GET ``url`` and raise a classified error unless the status is 2xx."""
        client = self.client()
        request = client.build_request("GET", url, headers=headers)
        with self.translate(request):
            response = await client.send(request, stream=True)
        try:
            if not response.is_success:
                raise await self.status_error(response)
        finally:
            await aclose_response(response)

    async def aclose(self) -> None:
        if self._own_client is not None:
            client, self._own_client = self._own_client, None
            with trio.CancelScope(shield=True):
                await client.aclose()


def _os_reason(exc: BaseException) -> str | None:
    """The operating system's reason (``connection refused``) buried in a connect error.

    trio's happy eyeballs reports "all attempts to connect to ... failed" and
    keeps each attempt's ``OSError`` in the cause chain, inside a group.
    """
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and (current.errno or current.strerror):
            if current.errno and not isinstance(current, socket.gaierror):
                return os.strerror(current.errno)  # trio's strerror also names the address
            return current.strerror
        if isinstance(current, BaseExceptionGroup):
            todo.extend(current.exceptions)
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                todo.append(linked)
    return None


def json_event(data: str, provider: str) -> Any:
    """``data`` parsed as JSON, or a :class:`ProviderProtocolError` saying it is not."""
    try:
        return json.loads(data)
    except ValueError:
        raise ProviderProtocolError(
            f"malformed JSON in the stream: {one_line(data, 80)!r}", provider
        ) from None
