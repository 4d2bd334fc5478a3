"""Does the dashboard keep up with a busy engine? Events/s sustained, redraw rate, key latency.

    python -m benchmarks.bench_dashboard [--events-per-s 1000] [--seconds 60] [--size 160x48]
    python -m benchmarks.bench_dashboard --engine [--concurrency 40]   # the real engine instead

The feed is the real engine's: by default its recorded session
(``tests/replay_session.ndjson``, ``raceway demo --headless`` on the sim
providers) looped live by ``tests/replay_monitor.py serve`` in its own
process, as many overlapping copies as the event rate needs, with the
monitor's bounded per-client queue (``dropped`` when the reader falls
behind). With ``--engine`` it is ``raceway demo --headless --monitor-socket``
itself, racing ``--concurrency`` at a time. The dashboard runs headless
(``run_test``) at a real terminal size and is sent ``p`` four times a second
(pause, resume) while the events pour in. The CI suite does not time this: it
is a benchmark, run by hand.

Reported:

* events/s sustained — messages the dashboard applied per second, and how far
  behind the engine's clock it was at the end (``lag_s``) and at worst;
* dropped — events the engine had to skip for it (0 means it never fell behind);
* redraw_timer_hz — how often the redraw timer ran (its target is 10 Hz), and
  redraws_per_s — redraws that changed the screen (the timer's, plus one per resume);
* key latency — how long a key press took to be handled, median and worst;
* meets_targets — what tests/test_dashboard_app.py used to time (now here): at
  most 1 s behind, nothing dropped, the timer at 5 Hz or more, half its ticks
  drawing, median key under 250 ms and none over 1 s, 80% of the target rate.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks._common import quantile, report
from dashboard.app import CONNECTED, Dashboard, tune_gc

REPLAY = Path(__file__).resolve().parent.parent / "tests" / "replay_monitor.py"


async def key_latency(app: Dashboard, key: str, handled: Callable[[], bool], limit_s: float = 10.0) -> float:
    """Seconds from a key press (as the terminal driver delivers it) until ``handled()`` holds."""
    before = time.monotonic()
    app.simulate_key(key)
    while not handled():
        if time.monotonic() - before > limit_s:
            break
        await asyncio.sleep(0.001)
    return time.monotonic() - before


async def watch(app: Dashboard, seconds: float, size: tuple[int, int]) -> dict[str, Any]:
    async with app.run_test(size=size) as pilot:
        deadline = time.monotonic() + 15
        while app.link_state != CONNECTED:
            if time.monotonic() > deadline:
                raise SystemExit("the dashboard did not connect to the engine")
            await pilot.pause(0.05)
        await pilot.pause(1.0)  # the snapshot and the first second settle
        start = time.monotonic()
        messages0, ticks0, redraws0 = app.model.messages, app.ticks, app.redraws
        keys: list[float] = []
        lags: list[float] = []
        while (now := time.monotonic()) - start < seconds:
            # pause, then resume at once: the view stays live, two keys measured
            keys.append(await key_latency(app, "p", lambda: app.paused))
            keys.append(await key_latency(app, "p", lambda: not app.paused))
            lags.append(max(0.0, time.time() - app.model.now_ts))
            await asyncio.sleep(max(0.0, 0.25 - (time.monotonic() - now)))
        elapsed = time.monotonic() - start
        return {
            "seconds": round(elapsed, 1),
            "events_applied": app.model.messages - messages0,
            "events_per_s": round((app.model.messages - messages0) / elapsed, 1),
            "lag_s_at_end": round(max(0.0, time.time() - app.model.now_ts), 3),
            "lag_s_p99": round(quantile(lags, 0.99), 3),
            "dropped": app.model.dropped,
            "redraw_timer_hz": round((app.ticks - ticks0) / elapsed, 2),
            # timer redraws that changed something, plus one per resume (p)
            "redraws_per_s": round((app.redraws - redraws0) / elapsed, 2),
            "key_latency_ms_median": round(statistics.median(keys) * 1000, 1),
            "key_latency_ms_p95": round(quantile(keys, 0.95) * 1000, 1),
            "key_latency_ms_max": round(max(keys) * 1000, 1),
            "keys_pressed": len(keys),
            "races_kept": len(app.model.races),
        }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--events-per-s", type=float, default=1000.0)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--size", default="160x48", help="terminal size, COLSxROWS (default 160x48)")
    p.add_argument("--engine", action="store_true", help="watch the real demo engine instead of the replay")
    p.add_argument("--concurrency", type=int, default=40, help="with --engine: races in flight (default 40)")
    p.add_argument("--profile", action="store_true", help="print where the dashboard's time goes")
    args = p.parse_args()
    cols, rows = (int(n) for n in args.size.split("x"))
    workdir = Path(tempfile.mkdtemp(prefix="rwbench-"))
    path = workdir / "raceway-bench.sock"
    if args.engine:
        command = [sys.executable, "-m", "raceway", "demo", "--headless", "--quiet", "--monitor-socket", str(path)]
        command += ["--concurrency", str(args.concurrency)]
    else:
        command = [sys.executable, str(REPLAY), "serve", "--socket", str(path)]
        command += ["--events-per-s", str(args.events_per_s), "--seconds", str(args.seconds + 30)]
    engine = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        tune_gc()  # as raceway-dashboard does
        app = Dashboard(path)
        profiler = cProfile.Profile() if args.profile else None
        if profiler:
            profiler.enable()
        figures = asyncio.run(watch(app, args.seconds, (cols, rows)))
        if profiler:
            profiler.disable()
            pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(40)
    finally:
        engine.terminate()  # SIGTERM: both end cleanly
        engine.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)
    figures["meets_targets"] = bool(
        figures["lag_s_at_end"] < 1.0
        and figures["dropped"] == 0
        and figures["redraw_timer_hz"] >= 5
        and figures["redraws_per_s"] >= 0.5 * figures["redraw_timer_hz"]
        and figures["key_latency_ms_median"] < 250
        and figures["key_latency_ms_max"] < 1000
        and (args.engine or figures["events_per_s"] >= 0.8 * args.events_per_s)
    )
    report(
        "dashboard",
        {
            "feed": "raceway demo --headless" if args.engine else "replayed recording",
            "target_events_per_s": None if args.engine else args.events_per_s,
            "terminal": args.size,
            "cores": os.cpu_count(),
            **figures,
        },
    )


if __name__ == "__main__":
    main()
