"""What a race returns: :class:`RaceResult` and one :class:`AttemptRecord` per participant."""

from __future__ import annotations

from typing import Any, Literal, TypeAlias

from attrs import field, frozen

from ._chunk import ThinkingBlock, ToolCall, Usage

AttemptStatus: TypeAlias = Literal["won", "lost", "failed", "cancelled", "not_started"]


@frozen(kw_only=True)
class AttemptRecord:
    """How one participant fared.

    ``status``: ``won``; ``lost`` (it answered, another won); ``failed`` (an
    error, see ``error``); ``cancelled`` (stopped before its first token);
    ``not_started`` (``hedged`` never needed it). Times are milliseconds:
    ``started_ms`` and ``ended_ms`` from the race's start, ``ttft_ms`` from
    the attempt's own start.

    ``usage`` is the last token count the provider reported for this attempt
    and ``finish_reason`` how its answer ended (``None`` when it did not).
    ``cost_usd`` is what the attempt cost at its ``prices`` (``None`` when it
    has none); ``cost_estimated`` is true when the provider reported no usage
    and the cost was worked out from characters (see ``raceway._cost``).
    """

    index: int
    provider: str
    model: str
    status: AttemptStatus
    started_ms: float | None = None
    ttft_ms: float | None = None
    ended_ms: float | None = None
    error: str | None = None
    error_kind: str | None = None
    retry_after: float | None = None
    output_chars: int = 0
    usage: Usage | None = None
    finish_reason: str | None = None
    cost_usd: float | None = None
    cost_estimated: bool = False

    @property
    def label(self) -> str:
        """``provider/model``."""
        return f"{self.provider}/{self.model}"


@frozen(kw_only=True)
class RaceResult:
    """The outcome of a race that produced an answer.

    ``ttft_ms`` is what the caller saw: from the race's start to the moment
    the winner was decided and its first token handed over; ``total_ms`` runs
    to the end of the winner's stream. ``metadata`` carries the seed's keys
    (``racing_winner``, ``racing_latency_ms``, ``virtual_model``,
    ``virtual_model_desc``). ``cost_usd`` is the winner's cost plus what
    the losers consumed (``None`` when no participant has prices);
    :attr:`wasted_cost_usd` is the losers' part.
    """

    race_id: str
    text: str
    provider: str
    model: str
    virtual_model: str
    strategy: str
    ttft_ms: float
    total_ms: float
    finish_reason: str | None
    usage: Usage | None
    attempts: tuple[AttemptRecord, ...]
    metadata: dict[str, Any] = field(factory=dict)
    tool_calls: tuple[ToolCall, ...] = ()
    reasoning: str = ""
    #: Anthropic's signed thinking, to send back on the next assistant turn (see ``ThinkingBlock``).
    thinking_blocks: tuple[ThinkingBlock, ...] = ()
    cost_usd: float | None = None

    @property
    def wasted_cost_usd(self) -> float | None:
        """What the attempts that did not win cost (``None`` when none was priced)."""
        costs = [a.cost_usd for a in self.attempts if a.status != "won" and a.cost_usd is not None]
        return sum(costs) if costs else (None if self.cost_usd is None else 0.0)

    @property
    def winner(self) -> AttemptRecord:
        """The winning attempt's record."""
        return next(a for a in self.attempts if a.status == "won")
