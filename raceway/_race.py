"""The race driver: runs one race's attempts as trio tasks, as a strategy directs.

How a race runs
---------------

This is trio's happy eyeballs (``open_tcp_stream``) grown up. Each attempt is
a task inside its own cancel scope (spawned into the engine's nursery: see
:meth:`Race.join`). The attempt task (``_race_tasks.py``) pulls chunks from
its provider; before the decision it buffers them and reports *facts* (first
token, completed, failed) to the race core (``_core.RaceCore``), which holds
the strategy and every rule. The *driver* (this module) runs in the caller's
task, inside ``__anext__``: it asks the core what to do, starts attempts, and
sleeps on a ``trio.Event`` until the next fact or the time the core named
(filed with the engine's ``_timers.Timers``, which sets the event then: no
cancel scope per wait). These modules keep only trio: tasks, cancel scopes,
the winner's stream, timers; the decisions are the core's, the same object
``raceway.testing.simulate`` drives.

When the strategy picks a winner, the caller gets the winner's buffered
chunks and then its live ones (``_race_caller.py``): read from the stream
itself once the winner's task hands it over, or passed over a small memory
channel so a slow caller slows the upstream read (backpressure) and nothing
piles up. Each loser's cancel scope gets a deadline: the end of the grace
window. Trio cancels it then, without a timer task of ours; closing the
provider's iterator closes its HTTP response. When the caller's stream ends
before the window closes, the losers are cancelled at once — there is
nothing left to wait for. The race's write-up (records, result, final
event) is the end of this module and ``_writeup.py``.

Why not the naive versions (the seed's bugs, NOTES.md):

* Deciding when a stream *opens* rewards fast headers, not fast answers; an
  attempt succeeds on its first non-empty token.
* Waiting for the grace timer before returning (seed bug 1) turns a 50 ms
  answer into a 1 s one: ``first_wins`` hands over the first token at once
  and lets the grace window run in the background.
* Waiting for every attempt (seed bug 4) lets one provider that ignores
  cancellation hang the race. Here nothing waits on an attempt except through
  the strategy, and the deadline (``timeout_ms``) is enforced by the driver
  even if a strategy would wait longer.
* A deadline on the whole stream (seed bug 7) kills healthy winners; here
  ``timeout_ms`` bounds the decision, ``idle_timeout_ms`` each later chunk.

The commit point. An answer is *committed* when its first chunk reaches the
caller (for ``complete()``, which hands over nothing until it returns: when
it returns). Losers keep buffering while they run, so a winner that breaks
before the commit is replaced — by the core's failover rule — and the caller
never sees the break; after the commit a break is the caller's
:class:`~raceway.StreamInterruptedError`.

What counts as an attempt's first token: its first non-empty content or its
first tool-call delta (a tool call is an answer); reasoning only under
``first_token: any``.

Nothing outlives the race: ``engine.stream()``'s context manager stops
whatever is left and waits for every attempt task to end (:meth:`Race.join`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

import trio

from . import _writeup as writeup
from ._actions import Decided, Gate, RaceFailed, SkipAttempt, StartAttempt
from ._attempt import Attempt
from ._chunk import Chunk
from ._config import Prices
from ._core import RaceCore
from ._cost import race_cost
from ._errors import (
    StrategyError,
)
from ._events import AttemptStarted, RaceDecided, RaceFinished, RaceStarted
from ._providers import Provider, Request
from ._race_caller import CallerSide
from ._result import AttemptRecord, RaceResult, RaceResultLater
from ._strategy import RaceSpec, StrategyProtocol
from ._timers import Timers

# Chunks the winner may run ahead of the caller before its upstream read pauses.
WINNER_BUFFER = 32


class Race(CallerSide):
    """One race: its attempts, the race core, and the caller's stream of chunks.

    Made by the engine; the caller sees it as the object of
    ``async with engine.stream(...) as race``: iterate it for the winner's
    chunks, then read :attr:`result`.
    """

    __slots__ = (
        "_all_done",
        "_attempts",
        "_benched",
        "_caller_parts",
        "_clock",
        "_committed",
        "_core",
        "_crashed",
        "_decided_at",
        "_emit",
        "_ending",
        "_event",
        "_failure",
        "_finished",
        "_first_token_any",
        "_handed",
        "_handoff",
        "_hold",
        "_idle",
        "_idle_timeout",
        "_learn_later",
        "_live",
        "_nursery",
        "_on_finished",
        "_pricing",
        "_receive",
        "_result",
        "_send",
        "_starting",
        "_strategy_name",
        "_t0",
        "_timer",
        "_timers",
        "_ttft_timeout",
        "_virtual_model",
        "_virtual_model_desc",
        "_wake",
        "_wall0",
        "_winner",
        "_written",
        "race_id",
    )

    def __init__(
        self,
        *,
        race_id: str,
        nursery: trio.Nursery,
        timers: Timers,
        clock: Callable[[], float],
        wall: float,
        strategy: StrategyProtocol,
        spec: RaceSpec,
        attempts: list[tuple[Provider, Request]],
        virtual_model: str,
        virtual_model_desc: str,
        strategy_name: str,
        ttft_timeout: float | None,
        idle_timeout: float,
        emit: Callable[[Any], None] | None,
        on_finished: Callable[[Race], None],
        benched: tuple[AttemptRecord, ...] = (),
        numbers: tuple[int, ...] = (),
        participants: tuple[tuple[str, str], ...] = (),
        first_token_any: bool = False,
        hold: bool = False,
        gate: Gate | None = None,
        learn_later: bool = False,
        pricing: tuple[tuple[Prices | None, ...], int] | None = None,
    ) -> None:
        self.race_id = race_id
        self._nursery = nursery
        self._clock = clock  # the run's clock: what trio.current_time() reads
        self._wall0 = wall  # the wall clock at the start (engine.wall_clock): events' ts is this plus race time
        self._core = core = RaceCore(strategy, spec, clock(), gate=gate)
        self._pricing = pricing  # (prices by participant number, the request's characters): cost the records
        numbers = numbers or tuple(range(len(attempts)))
        self._attempts = [Attempt(i, n, p, r) for i, (n, (p, r)) in enumerate(zip(numbers, attempts, strict=True))]
        self._virtual_model = virtual_model
        self._virtual_model_desc = virtual_model_desc
        self._strategy_name = strategy_name
        self._ttft_timeout = ttft_timeout
        self._idle_timeout = idle_timeout
        self._emit = emit
        self._on_finished = on_finished
        self._learn_later = learn_later  # the engine may learn from this race in a batch, if it goes well
        self._benched = benched  # cooling-down participants that sit this race out
        self._first_token_any = first_token_any
        self._hold = hold  # complete(): nothing is committed before the end
        self._committed = False
        self._t0 = core.t0
        self._wake = trio.Event()
        self._timers = timers
        self._timer: list[Any] | None = None  # filed with timers for the core's WakeAt; None once fired
        self._winner: Attempt | None = None
        self._decided_at: float | None = None  # when the caller's winner was first decided
        self._failure: BaseException | None = None
        self._receive: trio.MemoryReceiveChannel[Chunk | str] | None = None
        self._send: trio.MemorySendChannel[Chunk | str] | None = None
        self._result: RaceResult | None = None
        self._written: tuple[AttemptRecord, ...] | None = None  # _records(), once made
        self._ending: tuple[str, float, float, str | None, Attempt | None] | None = None  # (outcome, now, ts, error, winner)
        self._event: RaceFinished | None = None
        self._finished = False
        self._caller_parts: list[str] = []
        self._starting: list[Attempt] = []  # started at this instant, not yet spawned (_launch)
        self._live = 0  # attempt tasks running (in the engine's nursery; join() waits for them)
        self._all_done: trio.Event | None = None
        self._crashed: BaseException | None = None
        self._idle: trio.CancelScope | None = None  # the caller's wait for the winner's next chunk
        self._handoff: trio.Event | None = None  # see _next_item
        self._handed: Any = None
        if emit is not None:
            emit(
                RaceStarted(
                    race_id=race_id,
                    ts=wall,
                    virtual_model=virtual_model,
                    strategy=strategy_name,
                    participants=participants or tuple((p.name, r.model) for p, r in attempts),
                )
            )
        self._advance()

    # ------------------------------------------------------------ the driver

    def _advance(self) -> None:
        """Carry out the core's answers at this instant until it waits or the race is decided."""
        try:
            self._apply()
        finally:
            self._launch()

    def _launch(self) -> None:
        """Spawn the attempts started at this instant, from a random one on.

        trio runs a batch of new tasks in the order they were spawned or in
        reverse, so without a random start the middle attempt of three is
        never first to reach its upstream, and the first-spawned one is first
        to take the pool's warm connection: on identical upstreams, one
        provider would win every other race for no reason of its own. A
        random rotation makes each one first as often (a shuffle costs more).
        """
        starting = self._starting
        if not starting:
            return
        n = len(starting)
        k = int(random.random() * n) if n > 1 else 0  # a random first one (trio may reverse the rest)
        spawn, run = self._nursery.start_soon, self._run_attempt
        try:
            for j in range(n):
                spawn(run, starting[(k + j) % n])
                self._live += 1  # only a task that exists is waited for (join)
        except RuntimeError as exc:  # the engine's nursery is closed
            raise RuntimeError("the engine closed while this race ran: race inside the `async with open_engine(...)` block") from exc
        finally:
            starting.clear()

    def _apply(self) -> None:
        core = self._core
        clock = self._clock()  # one reading: the core's answers at this instant
        while self._winner is None and self._failure is None:
            action = core.next(clock)
            kind = type(action)
            if kind is StartAttempt:
                self._start(action.index, action.at)  # type: ignore[union-attr]
            elif kind is SkipAttempt:
                skip: SkipAttempt = action  # type: ignore[assignment]
                self._attempts[skip.index].skipped = (skip.kind, skip.reason)
            elif kind is Decided:
                self._pick(action)  # type: ignore[arg-type]
            elif kind is RaceFailed:
                self._race_failed(action)  # type: ignore[arg-type]
            else:  # WakeAt
                self._set_timer(self._t0 + action.until)  # type: ignore[union-attr]
                return
        self._cancel_timer()  # decided or failed: nothing to wake for

    def _set_timer(self, when: float) -> None:
        timer = self._timer
        if timer is not None:
            if timer[0] == when:
                return
            self._timers.cancel(timer)
        self._timer = self._timers.at(when, self._on_timer)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timers.cancel(self._timer)
            self._timer = None

    def _on_timer(self) -> None:
        """The core's time has come (called by the engine's timers task)."""
        self._timer = None
        self._wake.set()

    async def _drive(self) -> None:
        while self._winner is None and self._failure is None:
            await self._wake.wait()
            if self._crashed is not None:
                self._raise_crash()
            self._wake = trio.Event()
            self._advance()

    def _task_ended(self) -> None:
        """An attempt task ended (whatever became of its attempt)."""
        self._live -= 1
        if not self._live and self._all_done is not None:
            self._all_done.set()

    def _crash(self, exc: BaseException) -> None:
        """An attempt's task ended by ``exc`` that is no provider's failure (a KeyboardInterrupt, a
        bug of ours): the caller gets it at once, wherever it waits — as a race's own nursery
        would hand it over."""
        if self._crashed is None:
            self._crashed = exc
        self._wake.set()
        if self._idle is not None:
            self._idle.cancel()

    def _start(self, i: int, now: float) -> None:
        if i == len(self._attempts):  # a failover restart: a new attempt of an earlier participant
            origin = self._attempts[self._core.origin[i]]
            self._attempts.append(Attempt(i, origin.number, origin.provider, origin.request))
        a = self._attempts[i]
        a.status = "running"
        a.started = now
        a.scope = trio.CancelScope()
        if self._emit is not None:
            self._emit(
                a.event(
                    AttemptStarted,
                    self.race_id,
                    now,
                    self._wall0,
                    restart=i >= len(self._core.spec.contenders),
                )
            )
        self._starting.append(a)  # spawned by _launch, when this instant's starts are known

    def _pick(self, decided: Decided) -> None:
        now = decided.at
        w = self._attempts[decided.index]
        self._winner = w
        self._decided_at = now  # a failover's decision replaces the broken winner's
        w.status = "won"
        w.stop_at = math.inf  # a loser's grace deadline no longer applies to it
        if w.scope is not None and w.scope.deadline != math.inf:  # (setting it costs: every race's path)
            w.scope.deadline = math.inf
        if w.ended is None:
            if w.provider.movable_stream:
                self._handoff = trio.Event()  # its task hands the stream over at its next chunk
            else:
                self._send, self._receive = trio.open_memory_channel[Chunk | str](WINNER_BUFFER)
        cancel_at = self._t0 + decided.cancel_losers_at
        for a in self._attempts:
            if a is w:
                continue
            if a.scope is not None and a.ended is None:
                a.stop_at = cancel_at
                # A loser still without a first token keeps its ttft watch, if that comes first.
                ttft_at = math.inf
                if self._ttft_timeout is not None and a.first_token is None and a.started is not None:
                    ttft_at = self._t0 + a.started + self._ttft_timeout
                a.scope.deadline = min(ttft_at, cancel_at)
            elif a.completed:
                a.status = "lost"
        if self._emit is not None:
            self._emit(
                w.event(
                    RaceDecided,
                    self.race_id,
                    now,
                    self._wall0,
                    ttft_ms=((w.first_token or now) - (w.started or 0.0)) * 1000,
                    failover=decided.failover,
                )
            )

    def _race_failed(self, failed: RaceFailed) -> None:
        if failed.error is not None:
            self._strategy_failed(failed.error)
            return
        now = failed.at
        timeout = failed.outcome == "timeout"
        for a in self._attempts:
            if a.status == "running" and a.ended is None:
                a.error = writeup.stopped_error(a, failed.reason, timeout=timeout, deadline=self._core.deadline)
                self._close_attempt(a, now)
        broken = self._core.broken
        if broken:  # the winner broke and no provider could replace it
            self._failure = self._interrupted(self._attempts[broken[-1][1]])
            return
        exc = writeup.failure(self._attempts, failed.reason, timeout=timeout, deadline=self._core.spec.deadline, benched=self._benched)
        self._failure = exc
        self._report_finished("timeout" if timeout else "failed", now, error=str(exc))

    def _strategy_failed(self, error: StrategyError) -> None:
        """The strategy raised or broke a rule: stop every attempt, fail the race."""
        if self._failure is not None or self._finished:
            return
        now = self._now()
        for a in self._attempts:
            if a.status in ("running", "won") and a.ended is None:
                self._close_attempt(a, now)
        self._failure = error
        self._report_finished("failed", now, error=str(error))
        self._wake.set()

    # ------------------------------------------------------------ the end

    def _finish_stream(self, w: Attempt) -> None:
        """The winner's stream ended well: close the losers, build the result, report."""
        if self._finished:
            return
        assert self._decided_at is not None
        now = self._now()
        self._stop_losers(now)
        fields = writeup.result_fields(
            w,
            race_id=self.race_id,
            virtual_model=self._virtual_model,
            virtual_model_desc=self._virtual_model_desc,
            strategy=self._strategy_name,
            decided_at=self._decided_at,
            now=now,
        )
        if self._pricing is None and self._emit is None:  # written up off the caller's path (RaceResultLater)
            self._result = RaceResultLater.later(self._records, **fields)
        else:  # listeners get them in the final event at once; a cost is worked out from them
            records = self._records()
            cost = race_cost(records) if self._pricing is not None else None
            self._result = RaceResult(attempts=records, cost_usd=cost, **fields)
        self._report_finished("ok", now)

    def _stop_losers(self, now: float) -> None:
        for a in self._attempts:
            if a is not self._winner and a.status == "running" and a.ended is None:
                self._close_attempt(a, now)

    def abandon(self) -> None:
        """The caller left before the end: stop everything and report it."""
        if self._finished:
            return
        now = self._now()
        for a in self._attempts:
            if a.status in ("running", "won") and a.ended is None:
                self._close_attempt(a, now)
        self._report_finished("abandoned", now)

    def _records(self) -> tuple[AttemptRecord, ...]:
        """Every participant's record, written up once (the result's and the final event's)."""
        records = self._written
        if records is None:
            records = self._written = writeup.records(
                self._attempts, self._benched, len(self._core.spec.contenders), self._pricing
            )
            result = self._result
            if type(result) is RaceResultLater:
                result.fill(records)
        return records

    def _report_finished(self, outcome: str, now: float, *, error: str | None = None, winner: Attempt | None = None) -> None:
        """The race is over: tell the engine, which asks for the final event now or in its learning batch."""
        self._finished = True
        self._cancel_timer()  # a finished race leaves nothing in the engine's timers
        self._ending = (outcome, now, self._wall0 + now, error, winner or self._winner)
        self._on_finished(self)

    def quiet_success(self) -> bool:
        """Whether the engine may learn from this race in a batch: it went well, all raced, nothing failed."""
        ending = self._ending
        return (
            self._learn_later
            and ending is not None
            and ending[0] == "ok"
            and not self._benched
            and all(a.error is None and a.skipped is None for a in self._attempts)
        )

    def finished_event(self) -> RaceFinished:
        """The race's ``RaceFinished`` event (made once, when first asked)."""
        event = self._event
        if event is None:
            assert self._ending is not None, "the race has not finished"
            outcome, now, ts, error, winner = self._ending
            event = self._event = writeup.finished(
                outcome,
                now,
                self._records(),
                race_id=self.race_id,
                virtual_model=self._virtual_model,
                strategy=self._strategy_name,
                winner=winner,
                decided_at=self._decided_at,
                error=error,
                ts=ts,
            )
        return event
