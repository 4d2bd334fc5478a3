"""Cooldowns: a circuit breaker per ``provider/model``, so a failing provider sits races out.

Racing a provider that fails every time costs a request per race and, under
``hedged``, a hedge delay before the next attempt starts. So each
``provider/model`` has a breaker with three states:

* **closed** — it races as usual. Consecutive failed attempts are counted;
  any attempt that produces a first token resets the count.
* **open** (cooling down) — after :data:`FAILURES_TO_TRIP` consecutive
  failures it sits out races for :data:`BASE_COOLDOWN_S`, doubling on every
  trip without an answer in between, capped at :data:`MAX_COOLDOWN_S`. A 429
  that carries a retry-after opens it at once, for exactly that long (capped
  the same way): the upstream said when to come back.
* **half-open** — once the cooldown is over, the next race takes it on trial
  (one race at a time). An answer closes the breaker; a failure opens it
  again, for longer; a trial that ends without a verdict (cancelled because
  another attempt won first, or never started by ``hedged``) frees the slot
  for the next race.

Never bench everyone: when every participant of a race is cooling, the one
whose cooldown ends soonest races anyway, as a trial. A race whose
participants were benched lists them in its attempts as ``not_started`` with
``error_kind`` ``cooldown``.

Time is the tracker's clock (wall time, so ``cooldown_until`` in statistics
and events is an epoch timestamp). Cooldowns live in memory only: a restarted
engine gives every provider a fresh chance.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from attrs import define

from ._events import ProviderCooldown, ProviderRecovered

#: Consecutive failed attempts that open the breaker (the issue's "say 3";
#: Envoy's outlier detection uses 5 consecutive 5xx — an LLM race has
#: alternatives ready, so raceway benches sooner).
FAILURES_TO_TRIP = 3
#: The first cooldown, in seconds; each further trip doubles it...
BASE_COOLDOWN_S = 5.0
COOLDOWN_GROWTH = 2.0
#: ...up to this cap (Envoy's default ``max_ejection_time``: 300 s).
MAX_COOLDOWN_S = 300.0
#: A trial race that never reported back (its driver crashed) frees the slot after this.
TRIAL_STALE_S = 120.0


@define
class _Breaker:
    consecutive: int = 0  # failed attempts since the last answer
    trips: int = 0  # times opened for failures since the last answer
    until: float | None = None  # None: closed; else open until then, half-open after
    reason: str = ""
    trial_race: str | None = None
    trial_since: float = 0.0


Event = ProviderCooldown | ProviderRecovered


class Cooldowns:
    """The breakers of one tracker. Fed attempt verdicts; asked who may race."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._breakers: dict[str, _Breaker] = {}
        self._cooling: set[str] = set()  # labels whose breaker is open or half-open

    # ------------------------------------------------------------- racing

    def admit(self, labels: Sequence[str], race_id: str) -> list[bool] | None:
        """Who of ``labels`` (a race's participants, in order) may race.

        ``None`` when everyone may (the common case, answered without looking
        at the clock); otherwise one flag per participant, never all false.
        A half-open participant admitted here becomes this race's trial.
        """
        cooling = self._cooling
        if not cooling or cooling.isdisjoint(labels):
            return None
        now = self._clock()
        allowed: list[bool] = []
        for label in labels:
            b = self._breakers.get(label)
            if b is None or b.until is None:
                allowed.append(True)
            elif now < b.until:
                allowed.append(False)
            elif b.trial_race in (None, race_id) or now - b.trial_since > TRIAL_STALE_S:
                b.trial_race, b.trial_since = race_id, now
                allowed.append(True)
            else:
                allowed.append(False)  # another race has it on trial
        if not any(allowed):
            # Never bench everyone: the one back soonest races, as a trial.
            def back_at(i: int) -> float:
                until = self._breakers[labels[i]].until
                return now if until is None else until

            best = min(range(len(labels)), key=back_at)
            b = self._breakers[labels[best]]
            b.trial_race, b.trial_since = race_id, now
            allowed[best] = True
        return allowed

    def until(self, label: str) -> float | None:
        """When ``label``'s cooldown ends (past: it is half-open), ``None`` if not cooling."""
        b = self._breakers.get(label)
        return None if b is None else b.until

    def reason(self, label: str) -> str | None:
        b = self._breakers.get(label)
        return None if b is None or b.until is None else b.reason

    def consecutive_failures(self, label: str) -> int:
        b = self._breakers.get(label)
        return 0 if b is None else b.consecutive

    # ------------------------------------------------------------ verdicts

    def answered(self, label: str, provider: str, model: str, race_id: str) -> Event | None:
        """An attempt of ``label`` produced a first token: close its breaker."""
        b = self._breakers.get(label)
        if b is None:
            return None
        was_cooling = b.until is not None
        b.consecutive = b.trips = 0
        b.until, b.trial_race = None, None
        self._cooling.discard(label)
        if not was_cooling:
            return None
        return ProviderRecovered(ts=self._clock(), race_id=race_id, provider=provider, model=model)

    def failed(
        self, label: str, provider: str, model: str, race_id: str, retry_after: float | None
    ) -> Event | None:
        """An attempt of ``label`` failed; ``retry_after`` when the upstream gave one (429)."""
        now = self._clock()
        b = self._breakers.get(label)
        if b is None:
            b = self._breakers[label] = _Breaker()
        b.consecutive += 1
        if b.trial_race == race_id:
            b.trial_race = None
        open_now = b.until is not None and now < b.until
        if retry_after is not None and retry_after > 0:
            seconds, reason = min(retry_after, MAX_COOLDOWN_S), "rate_limited"
            if open_now and b.until is not None and b.until >= now + seconds:
                return None  # already cooling for longer
        elif b.consecutive >= FAILURES_TO_TRIP and not open_now:
            # A late failure from a race that started before the trip does not
            # count twice; a failed trial (half-open) does, and waits longer.
            b.trips += 1
            seconds = min(MAX_COOLDOWN_S, BASE_COOLDOWN_S * COOLDOWN_GROWTH ** (b.trips - 1))
            reason = "failures"
        else:
            return None
        b.until, b.reason = now + seconds, reason
        self._cooling.add(label)
        return ProviderCooldown(
            ts=now,
            race_id=race_id,
            provider=provider,
            model=model,
            until=b.until,
            seconds=seconds,
            reason=reason,
            failures=b.consecutive,
        )

    def no_verdict(self, label: str, race_id: str) -> None:
        """``label``'s attempt in ``race_id`` told nothing (cancelled, never started)."""
        b = self._breakers.get(label)
        if b is not None and b.trial_race == race_id:
            b.trial_race = None
