"""raceway bench: the planned comparison is exact, the CLI writes its report and asks before spending."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from raceway import HedgeOverride, SimProvider, _bench


def test_planned_first_wins_matches_the_oracle_and_hedged_saves_load() -> None:
    profiles = {
        "a": SimProvider(ttft_ms=200, sigma=0.5, text="one two three"),
        "b": SimProvider(ttft_ms=300, sigma=0.5, text="one two three"),
    }
    report = _bench.compare_planned(profiles, requests=120, seed=3, hedge_sweep=False)
    fw = report["strategies"]["first_wins"]
    assert {k: fw[k] for k in ("p50_ms", "p95_ms", "p99_ms")} == report["reference"]["oracle"]
    assert fw["requests_per_answer"] == 2.0 and fw["failures"] == 0
    hedged = report["strategies"]["hedged auto"]
    assert 1.0 <= hedged["requests_per_answer"] < 2.0
    assert report["best_single"] in ("single a", "single b")
    text = _bench.markdown(report)
    assert "| first_wins |" in text and "| oracle |" in text


def test_planned_bench_with_the_sweep_repeats_for_a_seed() -> None:
    # Slow providers and several races in flight: started together, each variant's first
    # races would reach their first hedge at one virtual instant (auto's fallback, before
    # any TTFT is seen), and with too few budget tokens for all, trio's task order — random,
    # unseeded — would pick which races hedged. Several capped auto variants: each is a
    # fresh engine, its own first instant, its own chance to tell. Short swept delays:
    # under a capped budget they would meet the same way.
    profiles = {
        n: SimProvider(ttft_ms=t, sigma=0.4, failure_rate=0.05, hang_rate=0.02, text="one two three")
        for n, t in (("a", 1200), ("b", 1500), ("c", 1800))
    }
    variants = {
        **_bench.DEFAULT_VARIANTS,
        **{f"hedged auto {x}": ("hedged", 0, HedgeOverride(delay_ms="auto", max_extra_load=x)) for x in (0.05, 0.2, 0.3)},
    }

    def run() -> dict[str, Any]:
        report = _bench.compare_planned(profiles, requests=32, seed=5, variants=variants, sweep_delays_ms=(10, 20, 40))
        del report["wall_s"]
        return report

    first, second = run(), run()
    assert first == second
    assert _bench.markdown(first) == _bench.markdown(second)
    # The sweep's budget never binds: at these delays every race starts all three.
    loads = [p["requests_per_answer"] for p in first["hedge_curve"]["points"]]
    assert len(loads) == 3 and min(loads) >= 2.9


def test_planned_bench_learns_on_the_virtual_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    # A provider that fails often enough to be benched (cooldowns of seconds): on the wall
    # clock, how many virtual races a cooldown covered depended on how fast this machine
    # raced. With the wall clock racing ahead 10 s at every reading, the figures must not move.
    profiles = {
        "bad": SimProvider(ttft_ms=20, sigma=0.3, failure_rate=0.6, text="one two"),
        "ok": SimProvider(ttft_ms=60, sigma=0.3, text="one two"),
    }
    variants = {"hedged auto": ("hedged", 0, None)}

    def run() -> dict[str, Any]:
        report = _bench.compare_planned(profiles, requests=120, seed=3, variants=variants, sweep_delays_ms=())
        del report["wall_s"]
        return report

    steady = run()
    now = [time.time()]

    def racing_ahead() -> float:
        now[0] += 10.0
        return now[0]

    monkeypatch.setattr(time, "time", racing_ahead)
    assert run() == steady


def test_bench_cli_writes_the_report(tmp_path: Path) -> None:
    env = {**os.environ, "RACEWAY_CONFIG": ""}
    out = tmp_path / "report"
    proc = subprocess.run(
        [sys.executable, "-m", "raceway", "bench", "--requests", "40", "--no-sweep", "--out", str(out)],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads((out / "report.json").read_text())
    assert set(data["strategies"]) == {"first_wins", "weighted", "quality", "hedged auto"}
    assert "| first_wins |" in (out / "report.md").read_text()
    assert "p99" in proc.stdout


def test_live_bench_asks_before_sending(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("virtual_models: {v: {providers: [{name: openai, model: gpt-4o-mini}]}}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "raceway", "bench", "-c", str(cfg)],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 2
    assert "requests to real providers" in proc.stderr and "--yes" in proc.stderr
    assert "Traceback" not in proc.stderr
