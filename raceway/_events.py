"""Events: one immutable record per fact of a race, for the tracker, monitor and users.

Each race emits, in order: ``race_started``; per attempt ``attempt_started``
then at most one of ``attempt_first_token``/``attempt_failed``/
``attempt_cancelled`` for how it ended (an attempt that answered and was
later stopped emits ``attempt_first_token`` then ``attempt_cancelled``);
``race_decided`` when a winner is chosen; ``race_finished`` last, always,
with every attempt's record. Each fact is emitted exactly once.

Outside any one race's sequence, the engine emits ``provider_cooldown`` when
a ``provider/model`` starts sitting out races and ``provider_recovered`` when
it answers again (both right after the ``race_finished`` that caused them),
and the monitor emits a periodic ``stats``.

``ts`` is wall-clock time (seconds since the epoch); ``elapsed_ms`` is the
race's own clock (trio's, so exact under a virtual clock). ``type`` is the
wire name. Encoding for the socket lives in ``raceway.wire``.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeAlias

from attrs import field, frozen

from ._result import AttemptRecord


@frozen(kw_only=True, slots=True)
class RaceStarted:
    type: ClassVar[str] = "race_started"
    race_id: str
    ts: float
    virtual_model: str
    strategy: str
    participants: tuple[tuple[str, str], ...]  # (provider, model) by attempt index
    elapsed_ms: float = 0.0


@frozen(kw_only=True, slots=True)
class AttemptStarted:
    """``restart``: a failover's new attempt of a participant that raced before."""

    type: ClassVar[str] = "attempt_started"
    race_id: str
    ts: float
    elapsed_ms: float
    index: int
    provider: str
    model: str
    restart: bool = False


@frozen(kw_only=True, slots=True)
class AttemptFirstToken:
    type: ClassVar[str] = "attempt_first_token"
    race_id: str
    ts: float
    elapsed_ms: float
    index: int
    provider: str
    model: str
    ttft_ms: float


@frozen(kw_only=True, slots=True)
class AttemptFailed:
    type: ClassVar[str] = "attempt_failed"
    race_id: str
    ts: float
    elapsed_ms: float
    index: int
    provider: str
    model: str
    error_kind: str
    error: str
    retry_after: float | None = None


@frozen(kw_only=True, slots=True)
class AttemptCancelled:
    type: ClassVar[str] = "attempt_cancelled"
    race_id: str
    ts: float
    elapsed_ms: float
    index: int
    provider: str
    model: str
    answered: bool = False


@frozen(kw_only=True, slots=True)
class RaceDecided:
    """The winner is chosen at ``elapsed_ms``; ``ttft_ms`` is its own time to first token.

    ``failover``: it replaces a winner that broke before its answer was committed.
    """

    type: ClassVar[str] = "race_decided"
    race_id: str
    ts: float
    elapsed_ms: float
    index: int
    provider: str
    model: str
    ttft_ms: float
    failover: bool = False


@frozen(kw_only=True, slots=True)
class RaceFinished:
    """The last event of a race. ``outcome``: ``ok``, ``failed``, ``timeout``,
    ``interrupted`` (the winner broke mid-stream) or ``abandoned`` (the caller
    left before the end)."""

    type: ClassVar[str] = "race_finished"
    race_id: str
    ts: float
    elapsed_ms: float
    virtual_model: str
    strategy: str
    outcome: str
    attempts: tuple[AttemptRecord, ...]
    winner: int | None = None
    ttft_ms: float | None = None
    total_ms: float | None = None
    error: str | None = None
    usage: dict[str, int | None] | None = None


@frozen(kw_only=True, slots=True)
class ProviderCooldown:
    """A ``provider/model`` sits out races until ``until`` (wall clock).

    ``reason`` is ``failures`` (``failures`` consecutive failed attempts) or
    ``rate_limited`` (a 429 with a retry-after). ``race_id`` names the race
    whose result tripped it. After ``until`` the next race takes it on trial:
    an answer emits :class:`ProviderRecovered`; a failure, a longer cooldown.
    """

    type: ClassVar[str] = "provider_cooldown"
    ts: float
    race_id: str
    provider: str
    model: str
    until: float
    seconds: float
    reason: str
    failures: int = 0


@frozen(kw_only=True, slots=True)
class ProviderRecovered:
    """A ``provider/model`` that was cooling down answered again and races as usual."""

    type: ClassVar[str] = "provider_recovered"
    ts: float
    race_id: str
    provider: str
    model: str


@frozen(kw_only=True, slots=True)
class StatsSnapshot:
    """Periodic per-provider statistics (``stats`` on the wire)."""

    type: ClassVar[str] = "stats"
    ts: float
    providers: dict[str, dict[str, Any]] = field(factory=dict)


Event: TypeAlias = (
    RaceStarted
    | AttemptStarted
    | AttemptFirstToken
    | AttemptFailed
    | AttemptCancelled
    | RaceDecided
    | RaceFinished
    | ProviderCooldown
    | ProviderRecovered
    | StatsSnapshot
)

EVENT_TYPES: dict[str, type[Any]] = {
    cls.type: cls
    for cls in (
        RaceStarted,
        AttemptStarted,
        AttemptFirstToken,
        AttemptFailed,
        AttemptCancelled,
        RaceDecided,
        RaceFinished,
        ProviderCooldown,
        ProviderRecovered,
        StatsSnapshot,
    )
}
