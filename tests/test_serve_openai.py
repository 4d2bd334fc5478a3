"""The gateway through the official ``openai`` SDK: text, streams, tool calls, usage, errors."""

from __future__ import annotations

from typing import Any

import openai
import pytest
import serve_support
from serve_support import MESSAGES, in_asyncio, openai_client, serving


async def test_completion_names_the_winner_and_the_race() -> None:
    async with serving() as gw:

        async def call() -> Any:
            raw = await openai_client(gw).chat.completions.with_raw_response.create(model="fast", messages=MESSAGES)
            return raw.headers, raw.parse()

        headers, completion = await in_asyncio(call)
    assert completion.object == "chat.completion"
    assert completion.model == "quick-1"
    assert completion.id == headers["x-raceway-race-id"]
    assert completion.choices[0].message.content == "Hello from quick."
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].finish_reason == "stop"
    assert headers["x-raceway-winner"] == "quick/quick-1"
    assert headers["x-raceway-strategy"] == "first_wins"
    assert float(headers["x-raceway-ttft-ms"]) >= 5.0
    # sim reports usage: prompt words and answer words
    assert completion.usage.prompt_tokens == 2 and completion.usage.completion_tokens == 3
    assert completion.usage.total_tokens == 5


async def test_stream_with_usage() -> None:
    async with serving() as gw:

        async def call() -> Any:
            response = await openai_client(gw).chat.completions.with_raw_response.create(
                model="fast", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
            )
            return response.headers, [chunk async for chunk in response.parse()]

        headers, chunks = await in_asyncio(call)
    assert headers["content-type"].startswith("text/event-stream")
    assert headers["x-raceway-winner"] == "quick/quick-1"
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    assert {c.id for c in chunks} == {headers["x-raceway-race-id"]}
    assert {c.model for c in chunks} == {"quick-1"}
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from quick."
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    # include_usage: a last chunk with no choices carries the usage; the others carry null
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 3
    assert all(c.usage is None for c in chunks[:-1])


async def test_stream_without_usage_sends_no_usage_chunk() -> None:
    async with serving() as gw:

        async def call() -> Any:
            stream = await openai_client(gw).chat.completions.create(model="fast", messages=MESSAGES, stream=True)
            return [chunk async for chunk in stream]

        chunks = await in_asyncio(call)
    assert all(c.choices for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_tool_calls_and_usage_pass_through() -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    async with serving() as gw:

        async def call() -> Any:
            client = openai_client(gw)
            whole = await client.chat.completions.create(
                model="tools", messages=MESSAGES, tools=tools, tool_choice="auto", parallel_tool_calls=False
            )
            stream = await client.chat.completions.create(
                model="tools", messages=MESSAGES, tools=tools, stream=True, stream_options={"include_usage": True}
            )
            return whole, [c async for c in stream]

        whole, chunks = await in_asyncio(call)
    # the engine got the OpenAI parameters unchanged
    params = serve_support.REQUESTS[0].params
    assert params["tools"] == tools and params["tool_choice"] == "auto" and params["parallel_tool_calls"] is False
    assert "stream" not in params and "stream_options" not in params
    assert whole.choices[0].message.content is None  # a tool call, no text
    call = whole.choices[0].message.tool_calls[0]
    assert (call.id, call.type, call.function.name, call.function.arguments) == (
        "call_w1", "function", "get_weather", '{"city": "Paris"}',
    )
    assert whole.choices[0].finish_reason == "tool_calls"
    assert whole.usage.prompt_tokens == 12 and whole.usage.completion_tokens == 7
    assert whole.usage.prompt_tokens_details.cached_tokens == 4
    assert whole.usage.completion_tokens_details.reasoning_tokens == 2
    # streamed: the first delta of the call has id and name, later ones argument pieces
    deltas = [d for c in chunks if c.choices for d in (c.choices[0].delta.tool_calls or [])]
    assert deltas[0].id == "call_w1" and deltas[0].function.name == "get_weather" and deltas[0].index == 0
    assert "".join(d.function.arguments or "" for d in deltas) == '{"city": "Paris"}'
    assert all(d.id is None for d in deltas[1:])
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]
    assert chunks[-1].usage.prompt_tokens_details.cached_tokens == 4


async def test_a_tool_call_in_one_delta() -> None:
    async with serving() as gw:

        async def call() -> Any:
            client = openai_client(gw)
            whole = await client.chat.completions.create(model="tool_only", messages=MESSAGES)
            stream = await client.chat.completions.create(model="tool_only", messages=MESSAGES, stream=True)
            return whole, [c async for c in stream]

        whole, chunks = await in_asyncio(call)
    assert whole.choices[0].message.content is None
    assert whole.choices[0].message.tool_calls[0].function.arguments == '{"q": 1}'
    deltas = [d for c in chunks for d in (c.choices[0].delta.tool_calls or [])]
    assert deltas[0].id == "call_t1" and deltas[0].function.name == "lookup"
    # As OpenAI streams a tool-call answer: the role chunk's content is null, not "".
    assert chunks[0].choices[0].delta.role == "assistant" and chunks[0].choices[0].delta.content is None


async def test_reasoning_is_reasoning_content() -> None:
    async with serving() as gw:

        async def call() -> Any:
            client = openai_client(gw)
            whole = await client.chat.completions.create(model="think", messages=MESSAGES)
            stream = await client.chat.completions.create(model="think", messages=MESSAGES, stream=True)
            return whole, [c async for c in stream]

        whole, chunks = await in_asyncio(call)
    assert whole.choices[0].message.content == "The answer is 4."
    assert whole.choices[0].message.model_extra["reasoning_content"] == "Let me think. "
    streamed = "".join((c.choices[0].delta.model_extra or {}).get("reasoning_content") or "" for c in chunks)
    assert streamed == "Let me think. "


async def test_params_and_messages_reach_the_engine_unchanged() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                     {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "look", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "a cat"},
    ]
    fmt = {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}}}
    async with serving() as gw:

        async def call() -> Any:
            return await openai_client(gw).chat.completions.create(
                model="tools", messages=messages, temperature=0.2, max_tokens=50, response_format=fmt, seed=7
            )

        await in_asyncio(call)
    request = serve_support.REQUESTS[0]
    assert request.messages == messages
    assert {k: request.params[k] for k in ("temperature", "max_tokens", "response_format", "seed")} == {
        "temperature": 0.2, "max_tokens": 50, "response_format": fmt, "seed": 7,
    }


@pytest.mark.parametrize(
    ("kwargs", "status", "param", "words"),
    [
        ({"model": "nope"}, 404, "model", ["nope", "fast", "tools"]),
        ({"temperature": "hot"}, 400, "temperature", ["temperature", "number"]),
        ({"max_tokens": 1.5}, 400, "max_tokens", ["max_tokens", "integer"]),
        ({"messages": []}, 400, "messages", ["messages", "empty"]),
        ({"messages": [{"role": "robot", "content": "hi"}]}, 400, "messages[0].role", ["messages[0].role", "robot"]),
        ({"messages": [{"role": "user"}]}, 400, "messages[0].content", ["messages[0].content"]),
        ({"n": 2}, 400, "n", ["n must be 1"]),
        ({"tool_choice": "sometimes"}, 400, "tool_choice", ["tool_choice"]),
        ({"response_format": {"type": "yaml"}}, 400, "response_format.type", ["response_format.type"]),
        ({"stream_options": {"include_usage": True}}, 400, "stream_options", ["stream_options", "stream"]),
    ],
)
async def test_errors_by_status(kwargs: dict[str, Any], status: int, param: str, words: list[str]) -> None:
    request = {"model": "fast", "messages": MESSAGES, **kwargs}
    async with serving() as gw:

        async def call() -> Any:
            try:
                await openai_client(gw).chat.completions.create(**request)
            except openai.APIStatusError as exc:
                return exc
            raise AssertionError("no error")

        exc = await in_asyncio(call)
    assert exc.status_code == status
    assert exc.body["param"] == param
    assert exc.body["type"] == "invalid_request_error"
    for word in words:
        assert word in exc.body["message"]


async def test_every_provider_failing_is_502_with_redacted_reasons() -> None:
    async with serving() as gw:

        async def call(stream: bool) -> Any:
            try:
                await openai_client(gw).chat.completions.create(model="failing", messages=MESSAGES, stream=stream)
            except openai.APIStatusError as exc:
                return exc
            raise AssertionError("no error")

        for stream in (False, True):  # a stream that fails before its answer is a 502 too, not a 200
            exc = await in_asyncio(call, stream)
            assert exc.status_code == 502
            assert exc.body["type"] == "server_error" and exc.body["code"] == "all_providers_failed"
            assert exc.body["message"].count("broken/broken-1: HTTP 500 from upstream") == 2
            assert serve_support.LEAKED_KEY not in exc.body["message"]
            assert "[redacted]" in exc.body["message"]
            assert exc.response.headers["x-raceway-race-id"]
            assert "x-raceway-winner" not in exc.response.headers


async def test_race_deadline_is_504() -> None:
    async with serving() as gw:

        async def call() -> Any:
            try:
                await openai_client(gw).chat.completions.create(model="deadline", messages=MESSAGES, stream=True)
            except openai.APIStatusError as exc:
                return exc
            raise AssertionError("no error")

        exc = await in_asyncio(call)
    assert exc.status_code == 504
    assert exc.body["code"] == "race_timeout" and "150 ms" in exc.body["message"]


async def test_a_winner_breaking_mid_stream_ends_with_an_error_event() -> None:
    async with serving() as gw:

        async def call() -> Any:
            client = openai_client(gw)
            stream = await client.chat.completions.create(model="interrupted", messages=MESSAGES, stream=True)
            seen = []
            with pytest.raises(openai.APIError) as info:
                async for chunk in stream:
                    seen.append(chunk.choices[0].delta.content)
            try:
                await client.chat.completions.create(model="interrupted", messages=MESSAGES)
            except openai.APIStatusError as exc:
                return seen, info.value, exc
            raise AssertionError("no error")

        seen, streamed, whole = await in_asyncio(call)
    assert "partial " in seen
    assert "broke" in streamed.message
    assert whole.status_code == 502 and whole.body["code"] == "stream_interrupted"


async def test_models_list_the_virtual_models() -> None:
    async with serving() as gw:

        async def call() -> Any:
            client = openai_client(gw)
            return await client.models.list(), await client.models.retrieve("fast")

        listing, one = await in_asyncio(call)
    assert [m.id for m in listing.data][:3] == ["fast", "slowest", "tools"]
    assert listing.data[0].object == "model" and listing.data[0].owned_by == "raceway"
    assert one.id == "fast" and one.model_extra["providers"] == ["quick/quick-1", "slow/slow-1"]


async def test_tool_calls_from_a_loopback_http_provider() -> None:
    from fake_upstream import serve_fake_upstream

    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    async with serve_fake_upstream() as up:
        up.behave("tool", text="", tool_calls=({"name": "get_weather", "arguments": '{"city": "Paris"}'},))
        config = serve_support.CONFIG.replace(
            "providers:\n", f'providers:\n  http_tool: {{type: openai, base_url: "{up.openai_url("tool")}", model: fake-gpt}}\n', 1
        ).replace("virtual_models:\n", "virtual_models:\n  http_tools: {providers: [http_tool]}\n", 1)
        async with serving(config) as gw:

            async def call() -> Any:
                client = openai_client(gw)
                whole = await client.chat.completions.create(model="http_tools", messages=MESSAGES, tools=tools)
                stream = await client.chat.completions.create(model="http_tools", messages=MESSAGES, tools=tools, stream=True)
                return whole, [c async for c in stream]

            whole, chunks = await in_asyncio(call)
    assert up.requests("tool")[0].body["tools"] == tools  # passed on unchanged
    call = whole.choices[0].message.tool_calls[0]
    assert (call.function.name, call.function.arguments) == ("get_weather", '{"city": "Paris"}')
    assert whole.choices[0].finish_reason == "tool_calls" and whole.model == "fake-gpt"
    deltas = [d for c in chunks if c.choices for d in (c.choices[0].delta.tool_calls or [])]
    assert deltas[0].function.name == "get_weather"
    assert "".join(d.function.arguments or "" for d in deltas) == '{"city": "Paris"}'


async def test_a_one_piece_answer_fails_over_like_complete() -> None:
    """Nothing of a non-stream answer is sent before its end, so a winner that breaks
    midway is replaced by the next provider that answers, as engine.complete() does."""
    config = serve_support.CONFIG.replace("virtual_models:\n", "virtual_models:\n  mixed: {providers: [breaks, slow]}\n")
    async with serving(config) as gw:

        async def call() -> Any:
            raw = await openai_client(gw).chat.completions.with_raw_response.create(model="mixed", messages=MESSAGES)
            return raw.headers, raw.parse()

        headers, completion = await in_asyncio(call)
    assert completion.choices[0].message.content == "Hello from slow."
    assert completion.model == "slow-1" and headers["x-raceway-winner"] == "slow/slow-1"
