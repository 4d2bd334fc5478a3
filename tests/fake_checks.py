"""What the fake upstream refuses (400), as the real APIs would: raceway's requests, judged.

Written from the public references: a ``tool`` message must answer a tool
call of the assistant turn before it (OpenAI); every ``tool_use`` must be
answered by a ``tool_result`` in the next user turn and nothing else may
answer (Anthropic); content blocks have their documented shapes (images with
a ``base64`` source of an accepted type or a ``url`` source, non-empty text);
``tools``, ``tool_choice``, ``output_config.format`` and ``thinking`` budgets
are well formed; OpenAI-only parameters are extra inputs to the Messages API.
"""

from __future__ import annotations

from typing import Any

ANTHROPIC_IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")


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
