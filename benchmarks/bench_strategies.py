"""Strategies on simulated providers, against the oracle, the best single provider and each other.

    python -m benchmarks.bench_strategies [--requests 2000] [--seed 1] [--concurrency 8] [--scenario NAME]

Runs the learning scenarios of issue 13 (``raceway._bench.SCENARIOS``:
identical, one_fast, heavy_tail, one_bad) and the heavy-tailed mix
(``raceway._bench.HEAVY_TAILED``). Every strategy answers the same planned
requests, raced through the real engine on trio's virtual clock on a fresh
engine each, ``--concurrency`` in flight, so the figures are exact and
repeatable; they leave out the first quarter of the requests (learning
settles there). Per strategy: p50/p95/p99 caller TTFT and ratios to the
oracle, requests per answer, each provider's share of wins and of first
attempts; for hedged, the hindsight-optimal fixed-delay curve beside auto.
Writes benchmarks/results/strategies/<scenario>/report.md and report.json
(plus cdf.png when matplotlib is installed) and a summary in
benchmarks/results/strategies/summary.md.
"""

from __future__ import annotations

import argparse
from typing import Any

from benchmarks._common import RESULTS, machine
from raceway import _bench


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=_bench.PLANNED_CONCURRENCY)
    parser.add_argument("--scenario", choices=[*_bench.SCENARIOS, "heavy_tailed_mix"], action="append")
    args = parser.parse_args()
    scenarios = {**_bench.SCENARIOS, "heavy_tailed_mix": _bench.HEAVY_TAILED}
    chosen = args.scenario or list(scenarios)
    command = (
        f"python -m benchmarks.bench_strategies --requests {args.requests} --seed {args.seed} "
        f"--concurrency {args.concurrency}" + "".join(f" --scenario {s}" for s in args.scenario or ())
    )
    summary = [f"# strategies benchmark\n\n`{command}`\n"]
    for name in chosen:
        report = _bench.compare_planned(
            scenarios[name], requests=args.requests, seed=args.seed, concurrency=args.concurrency
        )
        report["scenario"] = name
        written = _bench.write_report(report, RESULTS / "strategies" / name, {**machine(), "command": command})
        print(f"## {name}\n")
        print(_bench.markdown(report))
        summary.append(f"## {name}\n\n{_summary(report)}")
        print("wrote " + ", ".join(str(p) for p in written))
    (RESULTS / "strategies" / "summary.md").write_text("\n".join(summary))


def _summary(report: dict[str, Any]) -> str:
    lines = ["| strategy | p50 | p99 | p99 / oracle | requests per answer | win share | first-attempt share |",
             "|---|---:|---:|---:|---:|---|---|"]
    for name, row in report["strategies"].items():
        lines.append(
            f"| {name} | {row['p50_ms']:.0f} | {row['p99_ms']:.0f} | {row['vs_oracle']['p99_ms']:.2f} | "
            f"{row['requests_per_answer']:.3f} | {_share(row['win_share'])} | {_share(row['first_attempt_share'])} |"
        )
    auto = report.get("hedge_curve", {}).get("auto")
    if auto:
        lines.append(
            f"\nhedged auto: p99 {auto['p99_ms']:.0f} ms at {auto['requests_per_answer']:.3f} requests per answer; "
            f"best fixed delay at that load {auto['best_fixed_p99_ms']} ms ({auto['vs_best_fixed']}x)"
        )
    return "\n".join(lines) + "\n"


def _share(shares: dict[str, float]) -> str:
    return " ".join(f"{k} {v:.0%}" for k, v in shares.items())


if __name__ == "__main__":
    main()
