"""Engine cost per race, against a direct call and a bare trio race of the same tasks.

    python -m benchmarks.bench_engine [--races 5000] [--in-flight 10000]

Four ways to get one answer from N instant ``python`` providers:

* direct — iterate one provider's generator (no racing at all);
* bare   — a trio nursery racing N tasks, the first token cancels the rest
           (the floor: what any trio racer must pay);
* shape  — the same with what cancelling losers one by one needs (a cancel
           scope per attempt, iterators closed, a driver woken by an Event
           under a deadline): raceway's trio structure without its logic;
* raceway — ``engine.complete()`` on a ``first_wins`` virtual model of N.

The "added cost" is each median minus direct's. Then N=3 races are held in
flight at once (providers wait on a gate) to measure memory per race in
flight, and all are released to check they finish without error.
"""

from __future__ import annotations

import argparse
import gc
import resource
import time
from typing import Any

import trio
import trio.testing

import raceway
from benchmarks import instant as inst
from benchmarks._common import report, timed

MSG = [{"role": "user", "content": "hi"}]


def make_config(n: int, fn: str = "instant") -> raceway.Config:
    return raceway.Config(
        monitor=raceway.MonitorConfig(socket="off"),
        performance_file="off",
        providers={f"p{i}": raceway.PythonProvider(callable=f"benchmarks.instant:{fn}", model="m") for i in range(n)},
        virtual_models={
            "v": raceway.VirtualModel(
                strategy="first_wins", providers=[raceway.ProviderRef(name=f"p{i}") for i in range(n)]
            )
        },
    )


async def direct() -> None:
    req = raceway.Request(messages=MSG, model="m")
    async for _ in inst.instant(req):
        pass


async def bare(n: int) -> None:
    req = raceway.Request(messages=MSG, model="m")
    winner: list[str] = []

    async def attempt(nursery: trio.Nursery) -> None:
        async for chunk in inst.instant(req):
            if not winner:
                winner.append(chunk)
                nursery.cancel_scope.cancel()

    async with trio.open_nursery() as nursery:
        for _ in range(n):
            nursery.start_soon(attempt, nursery)


async def shape(n: int) -> None:
    """The trio structure any racer that cancels losers one by one needs, and nothing else.

    A cancel scope per attempt (a loser is stopped at its own time while the
    winner streams on), the provider's iterator closed, a driver asleep on an
    Event under a deadline: raceway's shape without its logic (strategy, rules,
    records, learning). What raceway adds above this is its logic's cost.
    """
    req = raceway.Request(messages=MSG, model="m")
    wake = trio.Event()
    got: list[str] = []

    async def attempt(scope: trio.CancelScope) -> None:
        with scope:
            chunks = inst.instant(req)
            try:
                async for chunk in chunks:
                    if not got:
                        got.append(chunk)
                        wake.set()
            finally:
                await chunks.aclose()

    async with trio.open_nursery() as nursery:
        scopes = [trio.CancelScope() for _ in range(n)]
        for scope in scopes:
            nursery.start_soon(attempt, scope)
        with trio.move_on_at(trio.current_time() + 10):
            await wake.wait()
        for scope in scopes:
            scope.cancel()


async def measure(n: int, races: int) -> dict[str, Any]:
    async with raceway.open_engine(make_config(n)) as engine:

        async def one_raceway() -> None:
            await engine.complete(MSG, "v")

        runs = {"direct": direct, "bare": lambda: bare(n), "shape": lambda: shape(n), "raceway": one_raceway}
        result: dict[str, Any] = await timed(runs, races)
    base = result["direct"]["median_us"]
    result["added_median_us"] = {
        "bare": round(result["bare"]["median_us"] - base, 1),
        "shape": round(result["shape"]["median_us"] - base, 1),
        "raceway": round(result["raceway"]["median_us"] - base, 1),
    }
    floor = result["added_median_us"]["bare"]
    result["raceway_over_floor"] = round(result["added_median_us"]["raceway"] / floor, 2) if floor > 0 else None
    t = time.perf_counter()
    async with raceway.open_engine(make_config(n)) as engine:
        for _ in range(races):
            await engine.complete(MSG, "v")
    result["races_per_s"] = round(races / (time.perf_counter() - t))
    return result


def rss_mb() -> float:
    """Resident memory of this process now, in MiB (Linux)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024


async def in_flight(count: int) -> dict[str, Any]:
    inst.GATE[:] = [trio.Event()]
    errors: list[BaseException] = []
    done = 0
    gc.collect()
    rss_before = rss_mb()
    async with raceway.open_engine(make_config(3, "gated")) as engine:

        async def one() -> None:
            nonlocal done
            try:
                result = await engine.complete(MSG, "v")
                assert result.text == "ok"
                done += 1
            except BaseException as exc:  # counted, reported
                errors.append(exc)
                raise

        async with trio.open_nursery() as nursery:
            for _ in range(count):
                nursery.start_soon(one)
            await trio.testing.wait_all_tasks_blocked()
            rss_held = rss_mb()
            inst.GATE[0].set()
    return {
        "races_in_flight": count,
        "completed": done,
        "errors": len(errors),
        "rss_total_mb": round(rss_held, 1),
        "rss_growth_mb": round(rss_held - rss_before, 1),
        "kib_per_race": round((rss_held - rss_before) * 1024 / count, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--races", type=int, default=5000)
    parser.add_argument("--in-flight", type=int, default=10_000)
    parser.add_argument("--sizes", default="2,3,8,32")
    args = parser.parse_args()
    data: dict[str, Any] = {"races_per_size": args.races, "per_participants": {}}
    trio.run(measure, 3, 1000)  # warm up (imports, caches, CPU clocks); not reported
    for n in (int(x) for x in args.sizes.split(",")):
        data["per_participants"][str(n)] = trio.run(measure, n, args.races)
    data["in_flight"] = trio.run(in_flight, args.in_flight)
    report("engine", data)


if __name__ == "__main__":
    main()
