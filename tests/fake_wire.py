"""The fake upstream's vocabulary: what an upstream does (:class:`Behaviour`), what it saw (:class:`Exchange`).

Written from the public API references (OpenAI Chat Completions and its
streaming, the Anthropic Messages API and its streaming, tool use, extended
thinking, vision, structured outputs), not from raceway's code. Beside this
module: ``fake_streams`` streams an answer in each format, ``fake_checks``
refuses a request the real API would refuse, ``fake_upstream`` serves them.

An answer is a plan of steps (:func:`plan`) — reasoning words, text words,
tool-call starts and argument pieces — paced by the behaviour
(:func:`paced`): the first step after ``first_token_delay``, the first
visible step (text or tool call) after a further ``content_delay``, then
``chunk_delay`` between steps. Faults strike at step ``fault_after``; the
status faults and their bodies are here too, so each format's errors look
like the real ones (and, with ``echo_headers``, quote the request's headers
as a careless upstream would).
"""

from __future__ import annotations

import json
import re
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
