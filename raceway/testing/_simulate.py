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
from typing import Any, Literal

from attrs import frozen

from .._actions import (
    TIE,
    Action,
    Decided,
    Outcome,
    RaceFailed,
    StartAttempt,
    WakeAt,
    describe_exception,
    strategy_error,
)
from .._core import RaceCore
from .._strategy import (
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
from ._scenario import Participant, Scenario, fmt_time


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

    Failovers: the simulation plays the race as ``engine.complete()`` does,
    where nothing is committed before the end, so a winner whose script
    fails after its token ("answers then fails") breaks, and the core fails
    over (see ``raceway._core.RaceCore.winner_broke``). ``failovers`` lists
    each ``(time, attempt)`` that broke; a restarted participant gets a new
    attempt index, and ``origin[i]`` is attempt ``i``'s participant.
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
    failovers: tuple[tuple[float, int], ...] = ()
    origin: tuple[int, ...] = ()

    @property
    def failed(self) -> bool:
        """The race ended without a winner (for any reason)."""
        return self.outcome != "picked"

    @property
    def deadline(self) -> float:
        """When the last decision was due: the spec's deadline, or that long after the last failover."""
        return self.spec.deadline + (self.failovers[-1][0] if self.failovers else 0.0)

    def participant(self, i: int) -> Participant:
        """Attempt ``i``'s participant (a failover restart is a new attempt of an earlier one)."""
        return self.scenario.participants[self.origin[i] if i < len(self.origin) else i]

    @property
    def winner_name(self) -> str | None:
        """The winner's participant name, if there is one."""
        return None if self.winner is None else self.participant(self.winner).name

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
        broke = {i for _, i in self.failovers}
        for f in self.facts:
            mine = per[self.origin[f.index] if f.index < len(self.origin) else f.index]
            if isinstance(f, Started):
                again = f.index >= len(self.scenario.participants)
                mine.append(f"{'restart' if again else 'start'} {fmt_time(f.t)}")
            elif isinstance(f, FirstToken):
                mine.append(f"token {fmt_time(f.t)}")
            elif isinstance(f, Completed):
                mine.append(f"complete {fmt_time(f.t)}" + ("" if f.text else " (empty)"))
            else:
                mine.append(f"{'break' if f.index in broke else 'fail'} {fmt_time(f.t)}")
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

    def decision_log(self, limit: int = 40) -> str:
        """Every decision with its time: ``0: Start(0); 0: Wait(1.000); 0.120: Pick(0, ...)``.

        More than ``limit`` decisions (a runaway strategy) are summarised: the
        first ones, how many were left out, the last ones.
        """
        shown = [f"{fmt_time(t)}: {show_decision(d)}" for t, d in self.decisions]
        if len(shown) > limit:
            head, tail = shown[: limit - 10], shown[-10:]
            shown = [*head, f"... {len(self.decisions) - len(head) - len(tail)} more ...", *tail]
        return "; ".join(shown)

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


def simulate(
    strategy: Callable[[RaceSpec], Any] | Any,
    scenario: Scenario,
    *,
    commit: Literal["first_chunk", "end"] = "first_chunk",
) -> Simulation:
    """Run ``strategy`` on ``scenario`` on a virtual clock and return what it did.

    Args:
        strategy: a callable taking a :class:`~raceway.RaceSpec` and returning
            a strategy (a :class:`~raceway.Strategy` subclass is one), called
            with ``scenario.spec()``; or a strategy object already built for
            that spec.
        scenario: the race timeline.
        commit: when the winner's answer is committed. ``"first_chunk"`` (as
            ``engine.stream()``): the race ends at the strategy's decision.
            ``"end"`` (as ``engine.complete()``): a winner whose script
            fails after its token breaks before the commit, and the core
            fails over (see :class:`Simulation`); ``check_strategy`` uses it.

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
            run.start(core, action.index, now)
        elif isinstance(action, WakeAt):
            now = run.advance(core, action.until)
        elif isinstance(action, Decided) and commit == "end" and run.breaks(action.index):
            run.cancel_losers(core, action)
            now = run.advance(core, math.inf)  # to the winner's break (and the facts before it)
        else:
            return run.ended(obj, core, action)


class _Cancel:
    """A loser stopped by the driver at the end of the grace window (a heap entry, not a fact)."""

    __slots__ = ("index", "t")

    def __init__(self, index: int, t: float) -> None:
        self.index = index
        self.t = t


class _Run:
    """What one simulated race has seen: the heap of facts to come, and the record so far."""

    def __init__(self, scenario: Scenario, spec: RaceSpec) -> None:
        self.scenario = scenario
        self.spec = spec
        self.decisions: list[tuple[float, Decision]] = []
        self.observed: list[Fact] = []
        self.starts: dict[int, float] = {}
        self.ties: list[float] = []
        self.pending: list[tuple[float, int, Any]] = []  # (time, order, fact): a heap
        self.order = 0  # facts of one instant keep the order they were scheduled in
        self.cancelled: set[int] = set()  # losers stopped at the end of the grace window
        self.cancel_at: dict[int, float] = {}  # when each running loser is due to stop
        self.failovers: list[tuple[float, int]] = []

    def start(self, core: RaceCore, i: int, now: float) -> None:
        self.starts[i] = now
        self.observed.append(Started(i, now))
        for fact in self.scenario.participants[core.origin[i]].facts(i, now):
            self._schedule(fact.t, fact)

    def _schedule(self, t: float, event: Fact | _Cancel) -> None:
        heapq.heappush(self.pending, (t, self.order, event))
        self.order += 1

    def breaks(self, i: int) -> bool:
        """Whether the winner ``i`` fails later (its break, before the end: nothing was committed)."""
        return any(isinstance(f, Failed) and f.index == i for _, _, f in self.pending)

    def cancel_losers(self, core: RaceCore, decided: Decided) -> None:
        """Losers still running stop at the end of the grace window, as the driver does; never the winner."""
        self.cancel_at.pop(decided.index, None)
        running = {f.index for _, _, f in self.pending if not isinstance(f, _Cancel)} - {decided.index}
        for i in running - self.cancelled:
            self.cancel_at[i] = decided.cancel_losers_at
            self._schedule(decided.cancel_losers_at, _Cancel(i, decided.cancel_losers_at))

    def advance(self, core: RaceCore, wake: float) -> float:
        """Move the clock to the next fact or to ``wake``; tell the core every fact of that instant."""
        pending = self.pending
        next_fact = pending[0][0] if pending else math.inf
        if abs(next_fact - wake) <= TIE:
            self.ties.append(wake)
        if next_fact > wake:
            return wake
        winner = core.outcome.index if isinstance(core.outcome, Decided) else None
        while pending and pending[0][0] == next_fact:
            _, _, fact = heapq.heappop(pending)
            if fact.index in self.cancelled:
                continue
            if isinstance(fact, _Cancel):
                if self.cancel_at.get(fact.index) == fact.t:  # not since made the winner
                    self.cancelled.add(fact.index)
                    core.cancelled(fact.index, fact.t)
                continue
            self.observed.append(fact)
            if isinstance(fact, FirstToken):
                core.first_token(fact.index, fact.t)
            elif isinstance(fact, Completed):
                core.completed(fact.index, fact.t, fact.text, fact.finish_reason)
            elif fact.index == winner:
                core.winner_broke(fact.t, fact.kind)
                self.failovers.append((fact.t, fact.index))
                winner = None
            else:
                core.failed(fact.index, fact.t, fact.kind)
        return next_fact

    def ended(self, obj: Any, core: RaceCore | str, action: Action) -> Simulation:
        success_on = core if isinstance(core, str) else core.success_on
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
            failovers=() if isinstance(core, str) else tuple(core.broken),
            origin=() if isinstance(core, str) else tuple(core.origin),
        )



