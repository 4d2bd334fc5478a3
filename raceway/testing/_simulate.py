"""The simulator: one strategy, one scenario, a virtual clock, the engine's race core.

:func:`simulate` drives ``raceway._core.RaceCore`` — the very state machine
the trio driver (``raceway._race``) runs — with a heap of scripted facts
instead of tasks and sockets. So the rules are applied once, the same way
in both: what the kit proves about a strategy is what the engine does.

The loop: ask the core what to do at ``now``. ``StartAttempt(i)``: attempt
``i`` starts, its script's facts (times from now) go on the heap, ask again.
``WakeAt(t)``: move the clock to the next fact or to ``t``, whichever comes
first, and tell the core every fact of that instant before asking again.
``Decided`` or ``RaceFailed``: the race is over.

When a timer (a strategy's wait, or the deadline) falls on the very instant
of a fact, the simulator tells the fact first; trio may wake the driver on
the timer first, so :attr:`Simulation.ties` lists those instants — and those
within a nanosecond, which floating-point arithmetic on trio's clock
(``t0 + t``) can make equal or swap.

A strategy that breaks a rule the core enforces (starting an attempt twice,
picking one that has not succeeded, an index out of range, a decision that
is not a decision, a missing method, a runaway) or raises ends the
simulation with outcome ``"error"`` and the rule's id: under the engine,
that race fails with a ``StrategyError`` carrying the same rule.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from typing import Any

from attrs import frozen

from .._core import (
    TIE,
    Action,
    Decided,
    Outcome,
    RaceCore,
    RaceFailed,
    StartAttempt,
    WakeAt,
    describe_exception,
    strategy_error,
)
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
        if d.cancel_losers_at is None:
            return f"Pick({d.index})"
        return f"Pick({d.index}, cancel_losers_at={fmt_time(d.cancel_losers_at)})"
    if isinstance(d, Wait):
        return "Wait()" if d.until is None else f"Wait({fmt_time(d.until)})"
    if isinstance(d, GiveUp):
        return f"GiveUp({d.reason!r})"
    return repr(d)


def simulate(strategy: Callable[[RaceSpec], Any] | Any, scenario: Scenario) -> Simulation:
    """Run ``strategy`` on ``scenario`` on a virtual clock and return what it did.

    Args:
        strategy: a callable taking a :class:`~raceway.RaceSpec` and returning
            a strategy (a :class:`~raceway.Strategy` subclass is one), called
            with ``scenario.spec()``; or a strategy object already built for
            that spec.
        scenario: the race timeline.

    Returns:
        A :class:`Simulation`. The strategy's exceptions and broken rules do
        not propagate: they are its ``"error"`` outcome.
    """
    spec = scenario.spec()
    run = _Run(scenario, spec)
    try:
        obj = strategy if not isinstance(strategy, type) and hasattr(strategy, "decide") else strategy(spec)
    except Exception as exc:
        error = strategy_error("raise", f"making the strategy raised {describe_exception(exc)}", exc)
        return run.ended(None, "first_token", RaceFailed("error", str(error), 0.0, error))
    core = RaceCore(obj, spec, 0.0, log=run.decisions)
    now = 0.0
    while True:
        action = core.next(now)
        if isinstance(action, StartAttempt):
            run.start(action.index, now)
        elif isinstance(action, WakeAt):
            now = run.advance(core, now, action.until)
        else:
            return run.ended(obj, core.success_on, action)


class _Run:
    """What one simulated race has seen: the heap of facts to come, and the record so far."""

    def __init__(self, scenario: Scenario, spec: RaceSpec) -> None:
        self.scenario = scenario
        self.spec = spec
        self.decisions: list[tuple[float, Decision]] = []
        self.observed: list[Fact] = []
        self.starts: dict[int, float] = {}
        self.ties: list[float] = []
        self.pending: list[tuple[float, int, Fact]] = []  # (time, order, fact): a heap
        self.order = 0  # facts of one instant keep the order they were scheduled in

    def start(self, i: int, now: float) -> None:
        self.starts[i] = now
        self.observed.append(Started(i, now))
        for fact in self.scenario.participants[i].facts(i, now):
            heapq.heappush(self.pending, (fact.t, self.order, fact))
            self.order += 1

    def advance(self, core: RaceCore, now: float, wake: float) -> float:
        """Move the clock to the next fact or to ``wake``; tell the core every fact of that instant."""
        pending = self.pending
        next_fact = pending[0][0] if pending else math.inf
        if abs(next_fact - wake) <= TIE:
            self.ties.append(wake)
        if next_fact > wake:
            return wake
        while pending and pending[0][0] == next_fact:
            _, _, fact = heapq.heappop(pending)
            self.observed.append(fact)
            if isinstance(fact, FirstToken):
                core.first_token(fact.index, fact.t)
            elif isinstance(fact, Completed):
                core.completed(fact.index, fact.t, fact.text, fact.finish_reason)
            elif isinstance(fact, Failed):
                core.failed(fact.index, fact.t, fact.kind)
        return next_fact

    def ended(self, obj: Any, success_on: str, action: Action) -> Simulation:
        if isinstance(action, Decided):
            outcome: Outcome = "picked"
            winner: int | None = action.index
            cancel: float | None = action.cancel_losers_at
            reason, rule = "", None
        else:
            assert isinstance(action, RaceFailed)
            outcome, winner, cancel, reason = action.outcome, None, None, action.reason
            rule = None if action.error is None else action.error.rule
        return Simulation(
            scenario=self.scenario,
            spec=self.spec,
            strategy=obj,
            success_on=str(success_on),
            outcome=outcome,
            winner=winner,
            decided_at=action.at,
            cancel_losers_at=cancel,
            reason=reason,
            rule=rule,
            starts=dict(self.starts),
            facts=tuple(self.observed),
            decisions=tuple(self.decisions),
            ties=tuple(self.ties),
        )



