"""What a strategy comparison measures and how it sums up, for ``_bench``.

The variants compared by default (:data:`DEFAULT_VARIANTS`), what one
strategy did for one request (:class:`Outcome`), and :func:`summarise`:
p50/p95/p99 caller TTFT (a failed request counts as :data:`DEADLINE_MS`),
failures, upstream requests per answer, wasted tokens, costs and shares per
strategy, with ratios to the oracle and to the best single provider.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

from attrs import define

from ._config import HedgeOverride

#: The variants compared by default: name -> (strategy, grace ms, hedge).
DEFAULT_VARIANTS: dict[str, tuple[str, int, HedgeOverride | None]] = {
    "first_wins": ("first_wins", 250, None),
    "weighted": ("weighted", 100, None),
    "quality": ("quality", 250, None),
    "hedged auto": ("hedged", 0, HedgeOverride(delay_ms="auto", max_extra_load=0.1)),
}
#: A planned race's deadline; a failed request's caller TTFT counts as this.
DEADLINE_MS = 10_000


@define
class Outcome:
    """What one strategy did for one request."""

    ttft_ms: float | None  # None: the race failed
    attempts: int
    wasted_tokens: int
    cost_usd: float | None = None  # the race's (RaceResult.cost_usd); None: no prices
    wasted_usd: float | None = None
    winner: str | None = None
    first: str | None = None  # who started first (hedged: the primary)
    started: tuple[str, ...] = ()


def _pcts(ttfts: list[float | None]) -> dict[str, float]:
    values = sorted(DEADLINE_MS if t is None else t for t in ttfts)

    def q(p: float) -> float:
        return round(values[min(len(values) - 1, math.ceil(p * len(values)) - 1)], 1)

    return {"p50_ms": q(0.50), "p95_ms": q(0.95), "p99_ms": q(0.99)}


def _shares(names: list[str | None]) -> dict[str, float]:
    counted = [n for n in names if n is not None]
    return {n: round(counted.count(n) / len(counted), 3) for n in sorted(set(counted))} if counted else {}


def summarise(
    raw: dict[str, list[Outcome]],
    *,
    oracle: list[float | None] | None,
    variants: list[str],
    singles: list[str],
) -> dict[str, Any]:
    """Percentiles, load, waste and shares per strategy, with ratios to the oracle and best single."""
    rows: dict[str, dict[str, Any]] = {}
    for name, outs in raw.items():
        answered = sum(o.ttft_ms is not None for o in outs)
        rows[name] = {
            **_pcts([o.ttft_ms for o in outs]),
            "failures": len(outs) - answered,
            "requests_per_answer": round(sum(o.attempts for o in outs) / max(1, answered), 3),
            "wasted_tokens_per_request": round(statistics.fmean(o.wasted_tokens for o in outs), 1),
            **_costs(outs, answered),
            "win_share": _shares([o.winner for o in outs]),
            "first_attempt_share": _shares([o.first for o in outs]),
            "attempt_share": _shares([p for o in outs for p in o.started]),
            "cdf_ms": sorted(o.ttft_ms for o in outs if o.ttft_ms is not None),
        }
    best_single = min(singles, key=lambda s: rows[s]["p99_ms"]) if singles else None
    ref: dict[str, dict[str, float]] = {}
    if oracle is not None:
        ref["oracle"] = _pcts(oracle)
    if best_single is not None:
        ref["best single"] = {k: rows[best_single][k] for k in ("p50_ms", "p95_ms", "p99_ms")}
    for name in variants:
        row = rows[name]
        for label, base in ref.items():
            key = "vs_oracle" if label == "oracle" else "vs_best_single"
            row[key] = {p: round(row[p] / base[p], 3) if base[p] else None for p in ("p50_ms", "p95_ms", "p99_ms")}
    return {"strategies": {n: rows[n] for n in variants}, "singles": {n: rows[n] for n in singles},
            "reference": ref, "best_single": best_single}


def _costs(outs: list[Outcome], answered: int) -> dict[str, float | None]:
    """Cost per answer (every attempt of every request, over the answers) and losers' cost per request."""
    if all(o.cost_usd is None for o in outs):
        return {"cost_per_answer_usd": None, "wasted_usd_per_request": None}
    return {
        "cost_per_answer_usd": sum(o.cost_usd or 0.0 for o in outs) / max(1, answered),
        "wasted_usd_per_request": statistics.fmean(o.wasted_usd or 0.0 for o in outs),
    }
