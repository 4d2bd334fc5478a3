"""The Anthropic Messages API, as the gateway speaks it.

``POST /v1/messages`` takes the Anthropic request body and translates it into
the OpenAI-format messages and parameters the engine takes:

==============================  ==============================================
Anthropic                       engine (OpenAI format)
==============================  ==============================================
``system`` (text or blocks)     a first ``system`` message
``text`` block                  a ``text`` part (a lone one: a plain string)
``image`` block (base64, url)   an ``image_url`` part (a data URL, or the URL)
``tool_use`` block (assistant)  an entry of the assistant's ``tool_calls``
``tool_result`` block (user)    a ``tool`` message with ``tool_call_id``,
                                before the rest of that user turn
``thinking`` blocks (assistant) dropped (a past turn's reasoning)
``tools`` (``input_schema``)    ``tools`` of type ``function`` (``parameters``)
``tool_choice`` auto/any/tool/  ``auto``/``required``/named/``none``;
none                            ``disable_parallel_tool_use``:
                                ``parallel_tool_calls: false``
``stop_sequences``              ``stop``
``metadata.user_id``            ``user``
``output_format`` /             ``response_format`` ``json_schema``
``output_config.format``
``top_k``, ``thinking``,        dropped: sampling and effort hints with no
``service_tier``                equivalent
==============================  ==============================================

Answers follow https://docs.anthropic.com/en/api/messages and its streaming
page: a whole ``message`` object (``id``: the race id, ``model``: the
winner's; content blocks ``thinking``, ``text``, ``tool_use``), or the named
events ``message_start``, ``ping``, ``content_block_start`` /
``content_block_delta`` (``text_delta``, ``thinking_delta``,
``input_json_delta``) / ``content_block_stop`` per block, ``message_delta``
(``stop_reason``, ``usage``) and ``message_stop``. A failure after the
stream began is an ``error`` event. ``usage.input_tokens`` excludes what the
prompt cache served (``cache_read_input_tokens``), as Anthropic counts.
"""

from __future__ import annotations

import json
from typing import Any

from .._chunk import Chunk, ToolCall, Usage
from .._result import RaceResult
from ._exchange import ApiError, Final, bad_request
from ._fields import check, field, one_of, required
from ._openai import ChatRequest

#: Fields taken as they are, or translated.
KNOWN = {
    "model", "messages", "max_tokens", "system", "stream", "temperature", "top_p", "top_k",
    "stop_sequences", "metadata", "tools", "tool_choice", "thinking", "service_tier",
    "output_format", "output_config", "container", "context_management", "mcp_servers",
    "cache_control", "inference_geo", "speed", "diagnostics", "user_profile_id", "workspace_id",
}
#: Known fields with no equivalent that may be dropped (hints, not semantics: caching,
#: routing and account hints of Anthropic's own).
DROPPED = (
    "top_k", "thinking", "service_tier", "container", "context_management",
    "cache_control", "inference_geo", "speed", "diagnostics", "user_profile_id", "workspace_id",
)
STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "refusal"}

_ERROR_TYPES = {
    "invalid_request": "invalid_request_error",
    "authentication": "authentication_error",
    "not_found": "not_found_error",
    "method_not_allowed": "invalid_request_error",
    "request_too_large": "request_too_large",
    "internal": "api_error",
    "all_providers_failed": "api_error",
    "timeout": "timeout_error",
    "interrupted": "api_error",
}


def parse_messages(body: dict[str, Any]) -> ChatRequest:
    """Check and translate a Messages body; a 400 naming the field for anything malformed."""
    for name in body:
        if name not in KNOWN:
            raise bad_request(name, f"{name}: Extra inputs are not permitted")
    if body.get("mcp_servers"):
        raise bad_request("mcp_servers", "mcp_servers: MCP servers are not supported by raceway")
    model = field(body, "model", "string")
    raw = required(body, "messages", "array")
    if not raw:
        raise bad_request("messages", "messages: List should have at least 1 item")
    messages: list[dict[str, Any]] = []
    system = body.get("system")
    if system is not None:
        text = _text_of(check(system, "system", "string", "array"), "system")
        if text:
            messages.append({"role": "system", "content": text})
    for i, m in enumerate(raw):
        messages.extend(_message(m, f"messages.{i}"))
    params: dict[str, Any] = {}
    max_tokens = field(body, "max_tokens", "integer")
    if max_tokens is not None:
        params["max_tokens"] = max_tokens
    for name in ("temperature", "top_p"):
        value = field(body, name, "number")
        if value is not None:
            params[name] = value
    field(body, "top_k", "integer")
    stops = field(body, "stop_sequences", "array")
    if stops:
        params["stop"] = [check(s, f"stop_sequences.{i}", "string") for i, s in enumerate(stops)]
    metadata = field(body, "metadata", "object")
    if metadata and field(metadata, "user_id", "string", prefix="metadata.") is not None:
        params["user"] = metadata["user_id"]
    _tools(body, params)
    _output(body, params)
    stream = bool(field(body, "stream", "boolean"))
    if max_tokens is None:  # required by the Messages API (checked last: other mistakes are named first)
        raise bad_request("max_tokens", "max_tokens: Field required")
    return ChatRequest(model or None, messages, params, stream, False)


def _text_of(value: Any, path: str) -> str:
    if isinstance(value, str):
        return value
    parts = []
    for i, block in enumerate(value):
        check(block, f"{path}.{i}", "object")
        one_of(required(block, "type", "string", prefix=f"{path}.{i}."), f"{path}.{i}.type", ("text",))
        parts.append(required(block, "text", "string", prefix=f"{path}.{i}."))
    return "\n".join(parts)


def _message(m: Any, path: str) -> list[dict[str, Any]]:
    check(m, path, "object")
    role = one_of(required(m, "role", "string", prefix=f"{path}."), f"{path}.role", ("user", "assistant"))
    content = required(m, "content", "string", "array", prefix=f"{path}.")
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    out: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for j, block in enumerate(content):
        p = f"{path}.content.{j}"
        check(block, p, "object")
        kind = required(block, "type", "string", prefix=f"{p}.")
        if kind == "text":
            parts.append({"type": "text", "text": required(block, "text", "string", prefix=f"{p}.")})
        elif kind == "image":
            parts.append(_image(block, p))
        elif kind == "tool_use" and role == "assistant":
            arguments = json.dumps(block.get("input") or {})
            name = required(block, "name", "string", prefix=f"{p}.")
            calls.append({"id": required(block, "id", "string", prefix=f"{p}."), "type": "function",
                          "function": {"name": name, "arguments": arguments}})
        elif kind == "tool_result" and role == "user":
            out.append(_tool_result(block, p))
        elif kind in ("thinking", "redacted_thinking") and role == "assistant":
            continue
        else:
            raise bad_request(f"{p}.type", f"{p}.type: {kind!r} blocks are not supported in {role} messages by raceway")
    if role == "assistant":
        text = "".join(part["text"] for part in parts if part["type"] == "text")
        if any(part["type"] != "text" for part in parts):
            raise bad_request(f"{path}.content", f"{path}.content: images are not supported in assistant messages")
        message: dict[str, Any] = {"role": "assistant", "content": text or None}
        if calls:
            message["tool_calls"] = calls
        if text or calls:
            out.append(message)
    elif parts:
        lone_text = len(parts) == 1 and parts[0]["type"] == "text"
        out.append({"role": "user", "content": parts[0]["text"] if lone_text else parts})
    return out


def _image(block: dict[str, Any], path: str) -> dict[str, Any]:
    source = required(block, "source", "object", prefix=f"{path}.")
    kind = one_of(required(source, "type", "string", prefix=f"{path}.source."), f"{path}.source.type", ("base64", "url"))
    if kind == "base64":
        media = required(source, "media_type", "string", prefix=f"{path}.source.")
        data = required(source, "data", "string", prefix=f"{path}.source.")
        url = f"data:{media};base64,{data}"
    else:
        url = required(source, "url", "string", prefix=f"{path}.source.")
    return {"type": "image_url", "image_url": {"url": url}}


def _tool_result(block: dict[str, Any], path: str) -> dict[str, Any]:
    call_id = required(block, "tool_use_id", "string", prefix=f"{path}.")
    content = block.get("content")
    if content is None:
        text = ""
    else:
        check(content, f"{path}.content", "string", "array")
        if isinstance(content, list):
            for k, part in enumerate(content):
                check(part, f"{path}.content.{k}", "object")
                if part.get("type") != "text":
                    raise bad_request(f"{path}.content.{k}.type", f"{path}.content.{k}.type: only text tool results are supported by raceway")
        text = _text_of(content, f"{path}.content")
    if field(block, "is_error", "boolean", prefix=f"{path}."):
        text = f"Error: {text}"
    return {"role": "tool", "tool_call_id": call_id, "content": text}


def _tools(body: dict[str, Any], params: dict[str, Any]) -> None:
    tools = field(body, "tools", "array")
    if tools:
        out = []
        for i, tool in enumerate(tools):
            p = f"tools.{i}"
            check(tool, p, "object")
            kind = field(tool, "type", "string", prefix=f"{p}.")
            if kind not in (None, "custom"):
                raise bad_request(f"{p}.type", f"{p}.type: server tool {kind!r} is not supported by raceway")
            function: dict[str, Any] = {"name": required(tool, "name", "string", prefix=f"{p}.")}
            if field(tool, "description", "string", prefix=f"{p}."):
                function["description"] = tool["description"]
            function["parameters"] = required(tool, "input_schema", "object", prefix=f"{p}.")
            out.append({"type": "function", "function": function})
        params["tools"] = out
    choice = field(body, "tool_choice", "object")
    if choice is not None:
        kind = one_of(required(choice, "type", "string", prefix="tool_choice."), "tool_choice.type", ("auto", "any", "tool", "none"))
        if kind == "tool":
            name = required(choice, "name", "string", prefix="tool_choice.")
            params["tool_choice"] = {"type": "function", "function": {"name": name}}
        else:
            params["tool_choice"] = {"auto": "auto", "any": "required", "none": "none"}[kind]
        if field(choice, "disable_parallel_tool_use", "boolean", prefix="tool_choice."):
            params["parallel_tool_calls"] = False


def _output(body: dict[str, Any], params: dict[str, Any]) -> None:
    fmt = field(body, "output_format", "object")
    where = "output_format"
    config = field(body, "output_config", "object")
    if config is not None and config.get("format") is not None:
        fmt, where = check(config["format"], "output_config.format", "object"), "output_config.format"
    if fmt is None:
        return
    one_of(required(fmt, "type", "string", prefix=f"{where}."), f"{where}.type", ("json_schema",))
    schema = required(fmt, "schema", "object", prefix=f"{where}.")
    params["response_format"] = {"type": "json_schema", "json_schema": {"name": "output", "schema": schema, "strict": True}}


# ------------------------------------------------------------------ answers


def stop_reason(reason: str | None, has_calls: bool) -> str:
    if reason is None:
        return "tool_use" if has_calls else "end_turn"
    return STOP.get(reason, reason)


def usage(u: Usage | None) -> dict[str, Any]:
    """The ``usage`` object; ``input_tokens`` without the cached part, as Anthropic counts."""
    cached = (u.cached_input_tokens if u else None) or 0
    total_in = (u.input_tokens if u else None) or 0
    return {
        "input_tokens": max(0, total_in - cached),
        "output_tokens": (u.output_tokens if u else None) or 0,
        "cache_read_input_tokens": cached,
        "cache_creation_input_tokens": 0,
    }


def _input(arguments: str) -> Any:
    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _tool_id(call_id: str | None, index: int) -> str:
    return call_id or f"toolu_{index}"


def message(final: Final, race_id: str) -> dict[str, Any]:
    """The ``message`` object of a whole answer."""
    content: list[dict[str, Any]] = []
    if final.reasoning:
        content.append({"type": "thinking", "thinking": final.reasoning, "signature": ""})
    if final.text or not final.tool_calls:
        content.append({"type": "text", "text": final.text})
    for i, call in enumerate(final.tool_calls):
        content.append(_tool_use(call, i))
    return {
        "id": race_id,
        "type": "message",
        "role": "assistant",
        "model": final.model,
        "content": content,
        "stop_reason": stop_reason(final.finish_reason, bool(final.tool_calls)),
        "stop_sequence": None,
        "usage": usage(final.usage),
    }


def _tool_use(call: ToolCall, index: int) -> dict[str, Any]:
    return {"type": "tool_use", "id": _tool_id(call.id, index), "name": call.name, "input": _input(call.arguments)}


def error_body(err: ApiError, request_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "error", "error": {"type": _ERROR_TYPES.get(err.kind, "api_error"), "message": err.message}}
    if request_id:
        body["request_id"] = request_id
    return body


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"


class MessageStream:
    """Encodes one race's chunks as the Messages API's named events.

    Content blocks open as the chunks need them (reasoning: ``thinking``;
    text: ``text``; a new tool call: ``tool_use``) and close when another
    kind begins, so the events come in the API's order. Methods return the
    bytes to write (``b""``: nothing to say).
    """

    __slots__ = ("_block", "_calls", "_id", "_model", "_next", "_text_prefix", "finish", "usage")

    def __init__(self, race_id: str, model: str) -> None:
        self._id = race_id
        self._model = model
        self._block: str | None = None  # kind of the open block
        self._next = 0  # index of the next block
        self._calls: dict[int, int] = {}  # tool call index -> its block's index
        self._text_prefix = ""
        self.finish: str | None = None
        self.usage: Usage | None = None

    def start(self, first: Chunk | None = None) -> bytes:
        message: dict[str, Any] = {
            "id": self._id, "type": "message", "role": "assistant", "model": self._model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": usage(None),
        }
        return (_event("message_start", {"type": "message_start", "message": message})
                + _event("ping", {"type": "ping"})).encode()

    def _open(self, kind: str, block: dict[str, Any], out: list[str]) -> int:
        self._close(out)
        index = self._next
        self._next += 1
        self._block = kind
        out.append(_event("content_block_start", {"type": "content_block_start", "index": index, "content_block": block}))
        if kind == "text":
            self._text_prefix = (
                'event: content_block_delta\ndata: {"type":"content_block_delta","index":'
                f'{index},"delta":{{"type":"text_delta","text":'
            )
        return index

    def _close(self, out: list[str]) -> None:
        if self._block is not None:
            out.append(_event("content_block_stop", {"type": "content_block_stop", "index": self._next - 1}))
            self._block = None

    def chunk(self, c: Chunk) -> bytes:
        if c.usage is not None:
            self.usage = c.usage
        if c.finish_reason is not None:
            self.finish = c.finish_reason
        out: list[str] = []
        if c.reasoning:
            if self._block != "thinking":
                self._open("thinking", {"type": "thinking", "thinking": "", "signature": ""}, out)
            delta = {"type": "thinking_delta", "thinking": c.reasoning}
            out.append(_event("content_block_delta", {"type": "content_block_delta", "index": self._next - 1, "delta": delta}))
        if c.text:
            if self._block != "text":
                self._open("text", {"type": "text", "text": ""}, out)
            out.append(self._text_prefix + json.dumps(c.text) + "}}\n\n")
        for d in c.tool_calls:
            index = self._calls.get(d.index)
            if index is None:
                block = {"type": "tool_use", "id": _tool_id(d.id, d.index), "name": d.name or "", "input": {}}
                index = self._calls[d.index] = self._open("tool_use", block, out)
            if d.arguments:
                delta = {"type": "input_json_delta", "partial_json": d.arguments}
                out.append(_event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}))
        return "".join(out).encode() if out else b""

    def end(self, result: RaceResult) -> bytes:
        out: list[str] = []
        if self._next == 0:  # no content at all: one empty text block, as the API sends
            self._open("text", {"type": "text", "text": ""}, out)
        self._close(out)
        reason = stop_reason(result.finish_reason or self.finish, bool(self._calls or result.tool_calls))
        u = usage(result.usage or self.usage)
        out.append(_event("message_delta", {"type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": None}, "usage": u}))
        out.append(_event("message_stop", {"type": "message_stop"}))
        return "".join(out).encode()

    def error(self, err: ApiError) -> bytes:
        return _event("error", error_body(err)).encode()
