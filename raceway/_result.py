"""What a race returns: :class:`RaceResult` and one :class:`AttemptRecord` per participant."""

from __future__ import annotations

from collections.abc import Callable
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


class RaceResultLater(RaceResult):
    """A :class:`RaceResult` whose ``attempts`` are written up later, off the caller's path.

    The engine returns one for a race that went well with nobody listening
    to its events: the records are built in the learning batch (within
    ``LEARN_BATCH_S``, :meth:`fill`), or on first read if that comes sooner.
    Everything else is a :class:`RaceResult`'s.
    """

    __slots__ = ("_write_up",)

    def __getattr__(self, name: str) -> Any:
        # Only an unset slot gets here: ``attempts`` until it is filled.
        if name == "attempts":
            records = self._write_up()
            self.fill(records)
            return records
        raise AttributeError(name)

    def fill(self, records: tuple[AttemptRecord, ...]) -> None:
        """Set ``attempts`` (once) and let go of what wrote them up."""
        object.__setattr__(self, "attempts", records)
        object.__setattr__(self, "_write_up", None)

    def plain(self) -> RaceResult:
        """The same result as a plain :class:`RaceResult` (what pickling and comparing use)."""
        return RaceResult(**{a.name: getattr(self, a.name) for a in self.__attrs_attrs__})

    def __reduce__(self) -> tuple[Any, ...]:
        return (_plain_result, (self.plain(),))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RaceResultLater):
            other = other.plain()
        return self.plain() == other

    __hash__ = None  # type: ignore[assignment]  # as RaceResult's: its metadata is a dict

    @classmethod
    def later(cls, write_up: Callable[[], tuple[AttemptRecord, ...]], **fields: Any) -> RaceResultLater:
        """A result with every field but ``attempts``, which ``write_up()`` makes when first needed."""
        result = cls(attempts=(), **fields)
        object.__delattr__(result, "attempts")
        object.__setattr__(result, "_write_up", write_up)
        return result


RaceResultLater.__qualname__ = RaceResultLater.__name__ = "RaceResult"  # it reads and prints as one


def _plain_result(result: RaceResult) -> RaceResult:
    return result
