"""``python -m benchmarks`` (``make bench``): run every benchmark, keep each output.

Each benchmark runs as its own process; what it prints is saved to
``benchmarks/results/<name>.txt`` under a header naming the machine, the
command and the date (benchmarks that also write JSON keep doing so). Pass
names to run a subset: ``python -m benchmarks engine strategies``.
"""

from __future__ import annotations

import subprocess
import sys
import time

from benchmarks._common import RESULTS, machine

BENCHMARKS = {
    "engine": ["-m", "benchmarks.bench_engine"],
    "http": ["-m", "benchmarks.bench_http"],
    "monitor": ["-m", "benchmarks.bench_monitor"],
    "strategies": ["-m", "benchmarks.bench_strategies"],
    "dashboard": ["-m", "benchmarks.bench_dashboard"],
    "serve": ["-m", "benchmarks.bench_serve"],
    "telemetry": ["-m", "benchmarks.bench_telemetry"],
    "shared": ["-m", "benchmarks.bench_shared"],
}


def main(names: list[str]) -> int:
    chosen = names or list(BENCHMARKS)
    unknown = [n for n in chosen if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)} (known: {', '.join(BENCHMARKS)})", file=sys.stderr)
        return 2
    RESULTS.mkdir(exist_ok=True)
    failed = []
    m = machine()
    for name in chosen:
        command = ["python", *BENCHMARKS[name]]
        print(f"== {name}: {' '.join(command)}", flush=True)
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, *BENCHMARKS[name]], capture_output=True, text=True)
        header = (
            f"# {name} benchmark\n# command: {' '.join(command)}\n# date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}\n"
            f"# machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, {m['platform']}\n"
            f"# took {time.perf_counter() - t:.0f} s, exit {proc.returncode}\n\n"
        )
        (RESULTS / f"{name}.txt").write_text(header + proc.stdout + (proc.stderr if proc.returncode else ""))
        print(proc.stdout[-3000:])
        if proc.returncode:
            print(proc.stderr[-3000:], file=sys.stderr)
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
