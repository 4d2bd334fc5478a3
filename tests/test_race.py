"""Race semantics on trio's virtual clock, with exact expected times.

Each test scripts provider objects (tests/scripted.py: a fresh ``Stage`` per
test, raced with ``open_engine(config, providers=stage.providers())``), runs
one race through the public API, and asserts who won, when the caller got its first
token, and when each loser was cancelled — the rows of DESIGN.md's semantics
table.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
import yaml
from scripted import Script, Stage

import raceway

MSG = [{"role": "user", "content": "hi"}]


@pytest.fixture
def stage() -> Stage:
    return Stage()


def config(
    strategy: str,
    providers: list[dict[str, Any]] | list[str],
    *,
    grace_ms: int = 1000,
    timeout_ms: int = 5000,
    **extra: Any,
) -> raceway.Config:
    """Virtual model ``v`` racing ``providers`` by name: code providers only (``stage.providers()``)."""
    refs = [raceway.ProviderRef(name=p) if isinstance(p, str) else raceway.ProviderRef(**p) for p in providers]
    if "hedge" in extra:
        extra["hedge"] = raceway.HedgeOverride(**extra["hedge"])
    return raceway.Config(
        timeout_ms=timeout_ms,
        grace_period_ms=grace_ms,
        monitor=raceway.MonitorConfig(socket="off"),
        performance_file="off",
        virtual_models={"v": raceway.VirtualModel(strategy=strategy, providers=refs, **extra)},
    )


async def first_chunk_time(engine: raceway.Engine, **kw: Any) -> tuple[float, raceway.RaceResult]:
    t0 = trio.current_time()
    first = None
    async with engine.stream(MSG, "v", **kw) as race:
        async for _chunk in race:
            if first is None:
                first = trio.current_time() - t0
    assert first is not None
    return first, race.result


def status(result: raceway.RaceResult) -> dict[str, str]:
    return {a.provider: a.status for a in result.attempts}


# ---------------------------------------------------------------- first_wins


async def test_first_wins_hands_over_the_first_token_at_once_and_cancels_at_grace_end(autojump_clock: Any, stage: Stage) -> None:
    # a answers at 0.050 and streams until 2.050; b answers at 0.300.
    stage.scripts["a"] = Script(ttft=0.050, chunks=["x"] * 5, gap=0.5)
    stage.scripts["b"] = Script(ttft=0.300, chunks=["y"] * 5, gap=0.5)
    async with raceway.open_engine(config("first_wins", ["a", "b"], grace_ms=1000), providers=stage.providers()) as engine:
        t0 = trio.current_time()
        first, result = await first_chunk_time(engine)
    assert first == pytest.approx(0.050)
    assert result.provider == "a" and result.model == "a-m"
    assert result.ttft_ms == pytest.approx(50)
    assert result.total_ms == pytest.approx(2050)
    # b answered inside the grace window (so it lost, not merely cancelled)
    # and was cancelled when the window closed: 0.050 + 1.000.
    assert status(result) == {"a": "won", "b": "lost"}
    assert stage.when("b", "cancelled") == pytest.approx(t0 + 1.050)
    b = next(x for x in result.attempts if x.provider == "b")
    assert b.ttft_ms == pytest.approx(300)
    assert result.text == "xxxxx"
    assert result.metadata == {
        "racing_winner": "a",
        "racing_latency_ms": 50,
        "virtual_model": "v",
        "virtual_model_desc": "",
    }


async def test_first_wins_with_grace_zero_cancels_losers_at_the_win(autojump_clock: Any, stage: Stage) -> None:
    stage.scripts["a"] = Script(ttft=0.050, chunks=["x"] * 3, gap=0.5)
    stage.scripts["b"] = Script(ttft=0.300)
    async with raceway.open_engine(config("first_wins", ["a", "b"], grace_ms=0), providers=stage.providers()) as engine:
        t0 = trio.current_time()
        first, result = await first_chunk_time(engine)
    assert first == pytest.approx(0.050)
    assert stage.when("b", "cancelled") == pytest.approx(t0 + 0.050)
    assert status(result) == {"a": "won", "b": "cancelled"}


async def test_first_wins_cancels_losers_when_the_callers_stream_ends_first(autojump_clock: Any, stage: Stage) -> None:
    stage.scripts["a"] = Script(ttft=0.050, chunks=["x", "y"], gap=0.150)  # done at 0.200
    stage.scripts["b"] = Script(ttft=0.900)
    async with raceway.open_engine(config("first_wins", ["a", "b"], grace_ms=1000), providers=stage.providers()) as engine:
        t0 = trio.current_time()
        result = await engine.complete(MSG, "v")
        t_end = trio.current_time()
    assert t_end - t0 == pytest.approx(0.200)
    assert result.total_ms == pytest.approx(200)
    assert stage.when("b", "cancelled") == pytest.approx(t0 + 0.200)
    assert status(result) == {"a": "won", "b": "cancelled"}


async def test_first_wins_ignores_role_only_chunks_and_failures(autojump_clock: Any, stage: Stage) -> None:
    # a sends an empty chunk at once (headers, role) and text only at 0.400;
    # b fails at 0.010; c answers at 0.250.
    stage.scripts["a"] = Script(ttft=0.0, chunks=["", "late"], gap=0.400)
    stage.scripts["b"] = Script(fail_at=0.010)
    stage.scripts["c"] = Script(ttft=0.250)
    async with raceway.open_engine(config("first_wins", ["a", "b", "c"], grace_ms=0), providers=stage.providers()) as engine:
        first, result = await first_chunk_time(engine)
    assert first == pytest.approx(0.250)
    assert result.provider == "c"
    assert status(result) == {"a": "cancelled", "b": "failed", "c": "won"}
    b = next(x for x in result.attempts if x.provider == "b")
    assert b.error == "b failed on purpose" and b.ended_ms == pytest.approx(10)


async def test_a_provider_that_never_answers_does_not_hold_the_race(autojump_clock: Any, stage: Stage) -> None:
    stage.scripts["hang"] = Script(hang=True)
    stage.scripts["ok"] = Script(ttft=0.120)
    async with raceway.open_engine(config("first_wins", ["hang", "ok"], grace_ms=100), providers=stage.providers()) as engine:
        t0 = trio.current_time()
        result = await engine.complete(MSG, "v")
    assert result.provider == "ok" and result.ttft_ms == pytest.approx(120)
    # The caller's stream ended at 0.120, before the window's end (0.220).
    assert stage.when("hang", "cancelled") == pytest.approx(t0 + 0.120)


# ---------------------------------------------------------------- failures


async def test_every_attempt_failing_raises_with_every_error(autojump_clock: Any, stage: Stage) -> None:
    stage.scripts["a"] = Script(fail_at=0.020, error=raceway.RateLimitedError("slow down", retry_after=2.0))
    stage.scripts["b"] = Script(fail_at=0.070)
    async with raceway.open_engine(config("first_wins", ["a", "b"]), providers=stage.providers()) as engine:
        t0 = trio.current_time()
        with pytest.raises(raceway.AllProvidersFailedError) as info:
            await engine.complete(MSG, "v")
        assert trio.current_time() - t0 == pytest.approx(0.070)
    exc = info.value
    assert not isinstance(exc, raceway.RaceTimeoutError)
    group = exc.__cause__
    assert isinstance(group, ExceptionGroup)
    assert len(group.exceptions) == 2
    assert isinstance(group.exceptions[0], raceway.RateLimitedError)
    assert isinstance(group.exceptions[1], RuntimeError)
    assert "slow down" in str(exc) and "b failed on purpose" in str(exc)


async def test_the_deadline_passing_raises_race_timeout_at_exactly_timeout_ms(autojump_clock: Any, stage: Stage) -> None:
    stage.scripts["a"] = Script(hang=True)
    stage.scripts["b"] = Script(ttft=0.500)
    async with raceway.open_engine(config("first_wins", ["a", "b"], timeout_ms=200), providers=stage.providers()) as engine:
        t0 = trio.current_time()
        with pytest.raises(raceway.RaceTimeoutError) as info:
            await engine.complete(MSG, "v")
        assert trio.current_time() - t0 == pytest.approx(0.200)
    assert isinstance(info.value, raceway.AllProvidersFailedError)
    assert stage.when("a", "cancelled") == pytest.approx(t0 + 0.200)
    assert stage.when("b", "cancelled") == pytest.approx(t0 + 0.200)
    group = info.value.__cause__
    assert isinstance(group, ExceptionGroup)
    assert all(isinstance(e, raceway.ProviderTimeoutError) for e in group.exceptions)


async def test_timeout_bounds_the_decision_not_the_stream(autojump_clock: Any, stage: Stage) -> None:
    # The winner answers at 0.100 and streams for 3 s; timeout_ms is 500.
    stage.scripts["a"] = Script(ttft=0.100, chunks=["x"] * 4, gap=1.0)
    async with raceway.open_engine(config("first_wins", ["a"], timeout_ms=500), providers=stage.providers()) as engine:
        result = await engine.complete(MSG, "v")
    assert result.total_ms == pytest.approx(3100)
    assert result.text == "xxxx"


async def test_a_winner_that_stalls_is_interrupted_after_idle_timeout(autojump_clock: Any, stage: Stage) -> None:
    stage.scripts["a"] = Script(ttft=0.100, chunks=["one ", "two ", "three"], gap=0.010, stall_after=2)
    cfg = config("first_wins", ["a"], idle_timeout_ms=300)
    async with raceway.open_engine(cfg, providers=stage.providers()) as engine:
        t0 = trio.current_time()
        with pytest.raises(raceway.StreamInterruptedError) as info:
            await engine.complete(MSG, "v")
        # last chunk at 0.110, then 0.300 of silence
        assert trio.current_time() - t0 == pytest.approx(0.410)
    assert info.value.partial_text == "one two "
    assert info.value.provider == "a"
    assert isinstance(info.value.__cause__, raceway.ProviderTimeoutError)


async def test_a_winner_that_breaks_after_the_commit_raises_stream_interrupted(autojump_clock: Any, stage: Stage) -> None:
    stage.scripts["a"] = Script(ttft=0.050, chunks=["par", "tial"], gap=0.1, break_with=ConnectionResetError("peer went away"))
    stage.scripts["b"] = Script(ttft=0.060, chunks=["y"] * 5, gap=0.1)
    async with raceway.open_engine(config("first_wins", ["a", "b"]), providers=stage.providers()) as engine:
        t0 = trio.current_time()
        got = []
        with pytest.raises(raceway.StreamInterruptedError) as info:
            async with engine.stream(MSG, "v") as race:
                async for chunk in race:  # "par" reached the caller at 0.050: committed
                    got.append(chunk.text)
        assert trio.current_time() - t0 == pytest.approx(0.150)
    assert got == ["par", "tial"]
    assert info.value.partial_text == "partial"
    assert "peer went away" in str(info.value)
    assert stage.when("b", "cancelled") == pytest.approx(t0 + 0.150)


async def test_complete_fails_over_to_a_loser_that_answered_when_the_winner_breaks(autojump_clock: Any, stage: Stage) -> None:
    stage.scripts["a"] = Script(ttft=0.050, chunks=["par", "tial"], gap=0.1, break_with=ConnectionResetError("peer went away"))
    stage.scripts["b"] = Script(ttft=0.060, chunks=["y"] * 5, gap=0.1)
    async with raceway.open_engine(config("first_wins", ["a", "b"]), providers=stage.providers()) as engine:
        t0 = trio.current_time()
        result = await engine.complete(MSG, "v")
        # a broke at 0.150; b, in its grace window, had answered at 0.060 and ends at 0.460
        assert trio.current_time() - t0 == pytest.approx(0.460)
    assert result.text == "yyyyy" and result.provider == "b"
    assert result.ttft_ms == pytest.approx(150)
    assert [(r.provider, r.status) for r in result.attempts] == [("a", "failed"), ("b", "won")]
    assert "peer went away" in (result.attempts[0].error or "")


async def test_complete_restarts_a_cancelled_loser_when_the_winner_breaks(autojump_clock: Any, stage: Stage) -> None:
    stage.scripts["a"] = Script(ttft=0.050, chunks=["par", "tial"], gap=0.3, break_with=ConnectionResetError("gone"))
    stage.scripts["b"] = Script(ttft=0.100)
    async with raceway.open_engine(config("first_wins", ["a", "b"], grace_ms=0), providers=stage.providers()) as engine:
        t0 = trio.current_time()
        result = await engine.complete(MSG, "v")
        # b was cancelled at a's win (grace 0); a broke at 0.350; b restarts and answers at 0.450
        assert trio.current_time() - t0 == pytest.approx(0.450)
    assert result.provider == "b" and result.text == "hello"
    assert [(r.provider, r.status, r.started_ms) for r in result.attempts] == [
        ("a", "failed", 0.0),
        ("b", "cancelled", 0.0),
        ("b", "won", pytest.approx(350)),
    ]


async def test_complete_raises_stream_interrupted_when_nobody_can_replace_the_winner(autojump_clock: Any, stage: Stage) -> None:
    stage.scripts["a"] = Script(ttft=0.050, chunks=["par", "tial"], gap=0.1, break_with=ConnectionResetError("gone"))
    stage.scripts["b"] = Script(fail_at=0.020)
    async with raceway.open_engine(config("first_wins", ["a", "b"]), providers=stage.providers()) as engine:
        with pytest.raises(raceway.StreamInterruptedError) as info:
            await engine.complete(MSG, "v")
    assert info.value.partial_text == "partial"
    assert isinstance(info.value.__cause__, ConnectionResetError)


async def test_ttft_timeout_fails_a_slow_attempt_and_the_race_goes_on(autojump_clock: Any, stage: Stage) -> None:
    stage.scripts["slow"] = Script(ttft=0.800)
    stage.scripts["ok"] = Script(ttft=0.400)
    cfg = config("weighted", ["slow", "ok"], ttft_timeout_ms=300, timeout_ms=1000, grace_period_ms=100)
    async with raceway.open_engine(cfg, providers=stage.providers()) as engine:
        t0 = trio.current_time()
        with pytest.raises(raceway.AllProvidersFailedError) as info:
            await engine.complete(MSG, "v")
        assert trio.current_time() - t0 == pytest.approx(0.300)
    assert "no first token within 300 ms" in str(info.value)


async def test_a_losers_ttft_watch_and_grace_window_whichever_comes_first(autojump_clock: Any, stage: Stage) -> None:
    """One cancel scope per attempt carries both: a loser without a token fails at its ttft
    deadline inside the grace window, or is cancelled at the window's end before it."""
    stage.scripts["fast"] = Script(ttft=0.100)
    stage.scripts["slow"] = Script(ttft=2.000)
    for grace_ms, ttft_ms, expected in (
        (1000, 400, ("failed", "timeout", pytest.approx(400))),
        (200, 900, ("cancelled", None, pytest.approx(300))),
    ):
        cfg = config("first_wins", ["fast", "slow"], grace_ms=grace_ms, ttft_timeout_ms=ttft_ms)
        async with raceway.open_engine(cfg, providers=stage.providers()) as engine:
            async with engine.stream(MSG, "v") as race:
                async for _ in race:
                    await trio.sleep(1.5)  # the caller holds the stream open past both times
            slow = race.result.attempts[1]
            assert (slow.status, slow.error_kind, slow.ended_ms) == expected


async def test_a_slow_caller_gets_every_chunk_the_winner_sent_before_it_ended(autojump_clock: Any, stage: Stage) -> None:
    """The winner may finish while its last chunks still wait in the channel for the caller."""
    stage.scripts["a"] = Script(ttft=0.100, chunks=["a", "b", "c", "d"], gap=0.010)
    stage.scripts["b"] = Script(ttft=0.500)
    async with raceway.open_engine(config("first_wins", ["a", "b"], grace_ms=0), providers=stage.providers()) as engine:
        got = []
        async with engine.stream(MSG, "v") as race:
            async for chunk in race:
                got.append(chunk.text)
                await trio.sleep(1.0)  # the winner's stream is over long before the caller is
    assert got == ["a", "b", "c", "d"] and race.result.text == "abcd"


async def test_a_broken_winner_nobody_could_replace_is_the_finished_races_winner(autojump_clock: Any, stage: Stage) -> None:
    """complete() fails over first; when nobody can, the race ends 'interrupted' with the
    winner that broke named, as stream() does after the commit (telemetry reads it)."""
    stage.scripts["a"] = Script(ttft=0.010, chunks=["par", "tial"], gap=0.1, break_with=ConnectionResetError("reset"))
    finished: list[raceway.RaceFinished] = []
    async with raceway.open_engine(config("first_wins", ["a"]), providers=stage.providers()) as engine:
        engine.subscribe(lambda e: finished.append(e) if isinstance(e, raceway.RaceFinished) else None)
        with pytest.raises(raceway.StreamInterruptedError):
            await engine.complete(MSG, "v")
    assert [(e.outcome, e.winner) for e in finished] == [("interrupted", 0)]


# ---------------------------------------------------------------- weighted


async def test_weighted_waits_out_the_window_and_picks_the_best_value(autojump_clock: Any, stage: Stage) -> None:
    stage.scripts["a"] = Script(ttft=0.050)
    stage.scripts["b"] = Script(ttft=0.100)
    stage.scripts["c"] = Script(ttft=0.500)
    refs = [{"name": "a", "weight": 1.0}, {"name": "b", "weight": 2.0}, {"name": "c", "weight": 9.0}]
    async with raceway.open_engine(config("weighted", refs, grace_ms=100), providers=stage.providers()) as engine:
        t0 = trio.current_time()
        first, result = await first_chunk_time(engine)
    # The window opens at a's token (0.050) and closes at 0.150: b (weight 2)
    # beats a; c answers too late to count and is cancelled at 0.150.
    assert first == pytest.approx(0.150)
    assert result.provider == "b" and result.ttft_ms == pytest.approx(150)
    assert stage.when("c", "cancelled") == pytest.approx(t0 + 0.150)
    assert status(result) == {"a": "lost", "b": "won", "c": "cancelled"}


async def test_weighted_decides_early_when_nothing_is_pending(autojump_clock: Any, stage: Stage) -> None:
    stage.scripts["a"] = Script(ttft=0.050)
    stage.scripts["b"] = Script(fail_at=0.080)
    async with raceway.open_engine(config("weighted", ["a", "b"], grace_ms=1000), providers=stage.providers()) as engine:
        first, result = await first_chunk_time(engine)
    assert first == pytest.approx(0.080)
    assert result.provider == "a"


async def test_weighted_equal_values_go_to_the_earlier_token(autojump_clock: Any, stage: Stage) -> None:
    stage.scripts["a"] = Script(ttft=0.050)
    stage.scripts["b"] = Script(ttft=0.050)
    async with raceway.open_engine(config("weighted", ["b", "a"], grace_ms=100), providers=stage.providers()) as engine:
        result = await engine.complete(MSG, "v")
    assert result.provider == "b"  # same time and value: the first listed


# ---------------------------------------------------------------- quality


async def test_quality_picks_the_best_complete_answer_within_the_window(autojump_clock: Any, stage: Stage) -> None:
    # a is quick but truncated; b is complete and clean; c is too late.
    stage.scripts["a"] = Script(ttft=0.050, chunks=["cut", " off"], gap=0.050, finish="length")  # complete at 0.100
    stage.scripts["b"] = Script(ttft=0.120, chunks=["all", " good"], gap=0.080)  # complete at 0.200
    stage.scripts["c"] = Script(ttft=0.400)
    async with raceway.open_engine(config("quality", ["a", "b", "c"], grace_ms=150), providers=stage.providers()) as engine:
        t0 = trio.current_time()
        first, result = await first_chunk_time(engine)
    # The window runs from a's completion (0.100) to 0.250.
    assert first == pytest.approx(0.250)
    assert result.provider == "b" and result.text == "all good" and result.finish_reason == "stop"
    assert stage.when("c", "cancelled") == pytest.approx(t0 + 0.250)
    assert status(result) == {"a": "lost", "b": "won", "c": "cancelled"}


async def test_quality_decides_when_every_attempt_is_complete(autojump_clock: Any, stage: Stage) -> None:
    stage.scripts["a"] = Script(ttft=0.050, finish="length")
    stage.scripts["b"] = Script(ttft=0.070)
    async with raceway.open_engine(config("quality", ["a", "b"], grace_ms=5000), providers=stage.providers()) as engine:
        first, result = await first_chunk_time(engine)
    assert first == pytest.approx(0.070)
    assert result.provider == "b"


async def test_quality_uses_a_custom_scorer(autojump_clock: Any, stage: Stage) -> None:
    stage.scripts["a"] = Script(ttft=0.050, chunks=["short"])
    stage.scripts["b"] = Script(ttft=0.060, chunks=["a much longer answer"])
    cfg = config("quality", ["a", "b"], grace_ms=100, quality_scorer="test_race:longest")
    async with raceway.open_engine(cfg, providers=stage.providers()) as engine:
        result = await engine.complete(MSG, "v")
    assert result.provider == "b"


def longest(answer: raceway.Answer) -> float:
    return float(len(answer.text))


# ---------------------------------------------------------------- hedged


async def test_hedged_starts_by_priority_and_hedges_after_the_delay(autojump_clock: Any, stage: Stage) -> None:
    stage.scripts["a"] = Script(ttft=0.300)
    stage.scripts["b"] = Script(ttft=0.050)
    stage.scripts["c"] = Script(ttft=0.010)
    refs = [{"name": "c", "priority": 1}, {"name": "a", "priority": 3}, {"name": "b", "priority": 2}]
    cfg = config("hedged", refs, hedge={"delay_ms": 100, "max_extra_load": 0.5})
    async with raceway.open_engine(cfg, providers=stage.providers()) as engine:
        t0 = trio.current_time()
        first, result = await first_chunk_time(engine)
    # a (priority 3) at 0; no token by 0.100, so b; b's token at 0.150 wins.
    assert stage.when("a", "start") == pytest.approx(t0)
    assert stage.when("b", "start") == pytest.approx(t0 + 0.100)
    assert first == pytest.approx(0.150)
    assert result.provider == "b"
    assert stage.when("a", "cancelled") == pytest.approx(t0 + 0.150)
    assert status(result) == {"c": "not_started", "a": "cancelled", "b": "won"}
    b = next(x for x in result.attempts if x.provider == "b")
    assert b.started_ms == pytest.approx(100) and b.ttft_ms == pytest.approx(50)


async def test_hedged_fails_over_at_once_when_an_attempt_fails(autojump_clock: Any, stage: Stage) -> None:
    stage.scripts["a"] = Script(fail_at=0.020)
    stage.scripts["b"] = Script(ttft=0.030)
    refs = [{"name": "a", "priority": 2}, {"name": "b", "priority": 1}]
    cfg = config("hedged", refs, hedge={"delay_ms": 1000, "max_extra_load": 0})
    async with raceway.open_engine(cfg, providers=stage.providers()) as engine:
        t0 = trio.current_time()
        result = await engine.complete(MSG, "v")
    assert stage.when("b", "start") == pytest.approx(t0 + 0.020)
    assert result.provider == "b" and result.ttft_ms == pytest.approx(50)


async def test_hedged_with_no_budget_never_hedges_on_delay(autojump_clock: Any, stage: Stage) -> None:
    stage.scripts["a"] = Script(ttft=0.300)
    stage.scripts["b"] = Script(ttft=0.010)
    refs = [{"name": "a", "priority": 2}, {"name": "b", "priority": 1}]
    cfg = config("hedged", refs, hedge={"delay_ms": 50, "max_extra_load": 0})
    async with raceway.open_engine(cfg, providers=stage.providers()) as engine:
        result = await engine.complete(MSG, "v")
    assert result.provider == "a" and result.ttft_ms == pytest.approx(300)
    assert stage.when("b", "start") is None


# ---------------------------------------------------------------- the request


async def test_parameters_pass_through_under_per_reference_config(autojump_clock: Any, stage: Stage) -> None:
    stage.scripts["a"] = Script(ttft=0.010)
    refs = [{"name": "a", "model": "big", "config": {"temperature": 0.1}}]
    async with raceway.open_engine(config("first_wins", refs), providers=stage.providers()) as engine:
        result = await engine.complete(MSG, "v", temperature=0.9, max_tokens=7)
    (request,) = stage.requests
    assert request.model == "big" and result.model == "big"
    assert request.params == {"temperature": 0.1, "max_tokens": 7}
    assert request.messages == MSG


async def test_a_provider_listed_twice_gets_two_distinct_attempts(autojump_clock: Any, stage: Stage) -> None:
    stage.scripts["a"] = Script(ttft=0.010)
    refs = [{"name": "a", "model": "one"}, {"name": "a", "model": "two"}]
    async with raceway.open_engine(config("first_wins", refs), providers=stage.providers()) as engine:
        result = await engine.complete(MSG, "v")
    assert [(x.index, x.model) for x in result.attempts] == [(0, "one"), (1, "two")]
    assert [x.status for x in result.attempts] == ["won", "lost"]
    assert sorted(r.model for r in stage.requests) == ["one", "two"]


async def test_unknown_model_raises_no_such_model(autojump_clock: Any, stage: Stage) -> None:
    async with raceway.open_engine(config("first_wins", ["a"]), providers=stage.providers("a")) as engine:
        with pytest.raises(raceway.NoSuchModelError, match=r"'nope'.*known: v"):
            await engine.complete(MSG, "nope")


async def test_legacy_mode_races_every_provider(autojump_clock: Any, stage: Stage) -> None:
    stage.scripts["a"] = Script(ttft=0.020)
    stage.scripts["b"] = Script(ttft=0.010)
    cfg = raceway.Config(monitor=raceway.MonitorConfig(socket="off"), performance_file="off")  # no virtual models
    async with raceway.open_engine(cfg, providers=stage.providers()) as engine:
        result = await engine.complete(MSG)
        assert [m.id for m in engine.models()] == ["default"]
        passthrough = await engine.complete(MSG, "gpt-x")
    assert result.provider == "b"
    assert passthrough.model == "gpt-x"


# ---------------------------------------------------------------- lifetimes


async def test_leaving_the_stream_early_cancels_everything(autojump_clock: Any, stage: Stage) -> None:
    stage.scripts["a"] = Script(ttft=0.050, chunks=["x"] * 10, gap=0.1)
    stage.scripts["b"] = Script(ttft=0.500)
    finished: list[raceway.RaceFinished] = []
    async with raceway.open_engine(config("first_wins", ["a", "b"]), providers=stage.providers()) as engine:
        engine.subscribe(lambda e: finished.append(e) if isinstance(e, raceway.RaceFinished) else None)
        t0 = trio.current_time()
        async with engine.stream(MSG, "v") as race:
            async for _ in race:
                break
        assert stage.when("a", "cancelled") == pytest.approx(t0 + 0.050)
        assert stage.when("b", "cancelled") == pytest.approx(t0 + 0.050)
    assert [f.outcome for f in finished] == ["abandoned"]


async def test_the_callers_own_error_leaves_the_stream_unwrapped(autojump_clock: Any, stage: Stage) -> None:
    stage.scripts["a"] = Script(ttft=0.050)
    async with raceway.open_engine(config("first_wins", ["a"]), providers=stage.providers()) as engine:
        with pytest.raises(KeyError):
            async with engine.stream(MSG, "v") as race:
                async for _ in race:
                    raise KeyError("mine")


async def test_events_are_emitted_once_per_fact_in_order(autojump_clock: Any, stage: Stage) -> None:
    stage.scripts["a"] = Script(ttft=0.050, chunks=["x", "y"], gap=0.5)
    stage.scripts["b"] = Script(ttft=0.100, chunks=["y"] * 5, gap=0.5)
    stage.scripts["c"] = Script(fail_at=0.010)
    seen: list[Any] = []
    async with raceway.open_engine(config("first_wins", ["a", "b", "c"], grace_ms=200), providers=stage.providers()) as engine:
        engine.subscribe(seen.append)
        result = await engine.complete(MSG, "v")
    kinds = [(e.type, getattr(e, "index", None), round(e.elapsed_ms)) for e in seen]
    assert kinds == [
        ("race_started", None, 0),
        ("attempt_started", 0, 0),
        ("attempt_started", 1, 0),
        ("attempt_started", 2, 0),
        ("attempt_failed", 2, 10),
        ("attempt_first_token", 0, 50),
        ("race_decided", 0, 50),
        ("attempt_first_token", 1, 100),
        ("attempt_cancelled", 1, 250),
        ("race_finished", None, 550),
    ]
    assert len({e.race_id for e in seen}) == 1 and seen[0].race_id == result.race_id
    assert seen[-1].outcome == "ok" and seen[-1].winner == 0


async def test_stats_learn_from_races(autojump_clock: Any, stage: Stage) -> None:
    stage.scripts["a"] = Script(ttft=0.050)
    stage.scripts["b"] = Script(fail_at=0.010)
    async with raceway.open_engine(config("first_wins", ["a", "b"]), providers=stage.providers()) as engine:
        for _ in range(3):
            await engine.complete(MSG, "v")
        stats = engine.stats()
    assert stats["a/a-m"].wins == 3 and stats["a/a-m"].ttft_p50_ms == pytest.approx(50)
    assert stats["b/b-m"].failures == {"RuntimeError": 3}
    assert stats["a/a-m"].score > 0.5 > stats["b/b-m"].score


async def test_health_check_passes_when_one_provider_is_healthy(autojump_clock: Any, stage: Stage) -> None:
    async with raceway.open_engine(config("first_wins", ["a", "b"]), providers=stage.providers("a", "b")) as engine:
        report = await engine.health_check()
    assert report.ok and report.providers == {"a": None, "b": None}


async def test_many_random_races_on_the_virtual_clock_never_spin(autojump_clock: Any) -> None:
    # Regression: a timer set for t0 + until could fire when current_time() - t0
    # was still a hair below until, and the driver re-armed the same instant
    # forever (a busy loop that a virtual clock never escapes).
    data = {
        "monitor": {"socket": "off"},
        "performance_file": "off",
        "grace_period_ms": 100,
        "providers": {
            n: {"type": "sim", "ttft_ms": t, "sigma": 0.9, "failure_rate": 0.1, "hang_rate": 0.05, "seed": i}
            for i, (n, t) in enumerate([("a", 130), ("b", 170), ("c", 90)])
        },
        "virtual_models": {
            s: {"strategy": s, "providers": [{"name": n} for n in "abc"]}
            for s in ("first_wins", "weighted", "quality", "hedged")
        },
    }
    cfg = raceway.loads_config(yaml.safe_dump(data))
    async with raceway.open_engine(cfg) as engine:
        for model in ("first_wins", "weighted", "quality", "hedged"):
            for _ in range(60):
                with trio.fail_after(60):
                    try:
                        await engine.complete(MSG, model)
                    except raceway.AllProvidersFailedError:
                        pass


async def test_a_timeout_says_why_the_failed_attempts_failed(autojump_clock: Any, stage: Stage) -> None:
    stage.scripts["a"] = Script(fail_at=0.010, error=raceway.MissingAPIKeyError("A_KEY"))
    stage.scripts["b"] = Script(hang=True)
    async with raceway.open_engine(config("first_wins", ["a", "b"], timeout_ms=300), providers=stage.providers()) as engine:
        with pytest.raises(raceway.RaceTimeoutError) as info:
            await engine.complete(MSG, "v")
    message = str(info.value)
    assert message.startswith("no provider answered within 300 ms")
    assert "a/a-m: API key missing: set the environment variable A_KEY" in message
    assert "b/b-m" not in message


class ReturnsNonsense(raceway.Strategy):
    def decide(self, now: float) -> Any:
        return "start everything"


async def test_a_strategy_that_returns_no_decision_is_a_clear_error(autojump_clock: Any, stage: Stage) -> None:
    stage.scripts["a"] = Script(ttft=0.010)
    async with raceway.open_engine(config("test_race:ReturnsNonsense", ["a"]), providers=stage.providers()) as engine:
        with pytest.raises(raceway.StrategyError, match="returned 'start everything', not Start, Pick, Wait or GiveUp"):
            await engine.complete(MSG, "v")


async def test_the_hedge_budget_caps_extra_attempts_across_races(autojump_clock: Any, stage: Stage) -> None:
    stage.scripts["slow"] = Script(ttft=0.300)
    stage.scripts["fast"] = Script(ttft=0.010)
    refs = [{"name": "slow", "priority": 2}, {"name": "fast", "priority": 1}]
    cfg = config("hedged", refs, hedge={"delay_ms": 50, "max_extra_load": 0.1})
    async with raceway.open_engine(cfg, providers=stage.providers()) as engine:
        results = [await engine.complete(MSG, "v") for _ in range(100)]
    hedges = sum(a.status != "not_started" for r in results for a in r.attempts if a.provider == "fast")
    # At most the reserve (2) plus a tenth of the races (a deposit into a full
    # bucket is lost, hence one fewer here), and the budget is used.
    assert hedges == 11
    assert [r.provider for r in results[:2]] == ["fast", "fast"]


class BacksOff(raceway.Strategy):
    """Start a; if it fails, wait 100 ms, then start b."""

    def decide(self, now: float) -> Any:
        a, b = self.attempts
        if a.started is None:
            return raceway.Start(0)
        for i in self.successes():
            return raceway.Pick(i, cancel_losers_at=now)
        if a.failed is not None and b.started is None:
            if now >= a.failed + 0.1:
                return raceway.Start(1)
            return raceway.Wait(a.failed + 0.1)
        return raceway.Wait(self.spec.deadline)


async def test_a_strategy_may_back_off_while_nothing_runs(autojump_clock: Any, stage: Stage) -> None:
    stage.scripts["a"] = Script(fail_at=0.020)
    stage.scripts["b"] = Script(ttft=0.010)
    async with raceway.open_engine(config("test_race:BacksOff", ["a", "b"]), providers=stage.providers()) as engine:
        t0 = trio.current_time()
        result = await engine.complete(MSG, "v")
    assert stage.when("b", "start") == pytest.approx(t0 + 0.120)
    assert result.provider == "b" and result.ttft_ms == pytest.approx(130)


class RaisesInDecide(raceway.FirstWins):
    def decide(self, now: float) -> Any:
        if any(a.first_token is not None for a in self.attempts):
            raise ZeroDivisionError("oops")
        return super().decide(now)


async def test_a_strategy_that_raises_is_a_strategy_error(autojump_clock: Any, stage: Stage) -> None:
    stage.scripts["a"] = Script(ttft=0.010)
    async with raceway.open_engine(config("test_race:RaisesInDecide", ["a"]), providers=stage.providers()) as engine:
        with pytest.raises(raceway.StrategyError, match=r"RaisesInDecide decide\(0.01\) raised ZeroDivisionError: oops"):
            await engine.complete(MSG, "v")


async def test_a_strategy_failure_is_booked_as_a_failed_race(autojump_clock: Any, stage: Stage) -> None:
    stage.scripts["a"] = Script(ttft=0.010)
    finished: list[raceway.RaceFinished] = []
    async with raceway.open_engine(config("test_race:ReturnsNonsense", ["a"]), providers=stage.providers()) as engine:
        engine.subscribe(lambda e: finished.append(e) if isinstance(e, raceway.RaceFinished) else None)
        with pytest.raises(raceway.StrategyError):
            await engine.complete(MSG, "v")
    (event,) = finished
    assert event.outcome == "failed" and "not Start, Pick, Wait or GiveUp" in (event.error or "")


# ---------------------------------------------------------------- learning off the caller's path


async def test_a_race_that_went_well_is_learned_by_the_time_anyone_looks(autojump_clock: Any, stage: Stage) -> None:
    stage.scripts["a"] = Script(ttft=0.010)
    stage.scripts["b"] = Script(ttft=0.020)
    async with raceway.open_engine(config("first_wins", ["a", "b"], grace_ms=0), providers=stage.providers()) as engine:
        await engine.complete(MSG, "v")
        assert engine._unlearned, "a good race waits for its batch"
        stats = engine.stats()  # learns what is pending first
        assert not engine._unlearned
        assert stats["a/a-m"].wins == 1 and stats["b/b-m"].races == 1
        await engine.complete(MSG, "v")
        await trio.sleep(0.1)  # the batch comes within 50 ms by itself
        assert not engine._unlearned
        assert engine.tracker.snapshot()["a/a-m"].wins == 2


async def test_a_failure_is_learned_at_once_after_the_good_races_before_it(autojump_clock: Any, stage: Stage) -> None:
    stage.scripts["a"] = Script(ttft=0.010)
    stage.scripts["b"] = Script(fail_at=0.005)
    async with raceway.open_engine(config("first_wins", ["a", "b"], grace_ms=0), providers=stage.providers()) as engine:
        await engine.complete(MSG, "v")
        assert not engine._unlearned  # b failed: learned at once, in order
        assert engine._tracker.snapshot()["b/b-m"].failures
