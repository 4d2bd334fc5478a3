"""Strategies on simulated heavy-tailed providers, against the oracle and the best single provider.

    python -m benchmarks.bench_strategies [--requests 2000] [--seed 1]

Three providers with lognormal TTFT and a few percent failures and hangs
(``raceway._bench.HEAVY_TAILED``) answer the same planned requests for every
strategy, raced through the real engine on trio's virtual clock, so the
figures are exact and repeatable. Writes benchmarks/results/strategies/report.md
and report.json (plus cdf.png when matplotlib is installed).
"""

from __future__ import annotations

import argparse

from benchmarks._common import RESULTS, machine
from raceway import _bench


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    report = _bench.compare_planned(_bench.HEAVY_TAILED, requests=args.requests, seed=args.seed)
    command = f"python -m benchmarks.bench_strategies --requests {args.requests} --seed {args.seed}"
    written = _bench.write_report(report, RESULTS / "strategies", {**machine(), "command": command})
    print(_bench.markdown(report))
    print(_bench.terminal_cdf(report))
    print("wrote " + ", ".join(str(p) for p in written))


if __name__ == "__main__":
    main()
