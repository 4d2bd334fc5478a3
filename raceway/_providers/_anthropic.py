"""The ``anthropic`` provider: the Anthropic Messages API, streamed.

This module owns the Messages wire format's answers (the request's
translation from the Chat Completions format is ``_anthropic_request``;
HTTP, events, errors and closing live in ``_http``). One attempt is ``POST
{base_url}/v1/messages`` with ``x-api-key``, ``anthropic-version`` and
``"stream": true``.

The answer is a stream of named events, mapped onto OpenAI's shape so one
race compares both formats:

* ``message_start``: input token counts (``input_tokens`` plus the cache's
  ``cache_read_input_tokens`` and ``cache_creation_input_tokens``: raceway's
  ``input_tokens`` is their sum, ``cached_input_tokens`` the cache reads);
* ``content_block_start``/``content_block_delta``/``content_block_stop`` per
  block: ``text`` with ``text_delta`` is :attr:`Chunk.text`; ``tool_use`` (its
  ``id`` and ``name``) with ``input_json_delta`` fragments becomes
  :class:`ToolCallDelta` s whose ``index`` counts the answer's tool calls
  (0, 1, ..., not the block index: a text block may come first); a tool
  without input streams nothing, so its call ends with arguments ``{}``;
  ``thinking`` with ``thinking_delta`` is :attr:`Chunk.reasoning`, its
  ``signature_delta`` is kept, and at the block's end one chunk carries the
  whole block as a :class:`~raceway.ThinkingBlock` (``redacted_thinking``
  blocks too, whose ``data`` comes at their start) — what a follow-up turn
  sends back as the assistant message's ``thinking_blocks``;
* ``message_delta``: ``stop_reason`` (normalised: ``end_turn`` and
  ``stop_sequence`` are ``stop``, ``max_tokens`` is ``length``, ``tool_use``
  is ``tool_calls``, ``refusal`` is ``content_filter``; others pass through)
  and the output token count;
* ``message_stop`` ends the answer; ``ping`` is a keep-alive; ``error`` is an
  upstream failure inside the 200 response, classified by its type
  (``overloaded_error`` is 529, ``rate_limit_error`` a rate limit).

Unknown event, block and delta types are ignored, as Anthropic's versioning
policy asks. A stream that ends without ``message_stop`` is a
:class:`~raceway.ProviderProtocolError`.

Reference: https://docs.anthropic.com/en/api/messages and
https://docs.anthropic.com/en/docs/build-with-claude/streaming
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from .._chunk import Chunk, ThinkingBlock, ToolCallDelta, Usage
from .._config import AnthropicProvider as AnthropicDefinition
from .._errors import ProviderProtocolError
from ._anthropic_request import messages_body
from ._base import Request
from ._http import HTTPProvider

#: Anthropic's stop reasons in OpenAI's words; any other passes through.
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


class AnthropicProvider(HTTPProvider):
    """The Anthropic Messages API, streamed."""

    definition_class = AnthropicDefinition
    definition: AnthropicDefinition

    def headers(self) -> dict[str, str]:
        """Request headers: the configured extras, ``anthropic-version`` and ``x-api-key``."""
        headers = {"anthropic-version": self.definition.anthropic_version, **self.extra_headers}
        key = self.api_key()
        if key is not None:
            headers["x-api-key"] = key
        return headers

    def body(self, request: Request) -> dict[str, Any]:
        """The Messages API body (raises ``UnsupportedRequestError`` for what cannot translate)."""
        return messages_body(
            request.messages,
            request.params,
            model=request.model,
            default_max_tokens=self.definition.max_tokens,
            provider=self.name,
        )

    def url_hint(self) -> str:
        if self.base_url.endswith("/v1/messages"):
            return (
                f"base_url {self.base_url} already ends in /v1/messages,"
                " which raceway appends: drop it"
            )
        if self.base_url.endswith("/v1"):
            return f"base_url {self.base_url} ends in /v1, which raceway appends: drop it"
        return ""

    async def stream(self, request: Request) -> AsyncIterator[Chunk]:
        headers = self.headers()  # a missing key fails here, before any I/O
        body = self.body(request)  # so does a request this format cannot carry
        url = f"{self.base_url}/v1/messages"
        answer = _Answer()
        async with await self.open_events(url, body, headers) as events:
            host = self.where(events.response.request)
            async for event in events:
                obj = self.parse_json(event.data)
                if not isinstance(obj, dict):
                    raise self.unexpected(event.data)
                kind = obj.get("type") or event.event
                if kind == "message_stop":
                    yield answer.last()
                    await events.drain()
                    return
                if kind == "error":
                    raise self.stream_error(obj, host)
                chunk = answer.read(kind, obj)
                if chunk is not None:
                    yield chunk
            raise ProviderProtocolError(
                f"the stream from {host} ended without message_stop", self.name
            )

    async def health_check(self) -> None:
        """``GET {base_url}/v1/models``: cheap and authenticated."""
        await self.get_ok(f"{self.base_url}/v1/models", self.headers())


class _Block:
    """What is known of one open content block."""

    __slots__ = ("call", "has_input", "kind", "signature", "thinking")

    def __init__(self, kind: str, call: int | None = None) -> None:
        self.kind = kind
        self.call = call  # the tool call's ordinal, for tool_use blocks
        self.has_input = False
        self.thinking: list[str] = []
        self.signature = ""


class _Answer:
    """The state of one streamed message: open blocks, tool calls so far, usage."""

    def __init__(self) -> None:
        self.blocks: dict[int, _Block] = {}
        self.calls = 0
        self.input_tokens: int | None = None
        self.cache_read: int | None = None
        self.cache_creation: int | None = None
        self.output_tokens: int | None = None
        self.stop_reason: str | None = None

    def read(self, kind: Any, obj: dict[str, Any]) -> Chunk | None:
        """The chunk one event makes, if any."""
        if kind == "content_block_delta":
            return self._delta(obj)
        if kind == "content_block_start":
            return self._start(obj)
        if kind == "content_block_stop":
            return self._stop(obj)
        if kind == "message_start":
            message = obj.get("message")
            self._usage(message.get("usage") if isinstance(message, dict) else None)
        elif kind == "message_delta":
            delta = obj.get("delta")
            if isinstance(delta, dict) and isinstance(delta.get("stop_reason"), str):
                self.stop_reason = delta["stop_reason"]
            self._usage(obj.get("usage"))
        return None  # ping and future event types carry nothing

    def last(self) -> Chunk:
        """The chunk ``message_stop`` makes: the finish reason and the usage."""
        reason = self.stop_reason
        usage = None
        if self.input_tokens is not None or self.output_tokens is not None:
            total_in = self.input_tokens
            if total_in is not None:
                total_in += (self.cache_read or 0) + (self.cache_creation or 0)
            usage = Usage(
                input_tokens=total_in,
                output_tokens=self.output_tokens,
                cached_input_tokens=self.cache_read,
            )
        return Chunk("", finish_reason=FINISH_REASONS.get(reason, reason) if reason else None, usage=usage)

    def _start(self, obj: dict[str, Any]) -> Chunk | None:
        block = obj.get("content_block")
        index = obj.get("index")
        if not isinstance(block, dict) or not isinstance(index, int):
            return None
        kind = block.get("type")
        if kind == "text":
            self.blocks[index] = _Block("text")
            text = block.get("text")
            return Chunk(text) if isinstance(text, str) and text else None
        if kind == "tool_use":
            state = self.blocks[index] = _Block("tool_use", self.calls)
            self.calls += 1
            arguments = ""
            initial = block.get("input")
            if isinstance(initial, dict) and initial:  # not streamed: the whole input at once
                arguments = json.dumps(initial)
                state.has_input = True
            call_id, name = block.get("id"), block.get("name")
            return Chunk(
                tool_calls=(
                    ToolCallDelta(
                        self.calls - 1,
                        call_id if isinstance(call_id, str) else None,
                        name if isinstance(name, str) else None,
                        arguments,
                    ),
                )
            )
        if kind == "thinking":
            state = self.blocks[index] = _Block("thinking")
            text, signature = block.get("thinking"), block.get("signature")
            state.signature = signature if isinstance(signature, str) else ""
            if isinstance(text, str) and text:
                state.thinking.append(text)
                return Chunk(reasoning=text)
            return None
        if kind == "redacted_thinking":
            data = block.get("data")
            redacted = ThinkingBlock("redacted_thinking", data=data if isinstance(data, str) else "")
            return Chunk(thinking_blocks=(redacted,))
        return None  # server_tool_use, web search results, future block types

    def _delta(self, obj: dict[str, Any]) -> Chunk | None:
        delta = obj.get("delta")
        if not isinstance(delta, dict):
            return None
        kind = delta.get("type")
        state = self.blocks.get(obj.get("index"))  # type: ignore[arg-type]
        if kind == "text_delta":
            text = delta.get("text")
            return Chunk(text) if isinstance(text, str) and text else None
        if kind == "input_json_delta" and state is not None and state.call is not None:
            partial = delta.get("partial_json")
            if isinstance(partial, str) and partial:
                state.has_input = True
                return Chunk(tool_calls=(ToolCallDelta(state.call, arguments=partial),))
            return None
        if kind == "thinking_delta":
            text = delta.get("thinking")
            if isinstance(text, str) and text:
                if state is not None:
                    state.thinking.append(text)
                return Chunk(reasoning=text)
            return None
        if kind == "signature_delta" and state is not None:
            signature = delta.get("signature")
            if isinstance(signature, str):
                state.signature += signature
        return None  # citations_delta and future delta types

    def _stop(self, obj: dict[str, Any]) -> Chunk | None:
        state = self.blocks.pop(obj.get("index"), None)  # type: ignore[arg-type]
        if state is None:
            return None
        if state.kind == "tool_use" and not state.has_input and state.call is not None:
            return Chunk(tool_calls=(ToolCallDelta(state.call, arguments="{}"),))
        if state.kind == "thinking":
            block = ThinkingBlock("thinking", "".join(state.thinking), state.signature)
            return Chunk(thinking_blocks=(block,))
        return None

    def _usage(self, usage: Any) -> None:
        if not isinstance(usage, dict):
            return
        self.input_tokens = _int(usage.get("input_tokens"), self.input_tokens)
        self.output_tokens = _int(usage.get("output_tokens"), self.output_tokens)
        self.cache_read = _int(usage.get("cache_read_input_tokens"), self.cache_read)
        self.cache_creation = _int(usage.get("cache_creation_input_tokens"), self.cache_creation)


def _int(value: Any, default: int | None) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else default
