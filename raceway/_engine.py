"""The engine: owns providers, the tracker and every task; runs races on request.

``open_engine(config)`` is an async context manager that owns a nursery (for
the monitor and other background tasks), one pooled ``httpx.AsyncClient``
shared by HTTP providers, one provider object per configured name, and the
performance tracker. ``engine.stream()`` opens one race (``_race.Race``),
whose attempts run in the engine's nursery and end before the caller's
block does; ``engine.complete()`` reads one to the end.

:class:`Engine` holds the state; its bases hold two of its concerns: the
set-up of each race, from a virtual model's name to a ``Race``
(``_engine_setup.RaceSetup``), and the events and learning of finished races
(``_engine_learning.Learning``, the base of that). Here: the engine's
public racing calls, its providers and HTTP client, its queries and health
check, its learning task, and its opening and closing.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from os import PathLike
from pathlib import Path
from typing import Any

import httpx
import trio
from attrs import frozen

# The ``X as X`` imports are re-exports: names this module used before the race set-up moved to _engine_setup.
from ._config import Config, Participant
from ._config_check import validate, with_code_providers
from ._config_io import default_config, load_config
from ._engine_setup import RaceSetup
from ._errors import ProviderError
from ._errors import StrategyError as StrategyError
from ._events import RaceFinished
from ._exits import own_exception
from ._messages import check_messages
from ._plan import Plan
from ._plan import cost_controls as cost_controls
from ._plan import make_plan as make_plan
from ._plan import wants_json as wants_json
from ._providers import Provider, ProviderContext, build_provider, provider_class
from ._providers import Request as Request
from ._race import Race
from ._result import AttemptRecord as AttemptRecord
from ._result import RaceResult
from ._services import start_services
from ._shared import keep_shared
from ._strategy import Contender as Contender
from ._strategy import HedgeBudget, RaceSpec
from ._timers import Timers
from ._tracker import ProviderStats, Tracker

log = logging.getLogger("raceway")

#: Races that went well are learned from in batches this often, off the callers' path.
LEARN_BATCH_S = 0.05
#: How long closing providers and the HTTP client may take when the engine exits.
ENGINE_CLOSE_TIMEOUT_S = 5.0
#: How long ``health_check`` waits for each provider.
HEALTH_TIMEOUT_S = 10.0


@frozen(kw_only=True)
class ModelInfo:
    """A virtual model as ``engine.models()`` lists it."""

    id: str
    display_name: str
    description: str
    strategy: str
    providers: tuple[str, ...]


@frozen(kw_only=True)
class HealthReport:
    """``engine.health_check()``'s answer: each provider's error, ``None`` when healthy.

    ``ok`` is true when at least one provider is healthy (the seed's rule).
    """

    providers: dict[str, str | None]

    @property
    def ok(self) -> bool:
        return any(error is None for error in self.providers.values())

    def __bool__(self) -> bool:
        return self.ok


class Engine(RaceSetup):
    """Races providers for requests. Make one with :func:`open_engine`."""

    def __init__(
        self,
        config: Config,
        nursery: trio.Nursery,
        *,
        http_transport: Any = None,
        providers: Mapping[str, Provider] | None = None,
    ) -> None:
        self.config = config
        self._nursery = nursery
        self._transport = http_transport
        self._http: httpx.AsyncClient | None = None
        # Provider objects built in code take their name's place; the others are built from config.
        self._providers: dict[str, Provider] = dict(providers or {})
        self._context = ProviderContext(http_client=self._http_client)
        self._plans: dict[str | None, Plan] = {}
        self._listeners: list[Callable[[Any], None]] = []
        #: Wall-clock seconds for event times and the tracker's cooldowns and decay (``time.time``).
        #: The planned bench sets a virtual one, so that what is learned follows the virtual clock.
        self.wall_clock: Callable[[], float] = time.time
        self._tracker = Tracker(clock=lambda: self.wall_clock())
        # Races that went well, waiting to be learned from in a batch (see _race_finished).
        self._unlearned: list[Race] = []
        self._learn_soon = trio.Event()
        self._tracker.settle = self._learn_now  # whoever reads the statistics out sees every race
        self._labels: list[str] | None = None
        self._specs: dict[tuple[str, bool], RaceSpec] = {}  # see _new_race: specs that never change
        self._race_prefix = secrets.token_hex(3)
        self._timers = Timers()  # every race's wake-up times, served by one task (open_engine)
        self._clock = trio.lowlevel.current_clock().current_time  # trio.current_time() minus two calls
        self._closed = False  # open_engine's block has ended: no more races (nothing would serve their timers)
        self._race_count = 0
        # Hooks the fleet sets while it runs (_shared.py): told of every race learned and the
        # cooldown news it made; asked for the hedge budget of each virtual model's plan.
        self.on_learned: Callable[[RaceFinished, tuple[Any, ...]], None] | None = None
        self.hedge_budget_for: Callable[[str, HedgeBudget], HedgeBudget] | None = None
        # Set by open_engine when the services run (issue 4, _services.py).
        self.performance_path: Path | None = None
        self.monitor_socket: Path | None = None

    # ---------------------------------------------------------------- racing (each race's set-up: _engine_setup)

    def stream(self, messages: list[dict[str, Any]], model: str | None = None, **params: Any) -> _RaceContext:
        """Race for ``messages``: ``async with engine.stream(...) as race``, then iterate the race.

        ``model`` names a virtual model (``None``: the default one); other
        keyword parameters pass through to every provider, under the virtual
        model's per-reference ``config``. Every attempt lives inside this
        context: leaving it cancels whatever still runs.

        Raises:
            TypeError, ValueError: at once, for ``messages`` that are not a
                list of role/content mappings (the caller's mistake: no
                provider is called, none is blamed).
            NoSuchModelError: at once, for an unknown virtual model.
            AllProvidersFailedError: while iterating, when no attempt succeeded
                (``RaceTimeoutError`` when the deadline passed first).
            StreamInterruptedError: while iterating, when the winner broke off.
        """
        return self.open_race(messages, model, params, hold=False)

    def open_race(
        self, messages: list[dict[str, Any]], model: str | None, params: dict[str, Any], *, hold: bool
    ) -> _RaceContext:
        """The context :meth:`stream` returns; ``hold=True`` is :meth:`complete`'s race (nothing
        is committed before the end, so a winner that breaks is replaced while another can
        answer) for callers that need the race object too (the gateway's one-piece answers):
        read it with ``await race.run_to_end()``."""
        self._check_open()
        check_messages(messages)
        return _RaceContext(self, self._plan(model), messages, params, hold=hold)

    async def complete(self, messages: list[dict[str, Any]], model: str | None = None, **params: Any) -> RaceResult:
        """Race for ``messages`` and return the whole winning answer (see :meth:`stream`).

        Nothing reaches the caller before the end, so a winner that breaks
        mid-answer is replaced while another provider can still answer
        (``StreamInterruptedError`` only when none can).
        """
        self._check_open()
        check_messages(messages)
        # open_race()'s context, written out: this is every complete()'s path.
        race = self._new_race(self._plan(model), messages, params, self._nursery, True)
        try:
            return await race.run_to_end()
        finally:
            race.abandon()
            await race.join()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this engine is closed: race inside the `async with open_engine(...)` block")

    def _provider(self, p: Participant) -> Provider:
        provider = self._providers.get(p.name)
        if provider is None:
            provider = self._providers[p.name] = build_provider(p.name, p.definition, self._context)
        return provider

    def uses_http(self) -> bool:
        """Whether any provider the virtual models race speaks HTTP."""
        models: list[str | None] = [*self.config.virtual_models] or [None]
        return any(
            p.name not in self._providers and provider_class(p.definition).uses_http
            for m in models
            for p in self.config.resolve(m).participants
        )

    def _http_client(self) -> httpx.AsyncClient:
        if self._http is None:
            h = self.config.http
            self._http = httpx.AsyncClient(
                transport=self._transport,
                limits=httpx.Limits(
                    max_connections=h.max_connections,
                    max_keepalive_connections=h.max_keepalive_connections,
                    keepalive_expiry=h.keepalive_expiry_s,
                ),
                timeout=httpx.Timeout(None, connect=h.connect_timeout_ms / 1000),
            )
        return self._http

    # ---------------------------------------------------------------- learning (the rest: _engine_learning)

    async def _learn_in_batches(self) -> None:
        """The engine's task that learns from the races that went well, every ``LEARN_BATCH_S``."""
        while True:
            await self._learn_soon.wait()
            self._learn_soon = trio.Event()
            await trio.sleep(LEARN_BATCH_S)
            self._learn_now()

    # ---------------------------------------------------------------- queries

    def models(self) -> list[ModelInfo]:
        """The virtual models callers may ask for (one implicit model in legacy mode)."""
        names: list[str | None] = [*self.config.virtual_models] or [None]
        out = []
        for name in names:
            r = self.config.resolve(name)
            out.append(
                ModelInfo(
                    id=r.name,
                    display_name=r.display_name,
                    description=r.description,
                    strategy=r.strategy,
                    providers=tuple(p.label for p in r.participants),
                )
            )
        return out

    def recent_races(self) -> list[RaceFinished]:
        """The races finished lately (at most ``raceway._tracker.RECENT_RACES``), oldest first."""
        return list(self.tracker.recent)

    def stats(self, *, this_run: bool = False) -> dict[str, ProviderStats]:
        """Per ``provider/model`` statistics of this engine's participants (see :class:`ProviderStats`).

        Only the ``provider/model`` pairs this engine's virtual models race
        (a shared ``performance_file`` may know many more), and of those only
        the ones with any record. ``this_run``: counters since the engine
        opened, leaving out what ``performance_file`` held before.
        """
        return self.tracker.snapshot(self.participant_labels(), this_run=this_run)

    def participant_labels(self) -> list[str]:
        """Every ``provider/model`` this engine's virtual models race, each once."""
        if self._labels is None:
            models: list[str | None] = [*self.config.virtual_models] or [None]
            seen = {p.label: None for m in models for p in self.config.resolve(m).participants}
            self._labels = list(seen)
        return self._labels

    async def health_check(self) -> HealthReport:
        """Ask every provider in use whether it answers, concurrently.

        Returns a :class:`HealthReport`; its ``ok`` is true when at least one
        provider is healthy.
        """
        names: dict[str, Participant] = {}
        models: list[str | None] = [*self.config.virtual_models] or [None]
        for m in models:
            for p in self.config.resolve(m).participants:
                names.setdefault(p.name, p)
        results: dict[str, str | None] = {}

        async def check(name: str, p: Participant) -> None:
            try:
                with trio.fail_after(HEALTH_TIMEOUT_S):
                    await self._provider(p).health_check()
                results[name] = None
            except trio.TooSlowError:
                results[name] = f"no answer within {HEALTH_TIMEOUT_S:.0f} s"
            except ProviderError as exc:
                results[name] = str(exc)
            except Exception as exc:
                results[name] = f"{type(exc).__name__}: {exc}"

        async with trio.open_nursery() as nursery:
            for name, p in names.items():
                nursery.start_soon(check, name, p)
        return HealthReport(providers={n: results[n] for n in names})

    async def _aclose(self) -> None:
        for provider in self._providers.values():
            try:
                await provider.aclose()
            except Exception:
                log.exception("raceway: closing provider %s failed", provider.name)
        if self._http is not None:
            await self._http.aclose()


class _RaceContext:
    """``engine.stream()``'s context: the race around the caller's block.

    Its attempts run in the engine's nursery, each in its own cancel scope;
    leaving the block stops whatever still runs and waits for it
    (:meth:`Race.join`), so nothing outlives the race. A class rather than
    ``@asynccontextmanager``: this is on every race's path.
    """

    __slots__ = ("_engine", "_hold", "_messages", "_params", "_plan", "_race")

    def __init__(
        self, engine: Engine, plan: Plan, messages: list[dict[str, Any]], params: dict[str, Any], *, hold: bool
    ) -> None:
        self._engine = engine
        self._hold = hold
        self._plan = plan
        self._messages = messages
        self._params = params
        self._race: Race | None = None

    async def __aenter__(self) -> Race:
        engine = self._engine
        self._race = engine._new_race(self._plan, self._messages, self._params, engine._nursery, self._hold)
        return self._race

    async def __aexit__(self, etype: Any, exc: Any, tb: Any) -> bool:
        race = self._race
        if race is not None:
            race.abandon()
            await race.join()
        return False


@asynccontextmanager
async def open_engine(
    config: Config | str | PathLike[str] | None = None,
    *,
    providers: Mapping[str, Provider] | None = None,
    http_transport: Any = None,
) -> AsyncIterator[Engine]:
    """Open an engine for ``config`` (a :class:`Config`, a file path, or ``None`` for the default).

    Trio only. Everything the engine starts lives inside this context and is
    cancelled and closed when it exits.

    Args:
        providers: :class:`~raceway.Provider` objects built in code, by name,
            racing beside the configured ones (as httpx takes a transport
            object). Virtual models reference them by that name; a name the
            config also defines is replaced by the object; with no virtual
            models they race with every configured provider.
        http_transport: replaces the HTTP client's transport
            (``httpx.MockTransport`` in tests).

    Raises:
        ConfigError: the configuration is invalid.
    """
    if config is None:
        config = default_config()
    elif not isinstance(config, Config):
        config = load_config(config)
    if providers:
        config = with_code_providers(config, providers)
    validate(config)
    with own_exception():  # the caller's exception (a KeyboardInterrupt too) leaves as itself
        async with trio.open_nursery() as nursery:
            engine = Engine(config, nursery, http_transport=http_transport, providers=providers)
            from ._telemetry import instrument

            instrument(engine)  # OpenTelemetry, when the application configured an SDK (issue 15)
            nursery.start_soon(engine._learn_in_batches)
            nursery.start_soon(engine._timers.run)
            engine.performance_path, engine.monitor_socket = await start_services(
                config, engine._tracker, engine, nursery
            )
            if config.redis is not None:  # shared state across a fleet (issue 16, _shared.py)
                await nursery.start(keep_shared, engine, config.redis)
            if engine.uses_http():
                # Building the client loads TLS certificates (60-300 ms): do it
                # now, off the event loop, not inside the first race.
                await trio.to_thread.run_sync(engine._http_client)
            try:
                yield engine
            finally:
                engine._closed = True
                engine._learn_now()  # before the services' last save
                nursery.cancel_scope.cancel()
                with trio.CancelScope(shield=True), trio.move_on_after(ENGINE_CLOSE_TIMEOUT_S):
                    await engine._aclose()
