"""The performance tracker: what raceway has learned about each ``provider/model``, honestly.

It consumes ``race_finished`` events (every attempt's record is in them) and
keeps, per ``provider/model`` (``_record.py``): races, wins, losses,
cancellations, failures by kind, tokens, a TTFT and a total-latency estimate
(``_estimate.py``: decaying, censoring-aware, mergeable), decaying means, a
reliability estimate, a cooldown breaker (``_cooldown.py``) and rate caps
(``_ratecap.py``); and the last :data:`RECENT_RACES` finished races (the
monitor's snapshot). The engine asks it for sampled scores and TTFTs
(``weighted``, ``hedged``), hedge delays (``hedged`` with ``delay_ms: auto``)
and who may race (cooldowns, caps); ``_persist.py`` saves it.

What each attempt teaches
-------------------------

Nothing it learns may depend on which provider a strategy happened to pick,
or the learning feeds on itself (the seed's bug 2: a provider that won once
scored higher, so it won again). So:

* **TTFT** is learned from every attempt that produced a first token, winner
  or loser (losers are kept alive through the grace window for this). An
  attempt stopped before its first token — cancelled because another won, or
  still waiting at the deadline — is a *censored* observation: its TTFT is at
  least the time it ran. The estimate is Kaplan–Meier, so such an attempt is
  never a sample of its TTFT, never lowers the estimate, and raises it only
  when it waited longer than answers did.
* **Reliability** is learned from attempts that ended on their own: 1 for a
  first token, 0 for a failure (an error, no token by the deadline, a winner
  that broke mid-stream). A cancellation is neither: it is not a loss, not a
  failure, and changes no rate.
* **Wins** are counted and shown, never scored: who wins depends on who else
  raced and on the strategy, not only on the provider.

The score
---------

::

    score = 0.4 × reliability + 0.6 × (0.5 + c × (speed - 0.5))
    speed = REF / (REF + median TTFT)          (REF = 0.5 s: 0.5 at 500 ms, 1 when instant)
    c     = n / (n + 1) for n first tokens seen (how far speed may pull from neutral)

``reliability`` is a running mean behind 3 pseudo-observations of 0.5 that
becomes an exponentially weighted average over about the last 20 attempts;
the median TTFT comes from the estimate above (a lower bound of it when
censoring hides it). Between updates ``|score - 0.5|`` shrinks by
``exp(-Δt / STALE_S)`` (an hour-old verdict counts a third as much) and so
do the pseudo-counts, so fresh samples after a pause outweigh old ones. A
provider never seen scores 0.5; one that only fails falls toward 0.3; speed
carries more weight than reliability because a failed racer costs one
request while a slow one costs every caller time. Properties (tested in
``tests/test_tracker.py``): the score stays in [0, 1]; a failure never
raises it; a faster TTFT never scores below a slower one (unless a cancelled
attempt waited between the two: Kaplan–Meier hands its mass to the answers
after it); a cancellation is never booked as a loss; stale knowledge drifts
to 0.5.

Exploration
-----------

``weighted`` and ``hedged`` keep measuring every participant by Thompson
sampling (:meth:`Tracker.sample_race`): for each race the engine draws, per
participant, a TTFT and a reliability from the uncertainty of their
estimates, and hands the strategy the sampled score and TTFT in the
``RaceSpec`` (never drawn inside ``decide``). The TTFT draw is the conjugate
posterior of the mean log TTFT: centred on the answers' (Kaplan–Meier
weighted) mean log, with their spread shrunk toward a prior while few are in,
Student-t tails, and as many samples as Greenwood's variance says the median
is worth (heavy censoring — a provider seen mostly as a cancelled hedge —
counts for little). Two things keep it from locking in, both measured on the
``identical`` and ``one_fast`` benchmark scenarios: draws are
``_explore.EXPLORE`` (1.25) times as wide as the standard error, and the evidence
behind a draw halves for every ``_explore.RACE_HALF_LIFE`` (45) races in which
the provider gave no first token, so an estimate nobody refreshes regains
its uncertainty (discounted Thompson sampling). An unmeasured provider draws
from a wide prior around the race's measured medians; one whose median
censoring hides draws around the bound, never behind a hard floor.

It costs no extra requests — it changes the order ``hedged`` tries and the
pick ``weighted`` makes — only the latency of the explorations: on
``one_fast`` (25 ms among 60 and 120 ms) ``hedged`` runs a slower provider
first in about 5-9 % of 300 races, fewer as evidence accumulates.
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from attrs import frozen

from . import _explore
from ._cooldown import ALL_AT_ONCE, ONE_AT_A_TIME, CooldownPolicy, Cooldowns
from ._events import ProviderCooldown, ProviderRecovered, RaceFinished
from ._explore import AUTO_HEDGE_FALLBACK_S as AUTO_HEDGE_FALLBACK_S
from ._explore import RACE_DISCOUNT
from ._ratecap import RateCaps
from ._record import (
    _FAILED,
    NEUTRAL,
    NOT_ITS_FAULT,
    STALE_S,
    Change,
    Record,
    merge_records,
    observe,
)
from ._result import AttemptRecord
from ._stats import ProviderStats, stats_of

__all__ = ["AUTO_HEDGE_FALLBACK_S", "STALE_S", "Change", "ProviderStats", "RacePolicy", "Record", "Tracker", "merge_records"]

#: Finished races kept for a monitor client's snapshot (the dashboard's history).
RECENT_RACES = 200


@frozen
class RacePolicy:
    """What admission needs about one virtual model's races (made once per model by :meth:`Tracker.policy`)."""

    virtual_model: str
    cooldown: CooldownPolicy
    providers: tuple[str, ...] = ()
    capped: tuple[int, ...] = ()  # participants whose provider definition has rate caps


class Tracker:
    """Learns per ``provider/model`` from finished races; scores them; benches and caps them.

    ``clock`` returns wall-clock seconds (tests pass a fake one); ``rng`` draws
    the exploration samples (seed it for repeatable runs).
    """

    def __init__(self, clock: Callable[[], float] = time.time, rng: random.Random | None = None) -> None:
        self._records: dict[str, Record] = {}
        self.clock = clock
        self.rng = rng or random.Random()
        self.cooldowns = Cooldowns(lambda: self.clock())
        self.caps = RateCaps(lambda: self.clock())
        self.recent: deque[RaceFinished] = deque(maxlen=RECENT_RACES)
        self._seq = 0
        self._races = 0  # races recorded (the clock of exploration's discount)
        self._policies: dict[str, CooldownPolicy] = {}
        self._held: dict[str, list[tuple[int, str]]] = {}  # race_id -> rate-cap slots it holds
        self._capped_why: dict[str, str] = {}  # label -> why its last admission was refused
        #: Called before the statistics are read out (snapshot, changes to save): the
        #: engine learns the races it batched (``Engine._race_finished``).
        self.settle: Callable[[], None] = lambda: None

    # ----------------------------------------------------------- learning

    def record(self, event: RaceFinished) -> tuple[ProviderCooldown | ProviderRecovered, ...]:
        """Fold one finished race into the statistics (O(participants), no sorting).

        Releases the race's rate-cap slots, and returns the cooldown events it
        caused (the engine emits them after the ``race_finished`` event).
        """
        now = self.clock()
        self.recent.append(event)
        self._races += 1
        if self._held:
            self._release(event)
        news: list[ProviderCooldown | ProviderRecovered] = []
        cooldowns = self.cooldowns
        breakers = cooldowns.breakers
        policy = self._policies.get(event.virtual_model) or (
            ONE_AT_A_TIME if event.strategy == "hedged" else ALL_AT_ONCE
        )
        for a in event.attempts:
            label = a.label
            if a.status == "not_started":
                if label in breakers:
                    cooldowns.no_verdict(label, event.race_id)
                continue
            obs = observe(event, a, now)
            r = self._records.get(label)
            if r is None:
                r = self._records[label] = Record(provider=a.provider, model=a.model)
            r.count(obs)
            r.learn(obs)
            if obs.ttft_ms is not None:
                r.info = r.info * RACE_DISCOUNT ** (self._races - r.info_race) + 1.0
                r.info_race = self._races
            self._seq += 1
            r.pending.append((self._seq, obs))
            if obs.status in _FAILED and obs.error_kind not in NOT_ITS_FAULT:
                item = cooldowns.failed(label, a.provider, a.model, event.race_id, obs.error_kind, obs.retry_after, policy)
            elif label not in breakers:  # never failed: nothing to close or free
                continue
            elif obs.ttft_ms is not None:
                item = cooldowns.answered(label, a.provider, a.model, event.race_id)
            else:
                cooldowns.no_verdict(label, event.race_id)
                continue
            if item is not None:
                news.append(item)
        return tuple(news)

    # ------------------------------------------------------------ racing

    def policy(self, resolved: Any, *, one_at_a_time: bool) -> RacePolicy:
        """Register a virtual model's admission policy (its ``cooldown`` and its providers' caps).

        ``resolved`` is a ``ResolvedModel``; ``one_at_a_time`` is its strategy's
        kind (``hedged``). The engine calls this once per virtual model.
        """
        cfg = getattr(resolved, "cooldown", None)
        cooldown = CooldownPolicy(
            one_at_a_time=one_at_a_time,
            failures=getattr(cfg, "failures", ALL_AT_ONCE.failures),
            base_s=getattr(cfg, "base_ms", ALL_AT_ONCE.base_s * 1000) / 1000,
            max_s=getattr(cfg, "max_ms", ALL_AT_ONCE.max_s * 1000) / 1000,
        )
        self._policies[resolved.name] = cooldown
        providers = tuple(p.name for p in resolved.participants)
        capped = tuple(
            i
            for i, p in enumerate(resolved.participants)
            if self.caps.configure(
                p.name, getattr(p.definition, "max_in_flight", None), getattr(p.definition, "rpm", None)
            )
        )
        return RacePolicy(virtual_model=resolved.name, cooldown=cooldown, providers=providers, capped=capped)

    def admit(self, labels: Sequence[str], race_id: str, policy: RacePolicy | None = None) -> list[bool] | None:
        """Who of a race's participants may race: ``None`` when all may, else a flag each.

        Cooldowns first (:meth:`Cooldowns.admit`, by the policy's strategy
        kind), then rate caps: an admitted participant of a capped provider
        takes a slot (released when the race is recorded) or sits out. The
        engine builds each benched participant's record with :meth:`benched`.
        A race that is never recorded must call :meth:`release` instead.
        """
        allowed = self.cooldowns.admit(labels, race_id, policy is not None and policy.cooldown.one_at_a_time)
        if policy is None or not policy.capped:
            return allowed
        held: list[tuple[int, str]] = []
        for i in policy.capped:
            if allowed is not None and not allowed[i]:
                continue
            provider = policy.providers[i]
            denial = self.caps.take(provider)
            if denial is None:
                held.append((i, provider))
            else:
                if allowed is None:
                    allowed = [True] * len(labels)
                allowed[i] = False
                self._capped_why[labels[i]] = denial
        if held:
            self._held[race_id] = held
        return allowed

    def release(self, race_id: str, started: Iterable[int] = ()) -> None:
        """Give back the rate-cap slots of ``race_id`` (``started``: participant indices that ran)."""
        held = self._held.pop(race_id, None)
        if held:
            ran = set(started)
            for i, provider in held:
                self.caps.give_back(provider, started=i in ran)

    def _release(self, event: RaceFinished) -> None:
        self.release(event.race_id, (a.index for a in event.attempts if a.status != "not_started"))

    def benched(self, provider: str, model: str) -> AttemptRecord:
        """The attempt record of a participant that sits a race out (index set by the engine)."""
        label = f"{provider}/{model}"
        capped = self._capped_why.pop(label, None)
        if capped is not None:
            return AttemptRecord(
                index=0, provider=provider, model=model, status="not_started", error=capped, error_kind="rate_cap"
            )
        until = self.cooldowns.until(label)
        left = 0.0 if until is None else until - self.clock()
        reason = self.cooldowns.why(label)
        why = f"cooling down ({reason}), {left:.1f} s left" if left > 0 else f"cooling down ({reason}), on trial elsewhere"
        return AttemptRecord(
            index=0, provider=provider, model=model, status="not_started", error=why, error_kind="cooldown"
        )

    # ------------------------------------------------------------ queries

    def score(self, label: str) -> float:
        """The score of ``label`` in [0, 1]; 0.5 for one never seen."""
        r = self._records.get(label)
        return NEUTRAL if r is None else r.score(self.clock())

    def mean_output_tokens(self, label: str) -> float | None:
        """Output tokens per answer ``label`` reported as a winner, if any (the budget guard's estimate)."""
        r = self._records.get(label)
        return r.output_tokens / r.wins if r is not None and r.wins and r.output_tokens else None

    def ttft_percentile(self, label: str, q: float) -> float | None:
        """The ``q`` quantile of ``label``'s recent TTFTs in ms (censoring-aware), if any were seen."""
        r = self._records.get(label)
        return None if r is None or r.ttft.n_events <= 0 else r.ttft.quantile(q)

    def hedge_delay(self, label: str, q: float) -> float:
        """``hedge.delay_ms: auto`` for ``label``: its TTFT at quantile ``q`` (raised by one
        standard error), seconds, clamped; 1 s before any TTFT (``_explore.hedge_delay``)."""
        return _explore.hedge_delay(self._records.get(label), q)

    def sample(
        self, label: str, rng: random.Random | None = None, prior_ms: float = _explore.PRIOR_TTFT_MS
    ) -> tuple[float, float]:
        """One Thompson draw for ``label``: ``(score, ttft_ms)`` (``_explore.draw``)."""
        return _explore.draw(self._records.get(label), rng or self.rng, prior_ms, self._races, self.clock())

    def sample_race(self, labels: Sequence[str], rng: random.Random | None = None) -> list[tuple[float, float | None]]:
        """:meth:`sample` for each of a race's participants, unmeasured ones drawn around the measured.

        When no participant has any record there is nothing to explore yet
        (any order measures someone): each gets the neutral ``(0.5, None)``,
        exactly what a fresh engine's strategies see.
        """
        records = [self._records.get(label) for label in labels]
        prior = _explore.race_prior(records)
        if prior is None:
            return [(NEUTRAL, None)] * len(labels)
        rng = rng or self.rng
        now = self.clock()
        return [_explore.draw(r, rng, prior, self._races, now) for r in records]

    def snapshot(self, labels: Iterable[str] | None = None, *, this_run: bool = False) -> dict[str, ProviderStats]:
        """Statistics now: of ``labels`` that have any (default: every ``provider/model`` known).

        ``this_run``: counters since the tracker started (what was loaded
        from ``performance_file`` left out); estimates are always everything learned.
        """
        self.settle()
        now = self.clock()
        records = self._records
        chosen = records if labels is None else {k: records[k] for k in dict.fromkeys(labels) if k in records}
        return {label: stats_of(label, r, now, this_run, self.cooldowns) for label, r in chosen.items()}

    def labels(self) -> list[str]:
        return list(self._records)

    # -------------------------------------------------------- persistence

    def load(self, records: dict[str, Record]) -> None:
        """Start from ``records`` (read from ``performance_file``), which count as saved."""
        for label, r in records.items():
            r.saved, r.saved_failures = r.counters(), dict(r.failures)
            r.baseline, r.baseline_failures = r.counters(), dict(r.failures)
            self._records[label] = r

    def changes(self) -> dict[str, Change]:
        """What happened since the last :meth:`commit` (or :meth:`load`), per label."""
        self.settle()
        out: dict[str, Change] = {}
        for label, r in self._records.items():
            if not r.pending and r.counters() == r.saved and r.failures == r.saved_failures:
                continue
            now_counts, now_failures = r.counters(), dict(r.failures)
            out[label] = Change(
                provider=r.provider,
                model=r.model,
                counts={k: v - r.saved.get(k, 0) for k, v in now_counts.items()},
                failures={k: v - r.saved_failures.get(k, 0) for k, v in now_failures.items()},
                observations=tuple(obs for _, obs in r.pending),
                now_counts=now_counts,
                now_failures=now_failures,
                last_seq=r.pending[-1][0] if r.pending else 0,
            )
        return out

    def commit(self, changes: dict[str, Change]) -> None:
        """``changes`` are in the file now: only what came after them is news."""
        for label, ch in changes.items():
            r = self._records.get(label)
            if r is None:
                continue
            r.saved, r.saved_failures = dict(ch.now_counts), dict(ch.now_failures)
            while r.pending and r.pending[0][0] <= ch.last_seq:
                r.pending.popleft()

