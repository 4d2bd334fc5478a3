"""``GET /healthz``: ``engine.health_check()``, asked at most once per five seconds.

A probe must be right before any traffic (so it asks the providers, not the
race statistics) and cheap under a busy load balancer (so an answer is reused
for :data:`HEALTH_CACHE_S`). Probes that arrive while a check runs wait for
that check. The check runs in the gateway's nursery, not the probe's, so a
probe that gives up does not cancel it for the others.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from .._engine import Engine, HealthReport

#: How long one health report is reused (the contract: at most 5 s).
HEALTH_CACHE_S = 5.0


class HealthCache:
    """The latest health report, refreshed on demand once it is older than :data:`HEALTH_CACHE_S`."""

    def __init__(self, engine: Engine, redact: Callable[[str], str]) -> None:
        self.engine = engine
        self.redact = redact
        self.nursery: trio.Nursery | None = None
        self._report: HealthReport | None = None
        self._at = -float("inf")
        self._running: trio.Event | None = None

    async def get(self) -> HealthReport:
        while True:
            report = self._report
            if report is not None and trio.current_time() - self._at < HEALTH_CACHE_S:
                return report
            running = self._running
            if running is None:
                running = self._running = trio.Event()
                if self.nursery is None:
                    await self._check(running)
                else:
                    self.nursery.start_soon(self._check, running)
            await running.wait()
            if self._report is not None:  # (else the check was cancelled: ask again)
                return self._report

    async def _check(self, done: trio.Event) -> None:
        from .._engine import HealthReport

        try:
            report = await self.engine.health_check()
            self._report = HealthReport(
                providers={k: None if v is None else self.redact(v) for k, v in report.providers.items()}
            )
            self._at = trio.current_time()
        except Exception as exc:  # (health_check reports per provider; this is a bug elsewhere)
            self._report = HealthReport(providers={"gateway": f"health check failed: {type(exc).__name__}"})
            self._at = trio.current_time()
        finally:
            self._running = None
            done.set()
