"""The built-in strategies under proof: the universal rules, and each one's own row of the semantics table.

Each strategy's rule is restated here from DESIGN.md's table as an oracle
over the scenario's script — what should happen — and compared with what
the strategy did in ``raceway.testing.simulate``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import attrs
import pytest
from hypothesis import given

from raceway import (
    Answer,
    Failed,
    FirstToken,
    FirstWins,
    Hedged,
    Quality,
    Started,
    Strategy,
    Weighted,
    default_quality_score,
)
from raceway.testing import Participant, Scenario, check_strategy, race_scenarios, simulate

BUILTINS: list[type[Strategy]] = [FirstWins, Weighted, Quality, Hedged]


@pytest.mark.parametrize("strategy", BUILTINS, ids=lambda s: s.name)
def test_builtins_keep_the_universal_rules(strategy: type[Strategy]) -> None:
    check_strategy(strategy)


def test_quality_with_a_custom_scorer_keeps_the_rules() -> None:
    def longest(answer: Answer) -> float:
        return float(len(answer.text.strip()))

    check_strategy(lambda spec: Quality(attrs.evolve(spec, scorer=longest)))


@pytest.mark.parametrize("strategy", BUILTINS, ids=lambda s: s.name)
@given(scenario=race_scenarios())
def test_builtins_are_deterministic(strategy: type[Strategy], scenario: Scenario) -> None:
    first, again = simulate(strategy, scenario), simulate(strategy, scenario)
    assert first.decisions == again.decisions
    assert (first.outcome, first.winner, first.decided_at) == (again.outcome, again.winner, again.decided_at)


# ------------------------------------------------------------ the oracles

# What each participant does, in race time, when started at 0 (all but
# hedged start everyone at once).


def token_held(p: Participant, t: float) -> bool:
    """A first-token success in hand at ``t``: a token, and no failure yet."""
    return p.ttft is not None and p.ttft <= t and not (p.fails and p.end is not None and p.end <= t)


def token_pending(p: Participant, t: float) -> bool:
    """Running at ``t`` with no token yet: it may still succeed on its first token."""
    return not (p.ttft is not None and p.ttft <= t) and not (p.end is not None and p.end <= t)


def complete_held(p: Participant, t: float) -> bool:
    """A complete, non-empty answer in hand at ``t``."""
    return not p.fails and p.end is not None and p.end <= t and bool(p.answer)


def complete_pending(p: Participant, t: float) -> bool:
    """Still running at ``t``: it may still complete."""
    return p.end is None or p.end > t


def fact_times(scenario: Scenario) -> set[float]:
    return {t for p in scenario.participants for t in (p.ttft, p.end) if t is not None}


Expected = tuple[str, int | None, float]  # (outcome, winner, when)


def windowed_oracle(
    scenario: Scenario,
    held: Callable[[Participant, float], bool],
    pending: Callable[[Participant, float], bool],
    success_at: Callable[[Participant], float],
    value: Callable[[int], float],
) -> Expected:
    """weighted/quality: after the first success, wait out the grace window (or until nothing is
    pending, or the deadline), then pick the best success inside the window; ties to the earlier."""
    ps = scenario.participants
    deadline, grace = scenario.deadline, scenario.grace
    facts = fact_times(scenario)
    moments = sorted(
        t for t in {0.0, deadline} | facts | {s + grace for s in facts} if t <= deadline
    )
    for t in moments:
        held_now = sorted((success_at(p), i) for i, p in enumerate(ps) if held(p, t))
        anyone_pending = any(pending(p, t) for p in ps)
        if held_now:
            window_end = held_now[0][0] + grace
            if t >= window_end or t >= deadline or not anyone_pending:
                inside = [i for s, i in held_now if s <= window_end]
                return ("picked", max(inside, key=value), t)
        elif not anyone_pending:
            return ("failed", None, t)
    return ("timeout", None, deadline)


def outcome_of(sim_outcome: str) -> str:
    return {"gave_up": "failed", "exhausted": "failed"}.get(sim_outcome, sim_outcome)


# ------------------------------------------------------------ first_wins


@given(scenario=race_scenarios())
def test_first_wins_picks_the_earliest_success_at_once(scenario: Scenario) -> None:
    sim = simulate(FirstWins, scenario)
    ps = scenario.participants
    assert sim.starts == dict.fromkeys(range(len(ps)), 0.0), "everyone starts at t=0"
    for t in sorted({0.0, scenario.deadline} | fact_times(scenario)):
        if t > scenario.deadline:
            break
        held = [i for i, p in enumerate(ps) if token_held(p, t)]
        if held:
            # The first instant with a success: the earliest token wins, now; ties go to the lower index.
            assert (sim.outcome, sim.winner, sim.decided_at) == ("picked", min(held), t), sim.describe()
            assert ps[min(held)].ttft == t
            assert sim.cancel_losers_at == t + scenario.grace, "losers run until the grace window closes"
            return
        if not any(token_pending(p, t) for p in ps):
            assert (outcome_of(sim.outcome), sim.decided_at) == ("failed", t), sim.describe()
            return
    assert (sim.outcome, sim.decided_at) == ("timeout", scenario.deadline), sim.describe()


# ------------------------------------------------------------ weighted


@given(scenario=race_scenarios())
def test_weighted_picks_the_best_value_inside_the_window(scenario: Scenario) -> None:
    sim = simulate(Weighted, scenario)
    ps = scenario.participants

    def value(i: int) -> float:
        p = ps[i]
        assert p.ttft is not None
        return p.weight * p.score / (1.0 + p.ttft)

    expected = windowed_oracle(scenario, token_held, token_pending, lambda p: p.ttft or 0.0, value)
    assert (outcome_of(sim.outcome), sim.winner, sim.decided_at) == expected, sim.describe()
    assert sim.starts == dict.fromkeys(range(len(ps)), 0.0)
    if sim.outcome == "picked":
        assert sim.cancel_losers_at == sim.decided_at, "losers are cancelled when the window closes"


def test_weighted_waits_for_a_better_answer_inside_the_window() -> None:
    """a answers first (0.100) but b (weight 3, 0.200) is worth more: b wins when the window closes."""
    scenario = Scenario(
        participants=(
            Participant(name="a", ttft=0.1, end=0.5),
            Participant(name="b", ttft=0.2, end=0.5, weight=3.0),
            Participant(name="c", ttft=0.4, end=0.5, weight=100.0),
        ),
        grace=0.25,
    )
    sim = simulate(Weighted, scenario)
    assert sim.timeline() == (
        "a: start 0, token 0.100 | b: start 0, token 0.200 | c: start 0 -> picked b at 0.350 (losers cancelled at 0.350)"
    )


# ------------------------------------------------------------ quality


@given(scenario=race_scenarios())
def test_quality_picks_the_best_complete_answer_inside_the_window(scenario: Scenario) -> None:
    sim = simulate(Quality, scenario)
    ps = scenario.participants

    def value(i: int) -> float:
        p = ps[i]
        assert p.ttft is not None and p.end is not None
        return default_quality_score(
            Answer(text=p.answer, finish_reason=p.finish_reason, provider=p.name, model="", ttft=p.ttft, total=p.end)
        )

    expected = windowed_oracle(scenario, complete_held, complete_pending, lambda p: p.end or 0.0, value)
    assert (outcome_of(sim.outcome), sim.winner, sim.decided_at) == expected, sim.describe()
    if sim.outcome == "picked":
        assert sim.cancel_losers_at == sim.decided_at


def test_quality_prefers_a_clean_answer_to_a_truncated_one() -> None:
    scenario = Scenario(
        participants=(
            Participant(name="a", ttft=0.05, end=0.1, finish_reason="length"),
            Participant(name="b", ttft=0.1, end=0.3),
        ),
        grace=0.25,
    )
    sim = simulate(Quality, scenario)
    assert (sim.winner_name, sim.decided_at) == ("b", 0.3), sim.timeline()


# ------------------------------------------------------------ hedged


@given(scenario=race_scenarios())
def test_hedged_starts_follow_the_delay_and_failure_rules(scenario: Scenario) -> None:
    sim = simulate(Hedged, scenario)
    ps = scenario.participants
    story = sim.describe()
    order = sorted(range(len(ps)), key=lambda i: (-ps[i].priority, -ps[i].score, i))
    started = list(sim.starts)  # in the order they started
    assert started == order[: len(started)], f"highest priority first, ties by score, then index\n{story}"
    assert sim.starts[order[0]] == 0.0
    # Replay the facts in the order the strategy observed them, to know what
    # it knew at each start (facts of one instant arrive in steps: those of
    # an attempt started at that instant come after the start).
    running: list[int] = []  # started, no token yet, not ended: may still succeed
    last_fact = 0.0
    owed = 0  # failures not yet replaced by a failover
    hedges = 0
    for fact in sim.facts:
        if not isinstance(fact, Started):
            if fact.index in running:
                running.remove(fact.index)
            if isinstance(fact, Failed):
                owed += 1
            last_fact = fact.t
            continue
        if fact.index != started[0]:
            if owed and fact.t == last_fact:
                owed -= 1  # a failover: at once when an attempt failed
            elif running:
                # A hedge: the latest attempt has had its delay with no token.
                latest = started[started.index(fact.index) - 1]
                assert fact.t == sim.starts[latest] + ps[latest].hedge_delay, f"hedge off its delay\n{story}"
                hedges += 1
            else:
                # Nothing running and no failure owed: an attempt ended empty.
                assert fact.t == last_fact, f"failover not at once\n{story}"
        assert fact.t <= scenario.deadline
        running.append(fact.index)
    # Every failure before the decision is replaced at once while attempts wait.
    for f in sim.facts:
        if isinstance(f, Failed) and f.t < min(scenario.deadline, sim.decided_at):
            started_by_then = {i for i, t in sim.starts.items() if t <= f.t}
            if len(started_by_then) < len(ps):
                assert any(t == f.t and i != f.index for i, t in sim.starts.items()), f"no failover at {f.t}\n{story}"
    # Extra attempts stay within the hedge budget.
    allowed = math.floor(scenario.hedge_balance) if scenario.max_extra_load > 0 else 0
    assert hedges <= allowed, story
    budget = sim.spec.budget
    assert budget is not None
    assert budget.balance == (scenario.hedge_balance if scenario.max_extra_load > 0 else 0.0) - hedges
    # No start was missed: a waiting attempt starts when its time comes.
    if len(started) < len(ps):
        assert sim.outcome in ("picked", "timeout"), f"gave up with attempts left to start\n{story}"
        latest = started[-1]
        hedge_due = sim.starts[latest] + ps[latest].hedge_delay
        if hedges < allowed:
            assert hedge_due >= sim.decided_at, f"a hedge was due at {hedge_due} but never started\n{story}"
    # The first success wins at once, and the losers go at the win.
    first_success = min(
        (f.t for f in sim.facts if isinstance(f, FirstToken) and sim.success_time(f.index) is not None),
        default=None,
    )
    if sim.outcome == "picked":
        assert sim.winner is not None and first_success == sim.decided_at == sim.success_time(sim.winner), story
        assert sim.cancel_losers_at == sim.decided_at
    else:
        assert first_success is None, story


def test_hedged_hedges_after_the_delay_and_fails_over_at_once() -> None:
    scenario = Scenario(
        participants=(
            Participant(name="a", priority=2, end=0.2, fails=True, hedge_delay=0.1),
            Participant(name="b", priority=1, end=0.15, fails=True, hedge_delay=0.3),
            Participant(name="c", priority=0, ttft=0.05, end=0.2),
        ),
    )
    sim = simulate(Hedged, scenario)
    # a first; no token by 0.100: hedge b; a fails at 0.200 while b still runs:
    # c at once (a failover); b fails at 0.250, the instant c's token wins.
    assert sim.timeline() == (
        "a: start 0, fail 0.200 | b: start 0.100, fail 0.250 | c: start 0.200, token 0.250"
        " -> picked c at 0.250 (losers cancelled at 0.250)"
    )


def test_hedged_stops_hedging_when_the_budget_is_spent() -> None:
    slow = Participant(name="a", ttft=0.9, end=1.0, hedge_delay=0.1)
    scenario = Scenario(
        participants=(slow, attrs.evolve(slow, name="b"), attrs.evolve(slow, name="c")),
        hedge_balance=1.0,
    )
    sim = simulate(Hedged, scenario)
    assert sim.starts == {0: 0.0, 1: 0.1}, sim.timeline()
    assert sim.winner_name == "a"


def test_hedged_asks_a_refusing_budget_again_after_twice_the_wait() -> None:
    from raceway import Contender, HedgeBudget, RaceSpec, Start, Started, Wait

    budget = HedgeBudget(max_extra_load=0.5, balance=0.0)
    spec = RaceSpec(
        contenders=tuple(Contender(index=i, provider=n, hedge_delay=0.1) for i, n in enumerate("ab")),
        deadline=5.0,
        grace=0.0,
        budget=budget,
    )
    s = Hedged(spec)
    assert s.decide(0.0) == Start(0)
    s.observe(Started(0, 0.0))
    assert s.decide(0.1) == Wait(0.2)  # refused at the delay: ask again at 2x
    assert s.decide(0.2) == Wait(0.4)  # refused again: 4x
    budget.deposit()
    budget.deposit()  # other races refilled it
    assert s.decide(0.4) == Start(1)
    assert budget.balance == 0.0


def test_hedged_fails_over_at_once_even_while_another_attempt_runs() -> None:
    scenario = Scenario(
        participants=(
            Participant(name="never", priority=3, hedge_delay=0.1),
            Participant(name="failfast", priority=2, end=0.02, fails=True, hedge_delay=0.1),
            Participant(name="fast", priority=1, ttft=0.05, end=0.06, hedge_delay=0.1),
        ),
    )
    sim = simulate(Hedged, scenario)
    # never at 0; hedge failfast at 0.100; it fails at 0.120 while never still
    # runs: fast starts at once (a failover, not a hedge), answers at 0.170.
    assert sim.starts == {0: 0.0, 1: 0.1, 2: pytest.approx(0.12)}, sim.timeline()
    assert sim.winner_name == "fast" and sim.decided_at == pytest.approx(0.17)
