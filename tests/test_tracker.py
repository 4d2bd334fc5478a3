"""The performance tracker: counts, percentiles, and the score's promises (hypothesis)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from raceway import AttemptRecord, RaceFinished
from raceway._tracker import NEUTRAL, REF_TTFT_S, STALE_S, Tracker, percentile

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
        strategy="first_wins",
        outcome=outcome or ("ok" if status == "won" else "failed"),
        attempts=(attempt,),
        winner=0 if status == "won" else None,
        ttft_ms=ttft,
        total_ms=None if ttft is None else ttft + 50.0,
        usage=usage,
    )


# One step of a history: (seconds since the previous, what happened, a TTFT or wait in ms).
KINDS = ("won", "lost", "failed", "timeout", "cancelled", "abandoned")
steps = st.tuples(
    st.floats(0, 3 * STALE_S),
    st.sampled_from(KINDS),
    st.floats(0, 30_000),
)
histories = st.lists(steps, max_size=30)
ms = st.floats(0, 30_000)


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
    with_fast, _ = replay(history, (0.0, kind, fast))
    with_slow, _ = replay(history, (0.0, kind, slow))
    assert with_fast.score(LABEL) >= with_slow.score(LABEL) - EPS


@given(histories, ms)
def test_a_win_never_scores_below_a_loss(history: list[Any], ttft: float) -> None:
    won, _ = replay(history, (0.0, "won", ttft))
    lost, _ = replay(history, (0.0, "lost", ttft))
    assert won.score(LABEL) >= lost.score(LABEL) - EPS


@given(histories, st.floats(0, 1))
def test_a_win_no_slower_than_expected_raises_the_score(history: list[Any], fraction: float) -> None:
    before, _ = replay(history)
    speed = before.snapshot()[LABEL].score_parts["speed"] if history else NEUTRAL
    expected_ms = REF_TTFT_S * (1 / speed - 1) * 1000  # the TTFT the speed estimate stands for
    after, _ = replay(history, (0.0, "won", expected_ms * fraction))
    assert after.score(LABEL) >= before.score(LABEL) - EPS


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
    clock = Clock()
    tracker = Tracker(clock=clock)
    tracker.record(race("won", 1200.0, provider="slow"))
    assert tracker.score("slow/m") < NEUTRAL  # below an unknown newcomer already
    tracker.record(race("lost", 150.0, provider="fast"))  # the newcomer's first race: it lost
    assert tracker.score("fast/m") > tracker.score("slow/m")


def test_failures_always_leave_statistics() -> None:
    """NOTES.md item 3: a provider that only ever fails still has a record, and a low score."""
    tracker = Tracker(clock=Clock())
    for _ in range(5):
        tracker.record(race("failed", error_kind="connection", waited=30.0))
    stats = tracker.snapshot()[LABEL]
    assert (stats.races, stats.wins, stats.failures) == (5, 0, {"connection": 5})
    assert stats.score < 0.4


def test_a_provider_always_cancelled_before_its_token_looks_slow() -> None:
    tracker = Tracker(clock=Clock())
    for _ in range(10):
        tracker.record(race("cancelled", waited=2000.0))
    stats = tracker.snapshot()[LABEL]
    assert stats.ttft_p50_ms is None  # never measured...
    assert stats.score_parts["speed"] < 0.3  # ...but known to be at least that slow
    assert stats.cancellations == stats.losses == 10


def test_abandoned_races_say_nothing_about_the_provider() -> None:
    tracker = Tracker(clock=Clock())
    tracker.record(race("cancelled", waited=5000.0, outcome="abandoned"))
    stats = tracker.snapshot()[LABEL]
    assert stats.cancellations == 1
    assert stats.score == NEUTRAL


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
    assert (s.races, s.wins, s.losses, s.cancellations, s.answered) == (6, 1, 2, 1, 2)
    assert s.failures == {"http": 1, "rate_limited": 1, "timeout": 1}
    assert (s.input_tokens, s.output_tokens, s.output_chars) == (7, 11, 20)
    assert (s.ttft_p50_ms, s.latency_p50_ms) == (100.0, 150.0)
    assert (s.provider, s.model) == ("p", "m")


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


@given(st.lists(st.floats(0, 1e6), min_size=1, max_size=300), st.floats(0, 1))
def test_percentiles_are_nearest_rank_and_cached(samples: list[float], q: float) -> None:
    tracker = Tracker(clock=Clock())
    for s in samples:
        tracker.record(race("lost", s))
    window = samples[-200:]
    assert tracker.ttft_percentile(LABEL, q) == percentile(window, q)
    assert percentile(window, q) in window
    assert tracker.ttft_percentile(LABEL, 0.0) == min(window)
    assert tracker.ttft_percentile(LABEL, 1.0) == max(window)
    record = tracker._records[LABEL]
    assert record.ttft_sorted() == sorted(window)  # kept sorted as samples come and go
    tracker.record(race("lost", 5.0))
    assert record.ttft_sorted() == sorted([*samples, 5.0][-200:])
    assert tracker.ttft_percentile(LABEL, 0.0) == min(5.0, *samples[-199:])


def test_unknown_provider_has_no_percentile() -> None:
    assert Tracker(clock=Clock()).ttft_percentile("x/y", 0.95) is None
