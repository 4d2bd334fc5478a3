"""The strategy interface: what a race tells a strategy, and what a strategy answers.

(The four built-in strategies are in ``_strategies.py``; the rules are
applied by the race core, ``_core.py``.)

A strategy never touches trio or I/O. The race driver (``_race.py``) tells it
*facts* — :class:`Started`, :class:`FirstToken`, :class:`Completed`,
:class:`Failed`, each stamped with seconds since the race began — through
:meth:`Strategy.observe`, and asks :meth:`Strategy.decide` what to do at time
``now``. The answer is one *decision*:

* :class:`Start` ``(i)`` — start attempt ``i`` now (the driver calls
  ``decide`` again at once, so a strategy starts several attempts by answering
  ``Start`` several times);
* :class:`Pick` ``(i, cancel_losers_at)`` — attempt ``i`` wins; the others
  may run until ``cancel_losers_at`` (the grace window), then are cancelled;
* :class:`Wait` ``(until)`` — nothing to do until ``until`` or the next fact;
* :class:`GiveUp` ``(reason)`` — the race fails.

Because the same object runs under the real engine and under
``raceway.testing.simulate`` on a simulated clock, a strategy can be property
tested without a network. Rules every strategy must keep (checked by
``raceway.testing.check_strategy``): pick only an attempt that started and
succeeded; start nothing twice; decide no later than ``spec.deadline``; and
do not give up while a success is in hand.

Facts at the same instant are all observed before ``decide`` is asked about
that instant.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar, Literal, Protocol, TypeAlias, runtime_checkable

from attrs import define, field, frozen

from ._chunk import ToolCall

# ------------------------------------------------------------------ facts


@frozen(slots=True)
class Started:
    """Attempt ``index`` started at ``t`` seconds."""

    index: int
    t: float


@frozen(slots=True)
class FirstToken:
    """Attempt ``index`` produced its first non-empty token at ``t``."""

    index: int
    t: float


@frozen(slots=True)
class Completed:
    """Attempt ``index`` finished its answer at ``t`` (``text`` and ``tool_calls`` are all of it)."""

    index: int
    t: float
    text: str = ""
    finish_reason: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()


@frozen(slots=True)
class Failed:
    """Attempt ``index`` failed at ``t``; ``kind`` is the error's short label."""

    index: int
    t: float
    kind: str = "error"


Fact: TypeAlias = Started | FirstToken | Completed | Failed

# -------------------------------------------------------------- decisions


@frozen(slots=True)
class Start:
    """Start attempt ``index`` now."""

    index: int


@frozen(slots=True)
class Pick:
    """Attempt ``index`` wins; losers may run until ``cancel_losers_at`` seconds.

    ``cancel_losers_at`` of ``None`` (the default), or a time not after the
    decision, cancels the losers at once.
    """

    index: int
    cancel_losers_at: float | None = None


@frozen(slots=True)
class Wait:
    """Nothing to do until ``until`` seconds (``None``: until the next fact)."""

    until: float | None = None


@frozen(slots=True)
class GiveUp:
    """The race fails."""

    reason: str = "no attempt succeeded"


Decision: TypeAlias = Start | Pick | Wait | GiveUp

# ------------------------------------------------------------ what a race is


@frozen(kw_only=True)
class Contender:
    """One participant as a strategy sees it.

    ``score`` is the performance tracker's score in [0, 1] (0.5 when nothing
    is known; for ``weighted`` and ``hedged`` a Thompson draw made by the
    engine, see ``_tracker.py``); ``hedge_delay`` is how long ``hedged`` waits
    for this participant's first token before starting the next one;
    ``ttft_estimate`` (seconds, ``None``: unknown) is the engine's draw of its
    TTFT, by which ``hedged`` orders equal priorities.
    """

    index: int
    provider: str
    model: str = ""
    priority: int = 0
    weight: float = 1.0
    score: float = 0.5
    hedge_delay: float = 1.0
    ttft_estimate: float | None = None


@frozen(kw_only=True)
class Answer:
    """A complete answer, as a quality scorer sees it.

    ``wants_json``: the request asked for JSON output (``response_format``).
    """

    text: str
    finish_reason: str | None
    provider: str
    model: str
    ttft: float | None
    total: float
    tool_calls: tuple[ToolCall, ...] = ()
    wants_json: bool = False


@define
class HedgeBudget:
    """Caps hedge attempts at ``max_extra_load`` per race, across races.

    A token bucket: each race deposits ``max_extra_load`` (the engine calls
    :meth:`deposit`), each hedge spends one. It starts full with ``reserve``
    tokens, so that a cold engine can hedge its first race through three
    providers, and never holds more: over ``n`` races at most
    ``reserve + max_extra_load × n`` hedges start. ``max_extra_load`` of 0
    turns hedging on delay off (failover after a failure is not extra load
    and is always allowed).
    """

    max_extra_load: float = 0.1
    reserve: float = 2.0
    balance: float = field(default=math.nan)

    def __attrs_post_init__(self) -> None:
        if math.isnan(self.balance):
            self.balance = self.reserve if self.max_extra_load > 0 else 0.0

    def deposit(self) -> None:
        """One race began: add its share."""
        self.balance = min(self.reserve, self.balance + self.max_extra_load)

    def try_spend(self) -> bool:
        """Take one hedge if the budget allows it."""
        if self.max_extra_load > 0 and self.balance >= 1.0:
            self.balance -= 1.0
            return True
        return False


@frozen(kw_only=True)
class RaceSpec:
    """Everything a strategy knows before the race: who, and the time rules.

    Times are seconds from the race's start. ``grace`` is the grace window;
    ``deadline`` is ``timeout_ms``: a winner must be decided by then.
    ``wants_json``: the request asked for JSON output.
    """

    contenders: tuple[Contender, ...]
    deadline: float
    grace: float
    budget: HedgeBudget | None = None
    scorer: Callable[[Answer], float] | None = None
    wants_json: bool = False


@define
class AttemptView:
    """What a strategy has observed about one attempt so far."""

    started: float | None = None
    first_token: float | None = None
    completed: float | None = None
    failed: float | None = None
    text: str = ""
    finish_reason: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()

    @property
    def running(self) -> bool:
        """Started, and neither completed nor failed."""
        return self.started is not None and self.completed is None and self.failed is None


# ------------------------------------------------------------ the protocol


@runtime_checkable
class StrategyProtocol(Protocol):
    """What the race core needs of a strategy: ``observe`` and ``decide``.

    :class:`Strategy` is the convenient base class, but any object with these
    two methods races. ``success_on`` is optional: ``"first_token"`` (the
    default when absent) or ``"complete"``. An object missing ``observe`` or
    ``decide`` fails its race with a :class:`~raceway.StrategyError` naming
    what is missing (rule ``protocol``), in the engine and in
    ``raceway.testing`` alike.
    """

    def observe(self, fact: Fact, /) -> None:
        """Record one fact (called before ``decide`` is asked about its instant)."""

    def decide(self, now: float, /) -> Decision:
        """What to do at ``now`` (seconds since the race began)."""


# ------------------------------------------------------------ the base class


class Strategy:
    """Base class of strategies. Subclasses implement :meth:`decide`.

    :meth:`observe` keeps ``self.attempts`` (one :class:`AttemptView` per
    contender) up to date; override it only to learn more than that.
    ``success_on`` says what makes an attempt a success: its first token
    (the default) or its complete answer (``quality``).
    """

    name: ClassVar[str] = "custom"
    success_on: ClassVar[Literal["first_token", "complete"]] = "first_token"

    def __init__(self, spec: RaceSpec) -> None:
        self.spec = spec
        self.attempts = [AttemptView() for _ in spec.contenders]

    def observe(self, fact: Fact) -> None:
        """Record one fact."""
        a = self.attempts[fact.index]
        kind = type(fact)
        if kind is Started:  # the exact classes first: this runs for every fact of every race
            a.started = fact.t
        elif kind is FirstToken or isinstance(fact, FirstToken):
            a.first_token = fact.t
        elif isinstance(fact, Completed):
            a.completed = fact.t
            a.text = fact.text
            a.finish_reason = fact.finish_reason
            a.tool_calls = fact.tool_calls
            if a.first_token is None and (fact.text or fact.tool_calls):
                a.first_token = fact.t
        elif isinstance(fact, Failed):
            a.failed = fact.t
        elif isinstance(fact, Started):
            a.started = fact.t
        # Any other fact is news to this base class: ignored, so that facts may grow.

    def decide(self, now: float) -> Decision:
        """What to do at ``now`` (seconds since the race began)."""
        raise NotImplementedError

    # helpers for subclasses ------------------------------------------------

    def success_time(self, i: int) -> float | None:
        """When attempt ``i`` succeeded by ``success_on``'s rule, else ``None``."""
        a = self.attempts[i]
        if self.success_on == "complete":
            return a.completed if a.text or a.tool_calls else None
        return a.first_token if a.failed is None else None

    def successes(self) -> list[int]:
        """Indices of succeeded attempts, earliest first (ties by index)."""
        found = [(t, i) for i in range(len(self.attempts)) if (t := self.success_time(i)) is not None]
        return [i for _, i in sorted(found)]

    def not_started(self) -> list[int]:
        return [i for i, a in enumerate(self.attempts) if a.started is None]

    def any_pending(self) -> bool:
        """Whether some started attempt may still succeed."""
        if self.success_on == "complete":
            return any(a.running for a in self.attempts)
        return any(a.running and a.first_token is None for a in self.attempts)


#: What config names by ``strategy:``: a callable making a fresh strategy for each race.
StrategyFactory: TypeAlias = Callable[[RaceSpec], StrategyProtocol]
