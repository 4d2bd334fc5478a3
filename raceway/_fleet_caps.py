"""Fleet-wide rate caps: ``rpm`` and ``max_in_flight`` of a provider held across every engine.

A race asks :meth:`FleetCaps.try_start` synchronously and gets an answer from
local state: the *leases* this engine holds. The shared loop renews them
each round with one Lua script per capped provider, atomically:

* ``rpm``: ``{prefix}:rpm:{provider}:{minute}`` counts the requests the
  fleet took in that minute; an engine takes up to what it asked for (about
  1.5× what it wanted last round) while the count stays at most ``rpm``. A
  request started is one taken from the lease; what an engine leaves unused
  in a minute is not handed to others (a fleet may stay a little below its cap,
  never above it).
* ``max_in_flight``: ``{prefix}:inflight:{provider}`` holds each engine's
  lease of slots; the sum of leases never exceeds the cap, an engine never
  has more attempts running than its lease, so the fleet never has more than
  the cap running. A lease is renewed every round and lapses
  :data:`LEASE_TTL_S` after an engine stops renewing it (a crashed engine's
  slots come back).

Alone (before the first round, or while Redis is away) each engine applies
the full caps to itself. The keys expire when no engine renews them.

The interface for the engine's rate caps: ``try_start(provider, rpm=...,
max_in_flight=...)`` before an attempt starts (``False``: it sits the race
out, ``error_kind: rate_cap``), ``finished(provider)`` when an admitted
attempt ends, and the loop's ``sync``.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

from attrs import define, field

if TYPE_CHECKING:
    from ._fleet_link import Link

#: An engine asks for this many times what it wanted last round.
WANT_HEADROOM = 1.5
#: A lease of in-flight slots lapses this long after its engine last renewed it.
LEASE_TTL_S = 10.0

_RPM = """
local key, rpm, want = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])
local used = tonumber(redis.call('GET', key) or '0')
local grant = math.max(0, math.min(want, rpm - used))
if grant > 0 then redis.call('INCRBY', key, grant) end
redis.call('EXPIRE', key, 120)
return grant
"""

_INFLIGHT = """
local leases, seen = KEYS[1], KEYS[2]
local me, cap, wanted, in_use = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local now, ttl = tonumber(ARGV[5]), tonumber(ARGV[6])
for _, gone in ipairs(redis.call('ZRANGEBYSCORE', seen, '-inf', now)) do
  redis.call('HDEL', leases, gone)
  redis.call('ZREM', seen, gone)
end
local others = 0
local flat = redis.call('HGETALL', leases)
for i = 1, #flat, 2 do
  if flat[i] ~= me then others = others + tonumber(flat[i + 1]) end
end
local grant = math.max(in_use, math.min(wanted, cap - others))
redis.call('HSET', leases, me, grant)
redis.call('ZADD', seen, now + ttl * 1000, me)
redis.call('PEXPIRE', leases, ttl * 1000)
redis.call('PEXPIRE', seen, ttl * 1000)
return grant
"""


@define
class _Caps:
    rpm: int | None = None
    max_in_flight: int | None = None
    in_flight: int = 0
    lease: int = 0  # in-flight slots this engine may use (fleet mode)
    minute: int = -1
    tokens: int = 0  # rpm tokens held for ``minute``
    local_starts: list[float] = field(factory=list)  # alone: start times in the last minute
    wanted: int = 0  # starts asked for since the last round (admitted or not)


class FleetCaps:
    """This engine's side of the fleet's rate caps (module docstring)."""

    def __init__(self, clock: Any = time.time) -> None:
        self.clock = clock
        self.fleet = False
        self._caps: dict[str, _Caps] = {}

    def try_start(self, provider: str, *, rpm: int | None = None, max_in_flight: int | None = None) -> bool:
        """May an attempt of ``provider`` start now? (Synchronous; on the race path.)"""
        if rpm is None and max_in_flight is None:
            return True
        c = self._caps.get(provider)
        if c is None:
            c = self._caps[provider] = _Caps(rpm=rpm, max_in_flight=max_in_flight)
        c.rpm, c.max_in_flight = rpm, max_in_flight
        c.wanted += 1
        now = self.clock()
        if max_in_flight is not None:
            limit = c.lease if self.fleet else max_in_flight
            if c.in_flight >= limit:
                return False
        if rpm is not None:
            if self.fleet:
                if c.minute != int(now // 60) or c.tokens <= 0:
                    return False
                c.tokens -= 1
            else:
                starts = c.local_starts
                while starts and starts[0] <= now - 60:
                    starts.pop(0)
                if len(starts) >= rpm:
                    return False
                starts.append(now)
        c.in_flight += 1
        return True

    def finished(self, provider: str) -> None:
        """An attempt that :meth:`try_start` admitted ended."""
        c = self._caps.get(provider)
        if c is not None and c.in_flight > 0:
            c.in_flight -= 1

    async def sync(self, link: Link) -> None:
        now = self.clock()
        minute = int(now // 60)
        for provider, c in list(self._caps.items()):
            want = max(1, math.ceil(c.wanted * WANT_HEADROOM))
            c.wanted = 0
            if c.max_in_flight is not None:
                reply = await link.script(
                    "inflight", _INFLIGHT, link.engine_id, c.max_in_flight, c.in_flight + want, c.in_flight,
                    int(now * 1000), LEASE_TTL_S,
                    keys=[f"{link.prefix}:inflight:{provider}", f"{link.prefix}:inflight-seen:{provider}"],
                )
                c.lease = int(reply)
            if c.rpm is not None:
                if c.minute != minute:
                    c.minute, c.tokens = minute, 0
                reply = await link.script(
                    "rpm", _RPM, c.rpm, max(0, want - c.tokens), keys=[f"{link.prefix}:rpm:{provider}:{minute}"]
                )
                c.tokens += int(reply)
        self.fleet = True

    def alone(self) -> None:
        """Redis is away: every engine applies the full caps to itself."""
        self.fleet = False
