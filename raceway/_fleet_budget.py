"""The fleet's hedge budget: one token bucket per virtual model for every engine.

Alone, an engine's :class:`~raceway._strategies.HedgeBudget` deposits
``max_extra_load`` per race into a bucket capped at ``reserve`` and spends
one token per hedge, so over ``n`` races at most ``reserve +
max_extra_load × n`` hedges start. A fleet keeps that bound over *all* its
races with one bucket in Redis, ``{prefix}:hedge:{virtual_model}``:

* a race deposits locally (a float add, no Redis), a hedge spends from the
  engine's *allotment* — tokens granted to it by the fleet bucket;
* each round a Lua script adds the engine's deposits since the last round
  (and any surplus it hands back), grants it up to what it asked for, and
  only then caps the bucket at ``reserve`` — so deposits batched over a
  second are not lost to the cap while some engine wants them;
* an engine asks for what it used or was refused in the last round, times
  :data:`WANT_HEADROOM` (at least one), so idle engines hold no tokens and
  busy ones get enough for about a round.

Grants never exceed what is in the bucket, so the bound holds for the fleet
whatever the timing; a grant lost in a timed-out call is simply not spent
(calls carry a per-engine number, so a retry never deposits twice). An
engine joining holds no tokens until its first grant (its own reserve is not
the fleet's); while Redis is away the budget works alone, as before.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from attrs import define, field

from ._strategy import HedgeBudget

if TYPE_CHECKING:
    from ._fleet_link import Link

#: An engine asks for this many times the hedges it wanted last round.
WANT_HEADROOM = 1.5
#: ...and never holds more than this many tokens.
MAX_ALLOTMENT = 1000
#: The bucket expires when no engine of the fleet raced that model for this long.
BUCKET_TTL_S = 24 * 3600

_GRANT = """
local P, me, vm, seq = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local cap, deposit, want, ttl = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local seen, field = P .. ':seen:' .. me, 'hedge:' .. vm
local prev = redis.call('HGET', seen, field)
if prev then
  local s, g = string.match(prev, '^(%d+)|(.*)$')
  if tonumber(s) >= seq then return g end
end
local key = P .. ':hedge:' .. vm
local b = tonumber(redis.call('GET', key) or cap)
local avail = b + deposit
local grant = math.floor(math.min(want, avail))
if grant < 0 then grant = 0 end
avail = avail - grant
if avail > cap then avail = cap end
redis.call('SET', key, tostring(avail), 'EX', ttl)
redis.call('HSET', seen, field, seq .. '|' .. grant)
redis.call('EXPIRE', seen, ttl)
return tostring(grant)
"""


@define
class FleetHedgeBudget(HedgeBudget):
    """A :class:`HedgeBudget` whose tokens come from the fleet's bucket while Redis is there.

    ``balance`` is this engine's allotment; :meth:`deposit` and
    :meth:`try_spend` stay synchronous and local (they run in races).
    """

    fleet: bool = False
    deposits: float = 0.0
    demand: int = 0
    _seq: int = 0
    _pending: tuple[int, float, int] | None = field(default=None)  # seq, deposit, want: unconfirmed

    def deposit(self) -> None:
        if self.fleet:
            self.deposits += self.max_extra_load
        else:
            super().deposit()

    def try_spend(self) -> bool:
        self.demand += 1
        return super().try_spend()

    async def sync(self, link: Link, virtual_model: str) -> None:
        """One round with the fleet's bucket: deposit, hand back surplus, take a grant."""
        if self.max_extra_load <= 0:
            return
        if self._pending is None:
            target = min(MAX_ALLOTMENT, max(1, math.ceil(self.demand * WANT_HEADROOM)))
            self.demand = 0
            if not self.fleet:
                # Joining the fleet: its bucket holds the one reserve; what this engine
                # held alone (its own reserve, local deposits) was never the fleet's.
                self.balance = 0.0
            held = math.floor(self.balance)
            surplus = max(0, held - target)
            self.balance -= surplus
            deposit = self.deposits + surplus
            self.deposits = 0.0
            self._seq += 1
            self._pending = (self._seq, deposit, max(0, target - (held - surplus)))
        seq, deposit, want = self._pending
        reply: Any = await link.script(
            "hedge", _GRANT, link.prefix, link.engine_id, virtual_model, seq,
            self.reserve, repr(deposit), want, BUCKET_TTL_S,
        )
        self._pending = None
        self.balance += int(reply)
        self.fleet = True

    def alone(self) -> None:
        """Redis is away: deposit locally again (what was deposited for the fleet is kept)."""
        if self.fleet:
            self.fleet = False
            self.balance = min(self.reserve, self.balance + self.deposits)
            self.deposits = 0.0
