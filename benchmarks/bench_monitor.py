"""What the monitor socket costs a race: races/s with it off, on and idle, and on with a stuck client.

Run from the repository root::

    python -m benchmarks.bench_monitor [--seconds S] [--rounds N]

Every race is ``first_wins`` between two ``python`` providers that answer at
once (:func:`instant`), on the real clock, so the engine's own overhead is
all there is to measure and the monitor's share of it is as large as it can
ever be. Three configurations run in interleaved rounds (so drift in the
machine's speed hits all of them alike), each for ``--seconds``:

* ``off``   — ``monitor.socket: off``;
* ``idle``  — the monitor serving, nobody attached;
* ``stuck`` — one client attached that never reads a byte (its kernel buffer
  fills, then its queue, then its events are counted as dropped);
* ``events`` — for reference, no monitor but one listener that does nothing:
  what it costs the race driver to build events at all, which any listener
  (the monitor with a client attached included) switches on.

Two rates per configuration: races per wall-clock second, and races per
CPU second of this process (``time.process_time``: the engine's own cost,
steady even when other programs share the machine). The best round of each
is reported; the goal is ``stuck`` within 10% of ``off``, judged on the
CPU-time rate. Exit status 1 when it is not met.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from typing import Any

import trio

import raceway

#: Races run before timing, so imports, caches and the first socket are out of the way.
WARMUP_RACES = 200
GOAL = 0.10
MESSAGES = [{"role": "user", "content": "ping"}]


async def instant(request: Any) -> AsyncIterator[str]:
    """A provider that answers at once: one chunk, no waiting."""
    yield "pong"


def config(socket: str) -> raceway.Config:
    return raceway.Config(
        performance_file="off",
        grace_period_ms=0,
        monitor=raceway.MonitorConfig(socket=socket),
        providers={
            "a": raceway.PythonProvider(callable="benchmarks.bench_monitor:instant", model="a"),
            "b": raceway.PythonProvider(callable="benchmarks.bench_monitor:instant", model="b"),
        },
        virtual_models={"bench": raceway.VirtualModel(providers=[raceway.ProviderRef(name="a"), raceway.ProviderRef(name="b")])},
    )


async def events_per_race() -> int:
    events = 0

    def count(_: Any) -> None:
        nonlocal events
        events += 1

    async with raceway.open_engine(config("off")) as engine:
        engine.subscribe(count)
        for _ in range(100):
            await engine.complete(MESSAGES, model="bench")
    return round(events / 100)


async def races_per_second(mode: str, seconds: float, directory: str) -> tuple[float, float]:
    """Race for ``seconds`` in ``mode``: races per wall-clock second and per CPU second."""
    socket = "off" if mode in ("off", "events") else f"{directory}/bench-{mode}.sock"
    async with raceway.open_engine(config(socket)) as engine:
        if mode == "events":
            engine.subscribe(lambda event: None)
        stuck = None
        if mode == "stuck":
            assert engine.monitor_socket is not None
            stuck = await trio.open_unix_socket(str(engine.monitor_socket))  # and never read
        for _ in range(WARMUP_RACES):
            await engine.complete(MESSAGES, model="bench")
        n = 0
        start, cpu_start = time.perf_counter(), time.process_time()
        deadline = start + seconds
        while time.perf_counter() < deadline:
            for _ in range(50):
                await engine.complete(MESSAGES, model="bench")
            n += 50
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        if stuck is not None:
            await stuck.aclose()
    return n / elapsed, n / cpu


async def main_async(seconds: float, rounds: int) -> int:
    modes = ("off", "idle", "stuck", "events")
    wall: dict[str, list[float]] = {m: [] for m in modes}
    cpu: dict[str, list[float]] = {m: [] for m in modes}
    per_race = await events_per_race()
    with tempfile.TemporaryDirectory(prefix="rw-bench-") as directory:
        for r in range(rounds):
            for mode in modes:
                w, c = await races_per_second(mode, seconds, directory)
                wall[mode].append(w)
                cpu[mode].append(c)
                print(f"round {r + 1}/{rounds}  {mode:<6} {w:7.0f} races/s  {c:7.0f} races/CPU-s", file=sys.stderr, flush=True)
    print(
        f"monitor benchmark: first_wins, 2 instant python providers, {per_race} events/race, "
        f"{rounds} rounds x {seconds:g} s; best round (median)"
    )
    print(f"  {'':28} {'races/s':>16} {'races/CPU-s':>16} {'vs off':>7}")
    best_cpu = {m: max(v) for m, v in cpu.items()}
    for mode, label in (
        ("off", "monitor off"),
        ("idle", "monitor on, no client"),
        ("stuck", "monitor on, 1 stuck client"),
        ("events", "(reference: a no-op listener)"),
    ):
        change = best_cpu[mode] / best_cpu["off"] - 1
        print(
            f"  {label:<28} {max(wall[mode]):7.0f} ({statistics.median(wall[mode]):6.0f}) "
            f"{best_cpu[mode]:7.0f} ({statistics.median(cpu[mode]):6.0f}) {change:+7.1%}"
        )
    slowdown = 1 - best_cpu["stuck"] / best_cpu["off"]
    ok = slowdown <= GOAL
    print(f"  stuck client costs {slowdown:.1%} of the races per CPU second; goal at most {GOAL:.0%}: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_monitor", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.5, help="timed seconds per configuration and round (default 2.5)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    args = parser.parse_args(argv)
    return trio.run(main_async, args.seconds, args.rounds)


if __name__ == "__main__":
    sys.exit(main())
