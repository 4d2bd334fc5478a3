"""``check_strategy``: the rules every strategy keeps, checked on many drawn races."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

from hypothesis import find, settings
from hypothesis import strategies as st
from hypothesis.errors import Flaky, NoSuchExample

from .._actions import MAX_DECISIONS
from .._actions import RULES as CORE_RULES
from .._strategy import RaceSpec, Wait
from ._draw import race_scenarios
from ._scenario import Scenario, fmt_time
from ._simulate import Simulation, simulate

#: The rules, by the id that :func:`broken_rule`, a :class:`Simulation`'s ``rule`` and a
#: :class:`~raceway.StrategyError`'s ``rule`` name them with (one list: the race core's).
RULES = CORE_RULES


def broken_rule(sim: Simulation, allow_give_up: bool = False) -> tuple[str, str] | None:
    """The rule ``sim`` shows broken, as ``(rule id, what happened)``, or ``None``.

    ``allow_give_up`` accepts a race that fails although an answer was in
    hand (a strategy that may refuse answers, say from an untrusted provider).
    """
    if sim.outcome == "error":
        return (sim.rule or "raise", sim.reason)
    deadline = sim.deadline
    if sim.decided_at > deadline:
        return ("deadline", f"it decided at {fmt_time(sim.decided_at)}, after the deadline {fmt_time(deadline)}")
    if not sim.failed or allow_give_up or sim.failovers:
        # After a broken winner the race core fails over by its own rule: the
        # strategy's decision stood, and what happens next is not its doing.
        return None
    hand = sim.in_hand()
    if not hand:
        return _cut_off(sim)
    first = hand[0]
    t = sim.success_time(first)
    assert t is not None
    name = sim.participant(first).name
    last = sim.decisions[-1][1] if sim.decisions else None
    until = last.until if isinstance(last, Wait) else None
    if sim.outcome == "timeout" or (until is not None and until > deadline):
        when = "the deadline" if until is None or until <= deadline else fmt_time(until)
        return (
            "deadline",
            f"with {name}'s answer in hand since {fmt_time(t)}, it waited at {fmt_time(sim.decided_at)} "
            f"until {when}: its decision would come after the deadline ({fmt_time(deadline)}), "
            "so the race failed",
        )
    how = "gave up" if sim.outcome == "gave_up" else "waited with no attempt running"
    return ("success_kept", f"it {how} at {fmt_time(sim.decided_at)} although {name} had succeeded at {fmt_time(t)}")


def _cut_off(sim: Simulation) -> tuple[str, str] | None:
    """An attempt that would have succeeded before the deadline, had the race not failed first.

    Either a started one, or — when the strategy never started anything —
    any participant, had it been started at the race's start.
    """
    deadline = sim.deadline
    if not sim.starts and not sim.failovers:
        return _never_started(sim)
    later = []
    for i, start in sim.starts.items():
        p = sim.participant(i)
        if p.fails or p.ttft is None:
            continue
        at = start + (p.ttft if sim.success_on == "first_token" else (p.end if p.end is not None else math.inf))
        if sim.decided_at < at < deadline:
            later.append((at, i, start))
    if not later:
        return None
    at, i, start = min(later)
    name = sim.participant(i).name
    how = "gave up" if sim.outcome == "gave_up" else "waited with no attempt running"
    return (
        "success_kept",
        f"it {how} at {fmt_time(sim.decided_at)} although {name}, started at {fmt_time(start)}, "
        f"would have succeeded at {fmt_time(at)}, before the deadline ({fmt_time(deadline)})",
    )


def _never_started(sim: Simulation) -> tuple[str, str] | None:
    """The race failed without one start, though some participant would have answered in time."""
    answers = []
    for p in sim.scenario.participants:
        if p.fails or p.ttft is None:
            continue
        at = p.ttft if sim.success_on == "first_token" else (p.end if p.end is not None else math.inf)
        if at < sim.deadline:
            answers.append((at, p.name))
    if not answers:
        return None
    at, name = min(answers)
    how = "gave up" if sim.outcome == "gave_up" else f"ended ({sim.outcome})"
    return (
        "success_kept",
        f"it {how} at {fmt_time(sim.decided_at)} without starting any attempt, although {name}, "
        f"started at 0, would have succeeded at {fmt_time(at)}, before the deadline ({fmt_time(sim.deadline)})",
    )


def check_strategy(
    make_strategy: Callable[[RaceSpec], Any],
    allow_give_up: bool = False,
    *,
    max_examples: int | None = None,
    scenarios: st.SearchStrategy[Scenario] | None = None,
) -> None:
    """Check the rules every strategy must keep, on many drawn race timelines.

    The rules: a winner is always an attempt that started and succeeded
    (for ``success_on = "complete"``: completed with a non-empty answer);
    nothing starts twice; Start and Pick name attempts that exist; the
    decision never comes after the deadline; ``decide()`` returns only the
    four decision types and, like ``observe()``, never raises; and, unless
    ``allow_give_up``, a race with a success in hand does not fail (no
    ``GiveUp``, no waiting with nothing running, no waiting out the
    deadline).

    Args:
        make_strategy: a callable taking a :class:`~raceway.RaceSpec` and
            returning a fresh strategy (a :class:`~raceway.Strategy` subclass
            is one). Called once per simulated race.
        allow_give_up: accept races that fail with an answer in hand.
        max_examples: how many timelines to try; ``None`` uses the current
            hypothesis settings profile (``settings.load_profile``).
        scenarios: the hypothesis strategy to draw timelines from (default
            :func:`race_scenarios` ``()``).

    Raises:
        AssertionError: a rule broke. The message names the rule and shows the
            smallest timeline hypothesis found that breaks it, as a readable
            timeline, the strategy's decisions, and the :class:`Scenario` to
            replay it with :func:`simulate`.
    """
    is_built = not isinstance(make_strategy, type) and hasattr(make_strategy, "decide")
    if is_built or not callable(make_strategy):
        raise TypeError(
            "check_strategy needs a callable that makes a fresh strategy from a RaceSpec "
            f"(a Strategy subclass, or a function), not {make_strategy!r}"
        )
    drawn = race_scenarios() if scenarios is None else scenarios
    current = settings()
    # No example database: an example saved by an earlier run (of an earlier
    # version of the strategy) may be replayed without being shrunk again,
    # and the report must show the smallest timeline.
    run_settings = settings(current, max_examples=max_examples or current.max_examples, database=None)
    label = getattr(make_strategy, "__qualname__", None) or repr(make_strategy)

    last: list[Scenario] = []  # the latest timeline that broke a rule, for a flaky report

    def breaks(scenario: Scenario) -> bool:
        if judge(make_strategy, scenario, allow_give_up) is None:
            return False
        last[:] = [scenario]
        return True

    try:
        found = find(drawn, breaks, settings=run_settings)
    except NoSuchExample:
        return
    except Flaky:
        # The same timeline broke a rule once and not again: state kept between
        # races (a class attribute, a module global) that the fresh instances
        # of one check did not show. Report the timeline, not hypothesis's words.
        if not last:  # pragma: no cover - a rule broke before hypothesis could call it flaky
            raise
        found = last[0]
        flaky = judge(make_strategy, found, allow_give_up) or (
            "deterministic",
            "it broke a rule on this timeline once and not when run again: it keeps state between races",
            simulate(make_strategy, found, commit="end"),
        )
        raise AssertionError(_message(label, flaky[2], flaky[0], flaky[1])) from None
    verdict = judge(make_strategy, found, allow_give_up)
    if verdict is None:  # pragma: no cover - find() only returns examples that break a rule
        raise AssertionError(f"{label} broke a rule only once on this timeline (not deterministic?):\n{found!r}")
    rule, detail, sim = verdict
    raise AssertionError(_message(label, sim, rule, detail))


def judge(
    make_strategy: Callable[[RaceSpec], Any], scenario: Scenario, allow_give_up: bool = False
) -> tuple[str, str, Simulation] | None:
    """The rule one timeline breaks, ``(rule, what happened, the simulation)``, or ``None``.

    Runs it twice, on fresh strategy objects under different states of
    Python's ``random``, to check the decisions are the same: a strategy is
    deterministic given its spec and the facts (any randomness is the
    engine's, drawn into the ``RaceSpec``).
    """
    first = _seeded(make_strategy, scenario, _SEEDS[0])
    broken = broken_rule(first, allow_give_up)
    if broken is not None:
        return (*broken, first)
    second = _seeded(make_strategy, scenario, _SEEDS[1])
    a, b = first.decision_log(limit=MAX_DECISIONS + 1), second.decision_log(limit=MAX_DECISIONS + 1)
    if a != b:
        return (
            "deterministic",
            f"on the same timeline it decided\n    {first.decision_log()}\n  and then, on a fresh instance,\n"
            f"    {second.decision_log()}",
            first,
        )
    return None


#: Two seeds of ``random`` under which a coin flip (``random() < .5``) and a
#: choice among 2, 3 or 4 items all come out differently.
_SEEDS = (1, 5)


def _seeded(make_strategy: Callable[[RaceSpec], Any], scenario: Scenario, seed: int) -> Simulation:
    state = random.getstate()
    random.seed(seed)
    try:
        return simulate(make_strategy, scenario, commit="end")
    finally:
        random.setstate(state)


def _message(label: str, sim: Simulation, rule: str, detail: str) -> str:
    lines = [
        f"{label} broke the rule: {RULES.get(rule, rule)}",
        f"  {detail}",
        f"  {sim.timeline()}",
        "smallest timeline found:",
        *(f"  {line}" for line in sim.scenario.describe().splitlines()),
        f"decisions: {sim.decision_log()}",
        f"replay: simulate({label}, {sim.scenario!r}, commit=\"end\")",
    ]
    return "\n".join(lines)

