"""Shared by the benchmarks: machine description, timing helpers, result output."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def quantile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def summary_us(samples_ns: list[int]) -> dict[str, float]:
    us = [s / 1000 for s in samples_ns]
    return {
        "median_us": round(statistics.median(us), 1),
        "p99_us": round(quantile(us, 0.99), 1),
        "mean_us": round(statistics.fmean(us), 1),
    }


async def timed(
    runs: dict[str, Callable[[], Awaitable[None]]], races: int, *, warmup: int = 200, rounds: int = 10
) -> dict[str, dict[str, float]]:
    """Each of ``runs`` timed ``races`` times, interleaved in ``rounds`` so drift hits all alike."""
    samples: dict[str, list[int]] = {name: [] for name in runs}
    for fn in runs.values():  # warm up
        for _ in range(warmup):
            await fn()
    for _ in range(rounds):
        for name, fn in runs.items():
            out = samples[name]
            for _ in range(races // rounds):
                t = time.perf_counter_ns()
                await fn()
                out.append(time.perf_counter_ns() - t)
    return {name: summary_us(s) for name, s in samples.items()}


def report(name: str, data: dict[str, Any]) -> None:
    """Print ``data`` and save it as benchmarks/results/<name>.json."""
    data = {"benchmark": name, "command": " ".join([Path(sys.executable).name, *sys.argv]), "machine": machine(), **data}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
    print(json.dumps(data, indent=2))
