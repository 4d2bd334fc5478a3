"""``raceway-dashboard [--socket PATH | --redis URL [--prefix P]]`` and ``python -m dashboard``: watch an engine or a fleet."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from raceway import wire


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``raceway-dashboard`` console script."""
    parser = argparse.ArgumentParser(
        prog="raceway-dashboard",
        description=(
            "Watch a running raceway engine: races as they happen, how each provider is doing, "
            "and the event stream. With no --socket it finds the engines running as you "
            f"(sockets in {wire.default_monitor_dir()}) and asks which one when there are several."
        ),
        epilog="Keys: q quits, ? lists the rest.",
    )
    parser.add_argument(
        "--socket",
        metavar="PATH",
        help="the engine's monitor socket (monitor.socket in its config)",
    )
    parser.add_argument(
        "--dir",
        metavar="DIR",
        help="where to look for engines' sockets (default: the per-user monitor directory)",
    )
    parser.add_argument(
        "--redis",
        metavar="URL",
        help="watch a fleet instead: the Redis its engines share (redis.url in their config, with events: true)",
    )
    parser.add_argument("--prefix", default="raceway", help="the fleet's key prefix (redis.prefix; default raceway)")
    args = parser.parse_args(argv)
    if args.redis:
        from .fleet_link import url_problem

        problem = "--socket and --redis exclude each other" if args.socket else url_problem(args.redis)
        if problem:
            parser.error(problem)
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        # Textual would draw into a pipe forever, at full speed: say so and stop.
        print(
            "raceway-dashboard: needs a terminal (stdin and stdout); "
            "to watch races without one, run `raceway demo --headless`",
            file=sys.stderr,
        )
        return 2
    socket = args.socket
    if args.redis:  # the fleet's stream, relayed on a private socket the app attaches to (fleet_link.py)
        from .fleet_link import start_relay

        socket = start_relay(args.redis, args.prefix)
    from .app import run  # Textual loads only once the arguments are fine

    try:
        return run(socket, Path(args.dir) if args.dir else None)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
