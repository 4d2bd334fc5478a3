"""``GET /metrics``: the engine's races in Prometheus text format (prometheus-client).

:class:`GatewayMetrics` subscribes to the engine (``engine.subscribe``) and
turns its events into metrics in a registry of its own (so two gateways in
one process do not share counters):

==========================================  =========  ===========================================
metric                                      type       from
==========================================  =========  ===========================================
``raceway_attempts_total``                  counter    each attempt's record in ``race_finished``
``{provider,model,status}``                            (``won``, ``lost``, ``failed``,
                                                       ``cancelled``, ``not_started``)
``raceway_ttft_seconds{provider,model}``    histogram  every attempt that produced a first token,
                                                       winner or loser (10 ms .. 60 s)
``raceway_races_total``                     counter    ``race_finished`` (``ok``, ``failed``,
``{virtual_model,strategy,outcome}``                   ``timeout``, ``interrupted``, ``abandoned``)
``raceway_races_in_flight``                 gauge      ``race_started`` .. ``race_finished``
``raceway_tokens_total``                    counter    the winner's reported usage
``{provider,model,type}``                              (``input``, ``output``)
``raceway_cost_usd_total``                  counter    each priced attempt's ``cost_usd``
``{provider,model}``
``raceway_wasted_cost_usd_total``           counter    the same, for attempts that did not win
``{provider,model}``
``raceway_provider_cooling_down``           gauge      1 while the tracker benches it (read at
``{provider,model}``                                   scrape time, so a cooldown ends on time)
``raceway_http_requests_in_flight``         gauge      the gateway's requests being answered
``raceway_http_requests_total``             counter    answered requests by route and status
``{route,status}``
==========================================  =========  ===========================================

The listener runs inside the race loop, so it only bumps counters.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .._events import RaceFinished, RaceStarted

if TYPE_CHECKING:
    from .._engine import Engine

#: LLM time to first token spans two decades and more: 10 ms (a cached or
#: local model) to a minute (a long prompt on a loaded reasoning model).
TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class GatewayMetrics:
    """The gateway's metrics registry, fed by engine events and the request loop."""

    def __init__(self, engine: Engine) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        self.attempts = Counter(
            "raceway_attempts", "Attempts by provider/model and how they ended.",
            ("provider", "model", "status"), registry=registry,
        )
        self.ttft = Histogram(
            "raceway_ttft_seconds", "Time from an attempt's start to its first token.",
            ("provider", "model"), buckets=TTFT_BUCKETS, registry=registry,
        )
        self.races = Counter(
            "raceway_races", "Races by virtual model, strategy and outcome.",
            ("virtual_model", "strategy", "outcome"), registry=registry,
        )
        self.races_in_flight = Gauge("raceway_races_in_flight", "Races running now.", registry=registry)
        self.tokens = Counter(
            "raceway_tokens", "Tokens of winning answers as providers report them.",
            ("provider", "model", "type"), registry=registry,
        )
        self.cost = Counter(
            "raceway_cost_usd", "What attempts cost at their prices (USD).", ("provider", "model"), registry=registry,
        )
        self.wasted = Counter(
            "raceway_wasted_cost_usd", "What attempts that did not win cost (USD).", ("provider", "model"),
            registry=registry,
        )
        self.requests_in_flight = Gauge(
            "raceway_http_requests_in_flight", "Gateway HTTP requests being answered now.", registry=registry
        )
        self.requests = Counter(
            "raceway_http_requests", "Gateway HTTP requests answered, by route and status.",
            ("route", "status"), registry=registry,
        )
        registry.register(_Cooldowns(engine))
        self._running: set[str] = set()

    def __call__(self, event: Any) -> None:
        """The engine listener (``engine.subscribe(metrics)``)."""
        kind = type(event)
        if kind is RaceStarted:
            self._running.add(event.race_id)
            self.races_in_flight.inc()
        elif kind is RaceFinished:
            self._finished(event)

    def _finished(self, event: RaceFinished) -> None:
        if event.race_id in self._running:  # (a race begun before we subscribed was never counted)
            self._running.discard(event.race_id)
            self.races_in_flight.dec()
        self.races.labels(event.virtual_model, event.strategy, event.outcome).inc()
        for a in event.attempts:
            self.attempts.labels(a.provider, a.model, a.status).inc()
            if a.ttft_ms is not None:
                self.ttft.labels(a.provider, a.model).observe(a.ttft_ms / 1000)
            if a.cost_usd:
                self.cost.labels(a.provider, a.model).inc(a.cost_usd)
                if a.status != "won":
                    self.wasted.labels(a.provider, a.model).inc(a.cost_usd)
            if a.index == event.winner and event.usage:
                for name in ("input", "output"):
                    n = event.usage.get(f"{name}_tokens")
                    if n:
                        self.tokens.labels(a.provider, a.model, name).inc(n)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Cooldowns(Collector):
    """``raceway_provider_cooling_down``: 1 for each provider/model benched right now."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def describe(self) -> list[Metric]:
        return [GaugeMetricFamily("raceway_provider_cooling_down", "1 while the provider/model sits out races.",
                                  labels=("provider", "model"))]

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "raceway_provider_cooling_down", "1 while the provider/model sits out races.", labels=("provider", "model")
        )
        now = time.time()
        seen = set()
        for label, stats in self._engine.stats().items():
            provider, _, model = label.partition("/")
            seen.add(label)
            until = stats.cooldown_until
            family.add_metric([provider, model], 1.0 if until is not None and until > now else 0.0)
        for info in self._engine.models():  # every participant, before any traffic too
            for label in info.providers:
                if label not in seen:
                    seen.add(label)
                    provider, _, model = label.partition("/")
                    family.add_metric([provider, model], 0.0)
        yield family
