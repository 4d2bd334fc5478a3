"""The learning targets of issue 13, on planned requests through the real engine (virtual clock).

Each run starts from a fresh engine (no performance file) and counts every
request, one at a time, with the default grace window — as the issue's own
checks do on loopback HTTP — and the load-bearing ones again with 8 in flight.
"""

from __future__ import annotations

from typing import Any

import pytest

from raceway import HedgeOverride, _bench

REQUESTS = 300
VARIANTS: dict[str, tuple[str, int, HedgeOverride | None]] = {
    "first_wins": ("first_wins", 250, None),
    "weighted": ("weighted", 250, None),
    "hedged auto": ("hedged", 0, HedgeOverride(delay_ms="auto", max_extra_load=0.1)),
}
SWEEP_MS = (60, 80, 100, 120, 150, 200, 250, 300, 400, 600)


def run(scenario: str, *, concurrency: int = 1, sweep: bool = False, seed: int = 1) -> dict[str, Any]:
    return _bench.compare_planned(
        _bench.SCENARIOS[scenario], requests=REQUESTS, seed=seed, variants=VARIANTS, concurrency=concurrency,
        warmup=0.0, hedge_sweep=sweep, sweep_delays_ms=SWEEP_MS,
    )


@pytest.mark.parametrize("seed", [1, 2])
def test_identical_providers_share_the_work(seed: int) -> None:
    s = run("identical", seed=seed)["strategies"]
    assert max(s["weighted"]["win_share"].values()) <= 0.45, s["weighted"]["win_share"]
    assert max(s["hedged auto"]["attempt_share"].values()) <= 0.50, s["hedged auto"]["attempt_share"]
    assert len(s["hedged auto"]["first_attempt_share"]) == 3  # everyone was tried first


def test_the_fast_provider_listed_last_wins_nearly_always() -> None:
    s = run("one_fast")["strategies"]
    assert s["weighted"]["win_share"]["p2"] >= 0.85
    assert s["hedged auto"]["win_share"]["p2"] >= 0.85


@pytest.mark.parametrize("concurrency", [1, 8])
def test_auto_hedging_stays_on_the_hindsight_optimal_curve(concurrency: int) -> None:
    report = run("heavy_tail", concurrency=concurrency, sweep=True)
    auto = report["hedge_curve"]["auto"]
    assert auto["requests_per_answer"] <= 1.12
    assert auto["vs_best_fixed"] <= 1.10, report["hedge_curve"]


@pytest.mark.parametrize("concurrency", [1, 8])
def test_first_wins_keeps_racing_the_flaky_fast_provider(concurrency: int) -> None:
    report = run("one_bad", concurrency=concurrency)
    fw = report["strategies"]["first_wins"]
    assert fw["requests_per_answer"] >= 2.95
    assert fw["p99_ms"] <= 1.10 * report["reference"]["oracle"]["p99_ms"]
