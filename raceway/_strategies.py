"""The built-in strategies: ``first_wins``, ``weighted``, ``quality``, ``hedged``.

Each is a :class:`~raceway.Strategy` (``_strategy.py``): it reads the facts
its base class keeps and answers one decision at a time; the race core
(``_core.py``) applies the rules. The semantics table is README's
"Strategies" section and DESIGN's "Race semantics".
"""

from __future__ import annotations

import json
import math

from ._strategy import (
    Answer,
    Completed,
    Contender,
    Decision,
    Fact,
    Failed,
    FirstToken,
    GiveUp,
    Pick,
    RaceSpec,
    Start,
    Started,
    Strategy,
    Wait,
)


class FirstWins(Strategy):
    """Everyone starts at once; the first token wins at once.

    Losers keep running for the grace window after the win (so their TTFT is
    measured), then are cancelled.
    """

    name = "first_wins"

    # Kept up to date by observe() so that decide() — asked once per start
    # and once per wake — costs O(1), not a scan of every attempt.
    def __init__(self, spec: RaceSpec) -> None:
        super().__init__(spec)
        self._best = -1  # the earliest success so far (ties: the lower index)
        self._best_t = math.inf
        self._next = 0  # no attempt below this index is unstarted

    def observe(self, fact: Fact) -> None:
        super().observe(fact)
        kind = type(fact)
        if kind is FirstToken or kind is Completed:
            a = self.attempts[fact.index]
            t = a.first_token
            if a.failed is None and t is not None and (t, fact.index) < (self._best_t, self._best):
                self._best, self._best_t = fact.index, t
        elif kind is Failed and fact.index == self._best:
            self._best, self._best_t = -1, math.inf
            for i, a in enumerate(self.attempts):
                t = a.first_token
                if a.failed is None and t is not None and t < self._best_t:
                    self._best, self._best_t = i, t

    def decide(self, now: float) -> Decision:
        if self._best >= 0:
            return Pick(self._best, cancel_losers_at=self._best_t + self.spec.grace)
        attempts = self.attempts
        n = len(attempts)
        while self._next < n and attempts[self._next].started is not None:
            self._next += 1
        if self._next < n:
            return Start(self._next)
        if not any(a.failed is None and a.first_token is None and a.completed is None for a in attempts):
            return GiveUp("every attempt failed")
        return Wait(self.spec.deadline)


class _Windowed(Strategy):
    """Shared by ``weighted`` and ``quality``: collect successes for a window, pick the best."""

    def value(self, i: int) -> float:
        raise NotImplementedError

    def decide(self, now: float) -> Decision:
        waiting = self.not_started()
        if waiting:
            return Start(waiting[0])
        wins = self.successes()
        if not wins:
            if not self.any_pending():
                return GiveUp("every attempt failed")
            return Wait(self.spec.deadline)
        first_t = self.success_time(wins[0])
        assert first_t is not None
        window_end = first_t + self.spec.grace
        if now < window_end and now < self.spec.deadline and self.any_pending():
            return Wait(min(window_end, self.spec.deadline))
        inside = [i for i in wins if (self.success_time(i) or 0.0) <= window_end]
        # max() keeps the first of equals, and ``inside`` is earliest first.
        best = max(inside, key=self.value)
        return Pick(best, cancel_losers_at=now)


class Weighted(_Windowed):
    """Everyone starts at once; the best of the successes inside the grace window wins.

    A success is valued ``weight × score × 1 / (1 + ttft_s)``: the reference's
    weight, the tracker's score and how fast it answered this time. The
    decision comes when the window closes, or sooner when no attempt is
    still pending. Ties go to the earlier token.
    """

    name = "weighted"

    def value(self, i: int) -> float:
        c = self.spec.contenders[i]
        ttft = self.attempts[i].first_token or 0.0
        return c.weight * c.score / (1.0 + ttft)


def default_quality_score(answer: Answer) -> float:
    """The default quality scorer: a clean, non-empty, untruncated answer scores 1.

    Empty: 0. Cut off by a token limit (``length``/``max_tokens``): 0.5.
    Stopped for another reason (a content filter, say): 0.25. A tool call
    is an answer; one whose arguments are not JSON, or text that is not JSON
    when JSON output was asked for, scores 0.2: below any clean answer.
    """
    if answer.tool_calls:
        if not all(_is_json(call.arguments or "{}") for call in answer.tool_calls):
            return 0.2
    elif not answer.text.strip():
        return 0.0
    elif answer.wants_json and not _is_json(answer.text):
        return 0.2
    reason = answer.finish_reason
    if reason in (None, "stop", "end_turn", "stop_sequence", "tool_calls", "tool_use"):
        return 1.0
    if reason in ("length", "max_tokens"):
        return 0.5
    return 0.25


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


class Quality(_Windowed):
    """Everyone runs to completion; the best complete answer inside the window wins.

    After the first complete answer, waits up to the grace window for more,
    then picks the highest ``spec.scorer`` value (default
    :func:`default_quality_score`). Ties go to the earlier completion.
    """

    name = "quality"
    success_on = "complete"

    def value(self, i: int) -> float:
        a = self.attempts[i]
        c = self.spec.contenders[i]
        scorer = self.spec.scorer or default_quality_score
        answer = Answer(
            text=a.text,
            finish_reason=a.finish_reason,
            provider=c.provider,
            model=c.model,
            ttft=None if a.first_token is None or a.started is None else a.first_token - a.started,
            total=(a.completed or 0.0) - (a.started or 0.0),
            tool_calls=a.tool_calls,
            wants_json=self.spec.wants_json,
        )
        return float(scorer(answer))


class Hedged(Strategy):
    """One attempt at a time, highest priority first; more only when it is slow.

    Order: highest ``priority`` first; equal priorities by estimated TTFT
    (fastest first; the engine's draw, so exploration reorders them), then by
    tracker score (best first), then as listed. The next attempt starts when the latest
    one has had ``hedge_delay`` seconds with no token (if the budget allows:
    a *hedge*), or at once when an attempt fails (a *failover*: one per
    failure, always allowed, even while other attempts still run). When the budget refuses a hedge, it asks
    again after twice the wait, then four times, ... (other races refill the
    budget meanwhile); no hedge starts at or after the deadline. The first
    token wins; the others are cancelled at once.
    """

    name = "hedged"

    def __init__(self, spec: RaceSpec) -> None:
        super().__init__(spec)
        c = spec.contenders
        self.order = sorted(range(len(c)), key=lambda i: (-c[i].priority, _ttft_key(c[i]), -c[i].score, i))
        self._refusals = 0  # hedges the budget refused since the latest start
        self._owed = 0  # failovers owed: one per failure not yet replaced
        self._last_start = 0.0
        self._last_index = self.order[0] if self.order else 0

    def observe(self, fact: Fact) -> None:
        super().observe(fact)
        if isinstance(fact, Started):
            self._last_start = fact.t
            self._last_index = fact.index
            self._refusals = 0
        elif isinstance(fact, Failed):
            self._owed += 1

    def decide(self, now: float) -> Decision:
        wins = self.successes()
        if wins:
            return Pick(wins[0], cancel_losers_at=now)
        if not self.order:  # everyone sat out (rate caps)
            return GiveUp("no participant could race")
        waiting = [i for i in self.order if self.attempts[i].started is None]
        if len(waiting) == len(self.order):
            return Start(waiting[0])
        deadline = self.spec.deadline
        if waiting and self._owed and now < deadline:
            self._owed -= 1
            return Start(waiting[0])
        if not self.any_pending():
            return Start(waiting[0]) if waiting else GiveUp("every attempt failed")
        if not waiting or now >= deadline:
            return Wait(deadline)
        delay = self.spec.contenders[self._last_index].hedge_delay
        # 0 refusals: the delay; then 2x, 4x ... the delay after the start.
        hedge_at = self._last_start + delay * 2**self._refusals
        if now < hedge_at:
            return Wait(min(hedge_at, deadline))
        budget = self.spec.budget
        if budget is None or budget.try_spend():
            return Start(waiting[0])
        if budget.max_extra_load <= 0 or delay <= 0:
            return Wait(deadline)  # hedging is off: failover only
        self._refusals += 1
        return Wait(min(self._last_start + delay * 2**self._refusals, deadline))


def _ttft_key(c: Contender) -> float:
    return 0.0 if c.ttft_estimate is None else c.ttft_estimate


BUILTIN: dict[str, type[Strategy]] = {
    cls.name: cls for cls in (FirstWins, Weighted, Quality, Hedged)
}
