"""OpenTelemetry for races: GenAI spans and metrics, built from the engine's events.

The ``otel`` extra (``opentelemetry-api``) only; the application configures
the SDK and its exporters, raceway never does. ``open_engine`` calls
:func:`instrument`, which subscribes a :class:`Telemetry` listener only when
the application has set a real tracer or meter provider: with the API's
defaults (the proxy providers, no SDK) — or without the extra, or without the
application having imported OpenTelemetry at all — nothing is subscribed,
nothing is imported, and the race path is exactly as without telemetry (the
engine builds no events for nobody).

Per race, at its ``race_finished`` event (times from the events, so spans
carry the race's own clock, anchored at the wall time it started):

* a span ``chat {virtual_model}`` (kind CLIENT), a child of the context the
  caller had when it opened the race (``race_started`` is emitted in the
  caller's task), with ``gen_ai.operation.name`` ``chat``,
  ``gen_ai.request.model`` (the virtual model), ``gen_ai.provider.name`` and
  ``gen_ai.response.model`` (the winner's configured provider name and its
  model), ``gen_ai.usage.*`` of the winner's answer,
  ``gen_ai.response.finish_reasons``, ``gen_ai.response.time_to_first_chunk``
  (the caller's TTFT, s), ``raceway.strategy``, ``raceway.winner``
  (provider/model), ``raceway.attempts`` (attempts started),
  ``raceway.race_id``, ``raceway.outcome`` and ``raceway.cost_usd``; on
  failure, status ERROR and ``error.type`` (``AllProvidersFailedError``,
  ``RaceTimeoutError``, ``StreamInterruptedError``). Attempts that failed
  while another answered are handled errors: the race span stays unset.
* a child span ``chat {model}`` (kind CLIENT) per started attempt with
  ``gen_ai.provider.name``, ``gen_ai.request.model``,
  ``raceway.attempt.status`` (won/lost/failed/cancelled),
  ``raceway.attempt.index``, its usage, finish reason, cost, TTFT (the
  attribute ``gen_ai.response.time_to_first_chunk`` and an event
  ``raceway.first_token`` at that instant); a failed one has status ERROR,
  ``error.type`` = its error kind and the error text as description.
* metrics, with the conventions' attributes and bucket boundaries:
  ``gen_ai.client.operation.duration`` (s, every race, ``error.type`` on
  failure), ``gen_ai.client.token.usage`` (``{token}``, the winner's input
  and output when reported, ``gen_ai.token.type``),
  ``gen_ai.client.operation.time_to_first_chunk`` (s, races that answered);
  and raceway's own counters ``raceway.attempts`` (``{attempt}``, every
  participant by ``raceway.attempt.status``), ``raceway.tokens.wasted``
  (``{token}``, output the losers streamed: reported, else estimated) and
  ``raceway.cost`` (``{USD}``, by ``raceway.attempt.status``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from ._cost import output_tokens, race_cost
from ._events import RaceFinished, RaceStarted

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

    from ._result import AttemptRecord

SCOPE = "raceway"
#: ``gen_ai.client.operation.duration`` and ``time_to_first_chunk`` (seconds).
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
#: ``gen_ai.client.token.usage`` (tokens).
TOKEN_BUCKETS = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)  # fmt: skip
#: ``error.type`` of a race span by ``race_finished.outcome``.
RACE_ERRORS = {
    "failed": "AllProvidersFailedError",
    "timeout": "RaceTimeoutError",
    "interrupted": "StreamInterruptedError",
}
#: Races started and not yet finished that the listener remembers at most.
MAX_OPEN_RACES = 100_000


def configured_providers() -> tuple[TracerProvider | None, MeterProvider | None]:
    """The application's tracer and meter providers, ``None`` for each left at the API's default.

    Imports nothing unless the application already imported OpenTelemetry
    (a configured SDK implies it) or names a provider in the environment.
    """
    env = os.environ
    if (
        "opentelemetry.trace" not in sys.modules
        and "opentelemetry.metrics" not in sys.modules
        and "OTEL_PYTHON_TRACER_PROVIDER" not in env
        and "OTEL_PYTHON_METER_PROVIDER" not in env
    ):
        return None, None
    try:
        from opentelemetry import metrics, trace
        from opentelemetry.metrics import _internal as metrics_internal
    except ImportError:
        return None, None
    tp: TracerProvider | None = trace.get_tracer_provider()
    if isinstance(tp, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        tp = None
    mp: MeterProvider | None = metrics.get_meter_provider()
    proxy = getattr(metrics_internal, "_ProxyMeterProvider", metrics.NoOpMeterProvider)
    if isinstance(mp, proxy | metrics.NoOpMeterProvider):
        mp = None
    return tp, mp


class Subscribable(Protocol):
    """What instrumentation needs of an engine (``raceway.Engine`` is one): its events."""

    def subscribe(self, listener: Callable[[Any], None]) -> Callable[[], None]: ...


def instrument(
    engine: Subscribable,
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> Callable[[], None] | None:
    """Subscribe OpenTelemetry instrumentation to ``engine``; returns the unsubscribe function.

    Without providers given, the application's global ones are used, and
    when it configured none nothing is subscribed (``None`` is returned).
    """
    if tracer_provider is None and meter_provider is None:
        tracer_provider, meter_provider = configured_providers()
        if tracer_provider is None and meter_provider is None:
            return None
    return engine.subscribe(Telemetry(tracer_provider, meter_provider))


class Telemetry:
    """The event listener that turns each finished race into spans and metric records."""

    def __init__(self, tracer_provider: TracerProvider | None, meter_provider: MeterProvider | None) -> None:
        from opentelemetry import context, trace
        from opentelemetry.trace import SpanKind, Status, StatusCode

        from . import __version__

        self._trace = trace
        self._get_context = context.get_current
        self._client = SpanKind.CLIENT
        self._status = Status
        self._status_error = StatusCode.ERROR
        self._tracer = None if tracer_provider is None else tracer_provider.get_tracer(SCOPE, __version__)
        self._open: dict[str, tuple[Any, int]] = {}  # race_id -> (caller's context, start in ns)
        self._metrics = meter_provider is not None
        if meter_provider is not None:
            meter = meter_provider.get_meter(SCOPE, __version__)
            self._duration = meter.create_histogram(
                "gen_ai.client.operation.duration",
                unit="s",
                description="GenAI operation duration.",
                explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
            )
            self._tokens = meter.create_histogram(
                "gen_ai.client.token.usage",
                unit="{token}",
                description="Number of input and output tokens used.",
                explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
            )
            self._ttfc = meter.create_histogram(
                "gen_ai.client.operation.time_to_first_chunk",
                unit="s",
                description="Time to receive the first chunk of the winner's answer, from the race's start.",
                explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
            )
            self._attempts = meter.create_counter(
                "raceway.attempts", unit="{attempt}", description="Participants of races, by how they fared."
            )
            self._wasted = meter.create_counter(
                "raceway.tokens.wasted", unit="{token}", description="Output tokens streamed by attempts that lost."
            )
            self._cost = meter.create_counter(
                "raceway.cost", unit="{USD}", description="What attempts cost at their configured prices."
            )

    def __call__(self, event: Any) -> None:
        kind = type(event)
        if kind is RaceStarted:
            if self._tracer is None:  # metrics alone need nothing from the start
                return
            if len(self._open) >= MAX_OPEN_RACES:  # never finished (cannot happen): forget the oldest
                del self._open[next(iter(self._open))]
            self._open[event.race_id] = (self._get_context(), int(event.ts * 1e9))
        elif kind is RaceFinished:
            self._finished(event)

    def _finished(self, event: RaceFinished) -> None:
        opened = self._open.pop(event.race_id, None)
        if opened is None:  # subscribed while the race ran
            parent, t0 = None, int((event.ts - event.elapsed_ms / 1000) * 1e9)
        else:
            parent, t0 = opened
        records = event.attempts
        winner = _winner(event)
        error_type = RACE_ERRORS.get(event.outcome)
        base: dict[str, Any] = {"gen_ai.operation.name": "chat", "gen_ai.request.model": event.virtual_model}
        if winner is not None:
            base["gen_ai.provider.name"] = winner.provider
            base["gen_ai.response.model"] = winner.model
        tokens_in, tokens_out = _usage(event, winner)
        if self._tracer is not None:
            self._spans(event, parent, t0, winner, base, error_type, tokens_in, tokens_out)
        if not self._metrics:
            return
        seconds = event.elapsed_ms / 1000
        self._duration.record(seconds, base if error_type is None else {**base, "error.type": error_type})
        if winner is not None:
            if tokens_in is not None:
                self._tokens.record(tokens_in, {**base, "gen_ai.token.type": "input"})
            if tokens_out is not None:
                self._tokens.record(tokens_out, {**base, "gen_ai.token.type": "output"})
            if event.ttft_ms is not None:
                self._ttfc.record(event.ttft_ms / 1000, base)
        for r in records:
            attrs: dict[str, Any] = {
                "gen_ai.provider.name": r.provider,
                "gen_ai.request.model": r.model,
                "raceway.attempt.status": r.status,
            }
            if r.cost_usd:
                self._cost.add(r.cost_usd, attrs)
            if r.error_kind is not None:
                attrs["error.type"] = r.error_kind
            self._attempts.add(1, attrs)
            if r.status in ("lost", "cancelled") and r is not winner:
                wasted = output_tokens(r)
                if wasted:
                    self._wasted.add(
                        wasted, {"gen_ai.provider.name": r.provider, "gen_ai.request.model": r.model}
                    )

    def _spans(
        self,
        event: RaceFinished,
        parent: Any,
        t0: int,
        winner: AttemptRecord | None,
        base: dict[str, Any],
        error_type: str | None,
        tokens_in: int | None,
        tokens_out: int | None,
    ) -> None:
        assert self._tracer is not None
        records = event.attempts
        attrs: dict[str, Any] = {
            **base,
            "raceway.strategy": event.strategy,
            "raceway.race_id": event.race_id,
            "raceway.outcome": event.outcome,
            "raceway.attempts": sum(r.started_ms is not None for r in records),
        }
        if winner is not None:
            attrs["raceway.winner"] = winner.label
            if winner.finish_reason is not None:
                attrs["gen_ai.response.finish_reasons"] = (winner.finish_reason,)
            _usage_attributes(attrs, winner, tokens_in, tokens_out)
        if event.ttft_ms is not None:
            attrs["gen_ai.response.time_to_first_chunk"] = event.ttft_ms / 1000
        cost = race_cost(records)
        if cost is not None:
            attrs["raceway.cost_usd"] = cost
        if error_type is not None:
            attrs["error.type"] = error_type
        span = self._tracer.start_span(
            f"chat {event.virtual_model}", context=parent, kind=self._client, attributes=attrs, start_time=t0
        )
        if error_type is not None:
            span.set_status(self._status(self._status_error, event.error))
        inside = self._trace.set_span_in_context(span, parent)
        end = t0 + int(event.elapsed_ms * 1e6)
        for r in records:
            if r.started_ms is None:
                continue
            start = t0 + int(r.started_ms * 1e6)
            a: dict[str, Any] = {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": r.provider,
                "gen_ai.request.model": r.model,
                "raceway.attempt.status": r.status,
                "raceway.attempt.index": r.index,
            }
            if r.ttft_ms is not None:
                a["gen_ai.response.model"] = r.model
                a["gen_ai.response.time_to_first_chunk"] = r.ttft_ms / 1000
            if r.finish_reason is not None:
                a["gen_ai.response.finish_reasons"] = (r.finish_reason,)
            if r.usage is not None:
                _usage_attributes(a, r, r.usage.input_tokens, r.usage.output_tokens)
            if r.cost_usd is not None:
                a["raceway.cost_usd"] = r.cost_usd
                a["raceway.cost_estimated"] = r.cost_estimated
            failed = r.status == "failed"
            if failed:
                a["error.type"] = r.error_kind or "_OTHER"
            child = self._tracer.start_span(
                f"chat {r.model}", context=inside, kind=self._client, attributes=a, start_time=start
            )
            if r.ttft_ms is not None:
                child.add_event("raceway.first_token", timestamp=start + int(r.ttft_ms * 1e6))
            if failed:
                child.set_status(self._status(self._status_error, r.error))
            child.end(end_time=end if r.ended_ms is None else t0 + int(r.ended_ms * 1e6))
        span.end(end_time=end)


def _winner(event: RaceFinished) -> AttemptRecord | None:
    """The record of the attempt that won (a failover's second record when it won)."""
    if event.winner is None:
        return None
    for r in event.attempts:
        if r.status == "won":
            return r
    for r in event.attempts:  # an interrupted winner is recorded as failed
        if r.index == event.winner and r.ttft_ms is not None:
            return r
    return None


def _usage(event: RaceFinished, winner: AttemptRecord | None) -> tuple[int | None, int | None]:
    """The winner's reported input and output tokens (``None`` each when not reported)."""
    if winner is not None and winner.usage is not None:
        return winner.usage.input_tokens, winner.usage.output_tokens
    if event.usage:
        return event.usage.get("input_tokens"), event.usage.get("output_tokens")
    return None, None


def _usage_attributes(attrs: dict[str, Any], r: AttemptRecord, tokens_in: int | None, tokens_out: int | None) -> None:
    if tokens_in is not None:
        attrs["gen_ai.usage.input_tokens"] = tokens_in
    if tokens_out is not None:
        attrs["gen_ai.usage.output_tokens"] = tokens_out
    u = r.usage
    if u is not None:
        if u.cached_input_tokens is not None:
            attrs["gen_ai.usage.cache_read.input_tokens"] = u.cached_input_tokens
        if u.reasoning_tokens is not None:
            attrs["gen_ai.usage.reasoning.output_tokens"] = u.reasoning_tokens
