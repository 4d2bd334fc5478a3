"""The engine's background services: ``performance_file`` and the monitor socket.

``open_engine`` calls :func:`start_services` once its nursery is open; both
services live in that nursery, so they stop (the file saved one last time,
the socket file removed) when the engine closes. (Stopping a whole command
on SIGINT/SIGTERM is :mod:`raceway._exits`.)
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import trio

from ._monitor import monitor_setting, serve_monitor
from ._persist import keep_performance_file, performance_path

if TYPE_CHECKING:
    from ._engine import Engine


async def start_services(engine: Engine, nursery: trio.Nursery) -> None:
    """Load ``performance_file`` and open the monitor socket, as ``engine.config`` says."""
    config = engine.config
    path = performance_path(config.performance_file)
    if path is not None:
        keeper = functools.partial(keep_performance_file, interval=config.performance_save_interval_s)
        engine.performance_path = await nursery.start(keeper, engine.tracker, path)
    setting = monitor_setting(config.monitor.socket)
    if setting is not None:
        engine.monitor_socket = await nursery.start(serve_monitor, engine, setting)
