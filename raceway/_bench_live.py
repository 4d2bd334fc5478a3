"""The live comparison: each strategy races the config's real providers on the real clock.

:func:`live_plan` builds one virtual model per default variant, and one per
provider alone, over the providers of the model compared; :func:`compare_live`
races them (it costs money: the CLI says how many requests it will send,
:func:`live_request_count`, and asks first).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import attrs
import trio

from ._bench_summary import DEFAULT_VARIANTS, Outcome, summarise
from ._config import Config, MonitorConfig, ProviderRef, VirtualModel
from ._engine import open_engine
from ._errors import AllProvidersFailedError, StreamInterruptedError


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
