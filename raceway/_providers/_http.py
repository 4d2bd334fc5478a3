"""What the network providers share: HTTP calls, events, errors, redaction, closing.

This module owns what the ``openai`` and ``anthropic`` types both need, so
that each of those modules holds only its wire format (the bounded SSE
reading is in ``_sse``, the reading of upstream error texts in ``_upstream``):

* **Events.** :class:`~._stream.EventSource` reads a streaming response's
  bytes through a bounded :class:`~._sse.LineSplitter` and an
  :class:`~._sse.SSEDecoder`: a line that never ends fails the attempt once it
  passes :data:`~._sse.MAX_LINE_BYTES`, with memory staying at about that size.

* **Errors, classified.** Every failure leaves this module as a
  :class:`~raceway.ProviderError` kind with a one-line message that names the
  upstream's host and, for HTTP errors, the upstream's own error message
  (``error.message`` of OpenAI and Anthropic bodies). 429 becomes
  :class:`~raceway.RateLimitedError` with ``retry_after`` parsed from
  ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date); 401/403
  become :class:`~raceway.AuthenticationError` naming the variable to set; a
  404 names the URL requested and says when ``base_url`` looks wrong; an error
  object inside a 200 stream is classified as its HTTP twin
  (:meth:`HTTPProvider.stream_error`); a TLS failure says it is one, and why.
  The transport's exception stays the ``__cause__``.

* **Redaction, in one place.** Every text taken from upstream bytes — error
  bodies, in-stream error objects, a malformed or unexpected event, an
  exception message of the transport — reaches a message only through
  :meth:`HTTPProvider.quote`, which removes the API key, the configured header
  values and key-like strings *before* cutting the text to one line (cutting
  first could leave a key's prefix behind). An upstream that echoes the key
  back (``Incorrect API key provided: sk-...``) must not put it in an error,
  an event, the monitor socket or a result.

* **Closing at once.** :class:`~._stream.EventSource` owns the response and
  closes it even under cancellation (see ``_stream``).

* **One pooled client.** :class:`HTTPProvider` takes the engine's shared
  ``httpx.AsyncClient`` from :class:`~raceway._providers.ProviderContext`;
  built without one (a provider used on its own) it makes its own, with the
  ``transport`` given, and closes it in :meth:`HTTPProvider.aclose`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import httpx
import trio

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
from ._sse import MAX_EVENT_CHARS, MAX_LINE_BYTES, ServerSentEvent, SSEDecoder
from ._stream import CLOSE_TIMEOUT_S, EventSource, aclose_response
from ._upstream import (
    MESSAGE_LIMIT,
    connect_reason,
    error_label_and_status,
    error_message,
    one_line,
    parse_retry_after,
    upstream_message,
)

if TYPE_CHECKING:
    from . import ProviderContext

__all__ = [
    "CLOSE_TIMEOUT_S",
    "MAX_EVENT_CHARS",
    "MAX_LINE_BYTES",
    "EventSource",
    "HTTPProvider",
    "SSEDecoder",
    "ServerSentEvent",
    "aclose_response",
    "error_message",
    "one_line",
    "parse_retry_after",
    "upstream_message",
]

#: Bytes of an error response read for its message; error bodies are small,
#: and a misbehaving upstream must not make us read megabytes to fail.
ERROR_BODY_LIMIT = 64 * 1024
#: Characters of a malformed or unexpected event quoted in an error.
EVENT_QUOTE_LIMIT = 80

# Things that look like keys in upstream messages: OpenAI-style secret keys
# (also partly masked ones) and bearer tokens.
_KEYLIKE = re.compile(r"(?:\bsk-[A-Za-z0-9_\-*.]{3,}|\bBearer\s+\S+)")
# A versioned API path segment: /v1, /v1beta, /v2alpha ...
_VERSIONED = re.compile(r"/v\d+(?:beta|alpha)?\d*(?:/|$)")


class HTTPProvider(Provider):
    """Base of providers that speak HTTP: the client, the key, errors, closing.

    Subclasses set ``type`` and implement :meth:`stream`, usually as::

        async with await self.open_events(url, body, headers) as events:
            async for event in events:
                ...

    ``definition`` is the config model (``base_url``, ``api_key_env``,
    ``headers``, ``model``, ...).
    """

    uses_http = True
    movable_stream = True  # httpx holds no cancel scope across a yield (tests/test_handover.py)

    @classmethod
    def from_definition(cls, name: str, definition: Any, context: ProviderContext) -> Provider:
        return cls(name, definition, context)

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
        secrets.extend(v.strip() for v in self.extra_headers.values() if len(v.strip()) >= 8)
        for secret in sorted(secrets, key=len, reverse=True):
            text = text.replace(secret, "[redacted]")
        return _KEYLIKE.sub("[redacted]", text)

    def quote(self, text: str, limit: int = MESSAGE_LIMIT) -> str:
        """Upstream text as our messages may show it: secrets removed, then one line, cut.

        The one way upstream bytes reach an error message (and from there
        events, the monitor, results): redaction comes first, so cutting can
        never leave part of a secret behind.
        """
        return one_line(self.redact(text), limit)

    def where(self, request: httpx.Request) -> str:
        """The upstream as messages name it: host and port, never the query string."""
        return request.url.netloc.decode("ascii", "replace")

    def parse_json(self, data: str) -> Any:
        """An event's ``data`` parsed as JSON, or a protocol error quoting it (redacted)."""
        try:
            return json.loads(data)
        except ValueError as exc:
            raise ProviderProtocolError(
                f"malformed JSON in the stream: {self.quote(data, EVENT_QUOTE_LIMIT)!r}",
                self.name,
            ) from exc

    def unexpected(self, data: str) -> ProviderProtocolError:
        """The error for an event that parses but is not what the format allows."""
        return ProviderProtocolError(
            f"unexpected event in the stream: {self.quote(data, EVENT_QUOTE_LIMIT)}", self.name
        )

    def stream_error(self, obj: Any, host: str) -> ProviderHTTPError:
        """The classified error for an error object inside a 200 stream (both formats)."""
        label, status = error_label_and_status(obj)
        return self.http_error(status, f"{label} in the stream: {self.quote(error_message(obj))}", host=host)

    def url_hint(self) -> str:
        """What looks wrong in ``base_url`` when a request 404s (``""``: nothing)."""
        return ""

    @contextmanager
    def translate(self, request: httpx.Request, *, reading: bool = False) -> Iterator[None]:
        """Turn httpx's transport exceptions into :class:`ProviderError` kinds (cause kept)."""
        try:
            yield
        except (httpx.HTTPError, httpx.InvalidURL) as exc:  # InvalidURL is not an HTTPError
            raise self.translated(exc, request, reading=reading) from exc

    def translated(self, exc: Exception, request: httpx.Request, *, reading: bool = False) -> ProviderError:
        """The :class:`ProviderError` kind of httpx's ``exc`` (see :meth:`translate`)."""
        host = self.where(request)
        if isinstance(exc, httpx.ConnectTimeout):
            return ProviderConnectionError(f"connecting to {host} timed out", self.name)
        if isinstance(exc, httpx.ConnectError):
            reason = self.quote(connect_reason(exc) or str(exc) or "connection failed")
            return ProviderConnectionError(f"cannot connect to {host}: {reason}", self.name)
        if isinstance(exc, httpx.TimeoutException):
            return ProviderTimeoutError(f"{host} timed out: {type(exc).__name__}", self.name)
        if isinstance(exc, httpx.NetworkError | httpx.RemoteProtocolError):
            phase = "mid-stream" if reading else "before answering"
            detail = self.quote(str(exc) or type(exc).__name__)
            return ProviderConnectionError(f"connection to {host} lost {phase}: {detail}", self.name)
        if isinstance(exc, httpx.DecodingError):
            return ProviderProtocolError(f"cannot decode the response of {host}: {self.quote(str(exc))}", self.name)
        if isinstance(exc, httpx.InvalidURL):
            return ProviderError(f"invalid URL for {host}: {self.quote(str(exc))}", self.name)
        return ProviderError(f"request to {host} failed: {self.quote(str(exc) or type(exc).__name__)}", self.name)

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
        message = self.quote(upstream_message(bytes(body[:ERROR_BODY_LIMIT])))
        if response.status_code == 404:
            url = response.request.url.copy_with(query=None, fragment=None)
            message = f"{message or response.reason_phrase} ({response.request.method} {url}"
            hint = self.url_hint()
            message += f"; {hint})" if hint else ")"
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
        """The error kind for HTTP ``status`` with the upstream's ``message`` (already quoted)."""
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
        # A race starts its attempts in one go, and each builds its request
        # before its first await: without this yield the first-built one is on
        # the wire a whole request-build ahead of the next (about 0.6 ms each),
        # and whoever trio runs first in the batch wins the race of identical
        # upstreams. Built, then all sent together: a fair start.
        await trio.lowlevel.checkpoint()
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


def versioned(path: str) -> bool:
    """Whether a URL path has an API version segment (``/v1``, ``/v1beta``, ...)."""
    return _VERSIONED.search(path + "/") is not None
