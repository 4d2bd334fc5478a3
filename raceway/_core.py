"""The race core: one sans-IO state machine that runs a strategy by the rules.

Like h11's ``Connection``, the core never touches trio, a socket or a clock.
Facts go in — an attempt's first token, its complete answer, its failure,
each at a time — and the core answers what to do next:

* :class:`StartAttempt` ``(i)`` — start attempt ``i`` now (ask again at once);
* :class:`Decided` ``(i, cancel_losers_at)`` — attempt ``i`` won; the others
  may run until ``cancel_losers_at`` (the grace window), then stop;
* :class:`WakeAt` ``(t)`` — nothing to do until ``t`` or the next fact;
* :class:`RaceFailed` — the race ended without a winner, and why.

Every rule the engine enforces lives here once, so the trio driver
(``_race.py``) and ``raceway.testing.simulate`` (a loop over a heap of
scripted facts) run a strategy identically — what the kit proves about a
strategy is what the engine does:

* decisions are dispatched by ``isinstance`` (a subclass of ``Wait`` is a
  wait); anything else is a :class:`~raceway.StrategyError`, as is a
  strategy whose ``observe``/``decide`` raises, an index out of range, an
  attempt started twice, or a pick of an attempt that has not succeeded
  (each error names its rule, see :data:`RULES`);
* a duck-typed strategy needs ``observe`` and ``decide``; ``success_on``
  defaults to ``"first_token"`` and ``Pick.cancel_losers_at`` to "at once";
* a wait is clamped to the deadline (``timeout_ms``): a strategy still
  waiting at the deadline fails the race as a timeout;
* a wait while nothing runs and nothing is left to start fails the race at
  once ("nothing can change any more"); with attempts left to start, a wait
  is honoured (a strategy may back off);
* ``decide`` asked more than :data:`MAX_DECISIONS` times in one race is a
  runaway strategy (say, ``Wait(now + 1e-9)`` forever).

Time. The driver passes its clock's readings; the core keeps race time
(seconds since ``t0``). ``(t0 + t) - t0`` can come out a hair below ``t`` on
a float clock: once the timer set for ``t`` has fired, the time *is* ``t``,
or a strategy asked about a moment just before the one it waits for waits
for it again — and on a virtual clock that timer fires again at once,
forever.
"""

from __future__ import annotations

import math
from typing import Any, Final

from ._actions import (
    MAX_DECISIONS,
    Action,
    Decided,
    Gate,
    RaceFailed,
    SkipAttempt,
    StartAttempt,
    WakeAt,
    describe_exception,
    strategy_error,
)
from ._strategy import Completed, Failed, FirstToken, GiveUp, Pick, RaceSpec, Start, Started, Wait

_NOT_YET: Final = math.inf


class RaceCore:
    """One race's rules around one strategy object.

    Args:
        strategy: the strategy built for ``spec`` (anything with
            ``observe(fact)`` and ``decide(now)``).
        spec: the race; ``len(spec.contenders)`` attempts.
        t0: the clock reading at the race's start (the driver's clock; the
            simulator uses 0).
        log: when a list, every ``(now, decision)`` is appended to it (the kit's
            record; the engine passes ``None``).
        gate: asked before each start (see :data:`Gate`); ``None``: every
            start goes ahead.
    """

    __slots__ = (
        "_answered",
        "_asked",
        "_cancel_at",
        "_cancelled",
        "_ended",
        "_failed",
        "_first",
        "_n",
        "_observe",
        "_pending",
        "_skipped",
        "_started",
        "_telling",
        "_wake",
        "_wake_race_time",
        "broken",
        "deadline",
        "decide",
        "gate",
        "log",
        "origin",
        "outcome",
        "spec",
        "strategy",
        "success_on",
        "t0",
    )

    def __init__(
        self, strategy: Any, spec: RaceSpec, t0: float = 0.0, log: list[Any] | None = None, gate: Gate | None = None
    ) -> None:
        self.strategy = strategy
        self.gate = gate
        self.spec = spec
        self.t0 = t0
        self.log = log
        self.deadline = spec.deadline
        n = self._n = len(spec.contenders)
        self._started = [_NOT_YET] * n
        self._first = [_NOT_YET] * n  # first token (a success, unless it failed later)
        self._answered = [False] * n  # completed with a non-empty answer
        self._ended = [_NOT_YET] * n  # when it completed or failed
        self._failed = [False] * n
        self._cancelled = [False] * n
        self._skipped: list[int] = []
        self._pending = 0  # started and not ended
        self._asked = 0
        self._telling = True  # facts go to the strategy (until the decision)
        self._cancel_at = math.inf
        #: Each attempt's participant (its index in ``spec.contenders``): a
        #: failover restart is a new attempt of an earlier participant.
        self.origin = list(range(n))
        #: ``(time, attempt)`` of every winner that broke before its answer was committed.
        self.broken: list[tuple[float, int]] = []
        self._wake = math.inf  # the clock reading of the current WakeAt, for the tie rule
        self._wake_race_time = math.inf
        self.outcome: Action | None = None  # set once: Decided or RaceFailed
        self.success_on = getattr(strategy, "success_on", "first_token")
        observe = getattr(strategy, "observe", None)
        decide = getattr(strategy, "decide", None)
        if not callable(observe) or not callable(decide):
            missing = " and ".join(m for m, f in (("observe(fact)", observe), ("decide(now)", decide)) if not callable(f))
            self.outcome = RaceFailed(
                "error",
                f"strategy {type(strategy).__name__} has no {missing} method",
                0.0,
                strategy_error("protocol", f"strategy {type(strategy).__name__} has no {missing} method"),
            )
            self._observe: Any = None
            self.decide: Any = None
            self._telling = False
        else:
            self._observe = observe
            self.decide = decide

    # ------------------------------------------------------------ time

    def now(self, clock: float) -> float:
        """Race time at clock reading ``clock`` (with the timer-tie rule, see the module)."""
        t = clock - self.t0
        if clock >= self._wake and t < self._wake_race_time:
            return self._wake_race_time
        return t

    # ------------------------------------------------------------ facts

    # Facts carry race time ``t``: the driver reads it with :meth:`now`.

    def first_token(self, i: int, t: float) -> None:
        """Attempt ``i`` produced its first non-empty token (or tool-call delta) at ``t``."""
        self._first[i] = t
        if self._telling:
            self._tell(FirstToken(i, t))

    def completed(
        self, i: int, t: float, text: str = "", finish_reason: str | None = None, tool_calls: tuple[Any, ...] = ()
    ) -> None:
        """Attempt ``i`` finished its answer at ``t``; ``text`` (and ``tool_calls``) is all of it."""
        if self._ended[i] == _NOT_YET:
            self._ended[i] = t
            self._pending -= 1
        if text or tool_calls:
            self._answered[i] = True
            if self._first[i] == _NOT_YET:
                self._first[i] = t
        if self._telling:
            self._tell(Completed(i, t, text, finish_reason, tool_calls))

    def failed(self, i: int, t: float, kind: str = "error") -> None:
        """Attempt ``i`` failed at ``t`` (the winner's own break is :meth:`winner_broke`)."""
        if self._ended[i] == _NOT_YET:
            self._ended[i] = t
            self._pending -= 1
        self._failed[i] = True
        self._first[i] = _NOT_YET
        self._answered[i] = False
        if self._telling:
            self._tell(Failed(i, t, kind))

    def cancelled(self, i: int, t: float) -> None:
        """The driver stopped attempt ``i`` at ``t`` (a loser at the end of the grace window)."""
        if self._ended[i] == _NOT_YET:
            self._ended[i] = t
            self._pending -= 1
            self._cancelled[i] = True

    def winner_broke(self, t: float, kind: str = "error") -> None:
        """The winner failed at ``t`` before its answer was committed: fail over.

        The strategy's decision stands as made; the failover is the core's
        own rule, the same in the engine and the kit: the earliest other
        success still running wins at once; else every participant that has
        not failed (never started, or cancelled as a loser: that one gets a
        new attempt index) starts now, and the first success wins. A new
        decision is due within ``spec.deadline`` of the break.
        """
        decided = self.outcome
        assert isinstance(decided, Decided), "winner_broke() needs a decided race"
        i = decided.index
        self.failed(i, t, kind)
        self.broken.append((t, i))
        self._cancel_at = decided.cancel_losers_at
        self.deadline = t + self.spec.deadline
        self.outcome = None

    def _tell(self, fact: Any) -> None:
        try:
            self._observe(fact)
        except Exception as exc:
            self.outcome = RaceFailed(
                "error",
                f"observe({fact!r}) raised {describe_exception(exc)}",
                fact.t,
                strategy_error("raise", f"strategy {type(self.strategy).__name__}.observe() raised {describe_exception(exc)}", exc),
            )

    # ------------------------------------------------------------ decisions

    def next(self, clock: float) -> Action:
        """What to do at clock reading ``clock``: ask the strategy, check the answer.

        Call again after a :class:`StartAttempt` (a strategy starts several
        attempts by answering ``Start`` several times); after a
        :class:`WakeAt`, call again at that time or after the next fact.
        :class:`Decided` and :class:`RaceFailed` are final: every later call
        returns the same object.
        """
        if self.outcome is not None:
            return self.outcome
        now = self.now(clock)
        if self.broken:
            return self._failover(now)
        self._asked += 1
        if self._asked > MAX_DECISIONS:
            return self._error("runaway", f"decide() was asked {MAX_DECISIONS} times and never ended the race", now)
        try:
            d = self.decide(now)
        except Exception as exc:
            return self._error(
                "raise", f"decide({now:.6g}) raised {describe_exception(exc)}", now, exc
            )
        if self.log is not None:
            self.log.append((now, d))
        kind = type(d)
        if kind is Start or (kind is not Wait and kind is not Pick and isinstance(d, Start)):
            return self._start(d.index, now)
        if kind is Wait or isinstance(d, Wait):
            return self._wait(d.until, now)
        if kind is Pick or isinstance(d, Pick):
            return self._pick(d, now)
        if isinstance(d, GiveUp):
            self.outcome = RaceFailed("gave_up", str(d.reason), now)
            return self.outcome
        return self._error("decision", f"decide() returned {d!r}, not Start, Pick, Wait or GiveUp", now)

    def _index(self, i: Any, verb: str, now: float) -> RaceFailed | None:
        if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < self._n:
            return self._error("range", f"{verb} attempt {i!r}, which does not exist ({self._n} participants)", now)
        return None

    def name(self, i: int) -> str:
        """Attempt ``i`` as messages name it: its provider (a participant's name in the kit)."""
        return self.spec.contenders[i].provider or f"attempt {i}"

    def _start(self, i: Any, now: float) -> Action:
        bad = self._index(i, "started", now)
        if bad is not None:
            return bad
        if self._started[i] != _NOT_YET:
            return self._error("start_twice", f"started {self.name(i)} twice", now)
        gate = self.gate
        refused = None if gate is None else gate(self._running_or_done(), i)
        self._started[i] = now
        self._pending += 1
        self._tell(Started(i, now))
        if refused is not None:
            self.failed(i, now, refused[0])
            self._skipped.append(i)
        if self.outcome is not None:
            return self.outcome
        if refused is not None:
            return SkipAttempt(i, now, *refused)
        return StartAttempt(i, now)

    def _running_or_done(self) -> list[int]:
        """Attempts that started for real (the gate counts what they cost)."""
        return [j for j, t in enumerate(self._started) if t != _NOT_YET and j not in self._skipped]

    def _pick(self, d: Pick, now: float) -> Action:
        i = d.index
        bad = self._index(i, "picked", now)
        if bad is not None:
            return bad
        if not self.succeeded(i):
            return self._error("winner", f"picked {self.name(i)}, which {self._why_not(i)}", now)
        cancel = d.cancel_losers_at
        if cancel is None:
            cancel = now
        elif isinstance(cancel, bool) or not isinstance(cancel, int | float) or math.isnan(cancel):
            return self._error("decision", f"Pick({i}, cancel_losers_at={cancel!r}): not a time", now)
        self.outcome = Decided(i, now, max(float(cancel), now))
        self._telling = False
        return self.outcome

    def _wait(self, until: Any, now: float) -> Action:
        deadline = self.deadline
        if now >= deadline:
            self.outcome = RaceFailed("timeout", "the deadline passed", now)
            return self.outcome
        if self._pending == 0 and _NOT_YET not in self._started:
            # Nothing runs and nothing is left to start: nothing can change.
            self.outcome = RaceFailed("exhausted", "it waited with no attempt running and none left to start", now)
            return self.outcome
        if until is None or until <= now:
            wake = deadline
        elif isinstance(until, int | float) and not isinstance(until, bool):
            wake = min(float(until), deadline)
        else:
            return self._error("decision", f"Wait({until!r}): not a time", now)
        self._wake_race_time = wake
        self._wake = self.t0 + wake
        return WakeAt(wake)

    def _error(self, rule: str, message: str, now: float, cause: BaseException | None = None) -> RaceFailed:
        name = type(self.strategy).__name__
        self.outcome = RaceFailed("error", message, now, strategy_error(rule, f"strategy {name} {message}", cause))
        return self.outcome

    def _failover(self, now: float) -> Action:
        """The next step after a broken winner (see :meth:`winner_broke`)."""
        alive = [
            (self._ended[j] if self.success_on == "complete" else self._first[j], j)
            for j in range(len(self.origin))
            if self.succeeded(j) and not self._failed[j] and not self._cancelled[j]
        ]
        if alive:
            _, j = min(alive)
            self.outcome = Decided(j, now, max(self._cancel_at, now), failover=True)
            return self.outcome
        for p in range(self._n):
            attempts = [j for j, o in enumerate(self.origin) if o == p]
            if any(self._failed[j] for j in attempts):
                continue
            if self._started[p] == _NOT_YET:
                return self._start_restart(p, now)
            if all(self._cancelled[j] for j in attempts):
                self.origin.append(p)
                for column in (self._started, self._first, self._ended):
                    column.append(_NOT_YET)
                for flags in (self._answered, self._failed, self._cancelled):
                    flags.append(False)
                return self._start_restart(len(self.origin) - 1, now)
        if now >= self.deadline:
            self.outcome = RaceFailed("timeout", "no provider replaced the broken winner before the deadline", now)
        elif self._pending == 0:
            self.outcome = RaceFailed("exhausted", "the winner broke and no other provider could answer", now)
        else:
            self._wake_race_time = self.deadline
            self._wake = self.t0 + self.deadline
            return WakeAt(self.deadline)
        return self.outcome

    def _start_restart(self, j: int, now: float) -> StartAttempt:
        self._started[j] = now
        self._pending += 1
        return StartAttempt(j, now)

    # ------------------------------------------------------------ queries

    def succeeded(self, i: int) -> bool:
        """Whether attempt ``i`` has succeeded by the strategy's ``success_on`` rule."""
        if self.success_on == "complete":
            return self._answered[i]
        return self._first[i] != _NOT_YET

    def _why_not(self, i: int) -> str:
        if self._started[i] == _NOT_YET:
            return "never started"
        if self._failed[i]:
            return f"failed at {self._ended[i]:.3f}"
        if self._ended[i] != _NOT_YET:
            return f"completed empty at {self._ended[i]:.3f}"
        if self.success_on == "complete":
            return "has not completed (the strategy succeeds on complete answers)"
        return "has not produced a token"
