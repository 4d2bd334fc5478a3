"""The planned comparison: every strategy raced on trio's virtual clock against the same draws.

Every request's fate at every provider — time to first token, failure,
hang, tokens — is drawn once up front from the providers' ``sim`` profiles
(:func:`draw_plans`) and acted out by the ``planned`` python provider, so
:func:`compare_planned` races each variant through the real engine against
the same draws: exact, repeatable (``seed``) and quick. The oracle is the
fastest planned success of each request; each provider alone is a single.
"""

from __future__ import annotations

import functools
import math
import random
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import attrs
import trio
import trio.testing
from attrs import define, field, frozen

from ._bench_scenarios import hedge_curve
from ._bench_summary import DEADLINE_MS, DEFAULT_VARIANTS, Outcome, _pcts, summarise
from ._config import (
    Config,
    HedgeOverride,
    MonitorConfig,
    Prices,
    ProviderRef,
    PythonProvider,
    SimProvider,
    VirtualModel,
)
from ._engine import open_engine
from ._errors import AllProvidersFailedError, StreamInterruptedError
from ._providers import Request
from ._strategy import HedgeBudget

#: The fixed hedge delays swept for the hindsight-optimal curve, with a budget
#: that never binds (HEDGE_SWEEP_LOAD, and no cap on the tokens it holds:
#: _unbounded_budget), so each delay shows its own extra load.
HEDGE_DELAYS_MS = (10, 20, 30, 40, 50, 60, 80, 100, 120, 150, 200, 250, 300, 400, 600, 800, 1200, 2000)
HEDGE_SWEEP_LOAD = 10.0
#: Races in flight at once in a planned run (budgets refill as in production).
PLANNED_CONCURRENCY = 8
#: The first part of each run is left out of the figures: learning settles there.
WARMUP_FRACTION = 0.25
#: The planned run's first races start this far apart (seconds), not all at one instant.
#: Races that meet at one virtual instant over something they share (a hedge budget
#: with fewer tokens than races that want one, the tracker) meet it in the order trio
#: runs their tasks, and trio reverses each batch of ready tasks at random (its own,
#: unseeded generator): runs of one seed could differ. Started apart, each race's
#: instants are its start plus its own draws and delays, so no two races share one
#: and the report depends on the seed alone. A microsecond: nothing against a TTFT.
PLANNED_STAGGER_S = 1e-6


@frozen
class Plan:
    """One request's fate at one provider (seconds)."""

    ttft: float
    fail_at: float | None
    hang: bool
    tokens: int
    gap: float

    @property
    def succeeds(self) -> bool:
        return self.fail_at is None and not self.hang


@define
class _Table:
    """The plans the ``planned`` provider serves, and the tokens losers streamed."""

    plans: list[dict[str, Plan]] = field(factory=list)
    streamed: dict[tuple[int, str], int] = field(factory=dict)


TABLE = _Table()



#: The wall-clock time a planned run's virtual clock starts at (any fixed date: 2026-01-01).
BENCH_EPOCH = 1_767_225_600.0


def _virtual_wall(offset: float) -> float:
    """The planned run's wall clock: trio's virtual clock, from ``BENCH_EPOCH``."""
    return trio.current_time() - offset

async def planned(request: Request) -> AsyncIterator[str]:
    """A ``python`` provider that acts out ``TABLE.plans[params['bench_request']][provider]``."""
    i = request.params["bench_request"]
    plan = TABLE.plans[i][request.provider]
    if plan.hang:
        await trio.sleep_forever()
    if plan.fail_at is not None:
        await trio.sleep(plan.fail_at)
        raise ConnectionResetError("planned failure")
    await trio.sleep(plan.ttft)
    key = (i, request.provider)
    for n in range(plan.tokens):
        if n:
            await trio.sleep(plan.gap)
        TABLE.streamed[key] = n + 1
        yield "tok "


def draw_plans(profiles: dict[str, SimProvider], requests: int, seed: int) -> list[dict[str, Plan]]:
    """Each request's fate at each provider, from the providers' sim profiles."""
    rng = random.Random(seed)
    out = []
    for _ in range(requests):
        row = {}
        for name, p in profiles.items():
            ttft = p.ttft_ms / 1000 * math.exp(p.sigma * rng.gauss(0.0, 1.0))
            fate = rng.random()
            hang = fate < p.hang_rate
            fail = not hang and fate < p.hang_rate + p.failure_rate
            row[name] = Plan(
                ttft=ttft,
                fail_at=ttft * 0.4 if fail else None,
                hang=hang,
                tokens=max(1, len(p.text.split())),
                gap=1 / p.tokens_per_s,
            )
        out.append(row)
    return out


#: Illustrative prices for the embedded profiles (not any real provider's).
BENCH_PRICES = Prices(input_per_mtok=1.0, output_per_mtok=4.0)
HEAVY_TAILED: dict[str, SimProvider] = {
    # Lognormal TTFT with a few percent failures and hangs: the mix.
    "alpha": SimProvider(model="alpha", ttft_ms=300, sigma=0.6, failure_rate=0.03, hang_rate=0.01, tokens_per_s=60,
                         text=" ".join(["word"] * 40), prices=BENCH_PRICES),
    "beta": SimProvider(model="beta", ttft_ms=380, sigma=0.8, failure_rate=0.02, hang_rate=0.01, tokens_per_s=50,
                        text=" ".join(["word"] * 40), prices=BENCH_PRICES),
    "gamma": SimProvider(model="gamma", ttft_ms=260, sigma=1.0, failure_rate=0.05, hang_rate=0.02, tokens_per_s=80,
                         text=" ".join(["word"] * 40), prices=BENCH_PRICES),
}


def planned_config(
    names: list[str],
    variants: dict[str, tuple[str, int, HedgeOverride | None]],
    prices: dict[str, Prices | None] | None = None,
) -> Config:
    """One virtual model per variant, every provider a ``planned`` python provider.

    References keep the default (equal) priority, so ``hedged``'s order is its
    own learning, as in a config that does not rank its providers.
    """
    providers: dict[str, Any] = {
        n: PythonProvider(callable="raceway._bench_planned:planned", model=n, prices=(prices or {}).get(n)) for n in names
    }
    vms = {}
    for label, (strategy, grace, hedge) in variants.items():
        refs = [ProviderRef(name=n) for n in names]
        vms[label] = VirtualModel(strategy=strategy, grace_period_ms=grace, hedge=hedge, providers=refs)
    for n in names:
        vms[f"single {n}"] = VirtualModel(strategy="first_wins", providers=[ProviderRef(name=n)])
    return Config(
        timeout_ms=DEADLINE_MS,
        monitor=MonitorConfig(socket="off"),
        performance_file="off",
        providers=providers,
        virtual_models=vms,
    )


async def _run_planned(
    config: Config,
    models: list[str],
    requests: int,
    concurrency: int,
    seed: int,
    progress: Callable[[int], None],
    unbounded: frozenset[str] = frozenset(),
) -> dict[str, list[Outcome]]:
    """Race ``requests`` planned requests through each of ``models``, ``concurrency`` at a time.

    The models in ``unbounded`` (the swept delays) get a hedge budget that never binds.
    """
    results: dict[str, list[Outcome | None]] = {}
    for model in models:
        # A fresh engine per variant: what one strategy learned must not help the next.
        async with open_engine(config) as engine:
            engine.tracker.rng.seed(seed)
            # What the engine learns (cooldowns, decay, event times) follows the virtual clock:
            # on the wall clock it would depend on how fast this machine races.
            engine.wall_clock = functools.partial(_virtual_wall, trio.current_time() - BENCH_EPOCH)
            if model in unbounded:
                engine.hedge_budget_for = _unbounded_budget
            out: list[Outcome | None] = [None] * requests
            results[model] = out
            todo = iter(range(requests))

            async def worker(
                k: int, engine: Any = engine, model: str = model, out: list[Outcome | None] = out, todo: Any = todo
            ) -> None:
                await trio.sleep(k * PLANNED_STAGGER_S)  # see PLANNED_STAGGER_S
                for i in todo:
                    out[i] = await _one(engine, model, i)
                    progress(1)

            async with trio.open_nursery() as nursery:
                for k in range(concurrency):
                    nursery.start_soon(worker, k)
    return {m: [o for o in outs if o is not None] for m, outs in results.items()}


def _unbounded_budget(name: str, local: HedgeBudget) -> HedgeBudget:
    """A swept delay's hedge budget: its rate with no cap on the tokens it holds, so it never binds.

    (A plain budget holds at most ``reserve`` tokens however high its rate: with
    several races in flight it would refuse hedges at short delays, and which race
    got the last token would depend on task order at one instant.)
    """
    return HedgeBudget(max_extra_load=local.max_extra_load, reserve=math.inf)


async def _one(engine: Any, model: str, i: int) -> Outcome:
    def streamed(winner: str | None) -> int:
        mine = [k for k in TABLE.streamed if k[0] == i]
        n = sum(TABLE.streamed.pop(k) for k in mine if k[1] != winner) if mine else 0
        for k in mine:
            TABLE.streamed.pop(k, None)
        return n

    try:
        r = await engine.complete([{"role": "user", "content": "bench"}], model, bench_request=i)
    except AllProvidersFailedError as exc:
        return Outcome(None, len(exc.errors), streamed(None))
    except StreamInterruptedError:
        return Outcome(None, 1, streamed(None))
    started = sorted((a for a in r.attempts if a.status != "not_started"), key=lambda a: (a.started_ms or 0.0, a.index))
    return Outcome(
        r.ttft_ms, len(started), streamed(r.provider), r.cost_usd, r.wasted_cost_usd, winner=r.provider,
        first=started[0].provider if started else None, started=tuple(a.provider for a in started),
    )


def compare_planned(
    profiles: dict[str, SimProvider],
    *,
    requests: int = 2000,
    seed: int = 1,
    variants: dict[str, tuple[str, int, HedgeOverride | None]] | None = None,
    hedge_sweep: bool = True,
    concurrency: int = PLANNED_CONCURRENCY,
    warmup: float = WARMUP_FRACTION,
    sweep_delays_ms: tuple[int, ...] = HEDGE_DELAYS_MS,
    progress: Callable[[int], None] = lambda n: None,
    run: Callable[..., Any] = trio.run,
) -> dict[str, Any]:
    """Race every variant against the same planned draws; return the report data.

    ``run`` runs the races (``trio.run``; the CLI's stops on SIGINT/SIGTERM).
    Each variant runs on a fresh engine, ``concurrency`` requests in flight
    (the first ones ``PLANNED_STAGGER_S`` apart, so that no two races share
    an instant: the report is the same for the same ``seed``, whatever order
    trio runs tasks in); the figures leave out the first ``warmup`` fraction
    of the requests (by request number). ``hedge_sweep`` adds the
    hindsight-optimal curve: each fixed delay of ``sweep_delays_ms`` with a
    budget that never binds.
    """
    variants = dict(variants or DEFAULT_VARIANTS)
    sweep: dict[str, tuple[str, int, HedgeOverride | None]] = {}
    if hedge_sweep:
        for d in sweep_delays_ms:
            sweep[f"hedged {d} ms"] = ("hedged", 0, HedgeOverride(delay_ms=d, max_extra_load=HEDGE_SWEEP_LOAD))
    names = list(profiles)
    TABLE.plans = draw_plans(profiles, requests, seed)
    TABLE.streamed.clear()
    config = planned_config(names, {**variants, **sweep}, {n: p.prices for n, p in profiles.items()})
    models = [*variants, *sweep, *(f"single {n}" for n in names)]
    t = time.perf_counter()
    raw = run(
        _run_planned, config, models, requests, concurrency, seed, progress, frozenset(sweep),
        clock=trio.testing.MockClock(autojump_threshold=0),
    )
    skip = int(requests * warmup)
    oracle = [
        min((p.ttft * 1000 for p in row.values() if p.succeeds), default=None) for row in TABLE.plans[skip:]
    ]
    measured = {m: outs[skip:] for m, outs in raw.items()}
    report = summarise(measured, oracle=oracle, variants=list(variants), singles=[f"single {n}" for n in names])
    if sweep:
        points = {}
        for name in sweep:
            outs = measured[name]
            answered = sum(o.ttft_ms is not None for o in outs)
            points[name] = (sum(o.attempts for o in outs) / max(1, answered), _pcts([o.ttft_ms for o in outs])["p99_ms"])
        report["hedge_curve"] = hedge_curve(points, report["strategies"])
    report.update(
        mode="planned (virtual clock)",
        requests=requests,
        measured_from=skip,
        concurrency=concurrency,
        seed=seed,
        providers={n: attrs.asdict(p) for n, p in profiles.items()},
        wall_s=round(time.perf_counter() - t, 1),
    )
    return report


def planned_races(profiles: int, requests: int, sweep: bool) -> int:
    """Races a planned comparison runs (for a progress bar)."""
    return requests * (len(DEFAULT_VARIANTS) + (len(HEDGE_DELAYS_MS) if sweep else 0) + profiles)
