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
:data:`EXPLORE` (1.25) times as wide as the standard error, and the evidence
behind a draw halves for every :data:`RACE_HALF_LIFE` (45) races in which
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

import math
import random
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from attrs import field, frozen

from ._cooldown import ALL_AT_ONCE, ONE_AT_A_TIME, CooldownPolicy, Cooldowns
from ._estimate import MEDIAN_SE
from ._events import ProviderCooldown, ProviderRecovered, RaceFinished
from ._ratecap import RateCaps
from ._record import (
    _FAILED,
    NEUTRAL,
    NOT_ITS_FAULT,
    RATE_PRIOR,
    STALE_S,
    W_RELIABILITY,
    W_SPEED,
    Change,
    Record,
    decay,
    merge_records,
    observe,
    speed_of,
)
from ._result import AttemptRecord

__all__ = ["STALE_S", "Change", "ProviderStats", "RacePolicy", "Record", "Tracker", "merge_records"]

#: Finished races kept for a monitor client's snapshot (the dashboard's history).
RECENT_RACES = 200
#: An unmeasured provider's TTFT prior: a lognormal this wide (log sd) around the
#: race's measured medians, or around PRIOR_TTFT_MS when none is measured.
PRIOR_SIGMA = 1.0
PRIOR_TTFT_MS = 500.0
#: Pseudo-observations of PRIOR_SIGMA behind a measured provider's TTFT spread.
SPREAD_PRIOR_N = 3.0
#: Degrees of freedom the Student-t draws start from (a prior worth this many samples).
T_DOF_PRIOR = 2.0
#: Draws are this many times wider than the estimate's standard error. Under
#: ``hedged`` a provider is measured without bias mostly while it runs first,
#: so one whose estimate came out high is slow to correct it; wider draws try
#: it again sooner (see the module docstring for what that costs).
EXPLORE = 1.25
#: Discounted Thompson sampling: the evidence behind a draw halves for every
#: this many races recorded in which the provider produced no first token, so
#: an estimate that stopped being refreshed (a provider that looked slow and is
#: no longer tried) regains its uncertainty and is tried again.
RACE_HALF_LIFE = 45.0
RACE_DISCOUNT: float = 2.0 ** (-1.0 / RACE_HALF_LIFE)
#: The reliability estimate is an average over about this many attempts at most.
RATE_N_MAX = 2.0 / 0.05 - 1.0
#: ``hedge.delay_ms: auto``: the quantile is raised by this many standard errors
#: (``sqrt(q (1 - q) / n)``), so that with few samples the delay is long and
#: hedges are rare, and with a full window (n ≈ 185) p90 becomes about p92: the
#: budget stays a cap that is rarely reached, not a target.
HEDGE_Z = 1.0
#: Before any TTFT was seen, the hedge waits this many seconds...
AUTO_HEDGE_FALLBACK_S = 1.0
#: ...and never less or more than these.
AUTO_HEDGE_MIN_S = 0.002
AUTO_HEDGE_MAX_S = 30.0


@frozen(kw_only=True)
class ProviderStats:
    """A snapshot of one ``provider/model``'s record (see :meth:`Engine.stats`).

    ``races`` counts attempts started; ``wins`` those that won; ``losses``
    those that answered while another won; ``cancellations`` those stopped
    before their first token (neither losses nor failures); ``failures`` maps
    error kinds (``http``, ``timeout``, ...) to counts. Latencies are
    milliseconds: ``ttft_*`` from the attempt's start to its first token
    (censoring-aware, see the module docstring), ``latency_*`` from its start
    to the end of its answer (winners only). ``score`` is in [0, 1],
    ``score_parts`` its two parts (``reliability``, ``speed``).
    ``cooldown_until`` is the wall-clock end of a cooldown (past: awaiting
    its trial race), ``None`` when the provider races as usual.
    """

    races: int
    wins: int
    losses: int
    cancellations: int
    failures: dict[str, int]
    ttft_p50_ms: float | None
    ttft_p95_ms: float | None
    ttft_mean_ms: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_mean_ms: float | None
    output_chars: int
    score: float
    last_seen: float | None
    cooldown_until: float | None = None
    provider: str = ""
    model: str = ""
    answered: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    score_parts: dict[str, float] = field(factory=dict)
    consecutive_failures: int = 0
    cooldown_reason: str | None = None
    ttft_p90_ms: float | None = None
    ttft_samples: float = 0.0

    @property
    def win_rate(self) -> float:
        """Wins among attempts that were not cut short (a cancellation is no loss)."""
        decided = self.races - self.cancellations
        return self.wins / decided if decided > 0 else 0.0

    @property
    def failure_count(self) -> int:
        return sum(self.failures.values())


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

    def ttft_percentile(self, label: str, q: float) -> float | None:
        """The ``q`` quantile of ``label``'s recent TTFTs in ms (censoring-aware), if any were seen."""
        r = self._records.get(label)
        return None if r is None or r.ttft.n_events <= 0 else r.ttft.quantile(q)

    def hedge_delay(self, label: str, q: float) -> float:
        """``hedge.delay_ms: auto`` for ``label``: its TTFT at quantile ``q``, seconds, clamped.

        The quantile is raised by :data:`HEDGE_Z` standard errors of the
        estimate (see there); :data:`AUTO_HEDGE_FALLBACK_S` before any TTFT.
        """
        r = self._records.get(label)
        if r is None or r.ttft.n_events <= 0:
            return AUTO_HEDGE_FALLBACK_S
        sketch = r.ttft
        up = q + HEDGE_Z * math.sqrt(q * (1.0 - q) / max(1.0, sketch.n))
        ms = sketch.smooth_quantile(up if up < 1.0 else 1.0) or 0.0
        return min(AUTO_HEDGE_MAX_S, max(AUTO_HEDGE_MIN_S, ms / 1000))

    def sample(self, label: str, rng: random.Random | None = None, prior_ms: float = PRIOR_TTFT_MS) -> tuple[float, float]:
        """One Thompson draw for ``label``: ``(score, ttft_ms)`` from the uncertainty of its estimates.

        Unmeasured TTFTs draw from a lognormal of width :data:`PRIOR_SIGMA`
        around ``prior_ms``, truncated below by what censoring proved.
        """
        rng = rng or self.rng
        g, gamma = rng.gauss, rng.gammavariate
        r = self._records.get(label)
        if r is None:
            ttft = prior_ms * math.exp(PRIOR_SIGMA * g(0.0, 1.0))
            rel = NEUTRAL + 0.25 * g(0.0, 1.0)
        else:
            d = 1.0 if r.updated is None else decay(self.clock() - r.updated)
            sketch = r.ttft
            n = min(sketch.n_events, r.info * RACE_DISCOUNT ** (self._races - r.info_race)) * d
            median = sketch.median() if n > 0.0 else None
            if median is not None and sketch.bounded(0.5) and sketch.log_mean is not None:
                n = min(n, sketch.n_effective * d)
                # Conjugate normal posterior of the mean log TTFT (= the log median of
                # a lognormal): centre and spread from the answers, the spread shrunk
                # toward PRIOR_SIGMA while few are in, Student-t tails (unknown variance).
                spread = sketch.log_sd or 0.0
                s = (n * spread + SPREAD_PRIOR_N * PRIOR_SIGMA) / (n + SPREAD_PRIOR_N)
                nu = n + T_DOF_PRIOR
                t = g(0.0, 1.0) / math.sqrt(gamma(nu / 2.0, 2.0) / nu)
                ttft = math.exp(sketch.log_mean + EXPLORE * s / math.sqrt(n + 1.0) * t)
            else:
                # Censoring hides the median: it is beyond what was seen, as far as
                # the few observations tell. Draw around that bound (or the prior,
                # if higher), as widely as they allow: never a hard floor, which
                # would shut a provider out for good after one slow answer.
                seen = sketch.n * d
                anchor = max(sketch.lower_bound(), prior_ms) if n <= 0.0 else sketch.lower_bound()
                ttft = max(anchor, 1e-3) * math.exp(MEDIAN_SE * PRIOR_SIGMA / math.sqrt(seen + 1.0) * g(0.0, 1.0))
            mean = NEUTRAL + (r.reliability - NEUTRAL) * d
            n_rel = min(r.n_reliability * d, RATE_N_MAX)
            rel = mean + math.sqrt(mean * (1.0 - mean) / (n_rel + RATE_PRIOR + 1.0)) * g(0.0, 1.0)
        rel = 0.0 if rel < 0.0 else 1.0 if rel > 1.0 else rel
        return W_RELIABILITY * rel + W_SPEED * speed_of(ttft), ttft

    def sample_race(self, labels: Sequence[str], rng: random.Random | None = None) -> list[tuple[float, float | None]]:
        """:meth:`sample` for each of a race's participants.

        The unmeasured ones' prior is the geometric mean of the measured
        medians: they are presumed typical, widely. When none is measured
        there is nothing to explore yet (any order measures someone): every
        participant gets the neutral ``(0.5, None)``, exactly what a fresh
        engine's strategies see.
        """
        logs = 0.0
        known = 0
        for label in labels:
            r = self._records.get(label)
            if r is not None and r.ttft.n_events > 0:
                median = r.ttft.median()
                if median is not None and median > 0.0:
                    logs += math.log(median)
                    known += 1
        if not known and not any(label in self._records for label in labels):
            return [(NEUTRAL, None)] * len(labels)
        prior = math.exp(logs / known) if known else PRIOR_TTFT_MS
        return [self.sample(label, rng, prior) for label in labels]

    def snapshot(self, labels: Iterable[str] | None = None, *, this_run: bool = False) -> dict[str, ProviderStats]:
        """Statistics now: of ``labels`` that have any (default: every ``provider/model`` known).

        ``this_run``: counters since the tracker started (what was loaded
        from ``performance_file`` left out); estimates are always everything learned.
        """
        now = self.clock()
        records = self._records
        chosen = records if labels is None else {k: records[k] for k in dict.fromkeys(labels) if k in records}
        return {label: self._stats(label, r, now, this_run) for label, r in chosen.items()}

    def labels(self) -> list[str]:
        return list(self._records)

    def _stats(self, label: str, r: Record, now: float, this_run: bool) -> ProviderStats:
        r.ttft.refresh()
        r.latency.refresh()
        counts = r.counters()
        failures = dict(r.failures)
        if this_run and (r.baseline or r.baseline_failures):
            counts = {k: v - r.baseline.get(k, 0) for k, v in counts.items()}
            failures = {k: n for k, v in failures.items() if (n := v - r.baseline_failures.get(k, 0))}
        has_ttft = r.ttft.n_events > 0
        has_latency = r.latency.n_events > 0
        return ProviderStats(
            **{k: counts[k] for k in ("races", "wins", "losses", "cancellations", "output_chars")},
            failures=failures,
            ttft_p50_ms=r.ttft.quantile(0.5) if has_ttft else None,
            ttft_p95_ms=r.ttft.quantile(0.95) if has_ttft else None,
            ttft_mean_ms=r.ttft_mean,
            latency_p50_ms=r.latency.quantile(0.5) if has_latency else None,
            latency_p95_ms=r.latency.quantile(0.95) if has_latency else None,
            latency_mean_ms=r.latency_mean,
            score=r.score(now),
            last_seen=r.last_seen,
            cooldown_until=self.cooldowns.until(label),
            provider=r.provider,
            model=r.model,
            answered=counts["answered"],
            input_tokens=counts["input_tokens"],
            output_tokens=counts["output_tokens"],
            score_parts=r.parts(now),
            consecutive_failures=self.cooldowns.consecutive_failures(label),
            cooldown_reason=self.cooldowns.reason(label),
            ttft_p90_ms=r.ttft.quantile(0.9) if has_ttft else None,
            ttft_samples=round(r.ttft.n_events, 1),
        )

    # -------------------------------------------------------- persistence

    def load(self, records: dict[str, Record]) -> None:
        """Start from ``records`` (read from ``performance_file``), which count as saved."""
        for label, r in records.items():
            r.saved, r.saved_failures = r.counters(), dict(r.failures)
            r.baseline, r.baseline_failures = r.counters(), dict(r.failures)
            self._records[label] = r

    def changes(self) -> dict[str, Change]:
        """What happened since the last :meth:`commit` (or :meth:`load`), per label."""
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

