"""The caller's ``messages``, checked before any provider is called.

:func:`check_messages` is a pure function: it raises ``TypeError`` (a value
of the wrong type) or ``ValueError`` (a right type holding a wrong value) with
one line naming the message and the field to fix, so a caller's mistake is
the caller's — raised from ``complete()``/``stream()`` themselves, never
booked as a provider's failure. It checks the shape of the OpenAI Chat
Completions format (https://platform.openai.com/docs/api-reference/chat/create),
not what a provider can honour (that is the provider's
``UnsupportedRequestError``):

* ``messages`` is a non-empty list (or tuple) of mappings;
* each has a ``role``: ``system``, ``developer``, ``user``, ``assistant``,
  ``tool``, or the deprecated ``function``;
* ``content`` is a string or a list of parts (mappings with a ``type``:
  ``text`` with a string ``text``, ``image_url`` with ``image_url.url``,
  ``input_audio``, ``file``, and ``refusal`` on assistant turns); only an
  assistant turn may leave it out or ``None`` (when it has ``tool_calls``);
* an assistant's ``tool_calls`` is a list of ``{id, type: "function",
  function: {name, arguments}}`` with string ``id``, ``name`` and
  ``arguments``;
* a ``tool`` message has a non-empty string ``tool_call_id``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
PART_TYPES = ("text", "image_url", "input_audio", "file", "refusal")


def check_messages(messages: Any) -> list[Mapping[str, Any]]:
    """``messages`` as a list, once checked; raises ``TypeError``/``ValueError`` otherwise.

    The mappings are returned as they are (not copied).
    """
    if type(messages) is list and messages and all(_plain(m) for m in messages):
        return messages  # the common shape, checked without the ABC isinstance checks below
    if isinstance(messages, str | bytes | Mapping) or not isinstance(messages, Sequence):
        raise TypeError(
            "messages must be a list of {'role': ..., 'content': ...} mappings,"
            f" not {_kind(messages)}"
        )
    if not messages:
        raise ValueError("messages is empty: give at least one {'role': 'user', 'content': ...}")
    for i, message in enumerate(messages):
        _check_message(message, f"messages[{i}]")
    return list(messages)


_PLAIN_ROLES = frozenset(("system", "developer", "user"))


def _plain(message: Any) -> bool:
    """A ``dict`` system/developer/user turn with string content: nothing more to check."""
    return type(message) is dict and message.get("role") in _PLAIN_ROLES and type(message.get("content")) is str


def _check_message(message: Any, where: str) -> None:
    if not isinstance(message, Mapping):
        raise TypeError(
            f"{where} must be a mapping with 'role' and 'content', not {_kind(message)}"
        )
    role = message.get("role")
    if role is None:
        raise ValueError(f"{where} has no 'role' (one of {', '.join(ROLES)})")
    if not isinstance(role, str):
        raise TypeError(f"{where}.role must be a string, not {_kind(role)}")
    if role not in ROLES:
        raise ValueError(f"{where}.role {role!r} is not one of {', '.join(ROLES)}")
    content = message.get("content")
    if content is None:
        if role != "assistant" or not message.get("tool_calls"):
            raise ValueError(f"{where} ({role}) has no 'content'")
    elif isinstance(content, str):
        pass
    elif isinstance(content, Sequence) and not isinstance(content, bytes):
        for k, part in enumerate(content):
            _check_part(part, f"{where}.content[{k}]", role)
    else:
        raise TypeError(
            f"{where}.content must be a string or a list of content parts, not {_kind(content)}"
        )
    if role == "assistant":
        calls = message.get("tool_calls")
        if calls is not None:
            _check_tool_calls(calls, f"{where}.tool_calls")
    elif role == "tool":
        call_id = message.get("tool_call_id")
        if call_id is None or call_id == "":
            raise ValueError(f"{where} is a tool message without 'tool_call_id'")
        if not isinstance(call_id, str):
            raise TypeError(f"{where}.tool_call_id must be a string, not {_kind(call_id)}")
    elif role == "function" and not isinstance(message.get("name"), str):
        raise ValueError(f"{where} is a function message without a string 'name'")


def _check_part(part: Any, where: str, role: str) -> None:
    if not isinstance(part, Mapping):
        raise TypeError(f"{where} must be a content part mapping with a 'type', not {_kind(part)}")
    kind = part.get("type")
    if kind not in PART_TYPES or (kind == "refusal" and role != "assistant"):
        allowed = [t for t in PART_TYPES if t != "refusal" or role == "assistant"]
        raise ValueError(f"{where}.type {kind!r} is not one of {', '.join(allowed)}")
    if kind == "text" and not isinstance(part.get("text"), str):
        raise TypeError(f"{where} is a text part whose 'text' is not a string")
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, Mapping) else None
        if not isinstance(url, str) or not url:
            raise ValueError(f"{where} is an image_url part without image_url.url (a URL or a data URL)")


def _check_tool_calls(calls: Any, where: str) -> None:
    if isinstance(calls, str | bytes | Mapping) or not isinstance(calls, Sequence):
        raise TypeError(f"{where} must be a list of tool calls, not {_kind(calls)}")
    for j, call in enumerate(calls):
        at = f"{where}[{j}]"
        if not isinstance(call, Mapping):
            raise TypeError(f"{at} must be a mapping, not {_kind(call)}")
        if not isinstance(call.get("id"), str) or not call.get("id"):
            raise ValueError(f"{at} has no string 'id'")
        if call.get("type", "function") != "function":
            raise ValueError(f"{at}.type {call.get('type')!r} is not 'function'")
        function = call.get("function")
        if not isinstance(function, Mapping):
            raise TypeError(f"{at}.function must be a mapping with 'name' and 'arguments'")
        if not isinstance(function.get("name"), str) or not function.get("name"):
            raise ValueError(f"{at}.function has no string 'name'")
        if not isinstance(function.get("arguments"), str):
            raise TypeError(f"{at}.function.arguments must be a string of JSON")


def _kind(value: Any) -> str:
    return "None" if value is None else type(value).__name__
