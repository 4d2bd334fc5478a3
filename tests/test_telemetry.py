"""OpenTelemetry: raceway's races as GenAI spans and metrics, read with the SDK's in-memory exporters.

Races run through the public API on trio's virtual clock, so span times and
metric values are exact. The application's global providers are set by the
``otel`` fixture and put back as they were afterwards (the API sets them once
per process otherwise), so other tests see the globals they expect.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from types import SimpleNamespace
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk", reason="the otel extra and the SDK are not installed")

import trio
import yaml
from opentelemetry import metrics, trace
from opentelemetry.metrics import _internal as metrics_internal
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.util._once import Once

import raceway
from raceway import _telemetry

MSG = [{"role": "user", "content": "hello there"}]
DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92]
TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864]

# ---------------------------------------------------------------- providers

PLANS: dict[str, dict[str, Any]] = {}


async def planned(request: raceway.Request) -> AsyncIterator[raceway.Chunk]:
    """A ``python`` provider acting out ``PLANS[provider]``: fail, hang, or answer with usage."""
    plan = PLANS[request.provider]
    if plan.get("hang"):
        await trio.sleep_forever()
    if "fail_at" in plan:
        await trio.sleep(plan["fail_at"])
        raise ConnectionResetError("connection reset by peer")
    await trio.sleep(plan["ttft"])
    yield raceway.Chunk("hello ")
    await trio.sleep(plan.get("gap", 0.05))
    usage = raceway.Usage(input_tokens=12, output_tokens=2, cached_input_tokens=4)
    yield raceway.Chunk("world", finish_reason="stop", usage=usage)


def config(plans: dict[str, dict[str, Any]], *, strategy: str = "first_wins", **extra: Any) -> raceway.Config:
    PLANS.clear()
    PLANS.update(plans)
    data = {
        "timeout_ms": 5000,
        "grace_period_ms": 0,
        "monitor": {"socket": "off"},
        "performance_file": "off",
        "providers": {
            n: {"type": "python", "callable": "test_telemetry:planned", "model": f"{n}-m"} for n in plans
        },
        "virtual_models": {"v": {"strategy": strategy, "providers": list(plans), **extra}},
    }
    return raceway.loads_config(yaml.safe_dump(data))


# ---------------------------------------------------------------- the SDK


def _pristine() -> tuple[Any, ...]:
    """Put the API's globals back to "no SDK configured"; return what they were."""
    saved = (
        trace._TRACER_PROVIDER,
        trace._TRACER_PROVIDER_SET_ONCE,
        trace._PROXY_TRACER_PROVIDER,
        metrics_internal._METER_PROVIDER,
        metrics_internal._METER_PROVIDER_SET_ONCE,
        metrics_internal._PROXY_METER_PROVIDER,
    )
    trace._TRACER_PROVIDER = None
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace._PROXY_TRACER_PROVIDER = trace.ProxyTracerProvider()
    metrics_internal._METER_PROVIDER = None
    metrics_internal._METER_PROVIDER_SET_ONCE = Once()
    metrics_internal._PROXY_METER_PROVIDER = metrics_internal._ProxyMeterProvider()
    return saved


def _restore(saved: tuple[Any, ...]) -> None:
    (
        trace._TRACER_PROVIDER,
        trace._TRACER_PROVIDER_SET_ONCE,
        trace._PROXY_TRACER_PROVIDER,
        metrics_internal._METER_PROVIDER,
        metrics_internal._METER_PROVIDER_SET_ONCE,
        metrics_internal._PROXY_METER_PROVIDER,
    ) = saved


@pytest.fixture
def no_sdk() -> Iterator[None]:
    saved = _pristine()
    try:
        yield
    finally:
        _restore(saved)


@pytest.fixture
def otel() -> Iterator[SimpleNamespace]:
    """The application's SDK: global tracer and meter providers with in-memory exporters."""
    saved = _pristine()
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    try:
        yield SimpleNamespace(spans=spans, reader=reader, tracer=tracer_provider.get_tracer("app"))
    finally:
        _restore(saved)


def by_name(spans: Any) -> dict[str, ReadableSpan]:
    return {s.name: s for s in spans}


def points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    data = reader.get_metrics_data()
    out: dict[str, list[Any]] = {}
    assert data is not None
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                out[m.name] = [(m.unit, p) for p in m.data.data_points]
    return out


def ns(ms: float) -> int:
    return round(ms * 1e6)


# ---------------------------------------------------------------- spans


async def test_a_race_is_a_client_span_nested_in_the_callers_span(
    otel: SimpleNamespace, autojump_clock: Any
) -> None:
    cfg = config({"fast": {"ttft": 0.1}, "slow": {"ttft": 0.3}})
    async with raceway.open_engine(cfg) as engine:
        with otel.tracer.start_as_current_span("handler") as app:
            result = await engine.complete(MSG, "v")
    spans = by_name(otel.spans.get_finished_spans())
    assert set(spans) == {"handler", "chat v", "chat fast-m", "chat slow-m"}
    race = spans["chat v"]
    assert race.kind is SpanKind.CLIENT
    assert race.parent is not None and race.parent.span_id == app.get_span_context().span_id
    assert race.context.trace_id == app.get_span_context().trace_id
    assert race.status.status_code is StatusCode.UNSET
    a = dict(race.attributes or {})
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.request.model"] == "v"
    assert a["gen_ai.response.model"] == "fast-m"
    assert a["gen_ai.provider.name"] == "fast"  # the configured name, not the type (python)
    assert a["gen_ai.usage.input_tokens"] == 12 and a["gen_ai.usage.output_tokens"] == 2
    assert a["raceway.strategy"] == "first_wins"
    assert a["raceway.winner"] == "fast/fast-m"
    assert a["raceway.attempts"] == 2
    assert a["raceway.race_id"] == result.race_id
    assert a["gen_ai.response.time_to_first_chunk"] == pytest.approx(0.1)
    assert race.end_time - race.start_time == ns(result.total_ms)  # type: ignore[operator]

    won, cancelled = spans["chat fast-m"], spans["chat slow-m"]
    for child in (won, cancelled):
        assert child.kind is SpanKind.CLIENT
        assert child.parent is not None and child.parent.span_id == race.context.span_id
        assert child.status.status_code is StatusCode.UNSET
    assert won.attributes["raceway.attempt.status"] == "won"  # type: ignore[index]
    assert won.attributes["gen_ai.provider.name"] == "fast"  # type: ignore[index]
    assert won.attributes["gen_ai.request.model"] == "fast-m"  # type: ignore[index]
    assert won.attributes["gen_ai.response.time_to_first_chunk"] == pytest.approx(0.1)  # type: ignore[index]
    assert [e.name for e in won.events] == ["raceway.first_token"]
    assert won.events[0].timestamp - won.start_time == ns(100)  # type: ignore[operator]
    assert cancelled.attributes["raceway.attempt.status"] == "cancelled"  # type: ignore[index]
    assert "error.type" not in (cancelled.attributes or {})
    # The loser ran from 0 until the win at 0.1 s (grace 0).
    assert cancelled.start_time == race.start_time
    assert cancelled.end_time - cancelled.start_time == ns(100)  # type: ignore[operator]


async def test_a_failed_attempt_is_an_error_span_in_a_race_that_answered(
    otel: SimpleNamespace, autojump_clock: Any
) -> None:
    cfg = config({"broken": {"fail_at": 0.05}, "ok": {"ttft": 0.2}})
    async with raceway.open_engine(cfg) as engine:
        result = await engine.complete(MSG, "v")
    record = next(r for r in result.attempts if r.provider == "broken")
    spans = by_name(otel.spans.get_finished_spans())
    failed = spans["chat broken-m"]
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.status.description == record.error
    assert failed.attributes["error.type"] == record.error_kind  # type: ignore[index]
    assert failed.attributes["raceway.attempt.status"] == "failed"  # type: ignore[index]
    assert failed.end_time - failed.start_time == ns(50)  # type: ignore[operator]
    # Handled by the race: its own span reports no error.
    race = spans["chat v"]
    assert race.status.status_code is StatusCode.UNSET
    assert "error.type" not in (race.attributes or {})
    assert race.attributes["gen_ai.provider.name"] == "ok"  # type: ignore[index]


async def test_a_race_that_fails_is_an_error_span_and_its_duration_has_error_type(
    otel: SimpleNamespace, autojump_clock: Any
) -> None:
    cfg = config({"a": {"fail_at": 0.05}, "b": {"fail_at": 0.08}})
    async with raceway.open_engine(cfg) as engine:
        with pytest.raises(raceway.AllProvidersFailedError):
            await engine.complete(MSG, "v")
    spans = by_name(otel.spans.get_finished_spans())
    race = spans["chat v"]
    assert race.status.status_code is StatusCode.ERROR
    assert race.attributes["error.type"] == "AllProvidersFailedError"  # type: ignore[index]
    assert race.attributes["raceway.outcome"] == "failed"  # type: ignore[index]
    assert "gen_ai.provider.name" not in (race.attributes or {})
    assert all(spans[f"chat {n}-m"].status.status_code is StatusCode.ERROR for n in "ab")
    (_, duration), = points(otel.reader)["gen_ai.client.operation.duration"]
    assert duration.attributes["error.type"] == "AllProvidersFailedError"
    assert duration.sum == pytest.approx(0.08)
    assert "gen_ai.client.token.usage" not in points(otel.reader)


async def test_a_timed_out_race_says_so() -> None:
    listener, spans, _ = _listener()
    listener(_started())
    listener(_finished(outcome="timeout", winner=None, attempts=(
        raceway.AttemptRecord(index=0, provider="a", model="a-m", status="cancelled", started_ms=0, ended_ms=5000,
                              error="no token before the deadline", error_kind="timeout"),
    ), error="no provider answered within 5000 ms", elapsed_ms=5000))
    race = by_name(spans.get_finished_spans())["chat v"]
    assert race.attributes["error.type"] == "RaceTimeoutError"  # type: ignore[index]
    assert race.status.description == "no provider answered within 5000 ms"


async def test_not_started_participants_get_no_span(otel: SimpleNamespace, autojump_clock: Any) -> None:
    cfg = config({"a": {"ttft": 0.1}, "b": {"ttft": 0.1}}, strategy="hedged", hedge={"delay_ms": 500})
    async with raceway.open_engine(cfg) as engine:
        result = await engine.complete(MSG, "v")
    assert [r.status for r in result.attempts] == ["won", "not_started"]
    names = [s.name for s in otel.spans.get_finished_spans()]
    assert sorted(names) == ["chat a-m", "chat v"]
    assert by_name(otel.spans.get_finished_spans())["chat v"].attributes["raceway.attempts"] == 1  # type: ignore[index]


# ---------------------------------------------------------------- metrics


async def test_genai_client_metrics_follow_the_conventions(otel: SimpleNamespace, autojump_clock: Any) -> None:
    cfg = config({"fast": {"ttft": 0.1}, "slow": {"ttft": 0.3}})
    async with raceway.open_engine(cfg) as engine:
        result = await engine.complete(MSG, "v")
    got = points(otel.reader)
    base = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "v",
        "gen_ai.provider.name": "fast",
        "gen_ai.response.model": "fast-m",
    }
    (unit, duration), = got["gen_ai.client.operation.duration"]
    assert unit == "s" and dict(duration.attributes) == base
    assert duration.sum == pytest.approx(result.total_ms / 1000) and duration.count == 1
    assert list(duration.explicit_bounds) == DURATION_BUCKETS
    (unit, ttfc), = got["gen_ai.client.operation.time_to_first_chunk"]
    assert unit == "s" and dict(ttfc.attributes) == base
    assert ttfc.sum == pytest.approx(result.ttft_ms / 1000) == pytest.approx(0.1)
    assert list(ttfc.explicit_bounds) == DURATION_BUCKETS
    tokens = {p.attributes["gen_ai.token.type"]: (unit, p) for unit, p in got["gen_ai.client.token.usage"]}
    assert set(tokens) == {"input", "output"}
    for kind, value in (("input", 12), ("output", 2)):
        unit, p = tokens[kind]
        assert unit == "{token}" and p.sum == value and p.count == 1
        assert dict(p.attributes) == {**base, "gen_ai.token.type": kind}
        assert list(p.explicit_bounds) == TOKEN_BUCKETS
    attempts = {p.attributes["gen_ai.provider.name"]: p for _, p in got["raceway.attempts"]}
    assert attempts["fast"].value == 1 and attempts["fast"].attributes["raceway.attempt.status"] == "won"
    assert attempts["slow"].value == 1 and attempts["slow"].attributes["raceway.attempt.status"] == "cancelled"


async def test_a_tracer_alone_or_a_meter_alone_is_enough(no_sdk: None, autojump_clock: Any) -> None:
    spans = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    mp = MeterProvider(metric_readers=[reader])
    cfg = config({"a": {"ttft": 0.1}})
    async with raceway.open_engine(cfg) as engine:
        off = _telemetry.instrument(engine, tracer_provider=tp)
        await engine.complete(MSG, "v")
        assert off is not None
        off()
        off = _telemetry.instrument(engine, meter_provider=mp)
        await engine.complete(MSG, "v")
    assert [s.name for s in spans.get_finished_spans()] == ["chat a-m", "chat v"]  # the first race only
    (_, duration), = points(reader)["gen_ai.client.operation.duration"]
    assert duration.count == 1  # the second race only


# ------------------------------------------------- the listener, fed events


def _listener() -> tuple[_telemetry.Telemetry, InMemorySpanExporter, InMemoryMetricReader]:
    spans = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    return _telemetry.Telemetry(tp, MeterProvider(metric_readers=[reader])), spans, reader


def _started() -> raceway.RaceStarted:
    return raceway.RaceStarted(
        race_id="r-1", ts=1_700_000_000.0, virtual_model="v", strategy="first_wins",
        participants=(("a", "a-m"), ("b", "b-m")),
    )


def _finished(**kw: Any) -> raceway.RaceFinished:
    fields: dict[str, Any] = {
        "race_id": "r-1", "ts": 1_700_000_001.0, "elapsed_ms": 900.0, "virtual_model": "v",
        "strategy": "first_wins", "outcome": "ok", "winner": 0, "ttft_ms": 250.0, "total_ms": 900.0,
    }
    fields.update(kw)
    return raceway.RaceFinished(**fields)


async def test_records_carry_usage_finish_reason_and_cost_onto_spans_and_metrics() -> None:
    listener, spans, reader = _listener()
    won = raceway.AttemptRecord(
        index=0, provider="a", model="a-m", status="won", started_ms=0.0, ttft_ms=250.0, ended_ms=900.0,
        output_chars=400, finish_reason="length", cost_usd=0.002,
        usage=raceway.Usage(input_tokens=1000, output_tokens=100, cached_input_tokens=600, reasoning_tokens=30),
    )
    lost = raceway.AttemptRecord(
        index=1, provider="b", model="b-m", status="lost", started_ms=10.0, ttft_ms=300.0, ended_ms=400.0,
        output_chars=81, cost_usd=0.0005, cost_estimated=True,
    )
    listener(_started())
    listener(_finished(attempts=(won, lost)))
    got = by_name(spans.get_finished_spans())
    race = got["chat v"]
    assert race.start_time == 1_700_000_000 * 10**9
    assert race.end_time == race.start_time + ns(900)  # type: ignore[operator]
    a = dict(race.attributes or {})
    assert a["gen_ai.response.finish_reasons"] == ("length",)
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (1000, 100)
    assert a["gen_ai.usage.cache_read.input_tokens"] == 600
    assert a["gen_ai.usage.reasoning.output_tokens"] == 30
    assert a["raceway.cost_usd"] == pytest.approx(0.0025)
    b = got["chat b-m"]
    assert b.start_time == race.start_time + ns(10)  # type: ignore[operator]
    assert b.end_time == race.start_time + ns(400)  # type: ignore[operator]
    assert b.attributes["raceway.attempt.status"] == "lost"  # type: ignore[index]
    assert b.attributes["raceway.cost_estimated"] is True  # type: ignore[index]
    m = points(reader)
    (_, wasted), = m["raceway.tokens.wasted"]
    assert wasted.value == 21  # 81 characters of the loser, at 4 a token (no usage reported)
    costs = {p.attributes["gen_ai.provider.name"]: p.value for _, p in m["raceway.cost"]}
    assert costs == {"a": pytest.approx(0.002), "b": pytest.approx(0.0005)}


async def test_a_race_finished_without_its_start_still_makes_its_spans() -> None:
    listener, spans, _ = _listener()
    listener(_finished(attempts=(raceway.AttemptRecord(index=0, provider="a", model="a-m", status="won",
                                                        started_ms=0.0, ttft_ms=250.0, ended_ms=900.0),)))
    race = by_name(spans.get_finished_spans())["chat v"]
    assert race.start_time == 1_700_000_001 * 10**9 - ns(900)
    assert race.parent is None


# ------------------------------------------------- nothing without an SDK


async def test_without_an_sdk_nothing_is_subscribed(no_sdk: None) -> None:
    assert _telemetry.configured_providers() == (None, None)
    cfg = config({"a": {"ttft": 0.0}})
    async with raceway.open_engine(cfg) as engine:
        assert engine._listeners == []
        await engine.complete(MSG, "v")
