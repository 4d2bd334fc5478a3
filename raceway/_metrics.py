"""Seed-style metrics: the Go package's metrics events, made from raceway's events.

The seed reported five kinds of metric: a request, a completed race (its
participants, their latencies and the winner), a provider switch, a success
and an error. :func:`seed_metrics` turns raceway's events into those, as
plain dicts, for code that consumed them::

    async with raceway.open_engine(config) as engine:
        engine.subscribe(raceway.seed_metrics(my_collector))

Each fact is reported exactly once (the seed sent every request twice,
NOTES.md item 11), every dict has ``type``, ``race_id`` and ``ts``, and
latencies are listed per attempt, so one provider listed twice no longer
collides with itself:

==================  ==============================  ==========================================
``type``            when                            other keys
==================  ==============================  ==========================================
``request``         a race starts                   ``virtual_model``, ``strategy``,
                                                    ``participants`` (``provider/model`` each)
``race_complete``   a race ends, however            ``virtual_model``, ``strategy``,
                                                    ``outcome``, ``participants``,
                                                    ``latencies`` (per attempt: ``provider``,
                                                    ``model``, ``status``, ``ttft_ms``),
                                                    ``winner``/``winner_model`` (or ``None``),
                                                    ``ttft_ms``, ``total_ms``
``provider_switch`` a race is won by another        ``virtual_model``, ``previous``,
                    ``provider/model`` than the     ``current`` (``provider/model``)
                    previous race won of that
                    virtual model
``success``         a race delivered an answer      ``virtual_model``, ``provider``, ``model``,
                                                    ``ttft_ms``, ``total_ms``
``error``           a race failed, timed out or     ``virtual_model``, ``outcome``, ``error``
                    its winner broke mid-stream
==================  ==============================  ==========================================

A race the caller abandoned reports ``request`` and ``race_complete`` only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._events import RaceFinished, RaceStarted

MetricsCallback = Callable[[dict[str, Any]], None]


class SeedMetrics:
    """An engine listener that calls ``callback(metric)`` with seed-style metric dicts."""

    def __init__(self, callback: MetricsCallback) -> None:
        self.callback = callback
        self._last_winner: dict[str, str] = {}

    def __call__(self, event: Any) -> None:
        if isinstance(event, RaceStarted):
            self.callback(
                {
                    "type": "request",
                    "race_id": event.race_id,
                    "ts": event.ts,
                    "virtual_model": event.virtual_model,
                    "strategy": event.strategy,
                    "participants": [f"{p}/{m}" for p, m in event.participants],
                }
            )
        elif isinstance(event, RaceFinished):
            self._finished(event)

    def _finished(self, e: RaceFinished) -> None:
        emit = self.callback
        winner = None if e.winner is None else next((a for a in e.attempts if a.index == e.winner), None)
        base = {"race_id": e.race_id, "ts": e.ts, "virtual_model": e.virtual_model}
        emit(
            {
                "type": "race_complete",
                **base,
                "strategy": e.strategy,
                "outcome": e.outcome,
                "participants": [a.label for a in e.attempts if a.status != "not_started"],
                "latencies": [
                    {"provider": a.provider, "model": a.model, "status": a.status, "ttft_ms": a.ttft_ms}
                    for a in e.attempts
                ],
                "winner": None if winner is None else winner.provider,
                "winner_model": None if winner is None else winner.model,
                "ttft_ms": e.ttft_ms,
                "total_ms": e.total_ms,
            }
        )
        if e.outcome == "ok" and winner is not None:
            previous = self._last_winner.get(e.virtual_model)
            self._last_winner[e.virtual_model] = winner.label
            if previous is not None and previous != winner.label:
                emit({"type": "provider_switch", **base, "previous": previous, "current": winner.label})
            emit(
                {
                    "type": "success",
                    **base,
                    "provider": winner.provider,
                    "model": winner.model,
                    "ttft_ms": e.ttft_ms,
                    "total_ms": e.total_ms,
                }
            )
        elif e.outcome in ("failed", "timeout", "interrupted"):
            emit({"type": "error", **base, "outcome": e.outcome, "error": e.error})


def seed_metrics(callback: MetricsCallback) -> SeedMetrics:
    """A listener for :meth:`Engine.subscribe` that reports the seed's metrics to ``callback``."""
    return SeedMetrics(callback)
