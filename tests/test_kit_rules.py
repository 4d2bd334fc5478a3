"""The kit and the engine agree by construction, and the kit's reports stay readable.

One race core decides for both, so a strategy the kit accepts races in the
engine, and one the engine fails with a StrategyError breaks a named rule in
the kit (issue 10); strategies that never start anything, or decide at
random, or keep state between races, are caught (issue 11, items 18-21).
"""

from __future__ import annotations

import itertools
import random
from typing import Any, ClassVar

import pytest
import trio

import raceway
from raceway import Decision, FirstWins, GiveUp, Pick, RaceSpec, Start, Strategy, Wait
from raceway.testing import RULES, Participant, Scenario, check_strategy, simulate

SCENARIO = Scenario(participants=(Participant(name="a", ttft=0.01, end=0.02), Participant(name="b", ttft=0.05, end=0.06)))


class MyWait(Wait):
    """A subclass of a decision is that decision."""


class WaitsWithASubclass(FirstWins):
    def decide(self, now: float) -> Decision:
        d = super().decide(now)
        return MyWait(d.until) if isinstance(d, Wait) else d


class DuckTyped:
    """No base class, no success_on: observe and decide are all a strategy needs."""

    def __init__(self, spec: RaceSpec) -> None:
        self.n = len(spec.contenders)
        self.started = 0
        self.answered: list[int] = []

    def observe(self, fact: Any) -> None:
        if isinstance(fact, raceway.FirstToken):
            self.answered.append(fact.index)

    def decide(self, now: float) -> Decision:
        if self.answered:
            return Pick(self.answered[0])  # cancel_losers_at defaults to "at once"
        if self.started < self.n:
            self.started += 1
            return Start(self.started - 1)
        return Wait()


class NoObserve:
    def __init__(self, spec: RaceSpec) -> None:
        pass

    def decide(self, now: float) -> Decision:
        return Start(0)


def engine_config(strategy: str) -> raceway.Config:
    return raceway.loads_config(
        f"""
monitor: {{socket: "off"}}
performance_file: "off"
providers:
  a: {{type: sim, ttft_ms: 10, sigma: 0, seed: 1}}
  b: {{type: sim, ttft_ms: 50, sigma: 0, seed: 2}}
virtual_models:
  v: {{strategy: "{strategy}", providers: [{{name: a}}, {{name: b}}]}}
"""
    )


async def race_once(strategy: str) -> raceway.RaceResult | BaseException:
    async with raceway.open_engine(engine_config(strategy)) as engine:
        with trio.fail_after(60):
            try:
                return await engine.complete([{"role": "user", "content": "hi"}], "v")
            except raceway.RacewayError as exc:
                return exc


@pytest.mark.parametrize("name", ["WaitsWithASubclass", "DuckTyped"])
async def test_what_the_kit_accepts_the_engine_runs(name: str, autojump_clock: Any) -> None:
    check_strategy(globals()[name], max_examples=50)
    assert simulate(globals()[name], SCENARIO).winner_name == "a"
    result = await race_once(f"test_kit_rules:{name}")
    assert isinstance(result, raceway.RaceResult) and result.provider == "a"


async def test_what_the_engine_refuses_the_kit_reports_as_a_broken_rule(autojump_clock: Any) -> None:
    with pytest.raises(AssertionError, match=r"a strategy has observe\(fact\) and decide\(now\)"):
        check_strategy(NoObserve, max_examples=5)
    sim = simulate(NoObserve, SCENARIO)
    assert (sim.outcome, sim.rule) == ("error", "protocol")
    # validate() refuses a class without decide(); this one has decide but no observe: the race says so
    error = await race_once("test_kit_rules:NoObserve")
    assert isinstance(error, raceway.StrategyError) and error.rule == "protocol"
    assert "has no observe(fact) method" in str(error)


def test_rules_are_the_race_cores() -> None:
    from raceway._actions import RULES as CORE

    assert RULES is CORE
    assert {"protocol", "winner", "start_twice", "range", "decision", "raise", "deadline", "success_kept",
            "runaway", "deterministic"} <= set(RULES)


def test_attempt_view_is_public() -> None:
    assert raceway.AttemptView is raceway._strategy.AttemptView


# ---------------------------------------------------------------- item 18


class AlwaysGivesUp(Strategy):
    def decide(self, now: float) -> Decision:
        return GiveUp("not today")


class AlwaysWaits(Strategy):
    def decide(self, now: float) -> Decision:
        return Wait()


class OnlyTheFirst(Strategy):
    """Starts attempt 0 only, and gives up when it fails: leaving others unstarted is allowed."""

    def decide(self, now: float) -> Decision:
        a = self.attempts[0]
        if a.started is None:
            return Start(0)
        if a.first_token is not None and a.failed is None:
            return Pick(0)
        if a.failed is not None or a.completed is not None:
            return GiveUp("the only one I trust failed")
        return Wait()


@pytest.mark.parametrize("strategy", [AlwaysGivesUp, AlwaysWaits])
def test_a_strategy_that_never_starts_anything_breaks_the_success_rule(strategy: type[Strategy]) -> None:
    with pytest.raises(AssertionError) as info:
        check_strategy(strategy)
    message = str(info.value)
    assert "when an attempt succeeds before the deadline, the race does not fail" in message
    assert "without starting any attempt" in message
    check_strategy(strategy, allow_give_up=True)


def test_leaving_participants_unstarted_on_purpose_is_allowed() -> None:
    check_strategy(OnlyTheFirst)


# ---------------------------------------------------------------- item 19


class PicksAtRandom(Strategy):
    def decide(self, now: float) -> Decision:
        waiting = self.not_started()
        if waiting:
            return Start(waiting[0])
        wins = self.successes()
        if wins:
            return Pick(random.choice(wins))
        return Wait() if self.any_pending() else GiveUp()


class CountsRaces(FirstWins):
    races: ClassVar[itertools.count[int]] = itertools.count()

    def __init__(self, spec: RaceSpec) -> None:
        super().__init__(spec)
        self.number = next(CountsRaces.races)

    def decide(self, now: float) -> Decision:
        d = super().decide(now)
        if isinstance(d, Pick) and self.number % 2:
            return Pick(d.index, cancel_losers_at=now + 0.5)
        return d


class GivesUpByCoin(FirstWins):
    def decide(self, now: float) -> Decision:
        d = super().decide(now)
        if isinstance(d, Pick) and random.random() < 0.5:
            return GiveUp("coin")
        return d


@pytest.mark.parametrize("strategy", [PicksAtRandom, CountsRaces, GivesUpByCoin])
def test_strategies_that_are_not_deterministic_are_caught(strategy: type[Strategy]) -> None:
    with pytest.raises(AssertionError) as info:
        # A random pick shows only where two answers tie: more timelines find it every time.
        check_strategy(strategy, allow_give_up=True, max_examples=400)
    message = str(info.value)
    assert "the same timeline gives the same decisions" in message or "does not fail" in message, message
    assert "replay: simulate(" in message and " -> " in message
    assert "unreliable" not in message.lower() and "Flaky" not in message


# ---------------------------------------------------------------- item 20


class Runaway(Strategy):
    def decide(self, now: float) -> Decision:
        if self.not_started():
            return Start(self.not_started()[0])
        return Wait(now + 1e-9)


def test_a_runaway_strategy_gets_a_short_message() -> None:
    with pytest.raises(AssertionError) as info:
        check_strategy(Runaway, max_examples=5)
    message = str(info.value)
    assert "the race ends: decide() is not asked forever" in message
    assert len(message) < 5_000, len(message)
    assert "more ..." in message


class PicksWithNoCancelTime(FirstWins):
    def decide(self, now: float) -> Decision:
        d = super().decide(now)
        return Pick(d.index, cancel_losers_at=None) if isinstance(d, Pick) else d


async def test_pick_without_a_cancel_time_cancels_at_once_in_kit_and_engine(autojump_clock: Any) -> None:
    check_strategy(PicksWithNoCancelTime, max_examples=50)
    sim = simulate(PicksWithNoCancelTime, SCENARIO)
    assert sim.cancel_losers_at == sim.decided_at == pytest.approx(0.01)
    result = await race_once("test_kit_rules:PicksWithNoCancelTime")
    assert isinstance(result, raceway.RaceResult)
    assert [a.status for a in result.attempts] == ["won", "cancelled"]
