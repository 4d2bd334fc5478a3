"""The model of the race driver: one strategy, one scenario, a virtual clock.

:func:`simulate` does what ``raceway._race.Race`` does, minus trio and I/O.
It asks the strategy ``decide(now)`` and applies the answers the way the
driver does:

* ``Start(i)``: attempt ``i`` starts now (its script's times count from
  here), the strategy observes ``Started(i, now)`` and is asked again at
  once;
* ``Pick(i, cancel_losers_at)``: the race is decided; ``i`` must have
  started and succeeded (its first token and no failure; for a strategy whose
  ``success_on`` is ``"complete"``, a complete non-empty answer);
* ``GiveUp(reason)``: the race fails;
* ``Wait(until)``: the clock moves to the next fact or to ``until``,
  whichever comes first, but never past the deadline (``until`` of ``None``
  or not after ``now`` means "until the next fact"). A ``Wait`` at or after
  the deadline is a timeout; a ``Wait`` while no attempt is running fails
  the race (nothing could ever wake the strategy).

Every fact of one instant is observed before ``decide`` is asked about that
instant. When a timer the strategy set (or the deadline) falls on the very
instant of a fact, the model observes the fact first; the real driver may
wake on the timer first, so :attr:`Simulation.ties` lists those instants.

A strategy that breaks a rule the driver enforces (starting an attempt
twice, picking one that has not succeeded, an index out of range, a
decision that is not a decision) or raises ends the simulation with outcome
``"error"``: under the engine, that race would fail with ``StrategyError``
or the strategy's exception.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from typing import Any, Literal, TypeAlias

from attrs import frozen

from .._strategies import (
    Completed,
    Decision,
    Fact,
    Failed,
    FirstToken,
    GiveUp,
    Pick,
    RaceSpec,
    Start,
    Started,
    Wait,
)
from ._scenario import Scenario, fmt_time

Outcome: TypeAlias = Literal["picked", "gave_up", "exhausted", "timeout", "error"]

#: More ``decide`` calls than this in one race means the strategy never ends it
#: (say, ``Wait`` until a hair after ``now``, forever).
MAX_STEPS = 10_000


@frozen(kw_only=True)
class Simulation:
    """What a strategy did on one scenario.

    ``outcome`` is one of:

    * ``"picked"``: ``winner`` won at ``decided_at``; losers may run until
      ``cancel_losers_at``;
    * ``"gave_up"``: the strategy answered ``GiveUp(reason)`` at ``decided_at``;
    * ``"exhausted"``: it waited while no attempt was running, so the race
      failed at ``decided_at`` (the driver's "every attempt failed");
    * ``"timeout"``: it was still waiting at the deadline;
    * ``"error"``: it broke a rule the driver enforces, or raised: ``rule``
      names the rule, ``reason`` says what happened.

    ``starts`` maps each started attempt to its start time; ``facts`` is every
    fact observed, in order (``Started`` included); ``decisions`` is every
    ``(now, decision)`` the strategy made; ``ties`` the instants where a
    timer and a fact coincided (see the module's notes). ``strategy`` is the
    strategy object after the race and ``spec`` the :class:`~raceway.RaceSpec`
    it was given (its budget shows what hedging spent).
    """

    scenario: Scenario
    spec: RaceSpec
    strategy: Any
    success_on: str
    outcome: Outcome
    winner: int | None
    decided_at: float
    cancel_losers_at: float | None
    reason: str
    rule: str | None
    starts: dict[int, float]
    facts: tuple[Fact, ...]
    decisions: tuple[tuple[float, Decision], ...]
    ties: tuple[float, ...]

    @property
    def failed(self) -> bool:
        """The race ended without a winner (for any reason)."""
        return self.outcome != "picked"

    @property
    def winner_name(self) -> str | None:
        """The winner's participant name, if there is one."""
        return None if self.winner is None else self.scenario.participants[self.winner].name

    def success_time(self, i: int) -> float | None:
        """When attempt ``i`` succeeded by the strategy's rule, if it had by the end.

        ``None`` also when it succeeded but then failed (a first token
        followed by an error before the decision is no longer a success).
        """
        token = done = failed = None
        text = ""
        for f in self.facts:
            if f.index != i:
                continue
            if isinstance(f, FirstToken):
                token = f.t
            elif isinstance(f, Completed):
                done, text = f.t, f.text
                if token is None and text:
                    token = f.t
            elif isinstance(f, Failed):
                failed = f.t
        if self.success_on == "complete":
            return done if done is not None and text else None
        return token if failed is None else None

    def in_hand(self) -> list[int]:
        """Attempts that were successes when the race ended, earliest first."""
        found = [(t, i) for i in self.starts if (t := self.success_time(i)) is not None]
        return [i for _, i in sorted(found)]

    def timeline(self) -> str:
        """One line: what each participant did, then how the race ended.

        For example ``a: start 0, fail 0.050 | b: start 0, token 0.120 -> picked b at 0.120``.
        """
        per: list[list[str]] = [[] for _ in self.scenario.participants]
        for f in self.facts:
            if isinstance(f, Started):
                per[f.index].append(f"start {fmt_time(f.t)}")
            elif isinstance(f, FirstToken):
                per[f.index].append(f"token {fmt_time(f.t)}")
            elif isinstance(f, Completed):
                per[f.index].append(f"complete {fmt_time(f.t)}" + ("" if f.text else " (empty)"))
            else:
                per[f.index].append(f"fail {fmt_time(f.t)}")
        names = [p.name for p in self.scenario.participants]
        lines = [f"{name}: {', '.join(events) or 'not started'}" for name, events in zip(names, per, strict=True)]
        return " | ".join(lines) + " -> " + self.ending()

    def ending(self) -> str:
        """How the race ended, in words: ``picked b at 0.120``, ``timed out at 1.000``..."""
        at = fmt_time(self.decided_at)
        if self.outcome == "picked":
            assert self.winner is not None
            cancel = self.cancel_losers_at
            tail = "" if cancel is None else f" (losers cancelled at {fmt_time(max(cancel, self.decided_at))})"
            return f"picked {self.winner_name} at {at}{tail}"
        if self.outcome == "gave_up":
            return f"gave up at {at}: {self.reason}"
        if self.outcome == "exhausted":
            return f"failed at {at}: waited with no attempt running"
        if self.outcome == "timeout":
            return f"timed out at {at} (the deadline)"
        return f"strategy error at {at}: {self.reason}"

    def describe(self) -> str:
        """The scenario, the timeline and every decision, several lines."""
        decisions = "; ".join(f"{fmt_time(t)}: {show_decision(d)}" for t, d in self.decisions)
        return "\n".join(
            [
                self.scenario.describe(),
                f"timeline: {self.timeline()}",
                f"decisions: {decisions}",
            ]
        )


def show_decision(d: object) -> str:
    if isinstance(d, Start):
        return f"Start({d.index})"
    if isinstance(d, Pick):
        return f"Pick({d.index}, cancel_losers_at={fmt_time(d.cancel_losers_at)})"
    if isinstance(d, Wait):
        return "Wait()" if d.until is None else f"Wait({fmt_time(d.until)})"
    if isinstance(d, GiveUp):
        return f"GiveUp({d.reason!r})"
    return repr(d)


class _Stop(Exception):
    """Ends a simulation: carries the outcome fields."""

    def __init__(self, outcome: Outcome, now: float, reason: str = "", rule: str | None = None) -> None:
        self.outcome: Outcome = outcome
        self.now = now
        self.reason = reason
        self.rule = rule


def simulate(strategy: Callable[[RaceSpec], Any] | Any, scenario: Scenario) -> Simulation:
    """Run ``strategy`` on ``scenario`` on a virtual clock and return what it did.

    Args:
        strategy: a callable taking a :class:`~raceway.RaceSpec` and returning
            a strategy (a :class:`~raceway.Strategy` subclass is one), called
            with ``scenario.spec()``; or a strategy object already built for
            that spec.
        scenario: the race timeline.

    Returns:
        A :class:`Simulation`. The strategy's exceptions and broken driver
        rules do not propagate: they are its ``"error"`` outcome.
    """
    spec = scenario.spec()
    participants = scenario.participants
    n = len(participants)
    decisions: list[tuple[float, Decision]] = []
    observed: list[Fact] = []
    starts: dict[int, float] = {}
    ended: set[int] = set()
    token: set[int] = set()
    failed: set[int] = set()
    complete_text: dict[int, str] = {}
    ties: list[float] = []
    pending: list[tuple[float, int, Fact]] = []  # (time, order, fact): a heap
    order = 0
    winner: int | None = None
    cancel_at: float | None = None
    reason = ""
    now = 0.0

    try:
        obj: Any = strategy if not isinstance(strategy, type) and hasattr(strategy, "decide") else strategy(spec)
    except Exception as exc:
        return _result(scenario, spec, None, "first_token", "error", 0.0, f"making the strategy raised {_exc(exc)}",
                       "raise", decisions, observed, starts, ties)
    success_on = str(getattr(obj, "success_on", "first_token"))

    def observe(fact: Fact) -> None:
        observed.append(fact)
        try:
            obj.observe(fact)
        except Exception as exc:
            raise _Stop("error", now, f"observe({fact!r}) raised {_exc(exc)}", "raise") from exc

    def succeeded(i: int) -> bool:
        if success_on == "complete":
            return bool(complete_text.get(i))
        return i in token and i not in failed

    def index_of(d: Start | Pick, verb: str) -> int:
        i = d.index
        if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < n:
            raise _Stop("error", now, f"{verb} attempt {i!r}, which does not exist ({n} participants)", "range")
        return i

    try:
        steps = 0
        while True:
            # Ask until the strategy waits or ends the race (the driver's _advance).
            while True:
                steps += 1
                if steps > MAX_STEPS:
                    raise _Stop("error", now, f"decide() was asked {MAX_STEPS} times and never ended the race",
                                "runaway")
                try:
                    d = obj.decide(now)
                except Exception as exc:
                    raise _Stop("error", now, f"decide({fmt_time(now)}) raised {_exc(exc)}", "raise") from exc
                decisions.append((now, d))
                kind = type(d)
                if kind is Start:
                    assert isinstance(d, Start)
                    i = index_of(d, "started")
                    if i in starts:
                        raise _Stop("error", now, f"started {participants[i].name} twice", "start_twice")
                    starts[i] = now
                    observe(Started(i, now))
                    for fact in participants[i].facts(i, now):
                        heapq.heappush(pending, (fact.t, order, fact))
                        order += 1
                    continue
                if kind is Pick:
                    assert isinstance(d, Pick)
                    i = index_of(d, "picked")
                    if not succeeded(i):
                        name = participants[i].name
                        why = "never started" if i not in starts else _why_not(i, success_on, observed)
                        raise _Stop("error", now, f"picked {name}, which {why}", "winner")
                    winner, cancel_at = i, float(d.cancel_losers_at)
                    raise _Stop("picked", now)
                if kind is GiveUp:
                    assert isinstance(d, GiveUp)
                    reason = str(d.reason)
                    raise _Stop("gave_up", now, reason)
                if kind is not Wait:
                    raise _Stop("error", now, f"decide() returned {d!r}, not Start, Pick, Wait or GiveUp",
                                "decision")
                assert isinstance(d, Wait)
                until = d.until
                if now >= spec.deadline:
                    raise _Stop("timeout", now, "the deadline passed")
                if all(i in ended for i in starts):
                    raise _Stop("exhausted", now, "it waited with no attempt running")
                wake = spec.deadline if until is None or until <= now else min(until, spec.deadline)
                break
            # Move the clock: to the next fact, or to the timer (facts first on a tie).
            next_fact = pending[0][0] if pending else math.inf
            if next_fact <= wake:
                if next_fact == wake:
                    ties.append(wake)
                now = next_fact
                while pending and pending[0][0] == now:
                    _, _, fact = heapq.heappop(pending)
                    if isinstance(fact, FirstToken):
                        token.add(fact.index)
                    elif isinstance(fact, Completed):
                        ended.add(fact.index)
                        complete_text[fact.index] = fact.text
                        if fact.text:
                            token.add(fact.index)
                    elif isinstance(fact, Failed):
                        ended.add(fact.index)
                        failed.add(fact.index)
                    observe(fact)
            else:
                now = wake
    except _Stop as stop:
        return _result(scenario, spec, obj, success_on, stop.outcome, stop.now, stop.reason or reason, stop.rule,
                       decisions, observed, starts, ties, winner, cancel_at)


def _result(
    scenario: Scenario,
    spec: RaceSpec,
    obj: Any,
    success_on: str,
    outcome: Outcome,
    now: float,
    reason: str,
    rule: str | None,
    decisions: list[tuple[float, Decision]],
    observed: list[Fact],
    starts: dict[int, float],
    ties: list[float],
    winner: int | None = None,
    cancel_at: float | None = None,
) -> Simulation:
    return Simulation(
        scenario=scenario,
        spec=spec,
        strategy=obj,
        success_on=success_on,
        outcome=outcome,
        winner=winner,
        decided_at=now,
        cancel_losers_at=cancel_at,
        reason=reason,
        rule=rule,
        starts=dict(starts),
        facts=tuple(observed),
        decisions=tuple(decisions),
        ties=tuple(ties),
    )


def _why_not(i: int, success_on: str, observed: list[Fact]) -> str:
    mine = [f for f in observed if f.index == i]
    for f in mine:
        if isinstance(f, Failed):
            return f"failed at {fmt_time(f.t)}"
    if success_on == "complete":
        for f in mine:
            if isinstance(f, Completed):
                return f"completed empty at {fmt_time(f.t)}"
        return "has not completed (the strategy succeeds on complete answers)"
    for f in mine:
        if isinstance(f, Completed):
            return f"completed empty at {fmt_time(f.t)}"
    return "has not produced a token"


def _exc(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
