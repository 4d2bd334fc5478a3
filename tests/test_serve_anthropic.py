"""The gateway through the official ``anthropic`` SDK, and the Messages request translation."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest
import serve_support
from serve_support import MESSAGES, anthropic_client, client, in_asyncio, serving, sse_events

from raceway._gateway._anthropic import parse_messages
from raceway._gateway._exchange import ApiError


async def test_message_names_the_winner_and_the_race() -> None:
    async with serving() as gw:

        async def call() -> Any:
            raw = await anthropic_client(gw).messages.with_raw_response.create(
                model="fast", max_tokens=100, messages=MESSAGES, system="Be brief."
            )
            return raw.headers, await raw.parse()

        headers, message = await in_asyncio(call)
    assert message.type == "message" and message.role == "assistant"
    assert message.id == headers["x-raceway-race-id"] == message._request_id
    assert message.model == "quick-1"
    assert [(b.type, b.text) for b in message.content] == [("text", "Hello from quick.")]
    assert message.stop_reason == "end_turn"
    assert headers["x-raceway-winner"] == "quick/quick-1"
    assert message.usage.output_tokens == 3


async def test_stream_events_in_order() -> None:
    async with serving() as gw:

        async def call() -> Any:
            async with anthropic_client(gw).messages.stream(model="fast", max_tokens=100, messages=MESSAGES) as stream:
                text = [t async for t in stream.text_stream]
                return text, await stream.get_final_message()

        text, final = await in_asyncio(call)
        async with client(gw) as http:
            body = {"model": "fast", "max_tokens": 100, "messages": MESSAGES, "stream": True}
            response = await http.post("/v1/messages", json=body)
    assert "".join(text) == "Hello from quick."
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == 3
    names = [name for name, _ in sse_events(response.text)]
    assert names[:3] == ["message_start", "ping", "content_block_start"]
    assert set(names[3:-3]) == {"content_block_delta"}
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    for name, data in sse_events(response.text):
        assert data["type"] == name


async def test_tool_use_thinking_and_cached_usage() -> None:
    tools = [{"name": "get_weather", "description": "Weather now", "input_schema": {"type": "object"}}]
    async with serving() as gw:

        async def call() -> Any:
            client = anthropic_client(gw)
            whole = await client.messages.create(
                model="tools", max_tokens=100, messages=MESSAGES, tools=tools,
                tool_choice={"type": "any", "disable_parallel_tool_use": True},
            )
            async with client.messages.stream(model="tools", max_tokens=100, messages=MESSAGES, tools=tools) as s:
                async for _ in s:
                    pass
                streamed = await s.get_final_message()
            thought = await client.messages.create(model="think", max_tokens=100, messages=MESSAGES)
            return whole, streamed, thought

        whole, streamed, thought = await in_asyncio(call)
    params = serve_support.REQUESTS[0].params
    assert params["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "description": "Weather now", "parameters": {"type": "object"}}}]
    assert params["tool_choice"] == "required" and params["parallel_tool_calls"] is False
    for message in (whole, streamed):
        assert [b.type for b in message.content] == ["tool_use"]  # a tool call, no text
        use = message.content[0]
        assert (use.id, use.name, use.input) == ("call_w1", "get_weather", {"city": "Paris"})
        assert message.stop_reason == "tool_use"
        # Anthropic counts input without the cached part
        assert message.usage.input_tokens == 8 and message.usage.cache_read_input_tokens == 4
        assert message.usage.output_tokens == 7
    assert [b.type for b in thought.content] == ["thinking", "text"]
    assert thought.content[0].thinking == "Let me think. " and thought.content[1].text == "The answer is 4."


@pytest.mark.parametrize(
    ("body", "status", "error_type", "words"),
    [
        ({"model": "nope"}, 404, "not_found_error", ["nope", "fast"]),
        ({"messages": []}, 400, "invalid_request_error", ["messages"]),
        ({"temperature": "hot"}, 400, "invalid_request_error", ["temperature"]),
        ({"messages": [{"role": "system", "content": "x"}]}, 400, "invalid_request_error", ["messages.0.role"]),
        ({"frobnicate": True}, 400, "invalid_request_error", ["frobnicate"]),
        ({"model": "failing"}, 502, "api_error", ["broken/broken-1", "[redacted]"]),
        ({"model": "deadline"}, 504, "timeout_error", ["150 ms"]),
    ],
)
async def test_errors_by_status(body: dict[str, Any], status: int, error_type: str, words: list[str]) -> None:
    request = {"model": "fast", "max_tokens": 10, "messages": MESSAGES, **body}
    async with serving() as gw, client(gw) as http:
        for stream in (False, True):
            response = await http.post("/v1/messages", json={**request, "stream": stream})
            assert response.status_code == status
            error = response.json()
            assert error["type"] == "error" and error["error"]["type"] == error_type
            for word in words:
                assert word in error["error"]["message"]
            assert serve_support.LEAKED_KEY not in response.text


async def test_sdk_raises_the_matching_errors() -> None:
    async with serving() as gw:

        async def call() -> Any:
            c = anthropic_client(gw)
            errors = []
            for model in ("nope", "failing"):
                try:
                    await c.messages.create(model=model, max_tokens=10, messages=MESSAGES)
                except anthropic.APIStatusError as exc:
                    errors.append(exc)
            async with c.messages.stream(model="interrupted", max_tokens=10, messages=MESSAGES) as s:
                with pytest.raises(anthropic.APIStatusError) as info:
                    async for _ in s:
                        pass
            return errors, info.value

        (missing, failed), broke = await in_asyncio(call)
    assert isinstance(missing, anthropic.NotFoundError)
    assert isinstance(failed, anthropic.InternalServerError) and failed.status_code == 502
    assert "broke" in str(broke)


async def test_models_list_for_the_anthropic_sdk() -> None:
    async with serving() as gw:

        async def call() -> Any:
            return await anthropic_client(gw).models.list()

        page = await in_asyncio(call)
    assert [m.id for m in page.data][:2] == ["fast", "slowest"]
    assert page.data[0].type == "model"


# ------------------------------------------------------------------ translation


def test_request_translates_to_the_engines_openai_format() -> None:
    body = {
        "model": "fast",
        "max_tokens": 64,
        "system": [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Be kind."}],
        "stop_sequences": ["END"],
        "metadata": {"user_id": "u-1"},
        "temperature": 0.5,
        "top_k": 5,
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "What is in this picture?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
            ]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "toolu_1", "name": "look", "input": {"zoom": 2}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "a cat"}]},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "no dog", "is_error": True},
                {"type": "text", "text": "And now?"},
            ]},
        ],
        "tools": [{"name": "look", "input_schema": {"type": "object", "properties": {"zoom": {"type": "integer"}}}}],
        "tool_choice": {"type": "tool", "name": "look"},
        "output_format": {"type": "json_schema", "schema": {"type": "object"}},
    }
    r = parse_messages(body)
    assert r.model == "fast" and r.stream is False
    assert r.messages == [
        {"role": "system", "content": "Be brief.\nBe kind."},
        {"role": "user", "content": [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
        ]},
        {"role": "assistant", "content": "Let me look.", "tool_calls": [
            {"id": "toolu_1", "type": "function", "function": {"name": "look", "arguments": '{"zoom": 2}'}}]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "a cat"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "Error: no dog"},
        {"role": "user", "content": "And now?"},
    ]
    assert r.params == {
        "max_tokens": 64,
        "temperature": 0.5,
        "stop": ["END"],
        "user": "u-1",
        "tools": [{"type": "function", "function": {
            "name": "look", "parameters": {"type": "object", "properties": {"zoom": {"type": "integer"}}}}}],
        "tool_choice": {"type": "function", "function": {"name": "look"}},
        "response_format": {"type": "json_schema", "json_schema": {
            "name": "output", "schema": {"type": "object"}, "strict": True}},
    }


@pytest.mark.parametrize(("choice", "expected"), [("auto", "auto"), ("any", "required"), ("none", "none")])
def test_tool_choice_kinds(choice: str, expected: str) -> None:
    r = parse_messages({"messages": MESSAGES, "max_tokens": 10, "tool_choice": {"type": choice}})
    assert r.params["tool_choice"] == expected and "parallel_tool_calls" not in r.params


def test_anthropic_hints_the_gateway_cannot_honour_are_accepted_and_dropped() -> None:
    body = {"messages": MESSAGES, "max_tokens": 10, "cache_control": {"type": "ephemeral"}, "inference_geo": "us"}
    r = parse_messages(body)
    assert "cache_control" not in r.params and "inference_geo" not in r.params


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": "user", "content": 3}]}, "messages.0.content"),
        ({"messages": [{"role": "user", "content": [{"type": "document"}]}]}, "messages.0.content.0.type"),
        ({"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "file"}}]}]},
         "messages.0.content.0.source.type"),
        ({"messages": MESSAGES, "tools": [{"type": "web_search_20250305", "name": "web"}]}, "tools.0.type"),
        ({"messages": MESSAGES, "max_tokens": "many"}, "max_tokens"),
        ({"messages": MESSAGES, "system": 5}, "system"),
        ({"messages": MESSAGES}, "max_tokens"),  # the Messages API requires it
    ],
)
def test_malformed_requests_name_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(ApiError) as info:
        parse_messages(body)
    assert info.value.status == 400 and info.value.param == param and param in info.value.message
