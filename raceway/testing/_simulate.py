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
  the deadline is a timeout; a ``Wait`` while no attempt is running and
  none is left to start fails the race (nothing could ever change). With
  attempts left to start it is honoured: a strategy may back off before
  its next start.

Every fact of one instant is observed before ``decide`` is asked about that
instant. When a timer the strategy set (or the deadline) falls on the very
instant of a fact, the model observes the fact first; the real driver may
wake on the timer first, so :attr:`Simulation.ties` lists those instants —
and those within a nanosecond, which floating-point arithmetic on trio's
clock (``t0 + t``) can make equal or swap.

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

#: A timer and a fact closer than this (seconds) count as a tie (see the notes above).
TIE = 1e-9

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
    * ``"exhausted"``: it waited while no attempt was running and none was
      left to start, so the race failed at ``decided_at`` (the driver's
      "every attempt failed");
    * ``"timeout"``: it was still waiting at the deadline;
    * ``"error"``: it broke a rule the driver enforces, or raised: ``rule``
      names the rule, ``reason`` says what happened.

    ``starts`` maps each started attempt to its start time; ``facts`` is every
    fact observed, in order (``Started`` included); ``decisions`` is every
    ``(now, decision)`` the strategy made; ``ties`` the instants where a
    timer and a fact coincided, or nearly (see the module's notes). ``strategy`` is the
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

    def decision_log(self) -> str:
        """Every decision with its time: ``0: Start(0); 0: Wait(1.000); 0.120: Pick(0, ...)``."""
        return "; ".join(f"{fmt_time(t)}: {show_decision(d)}" for t, d in self.decisions)

    def describe(self) -> str:
        """The scenario, the timeline and every decision, several lines."""
        return f"{self.scenario.describe()}\ntimeline: {self.timeline()}\ndecisions: {self.decision_log()}"


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
    """Ends a simulation: how, and why."""

    def __init__(self, outcome: Outcome, reason: str = "", rule: str | None = None) -> None:
        self.outcome: Outcome = outcome
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
    return _Race(strategy, scenario).run()


class _Race:
    """One simulated race: the model of ``raceway._race.Race``."""

    def __init__(self, strategy: Callable[[RaceSpec], Any] | Any, scenario: Scenario) -> None:
        self.make = strategy
        self.scenario = scenario
        self.spec = scenario.spec()
        self.obj: Any = None
        self.success_on = "first_token"
        self.now = 0.0
        self.decisions: list[tuple[float, Decision]] = []
        self.observed: list[Fact] = []
        self.starts: dict[int, float] = {}
        self.ties: list[float] = []
        self.pending: list[tuple[float, int, Fact]] = []  # (time, order, fact): a heap
        self.order = 0  # facts of one instant keep the order they were scheduled in
        # What has happened to each attempt, for the driver's checks.
        self.ended: set[int] = set()
        self.token: set[int] = set()
        self.failed: set[int] = set()
        self.answer: dict[int, str] = {}
        self.winner: int | None = None
        self.cancel_at: float | None = None

    def run(self) -> Simulation:
        try:
            self.begin()
            steps = 0
            while True:
                steps += self.ask()
                if steps > MAX_STEPS:
                    raise _Stop("error", f"decide() was asked {MAX_STEPS} times and never ended the race", "runaway")
        except _Stop as stop:
            return Simulation(
                scenario=self.scenario,
                spec=self.spec,
                strategy=self.obj,
                success_on=self.success_on,
                outcome=stop.outcome,
                winner=self.winner,
                decided_at=self.now,
                cancel_losers_at=self.cancel_at,
                reason=stop.reason,
                rule=stop.rule,
                starts=dict(self.starts),
                facts=tuple(self.observed),
                decisions=tuple(self.decisions),
                ties=tuple(self.ties),
            )

    def begin(self) -> None:
        make = self.make
        try:
            self.obj = make if not isinstance(make, type) and hasattr(make, "decide") else make(self.spec)
        except Exception as exc:
            raise _Stop("error", f"making the strategy raised {_exc(exc)}", "raise") from exc
        self.success_on = str(getattr(self.obj, "success_on", "first_token"))

    def ask(self) -> int:
        """Ask until the strategy waits, then move the clock; or until it ends the race.

        The driver's ``_advance`` and ``_drive`` in one.

        Returns how many times ``decide`` was asked.
        """
        asked = 0
        while True:  # bounded: each turn but the last starts an attempt, and none starts twice
            asked += 1
            try:
                d = self.obj.decide(self.now)
            except Exception as exc:
                raise _Stop("error", f"decide({fmt_time(self.now)}) raised {_exc(exc)}", "raise") from exc
            self.decisions.append((self.now, d))
            kind = type(d)  # exact types, as the driver dispatches
            if kind is Start:
                self.start(self.index_of(d, "started"))
            elif kind is Pick:
                self.pick(self.index_of(d, "picked"), d.cancel_losers_at)
            elif kind is GiveUp:
                raise _Stop("gave_up", str(d.reason))
            elif kind is Wait:
                self.wait(d.until)
                return asked
            else:
                raise _Stop("error", f"decide() returned {d!r}, not Start, Pick, Wait or GiveUp", "decision")

    def index_of(self, d: Start | Pick, verb: str) -> int:
        i = d.index
        n = len(self.scenario.participants)
        if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < n:
            raise _Stop("error", f"{verb} attempt {i!r}, which does not exist ({n} participants)", "range")
        return i

    def start(self, i: int) -> None:
        participant = self.scenario.participants[i]
        if i in self.starts:
            raise _Stop("error", f"started {participant.name} twice", "start_twice")
        self.starts[i] = self.now
        self.observe(Started(i, self.now))
        for fact in participant.facts(i, self.now):
            heapq.heappush(self.pending, (fact.t, self.order, fact))
            self.order += 1

    def pick(self, i: int, cancel_losers_at: float) -> None:
        if self.success_on == "complete":
            succeeded = bool(self.answer.get(i))
        else:
            succeeded = i in self.token and i not in self.failed
        if not succeeded:
            why = "never started" if i not in self.starts else _why_not(i, self.success_on, self.observed)
            raise _Stop("error", f"picked {self.scenario.participants[i].name}, which {why}", "winner")
        self.winner, self.cancel_at = i, float(cancel_losers_at)
        raise _Stop("picked")

    def wait(self, until: float | None) -> None:
        """Move the clock to the next fact or to ``until``, never past the deadline; facts first on a tie."""
        deadline = self.spec.deadline
        if self.now >= deadline:
            raise _Stop("timeout", "the deadline passed")
        if len(self.starts) == len(self.scenario.participants) and all(i in self.ended for i in self.starts):
            raise _Stop("exhausted", "it waited with no attempt running and none left to start")
        wake = deadline if until is None or until <= self.now else min(until, deadline)
        next_fact = self.pending[0][0] if self.pending else math.inf
        if abs(next_fact - wake) <= TIE:
            self.ties.append(wake)
        if next_fact > wake:
            self.now = wake
            return
        self.now = next_fact
        while self.pending and self.pending[0][0] == next_fact:
            _, _, fact = heapq.heappop(self.pending)
            if isinstance(fact, FirstToken):
                self.token.add(fact.index)
            elif isinstance(fact, Completed):
                self.ended.add(fact.index)
                self.answer[fact.index] = fact.text
                if fact.text:
                    self.token.add(fact.index)
            elif isinstance(fact, Failed):
                self.ended.add(fact.index)
                self.failed.add(fact.index)
            self.observe(fact)

    def observe(self, fact: Fact) -> None:
        self.observed.append(fact)
        try:
            self.obj.observe(fact)
        except Exception as exc:
            raise _Stop("error", f"observe({fact!r}) raised {_exc(exc)}", "raise") from exc


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
