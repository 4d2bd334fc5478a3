"""``ProviderStats``: one ``provider/model``'s record as callers, the monitor and ``raceway stats`` see it."""

from __future__ import annotations

from attrs import field, frozen

from ._cooldown import Cooldowns
from ._record import Record


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
    cost_usd: float = 0.0  # every attempt's cost at its prices; wasted: the attempts that did not win
    wasted_cost_usd: float = 0.0
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


def stats_of(label: str, r: Record, now: float, this_run: bool, cooldowns: Cooldowns) -> ProviderStats:
    """``r`` as a :class:`ProviderStats` at ``now`` (``this_run``: counters since it was loaded)."""
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
        cooldown_until=cooldowns.until(label),
        provider=r.provider,
        model=r.model,
        answered=counts["answered"],
        input_tokens=counts["input_tokens"],
        output_tokens=counts["output_tokens"],
        score_parts=r.parts(now),
        consecutive_failures=cooldowns.consecutive_failures(label),
        cooldown_reason=cooldowns.reason(label),
        ttft_p90_ms=r.ttft.quantile(0.9) if has_ttft else None,
        ttft_samples=round(r.ttft.n_events, 1),
        cost_usd=counts["cost_nusd"] / 1e9,
        wasted_cost_usd=counts["wasted_nusd"] / 1e9,
    )
