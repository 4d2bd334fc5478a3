"""Fleet events: every engine's monitor events and ``stats`` lines on one capped Redis stream.

With ``redis: {events: true}`` the engine subscribes a listener that only
appends each event to a bounded buffer (a race pays one ``deque.append``).
Each round of the shared loop encodes what is buffered as wire-format lines
(:mod:`raceway.wire`), adds the engine's tags — ``host`` and ``pid``, keys a
reader that does not know them ignores — plus one ``stats`` line a round,
and appends them with one Lua call to ``{prefix}:events``: ``XADD ...
MAXLEN ~ events_maxlen``, one field ``event`` per entry. While Redis is away
the buffer keeps the newest :data:`BUFFER_LIMIT` events and counts the rest
as dropped; readers see a ``dropped`` line where the gap is.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from . import wire
from ._events import StatsSnapshot

if TYPE_CHECKING:
    from ._fleet_link import Link
    from ._tracker import ProviderStats


class Publisher(Protocol):
    """What the event stream reads of an engine: its events, and its statistics now and then."""

    def subscribe(self, listener: Callable[[Any], None]) -> Callable[[], None]: ...

    def stats(self) -> dict[str, ProviderStats]: ...

#: Events an engine buffers for the stream at most (about ten seconds at 1,000 events/s).
BUFFER_LIMIT = 10_000
#: Lines per Lua call at most (a call stays a few milliseconds of Redis's time).
LINES_PER_CALL = 2_000
#: Seconds between an engine's ``stats`` lines on the stream.
STATS_INTERVAL_S = 1.0

_APPEND = """
local key, maxlen = KEYS[1], ARGV[1]
for i = 2, #ARGV do
  redis.call('XADD', key, 'MAXLEN', '~', maxlen, '*', 'event', ARGV[i])
end
redis.call('EXPIRE', key, 86400)
return #ARGV - 1
"""


def tagged_line(message: Any, host: str, pid: int) -> str:
    """``message`` as one wire-format line (no newline) tagged with its engine."""
    data = wire.to_dict(message)
    data["host"], data["pid"] = host, pid
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


class SharedEvents:
    """The engine's events, buffered off the race path and appended to ``{prefix}:events``."""

    def __init__(self, engine: Publisher, maxlen: int) -> None:
        self.engine = engine
        self.maxlen = maxlen
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self._buffer: deque[Any] = deque()
        self._lines: list[str] = []  # encoded, not yet confirmed
        self._dropped = 0
        self._next_stats = 0.0
        self.appended = 0
        self.unsubscribe = engine.subscribe(self.listen)

    def listen(self, event: Any) -> None:
        """The engine's listener (inside races): append, never wait."""
        buffer = self._buffer
        if len(buffer) >= BUFFER_LIMIT:
            buffer.popleft()
            self._dropped += 1
        buffer.append(event)

    async def sync(self, link: Link, *, final: bool = False) -> None:
        now = time.time()
        if now >= self._next_stats or final:  # the last round says where the engine ended
            self._next_stats = now + STATS_INTERVAL_S
            from ._monitor import stats_to_wire

            self.listen(StatsSnapshot(ts=now, providers=stats_to_wire(self.engine.stats())))
        lines = self._lines
        if self._dropped:
            lines.append(tagged_line(wire.Dropped(ts=now, count=self._dropped), self.host, self.pid))
            self._dropped = 0
        buffer = self._buffer
        while buffer:
            lines.append(tagged_line(buffer.popleft(), self.host, self.pid))
        if len(lines) > BUFFER_LIMIT:  # Redis was away for long: keep the newest
            del lines[: len(lines) - BUFFER_LIMIT]
        key = f"{link.prefix}:events"
        while lines:
            batch = lines[:LINES_PER_CALL]
            await link.script("events", _APPEND, self.maxlen, *batch, keys=[key])
            del lines[: len(batch)]
            self.appended += len(batch)

    def close(self) -> None:
        self.unsubscribe()
