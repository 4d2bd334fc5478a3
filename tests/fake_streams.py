"""The fake upstream's answers: the plan of a :class:`~fake_wire.Behaviour`, streamed in each format.

OpenAI: ``chat.completion.chunk`` events (``delta.content``, the reasoning
field, ``delta.tool_calls`` keyed by ``index``), a usage chunk with cached and
reasoning tokens, ``data: [DONE]``. Anthropic: named events, a
``redacted_thinking`` block, a ``thinking`` block with ``thinking_delta`` and
its ``signature_delta`` before ``content_block_stop``, a ``text`` block,
``tool_use`` blocks with ``input_json_delta``, ``message_delta`` with the stop
reason, ``message_stop``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from fake_wire import (
    Behaviour,
    Exchange,
    Step,
    fault_due,
    fault_steps,
    paced,
    plan,
    prompt_words,
    sse,
)


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
