"""Races of real HTTP providers against a fake upstream on 127.0.0.1.

Every test opens an engine with ``raceway.open_engine`` on a config written in
YAML, pointing ``base_url`` at :mod:`fake_upstream`, a hypercorn server in the
test's own trio run. Latencies are the server's (real time, tens of
milliseconds); nothing here sleeps to wait for a fact: tests wait on the
server's records (:meth:`FakeUpstream.wait_until`) under ``fail_after``.

What is proved here and nowhere else: the first token — not the headers, not
a role-only chunk — decides; every strategy runs on real streams; a loser's or
abandoned winner's connection is closed and the upstream sees the disconnect
within 50 ms; connections are pooled and reused; faults come out classified;
the API key never shows in an error, event or log.
"""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import yaml
from fake_upstream import Exchange, FakeUpstream, serve_fake_upstream

import raceway
from raceway import AllProvidersFailedError, RaceDecided, StreamInterruptedError

KEY = "sk-fake-upstream-secret-4242424242"
MESSAGES = [{"role": "user", "content": "Say hello."}]
#: The upstream must see a stopped attempt's disconnect this soon (seconds).
DISCONNECT_BOUND = 0.050
#: Every test's hard bound (seconds).
TEST_BOUND = 10


@pytest.fixture
async def up() -> AsyncIterator[FakeUpstream]:
    async with serve_fake_upstream() as upstream:
        yield upstream


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_UPSTREAM_KEY", KEY)


def provider_def(up: FakeUpstream, kind: str, upstream: str, **extra: Any) -> dict[str, Any]:
    base = up.openai_url(upstream) if kind == "openai" else up.anthropic_url(upstream)
    model = "fake-gpt" if kind == "openai" else "fake-claude"
    return {
        "type": kind,
        "base_url": base,
        "api_key_env": "FAKE_UPSTREAM_KEY",
        "model": model,
        **extra,
    }


def make_config(
    up: FakeUpstream,
    providers: dict[str, tuple[str, str]],
    *,
    strategy: str = "first_wins",
    refs: list[dict[str, Any]] | None = None,
    **top: Any,
) -> raceway.Config:
    """A one-virtual-model config: ``providers`` maps name -> (type, upstream name)."""
    data: dict[str, Any] = {"timeout_ms": 3000, "grace_period_ms": 0, **top}
    data["providers"] = {
        name: provider_def(up, kind, target) for name, (kind, target) in providers.items()
    }
    data["virtual_models"] = {
        "race": {"strategy": strategy, "providers": refs or [{"name": name} for name in providers]}
    }
    return raceway.loads_config(yaml.safe_dump(data))


@asynccontextmanager
async def open_engine(config: raceway.Config) -> AsyncIterator[raceway.Engine]:
    """``raceway.open_engine``, with the HTTP client made before the first race.

    The engine makes its ``httpx.AsyncClient`` lazily, inside the first attempt,
    and building one loads the TLS trust store: 60-300 ms with the event loop
    blocked. Tests that time races make it first, so they time the race.
    """
    async with raceway.open_engine(config) as engine:
        engine._http_client()
        yield engine


class Clock:
    """Trio-clock times of engine events, taken the moment they are emitted."""

    def __init__(self) -> None:
        self.decided: float | None = None
        self.first_token: dict[str, float] = {}
        self.events: list[Any] = []

    def __call__(self, event: Any) -> None:
        self.events.append(event)
        if isinstance(event, RaceDecided):
            self.decided = trio.current_time()
        elif isinstance(event, raceway.AttemptFirstToken):
            self.first_token[event.provider] = trio.current_time()


def one(up: FakeUpstream, name: str) -> Exchange:
    (exchange,) = up.requests(name)
    return exchange


async def disconnected(up: FakeUpstream, name: str) -> Exchange:
    await up.wait_until(lambda: any(e.disconnected_at is not None for e in up.requests(name)))
    return one(up, name)


# ------------------------------------------------------------ the first token decides


@pytest.mark.parametrize("fast_headers_kind", ["openai", "anthropic"])
async def test_fast_headers_slow_tokens_lose_to_slow_headers_fast_tokens(
    up: FakeUpstream, fast_headers_kind: str
) -> None:
    # "eager" answers headers (and a role-only chunk / message_start) at once, its first token at 400 ms;
    # "prompt" sends headers at 150 ms and its first token right after.
    up.behave("eager", headers_delay=0.0, role_chunk=True, first_token_delay=0.4)
    up.behave("prompt", headers_delay=0.15, first_token_delay=0.0)
    config = make_config(
        up, {"eager": (fast_headers_kind, "eager"), "prompt": ("openai", "prompt")}
    )
    with trio.fail_after(TEST_BOUND):
        async with open_engine(config) as engine:
            result = await engine.complete(MESSAGES, model="race")
    assert result.provider == "prompt"
    assert result.ttft_ms >= 150  # it waited for the headers; the first token decided
    eager = one(up, "eager")
    assert (
        eager.headers_sent_at is not None
        and eager.headers_sent_at < one(up, "prompt").headers_sent_at
    )  # type: ignore[operator]
    assert eager.first_token_at is None, "the loser was cancelled before its first token"
    assert eager.disconnected_at is not None
    statuses = {a.provider: a.status for a in result.attempts}
    assert statuses == {"prompt": "won", "eager": "cancelled"}


# ------------------------------------------------------------ every strategy, over HTTP


async def test_first_wins(up: FakeUpstream) -> None:
    up.behave("fast", first_token_delay=0.01, chunk_delay=0.005)
    up.behave("slow", first_token_delay=0.5)
    config = make_config(up, {"a": ("anthropic", "fast"), "b": ("openai", "slow")})
    with trio.fail_after(TEST_BOUND):
        async with open_engine(config) as engine:
            result = await engine.complete(MESSAGES, model="race")
            await disconnected(up, "slow")
    assert result.provider == "a"
    assert result.text == "Hello from the fake upstream, streamed word by word."
    assert result.finish_reason == "stop"  # end_turn, normalised
    assert result.usage == raceway.Usage(input_tokens=2, output_tokens=9, cached_input_tokens=0)
    assert result.metadata["racing_winner"] == "a"


async def test_weighted_picks_by_weight_inside_the_grace_window(up: FakeUpstream) -> None:
    up.behave("quick", first_token_delay=0.0, chunk_delay=0.005)
    up.behave("heavy", first_token_delay=0.06, chunk_delay=0.005)
    up.behave("late", first_token_delay=2.0)
    config = make_config(
        up,
        {"quick": ("openai", "quick"), "heavy": ("anthropic", "heavy"), "late": ("openai", "late")},
        strategy="weighted",
        grace_period_ms=300,
        refs=[
            {"name": "quick", "weight": 1.0},
            {"name": "heavy", "weight": 5.0},
            {"name": "late", "weight": 100.0},
        ],
    )
    clock = Clock()
    with trio.fail_after(TEST_BOUND):
        async with open_engine(config) as engine:
            engine.subscribe(clock)
            result = await engine.complete(MESSAGES, model="race")
            late = await disconnected(up, "late")
    assert result.provider == "heavy"
    assert {a.provider: a.status for a in result.attempts} == {
        "heavy": "won",
        "quick": "lost",
        "late": "cancelled",
    }
    assert clock.decided is not None and late.disconnected_at is not None
    assert late.disconnected_at - clock.decided < DISCONNECT_BOUND


@pytest.mark.parametrize("kinds", [("openai", "anthropic"), ("anthropic", "openai")])
async def test_quality_prefers_the_complete_answer(
    up: FakeUpstream, kinds: tuple[str, str]
) -> None:
    # "hasty" is fast but its reference caps max_tokens at 2: finish_reason length / max_tokens.
    up.behave("hasty", first_token_delay=0.0, chunk_delay=0.0)
    up.behave("careful", first_token_delay=0.05, chunk_delay=0.005)
    config = make_config(
        up,
        {"hasty": (kinds[0], "hasty"), "careful": (kinds[1], "careful")},
        strategy="quality",
        grace_period_ms=1000,
        refs=[
            {"name": "hasty", "config": {"max_tokens": 2}},
            {"name": "careful", "config": {"temperature": 0.3}},
        ],
    )
    with trio.fail_after(TEST_BOUND):
        async with open_engine(config) as engine:
            result = await engine.complete(MESSAGES, model="race")
    assert result.provider == "careful"
    assert result.finish_reason in ("stop", "end_turn")
    assert one(up, "hasty").body["max_tokens"] == 2
    assert one(up, "careful").body["temperature"] == 0.3
    hasty = next(a for a in result.attempts if a.provider == "hasty")
    assert hasty.status == "lost" and hasty.output_chars == len("Hello from ")


async def test_hedged_starts_the_backup_after_the_delay_and_cancels_the_first(
    up: FakeUpstream,
) -> None:
    up.behave("primary", headers_delay=0.0, first_token_delay=5.0)
    up.behave("backup", first_token_delay=0.01)
    config = make_config(
        up,
        {"primary": ("anthropic", "primary"), "backup": ("openai", "backup")},
        strategy="hedged",
        hedge={"delay_ms": 80, "max_extra_load": 1.0},
        refs=[{"name": "primary", "priority": 2}, {"name": "backup", "priority": 1}],
    )
    clock = Clock()
    with trio.fail_after(TEST_BOUND):
        async with open_engine(config) as engine:
            engine.subscribe(clock)
            result = await engine.complete(MESSAGES, model="race")
            primary = await disconnected(up, "primary")
    backup = one(up, "backup")
    assert result.provider == "backup"
    started = {
        e.provider: e.elapsed_ms for e in clock.events if isinstance(e, raceway.AttemptStarted)
    }
    assert started["backup"] - started["primary"] >= 80
    assert backup.received_at > primary.received_at
    assert clock.decided is not None and primary.disconnected_at is not None
    assert primary.disconnected_at - clock.decided < DISCONNECT_BOUND


async def test_hedged_fails_over_at_once_when_the_first_attempt_fails(up: FakeUpstream) -> None:
    up.behave("primary", fault="server_error")
    up.behave("backup", first_token_delay=0.0)
    config = make_config(
        up,
        {"primary": ("openai", "primary"), "backup": ("anthropic", "backup")},
        strategy="hedged",
        hedge={"delay_ms": 2000, "max_extra_load": 0.0},
        refs=[{"name": "primary", "priority": 2}, {"name": "backup", "priority": 1}],
    )
    with trio.fail_after(TEST_BOUND):
        async with open_engine(config) as engine:
            result = await engine.complete(MESSAGES, model="race")
    assert result.provider == "backup"
    assert one(up, "backup").received_at - one(up, "primary").received_at < 1.0
    failed = next(a for a in result.attempts if a.provider == "primary")
    assert (failed.status, failed.error_kind) == ("failed", "http")


# ------------------------------------------------------------ closing connections at once


@pytest.mark.parametrize(
    ("phase", "settings", "grace"),
    [
        ("waiting for headers", {"headers_delay": 5.0}, 0.0),
        ("waiting for the first token", {"first_token_delay": 5.0}, 0.0),
        # It answers 30 ms in, inside the 100 ms grace window, then goes quiet:
        # it is cancelled when the window closes, mid-stream.
        (
            "between chunks",
            {"headers_delay": 0.03, "first_token_delay": 0.0, "chunk_delay": 5.0},
            0.1,
        ),
    ],
)
@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_a_loser_is_disconnected_within_50ms_of_being_stopped(
    up: FakeUpstream, phase: str, settings: dict[str, Any], grace: float, kind: str
) -> None:
    up.behave("loser", **settings)
    up.behave("winner", headers_delay=0.0, first_token_delay=0.0, chunk_delay=0.03)
    config = make_config(
        up,
        {"loser": (kind, "loser"), "winner": ("openai", "winner")},
        grace_period_ms=int(grace * 1000),
    )
    clock = Clock()
    with trio.fail_after(TEST_BOUND):
        async with open_engine(config) as engine:
            engine.subscribe(clock)
            async with engine.stream(MESSAGES, model="race") as race:
                async for _chunk in race:
                    pass
            loser = await disconnected(up, "loser")
    assert race.result.provider == "winner"
    assert (loser.first_token_at is not None) == (phase == "between chunks")
    assert clock.decided is not None and loser.disconnected_at is not None
    # first_wins cancels losers when the grace window, opened by the winner's
    # first token, closes; with no grace, at the decision.
    stopped = clock.first_token["winner"] + grace if grace else clock.decided
    assert 0 <= loser.disconnected_at - stopped < DISCONNECT_BOUND, phase


async def test_a_stalled_loser_in_the_grace_window_is_disconnected_when_it_closes(
    up: FakeUpstream,
) -> None:
    up.behave("winner", first_token_delay=0.0, chunk_delay=0.015)
    up.behave("loser", headers_delay=0.03, first_token_delay=0.0, fault="stall", fault_after=1)
    config = make_config(
        up, {"winner": ("anthropic", "winner"), "loser": ("openai", "loser")}, grace_period_ms=2000
    )
    clock = Clock()
    with trio.fail_after(TEST_BOUND):
        async with open_engine(config) as engine:
            engine.subscribe(clock)
            async with engine.stream(MESSAGES, model="race") as race:
                async for _chunk in race:
                    pass
                done_reading = trio.current_time()
            loser = await disconnected(up, "loser")
    # The caller's stream ended before the 2 s window closed: losers are cancelled then.
    assert loser.first_token_at is not None
    assert loser.disconnected_at is not None
    assert 0 <= loser.disconnected_at - done_reading < DISCONNECT_BOUND


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_a_caller_leaving_mid_stream_disconnects_the_winner_within_50ms(
    up: FakeUpstream, kind: str
) -> None:
    up.behave("talker", first_token_delay=0.0, chunk_delay=0.5)
    config = make_config(up, {"talker": (kind, "talker")})
    with trio.fail_after(TEST_BOUND):
        async with open_engine(config) as engine:
            async with engine.stream(MESSAGES, model="race") as race:
                async for chunk in race:
                    assert chunk.text == "Hello "
                    left = trio.current_time()
                    break
            talker = await disconnected(up, "talker")
    assert talker.disconnected_at is not None
    assert 0 <= talker.disconnected_at - left < DISCONNECT_BOUND


async def test_cancelling_the_callers_scope_disconnects_every_attempt(up: FakeUpstream) -> None:
    up.behave("a", first_token_delay=5.0)
    up.behave("b", headers_delay=5.0)
    config = make_config(up, {"a": ("openai", "a"), "b": ("anthropic", "b")})
    with trio.fail_after(TEST_BOUND):
        async with open_engine(config) as engine:
            with trio.CancelScope() as scope:

                async def cancel_when_both_arrived() -> None:
                    nonlocal cancelled
                    await up.wait_until(
                        lambda: len(up.requests()) == 2 and one(up, "a").headers_sent_at
                    )
                    cancelled = trio.current_time()
                    scope.cancel()

                cancelled = 0.0
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(cancel_when_both_arrived)
                    await engine.complete(MESSAGES, model="race")
            a, b = await disconnected(up, "a"), await disconnected(up, "b")
    assert scope.cancelled_caught
    for exchange in (a, b):
        assert exchange.disconnected_at is not None
        assert 0 <= exchange.disconnected_at - cancelled < DISCONNECT_BOUND


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_a_body_that_lingers_after_the_end_marker_does_not_hold_the_answer(
    up: FakeUpstream, kind: str
) -> None:
    up.behave("lingerer", first_token_delay=0.0, fault="linger")
    config = make_config(up, {"lingerer": (kind, "lingerer")}, idle_timeout_ms=2000)
    with trio.fail_after(TEST_BOUND):
        async with open_engine(config) as engine:
            result = await engine.complete(MESSAGES, model="race")
            lingerer = await disconnected(up, "lingerer")
    assert result.text == "Hello from the fake upstream, streamed word by word."
    assert result.total_ms < 1000, "the drain after the end marker is bounded, not the idle timeout"
    assert lingerer.disconnected_at is not None


# ------------------------------------------------------------ pooling


async def test_one_pooled_client_reuses_connections_across_races(up: FakeUpstream) -> None:
    up.behave("solo", first_token_delay=0.0)
    config = make_config(up, {"solo": ("openai", "solo")})
    with trio.fail_after(TEST_BOUND):
        async with open_engine(config) as engine:
            for _ in range(3):
                await engine.complete(MESSAGES, model="race")
            await engine.health_check()
    ports = {e.client_port for e in up.requests("solo")}
    assert len(up.requests("solo")) == 4
    assert len(ports) == 1, "the three races and the health check shared one kept-alive connection"


async def test_http_limits_come_from_config(up: FakeUpstream) -> None:
    config = make_config(
        up,
        {"solo": ("openai", "solo")},
        http={"max_connections": 3, "max_keepalive_connections": 2},
    )
    async with open_engine(config) as engine:
        client = engine._http_client()
        pool = client._transport._pool  # type: ignore[attr-defined]
        assert (pool._max_connections, pool._max_keepalive_connections) == (3, 2)
        assert client is engine._http_client()
    assert client.is_closed


# ------------------------------------------------------------ faults, classified


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


FAULTS = [
    (
        {"fault": "rate_limit", "retry_after": "2"},
        "rate_limited",
        r"rate limited by 127\.0\.0\.1:\d+ \(HTTP 429, retry after 2 s\): \S+",
    ),
    ({"fault": "server_error"}, "http", r"HTTP 500 from 127\.0\.0\.1:\d+: \S+"),
    (
        {"api_key": "another-key", "echo_key": True},
        "auth",
        r"authentication failed at .*HTTP 401.*check the key in \$FAKE_UPSTREAM_KEY",
    ),
    (
        {"fault": "disconnect", "fault_after": 0},
        "connection",
        r"connection to 127\.0\.0\.1:\d+ lost mid-stream",
    ),
    ({"fault": "truncate", "fault_after": 0}, "protocol", r"ended without (\[DONE\]|message_stop)"),
    ({"fault": "malformed", "fault_after": 0}, "protocol", r"malformed JSON in the stream"),
    ({"fault": "hang"}, "timeout", r"no first token within 500 ms"),
    ({"fault": "stall", "fault_after": 0}, "timeout", r"no first token within 500 ms"),
]


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
@pytest.mark.parametrize(
    ("settings", "error_kind", "message"),
    FAULTS,
    ids=[f[1] + ":" + str(f[0].get("fault", "key")) for f in FAULTS],
)
async def test_a_faulty_provider_fails_its_attempt_and_the_other_wins(
    up: FakeUpstream, kind: str, settings: dict[str, Any], error_kind: str, message: str
) -> None:
    up.behave("faulty", **settings)
    # weighted waits out its grace window after the healthy answer, so the
    # fault (at most the 300 ms ttft timeout) is recorded before the decision.
    up.behave("healthy", first_token_delay=0.05)
    config = make_config(
        up,
        {"faulty": (kind, "faulty"), "healthy": ("openai", "healthy")},
        strategy="weighted",
        grace_period_ms=1000,
        ttft_timeout_ms=500 if error_kind == "timeout" else None,
    )
    with trio.fail_after(TEST_BOUND):
        async with open_engine(config) as engine:
            result = await engine.complete(MESSAGES, model="race")
    assert result.provider == "healthy"
    (failed,) = [a for a in result.attempts if a.provider == "faulty"]
    assert failed.status == "failed"
    assert failed.error_kind == error_kind
    assert failed.error is not None
    assert re.search(message, failed.error), failed.error
    assert "\n" not in failed.error and KEY not in failed.error
    if error_kind == "rate_limited":
        assert failed.retry_after == 2.0
    if error_kind == "timeout":
        assert one(up, "faulty").disconnected_at is not None


async def test_connection_refused_and_missing_key_fail_alone_while_the_others_race_on(
    up: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    up.behave("healthy", first_token_delay=0.05)
    data = {
        "timeout_ms": 3000,
        "grace_period_ms": 0,
        "providers": {
            "refused": {
                "type": "openai",
                "base_url": f"http://127.0.0.1:{free_port()}/v1",
                "model": "m",
            },
            "keyless": {
                **provider_def(up, "anthropic", "healthy"),
                "api_key_env": "FAKE_UNSET_KEY",
            },
            "healthy": provider_def(up, "openai", "healthy"),
        },
    }
    monkeypatch.delenv("FAKE_UNSET_KEY", raising=False)
    config = raceway.loads_config(yaml.safe_dump(data))
    with trio.fail_after(TEST_BOUND):
        async with open_engine(config) as engine:
            result = await engine.complete(MESSAGES)
    assert result.provider == "healthy"
    records = {a.provider: a for a in result.attempts}
    assert records["refused"].error_kind == "connection"
    assert re.fullmatch(
        r"cannot connect to 127\.0\.0\.1:\d+: Connection refused", records["refused"].error or ""
    )
    assert records["keyless"].error_kind == "missing_key"
    assert (
        records["keyless"].error == "API key missing: set the environment variable FAKE_UNSET_KEY"
    )
    assert len(up.requests()) == 1, "no request went out without its key"


async def test_all_failing_raises_with_every_attempts_error(up: FakeUpstream) -> None:
    up.behave("limited", fault="rate_limit", retry_after="Wed, 21 Oct 2037 07:28:00 GMT")
    up.behave("broken", fault="server_error")
    config = make_config(up, {"limited": ("anthropic", "limited"), "broken": ("openai", "broken")})
    with trio.fail_after(TEST_BOUND):
        async with open_engine(config) as engine:
            with pytest.raises(AllProvidersFailedError) as info:
                await engine.complete(MESSAGES, model="race")
    group = info.value.__cause__
    assert isinstance(group, ExceptionGroup)
    kinds = sorted(type(e).__name__ for e in group.exceptions)
    assert kinds == ["ProviderHTTPError", "RateLimitedError"]
    limited = next(e for e in group.exceptions if isinstance(e, raceway.RateLimitedError))
    assert limited.retry_after is not None and limited.retry_after > 3600


# ------------------------------------------------------------ the winner breaking off


@pytest.mark.parametrize(
    ("settings", "cause"),
    [
        ({"fault": "disconnect", "fault_after": 2}, "lost mid-stream"),
        ({"fault": "truncate", "fault_after": 2}, "ended without"),
        ({"fault": "malformed", "fault_after": 2}, "malformed JSON"),
        ({"fault": "stream_error", "fault_after": 2}, "error"),
        ({"fault": "stall", "fault_after": 2}, "no next chunk within 200 ms"),
    ],
)
@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_a_winner_breaking_after_its_first_token_interrupts_the_stream(
    up: FakeUpstream, kind: str, settings: dict[str, Any], cause: str
) -> None:
    up.behave("breaker", first_token_delay=0.0, **settings)
    config = make_config(up, {"breaker": (kind, "breaker")}, idle_timeout_ms=200)
    received = []
    with trio.fail_after(TEST_BOUND):
        async with open_engine(config) as engine:
            with pytest.raises(StreamInterruptedError) as info:
                async with engine.stream(MESSAGES, model="race") as race:
                    async for chunk in race:
                        received.append(chunk.text)
    assert info.value.partial_text == "Hello from " == "".join(received)
    assert cause in str(info.value)
    assert KEY not in str(info.value)


# ------------------------------------------------------------ requests as the upstream saw them


async def test_the_upstream_sees_well_formed_requests(up: FakeUpstream) -> None:
    up.behave("o", first_token_delay=0.0)
    up.behave("a", first_token_delay=0.2)
    config = make_config(
        up,
        {"o": ("openai", "o"), "a": ("anthropic", "a")},
        strategy="quality",
        grace_period_ms=2000,
        refs=[
            {"name": "o", "config": {"temperature": 0.5}},
            {"name": "a", "config": {"temperature": 0.1}},
        ],
    )
    messages = [{"role": "system", "content": "You are terse."}, *MESSAGES]
    with trio.fail_after(TEST_BOUND):
        async with open_engine(config) as engine:
            result = await engine.complete(messages, model="race", max_tokens=64)
    assert {a.status for a in result.attempts} == {"won", "lost"}
    o, a = one(up, "o"), one(up, "a")
    assert o.headers["authorization"] == f"Bearer {KEY}"
    assert o.body == {
        "max_tokens": 64,
        "temperature": 0.5,
        "model": "fake-gpt",
        "messages": messages,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    assert a.headers["x-api-key"] == KEY and a.headers["anthropic-version"] == "2023-06-01"
    assert a.body == {
        "max_tokens": 64,
        "temperature": 0.1,
        "system": "You are terse.",
        "model": "fake-claude",
        "messages": MESSAGES,
        "stream": True,
    }


async def test_health_check_over_http(up: FakeUpstream) -> None:
    up.behave("ok")
    up.behave("locked", api_key="another-key")
    up.behave("down", fault="server_error")
    config = make_config(
        up, {"ok": ("openai", "ok"), "locked": ("anthropic", "locked"), "down": ("openai", "down")}
    )
    with trio.fail_after(TEST_BOUND):
        async with open_engine(config) as engine:
            report = await engine.health_check()
    assert report.ok
    assert report.providers["ok"] is None
    assert "$FAKE_UPSTREAM_KEY" in (report.providers["locked"] or "")
    assert (report.providers["down"] or "").startswith("HTTP 500 from 127.0.0.1:")
    paths = sorted(e.path for e in up.requests())
    assert paths == ["/down/v1/models", "/locked/v1/models", "/ok/v1/models"]

    config = make_config(up, {"down": ("openai", "down")})
    async with open_engine(config) as engine:
        assert not (await engine.health_check()).ok


# ------------------------------------------------------------ secrets


async def test_the_key_never_appears_in_errors_events_results_or_logs(
    up: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    up.behave("echo_o", api_key="not-the-key", echo_key=True)
    up.behave("echo_a", api_key="not-the-key", echo_key=True)
    up.behave("err", fault="stream_error", fault_after=0)
    config = make_config(
        up,
        {
            "echo_o": ("openai", "echo_o"),
            "echo_a": ("anthropic", "echo_a"),
            "err": ("openai", "err"),
        },
    )
    clock = Clock()
    with trio.fail_after(TEST_BOUND):
        async with open_engine(config) as engine:
            engine.subscribe(clock)
            with pytest.raises(AllProvidersFailedError) as info:
                await engine.complete(MESSAGES, model="race")
            report = await engine.health_check()
            stats = engine.stats()
    assert "Incorrect API key provided: [redacted]" in str(info.value)
    texts = [
        str(info.value),
        repr(info.value.__cause__),
        repr(clock.events),
        repr(report),
        repr(stats),
        caplog.text,
    ]
    texts += [str(e) for e in info.value.errors.values()]
    for text in texts:
        assert KEY not in text
        assert KEY[3:15] not in text
