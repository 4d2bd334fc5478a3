"""The performance tracker: what raceway has learned about each ``provider/model``.

It consumes ``race_finished`` events (every attempt's record is in them) and
keeps, per ``provider/model``: races, wins, losses, cancellations, failures by
kind, tokens, the recent TTFTs and total latencies (the last :data:`WINDOW`,
for percentiles) with decaying means, a score, and a cooldown breaker
(``_cooldown.py``); and the last :data:`RECENT_RACES` finished races (the
monitor's snapshot). The engine asks it for scores (``weighted``), TTFT
percentiles (``hedged`` with ``delay_ms: auto``) and who may race
(cooldowns); ``_persist.py`` saves and merges it into ``performance_file``.

The score
---------

Three running estimates, each in [0, 1] and each starting at 0.5::

    reliability  1 for an attempt that produced a first token, 0 for one that
                 failed (an error, or no token before the race's deadline)
    win_rate     1 for a race won, 0 for one lost, failed or cancelled
    speed        REF / (REF + ttft_s) of each first token: 0.5 at REF_TTFT_S,
                 1 when instant, toward 0 when slow

    score = 0.35 × reliability + 0.15 × win_rate + 0.50 × speed

Each estimate moves toward a new sample by ``x += α (sample - x)`` with
``α = max(α_min, 1 / (n + prior + 1))``: a running mean behind ``prior``
pseudo-observations of 0.5 that becomes an exponentially weighted moving
average once ``n`` samples are in. The rates have a prior of 3 (one race
moves them a quarter of the way) and ``α_min`` 0.05 (about the last 20
races); speed has no prior (one TTFT says a lot about latency) and
``α_min`` 0.1. Between updates every estimate relaxes toward 0.5, and ``n``
toward 0, by ``exp(-Δt / STALE_S)``; so with no new data ``|score - 0.5|``
shrinks by exactly that factor and an hour-old verdict counts a third as
much, and fresh samples after a pause outweigh the old ones.

Why this shape, and the seed's bias (NOTES.md items 2 and 3):

* Every attempt counts: a slower answer is a loss and a speed sample, an
  error is a failure, and an attempt cancelled before its first token (the
  race was won elsewhere) counts as a loss and, when it had already waited
  longer than its speed estimate implies, as a speed sample at that lower
  bound — so a provider that is always too slow to be measured still looks
  slow, and a failing one always has statistics.
* Speed carries half the weight and is not shrunk: one win at a TTFT of
  0.83 s or slower leaves a provider below neutral, so an old win of a slow
  provider does not outrank an unknown newcomer, and a newcomer that answers
  fast passes it in its first race.
* Monotone by construction (property-tested in ``tests/test_tracker.py``):
  the score stays in [0, 1]; a failure never raises it; a slower TTFT never
  scores above a faster one; a win never scores below a loss at the same
  TTFT, nor below no race at all when its TTFT is no worse than the
  estimate; and it drifts to 0.5 as data ages.

Each sample window is kept sorted as samples come and go (a bisect insert
and delete), so the engine's per-race ``ttft_percentile`` calls cost an
index, not a sort — even though nearly every race adds a sample.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from attrs import define, field, frozen

from ._cooldown import Cooldowns
from ._events import ProviderCooldown, ProviderRecovered, RaceFinished
from ._result import AttemptRecord

#: Samples kept for percentiles (recent behaviour, bounded memory).
WINDOW = 200
#: Finished races kept for a monitor client's snapshot (the dashboard's history).
RECENT_RACES = 200
#: Weight of a new sample in the reported decaying means (about the last 20 races).
EWMA_ALPHA = 0.1
#: TTFT at which speed scores 0.5 (a typical hosted model's first token).
REF_TTFT_S = 0.5
#: Seconds for stale knowledge to lose 63% of its pull away from neutral.
STALE_S = 3600.0
NEUTRAL = 0.5
#: The score's weights (see the module docstring); they sum to 1.
#: Decay is applied when at least this much time passed since the last step.
DECAY_STEP_S = 1.0
W_RELIABILITY = 0.35
W_WIN_RATE = 0.15
W_SPEED = 0.50
#: Pseudo-observations of 0.5 behind the rates, and their slowest learning rate.
RATE_PRIOR = 3.0
RATE_ALPHA_MIN = 0.05
#: The same for speed: no prior, and about the last 10 samples.
SPEED_PRIOR = 0.0
SPEED_ALPHA_MIN = 0.1

#: Counters that add up across processes (``performance_file`` merges them).
COUNTERS = (
    "races",
    "wins",
    "losses",
    "cancellations",
    "answered",
    "output_chars",
    "input_tokens",
    "output_tokens",
    # Cost at the configured prices, in nano-USD so it adds up exactly (issue 15).
    "cost_nusd",
    "wasted_nusd",
)


@frozen(kw_only=True)
class ProviderStats:
    """A snapshot of one ``provider/model``'s record (see :meth:`Engine.stats`).

    ``races`` counts attempts started; ``losses`` those that answered (or were
    cancelled) while another won; ``failures`` maps error kinds (``http``,
    ``timeout``, ...) to counts. Latencies are milliseconds: ``ttft_*`` from
    the attempt's start to its first token, ``latency_*`` from its start to
    the end of its answer (winners only). ``score`` is in [0, 1] (module
    docstring), ``score_parts`` its three estimates. ``cooldown_until`` is
    the wall-clock end of a cooldown (past: awaiting its trial race), ``None``
    when the provider races as usual.
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
    cost_usd: float = 0.0  # every attempt's cost at its prices; wasted: the attempts that did not win
    wasted_cost_usd: float = 0.0

    @property
    def win_rate(self) -> float:
        return self.wins / self.races if self.races else 0.0

    @property
    def failure_count(self) -> int:
        return sum(self.failures.values())


@frozen(slots=True)
class Observation:
    """One attempt as the tracker learns from it.

    ``status``: ``won``, ``lost``, ``failed``, ``timeout`` (no token before the
    race's deadline), ``interrupted`` (won, then broke mid-stream) or
    ``cancelled``. ``waited_ms`` is how long a cancelled attempt had waited
    without a token (a lower bound of its TTFT). ``informative`` is false for
    cancellations the caller caused (an abandoned race): they say nothing
    about the provider.
    """

    ts: float
    status: str
    ttft_ms: float | None = None
    latency_ms: float | None = None
    waited_ms: float | None = None
    error_kind: str | None = None
    retry_after: float | None = None
    informative: bool = True
    output_chars: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_nusd: int = 0
    wasted_nusd: int = 0


def observe(event: RaceFinished, a: AttemptRecord, now: float) -> Observation:
    """The observation one attempt record of a finished race makes."""
    status: str = a.status
    if status == "cancelled" and a.error_kind == "timeout":
        status = "timeout"
    elif status == "won" and event.outcome == "interrupted":
        status = "interrupted"
    latency = None
    tokens_in = tokens_out = 0
    if a.status == "won":
        if event.total_ms is not None and a.started_ms is not None:
            latency = event.total_ms - a.started_ms
        if event.usage:
            tokens_in = event.usage.get("input_tokens") or 0
            tokens_out = event.usage.get("output_tokens") or 0
    waited = None
    if a.ttft_ms is None and a.ended_ms is not None and a.started_ms is not None:
        waited = a.ended_ms - a.started_ms
    return Observation(
        ts=now,
        status=status,
        ttft_ms=a.ttft_ms,
        latency_ms=latency,
        waited_ms=waited,
        error_kind=a.error_kind,
        retry_after=a.retry_after,
        informative=event.outcome != "abandoned",
        output_chars=a.output_chars,
        input_tokens=tokens_in,
        output_tokens=tokens_out,
        cost_nusd=round((a.cost_usd or 0.0) * 1e9),
        wasted_nusd=0 if a.status == "won" else round((a.cost_usd or 0.0) * 1e9),
    )


_FAILED = frozenset({"failed", "timeout", "interrupted"})


def speed_of(ttft_ms: float) -> float:
    """The speed sample of one TTFT: ``REF / (REF + ttft_s)``, in (0, 1]."""
    return REF_TTFT_S / (REF_TTFT_S + max(0.0, ttft_ms) / 1000)


def _ewma(old: float | None, sample: float) -> float:
    return sample if old is None else old + EWMA_ALPHA * (sample - old)


def _step(x: float, n: float, sample: float, prior: float, alpha_min: float) -> tuple[float, float]:
    alpha = 1.0 / (n + prior + 1.0)
    if alpha < alpha_min:  # (not max(): this runs for every attempt of every race)
        alpha = alpha_min
    return x + alpha * (sample - x), n + 1.0


def percentile(samples: Iterable[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) of ``samples`` by nearest rank; ``None`` if empty."""
    return _ranked(sorted(samples), q)


def _ranked(ordered: Sequence[float], q: float) -> float | None:
    if not ordered:
        return None
    rank = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return float(ordered[rank])


@define(slots=True)
class Record:
    """Everything known about one ``provider/model`` (internal; see :class:`ProviderStats`)."""

    provider: str = ""
    model: str = ""
    races: int = 0
    wins: int = 0
    losses: int = 0
    cancellations: int = 0
    answered: int = 0
    output_chars: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_nusd: int = 0
    wasted_nusd: int = 0
    failures: dict[str, int] = field(factory=dict)
    ttft: deque[float] = field(factory=lambda: deque(maxlen=WINDOW))
    latency: deque[float] = field(factory=lambda: deque(maxlen=WINDOW))
    ttft_mean: float | None = None
    latency_mean: float | None = None
    reliability: float = NEUTRAL
    win_rate: float = NEUTRAL
    speed: float = NEUTRAL
    n_reliability: float = 0.0
    n_win_rate: float = 0.0
    n_speed: float = 0.0
    updated: float | None = None
    last_seen: float | None = None
    # What performance_file already holds of this record (see _persist.py).
    saved: dict[str, int] = field(factory=dict)
    saved_failures: dict[str, int] = field(factory=dict)
    pending: deque[tuple[int, Observation]] = field(factory=lambda: deque(maxlen=WINDOW))
    # The sample windows again, kept sorted (for percentiles).
    _ttft_sorted: list[float] = field(factory=list)
    _latency_sorted: list[float] = field(factory=list)

    # ----------------------------------------------------------- learning

    def count(self, obs: Observation) -> None:
        """Add one observation to the counters."""
        self.races += 1
        self.output_chars += obs.output_chars
        self.input_tokens += obs.input_tokens
        self.output_tokens += obs.output_tokens
        self.cost_nusd += obs.cost_nusd
        self.wasted_nusd += obs.wasted_nusd
        if obs.ttft_ms is not None:
            self.answered += 1
        status = obs.status
        if status == "won":
            self.wins += 1
        elif status in _FAILED:
            kind = "timeout" if status == "timeout" else (obs.error_kind or "error")
            self.failures[kind] = self.failures.get(kind, 0) + 1
            if status == "interrupted":
                self.wins += 1
        else:
            self.losses += 1
            if status == "cancelled":
                self.cancellations += 1

    def learn(self, obs: Observation) -> None:
        """Fold one observation into the samples, means and score estimates."""
        self.decay_to(obs.ts)
        if self.last_seen is None or obs.ts > self.last_seen:
            self.last_seen = obs.ts
        status = obs.status
        if obs.ttft_ms is not None:
            _push(self.ttft, self._ttft_sorted, obs.ttft_ms)
            self.ttft_mean = _ewma(self.ttft_mean, obs.ttft_ms)
            self.speed, self.n_speed = _step(
                self.speed, self.n_speed, speed_of(obs.ttft_ms), SPEED_PRIOR, SPEED_ALPHA_MIN
            )
        elif obs.waited_ms is not None and (status == "timeout" or (status == "cancelled" and obs.informative)):
            bound = speed_of(obs.waited_ms)
            if bound < self.speed:  # it waited longer than its estimate implies
                self.speed, self.n_speed = _step(self.speed, self.n_speed, bound, SPEED_PRIOR, SPEED_ALPHA_MIN)
        if obs.latency_ms is not None:
            _push(self.latency, self._latency_sorted, obs.latency_ms)
            self.latency_mean = _ewma(self.latency_mean, obs.latency_ms)
        if status in _FAILED:
            rel, won = 0.0, 0.0
        elif obs.ttft_ms is not None:
            rel, won = 1.0, 1.0 if status == "won" else 0.0
        elif obs.informative:
            rel, won = math.nan, 0.0  # stopped before a token: a loss, no word on reliability
        else:
            return
        if not math.isnan(rel):
            self.reliability, self.n_reliability = _step(
                self.reliability, self.n_reliability, rel, RATE_PRIOR, RATE_ALPHA_MIN
            )
        self.win_rate, self.n_win_rate = _step(self.win_rate, self.n_win_rate, won, RATE_PRIOR, RATE_ALPHA_MIN)

    def decay_to(self, now: float) -> None:
        """Relax the estimates toward neutral for the time since the last update."""
        if self.updated is None:
            self.updated = now
            return
        if now - self.updated < DECAY_STEP_S:
            # Decay is exp(-age/STALE_S): applying it later for the whole age
            # is the same as applying it now and then, so skip the tiny steps.
            return
        d = _decay(now - self.updated)
        if d < 1.0:
            self.reliability = NEUTRAL + (self.reliability - NEUTRAL) * d
            self.win_rate = NEUTRAL + (self.win_rate - NEUTRAL) * d
            self.speed = NEUTRAL + (self.speed - NEUTRAL) * d
            self.n_reliability *= d
            self.n_win_rate *= d
            self.n_speed *= d
        self.updated = max(self.updated, now)

    # ----------------------------------------------------------- reading

    def parts(self, now: float) -> dict[str, float]:
        """The three estimates as of ``now`` (decayed, not stored)."""
        d = 1.0 if self.updated is None else _decay(now - self.updated)
        if d == 1.0:
            return {"reliability": self.reliability, "win_rate": self.win_rate, "speed": self.speed}
        return {
            "reliability": NEUTRAL + (self.reliability - NEUTRAL) * d,
            "win_rate": NEUTRAL + (self.win_rate - NEUTRAL) * d,
            "speed": NEUTRAL + (self.speed - NEUTRAL) * d,
        }

    def score(self, now: float) -> float:
        # parts() without the dict: this runs for every participant of every race.
        raw = W_RELIABILITY * self.reliability + W_WIN_RATE * self.win_rate + W_SPEED * self.speed
        if self.updated is not None and now > self.updated:
            raw = NEUTRAL + (raw - NEUTRAL) * _decay(now - self.updated)  # the weights sum to 1
        return min(1.0, max(0.0, raw))

    def ttft_sorted(self) -> list[float]:
        return self._ttft_sorted

    def latency_sorted(self) -> list[float]:
        return self._latency_sorted

    def counters(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in COUNTERS}

    # ------------------------------------------------------- persistence

    def add_counts(self, counts: dict[str, int], failures: dict[str, int]) -> None:
        for name, n in counts.items():
            setattr(self, name, getattr(self, name) + n)
        for kind, n in failures.items():
            self.failures[kind] = self.failures.get(kind, 0) + n

    def to_json(self) -> dict[str, Any]:
        """Plain data for ``performance_file`` (schema: ``_persist.py``)."""
        return {
            "provider": self.provider,
            "model": self.model,
            **self.counters(),
            "failures": dict(self.failures),
            "ttft_ms": list(self.ttft),
            "latency_ms": list(self.latency),
            "ttft_mean_ms": self.ttft_mean,
            "latency_mean_ms": self.latency_mean,
            "estimates": {
                "reliability": self.reliability,
                "win_rate": self.win_rate,
                "speed": self.speed,
                "n_reliability": self.n_reliability,
                "n_win_rate": self.n_win_rate,
                "n_speed": self.n_speed,
                "updated": self.updated,
            },
            "last_seen": self.last_seen,
        }

    @classmethod
    def from_json(cls, data: Any) -> Record:
        """Parse :meth:`to_json`'s output; raises ``ValueError`` when it is not that."""
        if not isinstance(data, dict):
            raise ValueError("a provider record must be an object")
        r = cls(provider=_str(data, "provider"), model=_str(data, "model"))
        for name in COUNTERS:
            setattr(r, name, _count(data.get(name, 0), name))
        failures = data.get("failures", {})
        if not isinstance(failures, dict):
            raise ValueError("failures must be an object")
        r.failures = {str(k): _count(v, f"failures.{k}") for k, v in failures.items()}
        for sample in _samples(data.get("ttft_ms", []), "ttft_ms"):
            _push(r.ttft, r._ttft_sorted, sample)
        for sample in _samples(data.get("latency_ms", []), "latency_ms"):
            _push(r.latency, r._latency_sorted, sample)
        r.ttft_mean = _number(data.get("ttft_mean_ms"), "ttft_mean_ms", optional=True)
        r.latency_mean = _number(data.get("latency_mean_ms"), "latency_mean_ms", optional=True)
        est = data.get("estimates", {})
        if not isinstance(est, dict):
            raise ValueError("estimates must be an object")
        for name in ("reliability", "win_rate", "speed"):
            value = _number(est.get(name, NEUTRAL), name)
            setattr(r, name, min(1.0, max(0.0, value)))
        for name in ("n_reliability", "n_win_rate", "n_speed"):
            setattr(r, name, max(0.0, _number(est.get(name, 0.0), name)))
        r.updated = _number(est.get("updated"), "updated", optional=True)
        r.last_seen = _number(data.get("last_seen"), "last_seen", optional=True)
        return r


def _push(window: deque[float], ordered: list[float], sample: float) -> None:
    """Append ``sample`` to ``window`` and keep ``ordered`` its sorted copy."""
    if len(window) == window.maxlen:
        del ordered[bisect_left(ordered, window[0])]  # the sample the append evicts
    window.append(sample)
    insort(ordered, sample)


def _decay(age_s: float) -> float:
    return math.exp(-max(0.0, age_s) / STALE_S)


def _str(data: dict[str, Any], key: str) -> str:
    value = data.get(key, "")
    if not isinstance(value, str):
        raise ValueError(f"{key} must be a string")
    return value


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a count, not {value!r}")
    return value


def _number(value: Any, name: str, *, optional: bool = False) -> Any:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a number, not {value!r}")
    return float(value)


def _samples(value: Any, name: str) -> list[float]:
    if not isinstance(value, list):
        raise ValueError(f"{name} must be a list")
    return [_number(v, name) for v in value[-WINDOW:]]


@frozen(kw_only=True)
class Change:
    """One record's news since the last save: counter deltas and recent observations."""

    provider: str
    model: str
    counts: dict[str, int]
    failures: dict[str, int]
    observations: tuple[Observation, ...]
    # Where the save stands once written (see Tracker.commit).
    now_counts: dict[str, int]
    now_failures: dict[str, int]
    last_seq: int


class Tracker:
    """Learns per ``provider/model`` from finished races; scores them; benches failing ones.

    ``clock`` returns wall-clock seconds (tests pass a fake one).
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._records: dict[str, Record] = {}
        self.clock = clock
        self.cooldowns = Cooldowns(lambda: self.clock())
        self.recent: deque[RaceFinished] = deque(maxlen=RECENT_RACES)
        self._seq = 0
        #: Called before the statistics are read out (snapshot, changes to save): the
        #: engine learns the races it batched (``Engine._race_finished``).
        self.settle: Callable[[], None] = lambda: None

    # ----------------------------------------------------------- learning

    def record(self, event: RaceFinished) -> tuple[ProviderCooldown | ProviderRecovered, ...]:
        """Fold one finished race into the statistics.

        Returns the cooldown events it caused (the engine emits them after
        the ``race_finished`` event).
        """
        now = self.clock()
        self.recent.append(event)
        news: list[ProviderCooldown | ProviderRecovered] = []
        cooldowns = self.cooldowns
        for a in event.attempts:
            label = a.label
            if a.status == "not_started":
                cooldowns.no_verdict(label, event.race_id)
                continue
            obs = observe(event, a, now)
            r = self._records.get(label)
            if r is None:
                r = self._records[label] = Record(provider=a.provider, model=a.model)
            r.count(obs)
            r.learn(obs)
            self._seq += 1
            r.pending.append((self._seq, obs))
            if obs.status in _FAILED:
                retry = obs.retry_after if obs.error_kind == "rate_limited" else None
                news_item = cooldowns.failed(label, a.provider, a.model, event.race_id, retry)
            elif obs.ttft_ms is not None:
                news_item = cooldowns.answered(label, a.provider, a.model, event.race_id)
            else:
                cooldowns.no_verdict(label, event.race_id)
                news_item = None
            if news_item is not None:
                news.append(news_item)
        return tuple(news)

    # ------------------------------------------------------------ queries

    def score(self, label: str) -> float:
        """The score of ``label`` in [0, 1]; 0.5 for one never seen."""
        r = self._records.get(label)
        return NEUTRAL if r is None else r.score(self.clock())

    def ttft_percentile(self, label: str, q: float) -> float | None:
        """The ``q`` quantile of recent TTFTs of ``label`` in ms, if any were seen."""
        r = self._records.get(label)
        return None if r is None else _ranked(r.ttft_sorted(), q)

    def mean_output_tokens(self, label: str) -> float | None:
        """Output tokens per answer ``label`` reported as a winner, if any (the budget guard's estimate)."""
        r = self._records.get(label)
        return r.output_tokens / r.wins if r is not None and r.wins and r.output_tokens else None

    def admit(self, labels: Sequence[str], race_id: str) -> list[bool] | None:
        """Who of a race's participants may race (see :meth:`Cooldowns.admit`)."""
        return self.cooldowns.admit(labels, race_id)

    def benched(self, provider: str, model: str) -> AttemptRecord:
        """The attempt record of a participant that sits a race out (index set by the engine)."""
        label = f"{provider}/{model}"
        until = self.cooldowns.until(label)
        reason = {"rate_limited": "rate limited"}.get(self.cooldowns.reason(label) or "", "failing")
        left = 0.0 if until is None else until - self.clock()
        why = f"cooling down ({reason}), {left:.1f} s left" if left > 0 else "cooling down, another race has its trial"
        return AttemptRecord(
            index=0, provider=provider, model=model, status="not_started", error=why, error_kind="cooldown"
        )

    def snapshot(self) -> dict[str, ProviderStats]:
        """Every ``provider/model``'s statistics now."""
        self.settle()
        now = self.clock()
        return {label: self._stats(label, r, now) for label, r in self._records.items()}

    def labels(self) -> list[str]:
        return list(self._records)

    def _stats(self, label: str, r: Record, now: float) -> ProviderStats:
        ttft, latency = r.ttft_sorted(), r.latency_sorted()
        parts = r.parts(now)
        return ProviderStats(
            races=r.races,
            wins=r.wins,
            losses=r.losses,
            cancellations=r.cancellations,
            failures=dict(r.failures),
            ttft_p50_ms=_ranked(ttft, 0.5),
            ttft_p95_ms=_ranked(ttft, 0.95),
            ttft_mean_ms=r.ttft_mean,
            latency_p50_ms=_ranked(latency, 0.5),
            latency_p95_ms=_ranked(latency, 0.95),
            latency_mean_ms=r.latency_mean,
            output_chars=r.output_chars,
            score=r.score(now),
            last_seen=r.last_seen,
            cooldown_until=self.cooldowns.until(label),
            provider=r.provider,
            model=r.model,
            answered=r.answered,
            input_tokens=r.input_tokens,
            output_tokens=r.output_tokens,
            score_parts=parts,
            consecutive_failures=self.cooldowns.consecutive_failures(label),
            cooldown_reason=self.cooldowns.reason(label),
            cost_usd=r.cost_nusd / 1e9,
            wasted_cost_usd=r.wasted_nusd / 1e9,
        )

    # -------------------------------------------------------- persistence

    def load(self, records: dict[str, Record]) -> None:
        """Start from ``records`` (read from ``performance_file``), which count as saved."""
        for label, r in records.items():
            r.saved, r.saved_failures = r.counters(), dict(r.failures)
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


def merge_records(current: dict[str, Record], changes: dict[str, Change]) -> dict[str, Record]:
    """``current`` (read from the file just now) with ``changes`` folded in.

    Counters add up (so two processes never lose each other's counts);
    samples, means and estimates replay this process's observations on top
    of what the file holds.
    """
    merged = dict(current)
    for label, ch in changes.items():
        r = merged.get(label)
        if r is None:
            r = merged[label] = Record(provider=ch.provider, model=ch.model)
        r.add_counts(ch.counts, ch.failures)
        for obs in ch.observations:
            r.learn(obs)
    return merged
