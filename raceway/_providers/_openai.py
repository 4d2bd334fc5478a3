"""The ``openai`` provider: any OpenAI-compatible chat completions endpoint.

This module owns the OpenAI wire format and nothing else (HTTP, events, errors
and closing live in ``_http``). One attempt is ``POST
{base_url}/chat/completions`` with ``"stream": true``. The request is the
caller's, unchanged: ``messages`` in the full Chat Completions format and
every parameter (``tools``, ``tool_choice``, ``parallel_tool_calls``,
``response_format``, ``stop``, ``seed``, ``reasoning_effort``, ...) as given;
only ``thinking_blocks`` — raceway's carrier of Anthropic thinking on an
assistant message, see ``_anthropic`` — is taken off the messages. The answer
is a stream of Server-Sent Events, each a ``chat.completion.chunk`` object,
ended by ``data: [DONE]``:

* ``choices[0].delta.content`` is text (``delta.refusal`` too: a refusal is
  what the model says). The first chunk usually carries only ``delta.role``;
  it is not the first token, so it is not passed on at all.
* ``delta.reasoning_content`` (DeepSeek, vLLM, Qwen) or ``delta.reasoning``
  (OpenRouter, Ollama) is thinking text: :attr:`Chunk.reasoning`.
* ``delta.tool_calls`` are tool-call deltas keyed by ``index``: the first of
  a call has ``id`` and ``function.name``, later ones ``function.arguments``
  fragments. Some servers reuse index 0 for parallel calls and tell them apart
  by ``id``, or repeat ``id`` and ``name`` in every delta; :class:`ToolCallOrdinals`
  renumbers them so ``index`` is the call's ordinal in the answer and ``id`` and
  ``name`` come once.
* ``choices[0].finish_reason`` (``stop``, ``length``, ``tool_calls``,
  ``content_filter``) ends the answer; only choice 0 is read (``n`` > 1 asks
  for more, raceway answers with one).
* With ``stream_options: {"include_usage": true}`` (sent when the definition's
  ``stream_usage`` is true, the default) one last chunk with empty ``choices``
  carries ``usage``: ``prompt_tokens``, ``completion_tokens``,
  ``prompt_tokens_details.cached_tokens`` (DeepSeek: ``prompt_cache_hit_tokens``),
  ``completion_tokens_details.reasoning_tokens``.
* An ``{"error": {...}}`` object in the stream is an upstream failure,
  classified as its HTTP twin (a rate limit is a rate limit).

A stream that ends without ``[DONE]`` is a :class:`~raceway.ProviderProtocolError`
(before the first token the attempt failed; after it, the race driver reports
the winner interrupted). A server that ignores ``stream`` and answers one JSON
completion is accepted too.

Reference: https://platform.openai.com/docs/api-reference/chat/create and
https://platform.openai.com/docs/api-reference/chat-streaming
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import attrs

from .._chunk import Chunk, ToolCallDelta, Usage
from .._config import OpenAIProvider as OpenAIDefinition
from .._errors import ProviderProtocolError
from ._base import Request
from ._http import HTTPProvider, versioned

DONE = "[DONE]"


class OpenAIProvider(HTTPProvider):
    """An OpenAI-compatible chat completions endpoint, streamed."""

    definition_class = OpenAIDefinition
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
        body["messages"] = [
            {k: v for k, v in m.items() if k != "thinking_blocks"}
            if isinstance(m, dict) and "thinking_blocks" in m
            else m
            for m in request.messages
        ]
        body["stream"] = True
        if self.definition.stream_usage:
            options = body.get("stream_options")
            body["stream_options"] = {
                **(options if isinstance(options, dict) else {}),
                "include_usage": True,
            }
        return body

    def url_hint(self) -> str:
        path = self.base_url.split("://", 1)[-1].partition("/")[2]
        if self.base_url.endswith("/chat/completions"):
            return (
                f"base_url {self.base_url} already ends in /chat/completions,"
                " which raceway appends: drop it"
            )
        if not versioned("/" + path):
            return (
                f"base_url {self.base_url} has no /v1: OpenAI-compatible servers"
                " usually serve {base_url}/v1/chat/completions"
            )
        return ""

    async def stream(self, request: Request) -> AsyncIterator[Chunk]:
        headers = self.headers()  # a missing key fails here, before any I/O
        url = f"{self.base_url}/chat/completions"
        async with await self.open_events(url, self.body(request), headers) as events:
            host = self.where(events.response.request)
            content_type = events.response.headers.get("content-type", "")
            if content_type.startswith("application/json"):
                yield self._whole(await events.read_json())
                return
            ordinals = ToolCallOrdinals()
            async for event in events:
                if event.data.strip() == DONE:
                    await events.drain()
                    return
                obj = self.parse_json(event.data)
                if not isinstance(obj, dict):
                    raise self.unexpected(event.data)
                if obj.get("error"):  # some gateways send "error": null in every chunk
                    raise self.stream_error(obj, host)
                chunk = _chunk(obj, ordinals)
                if chunk is not None:
                    yield chunk
            raise ProviderProtocolError(
                f"the stream from {host} ended without [DONE]", self.name
            )

    def _whole(self, obj: Any) -> Chunk:
        """A non-streamed ``chat.completion`` (a server that ignored ``stream``)."""
        try:
            choice = obj["choices"][0]
            message = choice["message"]
            calls = message.get("tool_calls") or []
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise ProviderProtocolError(
                "a JSON answer without choices[0].message", self.name
            ) from exc
        ordinals = ToolCallOrdinals()
        deltas = tuple(
            d
            for i, call in enumerate(calls if isinstance(calls, list) else [])
            if isinstance(call, dict) and (d := ordinals.delta(call, i)) is not None
        )
        return Chunk(
            _text(message),
            finish_reason=choice.get("finish_reason") or None,
            usage=usage_of(obj.get("usage")),
            reasoning=_reasoning(message),
            tool_calls=deltas,
        )

    async def health_check(self) -> None:
        """``GET {base_url}/models``: cheap, authenticated, and served by compatible servers."""
        await self.get_ok(f"{self.base_url}/models", self.headers())


@attrs.define
class _Call:
    ordinal: int
    id: str | None
    name: str | None


class ToolCallOrdinals:
    """Numbers the tool calls of one streamed answer 0, 1, ... as they appear.

    A delta belongs to the call last seen at its ``index`` unless it names a
    different ``id`` (a server reusing index 0 for parallel calls) or, with
    no ``id`` at all, a different function name: then it starts the next
    call. ``id`` and ``name`` are passed on once per call, whatever the
    server repeats.
    """

    def __init__(self) -> None:
        self._at: dict[int, _Call] = {}
        self._count = 0

    def delta(self, raw: dict[str, Any], position: int) -> ToolCallDelta | None:
        index = raw.get("index")
        if not isinstance(index, int) or isinstance(index, bool):
            index = position
        function = raw.get("function")
        function = function if isinstance(function, dict) else {}
        call_id = raw.get("id") if isinstance(raw.get("id"), str) and raw.get("id") else None
        name = function.get("name") if isinstance(function.get("name"), str) else None
        name = name or None
        arguments = function.get("arguments")
        if isinstance(arguments, dict | list):  # a few servers send the object itself
            arguments = json.dumps(arguments)
        arguments = arguments if isinstance(arguments, str) else ""
        call = self._at.get(index)
        if (
            call is None
            or (call_id is not None and call.id is not None and call_id != call.id)
            or (call_id is None and name is not None and call.name not in (None, name))
        ):
            call = self._at[index] = _Call(self._count, None, None)
            self._count += 1
        new_id = call_id if call.id is None else None
        new_name = name if call.name is None else None
        call.id = call.id or call_id
        call.name = call.name or name
        if new_id is None and new_name is None and not arguments:
            return None
        return ToolCallDelta(call.ordinal, new_id, new_name, arguments)


def _chunk(obj: dict[str, Any], ordinals: ToolCallOrdinals) -> Chunk | None:
    text = reasoning = ""
    finish = None
    calls: tuple[ToolCallDelta, ...] = ()
    choices = obj.get("choices")
    for choice in choices if isinstance(choices, list) else ():
        if not isinstance(choice, dict) or choice.get("index", 0) != 0:
            continue  # n > 1: raceway answers with choice 0
        delta = choice.get("delta")
        if isinstance(delta, dict):
            text = _text(delta)
            reasoning = _reasoning(delta)
            raw_calls = delta.get("tool_calls")
            if isinstance(raw_calls, list) and raw_calls:
                calls = tuple(
                    d
                    for i, raw in enumerate(raw_calls)
                    if isinstance(raw, dict) and (d := ordinals.delta(raw, i)) is not None
                )
        finish = choice.get("finish_reason") or None
        break
    usage = usage_of(obj.get("usage"))
    if not text and not reasoning and not calls and finish is None and usage is None:
        return None  # role-only and keep-alive chunks carry nothing
    return Chunk(text, finish_reason=finish, usage=usage, reasoning=reasoning, tool_calls=calls)


def _text(delta: dict[str, Any]) -> str:
    content = delta.get("content")
    if isinstance(content, str) and content:
        return content
    refusal = delta.get("refusal")
    return refusal if isinstance(refusal, str) else ""


def _reasoning(delta: dict[str, Any]) -> str:
    for key in ("reasoning_content", "reasoning"):
        value = delta.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def usage_of(raw: Any) -> Usage | None:
    """OpenAI's ``usage`` object as a :class:`Usage` (``None`` when there is none)."""
    if not isinstance(raw, dict):
        return None
    prompt_details = raw.get("prompt_tokens_details")
    completion_details = raw.get("completion_tokens_details")
    cached = _int(prompt_details.get("cached_tokens")) if isinstance(prompt_details, dict) else None
    if cached is None:
        cached = _int(raw.get("prompt_cache_hit_tokens"))  # DeepSeek
    reasoning = (
        _int(completion_details.get("reasoning_tokens"))
        if isinstance(completion_details, dict)
        else None
    )
    return Usage(
        input_tokens=_int(raw.get("prompt_tokens")),
        output_tokens=_int(raw.get("completion_tokens")),
        cached_input_tokens=cached,
        reasoning_tokens=reasoning,
    )


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
