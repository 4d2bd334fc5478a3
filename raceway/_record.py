"""One ``provider/model``'s record: what each attempt teaches, and its plain-data form.

:func:`observe` turns one attempt of a finished race into an
:class:`Observation`; :meth:`Record.learn` folds it into the estimates the
score, the sampled values and the hedge delay come from (the formulas and
why: ``_tracker.py``'s docstring); :meth:`Record.to_json` /
:meth:`Record.from_json` are the ``performance_file`` record (schema:
``_persist.py``); :func:`merge_records` replays one process's observations on
top of what the file holds.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, NamedTuple

from attrs import define, field, frozen

from ._estimate import LatencySketch
from ._events import RaceFinished
from ._result import AttemptRecord

#: Observations kept for the next save to replay (``performance_file``).
JOURNAL = 200
#: Weight of a new sample in the reported decaying means (about the last 20).
EWMA_ALPHA = 0.1
NEUTRAL = 0.5
#: The score's weights (``_tracker.py``); they sum to 1.
W_RELIABILITY = 0.4
W_SPEED = 0.6
#: TTFT at which speed scores 0.5 (a typical hosted model's first token).
REF_TTFT_S = 0.5
#: Seconds for stale knowledge to lose 63 % of its pull away from neutral.
STALE_S = 3600.0
#: Decay is applied when at least this much time passed since the last step.
DECAY_STEP_S = 1.0
#: Pseudo-observations of 0.5 behind reliability, and its slowest learning rate (about the last 20).
RATE_PRIOR = 3.0
RATE_ALPHA_MIN = 0.05
#: Error kinds that say nothing about the provider's reliability: the request asked
#: for what it cannot do, or raceway itself kept it from starting.
NOT_ITS_FAULT = frozenset({"unsupported", "cooldown", "rate_cap", "budget"})

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

_FAILED = frozenset({"failed", "timeout", "interrupted"})


class Observation(NamedTuple):
    """One attempt as the tracker learns from it.

    ``status``: ``won``, ``lost`` (answered, another won), ``failed``,
    ``timeout`` (no token before the race's deadline), ``interrupted`` (won,
    then broke mid-stream) or ``cancelled`` (stopped before its first token:
    censored). ``waited_ms`` is how long an attempt without a token ran.
    """

    ts: float
    status: str
    ttft_ms: float | None = None
    latency_ms: float | None = None
    waited_ms: float | None = None
    error_kind: str | None = None
    retry_after: float | None = None
    output_chars: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_nusd: int = 0
    wasted_nusd: int = 0


def observe(event: RaceFinished, a: AttemptRecord, now: float) -> Observation:
    """The observation one (started) attempt record of a finished race makes."""
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
    cost = 0 if a.cost_usd is None else round(a.cost_usd * 1e9)
    return Observation(
        now, status, a.ttft_ms, latency, waited, a.error_kind, a.retry_after, a.output_chars, tokens_in, tokens_out,
        cost, 0 if a.status == "won" else cost,
    )


def speed_of(ttft_ms: float) -> float:
    """The speed of a TTFT: ``REF / (REF + ttft_s)``, in (0, 1]."""
    return REF_TTFT_S / (REF_TTFT_S + max(0.0, ttft_ms) / 1000)


def decay(age_s: float) -> float:
    """How much of a verdict ``age_s`` seconds old still counts."""
    return math.exp(-max(0.0, age_s) / STALE_S)


@define(slots=True)
class Record:
    """Everything known about one ``provider/model`` (internal; see ``ProviderStats``)."""

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
    ttft: LatencySketch = field(factory=LatencySketch)
    latency: LatencySketch = field(factory=LatencySketch)
    ttft_mean: float | None = None
    latency_mean: float | None = None
    reliability: float = NEUTRAL
    n_reliability: float = 0.0
    # How far speed's estimate may pull the score from neutral: n / (n + 1) for
    # n first tokens seen, shrunk by staleness like every other estimate.
    speed_confidence: float = 0.0
    updated: float | None = None
    last_seen: float | None = None
    # Evidence for exploration: first tokens seen, discounted per race of this
    # tracker since (see Tracker.sample); `info_race`: the race it was last updated at.
    info: float = 0.0
    info_race: int = 0
    # What performance_file already holds of this record (see _persist.py).
    saved: dict[str, int] = field(factory=dict)
    saved_failures: dict[str, int] = field(factory=dict)
    pending: deque[tuple[int, Observation]] = field(factory=lambda: deque(maxlen=JOURNAL))
    # The counters as loaded (for "this run only" views).
    baseline: dict[str, int] = field(factory=dict)
    baseline_failures: dict[str, int] = field(factory=dict)

    # ----------------------------------------------------------- learning

    def count(self, obs: Observation) -> None:
        """Add one observation to the counters. A cancellation is neither a loss nor a failure."""
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
        elif status == "lost":
            self.losses += 1
        elif status == "cancelled":
            self.cancellations += 1
        else:  # failed, timeout, interrupted
            kind = "timeout" if status == "timeout" else (obs.error_kind or "error")
            self.failures[kind] = self.failures.get(kind, 0) + 1
            if status == "interrupted":
                self.wins += 1

    def learn(self, obs: Observation) -> None:
        """Fold one observation into the TTFT and latency estimates and reliability."""
        self.decay_to(obs.ts)
        if self.last_seen is None or obs.ts > self.last_seen:
            self.last_seen = obs.ts
        status = obs.status
        ttft = obs.ttft_ms
        if ttft is not None:
            self.ttft.add(ttft)
            self.ttft_mean = ttft if self.ttft_mean is None else self.ttft_mean + EWMA_ALPHA * (ttft - self.ttft_mean)
            self.speed_confidence = 1.0 / (2.0 - self.speed_confidence)  # n/(n+1) -> (n+1)/(n+2)
        elif status == "cancelled" and obs.waited_ms is not None:
            self.ttft.censor(obs.waited_ms)  # its TTFT is at least this: censored, not a sample
        latency = obs.latency_ms
        if latency is not None:
            self.latency.add(latency)
            old = self.latency_mean
            self.latency_mean = latency if old is None else old + EWMA_ALPHA * (latency - old)
        if status in _FAILED:
            if obs.error_kind in NOT_ITS_FAULT:
                return
            sample = 0.0
        elif ttft is not None:
            sample = 1.0
        else:
            return  # cancelled: it did not end on its own, so it says nothing of reliability
        alpha = 1.0 / (self.n_reliability + RATE_PRIOR + 1.0)
        if alpha < RATE_ALPHA_MIN:  # (not max(): this runs for every attempt of every race)
            alpha = RATE_ALPHA_MIN
        self.reliability += alpha * (sample - self.reliability)
        self.n_reliability += 1.0

    def decay_to(self, now: float) -> None:
        """Relax the estimates toward neutral for the time since the last update."""
        if self.updated is None:
            self.updated = now
            return
        if now - self.updated < DECAY_STEP_S:
            # Decay is exp(-age/STALE_S): applying it later for the whole age
            # is the same as applying it now and then, so skip the tiny steps.
            return
        d = decay(now - self.updated)
        if d < 1.0:
            self.reliability = NEUTRAL + (self.reliability - NEUTRAL) * d
            self.n_reliability *= d
            self.speed_confidence *= d
        self.updated = max(self.updated, now)

    # ----------------------------------------------------------- reading

    def speed(self) -> float:
        """Speed of the median TTFT (a lower bound of it when censoring hides it); neutral if unknown."""
        if self.speed_confidence <= 0.0:
            return NEUTRAL
        median = self.ttft.median()
        return NEUTRAL if median is None else speed_of(median)

    def parts(self, now: float) -> dict[str, float]:
        """The score's two parts as of ``now`` (decayed, not stored)."""
        d = 1.0 if self.updated is None else decay(now - self.updated)
        return {
            "reliability": NEUTRAL + (self.reliability - NEUTRAL) * d,
            "speed": NEUTRAL + self.speed_confidence * (self.speed() - NEUTRAL) * d,
        }

    def score(self, now: float) -> float:
        raw = W_RELIABILITY * (self.reliability - NEUTRAL)
        if self.speed_confidence > 0.0:
            raw += W_SPEED * self.speed_confidence * (self.speed() - NEUTRAL)
        if self.updated is not None and now > self.updated:
            raw *= decay(now - self.updated)
        return min(1.0, max(0.0, NEUTRAL + raw))

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
            "ttft_sketch": self.ttft.to_json(),
            "latency_sketch": self.latency.to_json(),
            "ttft_mean_ms": self.ttft_mean,
            "latency_mean_ms": self.latency_mean,
            "estimates": {
                "reliability": self.reliability,
                "n_reliability": self.n_reliability,
                "speed_confidence": self.speed_confidence,
                "updated": self.updated,
            },
            "last_seen": self.last_seen,
        }

    @classmethod
    def from_json(cls, data: Any) -> Record:
        """Parse :meth:`to_json`'s output (or an older raceway's); raises ``ValueError`` when it is not that."""
        if not isinstance(data, dict):
            raise ValueError("a provider record must be an object")
        r = cls(provider=_str(data, "provider"), model=_str(data, "model"))
        for name in COUNTERS:
            setattr(r, name, _count(data.get(name, 0), name))
        failures = data.get("failures", {})
        if not isinstance(failures, dict):
            raise ValueError("failures must be an object")
        r.failures = {str(k): _count(v, f"failures.{k}") for k, v in failures.items()}
        # Older files hold the recent samples themselves ("ttft_ms": [...]).
        if "ttft_sketch" in data:
            r.ttft = LatencySketch.from_json(data["ttft_sketch"])
        else:
            r.ttft = LatencySketch.of(_samples(data.get("ttft_ms", []), "ttft_ms"))
        if "latency_sketch" in data:
            r.latency = LatencySketch.from_json(data["latency_sketch"])
        else:
            r.latency = LatencySketch.of(_samples(data.get("latency_ms", []), "latency_ms"))
        r.ttft_mean = _number(data.get("ttft_mean_ms"), "ttft_mean_ms", optional=True)
        r.latency_mean = _number(data.get("latency_mean_ms"), "latency_mean_ms", optional=True)
        est = data.get("estimates", {})
        if not isinstance(est, dict):
            raise ValueError("estimates must be an object")
        r.reliability = min(1.0, max(0.0, _number(est.get("reliability", NEUTRAL), "reliability")))
        r.n_reliability = max(0.0, _number(est.get("n_reliability", 0.0), "n_reliability"))
        if "speed_confidence" in est:
            conf = _number(est["speed_confidence"], "speed_confidence")
        else:
            n = max(0.0, _number(est.get("n_speed", 0.0), "n_speed"))
            conf = n / (n + 1.0)
        r.speed_confidence = min(1.0 - 1e-12, max(0.0, conf))
        r.updated = _number(est.get("updated"), "updated", optional=True)
        r.last_seen = _number(data.get("last_seen"), "last_seen", optional=True)
        return r


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
    return [_number(v, name) for v in value[-JOURNAL:]]


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


def merge_records(current: dict[str, Record], changes: dict[str, Change]) -> dict[str, Record]:
    """``current`` (read from the file just now) with ``changes`` folded in.

    Counters add up (so two processes never lose each other's counts); the
    estimates replay this process's observations on top of what the file
    holds.
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
