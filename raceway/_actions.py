"""The race core's vocabulary: what it answers the driver, and the rules it names.

:class:`StartAttempt`, :class:`SkipAttempt`, :class:`Decided`,
:class:`WakeAt` and :class:`RaceFailed` are what ``RaceCore.next`` returns;
:data:`RULES` the rules a :class:`~raceway.StrategyError` (and
``raceway.testing``) names by id. Plain values: the trio driver and the kit's
simulator both read them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Literal, TypeAlias

from ._errors import StrategyError

#: More ``decide`` calls than this in one race: the strategy never ends it.
#: A real race asks a few times per attempt; 10,000 is far past any of them.
MAX_DECISIONS: Final = 10_000

#: A timer and a fact closer than this (seconds) may come out equal, or swapped,
#: on a float clock (``t0 + t``): the simulator lists such instants as ties.
TIE: Final = 1e-9

#: Rule ids, as :class:`~raceway.StrategyError` ``.rule`` and the kit's reports name them.
RULES: Final = {
    "protocol": "a strategy has observe(fact) and decide(now)",
    "winner": "a winner is an attempt that started and succeeded",
    "start_twice": "nothing starts twice",
    "range": "Start and Pick name an attempt that exists",
    "decision": "decide() returns only Start, Pick, Wait or GiveUp",
    "raise": "making the strategy, observe() and decide() never raise",
    "deadline": "the decision never comes after the deadline",
    "success_kept": "when an attempt succeeds before the deadline, the race does not fail",
    "runaway": "the race ends: decide() is not asked forever",
    "deterministic": "the same timeline gives the same decisions",
}


class StartAttempt:
    """Start attempt ``index`` now (race time ``at``), then ask the core again."""

    __slots__ = ("at", "index")

    def __init__(self, index: int, at: float) -> None:
        self.index = index
        self.at = at

    def __repr__(self) -> str:
        return f"StartAttempt({self.index}, at={self.at})"


class Decided:
    """Attempt ``index`` won at ``at``; losers may run until ``cancel_losers_at`` (race time).

    ``failover``: it replaces a winner that broke before its answer was committed.
    """

    __slots__ = ("at", "cancel_losers_at", "failover", "index")

    def __init__(self, index: int, at: float, cancel_losers_at: float, failover: bool = False) -> None:
        self.index = index
        self.at = at
        self.cancel_losers_at = cancel_losers_at
        self.failover = failover

    def __repr__(self) -> str:
        return f"Decided({self.index}, at={self.at}, cancel_losers_at={self.cancel_losers_at})"


class WakeAt:
    """Nothing to do until ``until`` (race time, never past the deadline) or the next fact."""

    __slots__ = ("until",)

    def __init__(self, until: float) -> None:
        self.until = until

    def __repr__(self) -> str:
        return f"WakeAt({self.until})"


Outcome: TypeAlias = Literal["picked", "gave_up", "exhausted", "timeout", "error"]


class RaceFailed:
    """The race ended at ``at`` without a winner.

    ``outcome``: ``gave_up`` (the strategy said so), ``exhausted`` (it waited
    with nothing running and nothing left to start), ``timeout`` (still
    waiting at the deadline) or ``error`` (it broke a rule or raised:
    ``error`` is the :class:`~raceway.StrategyError`, its ``rule`` the id).
    """

    __slots__ = ("at", "error", "outcome", "reason")

    def __init__(self, outcome: Outcome, reason: str, at: float, error: StrategyError | None = None) -> None:
        self.outcome = outcome
        self.reason = reason
        self.at = at
        self.error = error

    def __repr__(self) -> str:
        return f"RaceFailed({self.outcome!r}, {self.reason!r}, at={self.at})"


class SkipAttempt:
    """Attempt ``index`` sits the race out (the gate refused it: ``kind`` and ``reason`` say why).

    The strategy is told it started and failed at once (kind ``kind``), so it
    moves on as after any failure. Ask the core again.
    """

    __slots__ = ("at", "index", "kind", "reason")

    def __init__(self, index: int, at: float, kind: str, reason: str) -> None:
        self.index = index
        self.at = at
        self.kind = kind
        self.reason = reason

    def __repr__(self) -> str:
        return f"SkipAttempt({self.index}, {self.kind!r}, at={self.at})"


#: ``gate(started, i)``: ``None`` to let attempt ``i`` start beside the attempts
#: ``started``, else ``(kind, reason)`` for it to sit the race out (the cost budget).
Gate: TypeAlias = Callable[[list[int], int], tuple[str, str] | None]

Action: TypeAlias = StartAttempt | SkipAttempt | Decided | WakeAt | RaceFailed



def strategy_error(rule: str, message: str, cause: BaseException | None = None) -> StrategyError:
    error = StrategyError(message)
    error.rule = rule
    if cause is not None:
        error.__cause__ = cause
    return error


def describe_exception(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
