"""Cooldowns fit the strategy: hedged benches consecutive failures, all-at-once strategies keep racing
a flaky provider unless nearly all its attempts fail; 429 and 401/403 bench everyone; trials bring them back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
from test_tracker import Clock, race

import raceway
from raceway import ProviderCooldown, ProviderRecovered, PythonProvider, Request, VirtualModel
from raceway._cooldown import BASE_COOLDOWN_S, FAILURES_TO_TRIP, MAX_COOLDOWN_S, MIN_RECENT
from raceway._tracker import RacePolicy, Tracker

# ------------------------------------------------------------------ the breaker


def fail(tracker: Tracker, race_id: str = "r", **kw: Any) -> tuple[Any, ...]:
    kw.setdefault("strategy", "hedged")
    return tracker.record(race("failed", error_kind=kw.pop("error_kind", "http"), waited=10.0, race_id=race_id, **kw))


def hedged_policy(tracker: Tracker, virtual_model: str = "v", **cooldown: Any) -> RacePolicy:
    resolved = raceway.Config(
        providers={"p": raceway.SimProvider()},
        cooldown=raceway.CooldownConfig(**cooldown),
        virtual_models={virtual_model: VirtualModel(providers=[raceway.ProviderRef(name="p")])},
    ).resolve(virtual_model)
    return tracker.policy(resolved, one_at_a_time=True)


def test_three_consecutive_failures_bench_a_provider_then_a_trial_decides() -> None:
    clock = Clock()
    tracker = Tracker(clock=clock)
    assert fail(tracker) == () and fail(tracker) == ()
    tracker.record(race("lost", 100.0))  # an answer resets the count
    assert fail(tracker) == () and fail(tracker) == ()
    (event,) = fail(tracker, race_id="r5")
    assert isinstance(event, ProviderCooldown)
    assert (event.provider, event.model, event.race_id, event.reason) == ("p", "m", "r5", "failures")
    assert (event.seconds, event.failures) == (BASE_COOLDOWN_S, FAILURES_TO_TRIP)
    assert tracker.snapshot()["p/m"].cooldown_until == clock.t + BASE_COOLDOWN_S
    hedged = hedged_policy(tracker)
    assert tracker.admit(["p/m", "q/m"], "a", hedged) == [False, True]
    assert tracker.admit(["p/m", "q/m"], "a") == [True, True]  # an all-at-once race still races it
    assert "3 consecutive failures" in tracker.benched("p", "m").error

    clock.t += BASE_COOLDOWN_S  # half-open: one race takes it on trial, others wait
    assert tracker.admit(["p/m", "q/m"], "trial-1", hedged) == [True, True]
    assert tracker.admit(["p/m", "q/m"], "other", hedged) == [False, True]
    (again,) = fail(tracker, race_id="trial-1")  # the trial failed: a longer cooldown
    assert isinstance(again, ProviderCooldown) and again.seconds == 2 * BASE_COOLDOWN_S

    clock.t += 2 * BASE_COOLDOWN_S
    assert tracker.admit(["p/m"], "trial-2", hedged) == [True]
    (back,) = tracker.record(race("won", 80.0, race_id="trial-2", strategy="hedged"))
    assert isinstance(back, ProviderRecovered) and back.race_id == "trial-2"
    assert tracker.admit(["p/m", "q/m"], "x", hedged) is None
    stats = tracker.snapshot()["p/m"]
    assert (stats.cooldown_until, stats.consecutive_failures) == (None, 0)


def test_cooldowns_grow_up_to_a_cap() -> None:
    clock = Clock()
    tracker = Tracker(clock=clock)
    seconds = []
    for n in range(12):
        for _ in range(FAILURES_TO_TRIP if n == 0 else 1):
            events = fail(tracker, race_id=f"t{n}")
        seconds.append(events[0].seconds)
        clock.t += events[0].seconds
        assert tracker.admit(["p/m"], f"t{n + 1}", hedged_policy(tracker)) == [True]
    assert seconds[:4] == [BASE_COOLDOWN_S * 2**i for i in range(4)]
    assert max(seconds) == MAX_COOLDOWN_S


def test_a_rate_limit_with_retry_after_benches_at_once_for_that_long() -> None:
    clock = Clock()
    tracker = Tracker(clock=clock)
    (event,) = fail(tracker, error_kind="rate_limited", retry_after=7.0, strategy="first_wins")
    assert (event.reason, event.seconds, event.until) == ("rate_limited", 7.0, clock.t + 7.0)
    assert tracker.admit(["p/m", "q/m"], "a") == [False, True]  # under every strategy
    assert tracker.snapshot()["p/m"].cooldown_reason == "rate_limited"
    assert "rate limited" in tracker.benched("p", "m").error
    # A race that began before the 429 answering does not lift it early.
    assert tracker.record(race("lost", 50.0, race_id="older")) == ()
    assert tracker.admit(["p/m", "q/m"], "b") == [False, True]


def test_late_failures_from_races_already_running_do_not_extend_a_cooldown() -> None:
    clock = Clock()
    tracker = Tracker(clock=clock)
    for _ in range(FAILURES_TO_TRIP):
        fail(tracker)
    assert fail(tracker) == ()  # it was benched already
    assert tracker.snapshot()["p/m"].cooldown_until == clock.t + BASE_COOLDOWN_S


def test_never_bench_everyone_the_one_back_soonest_races() -> None:
    clock = Clock()
    tracker = Tracker(clock=clock)
    for _ in range(FAILURES_TO_TRIP):
        fail(tracker)  # p/m: back in 5 s
    clock.t += 1
    fail(tracker, provider="q", error_kind="rate_limited", retry_after=60.0)  # q/m: back in 60 s
    assert tracker.admit(["q/m", "p/m"], "r", hedged_policy(tracker)) == [False, True]


def test_a_trial_without_a_verdict_frees_the_slot() -> None:
    clock = Clock()
    tracker = Tracker(clock=clock)
    for _ in range(FAILURES_TO_TRIP):
        fail(tracker)
    clock.t += BASE_COOLDOWN_S
    hedged = hedged_policy(tracker)
    assert tracker.admit(["p/m"], "trial", hedged) == [True]
    assert tracker.admit(["p/m", "q/m"], "other", hedged) == [False, True]
    assert tracker.record(race("cancelled", waited=5.0, race_id="trial")) == ()  # another won first
    assert tracker.admit(["p/m", "q/m"], "next", hedged) == [True, True]


# ------------------------------------------------------------------ by strategy


def test_all_at_once_strategies_keep_racing_a_flaky_provider() -> None:
    """A failed racer costs one request; a benched fast one costs every race latency."""
    tracker = Tracker(clock=Clock())
    for n in range(500):  # fails 3 of every 10 attempts, in streaks of three
        if n % 10 < 3:
            assert fail(tracker, race_id=f"r{n}", strategy="first_wins") == ()
        else:
            tracker.record(race("won", 40.0, race_id=f"r{n}"))
    assert tracker.admit(["p/m", "q/m"], "x") is None
    assert tracker.snapshot()["p/m"].cooldown_until is None


def test_all_at_once_strategies_bench_a_provider_nearly_all_of_whose_attempts_fail() -> None:
    clock = Clock()
    tracker = Tracker(clock=clock)
    events: list[Any] = []
    for n in range(MIN_RECENT):
        events += fail(tracker, race_id=f"r{n}", strategy="weighted")
    (event,) = events
    assert (event.reason, event.seconds) == ("failing", BASE_COOLDOWN_S)
    assert tracker.admit(["p/m", "q/m"], "a") == [False, True]
    assert "nearly all of its recent attempts failed" in tracker.benched("p", "m").error
    clock.t += BASE_COOLDOWN_S
    assert tracker.admit(["p/m", "q/m"], "trial") == [True, True]  # it comes back on trial
    (back,) = tracker.record(race("lost", 60.0, race_id="trial", strategy="weighted"))
    assert isinstance(back, ProviderRecovered)


@pytest.mark.parametrize("kind", ["auth", "missing_key"])
def test_a_refused_or_missing_key_benches_long_under_every_strategy_and_says_why(kind: str) -> None:
    clock = Clock()
    tracker = Tracker(clock=clock)
    (event,) = fail(tracker, error_kind=kind, strategy="first_wins")
    assert (event.reason, event.seconds) == (kind, MAX_COOLDOWN_S)
    assert tracker.admit(["p/m", "q/m"], "a") == [False, True]
    why = tracker.benched("p", "m").error
    assert ("401/403" in why) if kind == "auth" else ("not set" in why)
    assert fail(tracker, error_kind=kind, race_id="late") == ()  # no longer for each late failure


def test_a_429_without_retry_after_benches_for_the_base_cooldown() -> None:
    tracker = Tracker(clock=Clock())
    (event,) = fail(tracker, error_kind="rate_limited", strategy="first_wins")
    assert (event.reason, event.seconds) == ("rate_limited", BASE_COOLDOWN_S)


def test_the_cooldown_config_sets_the_threshold_and_durations() -> None:
    clock = Clock()
    tracker = Tracker(clock=clock)
    policy = hedged_policy(tracker, "v", failures=5, base_ms=1000, max_ms=1500)
    for n in range(4):
        assert fail(tracker, race_id=f"r{n}") == ()
    (event,) = fail(tracker, race_id="r4")
    assert (event.failures, event.seconds) == (5, 1.0)
    clock.t += 1.0
    assert tracker.admit(["p/m"], "trial", policy) == [True]
    (again,) = fail(tracker, race_id="trial")
    assert again.seconds == 1.5  # doubled, capped at max_ms


def test_cooldown_config_loads_and_overrides_per_virtual_model() -> None:
    config = raceway.loads_config(
        """
cooldown: {failures: 4, base_ms: 2000}
providers: {a: {type: sim}}
virtual_models:
  v: {providers: [a], cooldown: {max_ms: 9000}}
"""
    )
    assert config.resolve("v").cooldown == raceway.CooldownConfig(failures=4, base_ms=2000, max_ms=9000)
    for bad, path in (("{failures: 0}", "failures"), ("{base_ms: -1}", "base_ms"), ("{base_ms: 10, max_ms: 5}", "max_ms")):
        with pytest.raises(raceway.ConfigError) as info:
            raceway.loads_config(f"cooldown: {bad}\nproviders: [openai]\n")
        assert info.value.path == f"$.cooldown.{path}"


# ------------------------------------------------------------------ in the engine

BEHAVIOUR = {"flaky": "fail"}


async def flaky(request: Request) -> AsyncIterator[str]:
    await trio.sleep(0.01)
    if BEHAVIOUR["flaky"] == "fail":
        raise raceway.ProviderHTTPError("HTTP 503", 503, "flaky")
    yield "flaky answer"


async def solid(request: Request) -> AsyncIterator[str]:
    await trio.sleep(0.05)
    yield "solid answer"


def config(*names: str, strategy: str = "hedged") -> raceway.Config:
    return raceway.Config(
        strategy=strategy,
        performance_file="off",
        monitor=raceway.MonitorConfig(socket="off"),
        providers={
            "flaky": PythonProvider(callable="test_cooldown:flaky", model="f"),
            "solid": PythonProvider(callable="test_cooldown:solid", model="s"),
        },
        virtual_models={
            "vm": VirtualModel(
                providers=[raceway.ProviderRef(name=n, priority=len(names) - i) for i, n in enumerate(names)]
            )
        },
    )


@pytest.fixture(autouse=True)
def _reset_behaviour() -> None:
    BEHAVIOUR["flaky"] = "fail"


async def test_first_wins_keeps_racing_a_provider_that_fails_three_times(autojump_clock: Any) -> None:
    async with raceway.open_engine(config("flaky", "solid", strategy="first_wins")) as engine:
        engine.tracker.clock = Clock()
        for _ in range(FAILURES_TO_TRIP + 2):
            result = await engine.complete([{"role": "user", "content": "hi"}], model="vm")
            assert [a.status for a in result.attempts] == ["failed", "won"]
        assert engine.stats()["flaky/f"].cooldown_until is None


async def test_the_engine_benches_a_failing_provider_and_lists_it_as_not_started(autojump_clock: Any) -> None:
    clock = Clock()
    events: list[Any] = []
    async with raceway.open_engine(config("flaky", "solid")) as engine:
        engine.tracker.clock = clock
        engine.subscribe(events.append)
        for _ in range(FAILURES_TO_TRIP):
            result = await engine.complete([{"role": "user", "content": "hi"}], model="vm")
            assert [a.status for a in result.attempts] == ["failed", "won"]  # hedged: a failover
        cooldowns = [e for e in events if isinstance(e, ProviderCooldown)]
        assert [(e.provider, e.race_id) for e in cooldowns] == [("flaky", result.race_id)]
        assert engine.stats()["flaky/f"].cooldown_until == clock.t + BASE_COOLDOWN_S

        events.clear()
        benched = await engine.complete([{"role": "user", "content": "hi"}], model="vm")
        (started,) = [e for e in events if isinstance(e, raceway.RaceStarted)]
        # Everyone keeps their place in the virtual model; flaky sits this one out.
        assert started.participants == (("flaky", "f"), ("solid", "s"))
        assert [(a.index, a.provider, a.status, a.error_kind) for a in benched.attempts] == [
            (0, "flaky", "not_started", "cooldown"),
            (1, "solid", "won", None),
        ]
        assert [e.index for e in events if isinstance(e, raceway.AttemptStarted)] == [1]
        assert engine.stats()["flaky/f"].races == FAILURES_TO_TRIP  # sitting out is not racing

        clock.t += BASE_COOLDOWN_S  # trial time; this time it answers
        BEHAVIOUR["flaky"] = "answer"
        events.clear()
        trial = await engine.complete([{"role": "user", "content": "hi"}], model="vm")
        assert trial.provider == "flaky"
        assert [type(e) for e in events[-2:]] == [raceway.RaceFinished, ProviderRecovered]
        assert engine.stats()["flaky/f"].cooldown_until is None


async def test_when_everyone_is_cooling_the_least_bad_still_races(autojump_clock: Any) -> None:
    async with raceway.open_engine(config("flaky")) as engine:
        engine.tracker.clock = Clock()
        for _ in range(FAILURES_TO_TRIP + 2):
            with pytest.raises(raceway.AllProvidersFailedError) as info:
                await engine.complete([{"role": "user", "content": "hi"}], model="vm")
            assert "503" in str(info.value)  # it raced and failed; it was not benched into nothing
        assert engine.stats()["flaky/f"].races == FAILURES_TO_TRIP + 2
