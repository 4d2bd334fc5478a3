"""The engine: owns providers, the tracker and every task; runs races on request.

``open_engine(config)`` is an async context manager that owns a nursery (for
the monitor and other background tasks), one pooled ``httpx.AsyncClient``
shared by HTTP providers, one provider object per configured name, and the
performance tracker. ``engine.stream()`` opens one race (``_race.Race``),
whose attempts run in the engine's nursery and end before the caller's
block does; ``engine.complete()`` reads one to the end.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from os import PathLike
from pathlib import Path
from typing import Any

import attrs
import httpx
import trio
from attrs import frozen

from ._config import Config, Participant
from ._config_check import validate, with_code_providers
from ._config_io import default_config, load_config
from ._errors import ProviderError, StrategyError
from ._events import RaceFinished
from ._exits import own_exception
from ._messages import check_messages
from ._plan import Plan, cost_controls, make_plan, wants_json
from ._providers import Provider, ProviderContext, Request, build_provider, provider_class
from ._race import Race
from ._result import AttemptRecord, RaceResult
from ._services import start_services
from ._shared import keep_shared
from ._strategy import Contender, HedgeBudget, RaceSpec
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


class Engine:
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
        self._tracker = Tracker()
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

    # ---------------------------------------------------------------- racing

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

    def _new_race(
        self, plan: Plan, messages: list[dict[str, Any]], params: dict[str, Any], nursery: trio.Nursery, hold: bool
    ) -> Race:
        resolved = plan.model
        tracker = self._tracker  # a batch of good races may be unlearned yet: scores lag by at most LEARN_BATCH_S
        contenders: list[Contender] = []
        attempts = []
        self._race_count += 1
        race_id = f"{self._race_prefix}-{self._race_count}"
        # Cooldowns and rate caps (issues 4, 13): None when all may race; benched ones are listed as not_started.
        admitted = tracker.admit(plan.labels, race_id, plan.policy)
        benched: list[AttemptRecord] = []
        # Exploration (issue 13): one Thompson draw (score, TTFT ms) per participant, made here, never in decide().
        draws = tracker.sample_race(plan.labels) if plan.explore else None
        json_out = wants_json(params)
        # With everyone racing, no draws and a fixed hedge delay, the spec is the same every
        # race (frozen values, shared): made once per virtual model and output kind.
        fixed = admitted is None and draws is None and plan.hedge_delay is not None
        spec = self._specs.get((resolved.name, json_out)) if fixed else None
        for i, (p, provider, label) in enumerate(zip(resolved.participants, plan.providers, plan.labels, strict=True)):
            if admitted is not None and not admitted[i]:
                benched.append(attrs.evolve(tracker.benched(p.name, p.model), index=i))
                continue
            call_params = {**params, **p.params} if p.params else params
            attempts.append((provider, Request(messages=messages, model=p.model, params=call_params, provider=p.name)))
            if spec is not None:
                continue
            delay = plan.hedge_delay
            if delay is None:  # auto: from what the tracker saw of this provider
                delay = tracker.hedge_delay(label, plan.hedge_quantile)
            score, ttft = draws[i] if draws is not None else (0.5, None)
            contenders.append(
                Contender(
                    index=len(contenders),
                    provider=p.name,
                    model=p.model,
                    priority=p.priority,
                    weight=p.weight,
                    score=score,
                    hedge_delay=delay,
                    ttft_estimate=None if ttft is None else ttft / 1000,
                )
            )
        plan.budget.deposit()
        if spec is None:
            spec = RaceSpec(
                contenders=tuple(contenders),
                deadline=resolved.timeout_ms / 1000,
                grace=resolved.grace_period_ms / 1000,
                budget=plan.budget,
                scorer=plan.scorer,
                wants_json=json_out,
            )
            if fixed:
                self._specs[(resolved.name, json_out)] = spec
        try:
            strategy = plan.factory(spec)
        except Exception as exc:
            tracker.release(race_id)  # no race to record: give its rate-cap slots back
            raise StrategyError(f"making strategy {plan.strategy_name!r} failed: {type(exc).__name__}: {exc}") from exc
        return Race(
            race_id=race_id,
            nursery=nursery,
            timers=self._timers,
            clock=self._clock,
            strategy=strategy,
            spec=spec,
            attempts=attempts,
            virtual_model=resolved.name,
            virtual_model_desc=resolved.description,
            strategy_name=plan.strategy_name,
            ttft_timeout=None if resolved.ttft_timeout_ms is None else resolved.ttft_timeout_ms / 1000,
            idle_timeout=resolved.idle_timeout_ms / 1000,
            emit=self._emit if self._listeners else None,
            on_finished=self._race_finished,
            # With some benched, events and records keep each participant's own place.
            benched=tuple(benched),
            numbers=tuple(i for i in range(len(plan.labels)) if admitted is None or admitted[i]) if benched else (),
            participants=tuple((p.name, p.model) for p in resolved.participants) if benched else (),
            first_token_any=resolved.first_token == "any",
            hold=hold,
            learn_later=admitted is None and not plan.policy.capped,  # a capped race frees its slots when learned
            **cost_controls(plan, tracker, messages, params, list(range(len(attempts))), admitted),
        )

    def _plan(self, model: str | None) -> Plan:
        plan = self._plans.get(model)
        if plan is None:
            resolved = self.config.resolve(model)
            # One plan (and one hedge budget) per virtual model, however the caller names it.
            plan = self._plans.get(resolved.name)
            if plan is None:
                providers = tuple(self._provider(p) for p in resolved.participants)
                plan = make_plan(resolved, providers, self._tracker)
                if self.hedge_budget_for is not None:
                    plan = attrs.evolve(plan, budget=self.hedge_budget_for(resolved.name, plan.budget))
            self._plans[model] = self._plans[resolved.name] = plan
        return plan

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

    # ---------------------------------------------------------------- events

    def subscribe(self, listener: Callable[[Any], None]) -> Callable[[], None]:
        """Call ``listener(event)`` for every event from now on; returns the unsubscribe function.

        Listeners run inside the race loop: they must be quick and must not block.
        """
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def forget_plans(self) -> None:
        """Make each virtual model's plan afresh at its next race (after ``hedge_budget_for`` changed)."""
        self._plans.clear()
        self._specs.clear()  # a reused spec holds its plan's hedge budget

    def publish(self, event: Any) -> None:
        """Hand ``event`` to the listeners, as the engine's own (the fleet's news of other engines)."""
        if self._listeners:
            self._emit(event)

    def _emit(self, event: Any) -> None:
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                log.exception("raceway: an event listener failed; it stays subscribed")

    @property
    def tracker(self) -> Tracker:
        """The performance tracker, with every finished race learned."""
        self._learn_now()
        return self._tracker

    def _race_finished(self, race: Race) -> None:
        """Learn from a finished race: at once when anything failed, else in the next batch.

        Learning is most of what a race costs raceway after the answer, and
        nothing the caller waits for: a race that went well (every attempt
        answered or was cancelled, and nobody was cooling down) is learned
        from within ``LEARN_BATCH_S`` — and with nobody listening, its final
        event and records are written up then, too. A failure is learned at
        once — after the batch, in order — so cooldowns never lag.
        """
        quiet = race.quiet_success()
        if self._listeners:
            self._emit(race.finished_event())
        if quiet:
            self._unlearned.append(race)
            if len(self._unlearned) == 1:
                self._learn_soon.set()
            return
        self._learn_now()
        self._learn(race.finished_event())

    def _learn(self, event: RaceFinished) -> None:
        cooldown_events = self._tracker.record(event)
        if self.on_learned is not None:
            self.on_learned(event, cooldown_events)
        if self._listeners:
            for news in cooldown_events:
                self._emit(news)

    def _learn_now(self) -> None:
        if self._unlearned:
            batch, self._unlearned = self._unlearned, []
            for race in batch:
                self._learn(race.finished_event())

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
