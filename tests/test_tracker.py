"""The performance tracker: honest counts, the score's promises (hypothesis), exploration, hedge delays."""

from __future__ import annotations

import math
import random
from typing import Any

import attrs
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from raceway import AttemptRecord, RaceFinished
from raceway._estimate import MIN_MS, STEPS_PER_DOUBLING, bucket_of
from raceway._record import NEUTRAL, REF_TTFT_S, STALE_S
from raceway._tracker import AUTO_HEDGE_FALLBACK_S, ProviderStats, Tracker

LABEL = "p/m"
EPS = 1e-12


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def race(
    status: str,
    ttft: float | None = None,
    *,
    waited: float | None = None,
    error_kind: str | None = None,
    outcome: str | None = None,
    retry_after: float | None = None,
    provider: str = "p",
    model: str = "m",
    race_id: str = "r",
    usage: dict[str, int | None] | None = None,
    strategy: str = "first_wins",
) -> RaceFinished:
    """A finished race with one attempt of ``provider/model``."""
    ended = waited if ttft is None else ttft + 50.0
    attempt = AttemptRecord(
        index=0,
        provider=provider,
        model=model,
        status=status,  # type: ignore[arg-type]
        started_ms=None if status == "not_started" else 0.0,
        ttft_ms=ttft,
        ended_ms=None if status == "not_started" else ended,
        error=None if error_kind is None else "boom",
        error_kind=error_kind,
        retry_after=retry_after,
        output_chars=10 if ttft is not None else 0,
    )
    return RaceFinished(
        race_id=race_id,
        ts=0.0,
        elapsed_ms=0.0,
        virtual_model="v",
        strategy=strategy,
        outcome=outcome or ("ok" if status == "won" else "failed"),
        attempts=(attempt,),
        winner=0 if status == "won" else None,
        ttft_ms=ttft,
        total_ms=None if ttft is None else ttft + 50.0,
        usage=usage,
    )


# One step of a history: (seconds since the previous, what happened, a TTFT or wait in ms).
# Times sit in the middle of the estimate's buckets, so that its ~9 % resolution
# (values in one bucket are represented by their mean) does not blur the
# monotonicity these properties check; test_estimate.py checks the resolution.
KINDS = ("won", "lost", "failed", "timeout", "cancelled", "abandoned")
ms = st.integers(0, 140).map(lambda k: MIN_MS * 2 ** ((k + 0.5) / STEPS_PER_DOUBLING))
steps = st.tuples(st.floats(0, 3 * STALE_S), st.sampled_from(KINDS), ms)
histories = st.lists(steps, max_size=30)


def event_of(kind: str, value: float) -> RaceFinished:
    if kind in ("won", "lost"):
        return race(kind, value)
    if kind == "failed":
        return race("failed", error_kind="http", waited=value)
    if kind == "timeout":
        return race("cancelled", waited=value, error_kind="timeout")
    if kind == "abandoned":
        return race("cancelled", waited=value, outcome="abandoned")
    return race("cancelled", waited=value)


def replay(history: list[tuple[float, str, float]], *extra: tuple[float, str, float]) -> tuple[Tracker, Clock]:
    clock = Clock()
    tracker = Tracker(clock=clock)
    for dt, kind, value in [*history, *extra]:
        clock.t += dt
        tracker.record(event_of(kind, value))
    return tracker, clock


def stats(tracker: Tracker) -> ProviderStats | None:
    return tracker.snapshot().get(LABEL)


# ------------------------------------------------------------------ the score


def test_a_provider_never_seen_is_neutral() -> None:
    tracker = Tracker(clock=Clock())
    assert tracker.score("anyone/at-all") == NEUTRAL
    assert tracker.snapshot() == {}


@given(histories)
def test_score_stays_in_bounds(history: list[tuple[float, str, float]]) -> None:
    clock = Clock()
    tracker = Tracker(clock=clock)
    for dt, kind, value in history:
        clock.t += dt
        tracker.record(event_of(kind, value))
        assert 0.0 <= tracker.score(LABEL) <= 1.0
        for part in tracker.snapshot()[LABEL].score_parts.values():
            assert 0.0 <= part <= 1.0


@given(histories, st.sampled_from(("failed", "timeout")), ms)
def test_a_failure_never_raises_the_score(history: list[Any], kind: str, value: float) -> None:
    before, _ = replay(history)
    after, _ = replay(history, (0.0, kind, value))
    assert after.score(LABEL) <= before.score(LABEL) + EPS


@given(histories, st.sampled_from(("won", "lost", "cancelled", "timeout")), ms, ms)
def test_slower_never_scores_higher(history: list[Any], kind: str, a: float, b: float) -> None:
    fast, slow = min(a, b), max(a, b)
    if kind in ("won", "lost"):
        # Kaplan-Meier hands a censored attempt's mass to the answers after it, so an
        # answer moved past a censoring point can pull the median down: excluded.
        censored = (v for _, k, v in history if k in ("cancelled", "timeout", "abandoned"))
        assume(not any(bucket_of(fast) <= bucket_of(v) < bucket_of(slow) for v in censored))
    with_fast, _ = replay(history, (0.0, kind, fast))
    with_slow, _ = replay(history, (0.0, kind, slow))
    assert with_fast.score(LABEL) >= with_slow.score(LABEL) - EPS


@given(histories, ms)
def test_wins_are_counted_but_never_scored(history: list[Any], ttft: float) -> None:
    """The seed's bug 2: a win must not make the next win likelier."""
    won, _ = replay(history, (0.0, "won", ttft))
    lost, _ = replay(history, (0.0, "lost", ttft))
    w, lo = stats(won), stats(lost)
    assert w is not None and lo is not None
    assert (w.wins, w.losses) == (lo.wins + 1, lo.losses - 1)
    assert w.score == lo.score and w.score_parts == lo.score_parts and w.ttft_p50_ms == lo.ttft_p50_ms


SAME_AFTER_A_CANCELLATION = ("wins", "losses", "failures", "answered", "consecutive_failures", "cooldown_until")


@given(histories, ms, st.booleans())
def test_a_cancellation_is_never_booked_as_a_loss(history: list[Any], waited: float, abandoned: bool) -> None:
    """Nothing a loss (or a failure) would change moves; only TTFT learns it was at least ``waited``."""
    before, _ = replay(history)
    after, _ = replay(history, (0.0, "abandoned" if abandoned else "cancelled", waited))
    b, a = stats(before), stats(after)
    assert a is not None
    assert (a.races, a.cancellations) == ((b.races + 1, b.cancellations + 1) if b else (1, 1))
    if b is None:
        assert (a.wins, a.losses, a.failures, a.score) == (0, 0, {}, NEUTRAL)
        return
    for name in SAME_AFTER_A_CANCELLATION:
        assert getattr(a, name) == getattr(b, name), name
    assert a.win_rate == b.win_rate  # a cancellation is not in the denominator either
    assert a.score_parts["reliability"] == b.score_parts["reliability"]
    assert a.score_parts["speed"] <= b.score_parts["speed"] + EPS  # "at least this slow", never faster
    for q in ("ttft_p50_ms", "ttft_p95_ms"):
        if getattr(b, q) is not None:
            assert getattr(a, q) >= getattr(b, q) - 1e-9  # censoring never lowers an estimate


def test_a_cancellation_before_any_answer_came_changes_no_estimate() -> None:
    tracker = Tracker(clock=Clock())
    for ttft in (100.0, 120.0, 150.0):
        tracker.record(race("lost", ttft))
    before = tracker.snapshot()[LABEL]
    tracker.record(race("cancelled", waited=30.0))  # stopped before anyone here would have answered
    after = tracker.snapshot()[LABEL]
    assert attrs.evolve(after, races=before.races, cancellations=before.cancellations) == before


def test_hedges_cancelled_early_are_measured_later_not_written_off() -> None:
    """The issue's hedged bug: p1, started as a hedge and cancelled three times, fell below an untried provider."""
    tracker = Tracker(clock=Clock())
    for n in range(3):
        tracker.record(race("cancelled", waited=30.0, race_id=f"r{n}", strategy="hedged"))
    s = tracker.snapshot()[LABEL]
    assert (s.losses, s.failures, s.cancellations, s.ttft_p50_ms) == (0, {}, 3, None)
    assert s.score == NEUTRAL == tracker.score("never/seen")  # no worse than an untried one


@given(histories, st.floats(0, 10 * STALE_S), st.floats(0, 10 * STALE_S))
def test_stale_knowledge_drifts_back_to_neutral(history: list[Any], a: float, b: float) -> None:
    tracker, clock = replay(history)
    start = clock.t
    clock.t = start + min(a, b)
    nearer = abs(tracker.score(LABEL) - NEUTRAL)
    clock.t = start + max(a, b)
    later = abs(tracker.score(LABEL) - NEUTRAL)
    assert later <= nearer + EPS
    clock.t = start + 40 * STALE_S
    assert tracker.score(LABEL) == pytest.approx(NEUTRAL, abs=1e-6)


def test_one_old_win_of_a_slow_provider_does_not_outrank_a_fast_newcomer() -> None:
    """NOTES.md item 2: the seed ranked a slow provider with one win above a fast new one."""
    tracker = Tracker(clock=Clock())
    tracker.record(race("won", 1200.0, provider="slow"))
    assert tracker.score("slow/m") < NEUTRAL  # below an unknown newcomer already
    tracker.record(race("lost", 150.0, provider="fast"))  # the newcomer's first race: it lost
    assert tracker.score("fast/m") > tracker.score("slow/m")


def test_the_score_formula() -> None:
    """0.4 × reliability + 0.6 × (0.5 + c × (speed - 0.5)), c = n / (n + 1)."""
    tracker = Tracker(clock=Clock())
    for _ in range(4):
        tracker.record(race("lost", 250.0))
    tracker.record(race("failed", error_kind="http", waited=5.0))
    parts = tracker.snapshot()[LABEL].score_parts
    reliability = (1.5 + 4) / 7 + (0.0 - (1.5 + 4) / 7) / 8  # running mean behind 3 pseudo-observations of 0.5
    speed = 0.5 + 4 / 5 * (REF_TTFT_S / (REF_TTFT_S + 0.25) - 0.5)
    assert parts == pytest.approx({"reliability": reliability, "speed": speed})
    assert tracker.score(LABEL) == pytest.approx(0.4 * reliability + 0.6 * speed)


def test_failures_always_leave_statistics() -> None:
    """NOTES.md item 3: a provider that only ever fails still has a record, and a low score."""
    tracker = Tracker(clock=Clock())
    for _ in range(5):
        tracker.record(race("failed", error_kind="connection", waited=30.0))
    s = tracker.snapshot()[LABEL]
    assert (s.races, s.wins, s.losses, s.failures) == (5, 0, 0, {"connection": 5})
    assert s.score < 0.4


def test_a_request_the_provider_cannot_serve_is_counted_but_not_held_against_it() -> None:
    tracker = Tracker(clock=Clock())
    tracker.record(race("failed", error_kind="unsupported", waited=0.0))
    s = tracker.snapshot()[LABEL]
    assert s.failures == {"unsupported": 1} and s.score == NEUTRAL and s.consecutive_failures == 0


# ------------------------------------------------------------------ counts


def test_counts_by_outcome_and_tokens() -> None:
    tracker = Tracker(clock=Clock())
    tracker.record(race("won", 100.0, usage={"input_tokens": 7, "output_tokens": 11}))
    tracker.record(race("lost", 300.0))
    tracker.record(race("failed", error_kind="http", waited=10.0))
    tracker.record(race("failed", error_kind="rate_limited", waited=10.0, retry_after=0.0))
    tracker.record(race("cancelled", waited=900.0, error_kind="timeout"))
    tracker.record(race("cancelled", waited=900.0))
    tracker.record(race("not_started"))
    s = tracker.snapshot()[LABEL]
    assert (s.races, s.wins, s.losses, s.cancellations, s.answered) == (6, 1, 1, 1, 2)
    assert s.failures == {"http": 1, "rate_limited": 1, "timeout": 1}
    assert s.win_rate == 1 / 5
    assert (s.input_tokens, s.output_tokens, s.output_chars) == (7, 11, 20)
    assert (s.latency_p50_ms, s.provider, s.model) == (150.0, "p", "m")
    assert s.ttft_p50_ms is not None and s.ttft_p50_ms >= 300.0  # two attempts waited 900 ms in vain:
    assert s.ttft_p95_ms == pytest.approx(900.0)  # the tail is at least that (a lower bound)


def test_the_same_provider_twice_in_one_race_counts_twice() -> None:
    """NOTES.md item 11: the seed keyed latencies by name, so duplicates collided."""
    a = AttemptRecord(index=0, provider="p", model="m", status="won", started_ms=0.0, ttft_ms=100.0, ended_ms=150.0)
    b = AttemptRecord(index=1, provider="p", model="m", status="lost", started_ms=0.0, ttft_ms=200.0, ended_ms=250.0)
    event = RaceFinished(
        race_id="r", ts=0.0, elapsed_ms=150.0, virtual_model="v", strategy="first_wins", outcome="ok",
        attempts=(a, b), winner=0, ttft_ms=100.0, total_ms=150.0,
    )
    tracker = Tracker(clock=Clock())
    tracker.record(event)
    s = tracker.snapshot()[LABEL]
    assert (s.races, s.wins, s.losses) == (2, 1, 1)
    assert tracker.ttft_percentile(LABEL, 1.0) == 200.0
    assert tracker.ttft_percentile(LABEL, 0.0) == 100.0


def test_unknown_provider_has_no_percentile() -> None:
    assert Tracker(clock=Clock()).ttft_percentile("x/y", 0.95) is None


def test_snapshot_of_some_labels_and_this_run_only() -> None:
    tracker = Tracker(clock=Clock())
    tracker.record(race("won", 100.0, provider="a"))
    tracker.record(race("won", 100.0, provider="b"))
    assert set(tracker.snapshot(["a/m", "zzz/m"])) == {"a/m"}
    loaded = Tracker(clock=Clock())
    loaded.load(tracker._records)
    loaded.record(race("lost", 100.0, provider="a"))
    run = loaded.snapshot(["a/m"], this_run=True)["a/m"]
    assert (run.races, run.wins, run.losses) == (1, 0, 1)
    assert loaded.snapshot(["a/m"])["a/m"].races == 2


# ------------------------------------------------------------------ exploration


def learned(*medians_ms: float, n: int = 150, sigma: float = 0.5, seed: int = 1) -> Tracker:
    rng = random.Random(seed)
    tracker = Tracker(clock=Clock(), rng=random.Random(seed))
    for _ in range(n):
        for i, median in enumerate(medians_ms):
            tracker.record(race("lost", median * math.exp(sigma * rng.gauss(0, 1)), provider=f"p{i}"))
    return tracker


def firsts(tracker: Tracker, labels: list[str], draws: int = 2000) -> list[float]:
    """How often each label draws the fastest TTFT."""
    counts = [0] * len(labels)
    for _ in range(draws):
        sampled = tracker.sample_race(labels)
        counts[min(range(len(labels)), key=lambda i: sampled[i][1] or math.inf)] += 1
    return [c / draws for c in counts]


def test_a_fresh_race_explores_nothing_yet() -> None:
    assert Tracker(clock=Clock()).sample_race(["a/m", "b/m"]) == [(NEUTRAL, None), (NEUTRAL, None)]


def test_thompson_draws_share_identical_providers_and_favour_a_clearly_faster_one() -> None:
    labels = ["p0/m", "p1/m", "p2/m"]
    for seed in (1, 2, 3):
        shares = firsts(learned(50.0, 50.0, 50.0, sigma=0.8, seed=seed), labels)
        # Each estimate carries its own sampling noise (~10 % at sigma 0.8 and
        # ~100 samples), honestly drawn: everyone is tried, none is locked in.
        assert all(0.05 < s < 0.75 for s in shares), shares
    assert firsts(learned(120.0, 60.0, 25.0), labels)[2] > 0.99


def test_an_unmeasured_provider_is_tried_among_measured_ones() -> None:
    tracker = learned(60.0, 60.0)
    shares = firsts(tracker, ["p0/m", "p1/m", "new/m"])
    assert 0.15 < shares[2] < 0.6  # drawn around the measured ones, widely


def test_draws_narrow_as_evidence_accumulates_and_are_repeatable() -> None:
    def spread(n: int) -> float:
        tracker = learned(100.0, n=n)
        logs = [math.log(tracker.sample("p0/m")[1]) for _ in range(500)]
        mean = sum(logs) / len(logs)
        return math.sqrt(sum((x - mean) ** 2 for x in logs) / len(logs))

    assert spread(3) > 2 * spread(100)
    one, two = learned(100.0, 80.0), learned(100.0, 80.0)
    assert [one.sample_race(["p0/m", "p1/m"]) for _ in range(5)] == [two.sample_race(["p0/m", "p1/m"]) for _ in range(5)]


def test_sampled_scores_stay_in_bounds_and_follow_reliability() -> None:
    tracker = Tracker(clock=Clock(), rng=random.Random(3))
    for _ in range(40):
        tracker.record(race("lost", 100.0, provider="good"))
        tracker.record(race("failed", error_kind="http", waited=10.0, provider="bad"))
        tracker.record(race("lost", 100.0, provider="bad"))
    good = [tracker.sample("good/m")[0] for _ in range(300)]
    bad = [tracker.sample("bad/m")[0] for _ in range(300)]
    assert all(0.0 <= s <= 1.0 for s in good + bad)
    assert sum(good) / 300 > sum(bad) / 300 + 0.1


# ------------------------------------------------------------------ hedge delay


def test_hedge_delay_falls_back_before_any_ttft_then_follows_the_quantile_a_little_above() -> None:
    tracker = Tracker(clock=Clock())
    assert tracker.hedge_delay(LABEL, 0.9) == AUTO_HEDGE_FALLBACK_S
    tracker.record(race("cancelled", waited=5.0))
    assert tracker.hedge_delay(LABEL, 0.9) == AUTO_HEDGE_FALLBACK_S  # censored only: no TTFT yet
    tracker.record(race("lost", 80.0))
    assert tracker.hedge_delay(LABEL, 0.9) == pytest.approx(0.080)  # one sample: the largest seen
    rng = random.Random(5)
    for _ in range(400):
        tracker.record(race("lost", 40.0 * math.exp(0.8 * rng.gauss(0, 1))))
    p90, p95 = (40.0 * math.exp(0.8 * z) / 1000 for z in (1.2816, 1.6449))
    assert p90 * 0.93 < tracker.hedge_delay(LABEL, 0.9) < p95  # p90 raised by one standard error (~p92)


def test_hedge_delay_is_clamped() -> None:
    tracker = Tracker(clock=Clock())
    tracker.record(race("lost", 0.0))
    assert tracker.hedge_delay(LABEL, 0.9) == 0.002
    tracker.record(race("lost", 1e9, provider="slow"))
    assert tracker.hedge_delay("slow/m", 0.9) == 30.0
