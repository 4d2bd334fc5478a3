"""The latency sketch: accurate, censoring-aware, decaying, mergeable, and plain data."""

from __future__ import annotations

import json
import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from raceway._estimate import BUCKETS, GROWTH, HALF_LIFE, RENORM_AT, LatencySketch, bucket_of


def lognormal(n: int, median: float, sigma: float, seed: int = 1) -> list[float]:
    rng = random.Random(seed)
    return [median * math.exp(sigma * rng.gauss(0, 1)) for _ in range(n)]


def true_quantile(values: list[float], q: float, *more: list[float]) -> float:
    """The nearest-rank quantile of ``values`` weighted as the sketch weighs them (newest most);
    ``more``: other processes' values, their newest weighing as much (a merge)."""
    weighted = sorted((v, GROWTH**i) for vs in (values, *more) for i, v in enumerate(vs))
    total = sum(w for _, w in weighted)
    seen = 0.0
    for v, w in weighted:
        seen += w
        if seen >= q * total - 1e-9:
            return v
    return weighted[-1][0]


def test_an_empty_sketch_knows_nothing() -> None:
    s = LatencySketch()
    assert s.quantile(0.5) is None and s.median() is None and s.n == 0.0
    assert not s.bounded(0.5)


def test_repeated_values_come_back_exactly() -> None:
    s = LatencySketch.of([50.0] * 7)
    assert s.quantile(0.0) == s.quantile(0.5) == s.quantile(1.0) == 50.0
    assert s.median() == 50.0
    assert LatencySketch.of([0.0]).quantile(0.5) == 0.0


@pytest.mark.parametrize("sigma", [0.3, 0.8, 1.2])
def test_quantiles_of_a_lognormal_are_within_a_few_percent(sigma: float) -> None:
    values = lognormal(400, 40.0, sigma)
    s = LatencySketch.of(values)
    for q in (0.1, 0.5, 0.9, 0.99):
        assert s.quantile(q) == pytest.approx(true_quantile(values, q), rel=0.07)  # within a bucket
        assert s.smooth_quantile(q) == pytest.approx(true_quantile(values, q), rel=0.1)
    assert s.log_spread() == pytest.approx(sigma, rel=0.2)


def test_censoring_is_kaplan_meier_not_a_sample() -> None:
    """Attempts stopped at 60 ms that would have taken 100 ms: ignoring them biases the median low."""
    s = LatencySketch()
    for v in (20.0, 40.0, 100.0, 100.0, 100.0):
        s.add(v)
    for _ in range(4):
        s.censor(60.0)  # (they would have said 100)
    naive = LatencySketch.of([20.0, 40.0, 100.0, 100.0, 100.0])
    assert naive.quantile(0.5) == 100.0  # 3 of 5 answers
    assert s.quantile(0.5) == 100.0 and s.quantile(0.3) == 100.0  # the censored mass is beyond 60 ms
    assert naive.quantile(0.3) == 40.0


def test_only_censored_observations_give_a_lower_bound() -> None:
    s = LatencySketch()
    s.censor(30.0)
    s.censor(80.0)
    assert s.quantile(0.5) == 80.0 and s.lower_bound() == 80.0
    assert not s.bounded(0.5) and s.n_events == 0.0
    s.add(10.0)
    assert s.quantile(0.1) == 10.0
    assert not s.bounded(0.9) and s.quantile(0.9) == 80.0  # beyond what censoring lets us see


@given(st.lists(st.floats(0.0, 1e5), max_size=40), st.floats(0.0, 1e5), st.floats(0.0, 1.0))
def test_censoring_never_lowers_a_quantile(values: list[float], censored_at: float, q: float) -> None:
    before = LatencySketch.of(values)
    after = LatencySketch.of(values)
    after.censor(censored_at)
    b, a = before.quantile(q), after.quantile(q)
    if b is not None:
        assert a is not None and a >= b - 1e-9


def test_old_observations_fade_with_a_half_life_in_observations() -> None:
    s = LatencySketch.of([100.0] * 3000)
    assert s.n == pytest.approx(HALF_LIFE / math.log(2), rel=0.01)  # the effective window
    for _ in range(int(HALF_LIFE * 2)):
        s.add(200.0)
    assert s.quantile(0.5) == 200.0  # the new regime took over...
    assert s.quantile(0.1) == 100.0  # ...and the old one is fading, not gone


def test_renormalisation_keeps_the_estimate() -> None:
    values = lognormal(9000, 40.0, 0.5, seed=3)
    s = LatencySketch.of(values)
    assert s.scale < RENORM_AT  # it was renormalised on the way
    tail = LatencySketch.of(values[-600:])
    assert s.quantile(0.5) == pytest.approx(tail.quantile(0.5), rel=0.1)


def test_merge_adds_two_processes_observations() -> None:
    a_values, b_values = lognormal(100, 40.0, 0.5, seed=1), lognormal(100, 80.0, 0.5, seed=2)
    a, b = LatencySketch.of(a_values), LatencySketch.of(b_values)
    a.merge(b)
    assert a.n == pytest.approx(LatencySketch.of(a_values).n * 2)
    assert a.quantile(0.5) == pytest.approx(true_quantile(a_values, 0.5, b_values), rel=0.07)
    c = LatencySketch()
    c.censor(500.0)
    a.merge(c)
    assert a.lower_bound() == 500.0


def test_json_round_trip_is_exact_and_compact() -> None:
    s = LatencySketch.of(lognormal(300, 40.0, 0.8))
    s.censor(70.0)
    data = json.loads(json.dumps(s.to_json()))
    t = LatencySketch.from_json(data)
    assert [t.quantile(q) for q in (0.1, 0.5, 0.9)] == [s.quantile(q) for q in (0.1, 0.5, 0.9)]
    assert t.n == s.n and t.lower_bound() == s.lower_bound()
    assert len(data["buckets"]) < 60
    for bad in ({}, {"scale": 0, "buckets": {}}, {"scale": 1, "buckets": {"999": [1, 1, 0, 0]}},
                {"scale": 1, "buckets": {"3": [-1, 0, 0, 0]}}, {"scale": 1, "buckets": {"x": [1, 1, 0, 0]}}):
        with pytest.raises(ValueError):
            LatencySketch.from_json(bad)


def test_buckets_cover_a_millisecond_to_minutes() -> None:
    assert bucket_of(0.0) == 0 and bucket_of(-5.0) == 0
    assert bucket_of(1e12) == BUCKETS - 1
    widths = [bucket_of(v * 1.1) - bucket_of(v) for v in (1.0, 50.0, 3000.0, 60_000.0)]
    assert all(w in (1, 2) for w in widths)  # about 9 % each
