"""The openai and anthropic providers against ``httpx.MockTransport``: requests, parsing, errors.

No sockets here: each test scripts the upstream's answer as bytes and checks
what the provider sent and what it made of the answer. The race-level and
network-level behaviour (cancellation, pooling, strategies) is in
``test_http_race.py``, against a real server.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import trio

import raceway
from raceway import AnthropicProvider as AnthropicDefinition
from raceway import (
    AuthenticationError,
    MissingAPIKeyError,
    ProviderConnectionError,
    ProviderHTTPError,
    ProviderProtocolError,
    RateLimitedError,
)
from raceway import OpenAIProvider as OpenAIDefinition
from raceway._providers import AnthropicProvider, Chunk, OpenAIProvider, Request

KEY = "sk-unit-test-key-0123456789"

Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture(autouse=True)
def _keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UNIT_OPENAI_KEY", KEY)
    monkeypatch.setenv("UNIT_ANTHROPIC_KEY", KEY)


def openai(handler: Handler, **settings: Any) -> OpenAIProvider:
    settings.setdefault("api_key_env", "UNIT_OPENAI_KEY")
    definition = OpenAIDefinition(
        base_url="https://upstream.test/v1/", model="gpt-test", **settings
    )
    return OpenAIProvider("oa", definition, transport=httpx.MockTransport(handler))


def anthropic(handler: Handler, **settings: Any) -> AnthropicProvider:
    settings.setdefault("api_key_env", "UNIT_ANTHROPIC_KEY")
    definition = AnthropicDefinition(
        base_url="https://anthropic.test", model="claude-test", **settings
    )
    return AnthropicProvider("an", definition, transport=httpx.MockTransport(handler))


def sse(*events: Any, done: bool = True) -> bytes:
    out = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)
    return out + (b"data: [DONE]\n\n" if done else b"")


def named(*events: tuple[str, Any]) -> bytes:
    return b"".join(
        f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events
    )


def streaming(body: bytes, status: int = 200, **headers: str) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            status, headers={"content-type": "text/event-stream", **headers}, content=body
        )

    return handler


async def collect(provider: Any, request: Request | None = None) -> list[Chunk]:
    request = request or Request(messages=[{"role": "user", "content": "hi"}], model="gpt-test")
    with trio.fail_after(5):
        try:
            return [chunk async for chunk in provider.stream(request)]
        finally:
            await provider.aclose()


def delta(
    content: str | None = None, finish: str | None = None, role: str | None = None
) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if role:
        d["role"] = role
    if content is not None:
        d["content"] = content
    return {
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": d, "finish_reason": finish}],
    }


OPENAI_OK = sse(
    delta("", role="assistant"),
    delta("Hello"),
    delta(", world"),
    delta(finish="stop"),
    {
        "object": "chat.completion.chunk",
        "choices": [],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3},
    },
)


# ------------------------------------------------------------------ openai: requests


async def test_openai_request_shape() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return streaming(OPENAI_OK)(request)

    provider = openai(handler, headers={"X-Title": "raceway tests"})
    request = Request(
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        model="gpt-test",
        params={"temperature": 0.1, "max_tokens": 40, "stream": False, "model": "not-this"},
    )
    await collect(provider, request)
    (sent,) = seen
    assert sent.method == "POST"
    assert str(sent.url) == "https://upstream.test/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["x-title"] == "raceway tests"
    assert sent.headers["accept"] == "text/event-stream"
    body = json.loads(sent.content)
    assert body == {
        "temperature": 0.1,
        "max_tokens": 40,
        "stream": True,
        "model": "gpt-test",
        "messages": request.messages,
        "stream_options": {"include_usage": True},
    }


async def test_openai_stream_usage_off_sends_no_stream_options_and_no_key_env_sends_no_auth() -> (
    None
):
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return streaming(OPENAI_OK)(request)

    await collect(openai(handler, stream_usage=False, api_key_env=None))
    body = json.loads(seen[0].content)
    assert "stream_options" not in body
    assert "authorization" not in seen[0].headers


# ------------------------------------------------------------------ openai: answers


async def test_openai_parses_content_finish_and_usage_and_skips_role_chunk() -> None:
    chunks = await collect(openai(streaming(OPENAI_OK)))
    assert [c.text for c in chunks][:2] == ["Hello", ", world"]
    assert all(c.text or c.finish_reason or c.usage for c in chunks), "no empty role-only chunk"
    assert "".join(c.text for c in chunks) == "Hello, world"
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]
    assert [c.usage for c in chunks if c.usage] == [raceway.Usage(input_tokens=5, output_tokens=3)]


async def test_openai_accepts_a_plain_json_completion() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            json={
                "object": "chat.completion",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "whole"},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1},
            },
        )

    chunks = await collect(openai(handler))
    assert chunks == [
        Chunk("whole", finish_reason="stop", usage=raceway.Usage(input_tokens=1, output_tokens=1))
    ]


async def test_openai_stream_without_done_is_a_protocol_error_after_its_text() -> None:
    provider = openai(streaming(sse(delta("partial"), done=False)))
    got: list[str] = []
    with pytest.raises(ProviderProtocolError, match=r"ended without \[DONE\]"):
        async for chunk in provider.stream(Request(messages=[], model="m")):
            got.append(chunk.text)
    assert got == ["partial"]


async def test_openai_malformed_json_is_a_protocol_error() -> None:
    body = sse(delta("ok"), done=False) + b'data: {"choices": [{"delta": {"content": "br\n\n'
    with pytest.raises(ProviderProtocolError, match="malformed JSON in the stream"):
        await collect(openai(streaming(body)))


async def test_openai_error_object_in_the_stream() -> None:
    body = sse(
        {"error": {"message": f"upstream broke near {KEY}", "type": "server_error"}}, done=False
    )
    with pytest.raises(
        ProviderHTTPError, match="server_error in the stream: upstream broke"
    ) as info:
        await collect(openai(streaming(body)))
    assert KEY not in str(info.value)
    assert info.value.status_code == 500


async def test_openai_connection_lost_mid_stream() -> None:
    async def body() -> AsyncIterator[bytes]:
        yield sse(delta("first"), done=False)
        raise httpx.RemoteProtocolError(
            "peer closed connection without sending complete message body"
        )

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body())

    with pytest.raises(ProviderConnectionError, match="lost mid-stream: peer closed"):
        await collect(openai(handler))


async def test_connection_refused_before_answering() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused")

    with pytest.raises(
        ProviderConnectionError,
        match=r"cannot connect to upstream.test: \[Errno 111\] Connection refused",
    ):
        await collect(openai(handler))


# ------------------------------------------------------------------ errors by status


def error_reply(status: int, payload: Any, **headers: str) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=payload, headers=headers)

    return handler


@pytest.mark.parametrize("make", [openai, anthropic])
async def test_429_is_rate_limited_with_retry_after_seconds(make: Callable[..., Any]) -> None:
    reply = error_reply(
        429,
        {"error": {"message": "Rate limit reached", "type": "requests"}},
        **{"retry-after": "12"},
    )
    with pytest.raises(RateLimitedError) as info:
        await collect(make(reply))
    assert info.value.retry_after == 12.0
    assert info.value.status_code == 429
    assert (
        str(info.value)
        == "rate limited by "
        + ("upstream.test" if make is openai else "anthropic.test")
        + " (HTTP 429, retry after 12 s): Rate limit reached"
    )


async def test_429_with_an_http_date() -> None:
    import email.utils
    import time

    date = email.utils.formatdate(time.time() + 60, usegmt=True)
    with pytest.raises(RateLimitedError) as info:
        await collect(openai(error_reply(429, {}, **{"retry-after": date})))
    assert info.value.retry_after is not None and 55 <= info.value.retry_after <= 60


@pytest.mark.parametrize(
    ("make", "env"), [(openai, "UNIT_OPENAI_KEY"), (anthropic, "UNIT_ANTHROPIC_KEY")]
)
@pytest.mark.parametrize("status", [401, 403])
async def test_401_403_name_the_variable_and_never_the_key(
    make: Callable[..., Any], env: str, status: int
) -> None:
    reply = error_reply(status, {"error": {"message": f"Incorrect API key provided: {KEY}"}})
    with pytest.raises(AuthenticationError) as info:
        await collect(make(reply))
    message = str(info.value)
    assert f"${env}" in message
    assert KEY not in message and KEY[:12] not in message
    assert "\n" not in message
    assert info.value.status_code == status


async def test_other_4xx_carries_the_upstream_message_on_one_line() -> None:
    reply = error_reply(
        404,
        {
            "error": {
                "message": "The model `gpt-nope` does not exist\nor you lack access.",
                "type": "invalid_request_error",
            }
        },
    )
    with pytest.raises(ProviderHTTPError) as info:
        await collect(openai(reply))
    assert type(info.value) is ProviderHTTPError
    assert (
        str(info.value)
        == "HTTP 404 from upstream.test: The model `gpt-nope` does not exist or you lack access."
        " (POST https://upstream.test/v1/chat/completions)"
    )


async def test_5xx_with_a_non_json_body() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="<html>\r\n<body>Bad gateway</body></html>")

    with pytest.raises(ProviderHTTPError, match=r"^HTTP 502 from upstream.test: <html>$") as info:
        await collect(openai(handler))
    assert info.value.status_code == 502


async def test_an_empty_error_body_falls_back_to_the_reason_phrase() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503)

    with pytest.raises(
        ProviderHTTPError, match=r"^HTTP 503 from upstream.test: Service Unavailable$"
    ):
        await collect(openai(handler))


@pytest.mark.parametrize("make", [openai, anthropic])
async def test_missing_key_fails_before_any_request(
    make: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("UNIT_OPENAI_KEY")
    monkeypatch.setenv("UNIT_ANTHROPIC_KEY", "   ")
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200)

    with pytest.raises(
        MissingAPIKeyError,
        match=r"^API key missing: set the environment variable UNIT_(OPENAI|ANTHROPIC)_KEY$",
    ):
        await collect(make(handler))
    assert calls == []


# ------------------------------------------------------------------ anthropic


ANTHROPIC_OK = named(
    (
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "content": [],
                "usage": {"input_tokens": 9, "output_tokens": 1},
            },
        },
    ),
    (
        "content_block_start",
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    ),
    ("ping", {"type": "ping"}),
    (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": "Bonjour"},
        },
    ),
    (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": "{}"},
        },
    ),
    (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": " monde"},
        },
    ),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    ("some_future_event", {"type": "some_future_event"}),
    (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 4},
        },
    ),
    ("message_stop", {"type": "message_stop"}),
)


async def test_anthropic_request_shape() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return streaming(ANTHROPIC_OK)(request)

    provider = anthropic(
        handler, headers={"anthropic-beta": "x"}, anthropic_version="2023-06-01", max_tokens=321
    )
    request = Request(
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "system", "content": [{"type": "text", "text": "and kind"}]},
            {"role": "user", "content": "hi", "name": "dropped"},
        ],
        model="claude-test",
        params={"temperature": 0.2, "stop": "END", "presence_penalty": 1.0},
    )
    await collect(provider, request)
    (sent,) = seen
    assert str(sent.url) == "https://anthropic.test/v1/messages"
    assert sent.headers["x-api-key"] == KEY
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.headers["anthropic-beta"] == "x"
    assert "authorization" not in sent.headers
    assert json.loads(sent.content) == {
        "temperature": 0.2,
        "stop_sequences": ["END"],
        "max_tokens": 321,
        "system": "be brief\n\nand kind",
        "model": "claude-test",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
    }


async def test_anthropic_params_max_tokens_wins_over_the_definition() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return streaming(ANTHROPIC_OK)(request)

    await collect(
        anthropic(handler),
        Request(messages=[{"role": "user", "content": "x"}], model="c", params={"max_tokens": 7}),
    )
    assert json.loads(seen[0].content)["max_tokens"] == 7


async def test_anthropic_parses_text_stop_reason_and_usage() -> None:
    chunks = await collect(anthropic(streaming(ANTHROPIC_OK)))
    assert [c.text for c in chunks if c.text] == ["Bonjour", " monde"]
    last = chunks[-1]
    assert last.finish_reason == "stop"  # end_turn, in OpenAI's words
    assert last.usage == raceway.Usage(input_tokens=9, output_tokens=4)


async def test_anthropic_without_message_stop_is_a_protocol_error() -> None:
    body = ANTHROPIC_OK.split(b"event: message_stop")[0]
    with pytest.raises(ProviderProtocolError, match="ended without message_stop"):
        await collect(anthropic(streaming(body)))


async def test_anthropic_error_event_is_classified() -> None:
    body = named(
        ("message_start", {"type": "message_start", "message": {"usage": {"input_tokens": 1}}}),
        (
            "error",
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        ),
    )
    with pytest.raises(
        ProviderHTTPError, match="overloaded_error in the stream: Overloaded"
    ) as info:
        await collect(anthropic(streaming(body)))
    assert info.value.status_code == 529

    body = named(
        ("error", {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}})
    )
    with pytest.raises(RateLimitedError):
        await collect(anthropic(streaming(body)))


async def test_anthropic_malformed_event() -> None:
    body = b"event: content_block_delta\ndata: {not json\n\n"
    with pytest.raises(ProviderProtocolError, match="malformed JSON"):
        await collect(anthropic(streaming(body)))


# ------------------------------------------------------------------ health checks


async def test_health_check_paths_and_headers() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"data": []})

    for provider in (openai(handler), anthropic(handler)):
        await provider.health_check()
        await provider.aclose()
    assert [str(r.url) for r in seen] == [
        "https://upstream.test/v1/models",
        "https://anthropic.test/v1/models",
    ]
    assert [r.method for r in seen] == ["GET", "GET"]
    assert seen[0].headers["authorization"] == f"Bearer {KEY}"
    assert seen[1].headers["x-api-key"] == KEY and seen[1].headers["anthropic-version"]


async def test_engine_health_check_passes_when_one_provider_is_healthy() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "good.test":
            return httpx.Response(200, json={"data": []})
        return httpx.Response(401, json={"error": {"message": f"bad key {KEY}"}})

    config = raceway.loads_config(
        """
providers:
  good: {type: openai, base_url: "https://good.test/v1", api_key_env: UNIT_OPENAI_KEY, model: m}
  bad: {type: anthropic, base_url: "https://bad.test", api_key_env: UNIT_ANTHROPIC_KEY, model: c}
"""
    )
    with trio.fail_after(5):
        async with raceway.open_engine(
            config, http_transport=httpx.MockTransport(handler)
        ) as engine:
            report = await engine.health_check()
    assert report.ok
    assert report.providers["good"] is None
    assert report.providers["bad"] is not None and "$UNIT_ANTHROPIC_KEY" in report.providers["bad"]
    assert KEY not in report.providers["bad"]


async def test_engine_races_through_the_mock_transport() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "down.test":
            return httpx.Response(500, json={"error": {"message": "boom"}})
        return streaming(OPENAI_OK)(request)

    config = raceway.loads_config(
        """
providers:
  up: {type: openai, base_url: "https://up.test/v1", api_key_env: UNIT_OPENAI_KEY, model: m}
  down: {type: openai, base_url: "https://down.test/v1", api_key_env: UNIT_OPENAI_KEY, model: m}
"""
    )
    with trio.fail_after(5):
        async with raceway.open_engine(
            config, http_transport=httpx.MockTransport(handler)
        ) as engine:
            result = await engine.complete([{"role": "user", "content": "hi"}])
    assert (result.provider, result.text, result.finish_reason) == ("up", "Hello, world", "stop")
    assert result.usage == raceway.Usage(input_tokens=5, output_tokens=3)


# ------------------------------------------------------------------ closing under cancellation


class SlowToCloseStream(httpx.AsyncByteStream):
    """A response body that sends one event and hangs, whose close has to await (as a real transport's may)."""

    def __init__(self, first: bytes) -> None:
        self.first = first
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.first
        await trio.sleep_forever()

    async def aclose(self) -> None:
        await trio.sleep(0.001)  # a checkpoint: raises Cancelled at once unless shielded
        self.closed = True


@pytest.mark.parametrize("make", [openai, anthropic])
async def test_a_cancelled_attempt_still_closes_its_response(make: Callable[..., Any]) -> None:
    if make is openai:
        body = SlowToCloseStream(sse(delta("first"), done=False))
    else:
        text_delta = {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": "first"},
        }
        body = SlowToCloseStream(named(("content_block_delta", text_delta)))

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=body)

    provider = make(handler)
    first = trio.Event()

    async def consume(scope: trio.CancelScope) -> None:
        with scope:
            async for chunk in provider.stream(
                Request(messages=[{"role": "user", "content": "x"}], model="m")
            ):
                if chunk.text:
                    first.set()

    with trio.fail_after(5):
        scope = trio.CancelScope()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(consume, scope)
            await first.wait()
            scope.cancel()  # the attempt is waiting for its next chunk, as a loser would be
        await provider.aclose()
    assert body.closed, "closing was interrupted by the cancellation"


async def test_a_close_that_hangs_falls_back_to_closing_the_network_stream(
    autojump_clock: trio.abc.Clock,
) -> None:
    from raceway._providers._http import CLOSE_TIMEOUT_S, aclose_response

    class NeverCloses(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            yield b""

        async def aclose(self) -> None:
            await trio.sleep_forever()

    class NetworkStream:
        closed = False

        async def aclose(self) -> None:
            self.closed = True

    network = NetworkStream()
    response = httpx.Response(200, stream=NeverCloses(), extensions={"network_stream": network})
    with trio.fail_after(5):
        with trio.CancelScope() as scope:
            scope.cancel()  # closing happens under cancellation, as for a loser
            start = trio.current_time()
            await aclose_response(response)
            took = trio.current_time() - start
    assert network.closed
    assert took == pytest.approx(CLOSE_TIMEOUT_S)  # virtual time: the bound, then the fallback


# ------------------------------------------------------------------ presets


PRESET_URLS = {
    "openai": ("https://api.openai.com/v1/chat/completions", "OPENAI_API_KEY"),
    "anthropic": ("https://api.anthropic.com/v1/messages", "ANTHROPIC_API_KEY"),
    "qwen": (
        "https://dashscope-intl.aliyuncs.com/compatible-mode/v1/chat/completions",
        "DASHSCOPE_API_KEY",
    ),
    "openrouter": ("https://openrouter.ai/api/v1/chat/completions", "OPENROUTER_API_KEY"),
    "gemini": (
        "https://generativelanguage.googleapis.com/v1beta/openai/chat/completions",
        "GEMINI_API_KEY",
    ),
    "cerebras": ("https://api.cerebras.ai/v1/chat/completions", "CEREBRAS_API_KEY"),
    "groq": ("https://api.groq.com/openai/v1/chat/completions", "GROQ_API_KEY"),
}


async def test_bare_preset_names_need_only_their_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """The seed's style: providers named, never defined; a key in the environment is enough."""
    for _, env in PRESET_URLS.values():
        monkeypatch.setenv(env, f"key-for-{env}")
    seen: dict[str, httpx.Request] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen[str(request.url)] = request
        if request.url.path.endswith("/messages"):
            return streaming(ANTHROPIC_OK)(request)
        return streaming(OPENAI_OK)(request)

    refs = "\n".join(f"      - {{name: {name}, model: some-model}}" for name in PRESET_URLS)
    config = raceway.loads_config(
        f"""
grace_period_ms: 0
strategy: quality
providers: [{", ".join(PRESET_URLS)}]
virtual_models:
  everyone:
    providers:
{refs}
"""
    )
    with trio.fail_after(5):
        async with raceway.open_engine(
            config, http_transport=httpx.MockTransport(handler)
        ) as engine:
            result = await engine.complete([{"role": "user", "content": "hi"}])
    assert {a.status for a in result.attempts} <= {"won", "lost"}
    for url, env in PRESET_URLS.values():
        request = seen[url]
        if "anthropic" in url:
            assert request.headers["x-api-key"] == f"key-for-{env}"
        else:
            assert request.headers["authorization"] == f"Bearer key-for-{env}"


# ------------------------------------------------------------------ tool calls, finish reasons, the registry


@pytest.mark.parametrize(
    ("error", "kind", "status"),
    [
        (
            {"message": "slow down", "type": "tokens", "code": "rate_limit_exceeded"},
            RateLimitedError,
            429,
        ),
        ({"message": "slow down", "code": 429}, RateLimitedError, 429),
        ({"message": "busy", "type": "overloaded_error"}, ProviderHTTPError, 529),
        ({"message": "bad", "type": "invalid_request_error"}, ProviderHTTPError, 400),
    ],
)
async def test_openai_error_object_in_the_stream_is_classified(
    error: dict[str, Any], kind: type[ProviderHTTPError], status: int
) -> None:
    body = sse(delta("", role="assistant"), {"error": error}, done=False)
    with pytest.raises(kind) as info:
        await collect(openai(streaming(body)))
    assert type(info.value) is kind and info.value.status_code == status


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "pause_turn"),  # others pass through unchanged
    ],
)
async def test_anthropic_stop_reasons_are_normalised(stop_reason: str, finish: str) -> None:
    body = ANTHROPIC_OK.replace(b'"end_turn"', json.dumps(stop_reason).encode())
    chunks = await collect(anthropic(streaming(body)))
    assert chunks[-1].finish_reason == finish


async def test_openai_reads_only_choice_0_and_a_whole_answer_with_tool_calls() -> None:
    two = {
        "object": "chat.completion.chunk",
        "choices": [{"index": 1, "delta": {"content": "other"}, "finish_reason": None}],
    }
    chunks = await collect(openai(streaming(sse(two, delta("mine"), delta(finish="stop")))))
    assert "".join(c.text for c in chunks) == "mine"

    def handler(request: httpx.Request) -> httpx.Response:
        message = {
            "role": "assistant",
            "content": None,
            "reasoning_content": "think",
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
            ],
        }
        return httpx.Response(
            200,
            json={
                "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
                "usage": {
                    "prompt_tokens": 4,
                    "completion_tokens": 6,
                    "prompt_tokens_details": {"cached_tokens": 2},
                    "completion_tokens_details": {"reasoning_tokens": 3},
                },
            },
        )

    (chunk,) = await collect(openai(handler))
    assert chunk.tool_calls == (raceway.ToolCallDelta(0, "c1", "f", '{"a": 1}'),)
    assert chunk.reasoning == "think" and chunk.finish_reason == "tool_calls"
    assert chunk.usage == raceway.Usage(
        input_tokens=4, output_tokens=6, cached_input_tokens=2, reasoning_tokens=3
    )


async def test_a_transport_failure_keeps_its_cause() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused")

    with pytest.raises(ProviderConnectionError) as info:
        await collect(openai(handler))
    assert isinstance(info.value.__cause__, httpx.ConnectError)


def test_one_registry_keyed_by_definition_class() -> None:
    from raceway import PythonProvider as PythonDefinition
    from raceway import SimProvider as SimDefinition
    from raceway._providers import (
        PROVIDER_CLASSES,
        ProviderContext,
        PythonProvider,
        SimProvider,
        build_provider,
    )

    assert PROVIDER_CLASSES == {
        OpenAIDefinition: OpenAIProvider,
        AnthropicDefinition: AnthropicProvider,
        SimDefinition: SimProvider,
        PythonDefinition: PythonProvider,
    }
    assert {cls.type for cls in PROVIDER_CLASSES.values()} == {
        "openai",
        "anthropic",
        "sim",
        "python",
    }
    assert [cls.uses_http for cls in PROVIDER_CLASSES.values()] == [True, True, False, False]
    built = build_provider("oa", OpenAIDefinition(base_url="https://x.test/v1"), ProviderContext())
    assert type(built) is OpenAIProvider and built.name == "oa"

    class Elsewhere:
        type = "carrier-pigeon"

    with pytest.raises(raceway.ConfigError) as info:
        build_provider("bird", Elsewhere(), ProviderContext())  # type: ignore[arg-type]
    assert info.value.path == "$.providers['bird'].type"
    assert "openai, anthropic, sim, python" in info.value.message
