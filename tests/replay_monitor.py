"""A recorded session of the real engine, replayed on a Unix socket: the dashboard's test double.

The dashboard knows nothing of raceway but :mod:`raceway.wire`, so what it
needs from an engine is the lines a monitor client reads. Those come from
the real engine: :func:`record` runs ``raceway demo --headless`` on the
embedded ``sim`` providers with its monitor on a private socket, attaches as
a client once some races are done (so the ``snapshot`` carries history), and
keeps every line it reads until the engine stops. The result is committed as
``tests/replay_session.ndjson`` and is what the dashboard's tests, snapshots
and benchmark show; nothing here invents a race or a figure::

    python tests/replay_monitor.py record tests/replay_session.ndjson   # re-record
    python tests/replay_monitor.py serve --events-per-s 1000            # a busy engine
    raceway-dashboard                                                    # finds it

Two servers, both speaking only the recorded bytes:

- :class:`ReplayMonitor` sends every client the same lines (all at once, or
  ``rate`` lines a second), then holds the connection open as an engine does;
  :meth:`~ReplayMonitor.push` sends more. Tests run it on a thread of its own,
  so it keeps serving whatever the app's asyncio loop is doing.
- :class:`LiveReplay` loops the session's live events in real time, re-timed
  to now, with as many overlapping copies (fresh race ids each) as a target
  event rate needs, and a bounded queue per client that overflows into
  ``{"type": "dropped"}`` as the engine's monitor does (``bench_dashboard``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import heapq
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from raceway import wire

RECORDING = Path(__file__).with_name("replay_session.ndjson")
#: The engine's config when recording: the embedded default, seeded, swift flakier.
CONFIG = Path(__file__).with_name("replay_session.yaml")
#: Keys holding an epoch time, shifted when a session is re-timed.
TIME_KEYS = frozenset({"ts", "until", "cooldown_until", "last_seen"})
#: What a client may fall behind before it is sent ``dropped`` (the monitor's QUEUE_LIMIT order).
QUEUE_LIMIT = 10_000


def recorded_lines(path: Path = RECORDING) -> list[bytes]:
    """The recorded session, one wire line each (``\\n`` kept): ``hello``, ``snapshot``, live events."""
    return [line + b"\n" for line in path.read_bytes().splitlines() if line.strip()]


def recorded_messages(path: Path = RECORDING) -> list[Any]:
    """The recorded session decoded."""
    return [wire.decode(line) for line in recorded_lines(path)]


# ------------------------------------------------------------------ servers


class ReplayMonitor:
    """Serves ``lines`` to each client on a Unix socket at ``path``, then keeps the line open.

    Args:
        path: where to listen.
        lines: what to send (default: the recorded session).
        rate: lines per second after the first two (hello, snapshot); ``None``: all at once.
    """

    def __init__(self, path: Path | str, lines: Sequence[bytes] | None = None, *, rate: float | None = None) -> None:
        self.path = Path(path)
        self.lines = list(recorded_lines() if lines is None else lines)
        self.rate = rate
        self.clients_served = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def connected(self) -> int:
        """Clients connected now."""
        return len(self._writers)

    async def open(self) -> None:
        """Start listening (in the running loop)."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._server = await asyncio.start_unix_server(self._serve_client, path=str(self.path))
        os.chmod(self.path, 0o600)

    async def close(self, *, unlink: bool = True) -> None:
        """Stop listening and hang up on every client, as a dying engine would."""
        if self._server is not None:
            self._server.close()
        for w in list(self._writers):
            w.close()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            self._server = None
        if unlink:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    async def _serve_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        self.clients_served += 1
        # As the engine does: what the client sends is ignored; its hang-up ends the session.
        session = asyncio.ensure_future(self.session(writer))
        hangup = asyncio.ensure_future(_read_until_eof(reader))
        try:
            await asyncio.wait({session, hangup}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            pass
        finally:
            for t in (session, hangup):
                t.cancel()
            await asyncio.gather(session, hangup, return_exceptions=True)
            self._writers.discard(writer)
            self._tasks.discard(task)
            writer.close()

    async def session(self, writer: asyncio.StreamWriter) -> None:
        if self.rate is None:
            writer.write(b"".join(self.lines))
            await writer.drain()
        else:
            writer.write(b"".join(self.lines[:2]))
            started, sent = time.monotonic(), 2
            while sent < len(self.lines):
                due = 2 + int((time.monotonic() - started) * self.rate)
                if due > sent:
                    writer.write(b"".join(self.lines[sent:due]))
                    sent = due
                    await writer.drain()
                await asyncio.sleep(0.005)
        await asyncio.Event().wait()  # an engine keeps its clients until it stops

    def push(self, lines: Sequence[bytes]) -> None:
        """Send more lines to every client connected now (from any thread)."""
        data = b"".join(lines)

        async def send() -> None:
            for w in list(self._writers):
                w.write(data)
                with contextlib.suppress(ConnectionError):
                    await w.drain()

        if self._loop is not None:
            asyncio.run_coroutine_threadsafe(send(), self._loop).result(10)

    def start(self) -> None:
        """Serve from a thread of its own; returns once listening."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = self._loop = asyncio.new_event_loop()
            try:
                loop.run_until_complete(self.open())
            except BaseException as exc:  # handed to start()
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name=f"replay {self.path.name}", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]

    def stop(self, *, unlink: bool = True) -> None:
        """Stop the thread's server, hanging up on its clients."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(self.close(unlink=unlink), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        self._loop = self._thread = None

    def __enter__(self) -> ReplayMonitor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def _read_until_eof(reader: asyncio.StreamReader) -> None:
    with contextlib.suppress(ConnectionError):
        while await reader.read(4096):
            pass


class LiveReplay(ReplayMonitor):
    """The recorded session's live events, looped in real time at about ``events_per_s``.

    The session's events keep their own timing; ``copies`` overlapping copies
    of it (each with fresh race ids, offset evenly over the session's length)
    make up the rate. Each client gets ``hello`` and the recorded ``snapshot``
    re-timed to now, then the live feed through a queue of at most
    ``queue_limit`` lines.
    """

    def __init__(self, path: Path | str, *, events_per_s: float = 50.0, queue_limit: int = QUEUE_LIMIT) -> None:
        super().__init__(path)
        dicts = [json.loads(line) for line in self.lines]
        self.hello, self.snapshot, self.live = dicts[0], dicts[1], dicts[2:]
        self.t_first = self.live[0]["ts"]
        self.length_s = max(1.0, self.live[-1]["ts"] - self.t_first)
        self.copies = max(1, round(events_per_s / (len(self.live) / self.length_s)))
        self.queue_limit = queue_limit
        self.sent = 0
        self._queues: dict[asyncio.Queue[bytes], int] = {}  # queue -> events dropped for it
        self._producer: asyncio.Task[None] | None = None
        races = sorted({m["race_id"] for m in self.live if "race_id" in m})
        self._race_number = {race_id: n for n, race_id in enumerate(races)}

    async def open(self) -> None:
        await super().open()
        self._producer = asyncio.create_task(self._produce())

    async def close(self, *, unlink: bool = True) -> None:
        if self._producer is not None:
            self._producer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._producer
        await super().close(unlink=unlink)

    def events(self, t0: float) -> Iterator[tuple[float, dict[str, Any]]]:
        """The endless feed from ``t0`` on: (when, message) in time order, each copy looping on its own."""

        def copy(j: int) -> Iterator[tuple[float, int, dict[str, Any]]]:
            # Loop -1 is under way at t0 (only what comes after t0 is sent), so every
            # copy is mid-session from the start: the full rate at once, no ramp.
            loop = -1
            while True:
                shift = t0 - self.t_first + loop * self.length_s + j * self.length_s / self.copies
                first = ((loop + 1) * self.copies + j) * len(self._race_number)
                for m in self.live:
                    if j and m["type"] == "stats":
                        continue  # one engine's statistics, not one per copy
                    out = retimed(m, shift)
                    if "race_id" in out and out["race_id"] in self._race_number:
                        out["race_id"] = f"replay-{first + self._race_number[out['race_id']]}"
                    yield out["ts"], j, out
                loop += 1

        merged = heapq.merge(*(copy(j) for j in range(self.copies)), key=lambda item: item[:2])
        return ((ts, m) for ts, _, m in merged if ts >= t0)

    async def _produce(self) -> None:
        feed = self.events(time.time())
        when, pending = next(feed)
        while True:
            now = time.time()
            batch = []
            while when <= now:
                batch.append(json.dumps(pending, separators=(",", ":")).encode() + b"\n")
                when, pending = next(feed)
            self.sent += len(batch)
            for q in list(self._queues):
                for line in batch:
                    if q.qsize() >= self.queue_limit:
                        self._queues[q] += 1
                        continue
                    if self._queues[q]:
                        q.put_nowait(wire.encode(wire.Dropped(ts=now, count=self._queues[q])))
                        self._queues[q] = 0
                    q.put_nowait(line)
            await asyncio.sleep(min(0.01, max(0.0, when - time.time())))

    async def session(self, writer: asyncio.StreamWriter) -> None:
        q: asyncio.Queue[bytes] = asyncio.Queue()
        shift = time.time() - self.snapshot["ts"]
        for m in (self.hello, self.snapshot):
            writer.write(json.dumps(retimed({**m, "pid": os.getpid()} if m is self.hello else m, shift)).encode() + b"\n")
        self._queues[q] = 0
        try:
            while True:
                chunk = [await q.get()]
                while not q.empty() and len(chunk) < 512:
                    chunk.append(q.get_nowait())
                writer.write(b"".join(chunk))
                await writer.drain()
        finally:
            self._queues.pop(q, None)


def retimed(value: Any, shift: float) -> Any:
    """``value`` (a decoded wire message) with every epoch time moved by ``shift`` seconds."""
    if isinstance(value, dict):
        return {
            k: v + shift if k in TIME_KEYS and isinstance(v, int | float) else retimed(v, shift)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [retimed(v, shift) for v in value]
    return value


# ------------------------------------------------------------------ recording


def record(out: Path, *, races: int = 40, join_after: int = 12, config: str | None = str(CONFIG)) -> int:
    """Record a session of ``raceway demo --headless --races N`` on its embedded sim providers.

    Attaches once ``join_after`` races are done and keeps what it reads until
    the engine stops; returns the number of lines written.
    """
    import socket as stdlib_socket

    workdir = Path(tempfile.mkdtemp(prefix="rwrec-"))
    path = workdir / "raceway-rec.sock"
    command = [sys.executable, "-m", "raceway", "demo", "--headless", "--races", str(races)]
    command += ["--monitor-socket", str(path), *(["-c", config] if config else [])]
    env = {**os.environ, "XDG_STATE_HOME": str(workdir)}  # fresh statistics, nothing of the user's
    engine = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        assert engine.stdout is not None
        done = 0
        while done < join_after:  # the demo prints a line per race
            if engine.stdout.readline().startswith("#"):
                done += 1
        client = stdlib_socket.socket(stdlib_socket.AF_UNIX)
        client.connect(str(path))
        data = b""
        while chunk := client.recv(1 << 16):
            data += chunk
        client.close()
        engine.wait(30)
    finally:
        engine.kill()
        with contextlib.suppress(OSError):
            path.unlink()
        shutil.rmtree(workdir, ignore_errors=True)
    lines = [line for line in data.split(b"\n") if line]
    for line in lines:
        wire.decode(line)  # all of it valid on the wire
    out.write_bytes(b"\n".join(lines) + b"\n")
    return len(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python tests/replay_monitor.py", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record", help="record a session of the real engine")
    rec.add_argument("out", type=Path)
    rec.add_argument("--races", type=int, default=40)
    rec.add_argument("--join-after", type=int, default=12, help="races done before attaching")
    rec.add_argument("-c", "--config", default=str(CONFIG))
    serve = sub.add_parser("serve", help="loop the recording live on a socket")
    serve.add_argument("--socket", help="default: raceway-<pid>.sock in the per-user monitor directory")
    serve.add_argument("--events-per-s", type=float, default=50.0)
    serve.add_argument("--seconds", type=float, default=0.0, help="stop after this long (default: never)")
    args = p.parse_args(argv)
    if args.command == "record":
        print(f"wrote {record(args.out, races=args.races, join_after=args.join_after, config=args.config)} lines to {args.out}")
        return 0
    path = Path(args.socket) if args.socket else wire.default_monitor_dir() / f"raceway-{os.getpid()}.sock"
    server = LiveReplay(path, events_per_s=args.events_per_s)

    async def run() -> None:
        await server.open()
        print(f"replaying {RECORDING.name} ×{server.copies} on {path} (ctrl-c stops)", flush=True)
        try:
            await asyncio.sleep(args.seconds or float("inf"))
        finally:
            await server.close()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
