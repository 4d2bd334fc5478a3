"""The link to an engine: finding its socket, reading its lines, reconnecting.

Engines put their sockets in :func:`raceway.wire.default_monitor_dir` as
``raceway-<pid>.sock``. A socket file can outlive its engine (a ``kill -9``
leaves it behind), so :func:`live_sockets` drops those whose pid is gone;
names without a pid are kept, and a failed connect sorts them out.

:class:`EngineLink` does the I/O (asyncio streams, run in the app's worker):
it reads in large chunks and splits lines itself with :class:`LineSplitter`,
which enforces :data:`raceway.wire.MAX_LINE_BYTES` while reading (a line
that never ends costs at most that much memory, then is skipped to its end).
What it reads goes to an inbox the app drains on its redraw tick; what it
learns about the connection it tells its host (the app). Where and when to
connect are plain functions, unit-testable without a socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from raceway import wire

#: First wait after a failed connect; doubles each time...
BACKOFF_FIRST_S = 0.25
#: ...up to this (an engine that restarts is back within seconds).
BACKOFF_MAX_S = 5.0
#: How often to look again for engines when none is running.
SEARCH_INTERVAL_S = 1.0
#: Give up on one connect attempt after this long (a local socket answers at once).
CONNECT_TIMEOUT_S = 3.0
#: Bytes asked of the socket per read: a few hundred lines at once.
READ_CHUNK = 1 << 16
#: Lines the inbox may hold before reading stops (the engine then drops
#: events for us and says so): about twenty seconds at 1,000 events/s.
INBOX_LIMIT = 20_000

# Link states, shown in the top bar.
SEARCHING, CONNECTING, CONNECTED, DISCONNECTED = "searching", "connecting", "connected", "disconnected"


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


class LineSplitter:
    """Bytes in, complete lines out; a line longer than ``limit`` is dropped whole.

    The limit holds while reading: at most ``limit`` bytes of an unfinished
    line are kept, and past that the rest of it is skipped up to its newline
    (counted in :attr:`too_long`), so the next line starts clean.
    """

    def __init__(self, limit: int = wire.MAX_LINE_BYTES) -> None:
        self.limit = limit
        self.too_long = 0
        self._parts: list[bytes] = []  # the unfinished line, in pieces (no quadratic joins)
        self._size = 0
        self._skipping = False

    def feed(self, data: bytes) -> list[bytes]:
        """The lines ``data`` completes (without their newlines; empty lines left out)."""
        if self._skipping:
            end = data.find(b"\n")
            if end < 0:
                return []
            self._skipping, data = False, data[end + 1 :]
        if b"\n" in data:
            *lines, rest = b"".join([*self._parts, data]).split(b"\n")
            self._parts, self._size = [rest], len(rest)
        else:
            lines = []
            self._parts.append(data)
            self._size += len(data)
        if self._size > self.limit:
            self.too_long += 1
            self._parts, self._size, self._skipping = [], 0, True
        out = [line for line in lines if 0 < len(line) <= self.limit]
        self.too_long += sum(1 for line in lines if len(line) > self.limit)
        return out


class LinkHost(Protocol):
    """What the link tells the app (and asks it)."""

    def link_state_changed(self, state: str) -> None: ...
    def link_up(self, path: Path) -> None: ...
    def link_failed(self, path: Path, exc: BaseException, retries: int) -> None: ...
    def link_lost(self, path: Path, asked: bool) -> None: ...
    def link_searching(self, directory: Path, first: bool, had_engine: bool) -> None: ...
    async def pick_engine(self, candidates: list[Path]) -> Path | None: ...


class EngineLink:
    """One dashboard's connection to an engine: found, read into :attr:`inbox`, re-made when lost."""

    def __init__(self, host: LinkHost, socket: Path | None = None, directory: Path | None = None) -> None:
        self.host = host
        self.socket = socket
        self.directory = directory
        self.target: Path | None = socket
        self.retries = 0  # failed connects since the last success
        self.next_retry_at: float | None = None  # monotonic
        self.sessions = 0  # successful connections so far
        self.lines_received = 0
        self.inbox: list[bytes] = []
        self.splitter = LineSplitter()
        self._room = asyncio.Event()
        self._wake = asyncio.Event()
        self._writer: asyncio.StreamWriter | None = None
        self._asked = False  # the user asked to reconnect: the hang-up is ours

    @property
    def where(self) -> Path:
        """The directory searched for engines."""
        return self.directory or wire.default_monitor_dir()

    def take(self, limit: int) -> list[bytes]:
        """Up to ``limit`` lines from the inbox, oldest first (reading resumes when there is room)."""
        lines = self.inbox[:limit]
        del self.inbox[:limit]
        if len(self.inbox) < INBOX_LIMIT:
            self._room.set()
        return lines

    def reconnect_now(self) -> None:
        """Drop the connection (if any) and connect again at once."""
        if self._writer is not None:
            self._asked = True
            self._writer.close()  # run() sees the end and reconnects at once
        self.retries = 0
        self._wake.set()

    async def run(self) -> None:
        """Find the engine, read its lines, reconnect when it goes away. Never returns."""
        while True:
            path = await self._find_target()
            self.host.link_state_changed(CONNECTING)
            self.next_retry_at = None
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(str(path)), CONNECT_TIMEOUT_S)
            except (TimeoutError, OSError) as exc:
                self.retries += 1
                self.host.link_failed(path, exc, self.retries)
                await self._sleep(backoff_s(self.retries))
                continue
            self._writer, self.retries, self._asked = writer, 0, False
            self.splitter = LineSplitter(self.splitter.limit)
            self.sessions += 1
            self.host.link_up(path)
            try:
                with contextlib.suppress(OSError):
                    await self._pump(reader)
            finally:  # also when the app quits (the worker is cancelled): hang up
                self._writer = None
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
            asked = self._asked
            self.host.link_lost(path, asked)
            if not asked:
                self.retries = 1
                await self._sleep(backoff_s(self.retries))

    async def _find_target(self) -> Path:
        if self.socket is not None:
            return self.socket
        first = True
        while True:
            candidates = discover(self.directory)
            chosen = choose(candidates, self.target)
            if chosen is None and len(candidates) > 1:
                chosen = await self.host.pick_engine(candidates)
            if chosen is not None:
                self.target = chosen
                return chosen
            if self.sessions:
                self.retries += 1
            self.host.link_searching(self.where, first, bool(self.sessions))
            first = False
            await self._sleep(SEARCH_INTERVAL_S)

    async def _sleep(self, seconds: float) -> None:
        """Wait ``seconds``, or less if the user asks to reconnect now."""
        self._wake.clear()
        self.next_retry_at = time.monotonic() + seconds
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self.next_retry_at = None

    async def _pump(self, reader: asyncio.StreamReader) -> None:
        while chunk := await reader.read(READ_CHUNK):
            lines = self.splitter.feed(chunk)
            self.inbox.extend(lines)
            self.lines_received += len(lines)
            while len(self.inbox) >= INBOX_LIMIT:
                # Stop reading: the engine's bounded queue takes the strain, drops and tells us.
                self._room.clear()
                await self._room.wait()
