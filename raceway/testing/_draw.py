"""``race_scenarios()``: the hypothesis strategy that draws race timelines.

Times are drawn in whole milliseconds, half of the time from a few round
values (0, 50, 100, 120, 250, 500, 1000 ms) so that ties — two tokens at the
same instant, a token exactly at the deadline or at the end of the grace
window — come up often instead of almost never. Every choice shrinks toward
the plain case: one participant that answers at 0 and completes, a 1 s
deadline, a 250 ms grace window, so a shrunk counter-example shows only what
matters.
"""

from __future__ import annotations

from hypothesis import strategies as st

from ._scenario import HEDGE_RESERVE, Participant, Scenario

#: Round times (ms) drawn often, so that facts coincide with each other and with windows.
ROUND_MS = (0, 50, 100, 120, 250, 500, 1000)
#: A grace window longer than any race (the "huge" case), in ms.
HUGE_GRACE_MS = 1_000_000

NAMES = "abcdefghijklmnopqrstuvwxyz"

#: What a participant does once started, simplest first (hypothesis shrinks toward the first).
BEHAVIOURS = (
    "answers",  # a token, then a complete answer
    "fails",  # an error before any token
    "hangs",  # nothing, ever
    "answers then hangs",  # a token, then nothing more
    "answers then fails",  # a token, then an error mid-stream
    "empty answer",  # completes without a single non-empty token
)


# Strategies that do not depend on the arguments, built once: hypothesis
# validates and labels every new strategy object, which costs more than a draw.
_BEHAVIOURS = st.sampled_from(BEHAVIOURS)
_FAIL_KINDS = st.sampled_from(("error", "timeout", "rate_limited", "connection"))
_TEXTS = st.sampled_from(("ok", "a longer answer", " "))
_FINISH_REASONS = st.sampled_from(("stop", "length", None, "content_filter"))
_PRIORITIES = st.integers(0, 3)
_WEIGHTS = st.sampled_from((1.0, 0.0, 0.5, 2.0, 3.0))
_SCORES = st.sampled_from((0.5, 0.0, 0.25, 0.75, 1.0))
_EXTRA_LOADS = st.sampled_from((0.1, 0.0, 1.0))
_BALANCES = st.sampled_from(sorted({HEDGE_RESERVE, 0.0, 1.0, 2.0, 3.0}, reverse=True))


def _ms(max_ms: int) -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from([t for t in ROUND_MS if t <= max_ms]), st.integers(0, max_ms))


@st.composite
def _participant(draw: st.DrawFn, name: str, ms: st.SearchStrategy[int]) -> Participant:
    kind = draw(_BEHAVIOURS)
    ttft_ms = end_ms = None
    if kind in ("answers", "answers then hangs", "answers then fails"):
        ttft_ms = draw(ms)
    if kind in ("answers", "answers then fails"):
        assert ttft_ms is not None
        end_ms = ttft_ms + draw(ms)
    elif kind in ("fails", "empty answer"):
        end_ms = draw(ms)
    return Participant(
        name=name,
        ttft=None if ttft_ms is None else ttft_ms / 1000,
        end=None if end_ms is None else end_ms / 1000,
        fails=kind in ("fails", "answers then fails"),
        fail_kind=draw(_FAIL_KINDS),
        text=draw(_TEXTS),
        finish_reason=draw(_FINISH_REASONS),
        priority=draw(_PRIORITIES),
        weight=draw(_WEIGHTS),
        score=draw(_SCORES),
        hedge_delay=draw(ms) / 1000,
    )


@st.composite
def _scenario(
    draw: st.DrawFn,
    counts: st.SearchStrategy[int],
    participants: list[st.SearchStrategy[Participant]],
    deadlines_ms: st.SearchStrategy[int],
    graces_ms: st.SearchStrategy[int],
) -> Scenario:
    n = draw(counts)
    drawn = tuple(draw(participants[i]) for i in range(n))
    max_extra_load = draw(_EXTRA_LOADS)
    return Scenario(
        participants=drawn,
        deadline=draw(deadlines_ms) / 1000,
        grace=draw(graces_ms) / 1000,
        max_extra_load=max_extra_load,
        hedge_balance=draw(_BALANCES) if max_extra_load > 0 else 0.0,
    )


def race_scenarios(
    *, min_participants: int = 1, max_participants: int = 4, max_time: float = 2.0
) -> st.SearchStrategy[Scenario]:
    """A hypothesis strategy drawing race timelines (:class:`Scenario` values).

    Each participant has a priority (0-3), a weight, a tracker score and a
    hedge delay, and a script: it answers (a token, then a complete answer,
    or a token and then a hang or an error mid-stream), fails before any
    token, hangs, or completes with an empty answer. Deadlines run from 1 ms
    (before anything can succeed) to twice ``max_time``; the grace window is
    0, ordinary, or huge (longer than any race); the hedge budget is full,
    empty or nearly so.

    Args:
        min_participants: at least this many participants (1 or more).
        max_participants: at most this many (26 at most: they are named a-z).
        max_time: the latest time, in seconds, of any single scripted step.
    """
    if not 1 <= min_participants <= max_participants <= len(NAMES):
        raise ValueError(f"need 1 <= min_participants <= max_participants <= {len(NAMES)}")
    max_ms = int(max_time * 1000)
    if max_ms < 1:
        raise ValueError("max_time must be at least 0.001 s")
    ms = _ms(max_ms)
    return _scenario(
        st.integers(min_participants, max_participants),
        [_participant(NAMES[i], ms) for i in range(max_participants)],
        st.one_of(st.sampled_from((1000, 100, 250, 2000)), st.integers(1, 2 * max_ms)),
        st.one_of(st.sampled_from((250, 0, 100, 1000, HUGE_GRACE_MS)), ms),
    )
