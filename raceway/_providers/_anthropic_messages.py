"""A Chat Completions conversation, translated to Messages API turns.

Pure functions, no I/O: :func:`translate_messages` takes the OpenAI-format
``messages`` and returns the ``system`` texts and the ``user``/``assistant``
turns — content parts (text, images, PDFs), assistant tool calls and thinking
blocks, tool results merged into ``user`` turns. What cannot be carried is
reported through the ``unsupported`` callable :func:`messages_body
<raceway._providers._anthropic_request.messages_body>` passes in (it builds
the :class:`~raceway.UnsupportedRequestError`); the table of what maps to
what is ``_anthropic_request.py``'s.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

#: Image types the Messages API accepts in a base64 source.
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})

_DATA_URL = re.compile(r"^data:([^;,]*)((?:;[^;,]*)*),(.*)$", re.DOTALL)


def translate_messages(
    messages: Sequence[Mapping[str, Any]], unsupported: Any
) -> tuple[list[str], list[dict[str, Any]]]:
    """The system texts and the ``user``/``assistant`` turns for ``messages``."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        path = f"messages[{i}]"
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            text = _system_text(content, path, unsupported)
            if text:
                system.append(text)
        elif role == "user":
            _append(turns, "user", _user_content(content, path, unsupported))
        elif role == "assistant":
            _append(turns, "assistant", _assistant_content(message, path, unsupported))
        elif role == "tool":
            result: dict[str, Any] = {
                "type": "tool_result",
                "tool_use_id": message.get("tool_call_id"),
            }
            if content not in (None, "", []):
                result["content"] = _tool_result_content(content, path, unsupported)
            _append(turns, "user", [result])
        else:
            raise unsupported(f"{path}.role", f"{role!r} has no equivalent in the Messages API")
    return system, turns


def _append(turns: list[dict[str, Any]], role: str, content: str | list[dict[str, Any]]) -> None:
    """Add a turn, merging it into the last one when the role repeats (tool results)."""
    if turns and turns[-1]["role"] == role:
        last = turns[-1]
        last["content"] = _blocks(last["content"]) + _blocks(content)
    else:
        turns.append({"role": role, "content": content})


def _blocks(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return content


def _system_text(content: Any, path: str, unsupported: Any) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    texts = []
    for k, part in enumerate(content):
        if part.get("type") != "text":
            raise unsupported(f"{path}.content[{k}]", "a system prompt holds text only here")
        texts.append(str(part.get("text", "")))
    return "".join(texts)


def _user_content(content: Any, path: str, unsupported: Any) -> str | list[dict[str, Any]]:
    if content is None or isinstance(content, str):
        return content or ""
    return [_part(part, f"{path}.content[{k}]", unsupported) for k, part in enumerate(content)]


def _part(part: Mapping[str, Any], path: str, unsupported: Any) -> dict[str, Any]:
    kind = part.get("type")
    if kind == "text":
        block: dict[str, Any] = {"type": "text", "text": part.get("text", "")}
    elif kind == "image_url":
        block = _image(part.get("image_url"), path, unsupported)
    elif kind == "file":
        block = _document(part.get("file"), path, unsupported)
    else:
        raise unsupported(path, f"a {kind!r} content part has no equivalent in the Messages API")
    if "cache_control" in part:  # Anthropic's prompt caching, as OpenAI-format gateways carry it
        block["cache_control"] = part["cache_control"]
    return block


def _image(image: Any, path: str, unsupported: Any) -> dict[str, Any]:
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url:
        raise unsupported(f"{path}.image_url", "an image part needs image_url.url")
    if url.startswith("data:"):
        media_type, data = _data_url(url, f"{path}.image_url", unsupported)
        if media_type not in IMAGE_TYPES:
            raise unsupported(
                f"{path}.image_url",
                f"{media_type or 'an untyped'} image; the Messages API takes "
                + ", ".join(sorted(IMAGE_TYPES)),
            )
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    if not url.startswith(("http://", "https://")):
        raise unsupported(f"{path}.image_url", "an image URL must be http(s) or a data URL")
    return {"type": "image", "source": {"type": "url", "url": url}}


def _document(file: Any, path: str, unsupported: Any) -> dict[str, Any]:
    data_url = file.get("file_data") if isinstance(file, dict) else None
    if isinstance(data_url, str) and data_url.startswith("data:"):
        media_type, data = _data_url(data_url, f"{path}.file", unsupported)
        if media_type == "application/pdf":
            return {
                "type": "document",
                "source": {"type": "base64", "media_type": media_type, "data": data},
            }
    raise unsupported(f"{path}.file", "only a PDF given as a data URL translates (file_data)")


def _data_url(url: str, path: str, unsupported: Any) -> tuple[str, str]:
    match = _DATA_URL.match(url)
    if match is None or ";base64" not in match.group(2).lower():
        raise unsupported(path, "a data URL must be base64-encoded (data:TYPE;base64,...)")
    return match.group(1).lower(), match.group(3)


def _assistant_content(
    message: Mapping[str, Any], path: str, unsupported: Any
) -> str | list[dict[str, Any]]:
    content = message.get("content")
    blocks: list[dict[str, Any]] = []
    for thinking in message.get("thinking_blocks") or ():
        if isinstance(thinking, dict) and thinking.get("type") == "thinking":
            blocks.append(
                {
                    "type": "thinking",
                    "thinking": thinking.get("thinking", ""),
                    "signature": thinking.get("signature", ""),
                }
            )
        elif isinstance(thinking, dict) and thinking.get("type") == "redacted_thinking":
            blocks.append({"type": "redacted_thinking", "data": thinking.get("data", "")})
    calls = message.get("tool_calls") or []
    if not blocks and not calls and (content is None or isinstance(content, str)):
        return content or ""
    if isinstance(content, str):
        blocks.extend(_blocks(content))
    elif content is not None:
        for k, part in enumerate(content):
            if part.get("type") not in ("text", "refusal"):
                raise unsupported(f"{path}.content[{k}]", "an assistant turn holds text here")
            text = part.get("text") if part.get("type") == "text" else part.get("refusal")
            if text:
                blocks.append({"type": "text", "text": text})
    for j, call in enumerate(calls):
        function = call.get("function") or {}
        arguments = function.get("arguments") or "{}"
        try:
            args = json.loads(arguments) if isinstance(arguments, str) else arguments
        except ValueError:
            args = None
        if not isinstance(args, dict):
            raise unsupported(
                f"{path}.tool_calls[{j}].function.arguments",
                "is not a JSON object; the Messages API takes a tool call's input as one",
            )
        blocks.append(
            {"type": "tool_use", "id": call.get("id"), "name": function.get("name"), "input": args}
        )
    return blocks


def _tool_result_content(content: Any, path: str, unsupported: Any) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    blocks = []
    for k, part in enumerate(content):
        if part.get("type") not in ("text", "image_url"):
            raise unsupported(f"{path}.content[{k}]", "a tool result holds text and images here")
        blocks.append(_part(part, f"{path}.content[{k}]", unsupported))
    return blocks
