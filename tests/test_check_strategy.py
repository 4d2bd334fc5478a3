"""Broken strategies are caught: check_strategy names the rule and shows the smallest timeline."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import strategies as st

from raceway import Decision, FirstWins, GiveUp, Pick, RaceSpec, Start, Strategy, Wait
from raceway.testing import Participant, Scenario, check_strategy, simulate

# "a: start 0, fail 0.050 | b: start 0, token 0.120 -> picked a ..." — the readable timeline.
TIMELINE = re.compile(r"\b[a-z]: (start [0-9.]+|not started)[^\n]* -> ")


def broken(strategy: Any, **kwargs: Any) -> str:
    with pytest.raises(AssertionError) as info:
        check_strategy(strategy, **kwargs)
    message = str(info.value)
    assert TIMELINE.search(message), message
    assert "smallest timeline found:" in message and "replay: simulate(" in message
    return message


def shown(message: str, pattern: str) -> str:
    """The participant the message names in ``pattern``'s group."""
    found = re.search(pattern, message)
    assert found, f"{pattern!r} not in:\n{message}"
    return found.group(1)


class PicksAFailedAttempt(FirstWins):
    """Picks whatever failed first, as if an error were an answer."""

    def decide(self, now: float) -> Decision:
        for i, a in enumerate(self.attempts):
            if a.failed is not None:
                return Pick(i, now)
        return super().decide(now)


class StartsTwice(FirstWins):
    """Retries a failed attempt by starting it again."""

    def decide(self, now: float) -> Decision:
        for i, a in enumerate(self.attempts):
            if a.failed is not None:
                return Start(i)
        return super().decide(now)


class DecidesAfterTheDeadline(FirstWins):
    """Holds every answer for half a second past the deadline before picking it."""

    def decide(self, now: float) -> Decision:
        decision = super().decide(now)
        late = self.spec.deadline + 0.5
        if isinstance(decision, Pick) and now < late:
            return Wait(late)
        return decision


class GivesUpWithAnAnswer(FirstWins):
    """Gives up the moment it has an answer."""

    def decide(self, now: float) -> Decision:
        if self.successes():
            return GiveUp("not good enough")
        return super().decide(now)


def test_picking_a_failed_attempt_is_caught() -> None:
    message = broken(PicksAFailedAttempt)
    assert "broke the rule: a winner is an attempt that started and succeeded" in message
    # Whoever it picked is shown failing in the timeline, then picked.
    name = shown(message, r"picked ([a-z]), which failed at")
    assert re.search(rf"\b{name}: start [0-9.]+[^|]*, fail [0-9.]+", message), message


def test_starting_an_attempt_twice_is_caught() -> None:
    message = broken(StartsTwice)
    assert "broke the rule: nothing starts twice" in message
    name = shown(message, r"-> strategy error at [0-9.]+: started ([a-z]) twice")
    assert re.search(rf"\b{name}: start [0-9.]+[^|]*, fail [0-9.]+", message), message


def test_deciding_after_the_deadline_is_caught() -> None:
    message = broken(DecidesAfterTheDeadline)
    assert "broke the rule: the decision never comes after the deadline" in message
    name = shown(message, r"with ([a-z])'s answer in hand since")
    assert re.search(rf"\b{name}: start [0-9.]+, token [0-9.]+", message), message
    assert re.search(r"until [0-9.]+: its decision would come after the deadline", message), message


def test_giving_up_with_a_success_in_hand_is_caught() -> None:
    message = broken(GivesUpWithAnAnswer)
    assert "broke the rule: when an attempt succeeds before the deadline, the race does not fail" in message
    name = shown(message, r"although ([a-z]) had succeeded")
    assert re.search(rf"\b{name}: start [0-9.]+, token [0-9.]+", message), message
    assert re.search(r"-> gave up at [0-9.]+: not good enough", message), message


def test_giving_up_is_allowed_when_asked() -> None:
    check_strategy(GivesUpWithAnAnswer, allow_give_up=True)


def test_a_strategy_that_raises_is_caught() -> None:
    class Crashes(FirstWins):
        def decide(self, now: float) -> Decision:
            if any(a.failed is not None for a in self.attempts):
                raise KeyError("oops")
            return super().decide(now)

    message = broken(Crashes)
    assert "never raise" in message and "raised KeyError: 'oops'" in message


def test_a_decision_that_is_not_a_decision_is_caught() -> None:
    class ReturnsNone(FirstWins):
        def decide(self, now: float) -> Any:
            return None if now > 0 else super().decide(now)

    message = broken(ReturnsNone)
    assert "decide() returns only Start, Pick, Wait or GiveUp" in message
    assert "returned None" in message


def test_an_index_out_of_range_is_caught() -> None:
    class OffByOne(FirstWins):
        def decide(self, now: float) -> Decision:
            if not self.not_started() and not self.successes():
                return Pick(len(self.attempts), now)
            return super().decide(now)

    message = broken(OffByOne)
    assert "Start and Pick name an attempt that exists" in message
    assert re.search(r"picked attempt (\d+), which does not exist \(\1 participants\)", message), message


def test_a_strategy_that_never_ends_the_race_is_caught() -> None:
    class Dawdles(Strategy):
        def decide(self, now: float) -> Decision:
            if self.not_started():
                return Start(self.not_started()[0])
            return Wait(now + 1e-9)

    # One fixed timeline is enough (and each run is 10,000 decisions long).
    one = Scenario(participants=(Participant(name="a"),))
    message = broken(Dawdles, allow_give_up=True, scenarios=st.just(one))
    assert "the race ends" in message and "a: start 0 -> strategy error" in message


def test_a_check_needs_a_maker_not_an_instance() -> None:
    spec = Scenario(participants=(Participant(name="a"),)).spec()
    with pytest.raises(TypeError, match="fresh strategy"):
        check_strategy(FirstWins(spec))  # type: ignore[arg-type]


def test_max_examples_bounds_the_work() -> None:
    made = 0

    def counting(spec: RaceSpec) -> FirstWins:
        nonlocal made
        made += 1
        return FirstWins(spec)

    check_strategy(counting, max_examples=7)
    assert 1 <= made <= 14  # two fresh instances per timeline: the determinism check


def test_simulate_takes_a_built_strategy_too() -> None:
    scenario = Scenario(participants=(Participant(name="a", ttft=0.1, end=0.2),))
    by_class = simulate(FirstWins, scenario)
    by_object = simulate(FirstWins(scenario.spec()), scenario)
    assert by_class.decisions == by_object.decisions
    assert by_object.timeline() == "a: start 0, token 0.100 -> picked a at 0.100 (losers cancelled at 0.350)"


def test_importing_the_kit_without_hypothesis_says_what_to_install() -> None:
    code = (
        "import sys; sys.modules['hypothesis'] = None\n"
        "try:\n"
        "    import raceway.testing\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "raceway.testing needs hypothesis" in out and "pip install 'raceway[testing]'" in out


class GivesUpAtTheFirstFailure(FirstWins):
    def decide(self, now: float) -> Decision:
        if any(a.failed is not None for a in self.attempts) and not self.successes():
            return GiveUp("one failed: give up")
        return super().decide(now)


def test_giving_up_before_a_started_attempt_could_answer_is_caught() -> None:
    with pytest.raises(AssertionError) as info:
        check_strategy(GivesUpAtTheFirstFailure)
    message = str(info.value)
    assert "when an attempt succeeds before the deadline, the race does not fail" in message
    assert "would have succeeded at" in message
