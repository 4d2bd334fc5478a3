"""What the gateway costs: added time to first chunk, and CPU per raced answer.

Run from the repository root::

    python -m benchmarks.bench_serve [--scale 1.0]

Three processes, so no two share an event loop: the fake upstream
(``tests/fake_upstream.py``, every upstream ``instant``: no artificial
delay), ``raceway serve`` on an ephemeral port (its config: ``one`` races a
single upstream, ``three`` races three, ``first_wins``, grace 0; monitor
socket on, as users run it), and this process, the load generator (httpx
under trio). At 1, 20 and 100 concurrent clients, each client sends
streaming chat completions one after another, in rounds that interleave

* **direct** — straight to the upstream's ``/v1/chat/completions``;
* **gateway, 1 provider** — the same request through the gateway (its own
  cost: parsing, the engine, re-encoding every chunk, one more hop);
* **gateway, 3 providers** — raced (what racing adds: two more upstream
  requests, cancelled at the decision).

TTFT is client-side, from sending the request to the first non-empty content
delta; "added" is gateway minus direct at the same percentile and
concurrency. **CPU per raced answer** is the gateway process's user+system
CPU time (``/proc/PID/stat``) over a run of 3-provider answers, divided by
their number. Every request must succeed; errors are counted and reported.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import trio
import yaml

from benchmarks import _common
from benchmarks.bench_http import percentile, start_upstream

ROOT = Path(__file__).resolve().parent.parent
MESSAGES = [{"role": "user", "content": "Say hello."}]
CONCURRENCY = (1, 20, 100)
#: Requests per client per variant at each concurrency (scaled by --scale).
REQUESTS = {1: 300, 20: 25, 100: 6}
#: Raced answers per CPU measurement (at 20 concurrent clients).
CPU_ANSWERS = 600
FIRST_CONTENT = re.compile(rb'"content":\s*"[^"]')
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def gateway_config(upstream: str) -> str:
    def openai(name: str) -> dict[str, Any]:
        return {"type": "openai", "base_url": f"{upstream}/{name}/v1", "model": "fake-gpt"}

    data = {
        "timeout_ms": 5000,
        "grace_period_ms": 0,
        "performance_file": "off",
        "providers": {"up1": openai("instant"), "up2": openai("instant_b"), "up3": openai("instant_c")},
        "virtual_models": {
            "one": {"strategy": "first_wins", "providers": [{"name": "up1"}]},
            "three": {"strategy": "first_wins", "providers": [{"name": n} for n in ("up1", "up2", "up3")]},
        },
        "http": {"max_connections": 400, "max_keepalive_connections": 400},
    }
    return yaml.safe_dump(data)


async def start_gateway(nursery: trio.Nursery, config_path: Path) -> tuple[str, trio.Process]:
    command = [sys.executable, "-m", "raceway", "serve", "-c", str(config_path), "--port", "0"]
    process: trio.Process = await nursery.start(
        functools.partial(trio.run_process, command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    )
    assert process.stderr is not None
    stderr = process.stderr
    buffer = b""
    with trio.fail_after(30):
        while (match := re.search(rb"listening on (http://\S+) ", buffer)) is None:
            data = await stderr.receive_some()
            if not data:
                raise RuntimeError(f"raceway serve exited before it started: {buffer!r}")
            buffer += data

    async def drain() -> None:
        while await stderr.receive_some():
            pass

    nursery.start_soon(drain)
    return match.group(1).decode(), process


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


async def one_request(client: httpx.AsyncClient, url: str, model: str) -> float:
    """Seconds to the first non-empty content delta of one streamed completion."""
    body = {"model": model, "messages": MESSAGES, "stream": True}
    t0 = time.perf_counter()
    ttft = None
    seen = b""
    async with client.stream("POST", url, json=body) as response:
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}: {(await response.aread())[:200]!r}")
        async for data in response.aiter_bytes():
            if ttft is None:
                seen += data
                if FIRST_CONTENT.search(seen):
                    ttft = time.perf_counter() - t0
            if b"[DONE]" in data:
                break
    if ttft is None:
        raise RuntimeError("no content in the answer")
    return ttft


async def load(client: httpx.AsyncClient, url: str, model: str, clients: int, each: int) -> tuple[list[float], int]:
    """``clients`` concurrent clients, ``each`` requests one after another; TTFTs and errors."""
    ttfts: list[float] = []
    errors = 0

    async def run_client() -> None:
        nonlocal errors
        for _ in range(each):
            try:
                ttfts.append(await one_request(client, url, model))
            except Exception:
                errors += 1

    async with trio.open_nursery() as nursery:
        for _ in range(clients):
            nursery.start_soon(run_client)
    return ttfts, errors


async def main(scale: float) -> None:
    limits = httpx.Limits(max_connections=400, max_keepalive_connections=400)
    with tempfile.TemporaryDirectory() as tmp:
        async with trio.open_nursery() as nursery:
            upstream, up_process = await start_upstream(nursery)
            config = Path(tmp) / "gateway.yaml"
            config.write_text(gateway_config(upstream))
            gateway, gw_process = await start_gateway(nursery, config)
            variants = {
                "direct": (f"{upstream}/instant/v1/chat/completions", "fake-gpt"),
                "gateway_1": (f"{gateway}/v1/chat/completions", "one"),
                "gateway_3": (f"{gateway}/v1/chat/completions", "three"),
            }
            results: dict[str, Any] = {}
            async with httpx.AsyncClient(limits=limits, timeout=30) as client:
                for url, model in variants.values():  # warm-up: connections, imports, caches
                    await load(client, url, model, 20, 3)
                for clients in CONCURRENCY:
                    each = max(1, round(REQUESTS[clients] * scale))
                    samples: dict[str, list[float]] = {name: [] for name in variants}
                    errors = dict.fromkeys(variants, 0)
                    rounds = 5
                    for _ in range(rounds):  # interleaved, so drift hits every variant alike
                        for name, (url, model) in variants.items():
                            ttfts, failed = await load(client, url, model, clients, max(1, each // rounds))
                            samples[name] += ttfts
                            errors[name] += failed
                    row: dict[str, Any] = {}
                    for name, values in samples.items():
                        row[name] = {
                            "requests": len(values) + errors[name],
                            "errors": errors[name],
                            "ttft_p50_ms": round(percentile(values, 0.5) * 1000, 3),
                            "ttft_p99_ms": round(percentile(values, 0.99) * 1000, 3),
                        }
                    for name in ("gateway_1", "gateway_3"):
                        row[f"added_{name}"] = {
                            q: round(row[name][f"ttft_{q}_ms"] - row["direct"][f"ttft_{q}_ms"], 3) for q in ("p50", "p99")
                        }
                    results[f"{clients}_clients"] = row
                    print(f"{clients} clients: {row}", file=sys.stderr, flush=True)
                answers = max(20, round(CPU_ANSWERS * scale))
                before = cpu_seconds(gw_process.pid)
                wall = time.perf_counter()
                _, failed = await load(client, variants["gateway_3"][0], "three", 20, answers // 20)
                wall = time.perf_counter() - wall
                used = cpu_seconds(gw_process.pid) - before
                results["cpu_per_raced_answer"] = {
                    "answers": answers // 20 * 20,
                    "errors": failed,
                    "providers": 3,
                    "concurrency": 20,
                    "gateway_cpu_ms_per_answer": round(used * 1000 / (answers // 20 * 20), 3),
                    "answers_per_s": round(answers // 20 * 20 / wall, 1),
                }
            for process in (gw_process, up_process):
                process.terminate()
            nursery.cancel_scope.cancel()
    _common.report(
        "serve",
        {
            "what": "raceway serve: client-side TTFT direct vs through the gateway (1 and 3 providers, "
            "first_wins, instant upstreams), and gateway CPU per raced answer",
            "versions": {"trio": trio.__version__, "httpx": httpx.__version__},
            "results": results,
        },
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="raceway serve overhead benchmark")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the request counts (default 1)")
    args = parser.parse_args()
    trio.run(main, args.scale)
