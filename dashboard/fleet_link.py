"""Watching a fleet: the engines' shared event stream in Redis, read as the socket would be.

Engines configured with ``redis: {events: true}`` append every monitor event
and their ``stats`` lines to the stream ``{prefix}:events`` (one field
``event``: a :mod:`raceway.wire` line, tagged with ``host`` and ``pid``,
keys a reader ignores). :func:`follow` reads that stream with ``XREAD``:
first a ``hello`` of its own (a fleet has no single engine to greet us),
then the newest :data:`HISTORY` entries, then live ones, resuming where it
was after Redis comes back (back-off from :mod:`dashboard.link`). Each batch
goes to ``deliver`` as raw lines without their newline — what the socket
worker puts in the app's inbox; :func:`fleet_messages` yields them decoded.

:func:`relay` serves the same lines on a private Unix socket, so the app
attaches to a fleet exactly as to one engine (``raceway-dashboard --redis``
starts it in a thread, see :func:`start_relay`). Only :mod:`raceway.wire` is
imported from raceway; the Redis client is coredis (it runs on asyncio too).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from raceway import wire

from . import link

#: The default key prefix, as engines use it.
DEFAULT_PREFIX = "raceway"
#: Entries replayed when the dashboard attaches (the races it shows at once).
HISTORY = 2_000
#: Entries per ``XREAD`` at most.
BATCH = 1_000
#: How long one ``XREAD`` blocks waiting for news (milliseconds).
BLOCK_MS = 1_000
#: Every other Redis call gives up after this long.
CALL_TIMEOUT_S = 3.0

Deliver = Callable[[list[bytes]], Awaitable[None] | None]


def url_problem(url: str) -> str | None:
    """Why ``url`` is not a Redis URL (the message never repeats the URL), or ``None``."""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return "--redis must be a URL starting with redis://, rediss:// or unix://"
    return None


def hello_line() -> bytes:
    return wire.encode(wire.Hello(ts=time.time(), engine_version="fleet", pid=0)).rstrip(b"\n")


async def follow(
    url: str,
    deliver: Deliver,
    prefix: str = DEFAULT_PREFIX,
    *,
    history: int = HISTORY,
    on_state: Callable[[str, BaseException | None], None] | None = None,
) -> None:
    """Deliver the fleet's wire lines in batches until cancelled (``on_state``: ``up``/``down``)."""
    import coredis
    from coredis.retry import NoRetryPolicy

    key = f"{prefix}:events"
    last: str | None = None
    failures = 0
    await _call(deliver, [hello_line()])
    while True:
        try:
            client = coredis.Redis.from_url(
                url, decode_responses=False, retry_policy=NoRetryPolicy(),
                connect_timeout=CALL_TIMEOUT_S, verify_version=False,
            )
            async with client:
                if last is None:
                    recent = await asyncio.wait_for(client.xrevrange(key, count=history), CALL_TIMEOUT_S)
                    lines = [_line(e) for e in reversed(recent)]
                    last = _id(recent[0]) if recent else "0-0"
                    if on_state:
                        on_state("up", None)
                    failures = 0
                    await _call(deliver, [line for line in lines if line])
                elif on_state:
                    await asyncio.wait_for(client.ping(), CALL_TIMEOUT_S)
                    on_state("up", None)
                    failures = 0
                while True:
                    got = await asyncio.wait_for(
                        client.xread({key: last}, count=BATCH, block=BLOCK_MS), BLOCK_MS / 1000 + CALL_TIMEOUT_S
                    )
                    failures = 0
                    for entries in (got or {}).values():
                        if entries:
                            last = _id(entries[-1])
                            await _call(deliver, [line for line in map(_line, entries) if line])
        except (OSError, TimeoutError, coredis.exceptions.RedisError) as exc:
            failures += 1
            if on_state:
                on_state("down", exc)
            await asyncio.sleep(link.backoff_s(failures))


async def fleet_messages(url: str, prefix: str = DEFAULT_PREFIX, *, history: int = HISTORY) -> AsyncIterator[Any]:
    """The fleet's messages, decoded by :func:`raceway.wire.decode` (lines that are not messages skipped)."""
    queue: asyncio.Queue[list[bytes]] = asyncio.Queue(maxsize=64)
    task = asyncio.create_task(follow(url, queue.put, prefix, history=history))
    try:
        while True:
            for line in await queue.get():
                try:
                    yield wire.decode(line)
                except wire.WireError:
                    continue
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def relay(url: str, prefix: str, path: Path, ready: threading.Event | None = None) -> None:
    """Serve the fleet's lines on the Unix socket ``path`` (mode 0600), one reader per client."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def deliver(lines: list[bytes]) -> None:
            writer.write(b"".join(line + b"\n" for line in lines))
            await writer.drain()

        try:
            await follow(url, deliver, prefix)
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_unix_server(serve, str(path))  # the relay only writes
    os.chmod(path, 0o600)
    if ready is not None:
        ready.set()
    async with server:
        await server.serve_forever()


def start_relay(url: str, prefix: str = DEFAULT_PREFIX) -> Path:
    """Run :func:`relay` in a daemon thread on a fresh private socket; its path once it listens."""
    directory = Path(tempfile.mkdtemp(prefix="raceway-fleet-"))  # mode 0700
    path = directory / "fleet.sock"
    ready = threading.Event()
    thread = threading.Thread(
        target=lambda: asyncio.run(relay(url, prefix, path, ready)), name="fleet relay", daemon=True
    )
    thread.start()
    if not ready.wait(CALL_TIMEOUT_S):
        raise OSError(f"the fleet relay did not start listening on {path}")
    return path


async def _call(deliver: Deliver, lines: list[bytes]) -> None:
    if lines:
        result = deliver(lines)
        if inspect.isawaitable(result):
            await result


def _id(entry: Any) -> str:
    ident = entry.identifier
    return ident.decode() if isinstance(ident, bytes) else str(ident)


def _line(entry: Any) -> bytes:
    fields = entry.field_values
    value = fields.get(b"event", fields.get("event"))
    if isinstance(value, str):
        value = value.encode()
    return value if isinstance(value, bytes) else b""
