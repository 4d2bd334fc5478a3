"""Fleet-wide cooldowns: a provider benched in one engine sits out races in all of them.

When an engine's breaker opens (a 429's retry-after, or failures), the
shared loop is woken at once and a Lua script records the until-time in
``{prefix}:cool:{label}`` — only if it is later than the one there, the key
expiring exactly at that time (``PXAT``) — and announces it on the stream
``{prefix}:cooling``. Every engine keeps a blocking ``XREAD`` on that stream
(a separate connection), so the others bench the provider within a round
trip, and reads all its labels' keys each round (an engine that starts
later, or missed the stream while Redis was away, still learns them).

Races never wait for any of this: a cooldown from the fleet goes into the
engine's own breaker (:func:`impose`), which ``admit`` reads as usual. Once
the until-time passes, each engine takes the provider on trial by itself.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import trio

from ._events import ProviderCooldown
from ._tracker import Tracker

if TYPE_CHECKING:
    from ._fleet_link import Link

log = logging.getLogger("raceway")

#: Entries the announcement stream keeps (it is read live; the keys are the record).
STREAM_MAXLEN = 1000
#: How long a watcher's ``XREAD`` blocks before it asks again (milliseconds).
WATCH_BLOCK_MS = 500

_PUSH = """
local P, maxlen, now_ms = ARGV[1], ARGV[2], tonumber(ARGV[3])
local stream = P .. ':cooling'
for i = 4, #ARGV, 3 do
  local k = P .. ':cool:' .. ARGV[i]
  local until_ms = tonumber(ARGV[i + 1])
  local later = until_ms > now_ms
  local cur = redis.call('GET', k)
  if later and cur then
    local ok, c = pcall(cjson.decode, cur)
    if ok and type(c) == 'table' and tonumber(c.u) and tonumber(c.u) * 1000 >= until_ms then later = false end
  end
  if later then
    redis.call('SET', k, ARGV[i + 2], 'PXAT', until_ms)
    redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'l', ARGV[i], 'v', ARGV[i + 2])
    redis.call('EXPIRE', stream, 86400)
  end
end
return 1
"""


def impose(tracker: Tracker, label: str, until: float, reason: str) -> bool:
    """Bench ``label`` in ``tracker``'s breaker until ``until`` (epoch s); ``False`` if it already was.

    (``Cooldowns.impose``: ``admit`` then reads it as any cooldown.)
    """
    return tracker.cooldowns.impose(label, until, reason)


class SharedCooldowns:
    """This engine's cooldowns out to the fleet, and the fleet's into this engine."""

    def __init__(self, tracker: Tracker, labels: Iterable[str], emit: Callable[[Any], None], engine_id: str) -> None:
        self.tracker = tracker
        self._labels = set(labels)
        self._emit = emit
        self._me = engine_id
        self._pending: dict[str, ProviderCooldown] = {}
        self.wake: Callable[[], None] = lambda: None
        self.imposed = 0  # cooldowns taken from the fleet (for tests and the benchmark)
        self.last_imposed_at: float | None = None  # time.monotonic() of the latest
        self.last_imposed_wall = 0.0  # time.time() of the latest (comparable across processes)
        self._changed = trio.Event()

    def noted(self, news: Iterable[Any]) -> None:
        """The tracker opened breakers (on the race path): push them at once."""
        pushed = False
        for item in news:
            if isinstance(item, ProviderCooldown):
                label = f"{item.provider}/{item.model}"
                old = self._pending.get(label)
                if old is None or item.until > old.until:
                    self._pending[label] = item
                self._labels.add(label)
                pushed = True
        if pushed:
            self.wake()

    async def changed(self) -> None:
        """Wait until a cooldown from the fleet is imposed here (tests, benchmarks)."""
        await self._changed.wait()

    @property
    def has_news(self) -> bool:
        return bool(self._pending)

    async def sync(self, link: Link) -> None:
        pending, self._pending = self._pending, {}
        if pending:
            args: list[Any] = [link.prefix, STREAM_MAXLEN, int(time.time() * 1000)]
            for label, c in pending.items():
                value = {"u": c.until, "r": c.reason, "p": c.provider, "m": c.model, "e": self._me}
                args += [label, int(c.until * 1000), json.dumps(value, separators=(",", ":"))]
            try:
                await link.script("cool", _PUSH, *args)
            except BaseException:
                for label, c in pending.items():  # the next round sends them again
                    self._pending.setdefault(label, c)
                raise
        labels = sorted(self._labels | set(self.tracker.labels()))
        if labels:
            values = await link.call(link.client.mget, [f"{link.prefix}:cool:{label}" for label in labels])
            for label, value in zip(labels, values, strict=True):
                if value is not None:
                    self.apply(label, value)

    async def watch(self, link: Link, client: Any) -> None:
        """Follow ``{prefix}:cooling`` until cancelled (on its own connection); errors end the watch."""
        stream = f"{link.prefix}:cooling"
        last = "$"
        while True:
            got = await link.call(
                client.xread, {stream: last}, count=100, block=WATCH_BLOCK_MS, extra=WATCH_BLOCK_MS / 1000
            )
            for entries in (got or {}).values():
                for entry in entries:
                    last = entry.identifier
                    fields = entry.field_values
                    if "l" in fields and "v" in fields:
                        self.apply(str(fields["l"]), fields["v"])

    def apply(self, label: str, value: Any) -> None:
        """One fleet cooldown record (JSON text) into this engine's breaker."""
        try:
            c = json.loads(value)
            until, reason = float(c["u"]), str(c.get("r") or "rate_limited")
            provider, model, who = str(c.get("p", "")), str(c.get("m", "")), str(c.get("e", ""))
        except (ValueError, KeyError, TypeError):
            return
        now = time.time()
        if who == self._me or until <= now:
            return
        if impose(self.tracker, label, until, reason):
            self.imposed += 1
            self.last_imposed_at = time.monotonic()
            self.last_imposed_wall = time.time()
            self._changed.set()
            self._changed = trio.Event()
            self._emit(
                ProviderCooldown(
                    ts=now, race_id="", provider=provider, model=model, until=until,
                    seconds=until - now, reason=reason, failures=self.tracker.cooldowns.consecutive_failures(label),
                )
            )
