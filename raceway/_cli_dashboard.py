"""``raceway demo`` with its dashboard: the engine in a child process, the dashboard in front.

:func:`_demo_with_dashboard` starts ``raceway demo --headless --quiet`` as a
child in its own session, runs ``python -m dashboard`` attached to the
child's monitor socket, and stops the child when the dashboard exits
(:func:`_stop_child`: SIGINT, then harder). :func:`_terminal_restored` puts
the terminal back if the dashboard was killed mid-screen.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ._cli_common import EXIT_RACE_FAILED, _error


def _demo_with_dashboard(args: argparse.Namespace) -> int:
    """The demo with its dashboard: the engine in a child process, the dashboard in front.

    The child runs ``demo --headless --quiet`` with its monitor on a socket in
    a private temporary directory; the dashboard (``python -m dashboard``, a
    separate program that speaks only the wire format) attaches to it and owns
    the terminal. Quitting the dashboard stops the engine: SIGINT first, so it
    closes cleanly, then harder if it does not.
    """
    import shutil
    import subprocess
    import tempfile

    workdir = Path(tempfile.mkdtemp(prefix="raceway-demo-"))  # mode 0700
    socket_path = workdir / "raceway-demo.sock"
    engine_log = workdir / "engine.log"
    command = [sys.executable, "-m", "raceway", "demo", "--headless", "--quiet"]
    command += ["--monitor-socket", str(socket_path), "--races", str(args.races)]
    command += ["--concurrency", str(args.concurrency)]
    if args.config:
        command += ["-c", args.config]
    try:
        with engine_log.open("wb") as log_file:
            # Its own session: a ctrl-c meant for the dashboard does not reach it.
            engine = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            with _terminal_restored():
                code = subprocess.call([sys.executable, "-m", "dashboard", "--socket", str(socket_path)])
        finally:  # a KeyboardInterrupt (Ctrl-C, or SIGTERM) goes on to main() once the engine stopped
            stopped_by_us = _stop_child(engine)
        # Only an engine that ended on its own is worth a word: one stopped while it was still
        # starting (a dashboard quit at once) may exit 1 from a KeyboardInterrupt in an import.
        if not stopped_by_us and engine.returncode != 0:
            tail = engine_log.read_text(errors="replace").strip().splitlines()[-5:]
            _error(f"the demo engine stopped with exit code {engine.returncode}: " + " / ".join(tail))
            return EXIT_RACE_FAILED
        return code
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def _terminal_restored() -> Iterator[None]:
    """Put the terminal back as it was if the dashboard did not exit on its own (it was killed)."""
    try:
        import termios

        fd = sys.stdin.fileno()
        saved = termios.tcgetattr(fd)
    except (ImportError, OSError, ValueError, AttributeError):  # no terminal (tests, pipes)
        yield
        return
    try:
        yield
    except BaseException:
        # Leave the alternate screen, stop mouse reporting, show the cursor.
        sys.stdout.write("\x1b[?1000l\x1b[?1003l\x1b[?1006l\x1b[?1049l\x1b[?25h")
        sys.stdout.flush()
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        raise


def _stop_child(process: Any, grace_s: float = 5.0) -> bool:
    """Stop a child process: SIGINT (a clean shutdown), then SIGTERM, then SIGKILL.

    True when it had to be signalled, False when it had already ended on its own.
    """
    import subprocess

    signalled = False
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        if process.poll() is not None:
            return signalled
        process.send_signal(sig)
        signalled = True
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            continue
    process.wait()
    return signalled
