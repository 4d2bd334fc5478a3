"""Rate caps per provider definition: ``max_in_flight`` and ``rpm``.

Racing multiplies upstream load — ``first_wins`` sends every request to every
provider — so an account's limits are reached sooner than with one client per
provider. A cap keeps raceway inside them before the upstream has to answer
429 (and then bench the provider for its ``retry-after``).

Admission happens when a race is built (``Tracker.admit``): each participant
whose provider definition has caps takes a slot — one of its
``max_in_flight`` and one request of its ``rpm``, a sliding 60-second window
— or, when either is used up, sits the race out (``not_started``,
``error_kind: rate_cap``) and the strategy races the rest. The race holds its
slots until it finishes; a participant that never started (``hedged`` did not
need it) gives its request back to the ``rpm`` window when the race ends. So
for ``hedged`` ``max_in_flight`` counts the attempts races *may* start: the
cap can leave a provider idle, never over its limit.

Time is the tracker's clock; a cap is per provider *definition* (its name),
shared by every model and virtual model that uses it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from attrs import frozen

#: The ``rpm`` window, seconds.
RPM_WINDOW_S = 60.0


@frozen
class Caps:
    """One provider definition's caps; ``None``: no cap of that kind."""

    max_in_flight: int | None = None
    rpm: int | None = None


class RateCaps:
    """The caps of one tracker's providers, and what each has in use."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._caps: dict[str, Caps] = {}
        self._in_flight: dict[str, int] = {}
        self._sent: dict[str, deque[float]] = {}
        #: With ``redis:`` configured, the fleet's side of the caps (``_fleet_caps.FleetCaps``):
        #: then a cap holds across every engine of the fleet, not per process.
        self.fleet: Any = None

    def configure(self, provider: str, max_in_flight: int | None, rpm: int | None) -> bool:
        """Set ``provider``'s caps; returns whether it has any."""
        if max_in_flight is None and rpm is None:
            self._caps.pop(provider, None)
            return False
        self._caps[provider] = Caps(max_in_flight=max_in_flight, rpm=rpm)
        return True

    def take(self, provider: str) -> str | None:
        """Take a slot of ``provider`` for one attempt: ``None`` when granted, else why not (one line)."""
        caps = self._caps.get(provider)
        if caps is None:
            return None
        if self.fleet is not None:
            if not self.fleet.try_start(provider, rpm=caps.rpm, max_in_flight=caps.max_in_flight):
                return f"rate cap: the fleet's share of max_in_flight {caps.max_in_flight} / rpm {caps.rpm} is in use"
            self._in_flight[provider] = self._in_flight.get(provider, 0) + 1
            return None
        n = self._in_flight.get(provider, 0)
        if caps.max_in_flight is not None and n >= caps.max_in_flight:
            return f"rate cap: {n} attempts in flight (max_in_flight {caps.max_in_flight})"
        if caps.rpm is not None:
            sent = self._sent.get(provider)
            if sent is None:
                sent = self._sent[provider] = deque()
            horizon = self._clock() - RPM_WINDOW_S
            while sent and sent[0] <= horizon:
                sent.popleft()
            if len(sent) >= caps.rpm:
                return f"rate cap: {len(sent)} requests in the last minute (rpm {caps.rpm})"
            sent.append(horizon + RPM_WINDOW_S)
        self._in_flight[provider] = n + 1
        return None

    def give_back(self, provider: str, *, started: bool) -> None:
        """A race that took a slot of ``provider`` finished; ``started``: whether it sent the request."""
        n = self._in_flight.get(provider, 0)
        if n > 0:
            self._in_flight[provider] = n - 1
        if self.fleet is not None:
            self.fleet.finished(provider)
            return
        if not started:
            sent = self._sent.get(provider)
            if sent:
                sent.pop()  # the newest stamp: close enough to this race's own

    def in_flight(self, provider: str) -> int:
        """Slots of ``provider`` held by races now."""
        return self._in_flight.get(provider, 0)
