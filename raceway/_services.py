"""The engine's background services: ``performance_file`` and the monitor socket.

``open_engine`` calls :func:`start_services` once its nursery is open; both
services live in that nursery, so they stop (the file saved one last time,
the socket file removed) when the engine closes. (Stopping a whole command
on SIGINT/SIGTERM is :mod:`raceway._exits`.)
"""

from __future__ import annotations

import functools
from pathlib import Path

import trio

from ._config import Config
from ._monitor import Monitored, monitor_setting, serve_monitor
from ._persist import keep_performance_file, performance_path
from ._tracker import Tracker


async def start_services(
    config: Config, tracker: Tracker, monitored: Monitored, nursery: trio.Nursery
) -> tuple[Path | None, Path | None]:
    """Load ``performance_file`` into ``tracker`` and open the monitor socket, as ``config`` says.

    The services get what they read — the tracker, and the engine as the
    monitor sees it (:class:`~raceway._monitor.Monitored`) — never the engine
    itself. Returns the performance file's path and the socket's (``None``
    when off).
    """
    performance: Path | None = None
    socket: Path | None = None
    path = performance_path(config.performance_file)
    if path is not None:
        keeper = functools.partial(keep_performance_file, interval=config.performance_save_interval_s)
        performance = await nursery.start(keeper, tracker, path)
    setting = monitor_setting(config.monitor.socket)
    if setting is not None:
        socket = await nursery.start(serve_monitor, monitored, setting)
    return performance, socket
