"""Strategy comparison: which strategy, grace and hedge delay suit a provider mix.

Two modes share one report:

* **Planned** (the embedded profiles, or any ``sim`` providers): every
  request's fate at every provider — time to first token, failure, hang,
  tokens — is drawn once up front from the providers' latency profiles, and
  every strategy is raced through the real engine on trio's virtual clock
  against those same draws, so the comparison is exact, repeatable (``seed``)
  and takes seconds. The *oracle* is the fastest planned success of each
  request; the best single provider is each provider alone.
* **Live** (a config with real providers): each strategy's virtual model
  races the real providers on the real clock. It costs money, so the CLI
  states how many requests it will send and asks first.

Reported per strategy: p50/p95/p99 caller TTFT, failures, upstream requests
per answer, tokens streamed by losers (wasted), cost per answer and the
losers' cost per request (at the providers' ``prices``; the embedded profiles
carry illustrative ones), and ratios to the oracle and to the best single
provider. A caller-visible TTFT of a failed request counts
as the deadline, so failures show in the tail.
"""

from __future__ import annotations

import json
import math
import random
import statistics
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import attrs
import trio
import trio.testing
from attrs import define, field, frozen

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

#: The variants compared by default: name -> (strategy, grace ms, hedge).
DEFAULT_VARIANTS: dict[str, tuple[str, int, HedgeOverride | None]] = {
    "first_wins": ("first_wins", 250, None),
    "weighted": ("weighted", 100, None),
    "quality": ("quality", 250, None),
    "hedged auto": ("hedged", 0, HedgeOverride(delay_ms="auto", max_extra_load=0.1)),
}
HEDGE_DELAYS_MS = (50, 100, 200, 400, 800)
DEADLINE_MS = 10_000


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
class Outcome:
    """What one strategy did for one request."""

    ttft_ms: float | None  # None: the race failed
    attempts: int
    wasted_tokens: int
    cost_usd: float | None = None  # the race's (RaceResult.cost_usd); None: no prices
    wasted_usd: float | None = None


@define
class _Table:
    """The plans the ``planned`` provider serves, and the tokens losers streamed."""

    plans: list[dict[str, Plan]] = field(factory=list)
    streamed: dict[tuple[int, str], int] = field(factory=dict)


TABLE = _Table()


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
    """One virtual model per variant, every provider a ``planned`` python provider."""
    providers: dict[str, Any] = {
        n: PythonProvider(callable="raceway._bench:planned", model=n, prices=(prices or {}).get(n)) for n in names
    }
    vms = {}
    for label, (strategy, grace, hedge) in variants.items():
        refs = [ProviderRef(name=n, priority=len(names) - i) for i, n in enumerate(names)]
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
    config: Config, models: list[str], requests: int, progress: Callable[[int], None]
) -> dict[str, list[Outcome]]:
    results: dict[str, list[Outcome]] = {}
    async with open_engine(config) as engine:
        for model in models:
            out: list[Outcome] = []
            results[model] = out
            for i in range(requests):
                TABLE.streamed.clear()
                try:
                    r = await engine.complete([{"role": "user", "content": "bench"}], model, bench_request=i)
                except AllProvidersFailedError as exc:
                    out.append(Outcome(None, len(exc.errors), sum(TABLE.streamed.values())))
                except StreamInterruptedError:
                    out.append(Outcome(None, 1, sum(TABLE.streamed.values())))
                else:
                    started = [a for a in r.attempts if a.status != "not_started"]
                    wasted = sum(n for (_, p), n in TABLE.streamed.items() if p != r.provider)
                    out.append(Outcome(r.ttft_ms, len(started), wasted, r.cost_usd, r.wasted_cost_usd))
                progress(1)
    return results


def compare_planned(
    profiles: dict[str, SimProvider],
    *,
    requests: int = 2000,
    seed: int = 1,
    variants: dict[str, tuple[str, int, HedgeOverride | None]] | None = None,
    hedge_sweep: bool = True,
    progress: Callable[[int], None] = lambda n: None,
    run: Callable[..., Any] = trio.run,
) -> dict[str, Any]:
    """Race every variant against the same planned draws; return the report data.

    ``run`` runs the races (``trio.run``; the CLI's stops on SIGINT/SIGTERM).
    """
    variants = dict(variants or DEFAULT_VARIANTS)
    if hedge_sweep:
        for d in HEDGE_DELAYS_MS:
            variants[f"hedged {d} ms"] = ("hedged", 0, HedgeOverride(delay_ms=d, max_extra_load=0.1))
    names = list(profiles)
    TABLE.plans = draw_plans(profiles, requests, seed)
    config = planned_config(names, variants, {n: p.prices for n, p in profiles.items()})
    models = [*variants, *(f"single {n}" for n in names)]
    t = time.perf_counter()
    raw = run(_run_planned, config, models, requests, progress, clock=trio.testing.MockClock(autojump_threshold=0))
    oracle = [
        min((p.ttft * 1000 for p in row.values() if p.succeeds), default=None) for row in TABLE.plans
    ]
    report = summarise(raw, oracle=oracle, variants=list(variants), singles=[f"single {n}" for n in names])
    report.update(
        mode="planned (virtual clock)",
        requests=requests,
        seed=seed,
        providers={n: attrs.asdict(p) for n, p in profiles.items()},
        wall_s=round(time.perf_counter() - t, 1),
    )
    return report


def _pcts(ttfts: list[float | None]) -> dict[str, float]:
    values = sorted(DEADLINE_MS if t is None else t for t in ttfts)

    def q(p: float) -> float:
        return round(values[min(len(values) - 1, math.ceil(p * len(values)) - 1)], 1)

    return {"p50_ms": q(0.50), "p95_ms": q(0.95), "p99_ms": q(0.99)}


def summarise(
    raw: dict[str, list[Outcome]],
    *,
    oracle: list[float | None] | None,
    variants: list[str],
    singles: list[str],
) -> dict[str, Any]:
    """Percentiles, load and waste per strategy, with ratios to the oracle and best single."""
    rows: dict[str, dict[str, Any]] = {}
    for name, outs in raw.items():
        answered = sum(o.ttft_ms is not None for o in outs)
        rows[name] = {
            **_pcts([o.ttft_ms for o in outs]),
            "failures": len(outs) - answered,
            "requests_per_answer": round(sum(o.attempts for o in outs) / max(1, answered), 3),
            "wasted_tokens_per_request": round(statistics.fmean(o.wasted_tokens for o in outs), 1),
            **_costs(outs, answered),
            "cdf_ms": sorted(o.ttft_ms for o in outs if o.ttft_ms is not None),
        }
    best_single = min(singles, key=lambda s: rows[s]["p99_ms"]) if singles else None
    ref: dict[str, dict[str, float]] = {}
    if oracle is not None:
        ref["oracle"] = _pcts(oracle)
    if best_single is not None:
        ref["best single"] = {k: rows[best_single][k] for k in ("p50_ms", "p95_ms", "p99_ms")}
    for name in variants:
        row = rows[name]
        for label, base in ref.items():
            key = "vs_oracle" if label == "oracle" else "vs_best_single"
            row[key] = {p: round(row[p] / base[p], 3) if base[p] else None for p in ("p50_ms", "p95_ms", "p99_ms")}
    return {"strategies": {n: rows[n] for n in variants}, "singles": {n: rows[n] for n in singles},
            "reference": ref, "best_single": best_single}


def _costs(outs: list[Outcome], answered: int) -> dict[str, float | None]:
    """Cost per answer (every attempt of every request, over the answers) and losers' cost per request."""
    if all(o.cost_usd is None for o in outs):
        return {"cost_per_answer_usd": None, "wasted_usd_per_request": None}
    return {
        "cost_per_answer_usd": sum(o.cost_usd or 0.0 for o in outs) / max(1, answered),
        "wasted_usd_per_request": statistics.fmean(o.wasted_usd or 0.0 for o in outs),
    }


def _usd(value: float | None) -> str:
    return "" if value is None else f"${value:.6f}"


def markdown(report: dict[str, Any]) -> str:
    """The report as a markdown table."""
    seed = "" if report.get("seed") is None else f", seed {report['seed']}"  # live races have none
    lines = [
        f"# raceway bench — {report.get('mode', '')}",
        "",
        f"{report.get('requests')} requests per strategy{seed}. "
        f"Caller TTFT in ms (a failed request counts as {DEADLINE_MS} ms).",
        "",
        "| strategy | p50 | p95 | p99 | p99 / oracle | p99 / best single | failures | requests per answer "
        "| wasted tokens per request | cost per answer | wasted cost per request |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def fmt(row: dict[str, Any], name: str) -> str:
        vo = row.get("vs_oracle", {}).get("p99_ms")
        vb = row.get("vs_best_single", {}).get("p99_ms")
        return (
            f"| {name} | {row['p50_ms']:.0f} | {row['p95_ms']:.0f} | {row['p99_ms']:.0f} | "
            f"{'' if vo is None else f'{vo:.2f}'} | {'' if vb is None else f'{vb:.2f}'} | {row['failures']} | "
            f"{row['requests_per_answer']:.3f} | {row['wasted_tokens_per_request']:.1f} | "
            f"{_usd(row.get('cost_per_answer_usd'))} | {_usd(row.get('wasted_usd_per_request'))} |"
        )

    for name, row in report["strategies"].items():
        lines.append(fmt(row, name))
    for name, row in report["singles"].items():
        lines.append(fmt(row, name))
    if "oracle" in report["reference"]:
        o = report["reference"]["oracle"]
        lines.append(f"| oracle | {o['p50_ms']:.0f} | {o['p95_ms']:.0f} | {o['p99_ms']:.0f} | 1.00 | | | | | | |")
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, Any], folder: Path, machine: dict[str, Any] | None = None) -> list[Path]:
    """Write ``report.md``, ``report.json`` and, when matplotlib is installed, ``cdf.png``."""
    folder.mkdir(parents=True, exist_ok=True)
    data = {**report, "machine": machine or {}}
    written = [folder / "report.md", folder / "report.json"]
    written[0].write_text(markdown(report))
    slim = json.loads(json.dumps(data))
    for group in ("strategies", "singles"):
        for row in slim[group].values():
            row.pop("cdf_ms", None)
    written[1].write_text(json.dumps(slim, indent=2) + "\n")
    png = _plot_cdf(report, folder / "cdf.png")
    if png is not None:
        written.append(png)
    return written


def _plot_cdf(report: dict[str, Any], path: Path) -> Path | None:
    try:
        import matplotlib  # type: ignore[import-not-found, unused-ignore]

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(8, 5))
    for name, row in {**report["strategies"], **report["singles"]}.items():
        xs = row["cdf_ms"]
        if xs:
            n = report.get("requests") or len(xs)
            ax.step(xs, [(i + 1) / n for i in range(len(xs))], where="post", label=name)
    ax.set_xscale("log")
    ax.set_xlabel("caller time to first token (ms)")
    ax.set_ylabel("fraction of requests answered")
    ax.legend(fontsize=7)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def terminal_cdf(report: dict[str, Any], width: int = 50) -> str:
    """A text CDF: per strategy, a bar per percentile up to p99 on a shared log scale."""
    rows = {**report["strategies"], **report["singles"]}
    hi = max((r["p99_ms"] for r in rows.values()), default=1.0)
    lo = max(1.0, min((r["p50_ms"] for r in rows.values()), default=1.0) / 2)
    span = math.log(hi / lo) if hi > lo else 1.0

    def pos(ms: float) -> int:
        return max(0, min(width - 1, round(math.log(max(ms, lo) / lo) / span * (width - 1))))

    out = [f"{'':18} {lo:.0f} ms{'':>{width - 12}}{hi:.0f} ms"]
    for name, r in rows.items():
        line = [" "] * width
        for key, glyph in (("p50_ms", "5"), ("p95_ms", "9"), ("p99_ms", "!")):
            line[pos(r[key])] = glyph
        p50 = pos(r["p50_ms"])
        for i in range(p50):
            line[i] = "─"
        out.append(f"{name[:18]:18} {''.join(line)}")
    out.append(f"{'':18} 5 = p50, 9 = p95, ! = p99 (log scale)")
    return "\n".join(out)


# ------------------------------------------------------------------ live mode


def live_plan(config: Config, model: str | None) -> tuple[list[str], Config]:
    """The providers of ``model`` and a config with one virtual model per variant over them."""
    resolved = config.resolve(model)
    refs = [ProviderRef(name=p.name, model=p.model, priority=p.priority, weight=p.weight, config=p.params,
                        prices=p.prices) for p in resolved.participants]
    vms = {}
    for label, (strategy, grace, hedge) in DEFAULT_VARIANTS.items():
        vms[label] = VirtualModel(strategy=strategy, grace_period_ms=grace, hedge=hedge, providers=refs)
    labels = []
    for ref in refs:
        label = f"single {ref.name}/{ref.model}" if ref.model else f"single {ref.name}"
        labels.append(label)
        vms[label] = VirtualModel(strategy="first_wins", providers=[ref])
    live = attrs.evolve(config, virtual_models=vms, default_virtual_model="", monitor=MonitorConfig(socket="off"))
    return labels, live


def live_request_count(providers: int, requests: int) -> int:
    """Upstream requests a live comparison sends at most (every variant starts every provider)."""
    return requests * (len(DEFAULT_VARIANTS) * providers + providers)


async def _run_live(
    config: Config, models: list[str], requests: int, concurrency: int, progress: Callable[[int], None]
) -> dict[str, list[Outcome]]:
    prompt = [{"role": "user", "content": "Reply with one short sentence about the sea."}]
    results: dict[str, list[Outcome]] = {}
    async with open_engine(config) as engine:
        for model in models:
            out: list[Outcome] = []
            results[model] = out
            todo = iter(range(requests))

            async def worker(model: str = model, out: list[Outcome] = out, todo: Any = todo) -> None:
                for _ in todo:
                    try:
                        r = await engine.complete(prompt, model)
                    except AllProvidersFailedError as exc:
                        out.append(Outcome(None, len(exc.errors), 0))
                    except StreamInterruptedError:
                        out.append(Outcome(None, 1, 0))
                    else:
                        started = [a for a in r.attempts if a.status != "not_started"]
                        wasted = sum(a.output_chars for a in r.attempts if a.status != "won") // 4
                        out.append(Outcome(r.ttft_ms, len(started), wasted, r.cost_usd, r.wasted_cost_usd))
                    progress(1)

            async with trio.open_nursery() as nursery:
                for _ in range(concurrency):
                    nursery.start_soon(worker)
    return results


def compare_live(
    config: Config,
    model: str | None,
    *,
    requests: int = 20,
    concurrency: int = 2,
    progress: Callable[[int], None] = lambda n: None,
    run: Callable[..., Any] = trio.run,
) -> dict[str, Any]:
    """Race every variant against the config's real providers on the real clock (``run``: as above)."""
    singles, live = live_plan(config, model)
    t = time.perf_counter()
    raw = run(_run_live, live, [*DEFAULT_VARIANTS, *singles], requests, concurrency, progress)
    report = summarise(raw, oracle=None, variants=list(DEFAULT_VARIANTS), singles=singles)
    report.update(mode="live (real providers, real clock)", requests=requests, seed=None,
                  wall_s=round(time.perf_counter() - t, 1))
    return report


def sim_profiles(config: Config, model: str | None) -> dict[str, SimProvider] | None:
    """The ``sim`` profiles of ``model``'s providers, or ``None`` if any is not simulated."""
    out: dict[str, SimProvider] = {}
    for p in config.resolve(model).participants:
        if not isinstance(p.definition, SimProvider):
            return None
        out[p.name] = attrs.evolve(p.definition, prices=p.prices)  # a reference's prices over its definition's
    return out
