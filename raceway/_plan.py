"""What every race of one virtual model shares, worked out once: its :class:`Plan`.

The engine makes a plan the first time a virtual model is raced: the
strategy to make, the providers, the hedge budget and delay rule, prices,
the tracker's admission policy. :func:`cost_controls` adds, per race, what
pricing and ``max_cost_per_race_usd`` need — nothing when nothing is priced,
so the race's hot path stays as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from attrs import frozen

from ._config import Prices, ResolvedModel
from ._config_check import import_object
from ._cost import input_chars, race_budget
from ._providers import Provider
from ._strategies import BUILTIN, FirstWins, Hedged, Quality, Weighted
from ._strategy import HedgeBudget, StrategyFactory
from ._tracker import AUTO_HEDGE_FALLBACK_S, RacePolicy, Tracker

#: ``hedge.delay_ms: auto`` waits for the ``1 - max_extra_load`` quantile of the
#: running provider's recent TTFTs — so about ``max_extra_load`` of races
#: hedge, spending the budget where the tail starts — kept within these bounds
#: (p75 .. p99: always "a high percentile")...
AUTO_HEDGE_QUANTILE_RANGE = (0.75, 0.99)
#: (Before any TTFT was seen: the tracker's AUTO_HEDGE_FALLBACK_S.)


@frozen
class Plan:
    """What every race of one virtual model shares, worked out once."""

    model: ResolvedModel
    providers: tuple[Provider, ...]
    factory: StrategyFactory
    strategy_name: str
    budget: HedgeBudget
    scorer: Callable[..., float] | None
    labels: tuple[str, ...]
    hedge_delay: float | None  # seconds; None: auto, per provider from the tracker
    hedge_quantile: float
    prices: tuple[Prices | None, ...] | None  # by participant; None when none is priced
    # Learning (issue 13): cooldown kind and rate caps; Thompson draws for strategies that read scores.
    policy: RacePolicy
    explore: bool
    #: ``(provider, model)`` of every participant, in order (what ``race_started`` lists).
    participants: tuple[tuple[str, str], ...] = ()


def make_plan(resolved: ResolvedModel, providers: tuple[Provider, ...], tracker: Tracker) -> Plan:
    """The plan of virtual model ``resolved``, racing ``providers`` (one per participant)."""
    lo, hi = AUTO_HEDGE_QUANTILE_RANGE
    name = resolved.strategy
    factory: StrategyFactory = BUILTIN[name] if name in BUILTIN else import_object(name)
    scorer = import_object(resolved.quality_scorer) if resolved.quality_scorer else None
    one_at_a_time = isinstance(factory, type) and issubclass(factory, Hedged)
    return Plan(
        model=resolved,
        providers=providers,
        factory=factory,
        strategy_name=name,
        budget=HedgeBudget(max_extra_load=resolved.hedge.max_extra_load),
        scorer=scorer,
        labels=tuple(p.label for p in resolved.participants),
        hedge_delay=(
            AUTO_HEDGE_FALLBACK_S  # not read by these: spare the per-race percentile
            if factory in (FirstWins, Weighted, Quality)
            else None
            if resolved.hedge.delay_ms == "auto"
            else resolved.hedge.delay_ms / 1000
        ),
        hedge_quantile=min(hi, max(lo, 1.0 - resolved.hedge.max_extra_load)),
        prices=(
            tuple(p.prices for p in resolved.participants)
            if any(p.prices is not None for p in resolved.participants)
            else None
        ),
        policy=tracker.policy(resolved, one_at_a_time=one_at_a_time),
        explore=factory not in (FirstWins, Quality),
        participants=tuple((p.name, p.model) for p in resolved.participants),
    )


def cost_controls(
    plan: Plan,
    tracker: Tracker,
    messages: list[dict[str, Any]],
    params: dict[str, Any],
    contenders: list[int],
    admitted: list[bool] | None,
) -> dict[str, Any]:
    """What a race needs to cost its attempts and keep ``max_cost_per_race_usd`` (nothing, unpriced)."""
    limit = plan.model.max_cost_per_race_usd
    if plan.prices is None and limit is None:
        return {}
    chars = input_chars(messages)
    out: dict[str, Any] = {}
    if plan.prices is not None:
        out["pricing"] = (plan.prices, chars)
    if limit is not None:
        numbers = [i for i in range(len(plan.labels)) if admitted is None or admitted[i]]
        prices = plan.prices or (None,) * len(plan.labels)
        budget = race_budget(
            limit,
            [prices[numbers[c]] for c in contenders],
            chars,
            params,
            [tracker.mean_output_tokens(plan.labels[numbers[c]]) for c in contenders],
        )
        assert budget is not None

        def gate(started: list[int], i: int) -> tuple[str, str] | None:
            return None if budget.allows(started, i) else ("budget", budget.reason(started, i))

        out["gate"] = gate
    return out



def wants_json(params: dict[str, Any]) -> bool:
    """Whether the call asked for JSON output (``response_format`` json_object or json_schema)."""
    fmt = params.get("response_format")
    return isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema")
