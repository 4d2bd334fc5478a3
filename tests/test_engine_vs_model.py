"""The engine agrees with the model: the same race, simulated and real, ends the same way.

Each example draws a scenario, runs it through ``raceway.testing.simulate``
and through a real engine (``raceway.open_engine``) on trio's virtual clock,
with provider objects that play the scenario's scripts, and checks that
both start the same attempts at the same times and pick the same winner at
the same time — or both fail, the same way, at the same time.

Scenarios are kept to what a config can say: every tracker score is the
neutral 0.5 of a fresh engine, one hedge delay for everyone, a fresh hedge
budget. Same-instant ties between a timer the strategy set (a window end, a
hedge delay, the deadline) and a fact are skipped: the model observes the
fact first, while trio wakes the timer and the attempt in the same batch, in
either order (``Simulation.ties`` lists them).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest
import trio
import trio.testing
from hypothesis import assume, given
from hypothesis import strategies as st

import raceway
from raceway import Chunk, Request
from raceway.testing import Participant, Scenario, Simulation, race_scenarios, simulate
from raceway.testing._scenario import HEDGE_RESERVE

#: The winner's stream fails this long after its last chunk (scripts that hang after a token).
IDLE_TIMEOUT_S = 30.0

#: Times closer than this (seconds) may come out equal, or swapped, on trio's clock.
TIE = 1e-9

FAILURES: dict[str, type[raceway.ProviderError]] = {
    "error": raceway.ProviderError,
    "timeout": raceway.ProviderTimeoutError,
    "connection": raceway.ProviderConnectionError,
}


class Player(raceway.Provider):
    """A provider object that plays one participant's script from the moment it is asked."""

    def __init__(self, script: Participant) -> None:
        super().__init__(script.name)
        self.script = script

    async def stream(self, request: Request) -> AsyncIterator[Any]:  # the token as plain text, then Chunk
        script = self.script
        began = trio.current_time()

        async def until(t: float) -> None:
            # Not even a checkpoint when the time has come: a token and the end
            # at the same instant must reach the driver in the same batch.
            if began + t > trio.current_time():
                await trio.sleep_until(began + t)

        if script.ttft is not None:
            await until(script.ttft)
            yield script.text
        if script.end is None:
            await trio.sleep_forever()
        assert script.end is not None
        await until(script.end)
        if script.fails:
            if script.fail_kind == "rate_limited":
                raise raceway.RateLimitedError("scripted", provider=request.provider)
            raise FAILURES[script.fail_kind]("scripted", request.provider)
        if script.finish_reason is not None:
            yield Chunk("", finish_reason=script.finish_reason)


def players(scenario: Scenario) -> dict[str, Player]:
    """The code providers racing ``scenario``, one per participant, in its order."""
    return {p.name: Player(p) for p in scenario.participants}


SCENARIOS = race_scenarios(max_participants=4)
HEDGE_DELAYS = st.sampled_from((0.1, 0.0, 0.05, 0.25, 1.0))


@st.composite
def engine_scenarios(draw: st.DrawFn) -> Scenario:
    """Scenarios a config can express for a fresh engine."""
    scenario = draw(SCENARIOS)
    delay = draw(HEDGE_DELAYS)
    participants = tuple(attrs.evolve(p, score=0.5, hedge_delay=delay) for p in scenario.participants)
    balance = HEDGE_RESERVE if scenario.max_extra_load > 0 else 0.0  # what a fresh engine's budget holds
    return attrs.evolve(scenario, participants=participants, hedge_balance=balance)


def config_for(strategy: str, scenario: Scenario) -> raceway.Config:
    ms = [round(t * 1000) for t in (scenario.deadline, scenario.grace, scenario.participants[0].hedge_delay)]
    return raceway.Config(
        timeout_ms=ms[0],
        idle_timeout_ms=round(IDLE_TIMEOUT_S * 1000),
        grace_period_ms=ms[1],
        strategy=strategy,
        hedge=raceway.HedgeConfig(delay_ms=ms[2], max_extra_load=scenario.max_extra_load),
        monitor=raceway.MonitorConfig(socket="off"),
        performance_file="off",  # each example starts from what a fresh engine knows
        virtual_models={
            "race": raceway.VirtualModel(
                providers=[
                    raceway.ProviderRef(name=p.name, priority=p.priority, weight=p.weight)
                    for p in scenario.participants
                ]
            )
        },
    )


@attrs.define
class EngineRun:
    """What the engine did: starts, the decision or the failure, from its events."""

    starts: dict[int, float] = attrs.field(factory=dict)
    cancels: dict[int, float] = attrs.field(factory=dict)
    winner: int | None = None
    decided_at: float | None = None
    failure: BaseException | None = None
    finished_at: float | None = None
    result: raceway.RaceResult | None = None


def run_engine(strategy: str, scenario: Scenario, *, begin_at: float = 0.0) -> EngineRun:
    """Race ``scenario`` through a real engine on a virtual clock (the race begins at ``begin_at``)."""
    run = EngineRun()

    def listen(event: Any) -> None:
        if isinstance(event, raceway.AttemptStarted):
            run.starts[event.index] = event.elapsed_ms / 1000
        elif isinstance(event, raceway.AttemptCancelled):
            run.cancels[event.index] = event.elapsed_ms / 1000
        elif isinstance(event, raceway.RaceDecided):
            run.winner, run.decided_at = event.index, event.elapsed_ms / 1000
        elif isinstance(event, raceway.RaceFinished) and run.winner is None:
            run.finished_at = event.elapsed_ms / 1000

    async def main() -> None:
        async with raceway.open_engine(config_for(strategy, scenario), providers=players(scenario)) as engine:
            engine.subscribe(listen)
            await trio.sleep(begin_at)
            with trio.fail_after(10_000):  # virtual seconds: a hang here is a bug, not a slow test
                try:
                    async with engine.stream([{"role": "user", "content": "hi"}], model="race") as race:
                        async for _ in race:
                            pass
                        run.result = race.result
                except (raceway.AllProvidersFailedError, raceway.StreamInterruptedError) as exc:
                    run.failure = exc

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    return run


def assert_agree(sim: Simulation, run: EngineRun) -> None:
    story = sim.describe()
    names = [p.name for p in sim.scenario.participants]
    started = {names[i]: t for i, t in run.starts.items()}
    expected = {names[i]: t for i, t in sim.starts.items()}
    assert started == pytest.approx(expected, abs=1e-9), f"starts differ\n{story}"
    if sim.outcome == "picked":
        assert run.winner == sim.winner, f"engine picked {run.winner}\n{story}"
        assert run.decided_at == pytest.approx(sim.decided_at, abs=1e-9), story
        if run.result is not None:  # the winner's stream ran to its end
            assert run.result.provider == sim.winner_name
            assert run.result.ttft_ms == pytest.approx(sim.decided_at * 1000, abs=1e-6)
        else:  # it broke after the decision (an error or idle timeout mid-stream)
            assert isinstance(run.failure, raceway.StreamInterruptedError), story
        expected_cancels = cancels(sim)
        assert set(run.cancels) <= set(expected_cancels), f"cancelled: {run.cancels}\n{story}"
        for i, t in expected_cancels.items():
            if t is not None:
                assert run.cancels.get(i) == pytest.approx(t, abs=1e-9), f"{names[i]}: {run.cancels}\n{story}"
        return
    assert run.winner is None, f"engine picked {names[run.winner]} at {run.decided_at}\n{story}"
    expected_error = raceway.RaceTimeoutError if sim.outcome == "timeout" else raceway.AllProvidersFailedError
    assert type(run.failure) is expected_error, f"engine raised {run.failure!r}\n{story}"
    assert run.finished_at == pytest.approx(sim.decided_at, abs=1e-9), story


def ends_after(p: Participant) -> float:
    """When an attempt's stream ends by itself, after its start: with its answer or error, or
    when the idle timeout fires after a token and a hang (for losers too)."""
    if p.end is not None:
        return p.end
    return math.inf if p.ttft is None else p.ttft + IDLE_TIMEOUT_S


def cancels(sim: Simulation) -> dict[int, float | None]:
    """When each loser still running is cancelled: the grace window's close, or the end of
    the winner's stream if sooner (the caller has nothing left to wait for).

    ``None`` for a loser that ends by itself on that very instant: it may go either way.
    """
    assert sim.winner is not None and sim.cancel_losers_at is not None
    ps = sim.scenario.participants
    won = ps[sim.winner]
    assert won.ttft is not None
    began = sim.starts[sim.winner]
    stream_end = began + ends_after(won)
    cancel_at = min(max(sim.cancel_losers_at, sim.decided_at), max(stream_end, sim.decided_at))
    out: dict[int, float | None] = {}
    for i, start in sim.starts.items():
        own_end = start + ends_after(ps[i])
        if i != sim.winner and own_end >= cancel_at - TIE:
            out[i] = cancel_at if own_end > cancel_at + TIE else None
    return out


def facts_nearly_together(sim: Simulation) -> bool:
    """Whether facts of attempts started at different times fall within a nanosecond.

    On trio's clock they are ``(t0 + start) + t``: when the race begins at a
    non-zero ``t0``, rounding may merge two such instants the model keeps
    apart, or split two it merges.
    """
    ps = sim.scenario.participants
    times = sorted(
        (start + t, start) for i, start in sim.starts.items() for t in (ps[i].ttft, ps[i].end) if t is not None
    )
    return any(b - a <= TIE and s != z for (a, s), (b, z) in itertools.pairwise(times))


STRATEGIES = {s.name: s for s in (raceway.FirstWins, raceway.Weighted, raceway.Quality, raceway.Hedged)}


@pytest.mark.parametrize("name", list(STRATEGIES))
@given(scenario=engine_scenarios())
def test_engine_agrees_with_the_model(name: str, scenario: Scenario) -> None:
    sim = simulate(STRATEGIES[name], scenario)
    assume(not sim.ties)
    assert_agree(sim, run_engine(name, scenario))


def test_scripted_race_reads_like_the_model() -> None:
    """One race by hand: b's token at 0.120 wins; a failed at 0.050 (the kit's own example)."""
    scenario = Scenario(
        participants=(
            Participant(name="a", end=0.05, fails=True),
            Participant(name="b", ttft=0.12, end=0.3),
        ),
        grace=0.2,
    )
    sim = simulate(raceway.FirstWins, scenario)
    assert sim.timeline() == "a: start 0, fail 0.050 | b: start 0, token 0.120 -> picked b at 0.120 (losers cancelled at 0.320)"
    run = run_engine("first_wins", scenario)
    assert_agree(sim, run)
    assert run.result is not None and run.result.provider == "b" and run.result.ttft_ms == pytest.approx(120)


@pytest.mark.parametrize("name", list(STRATEGIES))
@given(scenario=engine_scenarios(), begin_at=st.sampled_from((0.0123, 7.7, 1e4 + 0.1)))
def test_engine_agrees_when_the_race_begins_later(name: str, scenario: Scenario, begin_at: float) -> None:
    """The race's clock starts at a non-zero trio time: float rounding must not change a thing."""
    sim = simulate(STRATEGIES[name], scenario)
    assume(not sim.ties and not facts_nearly_together(sim))
    run = run_engine(name, scenario, begin_at=begin_at)
    assert_agree(sim, run)
