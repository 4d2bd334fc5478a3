"""The SSE decoder and the small parsers of ``raceway._providers._http``, on their own."""

from __future__ import annotations

import email.utils
import itertools

import httpx
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from raceway import OpenAIProvider as OpenAIDefinition
from raceway import ProviderProtocolError
from raceway._providers import OpenAIProvider
from raceway._providers._http import (
    ServerSentEvent,
    SSEDecoder,
    parse_retry_after,
    upstream_message,
)
from raceway._providers._sse import LineSplitter
from raceway._providers._upstream import error_label_and_status, one_line


def decode_all(text: str) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    out = []
    # splitlines keeps the semantics of httpx's LineDecoder: \n, \r\n and \r end a line.
    for line in text.splitlines():
        event = decoder.decode(line)
        if event is not None:
            out.append(event)
    return out


def test_data_lines_join_and_fields_parse() -> None:
    text = (
        ": a comment, ignored\n"
        "event: message_start\n"
        "id: 7\n"
        "retry: 1500\n"
        'data: {"a":\n'
        "data:1}\n"
        "\n"
        "data: second\n\n"
    )
    assert decode_all(text) == [
        ServerSentEvent("message_start", '{"a":\n1}', "7", 1500),
        ServerSentEvent("message", "second", "7", 1500),
    ]


def test_only_one_space_after_the_colon_is_dropped_and_field_without_colon_counts() -> None:
    assert decode_all("data:  two spaces\n\ndata\n\n") == [
        ServerSentEvent("message", " two spaces"),
        ServerSentEvent("message", ""),
    ]


def test_blank_lines_without_data_dispatch_nothing_and_event_name_resets() -> None:
    assert decode_all("event: ping\n\n\n\ndata: x\n\n") == [ServerSentEvent("message", "x")]


def test_unfinished_event_at_end_is_dropped_and_bom_is_ignored() -> None:
    assert decode_all("\ufeffdata: a\n\ndata: [DONE]") == [ServerSentEvent("message", "a")]


def test_an_endless_event_is_a_protocol_error() -> None:
    decoder = SSEDecoder(max_data_chars=100)
    with pytest.raises(ProviderProtocolError, match="exceeds 100 characters"):
        for _ in range(20):
            decoder.decode("data: " + "x" * 10)


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["a\r\nbé\rc\n\nd\r\r\ne", "a\nbé\n\ncafé\nd\n\ne"]),
    st.lists(st.integers(min_value=1, max_value=40), max_size=10, unique=True),
)
def test_the_line_splitter_gives_the_same_lines_for_any_split(text: str, cuts: list[int]) -> None:
    data = text.encode()
    bounds = [0, *sorted(c for c in cuts if c < len(data)), len(data)]
    splitter = LineSplitter()
    lines = []
    for a, b in itertools.pairwise(bounds):
        lines += splitter.feed(data[a:b])
    lines += splitter.flush()
    assert lines == text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def test_a_line_is_bounded_while_it_is_read_not_once_complete() -> None:
    splitter = LineSplitter(max_line_bytes=100)
    assert splitter.feed(b"data: " + b"x" * 60) == []
    with pytest.raises(ProviderProtocolError, match="a line in the stream exceeds 100 bytes"):
        splitter.feed(b"x" * 60)  # no line ending yet: the limit holds anyway
    splitter = LineSplitter(max_line_bytes=100)
    with pytest.raises(ProviderProtocolError):
        splitter.feed(b"x" * 101 + b"\n")  # a whole line past the limit in one read
    splitter = LineSplitter(max_line_bytes=100)
    assert splitter.feed(b"x" * 100 + b"\n" + b"y" * 100) == ["x" * 100]  # at the limit is fine


@pytest.mark.parametrize(
    ("obj", "label", "status"),
    [
        ({"error": {"message": "m", "type": "server_error"}}, "server_error", 500),
        (
            {"error": {"message": "m", "type": "tokens", "code": "rate_limit_exceeded"}},
            "tokens",
            429,
        ),
        ({"error": {"message": "m", "code": 429}}, "429", 429),  # OpenRouter
        (
            {"error": {"message": "m", "type": "BadRequestError", "code": 400}},
            "BadRequestError",
            400,
        ),
        ({"error": {"message": "m", "type": "overloaded_error"}}, "overloaded_error", 529),
        (
            {"type": "error", "error": {"type": "rate_limit_error", "message": "m"}},
            "rate_limit_error",
            429,
        ),
        (
            {"error": {"message": "m", "type": "upstream_overloaded_please_wait"}},
            "upstream_overloaded_please_wait",
            529,
        ),
        ({"error": {"message": "m", "code": "503"}}, "503", 503),
        ({"error": {"message": "no type at all"}}, "error", 500),
        ({"error": "just a string"}, "error", 500),
    ],
)
def test_in_stream_error_objects_are_classified_like_http(
    obj: object, label: str, status: int
) -> None:
    assert error_label_and_status(obj) == (label, status)


def test_one_line_cuts_only_when_asked() -> None:
    assert one_line(" a \n b ", None) == "a b"
    assert one_line("x" * 300) == "x" * 239 + "…"


STREAM = (
    b'data: {"choices":[{"delta":{"role":"assistant","content":""}}]}\r\n\r\n'
    b": keep-alive\n\n"
    b'data: {"choices":[{"delta":{"content":"na\xc3\xafve "}}]}\n\n'
    b'data: {"choices":[{"delta":{"content":"caf\xc3\xa9"},"finish_reason":"stop"}]}\r\r'
    b"data: [DONE]\n\n"
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(STREAM) - 1), max_size=12, unique=True))
def test_any_split_of_the_byte_stream_gives_the_same_answer(cuts: list[int]) -> None:
    """TCP may split a stream anywhere, even inside a UTF-8 character or a \\r\\n."""
    bounds = [0, *sorted(cuts), len(STREAM)]
    parts = [STREAM[a:b] for a, b in itertools.pairwise(bounds)]

    async def body():  # type: ignore[no-untyped-def]
        for part in parts:
            yield part

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body())

    async def run() -> tuple[str, str | None]:
        from raceway._providers import Request

        definition = OpenAIDefinition(base_url="http://upstream.test/v1", model="m")
        provider = OpenAIProvider("p", definition, transport=httpx.MockTransport(handler))
        text, finish = "", None
        async for chunk in provider.stream(Request(messages=[], model="m")):
            text += chunk.text
            finish = chunk.finish_reason or finish
        await provider.aclose()
        return text, finish

    assert trio.run(run) == ("naïve café", "stop")


def test_retry_after_seconds_ms_and_http_date() -> None:
    assert parse_retry_after({"retry-after": "7"}) == 7.0
    assert parse_retry_after({"retry-after": " 1.5 "}) == 1.5
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after({"retry-after": date}, now=now) == pytest.approx(30, abs=1)
    past = email.utils.formatdate(now - 30, usegmt=True)
    assert parse_retry_after({"retry-after": past}, now=now) == 0.0
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            b'{"error": {"message": "Rate limit\\nreached", "type": "requests"}}',
            "Rate limit reached",
        ),
        (
            b'{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}',
            "Overloaded",
        ),
        (b'{"error": "model not found"}', "model not found"),
        (b'{"detail": "Not Found"}', "Not Found"),
        (b'[{"error": {"message": "wrapped", "code": 400}}]', "wrapped"),
        (b"<html>\n<h1>502 Bad Gateway</h1>\n</html>", "<html>"),
        (b"", ""),
    ],
)
def test_upstream_message_finds_the_message_as_one_line(body: bytes, message: str) -> None:
    assert upstream_message(body) == message


def test_quote_redacts_before_cutting(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cutting first could leave the start of a key at the end of the message."""
    monkeypatch.setenv("SECRET_VAR", "abcdefgh-0123456789-secret")
    provider = OpenAIProvider("p", OpenAIDefinition(base_url="http://x", api_key_env="SECRET_VAR"))
    text = "y" * 60 + "abcdefgh-0123456789-secret and more"
    assert "abcdefgh" not in provider.quote(text, 70)
    assert provider.quote(text, 80).startswith("y" * 60 + "[redacted]")


def test_redact_removes_the_key_header_values_and_key_like_strings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SECRET_VAR", "abc123-very-secret")
    definition = OpenAIDefinition(
        base_url="http://x", api_key_env="SECRET_VAR", headers={"x-org-token": "org-token-value"}
    )
    provider = OpenAIProvider("p", definition)
    text = provider.redact(
        "bad key abc123-very-secret, org org-token-value, sk-proj-12***89, Bearer xyz"
    )
    assert (
        "abc123" not in text
        and "org-token-value" not in text
        and "sk-proj" not in text
        and "xyz" not in text
    )
    assert text.count("[redacted]") == 4
