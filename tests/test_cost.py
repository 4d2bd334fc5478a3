"""Cost: prices in config, each attempt's cost (reported or estimated), totals, the budget estimate.

Every expected figure is computed by hand from the prices in USD per million
tokens.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import pytest

import raceway
from raceway import AttemptRecord, Prices, RaceFinished, Usage, _cost
from raceway._persist import stats_table
from raceway._tracker import Record, Tracker

P = Prices(input_per_mtok=2.0, output_per_mtok=8.0, cached_input_per_mtok=0.5)


def rec(status: str = "won", *, index: int = 0, usage: Usage | None = None, chars: int = 0, **kw: Any) -> AttemptRecord:
    started = None if status == "not_started" else 0.0
    return AttemptRecord(
        index=index, provider=f"p{index}", model="m", status=status,  # type: ignore[arg-type]
        started_ms=started, output_chars=chars, usage=usage, **kw,
    )


# ---------------------------------------------------------------- config


def test_prices_on_a_definition_are_overridden_key_by_key_on_a_reference() -> None:
    config = raceway.loads_config(
        """
        providers:
          a: {type: sim, prices: {input_per_mtok: 2, output_per_mtok: 8, cached_input_per_mtok: 0.5}}
          b: {type: sim}
        max_cost_per_race_usd: 0.05
        virtual_models:
          v:
            max_cost_per_race_usd: 0.01
            providers:
              - {name: a, prices: {output_per_mtok: 10}}
              - {name: b, prices: {input_per_mtok: 0}}
              - a
          w: {providers: [b]}
        """
    )
    v = config.resolve("v")
    assert [p.prices for p in v.participants] == [
        Prices(input_per_mtok=2.0, output_per_mtok=10.0, cached_input_per_mtok=0.5),
        Prices(input_per_mtok=0.0),
        P,
    ]
    assert v.max_cost_per_race_usd == 0.01
    assert config.resolve("w").participants[0].prices is None
    assert config.resolve("w").max_cost_per_race_usd == 0.05
    assert raceway.loads_config(raceway.dumps_config(config, "toml"), "toml") == config
    assert raceway.loads_config(raceway.dumps_config(config)) == config


@pytest.mark.parametrize(
    ("text", "path", "message"),
    [
        ("providers: {a: {type: sim, prices: {input_per_mtok: -1}}}", "$.providers['a'].prices.input_per_mtok",
         "0 or more"),
        ("providers: {a: {type: sim, prices: {input: 1}}}", "$.providers['a'].prices", "unknown key(s): input"),
        ("providers: {a: {type: sim, prices: {output_per_mtok: cheap}}}",
         "$.providers['a'].prices.output_per_mtok", "must be a number"),
        ("providers: {a: {type: sim}}\nvirtual_models: {v: {providers: [{name: a, prices: {cached_input_per_mtok: -2}}]}}",
         "$.virtual_models['v'].providers[0].prices.cached_input_per_mtok", "0 or more"),
        ("providers: [openai]\nmax_cost_per_race_usd: -0.5", "$.max_cost_per_race_usd", "0 or more"),
        ("providers: {a: {type: sim}}\nvirtual_models: {v: {providers: [a], max_cost_per_race_usd: free}}",
         "$.virtual_models['v'].max_cost_per_race_usd", "must be a number"),
    ],
)
def test_bad_prices_name_the_field(text: str, path: str, message: str) -> None:
    with pytest.raises(raceway.ConfigError) as info:
        raceway.loads_config(text)
    assert info.value.path == path
    assert message in str(info.value)


# ---------------------------------------------------------------- one attempt


def test_reported_usage_is_charged_with_cached_input_at_its_price() -> None:
    u = Usage(input_tokens=10_000, output_tokens=2_000, cached_input_tokens=6_000, reasoning_tokens=500)
    cost, estimated = _cost.attempt_cost(rec(usage=u), P, request_chars=999)
    # 4000 uncached × $2 + 6000 cached × $0.5 + 2000 output (reasoning included) × $8, per million
    assert cost == pytest.approx((4000 * 2 + 6000 * 0.5 + 2000 * 8) / 1e6)
    assert estimated is False


def test_missing_prices_cost_nothing_but_cached_input_falls_back_to_the_input_price() -> None:
    u = Usage(input_tokens=1000, output_tokens=100, cached_input_tokens=400)
    assert _cost.token_cost(Prices(input_per_mtok=3.0), 1000, 100, 400) == pytest.approx(1000 * 3 / 1e6)
    assert _cost.attempt_cost(rec(usage=u), Prices(output_per_mtok=5.0), 0) == (pytest.approx(100 * 5 / 1e6), False)
    assert _cost.attempt_cost(rec(usage=u), Prices(), 0) == (0.0, False)
    assert _cost.attempt_cost(rec(usage=u), None, 0) == (None, False)


def test_a_loser_without_usage_is_estimated_from_characters() -> None:
    cost, estimated = _cost.attempt_cost(rec("lost", chars=401), P, request_chars=1000)
    # input: 1000 chars -> 250 tokens; output: 401 chars -> 101 tokens (4 characters a token, rounded up)
    assert cost == pytest.approx((250 * 2 + 101 * 8) / 1e6)
    assert estimated is True
    cancelled_early, estimated = _cost.attempt_cost(rec("cancelled", chars=0), P, request_chars=1000)
    assert cancelled_early == pytest.approx(250 * 2 / 1e6) and estimated is True


def test_a_side_left_unreported_is_estimated() -> None:
    # e.g. Anthropic's message_start gave the input tokens, the loser was cancelled before the final usage
    cost, estimated = _cost.attempt_cost(rec("lost", chars=40, usage=Usage(input_tokens=300)), P, 1000)
    assert cost == pytest.approx((300 * 2 + 10 * 8) / 1e6) and estimated is True


def test_failed_and_not_started_attempts_cost_what_was_reported() -> None:
    assert _cost.attempt_cost(rec("failed", error="boom", error_kind="http"), P, 1000) == (0.0, False)
    assert _cost.attempt_cost(rec("not_started"), P, 1000) == (0.0, False)
    failed_with_usage = rec("failed", usage=Usage(input_tokens=100, output_tokens=0))
    assert _cost.attempt_cost(failed_with_usage, P, 1000) == (pytest.approx(100 * 2 / 1e6), False)


def test_an_attempt_that_broke_off_mid_answer_costs_what_it_consumed() -> None:
    broke = rec("failed", chars=8, error="connection reset", error_kind="connection")
    cost, estimated = _cost.attempt_cost(broke, P, request_chars=1000)
    assert cost == pytest.approx((250 * 2 + 2 * 8) / 1e6) and estimated is True


def test_input_chars_counts_text_parts_and_tool_calls() -> None:
    messages = [
        {"role": "system", "content": "abcd"},
        {"role": "user", "content": [{"type": "text", "text": "123456"},
                                     {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]},
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get", "arguments": '{"a":1}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "xy"},
    ]
    assert _cost.input_chars(messages) == 4 + 6 + 3 + 7 + 2


# ---------------------------------------------------------------- a race


def test_price_records_and_the_race_cost_are_winner_plus_losers() -> None:
    records = (
        rec("won", index=0, usage=Usage(input_tokens=100, output_tokens=50)),
        rec("lost", index=1, chars=80),
        rec("failed", index=2, error="429", error_kind="rate_limited"),
        rec("not_started", index=3),
        rec("cancelled", index=4, chars=8),  # no prices: no cost
    )
    cheap = Prices(input_per_mtok=1.0, output_per_mtok=1.0)
    priced = _cost.price_records(records, [P, cheap, P, P, None], request_chars=40)
    won = (100 * 2 + 50 * 8) / 1e6
    lost = (10 * 1 + 20 * 1) / 1e6
    assert [r.cost_usd for r in priced] == [pytest.approx(won), pytest.approx(lost), 0.0, 0.0, None]
    assert [r.cost_estimated for r in priced] == [False, True, False, False, False]
    assert _cost.race_cost(priced) == pytest.approx(won + lost)
    result = raceway.RaceResult(
        race_id="r", text="", provider="p0", model="m", virtual_model="v", strategy="first_wins", ttft_ms=1,
        total_ms=2, finish_reason="stop", usage=None, attempts=priced, cost_usd=_cost.race_cost(priced),
    )
    assert result.wasted_cost_usd == pytest.approx(lost)


def test_without_prices_records_are_left_as_they_are() -> None:
    records = (rec("won"), rec("lost", index=1, chars=10))
    assert _cost.price_records(records, [None, None], 100) == records
    assert _cost.race_cost(records) is None


# ---------------------------------------------------------------- the budget guard


def test_expected_output_is_observed_or_default_capped_by_max_tokens() -> None:
    assert _cost.expected_output_tokens({}) == _cost.DEFAULT_EXPECTED_OUTPUT_TOKENS
    assert _cost.expected_output_tokens({"max_tokens": 100}) == 100
    assert _cost.expected_output_tokens({"max_completion_tokens": 64}, observed=80.2) == 64
    assert _cost.expected_output_tokens({}, observed=80.2) == 81


def test_the_budget_lets_the_first_attempt_run_and_skips_extras_beyond_the_limit() -> None:
    assert _cost.race_budget(None, [P, P], 1000, {}) is None
    # Each attempt: 250 input tokens × $2 + 100 output × $8 = $0.0013.
    budget = _cost.race_budget(0.003, [P, P, P, None], 1000, {"max_tokens": 100})
    assert budget is not None
    assert budget.estimates == pytest.approx((0.0013, 0.0013, 0.0013, 0.0))
    assert budget.allows([], 0)  # the first always runs, whatever it costs
    assert _cost.CostBudget(limit=0.0, estimates=(1.0,)).allows([], 0)
    assert budget.allows([0], 1)  # 0.0026 <= 0.003
    assert not budget.allows([0, 1], 2)  # 0.0039 > 0.003
    assert budget.allows([0, 1], 3)  # unpriced: free
    reason = budget.reason([0, 1], 2)
    assert reason == "skipped: the race's estimated cost $0.003900 would exceed max_cost_per_race_usd $0.003"
    skipped = _cost.budget_record(2, "p2", "m", reason)
    assert (skipped.status, skipped.error_kind, skipped.error) == ("not_started", "budget", reason)


def test_observed_output_per_provider_feeds_the_estimate() -> None:
    budget = _cost.race_budget(1.0, [P, P], 0, {}, observed_output=[10.0, None])
    assert budget is not None
    assert budget.estimates == pytest.approx((10 * 8 / 1e6, _cost.DEFAULT_EXPECTED_OUTPUT_TOKENS * 8 / 1e6))


# ---------------------------------------------------------------- totals


def finished(*records: AttemptRecord) -> RaceFinished:
    return RaceFinished(
        race_id="r", ts=1.0, elapsed_ms=10.0, virtual_model="v", strategy="first_wins", outcome="ok",
        attempts=records, winner=0, ttft_ms=5.0, total_ms=10.0,
    )


def test_the_tracker_totals_cost_and_waste_per_provider_and_persists_them(tmp_path: Path) -> None:
    tracker = Tracker(clock=lambda: 100.0)
    a = AttemptRecord(index=0, provider="a", model="m", status="won", started_ms=0, ttft_ms=5, ended_ms=10,
                      cost_usd=0.0021)
    b = AttemptRecord(index=1, provider="b", model="m", status="lost", started_ms=0, ttft_ms=6, ended_ms=10,
                      cost_usd=0.0004, cost_estimated=True)
    tracker.record(finished(a, b))
    tracker.record(finished(attrs.evolve(b, status="won", index=0), attrs.evolve(a, status="cancelled", index=1)))
    stats = tracker.snapshot()
    assert stats["a/m"].cost_usd == pytest.approx(0.0042)
    assert stats["a/m"].wasted_cost_usd == pytest.approx(0.0021)
    assert stats["b/m"].cost_usd == pytest.approx(0.0008)
    assert stats["b/m"].wasted_cost_usd == pytest.approx(0.0004)
    saved = json.loads(json.dumps({k: r.to_json() for k, r in tracker._records.items()}))
    again = {k: Record.from_json(v) for k, v in saved.items()}
    assert again["a/m"].cost_nusd == 4_200_000 and again["a/m"].wasted_nusd == 2_100_000
    table = stats_table(stats, now=100.0)
    assert "cost: $0.004200, wasted by losing: $0.002100" in table



def test_the_tracker_knows_a_providers_output_per_answer_for_the_budget() -> None:
    tracker = Tracker(clock=lambda: 100.0)
    assert tracker.mean_output_tokens("a/m") is None
    for out in (100, 300):
        won = AttemptRecord(index=0, provider="a", model="m", status="won", started_ms=0, ttft_ms=5, ended_ms=10)
        tracker.record(attrs.evolve(finished(won), usage={"input_tokens": 10, "output_tokens": out}))
    assert tracker.mean_output_tokens("a/m") == 200.0
