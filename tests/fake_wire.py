"""The fake upstream's wire formats: what it checks in a request, what it streams back.

Written from the public API references, not from raceway's code, so that the
fake judges raceway's requests as the real services would:

* OpenAI Chat Completions (https://platform.openai.com/docs/api-reference/chat/create,
  .../chat-streaming): ``chat.completion.chunk`` events with ``delta.content``,
  ``delta.reasoning_content`` (or ``delta.reasoning``), ``delta.tool_calls``
  keyed by ``index``, ``finish_reason``, a usage chunk with
  ``prompt_tokens_details.cached_tokens`` and
  ``completion_tokens_details.reasoning_tokens``, ``data: [DONE]``.
* Anthropic Messages (https://docs.anthropic.com/en/api/messages, .../streaming,
  .../tool-use, .../extended-thinking, .../vision, .../structured-outputs):
  named events, ``thinking`` blocks with ``thinking_delta`` and
  ``signature_delta``, ``redacted_thinking``, ``tool_use`` blocks with
  ``input_json_delta``, ``stop_reason`` ``tool_use``; requests checked for
  content block shapes (images with ``base64``/``url`` sources, ``tool_use``
  answered by ``tool_result`` in the next user turn), ``tools``,
  ``tool_choice``, ``output_config.format`` and ``thinking`` budgets.

An answer is a plan of steps — reasoning words, text words, tool-call starts
and argument pieces — paced by the :class:`Behaviour`: the first step after
``first_token_delay``, the first visible step (text or tool call) after a
further ``content_delay``, then ``chunk_delay`` between steps.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import attrs
import trio

FAULTS = (
    None,
    "rate_limit",  # 429 with retry-after (the value of `retry_after`)
    "server_error",  # 500
    "not_found",  # 404 with an error body
    "unauthorized",  # 401 (also whenever `api_key` is set and the request's key differs)
    "hang",  # never sends headers
    "disconnect",  # drops the connection after `fault_after` steps
    "truncate",  # ends the body cleanly after `fault_after` steps: no [DONE] / message_stop
    "malformed",  # an event that is not JSON after `fault_after` steps
    "unexpected",  # an event that is JSON but not an object after `fault_after` steps
    "stall",  # stops sending after `fault_after` steps, keeps the connection open
    "stream_error",  # an in-stream error object/event after `fault_after` steps
    "endless_line",  # after `fault_after` steps, one line that never ends
    "linger",  # a complete answer, but the body does not end after [DONE] / message_stop
)
STATUS_FAULTS = ("rate_limit", "server_error", "not_found", "unauthorized", "hang")
ANTHROPIC_IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")


@attrs.define(kw_only=True)
class Behaviour:
    """How one named upstream answers. Times are seconds."""

    text: str = "Hello from the fake upstream, streamed word by word."
    reasoning: str = ""  # thinking streamed before the answer
    reasoning_field: str = "reasoning_content"  # OpenAI format: or "reasoning"
    signature: str = "sig-fake-0123"  # Anthropic: the thinking block's signature
    redacted_thinking: str | None = None  # Anthropic: a redacted_thinking block's data
    tool_calls: tuple[dict[str, Any], ...] = ()  # {"name", "arguments" (JSON text), "id"?}
    argument_pieces: int = 3  # each call's arguments stream in this many pieces
    reuse_index: bool = False  # OpenAI: parallel calls all at index 0, told apart by id
    cached_tokens: int = 0  # reported as cached input tokens
    headers_delay: float = 0.0
    first_token_delay: float = 0.0
    content_delay: float = 0.0  # after the reasoning, before the first text or tool call
    chunk_delay: float = 0.0
    role_chunk: bool = (
        True  # OpenAI: a role-only first chunk; Anthropic: message_start, content_block_start, ping
    )
    fault: str | None = attrs.field(default=None, validator=attrs.validators.in_(FAULTS))
    fault_after: int = 1
    retry_after: str | None = "2"
    api_key: str | None = None  # expected key; None accepts any
    echo_key: bool = False  # 401 bodies quote the whole key (a careless upstream)
    echo_headers: bool = False  # fault texts quote every request header (a careless upstream)
    model_list: tuple[str, ...] = ("fake-model-1", "fake-model-2")


@attrs.define(eq=False)
class Exchange:
    """One request the fake upstream received, and what became of it (trio clock times)."""

    name: str
    api: str  # "openai", "anthropic" or "models"
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    received_at: float
    client_port: int | None = (
        None  # the client's side of the connection (same port: a reused connection)
    )
    headers_sent_at: float | None = None
    first_reasoning_at: float | None = None
    first_token_at: float | None = None  # the first text or tool-call step
    finished_at: float | None = None  # the whole response went out
    disconnected_at: float | None = None  # the client went away first
    chunks_sent: int = 0
    bytes_sent: int = 0

    @property
    def ended(self) -> bool:
        return self.finished_at is not None or self.disconnected_at is not None


Script = Callable[[Exchange], "Behaviour | None"]


# -------------------------------------------------------------------- the plan


@attrs.frozen
class Step:
    kind: str  # "reasoning", "text", "call_start", "call_args"
    text: str = ""
    call: int = 0
    id: str = ""
    name: str = ""


def words(text: str) -> list[str]:
    return re.findall(r"\S+\s*", text)


def plan(b: Behaviour, body: dict[str, Any], id_prefix: str) -> tuple[list[Step], str]:
    """The steps of the answer and its (OpenAI-style) finish reason."""
    steps = [Step("reasoning", w) for w in words(b.reasoning)]
    text = words(b.text) if b.text or not b.tool_calls else []
    if not text and not b.tool_calls:
        text = [""]
    limit = _limit(body, "max_completion_tokens", "max_tokens")
    finish = "tool_calls" if b.tool_calls else "stop"
    if limit is not None and limit < len(text):
        text, finish = text[:limit], "length"
    steps += [Step("text", w) for w in text]
    if finish != "length":
        for k, call in enumerate(b.tool_calls):
            call_id = call.get("id") or f"{id_prefix}{k}"
            steps.append(Step("call_start", call=k, id=call_id, name=call["name"]))
            args = call.get("arguments", "{}")
            size = max(1, -(-len(args) // max(1, b.argument_pieces)))
            steps += [
                Step("call_args", args[i : i + size], call=k, id=call_id)
                for i in range(0, len(args), size)
            ]
    return steps, finish


async def paced(b: Behaviour, steps: list[Step]) -> AsyncIterator[tuple[int, Step]]:
    visible = False
    for i, step in enumerate(steps):
        delay = b.first_token_delay if i == 0 else b.chunk_delay
        if step.kind != "reasoning" and not visible:
            visible = True
            delay += b.content_delay if i else 0.0
        await trio.sleep(delay)
        yield i, step


def fault_due(b: Behaviour, i: int) -> str | None:
    streamed = ("disconnect", "truncate", "malformed", "unexpected", "stall", "stream_error")
    if b.fault in (*streamed, "endless_line") and i == b.fault_after:
        return b.fault
    return None


def sse(data: Any, event: str | None = None) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data)
    prefix = f"event: {event}\n" if event else ""
    return f"{prefix}data: {text}\n\n".encode()


def echo(ex: Exchange, b: Behaviour) -> str:
    """What a careless upstream quotes back: every header of the request."""
    if not b.echo_headers:
        return ""
    # the ones that carry secrets first, so they are inside any cut of the text
    order = sorted(
        ex.headers.items(),
        key=lambda kv: kv[0] not in ("authorization", "x-api-key") and not kv[0].startswith("x-"),
    )
    return " (" + "; ".join(f"{k}: {v}" for k, v in order) + ")"


def prompt_words(body: dict[str, Any]) -> int:
    count = len(str(body.get("system", "")).split()) if isinstance(body.get("system"), str) else 0
    for m in body.get("messages") or []:
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, str):
            count += len(content.split())
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    count += len(part["text"].split())
    return count


def _limit(body: dict[str, Any], *keys: str) -> int | None:
    for key in keys:
        value = body.get(key)
        if isinstance(value, int) and value > 0:
            return value
    return None


# -------------------------------------------------------------------- OpenAI


async def openai_script(ex: Exchange, b: Behaviour) -> AsyncIterator[tuple[str, bytes]]:
    body = ex.body
    model = body["model"]
    created = int(time.time())
    steps, finish = plan(b, body, "call_fake_")
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        obj = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": None,
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ],
        }
        if include_usage:
            obj["usage"] = None
        return sse(obj)

    def delta(step: Step) -> dict[str, Any]:
        if step.kind == "reasoning":
            return {b.reasoning_field: step.text}
        if step.kind == "text":
            return {"content": step.text}
        index = 0 if b.reuse_index else step.call
        if step.kind == "call_start":
            call = {
                "index": index,
                "id": step.id,
                "type": "function",
                "function": {"name": step.name, "arguments": ""},
            }
            return {"tool_calls": [call]}
        call = {"index": index, "function": {"arguments": step.text}}
        if b.reuse_index:
            call["id"] = step.id  # the only way to tell the calls apart
        return {"tool_calls": [call]}

    if b.role_chunk:
        yield "meta", chunk({"role": "assistant", "content": ""})
    for_end = len(steps)
    async for i, step in paced(b, steps):
        if fault := fault_due(b, i):
            async for out in fault_steps(fault, "openai", ex, b):
                yield out
            return
        yield ("reasoning" if step.kind == "reasoning" else "token"), chunk(delta(step))
    if fault := fault_due(b, for_end):
        async for out in fault_steps(fault, "openai", ex, b):
            yield out
        return
    yield "meta", chunk({}, finish)
    if include_usage:
        prompt = prompt_words(body)
        reasoning = sum(s.kind == "reasoning" for s in steps)
        completion = len(steps)
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": b.cached_tokens},
            "completion_tokens_details": {"reasoning_tokens": reasoning},
        }
        obj = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [],
            "usage": usage,
        }
        yield "meta", sse(obj)
    yield "meta", sse("[DONE]")
    if b.fault == "linger":
        yield "stall", b""


def openai_problem(body: Any) -> str | None:
    """Why the Chat Completions API would refuse ``body`` (400), or ``None``."""
    if (
        not isinstance(body, dict)
        or not isinstance(body.get("messages"), list)
        or not body.get("model")
    ):
        return "messages and model are required"
    open_calls: set[str] = set()
    for i, m in enumerate(body["messages"]):
        if not isinstance(m, dict):
            return f"messages[{i}] must be an object"
        role = m.get("role")
        if role not in ("system", "developer", "user", "assistant", "tool"):
            return f"messages[{i}].role: invalid value {role!r}"
        content = m.get("content")
        if isinstance(content, list):
            for k, part in enumerate(content):
                kind = part.get("type") if isinstance(part, dict) else None
                if kind == "image_url":
                    image = part.get("image_url")
                    if not isinstance(image, dict) or not isinstance(image.get("url"), str):
                        return f"messages[{i}].content[{k}].image_url.url is required"
                elif kind not in ("text", "refusal", "input_audio", "file"):
                    return f"messages[{i}].content[{k}].type: invalid value {kind!r}"
        if role == "assistant":
            open_calls = set()
            for j, call in enumerate(m.get("tool_calls") or []):
                fn = call.get("function") if isinstance(call, dict) else None
                if not isinstance(fn, dict) or not isinstance(fn.get("arguments"), str):
                    return f"messages[{i}].tool_calls[{j}].function.arguments must be a string"
                open_calls.add(call.get("id"))
        elif role == "tool":
            if m.get("tool_call_id") not in open_calls:
                return (
                    "messages with role 'tool' must be a response to a preceding message"
                    f" with 'tool_calls' (messages[{i}])"
                )
        else:
            open_calls = set()
    for i, tool in enumerate(body.get("tools") or []):
        fn = tool.get("function") if isinstance(tool, dict) else None
        if tool.get("type") != "function" or not isinstance(fn, dict) or not fn.get("name"):
            return f"tools[{i}]: a function tool needs type 'function' and function.name"
    choice = body.get("tool_choice")
    if choice is not None and choice not in ("auto", "none", "required"):
        if not (isinstance(choice, dict) and choice.get("type") == "function"):
            return f"tool_choice: invalid value {choice!r}"
    fmt = body.get("response_format")
    if fmt is not None and (
        not isinstance(fmt, dict) or fmt.get("type") not in ("text", "json_object", "json_schema")
    ):
        return f"response_format: invalid value {fmt!r}"
    return None


# -------------------------------------------------------------------- Anthropic


async def anthropic_script(ex: Exchange, b: Behaviour) -> AsyncIterator[tuple[str, bytes]]:
    body = ex.body
    steps, finish = plan(b, body, "toolu_fake_")
    stop = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}[finish]
    start = {
        "type": "message_start",
        "message": {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": body["model"],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": prompt_words(body),
                "cache_read_input_tokens": b.cached_tokens,
                "cache_creation_input_tokens": 0,
                "output_tokens": 1,
            },
        },
    }
    block = -1  # the open block's index
    kind = ""  # and its kind

    def begin(new: str, step: Step) -> list[bytes]:
        nonlocal block, kind
        out = end()
        block += 1
        kind = new
        if new == "thinking":
            content: dict[str, Any] = {"type": "thinking", "thinking": ""}
        elif new == "text":
            content = {"type": "text", "text": ""}
        else:
            content = {"type": "tool_use", "id": step.id, "name": step.name, "input": {}}
        start_event = {"type": "content_block_start", "index": block, "content_block": content}
        return [*out, sse(start_event, "content_block_start")]

    def end() -> list[bytes]:
        nonlocal kind
        out = []
        if kind == "thinking":
            sig = {"type": "signature_delta", "signature": b.signature}
            out.append(
                sse(
                    {"type": "content_block_delta", "index": block, "delta": sig},
                    "content_block_delta",
                )
            )
        if kind:
            out.append(sse({"type": "content_block_stop", "index": block}, "content_block_stop"))
        kind = ""
        return out

    def delta_of(step: Step) -> dict[str, Any]:
        if step.kind == "reasoning":
            return {"type": "thinking_delta", "thinking": step.text}
        if step.kind == "text":
            return {"type": "text_delta", "text": step.text}
        return {"type": "input_json_delta", "partial_json": step.text}

    opening = [sse(start, "message_start")]
    if b.redacted_thinking is not None:
        block += 1
        redacted = {"type": "redacted_thinking", "data": b.redacted_thinking}
        opening.append(
            sse(
                {"type": "content_block_start", "index": block, "content_block": redacted},
                "content_block_start",
            )
        )
        opening.append(sse({"type": "content_block_stop", "index": block}, "content_block_stop"))
    if b.role_chunk and steps and steps[0].kind == "text":
        opening += begin("text", steps[0])
    opening.append(sse({"type": "ping"}, "ping"))
    if b.role_chunk:
        for part in opening:
            yield "meta", part
    async for i, step in paced(b, steps):
        if i == 0 and not b.role_chunk:
            for part in opening:
                yield "meta", part
        if fault := fault_due(b, i):
            async for out in fault_steps(fault, "anthropic", ex, b):
                yield out
            return
        wanted = {"reasoning": "thinking", "text": "text"}.get(step.kind, "tool_use")
        parts: list[bytes] = []
        if step.kind == "call_start" or wanted != kind:
            parts += begin(wanted, step)
        if step.kind != "call_start":
            delta = {"type": "content_block_delta", "index": block, "delta": delta_of(step)}
            parts.append(sse(delta, "content_block_delta"))
        yield ("reasoning" if step.kind == "reasoning" else "token"), b"".join(parts)
    if fault_due(b, len(steps)):
        async for out in fault_steps(b.fault or "", "anthropic", ex, b):
            yield out
        return
    closing = end()
    message_delta = {
        "type": "message_delta",
        "delta": {"stop_reason": stop, "stop_sequence": None},
        "usage": {"output_tokens": len(steps)},
    }
    closing.append(sse(message_delta, "message_delta"))
    closing.append(sse({"type": "message_stop"}, "message_stop"))
    for part in closing:
        yield "meta", part
    if b.fault == "linger":
        yield "stall", b""


def anthropic_problem(headers: dict[str, str], body: Any) -> str | None:
    """Why the Messages API would refuse this request (400), or ``None``."""
    if "anthropic-version" not in headers:
        return "anthropic-version: header is required"
    if not isinstance(body, dict):
        return "body must be a JSON object"
    if not body.get("model"):
        return "model: Field required"
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int):
        return "max_tokens: Field required"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: Field required"
    pending: set[str] = set()  # tool_use ids the next user turn must answer
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ("user", "assistant"):
            role = m.get("role") if isinstance(m, dict) else None
            return f"messages.{i}.role: Input should be 'user' or 'assistant' (got {role!r}); use the top-level system parameter"
        content = m.get("content")
        blocks = [] if isinstance(content, str) else content
        if not isinstance(blocks, list):
            return f"messages.{i}.content: Input should be a string or a list of blocks"
        answered: set[str] = set()
        for k, block in enumerate(blocks):
            problem = _block_problem(block, m["role"], f"messages.{i}.content.{k}")
            if problem:
                return problem
            if block["type"] == "tool_result":
                if block.get("tool_use_id") not in pending:
                    return f"messages.{i}.content.{k}: unexpected `tool_use_id` found in `tool_result` blocks: {block.get('tool_use_id')}"
                answered.add(block["tool_use_id"])
        if pending and (m["role"] != "user" or answered != pending):
            return f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: {', '.join(sorted(pending - answered))}"
        pending = (
            {blk["id"] for blk in blocks if blk["type"] == "tool_use"}
            if m["role"] == "assistant"
            else set()
        )
    for i, tool in enumerate(body.get("tools") or []):
        schema = tool.get("input_schema") if isinstance(tool, dict) else None
        if (
            not isinstance(tool, dict)
            or not tool.get("name")
            or not isinstance(schema, dict)
            or schema.get("type") != "object"
        ):
            return f"tools.{i}: a tool needs a name and an input_schema of type object"
    choice = body.get("tool_choice")
    if choice is not None:
        if not isinstance(choice, dict) or choice.get("type") not in (
            "auto",
            "any",
            "tool",
            "none",
        ):
            return f"tool_choice: invalid value {choice!r}"
        if choice["type"] == "tool" and not choice.get("name"):
            return "tool_choice.name: Field required"
    config = body.get("output_config")
    if config is not None:
        fmt = config.get("format") if isinstance(config, dict) else None
        if fmt is not None and (
            not isinstance(fmt, dict)
            or fmt.get("type") != "json_schema"
            or not isinstance(fmt.get("schema"), dict)
        ):
            return "output_config.format: should be {type: json_schema, schema: {...}}"
    openai_only = (
        "response_format",
        "reasoning_effort",
        "parallel_tool_calls",
        "n",
        "seed",
        "stop",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "logprobs",
        "stream_options",
        "user",
        "max_completion_tokens",
    )
    for key in openai_only:
        if key in body:
            return f"{key}: Extra inputs are not permitted"
    thinking = body.get("thinking")
    if thinking is not None:
        budget = thinking.get("budget_tokens") if isinstance(thinking, dict) else None
        if not isinstance(budget, int) or budget < 1024 or budget >= max_tokens:
            return "thinking.budget_tokens: must be at least 1024 and less than max_tokens"
        if "temperature" in body or "top_k" in body:
            return "temperature and top_k may not be set with thinking"
    temperature = body.get("temperature")
    if isinstance(temperature, int | float) and not 0 <= temperature <= 1:
        return "temperature: Input should be less than or equal to 1"
    return None


def _block_problem(block: Any, role: str, where: str) -> str | None:
    kind = block.get("type") if isinstance(block, dict) else None
    allowed = {
        "user": ("text", "image", "document", "tool_result"),
        "assistant": ("text", "tool_use", "thinking", "redacted_thinking"),
    }[role]
    if kind not in allowed:
        return f"{where}.type: {kind!r} is not allowed in a {role} turn"
    if kind == "text" and not (isinstance(block.get("text"), str) and block["text"]):
        return f"{where}: text content blocks must be non-empty"
    if kind in ("image", "document"):
        source = block.get("source")
        source_kind = source.get("type") if isinstance(source, dict) else None
        if source_kind == "base64":
            types = ANTHROPIC_IMAGE_TYPES if kind == "image" else ("application/pdf",)
            if source.get("media_type") not in types or not isinstance(source.get("data"), str):
                return f"{where}.source: base64 needs a media_type of {', '.join(types)} and data"
        elif source_kind == "url":
            if not isinstance(source.get("url"), str):
                return f"{where}.source.url: Field required"
        else:
            return f"{where}.source.type: should be 'base64' or 'url'"
    if kind == "tool_use":
        if not block.get("id") or not block.get("name") or not isinstance(block.get("input"), dict):
            return f"{where}: tool_use needs id, name and an input object"
    if kind == "tool_result":
        content = block.get("content", "")
        if not isinstance(content, str):
            for j, inner in enumerate(content):
                if _block_problem(inner, "user", f"{where}.content.{j}") or inner.get(
                    "type"
                ) not in ("text", "image"):
                    return f"{where}.content.{j}: a tool result holds text and image blocks"
    if kind == "thinking" and not (
        isinstance(block.get("thinking"), str) and isinstance(block.get("signature"), str)
    ):
        return f"{where}: thinking needs thinking and signature"
    return None


# -------------------------------------------------------------------- faults and errors


async def fault_steps(
    fault: str, fmt: str, ex: Exchange, b: Behaviour
) -> AsyncIterator[tuple[str, bytes]]:
    said = echo(ex, b)
    event = None if fmt == "openai" else "content_block_delta"
    if fault == "disconnect":
        yield "abort", b""
    elif fault == "stall":
        yield "stall", b""
    elif fault == "endless_line":
        yield "endless", b""
    elif fault == "malformed":
        yield "meta", sse('{"choices": [{"delta": {"content": "oops' + said, event)
    elif fault == "unexpected":
        yield "meta", sse(json.dumps(["not an object" + said]), event)
    elif fault == "stream_error":
        if fmt == "openai":
            message = "The server had an error while processing your request." + said
            yield "meta", sse(openai_error(message, "server_error"))
        else:
            yield "meta", sse(anthropic_error("Overloaded" + said, "overloaded_error"), "error")
    # truncate: nothing more; the body ends cleanly without the end marker


def openai_error(message: str, type_: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def anthropic_error(message: str, type_: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": type_, "message": message}}


def bearer(value: str) -> str | None:
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def auth_error(b: Behaviour, key: str | None, fmt: str) -> tuple[int, dict[str, Any]] | None:
    if b.fault != "unauthorized" and (b.api_key is None or key == b.api_key):
        return None
    shown = key if b.echo_key else (f"{key[:3]}***{key[-4:]}" if key and len(key) > 8 else "***")
    if fmt == "openai":
        if key is None:
            msg = "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth."
        else:
            msg = f"Incorrect API key provided: {shown}. You can find your API key at https://platform.openai.com/account/api-keys."
        return 401, openai_error(msg, "invalid_request_error", "invalid_api_key")
    msg = (
        "x-api-key header is required"
        if key is None
        else f"invalid x-api-key {shown}"
        if b.echo_key
        else "invalid x-api-key"
    )
    return 401, anthropic_error(msg, "authentication_error")


def fault_error(
    b: Behaviour, fmt: str, ex: Exchange | None = None
) -> tuple[int, dict[str, Any], dict[str, str]]:
    said = "" if ex is None else echo(ex, b)
    if b.fault == "hang":
        return (0, {}, {})
    if b.fault == "rate_limit":
        headers = {} if b.retry_after is None else {"retry-after": b.retry_after}
        if fmt == "openai":
            message = "Rate limit reached for requests. Please try again later." + said
            return 429, openai_error(message, "requests", "rate_limit_exceeded"), headers
        message = "Number of requests has exceeded your rate limit." + said
        return 429, anthropic_error(message, "rate_limit_error"), headers
    if b.fault == "unauthorized":
        status, payload = auth_error(b, None, fmt) or (401, {})
        return status, payload, {}
    if b.fault == "not_found":
        message = "The model does not exist or you do not have access to it." + said
        if fmt == "openai":
            return 404, openai_error(message, "invalid_request_error", "model_not_found"), {}
        return 404, anthropic_error(message, "not_found_error"), {}
    if fmt == "openai":
        message = "The server had an error while processing your request. Sorry about that!" + said
        return 500, openai_error(message, "server_error"), {}
    return 500, anthropic_error("Internal server error" + said, "api_error"), {}
