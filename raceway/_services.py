"""The engine's background services: ``performance_file`` and the monitor socket.

``open_engine`` calls :func:`start_services` once its nursery is open; both
services live in that nursery, so they stop (the file saved one last time,
the socket file removed) when the engine closes.
"""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import trio

from ._monitor import monitor_setting, serve_monitor
from ._persist import keep_performance_file, performance_path

if TYPE_CHECKING:
    from ._engine import Engine


async def start_services(engine: Engine, nursery: trio.Nursery) -> None:
    """Load ``performance_file`` and open the monitor socket, as ``engine.config`` says."""
    path = performance_path(engine.config.performance_file)
    if path is not None:
        engine.performance_path = await nursery.start(keep_performance_file, engine.tracker, path)
    setting = monitor_setting(engine.config.monitor.socket)
    if setting is not None:
        engine.monitor_socket = await nursery.start(serve_monitor, engine, setting)


@asynccontextmanager
async def sigterm_cancels() -> AsyncIterator[None]:
    """Inside this block SIGTERM cancels the block, as Ctrl-C would stop it.

    For long-running commands (``raceway demo``): a plain ``kill`` then ends
    them cleanly — statistics saved, monitor socket removed.
    """
    with trio.CancelScope() as scope, trio.open_signal_receiver(signal.SIGTERM) as signals:

        async def watch() -> None:
            async for _ in signals:
                scope.cancel()
                return

        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch)
            yield
            nursery.cancel_scope.cancel()
