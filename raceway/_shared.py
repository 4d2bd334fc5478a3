"""Shared state across processes and hosts: one task per engine keeps it in step with Redis.

``redis: {url, prefix, events}`` makes ``open_engine`` start
:func:`keep_shared` in the engine's nursery. Its loop runs a *round* about
once a second (:data:`SYNC_INTERVAL_S`), and at once when this engine
benches a provider:

1. cooldowns this engine opened go out; the fleet's come in
   (``_fleet_cooldowns.py``; a separate connection also follows the fleet's
   announcements live, so a 429 elsewhere benches here within milliseconds);
2. statistics: this engine's observations since the last round go out as one
   delta, the fleet's totals come back (``_fleet_stats.py``);
3. hedge budgets: deposits go out, grants come back (``_fleet_budget.py``);
   rate-cap leases are renewed (``_fleet_caps.py``);
4. with ``events: true``, buffered events and a ``stats`` line are appended to
   ``{prefix}:events`` (``_fleet_events.py``).

Never on the race path
----------------------

No race awaits Redis. Races read only local state — the tracker (which the
rounds update), the breakers (which fleet cooldowns are written into) and
each virtual model's budget allotment — and leave news in memory for the
next round. Every Redis call runs under :data:`CALL_TIMEOUT_S`; the last
round at close is bounded by :data:`CLOSE_TIMEOUT_S`, so a Redis that accepts
connections and never answers costs a warning and, when the engine opens,
one call's timeout.

When Redis is away
------------------

A failed round logs one warning (the URL with its password redacted) and the
engine goes on with local state: statistics keep accumulating locally,
budgets deposit locally again. Rounds are retried with back-off
(:data:`BACKOFF_FIRST_S` doubling to :data:`BACKOFF_MAX_S`); the first that
succeeds logs one line saying Redis is back and delivers what was learned
meanwhile, exactly once (``_fleet_stats.py``: numbered batches).

Hooks
-----

:meth:`Fleet.install` connects the parts to an engine (a :class:`FleetHost`:
this module never imports the engine) without touching the race code: it
sets the engine's ``on_learned`` hook (to see finished races and the
cooldowns they open), its ``hedge_budget_for`` hook (to give each virtual
model a :class:`~raceway._fleet_budget.FleetHedgeBudget`) and the tracker's
rate caps' fleet delegate, and undoes all three when the task ends.
"""

from __future__ import annotations

import contextvars
import logging
import os
import secrets
import socket
import weakref
from collections.abc import Callable
from typing import Any, Protocol

import trio

from ._config import Config
from ._events import RaceFinished
from ._fleet_budget import FleetHedgeBudget
from ._fleet_caps import FleetCaps
from ._fleet_config import RedisConfig, redact_url
from ._fleet_cooldowns import SharedCooldowns
from ._fleet_events import SharedEvents
from ._fleet_link import CALL_TIMEOUT_S, Link
from ._fleet_stats import SharedStatistics, TrackerShare
from ._strategy import HedgeBudget
from ._tracker import ProviderStats, Tracker

log = logging.getLogger("raceway")

#: Seconds between rounds: the fleet's figures are at most about this old.
SYNC_INTERVAL_S = 1.0
#: The last round, when the engine closes, may take this long at most.
CLOSE_TIMEOUT_S = 2.0
#: ``open_engine`` waits this long at most for the first round (so a fresh engine's
#: ``stats()`` already shows the fleet's figures) before it goes on without.
START_WAIT_S = 0.5
#: After a failed round, wait this long before the next; doubling up to the maximum.
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 30.0

_FLEETS: weakref.WeakKeyDictionary[Any, Fleet] = weakref.WeakKeyDictionary()

#: True in the shared loop's tasks (and the client's tasks they start).
_IN_FLEET: contextvars.ContextVar[bool] = contextvars.ContextVar("raceway_fleet", default=False)


class FleetHost(Protocol):
    """What the fleet needs of an engine (``raceway.Engine`` is one): its config, tracker
    and events, and the two hooks it sets while it runs."""

    config: Config
    on_learned: Callable[[RaceFinished, tuple[Any, ...]], None] | None
    hedge_budget_for: Callable[[str, HedgeBudget], HedgeBudget] | None

    @property
    def tracker(self) -> Tracker: ...

    def stats(self, *, this_run: bool = False) -> dict[str, ProviderStats]: ...

    def subscribe(self, listener: Callable[[Any], None]) -> Callable[[], None]: ...

    def publish(self, event: Any) -> None: ...

    def forget_plans(self) -> None: ...


class _QuietClient(logging.Filter):
    """Drops coredis's own records from raceway's fleet tasks: a traceback per failed
    connection attempt, every back-off, would bury the one warning raceway logs itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _IN_FLEET.get()


_QUIET = _QuietClient()


def fleet_of(engine: FleetHost) -> Fleet | None:
    """The engine's fleet link, when ``redis`` is configured and its task runs."""
    return _FLEETS.get(engine)


class Fleet:
    """One engine's part in the fleet: the parts, the loop's state, its hooks."""

    def __init__(self, engine: FleetHost, config: RedisConfig) -> None:
        self.engine = engine
        self.config = config
        self.engine_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        models: list[str | None] = [*engine.config.virtual_models] or [None]
        labels = {p.label for m in models for p in engine.config.resolve(m).participants}
        self.share = TrackerShare(engine.tracker, labels)
        self.statistics = SharedStatistics(self.share)
        self.cooldowns = SharedCooldowns(engine.tracker, labels, self._emit, self.engine_id)
        self.cooldowns.wake = self._poke
        self.events = SharedEvents(engine, config.events_maxlen) if config.events else None
        # rpm / max_in_flight across the fleet: the engine's rate caps ask caps.try_start() and
        # call caps.finished() (_fleet_caps.py); renewed each round.
        self.caps = FleetCaps()
        # One budget per virtual model, made now so the first round (before open_engine
        # returns) joins them to the fleet's buckets: no race hedges on a local reserve.
        self.budgets: dict[str, FleetHedgeBudget] = {}
        for m in models:
            resolved = engine.config.resolve(m)
            self.budgets.setdefault(
                # No local reserve while joining: until the first round, hedges wait for the fleet's grant.
                resolved.name, FleetHedgeBudget(max_extra_load=resolved.hedge.max_extra_load, fleet=True, balance=0.0)
            )
        self.link: Link | None = None
        self.up = False  # the latest round succeeded
        self.rounds = 0  # successful rounds
        self.failed_rounds = 0
        self._outage = False
        self._failures = 0
        self._retry_at = 0.0
        self._wake = trio.Event()
        self._synced = trio.Event()
        self._round_over = trio.Event()
        self._first = trio.Event()  # the first round is over, well or not
        self._undo: list[Callable[[], None]] = []

    # ---------------------------------------------------------------- hooks

    def install(self) -> None:
        """Set the engine's hooks (module docstring, "Hooks")."""
        engine, tracker, share, cooldowns = self.engine, self.engine.tracker, self.share, self.cooldowns
        budgets = self.budgets

        def learned(event: RaceFinished, news: tuple[Any, ...]) -> None:
            share.note(event)
            if news:
                cooldowns.noted(news)

        def hedge_budget(name: str, local: HedgeBudget) -> HedgeBudget:
            budget = budgets.get(name)
            if budget is None:
                budget = budgets[name] = FleetHedgeBudget(max_extra_load=local.max_extra_load, reserve=local.reserve)
            return budget

        tracker.caps.fleet = self.caps  # rpm / max_in_flight hold across the fleet
        engine.on_learned, engine.hedge_budget_for = learned, hedge_budget
        engine.forget_plans()  # plans made before now get the fleet's budget too

        def undo() -> None:
            tracker.caps.fleet = None
            engine.on_learned = engine.hedge_budget_for = None
            engine.forget_plans()

        self._undo.append(undo)
        if self.events is not None:
            self._undo.append(self.events.close)
        _FLEETS[engine] = self

    def uninstall(self) -> None:
        while self._undo:
            self._undo.pop()()
        _FLEETS.pop(self.engine, None)

    def _emit(self, event: Any) -> None:
        self.engine.publish(event)

    def _poke(self) -> None:
        self._wake.set()

    # ---------------------------------------------------------------- the loop

    async def run(self, *, task_status: trio.TaskStatus[Fleet] = trio.TASK_STATUS_IGNORED) -> None:
        """Rounds until cancelled, then a last bounded one. Never raises (but ``Cancelled``).

        The client lives in a shielded worker: cancelling the engine's nursery
        would otherwise cancel the client's connection tasks too, and the last
        round would find its connection gone. The worker stops when told, and
        a deadline bounds its last round and the client's exit.
        """
        self.install()
        import coredis  # noqa: F401  (0.3 s of imports: before the first round's clock starts)

        closing = trio.Event()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._worker, closing)
                with trio.move_on_after(START_WAIT_S):
                    await self._first.wait()
                task_status.started(self)
                try:
                    await trio.sleep_forever()
                finally:
                    closing.set()
        finally:
            self.uninstall()

    async def _worker(self, closing: trio.Event) -> None:
        _IN_FLEET.set(True)
        client_log = logging.getLogger("coredis")
        if _QUIET not in client_log.filters:
            client_log.addFilter(_QUIET)
        with trio.CancelScope(shield=True) as guard:
            try:
                async with self._client() as client, self._client() as watch_client:
                    self.link = link = Link(client, self.config.prefix, self.engine_id)
                    with trio.CancelScope() as loop_scope:
                        async with trio.open_nursery() as nursery:
                            await self._round(link)
                            self._first.set()

                            async def stop_when_closing() -> None:
                                await closing.wait()
                                guard.deadline = trio.current_time() + CLOSE_TIMEOUT_S + CALL_TIMEOUT_S
                                loop_scope.cancel()

                            nursery.start_soon(stop_when_closing)
                            nursery.start_soon(self._watch, Link(watch_client, self.config.prefix, self.engine_id))
                            while True:
                                await self._wait()
                                await self._round(link)
                    with trio.move_on_after(CLOSE_TIMEOUT_S):
                        await self._round(link, final=True)
            except Exception as exc:  # a bug of ours or the client's must not take the engine down
                log.warning(
                    "raceway: shared state through Redis stopped (%s); racing on local state",
                    _one_line(exc, self.config.url),
                )
            finally:
                self._first.set()

    def _client(self) -> Any:
        import coredis
        from coredis.retry import NoRetryPolicy

        return coredis.Redis.from_url(
            self.config.url,
            decode_responses=True,
            retry_policy=NoRetryPolicy(),
            connect_timeout=CALL_TIMEOUT_S,
            verify_version=False,
        )

    async def _wait(self) -> None:
        now = trio.current_time()
        until = max(self._retry_at, now + SYNC_INTERVAL_S) if self._failures else now + SYNC_INTERVAL_S
        with trio.move_on_at(until):
            await self._wake.wait()
        self._wake = trio.Event()

    async def _round(self, link: Link, *, final: bool = False) -> None:
        if self._failures and not final and trio.current_time() < self._retry_at:
            return
        try:
            await self._round_parts(link, final)
        finally:
            self._round_over.set()
            self._round_over = trio.Event()

    async def _round_parts(self, link: Link, final: bool) -> None:
        try:
            await self.cooldowns.sync(link)
            await self.statistics.sync(link)
            for name, budget in list(self.budgets.items()):
                await budget.sync(link, name)
            await self.caps.sync(link)
            if self.events is not None:
                await self.events.sync(link, final=final)
        except Exception as exc:
            self._down(exc)
        else:
            self._back()

    def _down(self, exc: BaseException) -> None:
        self.up = False
        self.failed_rounds += 1
        self._failures += 1
        self._retry_at = trio.current_time() + min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** (self._failures - 1))
        for budget in self.budgets.values():
            budget.alone()
        self.caps.alone()
        if not self._outage:
            self._outage = True
            if isinstance(exc, trio.TooSlowError):
                reason = f"no answer within {CALL_TIMEOUT_S:g} s"
            else:
                reason = _one_line(exc, self.config.url)
            log.warning(
                "raceway: Redis at %s is unreachable (%s); racing on local state and retrying",
                redact_url(self.config.url), reason,
            )

    def _back(self) -> None:
        self.up = True
        self.rounds += 1
        self._failures = 0
        if self._outage:
            self._outage = False
            log.warning("raceway: Redis at %s is back; shared what was learned meanwhile", redact_url(self.config.url))
        self._synced.set()
        self._synced = trio.Event()

    async def next_round(self) -> None:
        """Wait for the next round to end, well or not (tests)."""
        await self._round_over.wait()

    async def synced(self) -> None:
        """Wait for the next successful round (tests, benchmarks)."""
        await self._synced.wait()

    async def _watch(self, link: Link) -> None:
        """Follow the fleet's cooldown announcements; after trouble, wait until a round succeeds."""
        while True:
            if self.up:
                try:
                    await self.cooldowns.watch(link, link.client)
                except Exception:
                    pass  # the rounds report trouble, once
            await self.synced()


async def keep_shared(
    engine: FleetHost, config: RedisConfig, *, task_status: trio.TaskStatus[Fleet] = trio.TASK_STATUS_IGNORED
) -> None:
    """Keep ``engine`` in step with the fleet at ``config.url`` (started by ``open_engine``)."""
    await Fleet(engine, config).run(task_status=task_status)


def _one_line(exc: BaseException, url: str = "") -> str:
    """The first line of ``exc``'s message, with the URL's password (if any) scrubbed."""
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    password = _password(url)
    return line.replace(password, "***") if password else line


def _password(url: str) -> str:
    from urllib.parse import urlsplit

    try:
        return urlsplit(url).password or ""
    except ValueError:
        return ""
