"""The ``openai`` provider: any OpenAI-compatible chat completions endpoint.

This module owns the OpenAI wire format and nothing else (HTTP, events, errors
and closing live in ``_http``). One attempt is ``POST
{base_url}/chat/completions`` with ``"stream": true``; the answer is a stream
of Server-Sent Events, each a ``chat.completion.chunk`` object, ended by
``data: [DONE]``:

* ``choices[0].delta.content`` is text. The first chunk usually carries only
  ``delta.role`` (no text) and often comes with the headers; it is not the
  first token, so it is not passed on at all.
* ``choices[0].finish_reason`` (``stop``, ``length``, ...) ends the answer.
* With ``stream_options: {"include_usage": true}`` (sent when the definition's
  ``stream_usage`` is true, the default) one last chunk with empty ``choices``
  carries ``usage`` (``prompt_tokens``, ``completion_tokens``).
* An ``{"error": {...}}`` object in the stream is an upstream failure.

A stream that ends without ``[DONE]`` is a :class:`~raceway.ProviderProtocolError`
(before the first token the attempt failed; after it, the race driver reports
the winner interrupted). A server that ignores ``stream`` and answers one JSON
completion is accepted too.

Reference: https://platform.openai.com/docs/api-reference/chat/create and
https://platform.openai.com/docs/api-reference/chat-streaming
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from .._chunk import Chunk, Usage
from .._config import OpenAIProvider as OpenAIDefinition
from .._errors import ProviderError, ProviderProtocolError
from ._base import Request
from ._http import HTTPProvider, error_message, json_event, one_line

DONE = "[DONE]"


class OpenAIProvider(HTTPProvider):
    """An OpenAI-compatible chat completions endpoint, streamed."""

    type = "openai"
    definition: OpenAIDefinition

    def headers(self) -> dict[str, str]:
        """Request headers: the configured extras, then ``Authorization: Bearer``."""
        headers = dict(self.extra_headers)
        key = self.api_key()
        if key is not None:
            headers["authorization"] = f"Bearer {key}"
        return headers

    def body(self, request: Request) -> dict[str, Any]:
        """The JSON body: parameters first, then what this provider must control."""
        body: dict[str, Any] = dict(request.params)
        body["model"] = request.model
        body["messages"] = request.messages
        body["stream"] = True
        if self.definition.stream_usage:
            options = body.get("stream_options")
            body["stream_options"] = {
                **(options if isinstance(options, dict) else {}),
                "include_usage": True,
            }
        return body

    async def stream(self, request: Request) -> AsyncIterator[Chunk]:
        headers = self.headers()  # a missing key fails here, before any I/O
        url = f"{self.base_url}/chat/completions"
        async with await self.open_events(url, self.body(request), headers) as events:
            content_type = events.response.headers.get("content-type", "")
            if content_type.startswith("application/json"):
                async for whole in self._whole(events.response):
                    yield whole
                return
            async for event in events:
                if event.data.strip() == DONE:
                    await events.drain()
                    return
                chunk = self._chunk(json_event(event.data, self.name))
                if chunk is not None:
                    yield chunk
            raise ProviderProtocolError(
                f"the stream from {self.where(events.response.request)} ended without [DONE]",
                self.name,
            )

    def _chunk(self, obj: Any) -> Chunk | None:
        if not isinstance(obj, dict):
            raise ProviderProtocolError(
                f"unexpected event in the stream: {one_line(repr(obj), 80)}", self.name
            )
        if "error" in obj:
            message = self.redact(error_message(obj))
            raise ProviderError(f"the upstream reported an error mid-stream: {message}", self.name)
        text = ""
        finish = None
        choices = obj.get("choices") or []
        if choices and isinstance(choices[0], dict):
            choice = choices[0]
            delta = choice.get("delta") or {}
            content = delta.get("content") if isinstance(delta, dict) else None
            if isinstance(content, str):
                text = content
            finish = choice.get("finish_reason") or None
        usage = _usage(obj.get("usage"))
        if not text and finish is None and usage is None:
            return None  # role-only, keep-alive or tool-call chunks carry nothing for us
        return Chunk(text, finish_reason=finish, usage=usage)

    async def _whole(self, response: Any) -> AsyncIterator[Chunk]:
        """A non-streamed ``chat.completion`` (a server that ignored ``stream``)."""
        raw = await response.aread()
        obj = json_event(raw.decode("utf-8", "replace"), self.name)
        try:
            choice = obj["choices"][0]
            text = choice["message"].get("content") or ""
        except (KeyError, IndexError, TypeError, AttributeError):
            raise ProviderProtocolError(
                "a JSON answer without choices[0].message", self.name
            ) from None
        yield Chunk(
            str(text), finish_reason=choice.get("finish_reason"), usage=_usage(obj.get("usage"))
        )

    async def health_check(self) -> None:
        """``GET {base_url}/models``: cheap, authenticated, and served by compatible servers."""
        await self.get_ok(f"{self.base_url}/models", self.headers())


def _usage(raw: Any) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    prompt = raw.get("prompt_tokens")
    completion = raw.get("completion_tokens")
    return Usage(
        input_tokens=prompt if isinstance(prompt, int) else None,
        output_tokens=completion if isinstance(completion, int) else None,
    )
