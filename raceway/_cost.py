"""What a race costs: attempt costs from usage and prices, estimates, the budget guard.

Pure functions, no I/O. Prices are USD per million tokens
(:class:`~raceway._config.Prices`, resolved per participant); usage is what
the provider reported (:class:`~raceway.Usage`).

Rules (documented in the README, "Observability and cost"):

* With usage: ``(input - cached) × input price + cached × cached price +
  output × output price``, each over a million. ``cached_input_tokens`` is
  part of ``input_tokens``; reasoning tokens are part of ``output_tokens``.
  A price left out costs 0, except the cached-input price, which falls back
  to the input price.
* Without usage (a loser cancelled before the provider's final usage chunk,
  a ``python`` provider): tokens are estimated at :data:`CHARS_PER_TOKEN`
  characters a token, input from the request's text and output from what
  the attempt streamed, and the record is marked ``cost_estimated``. When
  only one side was reported, the other is estimated.
* A failed attempt costs what its provider reported; without usage, one
  that broke off mid-answer is estimated like a loser (it consumed what it
  streamed) and one that failed before answering costs nothing (an error
  carries no answer); a ``not_started`` one costs nothing.
* An attempt without prices has no cost (``None``); a race's cost is the sum
  of its priced attempts (``None`` when none was priced).

The budget guard (``max_cost_per_race_usd``) estimates each attempt before
it starts (:func:`race_budget`): the first attempt always runs; an extra one
starts only while the estimates of the attempts started so far plus its own
stay within the limit (:meth:`CostBudget.allows`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
from attrs import frozen

from ._result import AttemptRecord

if TYPE_CHECKING:
    from ._chunk import Usage
    from ._config import Prices

#: Characters per token for estimates (the usual rule of thumb for English text).
CHARS_PER_TOKEN = 4
#: The output the budget guard expects from an attempt when the request sets no
#: ``max_tokens`` and nothing was observed of the provider.
DEFAULT_EXPECTED_OUTPUT_TOKENS = 512
#: Request parameters that cap the answer's length, as providers name them.
MAX_TOKENS_PARAMS = ("max_completion_tokens", "max_tokens", "max_output_tokens")
_MTOK = 1_000_000


def tokens_from_chars(chars: int) -> int:
    """An estimate of the tokens in ``chars`` characters of text."""
    return math.ceil(max(0, chars) / CHARS_PER_TOKEN)


def input_chars(messages: Sequence[Mapping[str, Any]]) -> int:
    """The characters of text a request sends: contents (strings or text parts) and tool calls."""
    total = 0
    for m in messages:
        content = m.get("content")
        if isinstance(content, str):
            total += len(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                    total += len(part["text"])
        for call in m.get("tool_calls") or ():
            fn = call.get("function") if isinstance(call, Mapping) else None
            if isinstance(fn, Mapping):
                total += len(str(fn.get("name") or "")) + len(str(fn.get("arguments") or ""))
    return total


def token_cost(prices: Prices, input_tokens: int, output_tokens: int, cached_input_tokens: int = 0) -> float:
    """USD for these token counts (``cached_input_tokens`` is part of ``input_tokens``)."""
    cached = min(max(0, cached_input_tokens), max(0, input_tokens))
    in_price = prices.input_per_mtok or 0.0
    cached_price = in_price if prices.cached_input_per_mtok is None else prices.cached_input_per_mtok
    out_price = prices.output_per_mtok or 0.0
    return (
        (max(0, input_tokens) - cached) * in_price + cached * cached_price + max(0, output_tokens) * out_price
    ) / _MTOK


def attempt_cost(record: AttemptRecord, prices: Prices | None, request_chars: int) -> tuple[float | None, bool]:
    """``(cost_usd, estimated)`` of one attempt (see the module docstring for the rules)."""
    if prices is None:
        return None, False
    if record.status == "not_started":
        return 0.0, False
    u: Usage | None = record.usage
    reported_in = None if u is None else u.input_tokens
    reported_out = None if u is None else u.output_tokens
    if record.status == "failed" and reported_in is None and reported_out is None and not record.output_chars:
        return 0.0, False  # it failed before answering (an HTTP error is not billed)
    estimated = reported_in is None or reported_out is None
    tokens_in = tokens_from_chars(request_chars) if reported_in is None else reported_in
    tokens_out = tokens_from_chars(record.output_chars) if reported_out is None else reported_out
    cached = 0 if u is None or u.cached_input_tokens is None else u.cached_input_tokens
    return token_cost(prices, tokens_in, tokens_out, cached), estimated


def output_tokens(record: AttemptRecord) -> int:
    """The output tokens of an attempt: reported, else estimated from its characters."""
    if record.usage is not None and record.usage.output_tokens is not None:
        return record.usage.output_tokens
    return tokens_from_chars(record.output_chars)


def price_records(
    records: Sequence[AttemptRecord], prices_by_index: Sequence[Prices | None], request_chars: int
) -> tuple[AttemptRecord, ...]:
    """The records with ``cost_usd`` and ``cost_estimated`` set.

    ``prices_by_index[i]`` are the prices of participant ``i`` (a record's
    ``index``); ``request_chars`` is :func:`input_chars` of the request's
    messages. Without any prices the records come back as they are.
    """
    if not any(p is not None for p in prices_by_index):
        return tuple(records)
    out = []
    for r in records:
        prices = prices_by_index[r.index] if 0 <= r.index < len(prices_by_index) else None
        cost, estimated = attempt_cost(r, prices, request_chars)
        out.append(r if cost is None else attrs.evolve(r, cost_usd=cost, cost_estimated=estimated))
    return tuple(out)


def race_cost(records: Iterable[AttemptRecord]) -> float | None:
    """The winner's cost plus what the others consumed; ``None`` when no attempt was priced."""
    costs = [r.cost_usd for r in records if r.cost_usd is not None]
    return math.fsum(costs) if costs else None


# ------------------------------------------------------------ the budget guard


def expected_output_tokens(
    params: Mapping[str, Any], observed: float | None = None, default: int = DEFAULT_EXPECTED_OUTPUT_TOKENS
) -> int:
    """How many output tokens to expect from an attempt, for the budget guard.

    The mean ``observed`` of the provider when known, else ``default``; never
    more than the request's ``max_tokens`` (or ``max_completion_tokens``).
    """
    cap = next((params[k] for k in MAX_TOKENS_PARAMS if isinstance(params.get(k), int)), None)
    expected = default if observed is None else math.ceil(observed)
    return expected if cap is None else min(expected, cap)


def estimate_attempt_cost(prices: Prices | None, request_chars: int, expected_output: int) -> float:
    """The cost an attempt is expected to have before it starts (0 without prices)."""
    if prices is None:
        return 0.0
    return token_cost(prices, tokens_from_chars(request_chars), expected_output)


@frozen
class CostBudget:
    """``max_cost_per_race_usd`` for one race: the limit and each attempt's estimate.

    ``estimates[i]`` is the expected cost of attempt ``i`` (strategy index).
    """

    limit: float
    estimates: tuple[float, ...]

    def projected(self, started: Iterable[int], candidate: int) -> float:
        """The race's estimated cost if ``candidate`` starts besides ``started``."""
        return math.fsum(self.estimates[i] for i in {*started, candidate})

    def allows(self, started: Iterable[int], candidate: int) -> bool:
        """Whether ``candidate`` may start; the first attempt of a race always may."""
        running = set(started)
        if not running - {candidate}:
            return True
        return self.projected(running, candidate) <= self.limit * (1 + 1e-9)

    def reason(self, started: Iterable[int], candidate: int) -> str:
        """The error text of a skipped attempt's ``not_started`` record."""
        return (
            f"skipped: the race's estimated cost ${self.projected(started, candidate):.6f} "
            f"would exceed max_cost_per_race_usd ${self.limit:g}"
        )


def race_budget(
    limit: float | None,
    prices: Sequence[Prices | None],
    request_chars: int,
    params: Mapping[str, Any],
    observed_output: Sequence[float | None] | None = None,
) -> CostBudget | None:
    """The budget of one race, or ``None`` when there is no limit (nothing to check).

    ``prices[i]`` and ``observed_output[i]`` (a provider's mean output tokens
    per answer, ``None`` when unknown) describe attempt ``i``.
    """
    if limit is None:
        return None
    observed = observed_output or [None] * len(prices)
    return CostBudget(
        limit=limit,
        estimates=tuple(
            estimate_attempt_cost(p, request_chars, expected_output_tokens(params, o))
            for p, o in zip(prices, observed, strict=True)
        ),
    )


def budget_record(index: int, provider: str, model: str, reason: str) -> AttemptRecord:
    """The ``not_started`` record of an attempt the budget guard skipped."""
    return AttemptRecord(
        index=index, provider=provider, model=model, status="not_started", error=reason, error_kind="budget"
    )
