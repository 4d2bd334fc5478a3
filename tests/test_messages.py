"""``check_messages``: a caller's malformed messages are the caller's error, said in one line."""

from __future__ import annotations

from typing import Any

import pytest

from raceway._messages import check_messages

CALL = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}


def test_a_full_tool_loop_with_images_passes_and_comes_back_as_a_list() -> None:
    messages = (
        {"role": "developer", "content": "be brief"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            ],
        },
        {"role": "assistant", "content": None, "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "call_1", "content": "result"},
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}]},
    )
    checked = check_messages(messages)
    assert checked == list(messages) and checked[0] is messages[0]


@pytest.mark.parametrize(
    ("messages", "error", "says"),
    [
        (
            "hello",
            TypeError,
            "messages must be a list of {'role': ..., 'content': ...} mappings, not str",
        ),
        ({"role": "user", "content": "x"}, TypeError, "not dict"),
        (None, TypeError, "not None"),
        ([], ValueError, "messages is empty"),
        (["hello"], TypeError, "messages[0] must be a mapping with 'role' and 'content', not str"),
        ([{"content": "x"}], ValueError, "messages[0] has no 'role'"),
        ([{"role": 3, "content": "x"}], TypeError, "messages[0].role must be a string, not int"),
        (
            [{"role": "bot", "content": "x"}],
            ValueError,
            "messages[0].role 'bot' is not one of system",
        ),
        ([{"role": "user"}], ValueError, "messages[0] (user) has no 'content'"),
        (
            [{"role": "assistant", "content": None}],
            ValueError,
            "messages[0] (assistant) has no 'content'",
        ),
        (
            [{"role": "user", "content": 7}],
            TypeError,
            "messages[0].content must be a string or a list",
        ),
        (
            [{"role": "user", "content": [{"type": "video"}]}],
            ValueError,
            "messages[0].content[0].type 'video'",
        ),
        (
            [{"role": "user", "content": [{"type": "refusal", "refusal": "x"}]}],
            ValueError,
            "is not one of",
        ),
        (
            [{"role": "user", "content": [{"type": "text", "text": 1}]}],
            TypeError,
            "'text' is not a string",
        ),
        (
            [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}],
            ValueError,
            "without image_url.url",
        ),
        (
            [{"role": "user", "content": ["x"]}],
            TypeError,
            "messages[0].content[0] must be a content part",
        ),
        (
            [{"role": "tool", "content": "r"}],
            ValueError,
            "messages[0] is a tool message without 'tool_call_id'",
        ),
        (
            [{"role": "tool", "content": "r", "tool_call_id": 5}],
            TypeError,
            "tool_call_id must be a string",
        ),
        (
            [{"role": "assistant", "content": "", "tool_calls": {"id": "x"}}],
            TypeError,
            "tool_calls must be a list",
        ),
        (
            [{"role": "assistant", "content": "", "tool_calls": [{"type": "function"}]}],
            ValueError,
            "has no string 'id'",
        ),
        (
            [
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [{**CALL, "function": {"name": "f", "arguments": {}}}],
                }
            ],
            TypeError,
            "function.arguments must be a string of JSON",
        ),
        (
            [{"role": "function", "content": "r"}],
            ValueError,
            "function message without a string 'name'",
        ),
    ],
)
def test_mistakes_raise_one_clear_line(messages: Any, error: type[Exception], says: str) -> None:
    with pytest.raises(error) as info:
        check_messages(messages)
    assert says in str(info.value)
    assert "\n" not in str(info.value)
