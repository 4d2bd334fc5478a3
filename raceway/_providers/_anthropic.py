"""The ``anthropic`` provider: the Anthropic Messages API, streamed.

This module owns the Messages wire format and nothing else (HTTP, events,
errors and closing live in ``_http``). One attempt is ``POST
{base_url}/v1/messages`` with ``x-api-key``, ``anthropic-version`` and
``"stream": true``. The request differs from OpenAI's in two ways this module
bridges, so one ``messages`` list races on both:

* the system prompt is a top-level ``system`` field, not a message: every
  ``system`` (or ``developer``) message is taken out and joined into it;
* ``max_tokens`` is required: the caller's (or the reference's ``config``)
  when given, else the definition's ``max_tokens``. OpenAI's ``stop`` becomes
  ``stop_sequences``; OpenAI-only sampling keys (``n``, ``presence_penalty``,
  ``seed``, ...) are dropped rather than failing the attempt with a 400.

The answer is a stream of named events: ``message_start`` (input token
count), ``content_block_start``, ``content_block_delta`` (``text_delta`` is
text; other deltas such as tool input or thinking are not), ``content_block_stop``,
``message_delta`` (``stop_reason``, output token count), ``message_stop``
(the end), ``ping`` (keep-alive) and ``error`` (an upstream failure inside a
200 response, e.g. ``overloaded_error``). Unknown event types are ignored, as
Anthropic's versioning policy asks. A stream that ends without
``message_stop`` is a :class:`~raceway.ProviderProtocolError`.

Reference: https://docs.anthropic.com/en/api/messages and
https://docs.anthropic.com/en/docs/build-with-claude/streaming
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from .._chunk import Chunk, Usage
from .._config import AnthropicProvider as AnthropicDefinition
from .._errors import ProviderProtocolError
from ._base import Request
from ._http import HTTPProvider, error_message, json_event, one_line

#: Status codes of the error types Anthropic documents
#: (https://docs.anthropic.com/en/api/errors), for ``error`` events in a stream.
ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}

#: OpenAI-style parameters the Messages API rejects; dropped so a caller's
#: keyword parameters can race on both kinds of provider.
OPENAI_ONLY = frozenset(
    {
        "n",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "seed",
        "response_format",
        "stream_options",
        "user",
        "parallel_tool_calls",
    }
)


class AnthropicProvider(HTTPProvider):
    """The Anthropic Messages API, streamed."""

    type = "anthropic"
    definition: AnthropicDefinition

    def headers(self) -> dict[str, str]:
        """Request headers: the configured extras, ``anthropic-version`` and ``x-api-key``."""
        headers = {"anthropic-version": self.definition.anthropic_version, **self.extra_headers}
        key = self.api_key()
        if key is not None:
            headers["x-api-key"] = key
        return headers

    def body(self, request: Request) -> dict[str, Any]:
        """The JSON body: translated parameters, then the messages, model and stream flag."""
        body: dict[str, Any] = {k: v for k, v in request.params.items() if k not in OPENAI_ONLY}
        if "stop" in body:
            stop = body.pop("stop")
            if stop and "stop_sequences" not in body:
                body["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
        if "max_completion_tokens" in body:
            body.setdefault("max_tokens", body.pop("max_completion_tokens"))
        if body.get("max_tokens") is None:
            body["max_tokens"] = self.definition.max_tokens
        system: list[str] = []
        messages: list[dict[str, Any]] = []
        for message in request.messages:
            role = message.get("role")
            if role in ("system", "developer"):
                text = _text_of(message.get("content"))
                if text:
                    system.append(text)
            else:
                messages.append({"role": role, "content": message.get("content")})
        if system and "system" not in body:
            body["system"] = "\n\n".join(system)
        body["model"] = request.model
        body["messages"] = messages
        body["stream"] = True
        return body

    async def stream(self, request: Request) -> AsyncIterator[Chunk]:
        headers = self.headers()  # a missing key fails here, before any I/O
        url = f"{self.base_url}/v1/messages"
        input_tokens: int | None = None
        output_tokens: int | None = None
        stop_reason: str | None = None
        async with await self.open_events(url, self.body(request), headers) as events:
            host = self.where(events.response.request)
            async for event in events:
                obj = json_event(event.data, self.name)
                if not isinstance(obj, dict):
                    raise ProviderProtocolError(
                        f"unexpected event in the stream: {one_line(repr(obj), 80)}", self.name
                    )
                kind = obj.get("type") or event.event
                if kind == "content_block_delta":
                    delta = obj.get("delta") or {}
                    if isinstance(delta, dict) and delta.get("type") == "text_delta":
                        text = delta.get("text")
                        if isinstance(text, str) and text:
                            yield Chunk(text)
                elif kind == "content_block_start":
                    block = obj.get("content_block") or {}
                    if (
                        isinstance(block, dict)
                        and block.get("type") == "text"
                        and block.get("text")
                    ):
                        yield Chunk(str(block["text"]))
                elif kind == "message_start":
                    usage = (obj.get("message") or {}).get("usage") or {}
                    input_tokens = _int(usage.get("input_tokens"), input_tokens)
                    output_tokens = _int(usage.get("output_tokens"), output_tokens)
                elif kind == "message_delta":
                    delta = obj.get("delta") or {}
                    stop_reason = delta.get("stop_reason") or stop_reason
                    usage = obj.get("usage") or {}
                    input_tokens = _int(usage.get("input_tokens"), input_tokens)
                    output_tokens = _int(usage.get("output_tokens"), output_tokens)
                elif kind == "message_stop":
                    usage_seen = input_tokens is not None or output_tokens is not None
                    yield Chunk(
                        "",
                        finish_reason=stop_reason,
                        usage=Usage(input_tokens=input_tokens, output_tokens=output_tokens)
                        if usage_seen
                        else None,
                    )
                    await events.drain()
                    return
                elif kind == "error":
                    err = obj.get("error") or {}
                    err_type = str(err.get("type", "error")) if isinstance(err, dict) else "error"
                    message = self.redact(error_message(obj))
                    raise self.http_error(
                        ERROR_STATUS.get(err_type, 500),
                        f"{err_type} in the stream: {message}",
                        host=host,
                    )
                # ping, content_block_stop and future event types carry no text
            raise ProviderProtocolError(
                f"the stream from {host} ended without message_stop", self.name
            )

    async def health_check(self) -> None:
        """``GET {base_url}/v1/models``: cheap and authenticated."""
        await self.get_ok(f"{self.base_url}/v1/models", self.headers())


def _text_of(content: Any) -> str:
    """The text of a message's content: a string, or the text blocks of a list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(block.get("text", ""))
            for block in content
            if isinstance(block, dict) and block.get("type", "text") == "text"
        )
    return "" if content is None else str(content)


def _int(value: Any, default: int | None) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else default
