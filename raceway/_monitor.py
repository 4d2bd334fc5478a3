"""The monitor socket: every race, live, as newline-delimited JSON on a Unix socket.

:func:`serve_monitor` binds a Unix stream socket (mode 0600, in a directory
only the user can enter) and serves each client the session ``raceway.wire``
describes: ``hello``, ``snapshot``, then live events and a ``stats`` line
every :data:`STATS_INTERVAL_S` while anyone is attached. ``open_engine``
starts it in the engine's nursery unless ``monitor.socket`` is ``off``.

Never slowing a race
--------------------

Races call the engine's listeners synchronously, inside the race loop, so
the monitor's listener does O(1) work per client and never waits: it wraps
the event in one shared :class:`_Line` and appends that to every attached
client's queue. It is subscribed only while a client is attached — with no
listener the engine does not even build events, so an idle monitor costs a
race nothing (the snapshot's recent races come from the tracker).
The line is encoded to JSON at most once, by the first writer that sends it,
outside the race's call stack — and never, if every client dropped it. A
queue holds at most :data:`QUEUE_LIMIT` messages; past that, the client's
events are dropped and counted, and when its queue has room again (it caught
up) it first receives ``{"type": "dropped", "count": N}``. Each client has
its own writer task that sends what is queued, in batches; a client that
never reads blocks only that task. What a client sends is read and thrown
away.

The naive versions fail: writing to clients from the listener (``await``
in a race), or a shared unbounded queue, lets one stuck ``socat`` stall every
race or grow memory without bound; encoding per client multiplies the cost by
the number of viewers, and encoding in the listener charges every race for
lines a stuck client will drop unread.

The socket file
---------------

Binding it (mode 0600, in a directory only the user can enter), replacing
files left by crashed engines and removing it when the monitor stops is
:mod:`raceway._monitor_socket`'s; its names stay importable from here.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import attrs
import trio

from . import wire
from ._errors import ConfigError
from ._events import RaceFinished, StatsSnapshot
from ._monitor_socket import BACKLOG as BACKLOG
from ._monitor_socket import MAX_SOCKET_PATH as MAX_SOCKET_PATH
from ._monitor_socket import _bind as _bind
from ._monitor_socket import _bind_auto, _bind_explicit, _remove
from ._monitor_socket import _bind_first_free as _bind_first_free
from ._monitor_socket import _InUse as _InUse
from ._monitor_socket import _private_dir as _private_dir
from ._monitor_socket import _replace_if_stale as _replace_if_stale
from ._monitor_socket import _sweep_stale as _sweep_stale
from ._tracker import ProviderStats


class Monitored(Protocol):
    """What the monitor reads of an engine: its virtual models, statistics, recent races and events.

    ``raceway.Engine`` is one; the monitor knows nothing else of it.
    """

    def models(self) -> Sequence[Any]:
        """The virtual models (objects with ``id``, ``display_name``, ...)."""
        ...

    def stats(self) -> dict[str, ProviderStats]:
        """Per ``provider/model`` statistics."""
        ...

    def recent_races(self) -> Sequence[RaceFinished]:
        """The races finished lately, oldest first."""
        ...

    def subscribe(self, listener: Callable[[Any], None]) -> Callable[[], None]:
        """Call ``listener(event)`` for every event; returns the unsubscribe function."""
        ...

log = logging.getLogger("raceway")

#: Messages a client may have waiting before its events are dropped and counted
#: (at about 0.5 KB a message, half a megabyte per stuck client at most).
QUEUE_LIMIT = 1000
#: Seconds between ``stats`` messages while a client is attached.
STATS_INTERVAL_S = 1.0
#: Bytes a writer sends per ``send_all`` at most (keeps one batch's memory small).
WRITE_BATCH_BYTES = 256 * 1024


class _Line:
    """One message for every client that gets it, encoded once, on first use."""

    __slots__ = ("_encoded", "message")

    def __init__(self, message: Any) -> None:
        self.message = message  # immutable (frozen attrs), so encoding later is the same
        self._encoded: bytes | None = None

    def encoded(self) -> bytes:
        if self._encoded is None:
            self._encoded = wire.encode(self.message)
        return self._encoded


class _Client:
    """One attached client: its queue of lines, what it missed, its writer's wake-up."""

    __slots__ = ("dropped", "limit", "queue", "ready")

    def __init__(self, limit: int) -> None:
        self.queue: deque[_Line] = deque()
        self.limit = limit
        self.dropped = 0
        self.ready: trio.Event | None = None

    def offer(self, line: _Line) -> None:
        queue = self.queue
        if len(queue) >= self.limit:
            self.dropped += 1
            return
        if self.dropped:
            queue.append(_dropped_line(self.dropped))
            self.dropped = 0
        queue.append(line)
        ready = self.ready
        if ready is not None:
            ready.set()


def _dropped_line(count: int) -> _Line:
    return _Line(wire.Dropped(ts=time.time(), count=count))


def stats_to_wire(stats: dict[str, ProviderStats]) -> dict[str, dict[str, Any]]:
    """Statistics as the ``stats`` and ``snapshot`` messages carry them (keys: ``raceway.wire``)."""
    out: dict[str, dict[str, Any]] = {}
    for label, s in stats.items():
        body = attrs.asdict(s)
        body["win_rate"] = s.win_rate
        body["failure_count"] = s.failure_count
        out[label] = body
    return out


class Monitor:
    """The state behind one monitor socket: its attached clients and their queues."""

    def __init__(
        self, engine: Monitored, *, queue_limit: int = QUEUE_LIMIT, stats_interval: float = STATS_INTERVAL_S
    ) -> None:
        if queue_limit < 2:
            raise ValueError("queue_limit must leave room for hello and snapshot")
        self.engine = engine
        self.queue_limit = queue_limit
        self.stats_interval = stats_interval
        self.clients: list[_Client] = []
        self._attached = trio.Event()
        self._unsubscribe: Callable[[], None] | None = None

    # ------------------------------------------------------- the listener

    def broadcast(self, message: Any) -> None:
        """Queue ``message`` for every client (the engine's listener while any is attached).

        O(1) per client and never blocks.
        """
        line = None
        for client in self.clients:
            if len(client.queue) >= client.limit:
                client.dropped += 1  # the common case of a stuck client: as cheap as can be
                continue
            if line is None:
                line = _Line(message)
            client.offer(line)

    # ---------------------------------------------------------- sessions

    def _greeting(self) -> tuple[_Line, _Line]:
        from . import __version__

        now = time.time()
        hello = wire.Hello(
            ts=now,
            engine_version=__version__,
            pid=os.getpid(),
            virtual_models=tuple(
                wire.VirtualModelInfo(
                    id=m.id,
                    display_name=m.display_name,
                    description=m.description,
                    strategy=m.strategy,
                    providers=m.providers,
                )
                for m in self.engine.models()
            ),
        )
        snapshot = wire.Snapshot(
            ts=now, stats=stats_to_wire(self.engine.stats()), races=tuple(self.engine.recent_races())
        )
        return _Line(hello), _Line(snapshot)

    async def accept(self, listener: trio.SocketListener, nursery: trio.Nursery) -> None:
        async with listener:
            while True:
                stream = await listener.accept()
                nursery.start_soon(self.serve_client, stream)

    async def serve_client(self, stream: trio.abc.Stream) -> None:
        """One session: hello and snapshot, then whatever the listener queues, until the client goes."""
        client = _Client(self.queue_limit)
        # No checkpoint from here to the registration: the snapshot and the
        # first live event meet exactly, nothing missed, nothing twice.
        client.queue.extend(self._greeting())
        self.clients.append(client)
        if self._unsubscribe is None:
            self._unsubscribe = self.engine.subscribe(self.broadcast)
        self._attached.set()
        try:
            async with stream, trio.open_nursery() as nursery:
                nursery.start_soon(_discard_input, stream)
                await _write(stream, client)
                nursery.cancel_scope.cancel()
        finally:
            self.clients.remove(client)
            if not self.clients:
                self.close()

    def close(self) -> None:
        """No client is left: stop listening (and let the engine stop building events)."""
        self._attached = trio.Event()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    async def tick_stats(self) -> None:
        """A ``stats`` message every ``stats_interval`` seconds, while anyone is attached."""
        while True:
            await self._attached.wait()
            await trio.sleep(self.stats_interval)
            if self.clients:
                stats = StatsSnapshot(ts=time.time(), providers=stats_to_wire(self.engine.stats()))
                self.broadcast(stats)


async def _write(stream: trio.abc.Stream, client: _Client) -> None:
    queue = client.queue
    try:
        while True:
            if not queue:
                if client.dropped:  # caught up after an overflow, and no new event yet
                    queue.append(_dropped_line(client.dropped))
                    client.dropped = 0
                    continue
                client.ready = ready = trio.Event()
                await ready.wait()
                client.ready = None
                continue
            batch = []
            size = 0
            while queue and size < WRITE_BATCH_BYTES:
                line = queue.popleft().encoded()
                batch.append(line)
                size += len(line)
            await stream.send_all(b"".join(batch))
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return


async def _discard_input(stream: trio.abc.Stream) -> None:
    """Read and ignore what the client sends. End of input is not the end of the session
    (``socat`` half-closes when its stdin ends, and keeps reading)."""
    try:
        while await stream.receive_some(65536):
            pass
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass


# ---------------------------------------------------------------- the socket


def monitor_setting(setting: str) -> str | None:
    """``None`` when ``monitor.socket`` turns the monitor off, else the setting (``auto`` or a path)."""
    setting = setting.strip()
    return None if setting.lower() == "off" else setting


async def serve_monitor(
    engine: Monitored,
    path: str | os.PathLike[str] | None = None,
    *,
    queue_limit: int = QUEUE_LIMIT,
    stats_interval: float = STATS_INTERVAL_S,
    task_status: trio.TaskStatus[Path | None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``engine``'s events on the Unix socket ``path`` until cancelled.

    ``path`` is a socket file path, or ``None``/``"auto"`` for
    ``raceway-<pid>.sock`` in :func:`raceway.wire.default_monitor_dir`. Use
    with ``nursery.start``: it reports the path it bound (``None`` when
    ``auto`` found no usable directory: the engine then runs without a
    monitor, after a warning).

    Raises:
        ConfigError: an explicit ``path`` is served by a live engine, is not a
            socket, is too long, or cannot be created.
    """
    auto = path is None or os.fspath(path).strip() == "auto"
    try:
        if path is None or auto:
            sock, bound, identity = await _bind_auto()
        else:
            sock, bound, identity = await _bind_explicit(Path(os.fspath(path)))
    except ConfigError as exc:
        if not auto:
            raise
        log.warning("raceway: monitor socket disabled: %s", exc.message)
        task_status.started(None)
        return
    monitor = Monitor(engine, queue_limit=queue_limit, stats_interval=stats_interval)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(monitor.tick_stats)
            nursery.start_soon(monitor.accept, trio.SocketListener(sock), nursery)
            task_status.started(bound)
    finally:
        monitor.close()
        sock.close()
        _remove(bound, identity)
