"""The custom strategy of examples/cheapest_strategy.py: it keeps the rules, and races for real."""

from __future__ import annotations

import sys
from pathlib import Path

import attrs
import pytest
import trio
from hypothesis import given

import raceway
from raceway.testing import Participant, Scenario, check_strategy, race_scenarios, simulate

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # examples/ is not a package of the distribution
    sys.path.insert(0, str(ROOT))

from examples.cheapest_strategy import Cheapest  # noqa: E402

PRICED = ("deepseek", "openai", "groq", "anthropic", "mystery")  # the last is not in the cost table


def priced(scenario: Scenario) -> Scenario:
    """The same race, its participants renamed after providers of the cost table."""
    return attrs.evolve(
        scenario,
        participants=tuple(attrs.evolve(p, name=PRICED[i]) for i, p in enumerate(scenario.participants)),
    )


priced_scenarios = race_scenarios(max_participants=len(PRICED)).map(priced)


def test_cheapest_keeps_the_rules() -> None:
    check_strategy(Cheapest)
    check_strategy(Cheapest, scenarios=priced_scenarios)


@given(scenario=priced_scenarios)
def test_cheapest_answer_within_twice_the_fastest_wins(scenario: Scenario) -> None:
    sim = simulate(Cheapest, scenario)
    strategy = sim.strategy
    assert isinstance(strategy, Cheapest)
    if sim.outcome != "picked":
        assert not sim.in_hand(), sim.describe()
        return
    assert sim.winner is not None
    held = sim.in_hand()
    fastest = sim.success_time(held[0])
    assert fastest is not None
    # The winner is the cheapest answer in hand (the earlier one of equals)...
    cheapest = min(strategy.cost(i) for i in held)
    assert strategy.cost(sim.winner) == cheapest, sim.describe()
    # ...decided no later than twice the fastest answer's time...
    assert fastest <= sim.decided_at <= fastest * 2, sim.describe()
    # ...and sooner only when nothing cheaper was still on its way (or the deadline came).
    if sim.decided_at < min(fastest * 2, scenario.deadline):
        for i in sim.starts:
            on_the_way = sim.success_time(i) is None and not any(
                f.index == i and f.t <= sim.decided_at and not isinstance(f, raceway.Started) for f in sim.facts
            )
            assert not (on_the_way and strategy.cost(i) < cheapest), sim.describe()


@pytest.mark.parametrize(
    ("deepseek_ms", "winner", "at_ms"),
    [
        (150, "deepseek", 150),  # 1.5x the fastest: the cheap one is worth the wait
        (250, "openai", 200),  # 2.5x: the dear one wins when the patience (2 x 100 ms) runs out
    ],
)
async def test_cheapest_races_through_the_engine(
    autojump_clock: trio.abc.Clock, deepseek_ms: int, winner: str, at_ms: int
) -> None:
    config = raceway.loads_config(
        f"""
        strategy: "examples.cheapest_strategy:Cheapest"
        monitor: {{socket: "off"}}
        providers:
          openai:   {{type: sim, ttft_ms: 100, sigma: 0}}
          deepseek: {{type: sim, ttft_ms: {deepseek_ms}, sigma: 0}}
        """
    )
    async with raceway.open_engine(config) as engine:
        result = await engine.complete([{"role": "user", "content": "hi"}])
    assert (result.provider, result.strategy) == (winner, "examples.cheapest_strategy:Cheapest")
    assert result.ttft_ms == pytest.approx(at_ms)


def test_the_model_agrees_with_the_engine_cases() -> None:
    for deepseek, winner, at in ((0.15, "deepseek", 0.15), (0.25, "openai", 0.2)):
        scenario = Scenario(
            participants=(
                Participant(name="openai", ttft=0.1, end=0.5),
                Participant(name="deepseek", ttft=deepseek, end=0.5),
            )
        )
        sim = simulate(Cheapest, scenario)
        assert (sim.winner_name, sim.decided_at) == (winner, at), sim.timeline()
