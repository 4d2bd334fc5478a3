"""Cooldowns: a circuit breaker per ``provider/model`` that benches a provider only when racing it costs more than it gives.

What a failing provider costs depends on the strategy. Under ``hedged`` (one
attempt at a time) a dead primary costs every race a failed attempt before
the failover, or a whole hedge delay when it hangs; under ``first_wins``,
``weighted`` and ``quality`` (everyone at once) a failed racer costs one
request, while a benched *fast* one costs latency in every race it sits out
(with p0 failing 30 % of its attempts, benching it moved first_wins' median
from 39 to 45 ms). So each breaker counts, and the race's policy decides:

* **429** (``rate_limited``) benches for the upstream's ``retry-after``
  (``base_ms`` when it gave none), under every strategy: the upstream said
  when to come back, and more requests now only earn more 429s.
* **401/403** (``auth``) and a missing API key (``missing_key``) bench for
  ``max_ms`` under every strategy, with a reason that says what to fix: the
  next request will not fare better until someone changes a key.
* **``failures`` consecutive failures** bench only races that start one
  attempt at a time (``hedged``), for ``base_ms``, doubling on every trip
  without an answer in between, up to ``max_ms``.
* **Nearly all recent attempts failing** (a failure rate of at least
  :data:`NEARLY_ALL` over about the last 20 attempts that ended on their own,
  after at least :data:`MIN_RECENT`) benches under every strategy, with the
  same growing durations: a provider that is down costs a request per race
  and helps none. One that fails 30 % of the time still races.

Once a cooldown is over the breaker is *half-open*: the next race that would
bench it takes it on trial (one race at a time). An answer closes the
breaker; a failed trial opens it again, for longer; a trial without a verdict
(cancelled because another attempt won first, or never started by
``hedged``) frees the slot for the next race. Never bench everyone: when
every participant of a race would sit out, the one back soonest races anyway,
as a trial. Benched participants are listed in the race's attempts as
``not_started`` with ``error_kind`` ``cooldown``.

Time is the tracker's clock (wall time, so ``cooldown_until`` in statistics
and events is an epoch timestamp). Cooldowns live in memory only: a restarted
engine gives every provider a fresh chance.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from attrs import define, frozen

from ._events import ProviderCooldown, ProviderRecovered

#: Consecutive failed attempts that bench a provider under ``hedged`` (the
#: ``cooldown.failures`` default; Envoy's outlier detection uses 5 consecutive
#: 5xx — an LLM race has alternatives ready, so raceway benches sooner).
FAILURES_TO_TRIP = 3
#: The first cooldown, in seconds (``cooldown.base_ms``); each further trip doubles it...
BASE_COOLDOWN_S = 5.0
COOLDOWN_GROWTH = 2.0
#: ...up to this cap (``cooldown.max_ms``; Envoy's default ``max_ejection_time``: 300 s).
MAX_COOLDOWN_S = 300.0
#: "Nearly all recent attempts fail" (strategies that start everyone at once):
#: this failure rate over about the last 1 / RECENT_ALPHA attempts...
NEARLY_ALL = 0.9
RECENT_ALPHA = 0.05
#: ...once at least this many were seen (until then the rate is their plain
#: mean). A provider failing 30 % of its attempts gets there with a chance of
#: about 1e-8 in its first 20 attempts, and needs some 18 straight failures later.
MIN_RECENT = 20
#: A trial race that never reported back (its driver crashed) frees the slot after this.
TRIAL_STALE_S = 120.0
#: Error kinds that bench at once for the longest cooldown, and what to tell the user.
HARD_REASONS = {
    "auth": "the upstream refused the API key (HTTP 401/403); fix the key or its permissions",
    "missing_key": "its API key variable is not set",
}


@frozen
class CooldownPolicy:
    """How one virtual model's races bench providers (``cooldown`` in config, and the strategy's kind)."""

    one_at_a_time: bool = False
    failures: int = FAILURES_TO_TRIP
    base_s: float = BASE_COOLDOWN_S
    max_s: float = MAX_COOLDOWN_S


ALL_AT_ONCE = CooldownPolicy()
ONE_AT_A_TIME = CooldownPolicy(one_at_a_time=True)


@define
class _Breaker:
    consecutive: int = 0  # failed attempts since the last answer
    recent: float = 0.0  # failure rate of recent attempts that ended on their own
    seen: int = 0  # attempts that ended on their own (for `recent`'s warm-up)
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
        self.breakers: dict[str, _Breaker] = {}
        self._cooling: set[str] = set()  # labels whose breaker is open or half-open

    # ------------------------------------------------------------- racing

    def admit(self, labels: Sequence[str], race_id: str, one_at_a_time: bool = False) -> list[bool] | None:
        """Who of ``labels`` (a race's participants, in order) may race.

        ``None`` when everyone may (the common case, answered without looking
        at the clock); otherwise one flag per participant, never all false.
        ``one_at_a_time`` is the race's kind (``hedged``): only such races
        bench a provider for consecutive failures. A half-open participant
        admitted here becomes this race's trial.
        """
        cooling = self._cooling
        if not cooling or cooling.isdisjoint(labels):
            return None
        now = self._clock()
        allowed: list[bool] = []
        for label in labels:
            b = self.breakers.get(label)
            if b is None or b.until is None or (b.reason == "failures" and not one_at_a_time):
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
                until = self.breakers[labels[i]].until
                return now if until is None else until

            best = min(range(len(labels)), key=back_at)
            b = self.breakers[labels[best]]
            b.trial_race, b.trial_since = race_id, now
            allowed[best] = True
        return allowed

    def impose(self, label: str, until: float, reason: str) -> bool:
        """Bench ``label`` until ``until`` (epoch s) for ``reason``, as another engine of the fleet did.

        ``False`` when it was already benched at least that long. Its trial
        race, after ``until``, brings it back as after any cooldown.
        """
        b = self.breakers.get(label)
        if b is None:
            b = self.breakers[label] = _Breaker()
        if b.until is not None and b.until >= until:
            return False
        b.until, b.reason = until, reason
        self._cooling.add(label)
        return True

    def until(self, label: str) -> float | None:
        """When ``label``'s cooldown ends (past: it is half-open), ``None`` if not cooling."""
        b = self.breakers.get(label)
        return None if b is None else b.until

    def reason(self, label: str) -> str | None:
        b = self.breakers.get(label)
        return None if b is None or b.until is None else b.reason

    def consecutive_failures(self, label: str) -> int:
        b = self.breakers.get(label)
        return 0 if b is None else b.consecutive

    def why(self, label: str) -> str:
        """Why ``label`` sits races out, in words (for its ``not_started`` record)."""
        reason = self.reason(label) or ""
        if reason in HARD_REASONS:
            return HARD_REASONS[reason]
        if reason == "rate_limited":
            return "rate limited by the upstream"
        if reason == "failing":
            return "nearly all of its recent attempts failed"
        b = self.breakers.get(label)
        return f"{b.consecutive if b else 0} consecutive failures"

    # ------------------------------------------------------------ verdicts

    def answered(self, label: str, provider: str, model: str, race_id: str) -> Event | None:
        """An attempt of ``label`` produced a first token: close its breaker."""
        b = self.breakers.get(label)
        if b is None:
            return None
        b.consecutive = 0
        b.seen += 1
        alpha = max(RECENT_ALPHA, 1.0 / b.seen)
        b.recent -= alpha * b.recent
        if b.until is None:
            return None
        if b.reason == "rate_limited" and b.trial_race != race_id and self._clock() < b.until:
            return None  # a race from before the 429 answered: the upstream still said wait
        b.trips = 0
        b.until, b.trial_race = None, None
        self._cooling.discard(label)
        return ProviderRecovered(ts=self._clock(), race_id=race_id, provider=provider, model=model)

    def failed(
        self,
        label: str,
        provider: str,
        model: str,
        race_id: str,
        kind: str | None,
        retry_after: float | None,
        policy: CooldownPolicy = ALL_AT_ONCE,
    ) -> Event | None:
        """An attempt of ``label`` failed with error ``kind`` (``retry_after``: what a 429 said)."""
        now = self._clock()
        b = self.breakers.get(label)
        if b is None:
            b = self.breakers[label] = _Breaker()
        b.consecutive += 1
        b.seen += 1
        alpha = max(RECENT_ALPHA, 1.0 / b.seen)
        b.recent += alpha * (1.0 - b.recent)
        trial = b.trial_race == race_id
        if trial:
            b.trial_race = None
        open_now = b.until is not None and now < b.until
        if kind == "rate_limited":
            seconds = min(retry_after, policy.max_s) if retry_after and retry_after > 0 else policy.base_s
            reason = "rate_limited"
            if open_now and b.until is not None and b.until >= now + seconds:
                return None  # already cooling for longer
        elif kind in HARD_REASONS:
            seconds, reason = policy.max_s, kind
            if open_now and b.reason == kind:
                return None
        elif open_now and not trial:
            return None  # a late failure from a race that started before the trip: it does not count twice
        elif policy.one_at_a_time and b.consecutive >= policy.failures:
            reason = "failures"
            seconds = self._next_trip(b, policy)
        elif b.seen >= MIN_RECENT and b.recent >= NEARLY_ALL:
            reason = "failing"
            seconds = self._next_trip(b, policy)
        elif trial and b.until is not None:
            # A failed trial of a breaker this race's kind would not have tripped
            # (benched by a hedged model, tried by another): try again later.
            reason = b.reason
            seconds = self._next_trip(b, policy)
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

    @staticmethod
    def _next_trip(b: _Breaker, policy: CooldownPolicy) -> float:
        b.trips += 1
        return min(policy.max_s, policy.base_s * COOLDOWN_GROWTH ** (b.trips - 1))

    def no_verdict(self, label: str, race_id: str) -> None:
        """``label``'s attempt in ``race_id`` told nothing (cancelled, never started)."""
        b = self.breakers.get(label)
        if b is not None and b.trial_race == race_id:
            b.trial_race = None
