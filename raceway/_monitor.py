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

``auto`` (and ``None``) means ``raceway-<pid>.sock`` in
:func:`raceway.wire.default_monitor_dir`, created 0700 (``raceway-<pid>-2.sock``
and so on if a live engine of this process already serves there; the
per-user temporary directory if ``$XDG_RUNTIME_DIR`` is unusable or too long
for a socket path). Sockets left there by crashed engines are removed. A path
means exactly that file; its directory is created 0700 when missing. A file
left by a crashed engine (``connect`` is refused) is replaced; a live engine
at an explicit path is a :class:`~raceway.ConfigError`. The file is removed
when the monitor stops, unless another engine replaced it meanwhile.
"""

from __future__ import annotations

import errno
import logging
import os
import socket as stdlib_socket
import stat
import tempfile
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
#: Pending connections the kernel holds for us.
BACKLOG = 64
#: ``sun_path`` holds 108 bytes on Linux (104 on macOS), the terminating NUL included.
MAX_SOCKET_PATH = 103


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


class _InUse(Exception):
    pass


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


async def _bind_auto() -> tuple[trio.socket.SocketType, Path, tuple[int, int]]:
    preferred = wire.default_monitor_dir()
    fallback = Path(tempfile.gettempdir()) / f"raceway-{os.getuid()}"
    for directory in dict.fromkeys((preferred, fallback)):
        # The fallback serves when $XDG_RUNTIME_DIR is unusable or too deep for sun_path.
        try:
            _private_dir(directory)
            await _sweep_stale(directory)
            return await _bind_first_free(directory)
        except ConfigError as exc:
            problem = exc
    raise problem


async def _bind_first_free(directory: Path) -> tuple[trio.socket.SocketType, Path, tuple[int, int]]:
    pid = os.getpid()
    for n in range(1, 100):
        name = f"{wire.SOCKET_PREFIX}{pid}{'' if n == 1 else f'-{n}'}{wire.SOCKET_SUFFIX}"
        try:
            return await _bind(directory / name)
        except _InUse:
            continue
    raise ConfigError("$.monitor.socket", f"no free socket name in {directory}")


async def _bind_explicit(path: Path) -> tuple[trio.socket.SocketType, Path, tuple[int, int]]:
    if "\x00" in str(path):  # the kernel would bind the name cut at the NUL: a stray file
        raise ConfigError("$.monitor.socket", "contains a NUL byte (\\x00), which no socket path can hold")
    path = path.expanduser()
    if not path.parent.exists():
        try:
            path.parent.mkdir(parents=True, mode=0o700)
        except OSError as exc:
            raise ConfigError("$.monitor.socket", f"cannot create {path.parent}: {exc.strerror or exc}") from None
    try:
        return await _bind(path)
    except _InUse:
        raise ConfigError(
            "$.monitor.socket", f"{path} is in use by a running raceway engine; choose another path or 'auto'"
        ) from None


def _private_dir(directory: Path) -> None:
    """Make sure ``directory`` exists, is ours and only we can enter it (0700)."""
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        st = directory.lstat()
    except OSError as exc:
        raise ConfigError("$.monitor.socket", f"cannot create {directory}: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        raise ConfigError("$.monitor.socket", f"{directory} is not a directory of this user's")
    if st.st_mode & 0o077:
        os.chmod(directory, 0o700)


async def _bind(path: Path) -> tuple[trio.socket.SocketType, Path, tuple[int, int]]:
    """Bind and listen at ``path``, replacing a stale socket file; ``_InUse`` if a live one answers."""
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        raise ConfigError("$.monitor.socket", f"{path} is too long for a Unix socket (at most {MAX_SOCKET_PATH} bytes)")
    for _ in range(3):  # another engine may be replacing the same stale file right now
        sock = trio.socket.socket(stdlib_socket.AF_UNIX, stdlib_socket.SOCK_STREAM)
        try:
            await sock.bind(str(path))
        except OSError as exc:
            sock.close()
            if exc.errno != errno.EADDRINUSE:
                raise ConfigError("$.monitor.socket", f"cannot bind {path}: {exc.strerror or exc}") from None
            await _replace_if_stale(path)
            continue
        try:
            os.chmod(path, 0o600)
            st = os.stat(path)
            sock.listen(BACKLOG)
        except BaseException:
            sock.close()
            raise
        return sock, path, (st.st_dev, st.st_ino)
    raise _InUse


async def _sweep_stale(directory: Path) -> None:
    """Remove sockets of crashed engines from the default directory, so discovery finds live ones."""
    for path in wire.find_sockets(directory):
        try:
            await _replace_if_stale(path)
        except (_InUse, ConfigError):
            pass


async def _replace_if_stale(path: Path) -> None:
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise ConfigError("$.monitor.socket", f"{path} exists and is not a socket")
    probe = trio.socket.socket(stdlib_socket.AF_UNIX, stdlib_socket.SOCK_STREAM)
    try:
        with trio.move_on_after(2.0):
            await probe.connect(str(path))
            raise _InUse  # a live engine answered
        raise _InUse  # it accepts connections but is slow to: treat as live
    except OSError as exc:
        if exc.errno == errno.ECONNREFUSED:  # left by a crashed process
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            return
        if exc.errno == errno.ENOENT:
            return
        raise _InUse from None  # cannot tell (EACCES, EAGAIN): never steal it
    finally:
        probe.close()


def _remove(path: Path, identity: tuple[int, int]) -> None:
    try:
        st = os.stat(path)
        if (st.st_dev, st.st_ino) == identity:
            path.unlink()
    except OSError:
        pass
