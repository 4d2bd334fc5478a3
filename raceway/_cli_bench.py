"""``raceway bench``: the command in front of :mod:`raceway._bench`.

It picks the mode (planned when every provider is simulated or a
``--scenario`` is named, else live), says what it will send and, live, asks
before sending it; shows a progress bar while the races run; then writes the
report folder and prints the report.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ._cli_common import EXIT_OK, UsageError, _err, _load
from ._exits import run_stoppable
from ._text import plural


def cmd_bench(args: argparse.Namespace) -> int:
    import platform
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from . import _bench

    config = _load(args)
    profiles = _bench.sim_profiles(config, args.model)
    if args.scenario:
        if args.scenario not in _bench.SCENARIOS:
            raise UsageError(f"unknown scenario {args.scenario!r} (known: {', '.join(_bench.SCENARIOS)})")
        profiles = _bench.SCENARIOS[args.scenario]
    if args.requests < 0 or args.concurrency < 1:
        raise UsageError("--requests must be 0 (the default) or more and --concurrency at least 1")
    if profiles is not None:
        requests = args.requests or 2000
        total = _bench.planned_races(len(profiles), requests, not args.no_sweep)
        what = f"{plural(requests, 'planned request')} per strategy on the virtual clock (simulated providers, no network)"
    else:
        requests = args.requests or 20
        n = len(config.resolve(args.model).participants)
        total = requests * (len(_bench.DEFAULT_VARIANTS) + n)
        sends = _bench.live_request_count(n, requests)
        what = f"up to {plural(sends, 'request')} to real providers ({requests} per strategy); they may cost money"
        if not args.yes:
            if not sys.stdin.isatty():
                raise UsageError(f"this sends {what}; pass --yes to confirm")
            answer = input(f"raceway bench will send {what}. Go on? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                _err("nothing sent")
                return EXIT_OK
    _err(f"bench: {what}")
    with Progress(
        TextColumn("[bold]racing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=None, transient=True,
    ) as bar:
        task = bar.add_task("races", total=total)

        def advance(n: int) -> None:
            bar.advance(task, n)

        if profiles is not None:
            report = _bench.compare_planned(
                profiles, requests=requests, seed=args.seed, hedge_sweep=not args.no_sweep, progress=advance,
                run=run_stoppable,
            )
        else:
            report = _bench.compare_live(
                config, args.model, requests=requests, concurrency=args.concurrency, progress=advance,
                run=run_stoppable,
            )
    out = Path(args.out or f"raceway-bench-{time.strftime('%Y%m%d-%H%M%S')}")
    machine = {"python": platform.python_version(), "platform": platform.platform(), "cores": os.cpu_count(),
               "command": "raceway " + " ".join(sys.argv[1:])}
    written = _bench.write_report(report, out, machine)
    print(_bench.markdown(report))
    print(_bench.terminal_cdf(report))
    print("wrote " + ", ".join(str(p) for p in written))
    return EXIT_OK
