"""Strategies: pure decision objects that say who races, when, and who wins.

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

import json
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
    is known); ``hedge_delay`` is how long ``hedged`` waits for this
    participant's first token before starting the next one.
    """

    index: int
    provider: str
    model: str = ""
    priority: int = 0
    weight: float = 1.0
    score: float = 0.5
    hedge_delay: float = 1.0


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
        if isinstance(fact, FirstToken):
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


class FirstWins(Strategy):
    """Everyone starts at once; the first token wins at once.

    Losers keep running for the grace window after the win (so their TTFT is
    measured), then are cancelled.
    """

    name = "first_wins"

    # Kept up to date by observe() so that decide() — asked once per start
    # and once per wake — costs O(1), not a scan of every attempt.
    def __init__(self, spec: RaceSpec) -> None:
        super().__init__(spec)
        self._best = -1  # the earliest success so far (ties: the lower index)
        self._best_t = math.inf
        self._next = 0  # no attempt below this index is unstarted

    def observe(self, fact: Fact) -> None:
        super().observe(fact)
        kind = type(fact)
        if kind is FirstToken or kind is Completed:
            a = self.attempts[fact.index]
            t = a.first_token
            if a.failed is None and t is not None and (t, fact.index) < (self._best_t, self._best):
                self._best, self._best_t = fact.index, t
        elif kind is Failed and fact.index == self._best:
            self._best, self._best_t = -1, math.inf
            for i, a in enumerate(self.attempts):
                t = a.first_token
                if a.failed is None and t is not None and t < self._best_t:
                    self._best, self._best_t = i, t

    def decide(self, now: float) -> Decision:
        if self._best >= 0:
            return Pick(self._best, cancel_losers_at=self._best_t + self.spec.grace)
        attempts = self.attempts
        n = len(attempts)
        while self._next < n and attempts[self._next].started is not None:
            self._next += 1
        if self._next < n:
            return Start(self._next)
        if not any(a.failed is None and a.first_token is None and a.completed is None for a in attempts):
            return GiveUp("every attempt failed")
        return Wait(self.spec.deadline)


class _Windowed(Strategy):
    """Shared by ``weighted`` and ``quality``: collect successes for a window, pick the best."""

    def value(self, i: int) -> float:
        raise NotImplementedError

    def decide(self, now: float) -> Decision:
        waiting = self.not_started()
        if waiting:
            return Start(waiting[0])
        wins = self.successes()
        if not wins:
            if not self.any_pending():
                return GiveUp("every attempt failed")
            return Wait(self.spec.deadline)
        first_t = self.success_time(wins[0])
        assert first_t is not None
        window_end = first_t + self.spec.grace
        if now < window_end and now < self.spec.deadline and self.any_pending():
            return Wait(min(window_end, self.spec.deadline))
        inside = [i for i in wins if (self.success_time(i) or 0.0) <= window_end]
        # max() keeps the first of equals, and ``inside`` is earliest first.
        best = max(inside, key=self.value)
        return Pick(best, cancel_losers_at=now)


class Weighted(_Windowed):
    """Everyone starts at once; the best of the successes inside the grace window wins.

    A success is valued ``weight × score × 1 / (1 + ttft_s)``: the reference's
    weight, the tracker's score and how fast it answered this time. The
    decision comes when the window closes, or sooner when no attempt is
    still pending. Ties go to the earlier token.
    """

    name = "weighted"

    def value(self, i: int) -> float:
        c = self.spec.contenders[i]
        ttft = self.attempts[i].first_token or 0.0
        return c.weight * c.score / (1.0 + ttft)


def default_quality_score(answer: Answer) -> float:
    """The default quality scorer: a clean, non-empty, untruncated answer scores 1.

    Empty: 0. Cut off by a token limit (``length``/``max_tokens``): 0.5.
    Stopped for another reason (a content filter, say): 0.25. A tool call
    is an answer; one whose arguments are not JSON, or text that is not JSON
    when JSON output was asked for, scores 0.2: below any clean answer.
    """
    if answer.tool_calls:
        if not all(_is_json(call.arguments or "{}") for call in answer.tool_calls):
            return 0.2
    elif not answer.text.strip():
        return 0.0
    elif answer.wants_json and not _is_json(answer.text):
        return 0.2
    reason = answer.finish_reason
    if reason in (None, "stop", "end_turn", "stop_sequence", "tool_calls", "tool_use"):
        return 1.0
    if reason in ("length", "max_tokens"):
        return 0.5
    return 0.25


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


class Quality(_Windowed):
    """Everyone runs to completion; the best complete answer inside the window wins.

    After the first complete answer, waits up to the grace window for more,
    then picks the highest ``spec.scorer`` value (default
    :func:`default_quality_score`). Ties go to the earlier completion.
    """

    name = "quality"
    success_on = "complete"

    def value(self, i: int) -> float:
        a = self.attempts[i]
        c = self.spec.contenders[i]
        scorer = self.spec.scorer or default_quality_score
        answer = Answer(
            text=a.text,
            finish_reason=a.finish_reason,
            provider=c.provider,
            model=c.model,
            ttft=None if a.first_token is None or a.started is None else a.first_token - a.started,
            total=(a.completed or 0.0) - (a.started or 0.0),
            tool_calls=a.tool_calls,
            wants_json=self.spec.wants_json,
        )
        return float(scorer(answer))


class Hedged(Strategy):
    """One attempt at a time, highest priority first; more only when it is slow.

    Order: highest ``priority`` first; equal priorities by tracker score
    (best first), then as listed. The next attempt starts when the latest
    one has had ``hedge_delay`` seconds with no token (if the budget allows:
    a *hedge*), or at once when an attempt fails (a *failover*: one per
    failure, always allowed, even while other attempts still run). When the budget refuses a hedge, it asks
    again after twice the wait, then four times, ... (other races refill the
    budget meanwhile); no hedge starts at or after the deadline. The first
    token wins; the others are cancelled at once.
    """

    name = "hedged"

    def __init__(self, spec: RaceSpec) -> None:
        super().__init__(spec)
        c = spec.contenders
        self.order = sorted(range(len(c)), key=lambda i: (-c[i].priority, -c[i].score, i))
        self._refusals = 0  # hedges the budget refused since the latest start
        self._owed = 0  # failovers owed: one per failure not yet replaced
        self._last_start = 0.0
        self._last_index = self.order[0] if self.order else 0

    def observe(self, fact: Fact) -> None:
        super().observe(fact)
        if isinstance(fact, Started):
            self._last_start = fact.t
            self._last_index = fact.index
            self._refusals = 0
        elif isinstance(fact, Failed):
            self._owed += 1

    def decide(self, now: float) -> Decision:
        wins = self.successes()
        if wins:
            return Pick(wins[0], cancel_losers_at=now)
        waiting = [i for i in self.order if self.attempts[i].started is None]
        if len(waiting) == len(self.order):
            return Start(waiting[0])
        deadline = self.spec.deadline
        if waiting and self._owed and now < deadline:
            self._owed -= 1
            return Start(waiting[0])
        if not self.any_pending():
            return Start(waiting[0]) if waiting else GiveUp("every attempt failed")
        if not waiting or now >= deadline:
            return Wait(deadline)
        delay = self.spec.contenders[self._last_index].hedge_delay
        # 0 refusals: the delay; then 2x, 4x ... the delay after the start.
        hedge_at = self._last_start + delay * 2**self._refusals
        if now < hedge_at:
            return Wait(min(hedge_at, deadline))
        budget = self.spec.budget
        if budget is None or budget.try_spend():
            return Start(waiting[0])
        if budget.max_extra_load <= 0 or delay <= 0:
            return Wait(deadline)  # hedging is off: failover only
        self._refusals += 1
        return Wait(min(self._last_start + delay * 2**self._refusals, deadline))


BUILTIN: dict[str, type[Strategy]] = {
    cls.name: cls for cls in (FirstWins, Weighted, Quality, Hedged)
}

#: What config names by ``strategy:``: a callable making a fresh strategy for each race.
StrategyFactory: TypeAlias = Callable[[RaceSpec], StrategyProtocol]
