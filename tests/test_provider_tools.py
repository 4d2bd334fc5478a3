"""Tool calls, reasoning, thinking, images and JSON output, provider by provider, over loopback HTTP.

Each test iterates ``provider.stream(request)`` against the fake upstream on
127.0.0.1 (``fake_upstream``), which streams both wire formats as their
public references describe and refuses, with a 400, a request the real API
would refuse (a ``tool`` message answering no call, an image block without a
valid source, a thinking budget over ``max_tokens``, ...). So a test passing
here says both what raceway parsed and that what it sent would be accepted.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
from fake_upstream import Behaviour, Exchange, FakeUpstream, serve_fake_upstream

from raceway import AnthropicProvider as AnthropicDefinition
from raceway import Chunk, ThinkingBlock, ToolCall, ToolCallDelta, UnsupportedRequestError
from raceway import OpenAIProvider as OpenAIDefinition
from raceway import SimProvider as SimDefinition
from raceway._providers import (
    AnthropicProvider,
    OpenAIProvider,
    PythonProvider,
    Request,
    SimProvider,
)

BOUND = 10  # seconds: every test's hard bound (real time, loopback)
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
PNG = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


@pytest.fixture
async def up() -> AsyncIterator[FakeUpstream]:
    async with serve_fake_upstream() as upstream:
        yield upstream


def openai(up: FakeUpstream, name: str) -> OpenAIProvider:
    return OpenAIProvider(name, OpenAIDefinition(base_url=up.openai_url(name), model="fake-gpt"))


def anthropic(up: FakeUpstream, name: str) -> AnthropicProvider:
    definition = AnthropicDefinition(base_url=up.anthropic_url(name), api_key_env=None)
    return AnthropicProvider(name, definition)


async def collect(
    provider: Any, messages: list[dict[str, Any]] | None = None, **params: Any
) -> list[Chunk]:
    request = Request(
        messages=messages or [{"role": "user", "content": "What is the weather in Paris?"}],
        model="fake-model",
        params=params,
    )
    with trio.fail_after(BOUND):
        try:
            return [chunk async for chunk in provider.stream(request)]
        finally:
            await provider.aclose()


def gather(chunks: list[Chunk]) -> list[ToolCall]:
    """The complete tool calls of an answer, as a caller would assemble the deltas."""
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for d in chunk.tool_calls:
            call = calls.setdefault(d.index, {"id": "", "name": "", "arguments": ""})
            assert d.id is None or not call["id"], "an id comes once per call"
            assert d.name is None or not call["name"], "a name comes once per call"
            call["id"] = call["id"] or (d.id or "")
            call["name"] = call["name"] or (d.name or "")
            call["arguments"] += d.arguments
    assert sorted(calls) == list(range(len(calls))), "indices are the calls' ordinals"
    return [ToolCall(**calls[i]) for i in sorted(calls)]


def finish(chunks: list[Chunk]) -> str | None:
    return next((c.finish_reason for c in reversed(chunks) if c.finish_reason), None)


def only(up: FakeUpstream) -> Exchange:
    (exchange,) = up.requests()
    return exchange


# ------------------------------------------------------------------ OpenAI answers


async def test_openai_tool_call_streams_as_deltas_with_id_and_name_first(up: FakeUpstream) -> None:
    arguments = json.dumps({"city": "Paris"})
    up.behave("t", text="", tool_calls=({"name": "get_weather", "arguments": arguments},))
    chunks = await collect(openai(up, "t"), tools=[WEATHER])
    deltas = [d for c in chunks for d in c.tool_calls]
    assert deltas[0] == ToolCallDelta(0, "call_fake_0", "get_weather", "")
    assert all(d.id is None and d.name is None for d in deltas[1:])
    assert gather(chunks) == [ToolCall("call_fake_0", "get_weather", arguments)]
    assert finish(chunks) == "tool_calls"
    assert "".join(c.text for c in chunks) == ""


@pytest.mark.parametrize("reuse_index", [False, True])
async def test_openai_parallel_calls_are_numbered_by_ordinal_even_when_a_server_reuses_index_0(
    up: FakeUpstream, reuse_index: bool
) -> None:
    calls = (
        {"name": "get_weather", "arguments": '{"city": "Paris"}', "id": "call_a"},
        {"name": "get_weather", "arguments": '{"city": "Oslo"}', "id": "call_b"},
        {"name": "get_time", "arguments": '{"tz": "CET"}', "id": "call_c"},
    )
    up.behave("p", text="", tool_calls=calls, reuse_index=reuse_index)
    chunks = await collect(openai(up, "p"), tools=[WEATHER])
    assert gather(chunks) == [ToolCall(c["id"], c["name"], c["arguments"]) for c in calls]


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
async def test_openai_reasoning_deltas_and_usage_details(up: FakeUpstream, field: str) -> None:
    up.behave(
        "r", reasoning="Paris is in France. ", reasoning_field=field, text="Sunny.", cached_tokens=3
    )
    chunks = await collect(openai(up, "r"))
    assert "".join(c.reasoning for c in chunks) == "Paris is in France. "
    assert "".join(c.text for c in chunks) == "Sunny."
    first_text = next(i for i, c in enumerate(chunks) if c.text)
    assert all(not c.text for c in chunks[:first_text]) and chunks[0].reasoning
    (usage,) = [c.usage for c in chunks if c.usage]
    assert usage.reasoning_tokens == 4 and usage.cached_input_tokens == 3
    assert usage.output_tokens == 5


async def test_openai_sends_the_whole_request_unchanged_but_raceway_s_thinking_carrier(
    up: FakeUpstream,
) -> None:
    up.behave("u", text="ok")
    messages = [
        {"role": "system", "content": "be brief"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in these?"},
                {"type": "image_url", "image_url": {"url": PNG, "detail": "low"}},
                {"type": "image_url", "image_url": {"url": "https://example.test/cat.jpg"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
            "thinking_blocks": [{"type": "thinking", "thinking": "hm", "signature": "s"}],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    params = {
        "tools": [WEATHER],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "parallel_tool_calls": False,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "w", "schema": {"type": "object"}, "strict": True},
        },
        "stop": ["END"],
        "seed": 7,
        "reasoning_effort": "low",
    }
    await collect(openai(up, "u"), messages, **params)
    body = only(up).body
    assert {k: body[k] for k in params} == params
    sent = [dict(m) for m in messages]
    del sent[2]["thinking_blocks"]
    assert body["messages"] == sent


# ------------------------------------------------------------------ Anthropic answers


async def test_anthropic_tool_use_blocks_become_deltas_numbered_by_call(up: FakeUpstream) -> None:
    calls = (
        {"name": "get_weather", "arguments": '{"city": "Paris"}'},
        {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
    )
    up.behave("t", text="Let me check. ", tool_calls=calls)
    chunks = await collect(anthropic(up, "t"), tools=[WEATHER])
    assert "".join(c.text for c in chunks) == "Let me check. "
    assert gather(chunks) == [
        ToolCall("toolu_fake_0", "get_weather", '{"city": "Paris"}'),
        ToolCall("toolu_fake_1", "get_weather", '{"city": "Oslo"}'),
    ]  # indices 0 and 1, though their blocks are 1 and 2 (the text block is 0)
    assert finish(chunks) == "tool_calls"  # tool_use, in OpenAI's words
    body = only(up).body
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "The weather in a city.",
            "input_schema": WEATHER["function"]["parameters"],  # type: ignore[index]
        }
    ]


async def test_anthropic_tool_without_input_ends_with_empty_object(up: FakeUpstream) -> None:
    up.behave("n", text="", tool_calls=({"name": "now", "arguments": ""},))
    chunks = await collect(anthropic(up, "n"))
    assert gather(chunks) == [ToolCall("toolu_fake_0", "now", "{}")]


async def test_anthropic_thinking_streams_as_reasoning_and_keeps_its_signature(
    up: FakeUpstream,
) -> None:
    up.behave(
        "k",
        reasoning="Paris weather: check the tool. ",
        signature="sig-XYZ",
        redacted_thinking="ENCRYPTED",
        text="",
        tool_calls=({"name": "get_weather", "arguments": '{"city": "Paris"}'},),
        cached_tokens=5,
    )
    chunks = await collect(anthropic(up, "k"), tools=[WEATHER], reasoning_effort="low")
    assert "".join(c.reasoning for c in chunks) == "Paris weather: check the tool. "
    blocks = [b for c in chunks for b in c.thinking_blocks]
    assert blocks == [
        ThinkingBlock("redacted_thinking", data="ENCRYPTED"),
        ThinkingBlock("thinking", "Paris weather: check the tool. ", "sig-XYZ"),
    ]
    (usage,) = [c.usage for c in chunks if c.usage]
    assert usage.cached_input_tokens == 5
    assert usage.input_tokens == 5 + 6  # cache reads count as input, as in OpenAI's usage

    # the follow-up turn sends the thinking back, first in the assistant turn
    (call,) = gather(chunks)
    up.behave("k", text="Sunny in Paris.")
    follow_up = [
        {"role": "user", "content": "What is the weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
            ],
            "thinking_blocks": [b.as_dict() for b in blocks],
        },
        {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21 °C"},
    ]
    answer = await collect(anthropic(up, "k"), follow_up, tools=[WEATHER], reasoning_effort="low")
    assert "".join(c.text for c in answer) == "Sunny in Paris."
    assistant = up.requests()[-1].body["messages"][1]
    assert assistant["content"] == [
        {"type": "redacted_thinking", "data": "ENCRYPTED"},
        {"type": "thinking", "thinking": "Paris weather: check the tool. ", "signature": "sig-XYZ"},
        {"type": "tool_use", "id": call.id, "name": "get_weather", "input": {"city": "Paris"}},
    ]


# ------------------------------------------------------------------ Anthropic requests


async def test_anthropic_translates_a_whole_tool_loop_with_images(up: FakeUpstream) -> None:
    up.behave("loop", text="Both sunny.")
    messages = [
        {"role": "developer", "content": "be brief"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather where these were taken?"},
                {"type": "image_url", "image_url": {"url": PNG, "detail": "high"}},
                {"type": "image_url", "image_url": {"url": "https://example.test/oslo.jpg"}},
            ],
        },
        {
            "role": "assistant",
            "content": "Checking both.",
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
                {
                    "id": "toolu_2",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"},
        {
            "role": "tool",
            "tool_call_id": "toolu_2",
            "content": [{"type": "text", "text": "sunny too"}],
        },
        {"role": "user", "content": "Summarise."},
    ]
    chunks = await collect(
        anthropic(up, "loop"),
        messages,
        tools=[WEATHER],
        tool_choice="auto",
        parallel_tool_calls=False,
        seed=3,
        temperature=1.5,
        user="u-42",
        stop="END",
    )
    assert "".join(c.text for c in chunks) == "Both sunny."
    body = only(up).body
    assert body["system"] == "be brief"
    assert body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert body["temperature"] == 1.0 and body["metadata"] == {"user_id": "u-42"}
    assert body["stop_sequences"] == ["END"] and "seed" not in body
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather where these were taken?"},
                {
                    "type": "image",
                    "source": {
                        "type": "base64",
                        "media_type": "image/png",
                        "data": PNG.split(",")[1],
                    },
                },
                {
                    "type": "image",
                    "source": {"type": "url", "url": "https://example.test/oslo.jpg"},
                },
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking both."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
                {
                    "type": "tool_use",
                    "id": "toolu_2",
                    "name": "get_weather",
                    "input": {"city": "Oslo"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": [{"type": "text", "text": "sunny too"}],
                },
                {"type": "text", "text": "Summarise."},
            ],
        },
    ]


@pytest.mark.parametrize(
    ("tool_choice", "expected"),
    [
        ("auto", {"type": "auto"}),
        ("required", {"type": "any"}),
        ("none", {"type": "none"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"type": "tool", "name": "get_weather"},
        ),
    ],
)
async def test_anthropic_tool_choice(
    up: FakeUpstream, tool_choice: Any, expected: dict[str, Any]
) -> None:
    up.behave("c", text="", tool_calls=({"name": "get_weather", "arguments": "{}"},))
    await collect(anthropic(up, "c"), tools=[WEATHER], tool_choice=tool_choice)
    assert only(up).body["tool_choice"] == expected


async def test_anthropic_json_schema_becomes_output_config_format(up: FakeUpstream) -> None:
    up.behave("j", text='{"city": "Paris"}')
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "additionalProperties": False,
    }
    fmt = {
        "type": "json_schema",
        "json_schema": {"name": "place", "schema": schema, "strict": True},
    }
    chunks = await collect(anthropic(up, "j"), response_format=fmt)
    assert json.loads("".join(c.text for c in chunks)) == {"city": "Paris"}
    body = only(up).body
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    assert "response_format" not in body


async def test_anthropic_reasoning_effort_becomes_a_thinking_budget(up: FakeUpstream) -> None:
    up.behave("e", reasoning="Hmm. ", text="Yes.")
    await collect(
        anthropic(up, "e"), reasoning_effort="medium", max_tokens=1000, temperature=0.3, top_k=5
    )
    body = only(up).body
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 8192}
    assert body["max_tokens"] == 1000 + 8192  # the visible answer keeps its 1000
    assert "temperature" not in body and "top_k" not in body and "reasoning_effort" not in body


@pytest.mark.parametrize(
    ("params", "messages", "parameter"),
    [
        ({"response_format": {"type": "json_object"}}, None, "response_format"),
        (
            {"tool_choice": {"type": "allowed_tools", "allowed_tools": {}}, "tools": [WEATHER]},
            None,
            "tool_choice",
        ),
        (
            {"tools": [WEATHER], "tool_choice": "required", "reasoning_effort": "high"},
            None,
            "tool_choice",
        ),
        ({"reasoning_effort": "enormous"}, None, "reasoning_effort"),
        ({"functions": [{"name": "f"}]}, None, "functions"),
        (
            {},
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}
                    ],
                }
            ],
            "messages[0].content[0]",
        ),
        (
            {},
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": "data:image/bmp;base64,AAAA"}}
                    ],
                }
            ],
            "messages[0].content[0].image_url",
        ),
        (
            {},
            [
                {"role": "user", "content": "hi"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "x",
                            "type": "function",
                            "function": {"name": "f", "arguments": "[1, 2"},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "x", "content": "r"},
            ],
            "messages[1].tool_calls[0].function.arguments",
        ),
    ],
)
async def test_anthropic_fails_unsupported_before_sending_anything(
    up: FakeUpstream, params: dict[str, Any], messages: list[dict[str, Any]] | None, parameter: str
) -> None:
    with pytest.raises(UnsupportedRequestError) as info:
        await collect(anthropic(up, "x"), messages, **params)
    assert info.value.kind == "unsupported"
    assert info.value.parameter == parameter
    assert str(info.value).startswith(f"unsupported {parameter}: ")
    assert up.requests() == [], "nothing was sent"


# ------------------------------------------------------------------ sim and python


@pytest.mark.parametrize(
    "tool_choice", ["required", {"type": "function", "function": {"name": "get_weather"}}]
)
async def test_sim_asked_for_a_tool_call_fails_unsupported(tool_choice: Any) -> None:
    sim = SimProvider("s", SimDefinition(ttft_ms=10, sigma=0))
    with pytest.raises(UnsupportedRequestError, match=r"^unsupported tool_choice: "):
        await collect(sim, tools=[WEATHER], tool_choice=tool_choice)


async def test_sim_with_tool_choice_auto_answers_in_text(autojump_clock: trio.abc.Clock) -> None:
    sim = SimProvider("s", SimDefinition(ttft_ms=10, sigma=0, text="no tools needed"))
    chunks = await collect(sim, tools=[WEATHER], tool_choice="auto")
    assert "".join(c.text for c in chunks) == "no tools needed"


async def test_python_provider_yields_tool_calls_and_reasoning() -> None:
    async def agent(request: Request) -> AsyncIterator[Chunk]:
        yield Chunk(reasoning="use the tool")
        yield Chunk(tool_calls=(ToolCallDelta(0, "call_py", "get_weather", '{"city"'),))
        yield Chunk(
            tool_calls=(ToolCallDelta(0, arguments=': "Paris"}'),), finish_reason="tool_calls"
        )

    chunks = await collect(PythonProvider("py", agent))
    assert gather(chunks) == [ToolCall("call_py", "get_weather", '{"city": "Paris"}')]
    assert chunks[0].reasoning == "use the tool" and finish(chunks) == "tool_calls"


def test_the_unsupported_kind_is_in_the_error_tree_and_exported() -> None:
    import raceway
    import raceway._errors

    assert issubclass(raceway.UnsupportedRequestError, raceway.ProviderError)
    assert raceway.UnsupportedRequestError.kind == "unsupported"
    assert "UnsupportedRequestError" in (raceway._errors.__doc__ or "")
    assert ThinkingBlock("redacted_thinking", data="d").as_dict() == {
        "type": "redacted_thinking",
        "data": "d",
    }
    assert raceway.ThinkingBlock is ThinkingBlock and raceway.ToolCallDelta is ToolCallDelta


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_a_scripted_upstream_runs_a_tool_loop_and_paces_the_tool_call(
    up: FakeUpstream, kind: str
) -> None:
    """The fake picks its answer per request: a tool call at 50 ms, then text once the result is back."""

    def choose(exchange: Exchange) -> Behaviour:
        if exchange.body["messages"][-1]["role"] == "user" and len(exchange.body["messages"]) == 1:
            call = {"name": "get_weather", "arguments": '{"city": "Paris"}', "id": "call_loop"}
            return Behaviour(text="", tool_calls=(call,), first_token_delay=0.05)
        return Behaviour(text="Sunny in Paris.", first_token_delay=0.15)

    up.script("agent", choose)
    make = openai if kind == "openai" else anthropic
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Weather in Paris?"}]
    first = await collect(make(up, "agent"), messages, tools=[WEATHER])
    (call,) = gather(first)
    exchange = up.requests()[-1]
    assert exchange.first_token_at is not None and exchange.headers_sent_at is not None
    assert exchange.first_token_at - exchange.headers_sent_at >= 0.05
    messages += [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ]
    second = await collect(make(up, "agent"), messages, tools=[WEATHER])
    assert "".join(c.text for c in second) == "Sunny in Paris." and finish(second) == "stop"
    exchange = up.requests()[-1]
    assert exchange.first_token_at - exchange.headers_sent_at >= 0.15  # type: ignore[operator]
