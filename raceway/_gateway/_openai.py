"""The OpenAI Chat Completions API, as the gateway speaks it.

``POST /v1/chat/completions`` takes the OpenAI request body; the engine takes
OpenAI-format messages and parameters, so a request passes through nearly
unchanged: ``model`` names a virtual model (absent: the default one),
``messages`` and every other parameter go to the engine as they are, except
what the gateway owns itself (``stream``, ``stream_options``). ``n`` must be
1: a race answers once.

Answers follow the API reference (https://platform.openai.com/docs/api-reference/chat):

* whole: one ``chat.completion`` object whose ``id`` is the race id and
  whose ``model`` is the winner's;
* streamed: Server-Sent Events, each a ``chat.completion.chunk`` — a first
  chunk with the ``assistant`` role, content / tool-call / reasoning deltas,
  a last chunk with ``finish_reason``, then (with
  ``stream_options.include_usage``) one chunk with empty ``choices`` and the
  ``usage``, with ``"usage": null`` on every chunk before it, and finally
  ``data: [DONE]``. A failure after the stream began is one ``data:
  {"error": ...}`` event and no ``[DONE]``, which the SDKs raise as an error.

Reasoning text goes out as ``reasoning_content`` (the field OpenAI-compatible
servers use for it). Errors are ``{"error": {"message", "type", "param",
"code"}}``.
"""

from __future__ import annotations

import json
from typing import Any

from attrs import frozen

from .._chunk import Chunk, ToolCall, Usage
from .._result import RaceResult
from ._exchange import ApiError, Final, bad_request
from ._fields import check, field, one_of, required

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
#: Parameters checked by JSON type before they pass on to the engine.
NUMBERS = ("temperature", "top_p", "presence_penalty", "frequency_penalty")
INTEGERS = ("max_tokens", "max_completion_tokens", "seed", "n", "top_logprobs")
BOOLEANS = ("logprobs", "parallel_tool_calls", "store")
STRINGS = ("user", "reasoning_effort", "service_tier", "verbosity")
OBJECTS = ("metadata", "logit_bias", "prediction", "audio")
#: What the gateway owns: never passed to the engine.
OWN = ("model", "messages", "stream", "stream_options")
#: Finish reasons as this API names them (the engine normalises most already).
FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls", "refusal": "content_filter"}

_ERROR_TYPES = {
    "invalid_request": ("invalid_request_error", None),
    "authentication": ("invalid_request_error", "invalid_api_key"),
    "not_found": ("invalid_request_error", "model_not_found"),
    "method_not_allowed": ("invalid_request_error", "method_not_allowed"),
    "request_too_large": ("invalid_request_error", "request_too_large"),
    "internal": ("server_error", None),
    "all_providers_failed": ("server_error", "all_providers_failed"),
    "timeout": ("server_error", "race_timeout"),
    "interrupted": ("server_error", "stream_interrupted"),
}


@frozen
class ChatRequest:
    """A checked request: what the engine gets, and how to answer."""

    model: str | None
    messages: list[dict[str, Any]]
    params: dict[str, Any]
    stream: bool
    include_usage: bool


def parse_chat(body: dict[str, Any]) -> ChatRequest:
    """Check a Chat Completions body; a 400 naming the field for anything malformed."""
    model = field(body, "model", "string")
    messages = required(body, "messages", "array")
    check_messages(messages)
    for name in NUMBERS:
        field(body, name, "number")
    for name in INTEGERS:
        field(body, name, "integer")
    for name in BOOLEANS:
        field(body, name, "boolean")
    for name in STRINGS:
        field(body, name, "string")
    for name in OBJECTS:
        field(body, name, "object")
    if body.get("n") not in (None, 1):
        raise bad_request("n", "Invalid value for 'n': raceway answers with one choice; n must be 1.")
    stop = field(body, "stop", "string", "array")
    for i, s in enumerate(stop if isinstance(stop, list) else ()):
        check(s, f"stop[{i}]", "string")
    check_tools(body)
    stream = bool(field(body, "stream", "boolean"))
    options = field(body, "stream_options", "object") or {}
    if body.get("stream_options") is not None and not stream:  # as OpenAI answers it
        raise bad_request("stream_options", "The 'stream_options' parameter is only allowed when 'stream' is enabled.")
    include_usage = bool(field(options, "include_usage", "boolean", prefix="stream_options."))
    params = {k: v for k, v in body.items() if k not in OWN and v is not None}
    return ChatRequest(model or None, messages, params, stream, include_usage)


def check_messages(messages: list[Any]) -> None:
    if not messages:
        raise bad_request(
            "messages", "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead."
        )
    for i, m in enumerate(messages):
        path = f"messages[{i}]"
        check(m, path, "object")
        role = one_of(required(m, "role", "string", prefix=f"{path}."), f"{path}.role", ROLES)
        content = m.get("content")
        if content is None:
            if role not in ("assistant", "function"):  # (an assistant's may be null: tool calls)
                raise bad_request(f"{path}.content", f"Missing required parameter: '{path}.content'.")
        elif isinstance(content, list):
            for j, part in enumerate(content):
                check(part, f"{path}.content[{j}]", "object")
                required(part, "type", "string", prefix=f"{path}.content[{j}].")
        else:
            check(content, f"{path}.content", "string", "array")
        if role == "tool":
            required(m, "tool_call_id", "string", prefix=f"{path}.")
        calls = field(m, "tool_calls", "array", prefix=f"{path}.")
        for j, call in enumerate(calls or ()):
            p = f"{path}.tool_calls[{j}]"
            check(call, p, "object")
            required(call, "id", "string", prefix=f"{p}.")
            function = required(call, "function", "object", prefix=f"{p}.")
            required(function, "name", "string", prefix=f"{p}.function.")
            required(function, "arguments", "string", prefix=f"{p}.function.")


def check_tools(body: dict[str, Any]) -> None:
    tools = field(body, "tools", "array")
    for i, tool in enumerate(tools or ()):
        check(tool, f"tools[{i}]", "object")
        if required(tool, "type", "string", prefix=f"tools[{i}].") == "function":
            function = required(tool, "function", "object", prefix=f"tools[{i}].")
            required(function, "name", "string", prefix=f"tools[{i}].function.")
            field(function, "parameters", "object", prefix=f"tools[{i}].function.")
    choice = body.get("tool_choice")
    if isinstance(choice, str):
        one_of(choice, "tool_choice", ("none", "auto", "required"))
    elif choice is not None:
        check(choice, "tool_choice", "string", "object")
        required(choice, "type", "string", prefix="tool_choice.")
    fmt = field(body, "response_format", "object")
    if fmt is not None:
        kind = one_of(required(fmt, "type", "string", prefix="response_format."), "response_format.type",
                      ("text", "json_object", "json_schema"))
        if kind == "json_schema":
            schema = required(fmt, "json_schema", "object", prefix="response_format.")
            required(schema, "name", "string", prefix="response_format.json_schema.")


# ------------------------------------------------------------------ answers


def finish_reason(reason: str | None, has_calls: bool) -> str:
    if reason is None:
        return "tool_calls" if has_calls else "stop"
    return FINISH.get(reason, reason)


def usage(u: Usage | None) -> dict[str, Any]:
    """The ``usage`` object (zeros where the provider reported nothing)."""
    i = (u.input_tokens if u else None) or 0
    o = (u.output_tokens if u else None) or 0
    return {
        "prompt_tokens": i,
        "completion_tokens": o,
        "total_tokens": i + o,
        "prompt_tokens_details": {"cached_tokens": (u.cached_input_tokens if u else None) or 0},
        "completion_tokens_details": {"reasoning_tokens": (u.reasoning_tokens if u else None) or 0},
    }


def tool_call(call: ToolCall, index: int) -> dict[str, Any]:
    return {
        "id": call.id or f"call_{index}",
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments},
    }


def completion(final: Final, race_id: str, created: int) -> dict[str, Any]:
    """The ``chat.completion`` object of a whole answer."""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": final.text if final.text or not final.tool_calls else None,
        "refusal": None,
    }
    if final.reasoning:
        message["reasoning_content"] = final.reasoning
    if final.tool_calls:
        message["tool_calls"] = [tool_call(c, i) for i, c in enumerate(final.tool_calls)]
    return {
        "id": race_id,
        "object": "chat.completion",
        "created": created,
        "model": final.model,
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason(final.finish_reason, bool(final.tool_calls)),
            }
        ],
        "usage": usage(final.usage),
    }


def error_body(err: ApiError) -> dict[str, Any]:
    type_, code = _ERROR_TYPES.get(err.kind, ("server_error", None))
    return {"error": {"message": err.message, "type": type_, "param": err.param, "code": err.code or code}}


class ChatStream:
    """Encodes one race's chunks as ``chat.completion.chunk`` events.

    The envelope of a chunk is the same every time but for its delta, so it
    is built once per stream; a text delta costs one ``json.dumps`` of the
    text. Methods return the bytes to write (``b""``: nothing to say).
    """

    __slots__ = ("_envelope", "_head", "_id", "_include_usage", "_open_tail", "_usage_null", "calls", "finish", "usage")

    def __init__(self, race_id: str, model: str, created: int, include_usage: bool) -> None:
        self._id = race_id
        self._head = (
            f'data: {{"id":{json.dumps(race_id)},"object":"chat.completion.chunk","created":{created},'
            f'"model":{json.dumps(model)},"system_fingerprint":null,'
        )
        self._envelope = self._head + '"choices":[{"index":0,"delta":'
        self._usage_null = ',"usage":null' if include_usage else ""
        self._open_tail = ',"logprobs":null,"finish_reason":null}]' + self._usage_null + "}\n\n"
        self._include_usage = include_usage
        self.calls = False
        self.finish: str | None = None
        self.usage: Usage | None = None

    def start(self, first: Chunk | None = None) -> bytes:
        """The role chunk; its ``content`` is ``null`` when the answer opens with a tool call (as OpenAI's)."""
        content = "null" if first is not None and first.tool_calls and not first.text else '""'
        return (self._envelope + '{"role":"assistant","content":' + content + "}" + self._open_tail).encode()

    def chunk(self, c: Chunk) -> bytes:
        if c.usage is not None:
            self.usage = c.usage
        if c.finish_reason is not None:
            self.finish = c.finish_reason
        if c.tool_calls or c.reasoning:
            delta: dict[str, Any] = {}
            if c.reasoning:
                delta["reasoning_content"] = c.reasoning
            if c.text:
                delta["content"] = c.text
            if c.tool_calls:
                self.calls = True
                delta["tool_calls"] = [
                    {"index": d.index, "id": d.id, "type": "function", "function": {"name": d.name, "arguments": d.arguments}}
                    if d.id is not None or d.name is not None
                    else {"index": d.index, "function": {"arguments": d.arguments}}
                    for d in c.tool_calls
                ]
            text = json.dumps(delta)
        elif c.text:
            text = '{"content":' + json.dumps(c.text) + "}"
        else:
            return b""
        return (self._envelope + text + self._open_tail).encode()

    def end(self, result: RaceResult) -> bytes:
        calls = self.calls or bool(result.tool_calls)
        reason = finish_reason(result.finish_reason or self.finish, calls)
        out = (
            self._envelope + '{},"logprobs":null,"finish_reason":' + json.dumps(reason) + "}]" + self._usage_null + "}\n\n"
        )
        if self._include_usage:
            out += self._head + '"choices":[],"usage":' + json.dumps(usage(result.usage or self.usage)) + "}\n\n"
        return (out + "data: [DONE]\n\n").encode()

    def error(self, err: ApiError) -> bytes:
        return ("data: " + json.dumps(error_body(err)) + "\n\n").encode()
