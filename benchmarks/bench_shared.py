"""What sharing state through Redis costs and how fast it travels.

Run from the repository root (needs ``redis-server`` on PATH; it starts its own
on a free loopback port, persistence off)::

    python -m benchmarks.bench_shared [--seconds S] [--rounds N]

Three figures:

* **races/s, redis off vs on** — ``first_wins`` between two ``python``
  providers that answer at once, monitor off, events off, interleaved rounds
  of ``--seconds`` each; the best round of each, per CPU second of this
  process (the engine's own cost). Goal: on is at most 5% slower.
* **merge traffic** — one engine paced at 1,000 races/s for ``--seconds``:
  Redis commands and bytes (sent + received) per second.
* **429 to benched elsewhere** — a second process gets a 429 (retry-after
  30 s); the time from its race's end to the provider being benched in this
  engine, with the push (the live cooldown stream) and without it (the
  rounds alone). Goals: under 100 ms with it, under the round interval without.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import trio

import raceway
from benchmarks._common import report
from raceway._shared import SYNC_INTERVAL_S, fleet_of

GOAL_SLOWER = 0.05
GOAL_PUSH_MS = 100.0
MESSAGES = [{"role": "user", "content": "ping"}]
WARMUP_RACES = 200


async def instant(request: Any) -> AsyncIterator[str]:
    yield "pong"


async def limited(request: Any) -> AsyncIterator[str]:
    raise raceway.RateLimitedError("429", retry_after=30.0, provider="limited")
    yield ""  # pragma: no cover


def config_text(url: str | None, prefix: str = "bench") -> str:
    redis = f'redis: {{url: "{url}", prefix: "{prefix}"}}' if url else ""
    return f"""
performance_file: "off"
grace_period_ms: 0
monitor: {{socket: "off"}}
{redis}
providers:
  a: {{type: python, callable: "benchmarks.bench_shared:instant", model: a}}
  b: {{type: python, callable: "benchmarks.bench_shared:instant", model: b}}
  limited: {{type: python, callable: "benchmarks.bench_shared:limited", model: m}}
virtual_models:
  fast: {{providers: [a, b]}}
  pair: {{providers: [limited, a]}}
"""


def start_redis() -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("bench_shared: redis-server is not installed (apt-get install redis-server)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if b"Ready to accept connections" in line:
            break
    return proc, f"redis://127.0.0.1:{port}/0"


async def rate(config: raceway.Config, seconds: float) -> tuple[float, float]:
    async with raceway.open_engine(config) as engine:
        for _ in range(WARMUP_RACES):
            await engine.complete(MESSAGES, model="fast")
        n = 0
        wall, cpu = time.perf_counter(), time.process_time()
        deadline = wall + seconds
        while time.perf_counter() < deadline:
            await engine.complete(MESSAGES, model="fast")
            n += 1
        return n / (time.perf_counter() - wall), n / (time.process_time() - cpu)


async def traffic(config: raceway.Config, seconds: float, per_second: int = 1000) -> dict[str, float]:
    async with raceway.open_engine(config) as engine:
        fleet = fleet_of(engine)
        assert fleet is not None and fleet.link is not None
        link = fleet.link
        await fleet.synced()
        c0, s0, r0 = link.commands, link.bytes_sent, link.bytes_received
        start = trio.current_time()
        n = 0
        while (now := trio.current_time()) < start + seconds:
            await engine.complete(MESSAGES, model="fast")
            n += 1
            ahead = start + n / per_second - now
            if ahead > 0:
                await trio.sleep(ahead)
        took = trio.current_time() - start
        return {
            "races_per_s": round(n / took),
            "commands_per_s": round((link.commands - c0) / took, 1),
            "bytes_per_s": round((link.bytes_sent - s0 + link.bytes_received - r0) / took),
        }


async def bench_time(config_path: Path, url: str, push: bool) -> float:
    """Milliseconds from the other process's 429 to the provider benched here."""
    from raceway import _fleet_cooldowns

    original = _fleet_cooldowns.SharedCooldowns.watch
    if not push:
        async def no_watch(self: Any, link: Any, client: Any) -> None:
            await trio.sleep_forever()

        _fleet_cooldowns.SharedCooldowns.watch = no_watch  # type: ignore[method-assign]
    try:
        async with raceway.open_engine(config_path) as engine:
            fleet = fleet_of(engine)
            assert fleet is not None
            env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
            proc = await trio.run_process(
                [sys.executable, "-m", "benchmarks.bench_shared", "--limited", str(config_path)],
                capture_stdout=True, env=env,
            )
            ended = float(proc.stdout.decode().split()[-1])
            while engine.tracker.cooldowns.until("limited/m") is None:
                await fleet.cooldowns.changed()
            return (fleet.cooldowns.last_imposed_wall - ended) * 1000
    finally:
        _fleet_cooldowns.SharedCooldowns.watch = original  # type: ignore[method-assign]


async def limited_process(config_path: str) -> None:
    async with raceway.open_engine(config_path) as engine:
        await engine.complete(MESSAGES, model="pair")
        print(time.time(), flush=True)


async def main(seconds: float, rounds: int) -> int:
    proc, url = start_redis()
    try:
        off_cfg = raceway.loads_config(config_text(None))
        on_cfg = raceway.loads_config(config_text(url))
        best: dict[str, tuple[float, float]] = {"off": (0.0, 0.0), "on": (0.0, 0.0)}
        for _ in range(rounds):
            for name, cfg in (("off", off_cfg), ("on", on_cfg)):
                wall, cpu = await rate(cfg, seconds)
                best[name] = (max(best[name][0], wall), max(best[name][1], cpu))
        slower = 1 - best["on"][1] / best["off"][1]
        merge = await traffic(raceway.loads_config(config_text(url, "traffic")), max(seconds, 3.0))
        times: dict[str, list[float]] = {"push": [], "rounds_only": []}
        tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-shared-{os.getpid()}.yaml"
        for i in range(3):
            for kind, push in (("push", True), ("rounds_only", False)):
                tmp.write_text(config_text(url, f"cool{i}{kind}"))
                times[kind].append(await bench_time(tmp, url, push))
        tmp.unlink()
        data = {
            "races_per_s": {
                "off": {"wall": round(best["off"][0]), "cpu": round(best["off"][1])},
                "on": {"wall": round(best["on"][0]), "cpu": round(best["on"][1])},
                "slower_cpu": round(slower, 3),
                "goal_slower": GOAL_SLOWER,
            },
            "merge_traffic_per_engine": merge,
            "ms_429_to_benched_elsewhere": {
                "push": [round(t, 1) for t in times["push"]],
                "rounds_only": [round(t, 1) for t in times["rounds_only"]],
                "goal_push_ms": GOAL_PUSH_MS,
                "round_interval_ms": SYNC_INTERVAL_S * 1000,
            },
        }
        report("shared", data)
        ok = slower <= GOAL_SLOWER and max(times["push"]) < GOAL_PUSH_MS
        return 0 if ok else 1
    finally:
        proc.kill()
        proc.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--limited", metavar="CONFIG", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.limited:
        trio.run(limited_process, args.limited)
        sys.exit(0)
    sys.exit(trio.run(main, args.seconds, args.rounds))
