"""Redis as the fleet's parts see it: one client, the key prefix, this engine's id, every call under a timeout.

Each part of the fleet (``_fleet_stats``, ``_fleet_cooldowns``, ``_fleet_caps``,
``_fleet_budget``, ``_fleet_events``) talks to Redis only through a
:class:`Link`, which ``_shared.Fleet`` makes for each connection and counts
the traffic of (``bench_shared`` reports it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import trio

#: Every Redis call gives up after this long (a healthy Redis answers in well under a millisecond).
CALL_TIMEOUT_S = 1.0


class Link:
    """Redis as the parts see it: the client, the key prefix, this engine's id, calls under a timeout."""

    def __init__(self, client: Any, prefix: str, engine_id: str) -> None:
        self.client = client
        self.prefix = prefix
        self.engine_id = engine_id
        self._scripts: dict[str, Any] = {}
        self.commands = 0
        self.bytes_sent = 0
        self.bytes_received = 0

    async def call(self, fn: Callable[..., Any], *args: Any, extra: float = 0.0, **kwargs: Any) -> Any:
        """``await fn(*args, **kwargs)`` within :data:`CALL_TIMEOUT_S` (plus ``extra``, for a blocking read)."""
        self.commands += 1
        with trio.fail_after(CALL_TIMEOUT_S + extra):
            reply = await fn(*args, **kwargs)
        if isinstance(reply, str | bytes):
            self.bytes_received += len(reply)
        return reply

    async def script(self, name: str, text: str, *args: Any, keys: Any = ()) -> Any:
        """Run a Lua script (loaded once; loaded again if Redis restarted and forgot it)."""
        script = self._scripts.get(name)
        if script is None:
            script = self._scripts[name] = self.client.register_script(text)
        self.bytes_sent += sum(len(str(a)) for a in args)
        return await self.call(script, keys=list(keys), args=list(args))
