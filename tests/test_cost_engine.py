"""Cost through the engine: what ``RaceResult`` and its records say a real race cost.

These need the race driver to price its records (``raceway._cost.price_records``
when it builds them, ``race_cost`` for ``RaceResult.cost_usd``) and to apply
the budget guard (``raceway._cost.race_budget``); the driver is being
rewritten, so they are expected to fail until it does. Remove the mark then.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
import yaml

import raceway

MSG = [{"role": "user", "content": "x" * 400}]  # 100 input tokens by the estimate
TTFT = {"a": 0.1, "b": 0.2, "c": 0.3}


async def answering(request: raceway.Request) -> AsyncIterator[raceway.Chunk]:
    """Answers "hello world" (11 characters) after its TTFT; only ``a`` reports usage.

    ``a`` wins and takes 0.5 s more to finish, so the others answer meanwhile and lose.
    """
    await trio.sleep(TTFT[request.provider])
    yield raceway.Chunk("hello ")
    await trio.sleep(0.5 if request.provider == "a" else 0.01)
    usage = raceway.Usage(input_tokens=120, output_tokens=3, cached_input_tokens=20)
    yield raceway.Chunk("world", finish_reason="stop", usage=usage if request.provider == "a" else None)


def config(grace_ms: int, **vm: Any) -> raceway.Config:
    prices = {"input_per_mtok": 2.0, "output_per_mtok": 8.0, "cached_input_per_mtok": 0.5}
    data = {
        "grace_period_ms": grace_ms,
        "monitor": {"socket": "off"},
        "performance_file": "off",
        "providers": {
            n: {"type": "python", "callable": "test_cost_engine:answering", "model": f"{n}-m", "prices": prices}
            for n in TTFT
        },
        "virtual_models": {"v": {"strategy": "first_wins", "providers": list(TTFT), **vm}},
    }
    return raceway.loads_config(yaml.safe_dump(data))


async def test_a_race_costs_its_winner_plus_what_its_losers_consumed(autojump_clock: Any) -> None:
    async with raceway.open_engine(config(grace_ms=1000)) as engine:
        result = await engine.complete(MSG, "v")
    a, b, c = result.attempts
    assert (a.status, b.status, c.status) == ("won", "lost", "lost")
    assert a.cost_usd == pytest.approx((100 * 2 + 20 * 0.5 + 3 * 8) / 1e6) and not a.cost_estimated
    # b and c report no usage: 100 input tokens, 11 characters -> 3 output tokens.
    for loser in (b, c):
        assert loser.cost_usd == pytest.approx((100 * 2 + 3 * 8) / 1e6) and loser.cost_estimated
    assert result.cost_usd == pytest.approx(a.cost_usd + b.cost_usd + c.cost_usd)  # type: ignore[operator]
    assert result.wasted_cost_usd == pytest.approx(b.cost_usd + c.cost_usd)  # type: ignore[operator]


async def test_the_budget_skips_extra_attempts_that_would_exceed_it(autojump_clock: Any) -> None:
    # Each attempt is expected to cost 100 × $2 + 10 × $8 per million = $0.00028; two fit in $0.0006.
    async with raceway.open_engine(config(grace_ms=0, max_cost_per_race_usd=0.0006)) as engine:
        result = await engine.complete(MSG, "v", max_tokens=10)
    skipped = result.attempts[2]
    assert (skipped.status, skipped.error_kind) == ("not_started", "budget")
    assert [r.status for r in result.attempts[:2]] == ["won", "cancelled"]


def test_bench_reports_cost_per_answer_and_wasted_cost_per_strategy() -> None:
    from raceway import _bench

    prices = raceway.Prices(input_per_mtok=0.0, output_per_mtok=1_000_000.0)  # $1 per output token
    profiles = {
        n: raceway.SimProvider(ttft_ms=t, sigma=0.5, text="one two three", prices=prices)
        for n, t in (("a", 200), ("b", 300))
    }
    report = _bench.compare_planned(profiles, requests=50, seed=3, hedge_sweep=False)
    fw, hedged = report["strategies"]["first_wins"], report["strategies"]["hedged auto"]
    # Every answer is 3 tokens ("one two three" streamed as "tok " pieces): $3 for the winner.
    assert report["singles"]["single a"]["cost_per_answer_usd"] == pytest.approx(3.0)
    assert fw["cost_per_answer_usd"] > hedged["cost_per_answer_usd"] >= 3.0
    assert fw["wasted_usd_per_request"] > hedged["wasted_usd_per_request"]
    assert "| cost per answer |" in _bench.markdown(report)
