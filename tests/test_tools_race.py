"""Tool calls, reasoning, JSON output and failover, raced end to end.

Two halves. On loopback HTTP (:mod:`fake_upstream` on 127.0.0.1, both wire
formats, the server's real clock) every test opens an engine on a YAML
config and asserts who won and the order of facts the server recorded, under
``fail_after`` bounds: a tool call is an answer and wins a race; reasoning
wins only under ``first_token: any``; ``complete()`` fails over when its
winner breaks mid-answer (to a loser in its grace window, or by restarting a
cancelled one); after the commit ``stream()`` raises
``StreamInterruptedError`` with the partial text and tool calls; a tool loop
runs through ``engine.complete`` with results (and Anthropic's signed
thinking) sent back; ``json_object`` on ``anthropic`` fails ``unsupported``;
``quality`` ranks broken tool-call arguments and non-JSON text down; caller
mistakes never reach a provider. On trio's virtual clock, ``python``
providers yielding :class:`~raceway.Chunk` objects (:func:`chunky`) pin the
same rules to exact times.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import pytest
import trio
import yaml
from fake_upstream import Behaviour, Exchange, FakeUpstream, serve_fake_upstream

import raceway
from raceway import (
    AttemptStarted,
    Chunk,
    RaceDecided,
    StreamInterruptedError,
    ThinkingBlock,
    ToolCall,
    ToolCallDelta,
)

KEY = "sk-fake-tools-secret-0000111122223333"
BOUND = 10  # seconds: every HTTP test's hard bound (real time, loopback)
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
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
PARIS = '{"city": "Paris"}'  # streamed in 3 pieces: '{"city', '": "Pa', 'ris"}'
KINDS = ["openai", "anthropic"]


def other(kind: str) -> str:
    return "anthropic" if kind == "openai" else "openai"


def call(name: str = "get_weather", arguments: str = PARIS, id: str = "call_w1") -> dict[str, str]:
    return {"name": name, "arguments": arguments, "id": id}


@pytest.fixture
async def up() -> AsyncIterator[FakeUpstream]:
    async with serve_fake_upstream() as upstream:
        yield upstream


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_TOOLS_KEY", KEY)


def http_config(
    up: FakeUpstream,
    providers: dict[str, str],
    *,
    strategy: str = "first_wins",
    vm: dict[str, Any] | None = None,
    **top: Any,
) -> raceway.Config:
    """One virtual model ``race``; ``providers`` maps each name (also its upstream's) to its format."""
    data: dict[str, Any] = {"timeout_ms": 3000, "grace_period_ms": 0, **top}
    data["providers"] = {
        name: {
            "type": kind,
            "base_url": up.openai_url(name) if kind == "openai" else up.anthropic_url(name),
            "api_key_env": "FAKE_TOOLS_KEY",
            "model": "fake-gpt" if kind == "openai" else "fake-claude",
        }
        for name, kind in providers.items()
    }
    data["virtual_models"] = {
        "race": {"strategy": strategy, "providers": [{"name": n} for n in providers], **(vm or {})}
    }
    return raceway.loads_config(yaml.safe_dump(data))


@asynccontextmanager
async def open_engine(config: raceway.Config, events: list[Any] | None = None) -> AsyncIterator[raceway.Engine]:
    """An engine whose HTTP client exists before the first race (building one blocks 60-300 ms)."""
    async with raceway.open_engine(config) as engine:
        engine._http_client()
        if events is not None:
            engine.subscribe(events.append)
        yield engine


def one(up: FakeUpstream, name: str) -> Exchange:
    (exchange,) = up.requests(name)
    return exchange


def statuses(result: raceway.RaceResult) -> list[tuple[str, str]]:
    return [(a.provider, a.status) for a in result.attempts]


def before(first: float | None, second: float | None) -> bool:
    """``first`` happened, and ``second`` did not happen before it."""
    return first is not None and (second is None or first < second)


# ================================================================ over loopback HTTP
# ---------------------------------------------------------------- a tool call is an answer


@pytest.mark.parametrize("kind", KINDS)
async def test_a_tool_call_at_50ms_beats_a_text_answer_at_150ms(up: FakeUpstream, kind: str) -> None:
    up.behave("tool", text="", tool_calls=(call(),), first_token_delay=0.05, chunk_delay=0.005)
    up.behave("talk", first_token_delay=0.15)
    config = http_config(up, {"tool": kind, "talk": other(kind)})
    with trio.fail_after(BOUND):
        async with open_engine(config) as engine:
            got: list[Chunk] = []
            async with engine.stream(ASK, model="race", tools=[WEATHER]) as race:
                async for chunk in race:
                    got.append(chunk)
            result = race.result
    assert result.provider == "tool"
    assert result.ttft_ms >= 50
    assert result.text == "" and result.finish_reason == "tool_calls"
    assert result.tool_calls == (ToolCall("call_w1", "get_weather", PARIS),)
    # The first chunk the caller got is the tool call's start: id and name first.
    first_delta = next(d for c in got for d in c.tool_calls)
    assert first_delta == ToolCallDelta(0, id="call_w1", name="get_weather", arguments="")
    assert "".join(d.arguments for c in got for d in c.tool_calls) == PARIS
    tool, talk = one(up, "tool"), one(up, "talk")
    assert before(tool.first_token_at, talk.first_token_at)
    assert talk.disconnected_at is not None, "the text answer was cancelled at the decision"
    assert dict(statuses(result))["talk"] in ("cancelled", "lost")
    # The upstreams saw the tools in their own format.
    assert (one(up, "tool").body["tools"][0].get("input_schema") is not None) == (kind == "anthropic")


# ---------------------------------------------------------------- reasoning


THOUGHT = "Paris in spring, let me think it through."


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("where", ["default", "top-level", "virtual model"])
async def test_thinking_first_wins_only_under_first_token_any(up: FakeUpstream, kind: str, where: str) -> None:
    # The thinker reasons from 20 ms and answers in text at 200 ms; the plain one answers at 100 ms.
    up.behave("thinker", reasoning=THOUGHT, first_token_delay=0.02, content_delay=0.18, text="Sunny, I reckon.")
    up.behave("plain", first_token_delay=0.1, text="Sunny.")
    top = {"first_token": "any"} if where == "top-level" else {}
    vm = {"first_token": "any"} if where == "virtual model" else {}
    config = http_config(up, {"thinker": kind, "plain": other(kind)}, vm=vm, **top)
    with trio.fail_after(BOUND):
        async with open_engine(config) as engine:
            got: list[Chunk] = []
            async with engine.stream(ASK, model="race") as race:
                async for chunk in race:
                    got.append(chunk)
            result = race.result
    thinker, plain = one(up, "thinker"), one(up, "plain")
    if where == "default":
        assert result.provider == "plain" and result.text == "Sunny."
        assert result.reasoning == "" and result.thinking_blocks == ()
        assert before(plain.first_token_at, thinker.first_token_at)
        return
    assert result.provider == "thinker"
    assert before(thinker.first_reasoning_at, plain.first_token_at)
    assert result.reasoning == THOUGHT and result.text == "Sunny, I reckon."
    # Buffered reasoning reaches the caller first, in order, then the text.
    kinds = ["reasoning" if c.reasoning else "text" for c in got if c.reasoning or c.text]
    assert kinds == sorted(kinds), kinds  # every "reasoning" before every "text"
    assert "".join(c.reasoning for c in got) == THOUGHT
    if kind == "anthropic":
        assert result.thinking_blocks == (ThinkingBlock("thinking", thinking=THOUGHT, signature="sig-fake-0123"),)


# ---------------------------------------------------------------- the commit point: failover


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("answer", ["text", "tool call"])
@pytest.mark.parametrize(("fault", "error_kind"), [("disconnect", "connection"), ("stall", "timeout")])
async def test_complete_fails_over_to_a_loser_in_its_grace_window(
    up: FakeUpstream, kind: str, answer: str, fault: str, error_kind: str
) -> None:
    if answer == "text":
        broken = {"text": "Hello from the fake upstream, streamed word by word.", "fault_after": 3}
        steady = {"text": "The steady answer."}
    else:  # it breaks inside the arguments: its half call never reaches the caller
        broken = {"text": "", "tool_calls": (call(id="call_broken"),), "fault_after": 2}
        steady = {"text": "", "tool_calls": (call(arguments='{"city": "Lyon"}', id="call_steady"),)}
    up.behave("breaker", first_token_delay=0.0, chunk_delay=0.1, fault=fault, **broken)
    up.behave("steady", first_token_delay=0.08, chunk_delay=0.005, **steady)
    # A stalled winner breaks when idle_timeout_ms passes without its next chunk.
    config = http_config(up, {"breaker": kind, "steady": other(kind)}, grace_period_ms=2000, idle_timeout_ms=300)
    events: list[Any] = []
    with trio.fail_after(BOUND):
        async with open_engine(config, events) as engine:
            result = await engine.complete(ASK, model="race", tools=[WEATHER])
    assert result.provider == "steady"
    if answer == "text":
        assert result.text == "The steady answer." and result.tool_calls == ()
    else:
        assert result.text == "" and result.tool_calls == (ToolCall("call_steady", "get_weather", '{"city": "Lyon"}'),)
    assert statuses(result) == [("breaker", "failed"), ("steady", "won")]
    assert result.attempts[0].error_kind == error_kind
    decided = [(e.provider, e.failover) for e in events if isinstance(e, RaceDecided)]
    assert decided == [("breaker", False), ("steady", True)]
    assert len(up.requests("steady")) == 1, "the loser in its window took over: no restart"
    breaker = one(up, "breaker")
    assert before(breaker.first_token_at, one(up, "steady").first_token_at)


@pytest.mark.parametrize("kind", KINDS)
async def test_complete_restarts_a_cancelled_loser_when_the_winner_breaks(up: FakeUpstream, kind: str) -> None:
    # Grace 0: "steady" is cancelled when "breaker" wins; "breaker" breaks later, "steady" runs again.
    up.behave("breaker", first_token_delay=0.0, chunk_delay=0.08, fault="disconnect", fault_after=3)
    up.behave("steady", first_token_delay=0.1, text="Second time lucky.")
    config = http_config(up, {"breaker": kind, "steady": other(kind)})
    events: list[Any] = []
    with trio.fail_after(BOUND):
        async with open_engine(config, events) as engine:
            result = await engine.complete(ASK, model="race")
    assert result.provider == "steady" and result.text == "Second time lucky."
    assert statuses(result) == [("breaker", "failed"), ("steady", "cancelled"), ("steady", "won")]
    restarted = result.attempts[2]
    assert restarted.index == 1, "a restart keeps its participant's number"
    assert restarted.started_ms is not None and restarted.started_ms >= 200  # after the break (3 x 80 ms)
    started = [(e.provider, e.restart) for e in events if isinstance(e, AttemptStarted)]
    assert started == [("breaker", False), ("steady", False), ("steady", True)]
    decided = [(e.provider, e.failover) for e in events if isinstance(e, RaceDecided)]
    assert decided == [("breaker", False), ("steady", True)]
    first, second = up.requests("steady")
    assert first.disconnected_at is not None
    assert second.finished_at is not None
    assert first.body == second.body, "the restart sends the same request"


@pytest.mark.parametrize("kind", KINDS)
async def test_after_the_commit_stream_raises_with_the_partial_text_and_tool_calls(
    up: FakeUpstream, kind: str
) -> None:
    # Steps: "Checking ", "now.", the call's start, '{"city' — then the connection drops.
    up.behave(
        "breaker", text="Checking now.", tool_calls=(call(),), chunk_delay=0.01, fault="disconnect", fault_after=4
    )
    up.behave("steady", first_token_delay=0.05, chunk_delay=0.005)
    config = http_config(up, {"breaker": kind, "steady": other(kind)}, grace_period_ms=2000)
    got: list[Chunk] = []
    with trio.fail_after(BOUND):
        async with open_engine(config) as engine:
            with pytest.raises(StreamInterruptedError) as info:
                async with engine.stream(ASK, model="race", tools=[WEATHER]) as race:
                    async for chunk in race:
                        got.append(chunk)
    error = info.value
    assert error.provider == "breaker"
    assert error.partial_text == "Checking now." == "".join(c.text for c in got)
    assert error.partial_tool_calls == (ToolCall("call_w1", "get_weather", '{"city'),)
    assert [d for c in got for d in c.tool_calls][-1].arguments == '{"city'
    assert "lost mid-stream" in str(error) and KEY not in str(error)
    assert isinstance(error.__cause__, raceway.ProviderError)


# ---------------------------------------------------------------- a tool loop


def tool_turn(exchange: Exchange) -> Behaviour:
    """An agent's upstream: a tool call (after some thinking) until the tool's result is back."""
    messages = exchange.body["messages"]
    last = messages[-1]
    content = last.get("content")
    answered = last["role"] == "tool" or (
        isinstance(content, list) and any(b.get("type") == "tool_result" for b in content)
    )
    if answered:
        return Behaviour(text="It is sunny in Paris, 21 °C.", first_token_delay=0.01)
    return Behaviour(
        text="",
        reasoning="The user wants the weather: call the tool.",
        tool_calls=(call(id=f"call_{exchange.name}"),),
        first_token_delay=0.01,
    )


def get_weather(city: str) -> str:
    return json.dumps({"city": city, "sky": "sunny", "celsius": 21})


async def agent_loop(engine: raceway.Engine, model: str, **params: Any) -> tuple[raceway.RaceResult, list[Any]]:
    """Ask, run every tool call the answer makes, send the results back; until an answer in text."""
    messages: list[dict[str, Any]] = list(ASK)
    for _ in range(4):
        result = await engine.complete(messages, model=model, tools=[WEATHER], **params)
        if not result.tool_calls:
            return result, messages
        turn: dict[str, Any] = {
            "role": "assistant",
            "content": result.text or None,
            "tool_calls": [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in result.tool_calls
            ],
        }
        if result.thinking_blocks:
            turn["thinking_blocks"] = [b.as_dict() for b in result.thinking_blocks]
        messages.append(turn)
        for c in result.tool_calls:
            assert c.name == "get_weather"
            messages.append({"role": "tool", "tool_call_id": c.id, "content": get_weather(**json.loads(c.arguments))})
    raise AssertionError("the loop did not end")


@pytest.mark.parametrize("kind", KINDS)
async def test_a_tool_loop_runs_through_complete_with_the_results_sent_back(up: FakeUpstream, kind: str) -> None:
    up.script("agent", tool_turn)
    config = http_config(up, {"agent": kind})
    with trio.fail_after(BOUND):
        async with open_engine(config) as engine:
            result, messages = await agent_loop(engine, "race")
    assert result.text == "It is sunny in Paris, 21 °C." and result.finish_reason == "stop"
    first, second = up.requests("agent")
    assert first.body["messages"] == ASK
    assert [m["role"] for m in messages] == ["user", "assistant", "tool"]
    assert messages[1]["tool_calls"][0]["id"] == "call_agent"
    sent = second.body["messages"]
    if kind == "openai":
        assert sent == messages, "openai gets the loop's messages unchanged"
        assert "thinking_blocks" not in sent[1]
        return
    # anthropic: the signed thinking first in the assistant turn, then the tool_use; the result in a user turn.
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    thinking, tool_use = sent[1]["content"]
    assert thinking == {
        "type": "thinking",
        "thinking": "The user wants the weather: call the tool.",
        "signature": "sig-fake-0123",
    }
    assert tool_use == {"type": "tool_use", "id": "call_agent", "name": "get_weather", "input": {"city": "Paris"}}
    (tool_result,) = sent[2]["content"]
    assert tool_result["type"] == "tool_result" and tool_result["tool_use_id"] == "call_agent"
    assert "sunny" in json.dumps(tool_result["content"])


async def test_a_tool_loop_across_formats_one_turn_each(up: FakeUpstream) -> None:
    """The openai provider wins the tool call, the anthropic one answers with its result."""

    def fast_on_first_turn(exchange: Exchange) -> Behaviour:
        b = tool_turn(exchange)
        slow = (exchange.name == "o") == (len(exchange.body["messages"]) > 1)
        return attrs.evolve(b, first_token_delay=0.3 if slow else 0.0, reasoning="")

    up.script("o", fast_on_first_turn)
    up.script("a", fast_on_first_turn)
    config = http_config(up, {"o": "openai", "a": "anthropic"})
    with trio.fail_after(BOUND):
        async with open_engine(config) as engine:
            result, messages = await agent_loop(engine, "race")
    assert result.provider == "a" and result.text == "It is sunny in Paris, 21 °C."
    assert messages[1]["tool_calls"][0]["id"] == "call_o"
    second = up.requests("a")[-1].body["messages"]
    assert second[1]["content"] == [
        {"type": "tool_use", "id": "call_o", "name": "get_weather", "input": {"city": "Paris"}}
    ]
    assert second[2]["content"][0]["tool_use_id"] == "call_o"


# ---------------------------------------------------------------- structured output


async def test_json_object_on_anthropic_fails_unsupported_and_openai_wins(up: FakeUpstream) -> None:
    up.behave("claude", first_token_delay=0.0)
    up.behave("gpt", first_token_delay=0.05, text='{"sky": "sunny"}')
    config = http_config(up, {"claude": "anthropic", "gpt": "openai"})
    with trio.fail_after(BOUND):
        async with open_engine(config) as engine:
            result = await engine.complete(ASK, model="race", response_format={"type": "json_object"})
            stats = engine.stats()
    assert result.provider == "gpt" and json.loads(result.text) == {"sky": "sunny"}
    claude = result.attempts[0]
    assert (claude.provider, claude.status, claude.error_kind) == ("claude", "failed", "unsupported")
    assert claude.error is not None and "response_format" in claude.error
    assert up.requests("claude") == [], "nothing was sent"
    assert one(up, "gpt").body["response_format"] == {"type": "json_object"}
    assert stats["claude/fake-claude"].failures == {"unsupported": 1}


@pytest.mark.parametrize(
    ("sloppy", "clean", "params"),
    [
        (
            {"text": "", "tool_calls": (call(arguments='{"city": "Par'),)},
            {"text": "", "tool_calls": (call(),)},
            {"tools": [WEATHER]},
        ),
        (
            {"text": "Sure! The sky is sunny."},
            {"text": '{"sky": "sunny"}'},
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {
                        "name": "weather",
                        "schema": {"type": "object", "properties": {"sky": {"type": "string"}}},
                    },
                }
            },
        ),
    ],
    ids=["unparsable tool-call arguments", "not JSON when JSON was asked for"],
)
@pytest.mark.parametrize("kind", KINDS)
async def test_quality_prefers_a_clean_answer(
    up: FakeUpstream, kind: str, sloppy: dict[str, Any], clean: dict[str, Any], params: dict[str, Any]
) -> None:
    up.behave("sloppy", first_token_delay=0.0, **sloppy)
    up.behave("clean", first_token_delay=0.05, **clean)
    config = http_config(up, {"sloppy": kind, "clean": other(kind)}, strategy="quality", grace_period_ms=2000)
    with trio.fail_after(BOUND):
        async with open_engine(config) as engine:
            result = await engine.complete(ASK, model="race", **params)
    assert result.provider == "clean"
    assert dict(statuses(result)) == {"sloppy": "lost", "clean": "won"}
    assert before(one(up, "sloppy").finished_at, one(up, "clean").finished_at), "the sloppy one was first"


# ---------------------------------------------------------------- caller mistakes


@pytest.mark.parametrize(
    ("messages", "error", "says"),
    [
        ("a string", TypeError, "messages must be a list"),
        ([{"role": "wizard", "content": "hi"}], ValueError, "'wizard' is not one of"),
        ([*ASK, {"role": "tool", "content": "sunny"}], ValueError, "without 'tool_call_id'"),
    ],
    ids=["a string", "an unknown role", "a tool message without tool_call_id"],
)
async def test_caller_mistakes_raise_before_any_provider_is_called(
    up: FakeUpstream, messages: Any, error: type[Exception], says: str
) -> None:
    config = http_config(up, {"o": "openai", "a": "anthropic"})
    events: list[Any] = []
    with trio.fail_after(BOUND):
        async with open_engine(config, events) as engine:
            with pytest.raises(error, match=says):
                await engine.complete(messages, model="race")
            with pytest.raises(error, match=says):
                engine.stream(messages, model="race")
            stats = engine.stats()
    assert up.requests() == [], "no provider was called"
    assert events == [], "no race started"
    for label, s in stats.items():
        assert (s.races, s.failures) == (0, {}), label


# ================================================================ on the virtual clock
# ``python`` providers play timed steps: (seconds to wait, a Chunk to yield or an exception to raise).

Step = tuple[float, Chunk | BaseException]
PLANS: dict[str, list[list[Step]]] = {}  # per provider name: one plan per call, the last one repeats
CALLS: dict[str, int] = {}


async def chunky(request: raceway.Request) -> AsyncIterator[Chunk]:
    name = request.provider
    plans = PLANS[name]
    n = CALLS[name] = CALLS.get(name, 0) + 1
    for delay, step in plans[min(n, len(plans)) - 1]:
        await trio.sleep(delay)
        if isinstance(step, BaseException):
            raise step
        yield step


@pytest.fixture(autouse=True)
def _plans() -> None:
    PLANS.clear()
    CALLS.clear()


def sim_config(names: list[str], *, strategy: str = "first_wins", grace_ms: int = 0, **vm: Any) -> raceway.Config:
    data = {
        "timeout_ms": 5000,
        "grace_period_ms": grace_ms,
        "monitor": {"socket": "off"},
        "performance_file": "off",
        "providers": {n: {"type": "python", "callable": "test_tools_race:chunky", "model": f"{n}-m"} for n in names},
        "virtual_models": {"v": {"strategy": strategy, "providers": [{"name": n} for n in names], **vm}},
    }
    return raceway.loads_config(yaml.safe_dump(data))


def tool_call_steps(at: float, arguments: str = PARIS, id: str = "call_1", gap: float = 0.01) -> list[Step]:
    pieces = [arguments[i : i + 6] for i in range(0, len(arguments), 6)]
    steps: list[Step] = [(at, Chunk(tool_calls=(ToolCallDelta(0, id=id, name="get_weather"),)))]
    steps += [(gap, Chunk(tool_calls=(ToolCallDelta(0, arguments=p),))) for p in pieces]
    return [*steps, (0.0, Chunk(finish_reason="tool_calls"))]


def text_steps(at: float, *words: str, gap: float = 0.01) -> list[Step]:
    steps: list[Step] = [(at if i == 0 else gap, Chunk(w)) for i, w in enumerate(words or ("hello",))]
    return [*steps, (0.0, Chunk(finish_reason="stop"))]


async def timed(engine: raceway.Engine, **params: Any) -> tuple[list[tuple[float, Chunk]], raceway.RaceResult]:
    t0 = trio.current_time()
    got = []
    async with engine.stream(ASK, "v", **params) as race:
        async for chunk in race:
            got.append((trio.current_time() - t0, chunk))
    return got, race.result


async def test_virtual_a_tool_call_at_50ms_beats_text_at_150ms(autojump_clock: trio.abc.Clock) -> None:
    PLANS["tool"] = [tool_call_steps(0.050)]
    PLANS["talk"] = [text_steps(0.150)]
    events: list[Any] = []
    async with raceway.open_engine(sim_config(["tool", "talk"])) as engine:
        engine.subscribe(events.append)
        got, result = await timed(engine)
    assert result.provider == "tool" and result.ttft_ms == pytest.approx(50)
    assert got[0] == (pytest.approx(0.050), Chunk(tool_calls=(ToolCallDelta(0, id="call_1", name="get_weather"),)))
    assert result.tool_calls == (ToolCall("call_1", "get_weather", PARIS),)
    assert result.total_ms == pytest.approx(80)  # three argument pieces 10 ms apart
    cancelled = [e for e in events if isinstance(e, raceway.AttemptCancelled)]
    assert [(e.provider, e.elapsed_ms) for e in cancelled] == [("talk", pytest.approx(50))]


@pytest.mark.parametrize("first_token", [None, "any"])
async def test_virtual_thinking_at_20ms_wins_only_under_first_token_any(
    autojump_clock: trio.abc.Clock, first_token: str | None
) -> None:
    PLANS["thinker"] = [[(0.020, Chunk(reasoning="Hmm, ")), (0.010, Chunk(reasoning="Paris.")), *text_steps(0.170, "Sunny.")]]
    PLANS["plain"] = [text_steps(0.100, "Cloudy.")]
    vm = {"first_token": first_token} if first_token else {}
    async with raceway.open_engine(sim_config(["thinker", "plain"], **vm)) as engine:
        got, result = await timed(engine)
    if first_token is None:
        assert (result.provider, result.ttft_ms, result.reasoning) == ("plain", pytest.approx(100), "")
        assert [(t, c.text) for t, c in got if c.text] == [(pytest.approx(0.100), "Cloudy.")]
        return
    assert (result.provider, result.ttft_ms) == ("thinker", pytest.approx(20))
    assert result.reasoning == "Hmm, Paris." and result.text == "Sunny."
    shown = [(t, c.reasoning or c.text) for t, c in got if c.reasoning or c.text]
    assert shown == [(pytest.approx(0.020), "Hmm, "), (pytest.approx(0.030), "Paris."), (pytest.approx(0.200), "Sunny.")]


async def test_virtual_buffered_reasoning_and_tool_calls_reach_the_caller_in_order(
    autojump_clock: trio.abc.Clock,
) -> None:
    # Reasoning at 10 ms (does not count), the tool call at 40 ms decides: all of it comes at 40 ms, in order.
    PLANS["agent"] = [[(0.010, Chunk(reasoning="Tool time.")), *tool_call_steps(0.030, gap=0.0)]]
    PLANS["talk"] = [text_steps(0.100)]
    async with raceway.open_engine(sim_config(["agent", "talk"])) as engine:
        got, result = await timed(engine)
    assert result.provider == "agent" and result.ttft_ms == pytest.approx(40)
    assert got[0] == (pytest.approx(0.040), Chunk(reasoning="Tool time."))
    assert got[1][1].tool_calls == (ToolCallDelta(0, id="call_1", name="get_weather"),)
    assert all(t == pytest.approx(0.040) for t, _ in got)
    assert result.reasoning == "Tool time." and result.tool_calls == (ToolCall("call_1", "get_weather", PARIS),)


async def test_virtual_complete_fails_over_inside_a_broken_tool_call(autojump_clock: trio.abc.Clock) -> None:
    # "breaker" starts its call at 20 ms and breaks at 40 ms; "steady" started its call at 30 ms.
    PLANS["breaker"] = [[*tool_call_steps(0.020, id="call_b")[:2], (0.010, ConnectionResetError("gone"))]]
    PLANS["steady"] = [tool_call_steps(0.030, '{"city": "Lyon"}', id="call_s")]
    events: list[Any] = []
    async with raceway.open_engine(sim_config(["breaker", "steady"], grace_ms=1000)) as engine:
        engine.subscribe(events.append)
        t0 = trio.current_time()
        result = await engine.complete(ASK, "v")
        assert trio.current_time() - t0 == pytest.approx(0.060)  # steady's whole call: 30 + 3 x 10 ms
    assert result.provider == "steady" and result.tool_calls == (ToolCall("call_s", "get_weather", '{"city": "Lyon"}'),)
    assert result.ttft_ms == pytest.approx(40), "the caller's answer was decided at the break"
    assert statuses(result) == [("breaker", "failed"), ("steady", "won")]
    decided = [(e.provider, e.elapsed_ms, e.failover) for e in events if isinstance(e, RaceDecided)]
    assert decided == [("breaker", pytest.approx(20), False), ("steady", pytest.approx(40), True)]


async def test_virtual_stream_after_the_commit_raises_with_partial_tool_calls(autojump_clock: trio.abc.Clock) -> None:
    PLANS["breaker"] = [[(0.020, Chunk("Let me check. ")), *tool_call_steps(0.0, id="call_b")[:2], (0.010, ConnectionResetError("gone"))]]
    PLANS["steady"] = [tool_call_steps(0.030)]
    async with raceway.open_engine(sim_config(["breaker", "steady"], grace_ms=1000)) as engine:
        t0 = trio.current_time()
        with pytest.raises(StreamInterruptedError) as info:
            await timed(engine)
        assert trio.current_time() - t0 == pytest.approx(0.040)
    assert info.value.partial_text == "Let me check. "
    assert info.value.partial_tool_calls == (ToolCall("call_b", "get_weather", '{"city'),)
    assert isinstance(info.value.__cause__, ConnectionResetError)
