"""Finding an engine to watch, and how long to wait before trying again.

Engines put their sockets in :func:`raceway.wire.default_monitor_dir` as
``raceway-<pid>.sock``. A socket file can outlive its engine (a ``kill -9``
leaves it behind), so :func:`live_sockets` drops those whose pid is gone;
names without a pid are kept, and a failed connect sorts them out.

The reading side lives in the app's worker; this module only decides where
and when, so it is unit-testable without a socket.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from raceway import wire

#: First wait after a failed connect; doubles each time...
BACKOFF_FIRST_S = 0.25
#: ...up to this (an engine that restarts is back within seconds).
BACKOFF_MAX_S = 5.0
#: How often to look again for engines when none is running.
SEARCH_INTERVAL_S = 1.0
#: Give up on one connect attempt after this long (a local socket answers at once).
CONNECT_TIMEOUT_S = 3.0
#: Longest line accepted: a snapshot carries up to a few hundred races.
LINE_LIMIT = 16 * 1024 * 1024


def backoff_s(failures: int) -> float:
    """Seconds to wait after ``failures`` consecutive failed attempts (1, 2, ...)."""
    if failures <= 0:
        return 0.0
    return float(min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2.0 ** (failures - 1)))


def pid_of(path: Path) -> int | None:
    """The engine's pid from a socket named ``raceway-<pid>.sock``, if it has one."""
    name = path.name
    if not (name.startswith(wire.SOCKET_PREFIX) and name.endswith(wire.SOCKET_SUFFIX)):
        return None
    middle = name[len(wire.SOCKET_PREFIX) : -len(wire.SOCKET_SUFFIX)]
    return int(middle) if middle.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    except OSError:
        return False
    return True


def live_sockets(paths: Iterable[Path]) -> list[Path]:
    """``paths`` without the sockets whose engine process is gone (order kept)."""
    out = []
    for path in paths:
        pid = pid_of(path)
        if pid is None or _alive(pid):
            out.append(path)
    return out


def discover(directory: Path | None = None) -> list[Path]:
    """Sockets of running engines in ``directory`` (default: the per-user monitor dir), newest first."""
    return live_sockets(wire.find_sockets(directory))


def choose(candidates: list[Path], previous: Path | None) -> Path | None:
    """Which socket to attach to without asking: the previous one if still there, else the only one.

    ``None`` when there is nothing to attach to or the user must pick.
    """
    if previous is not None and previous in candidates:
        return previous
    if len(candidates) == 1:
        return candidates[0]
    return None
