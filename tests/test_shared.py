"""Shared state through a real Redis: engines in separate processes learn, cool down and hedge as one.

Each test starts its own ``redis-server`` (``conftest_redis.py``) on a free
loopback port. Engines in other processes run ``fleet_worker.py``. Bounds
on real time are ``fail_after`` limits; nothing sleeps.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import coredis
import pytest
import trio
from conftest_redis import RedisServer, SilentServer, redis_server, silent_server

import raceway
from raceway import wire
from raceway._shared import CLOSE_TIMEOUT_S, fleet_of

__all__ = ["redis_server", "silent_server"]  # fixtures

HERE = Path(__file__).parent
MESSAGES = [{"role": "user", "content": "hi"}]


def fleet_config(url: str, *, prefix: str = "t", events: bool = False, maxlen: int = 10_000, extra: str = "") -> str:
    return f"""
monitor: {{socket: "off"}}
performance_file: "off"
grace_period_ms: 0
redis: {{url: "{url}", prefix: "{prefix}", events: {str(events).lower()}, events_maxlen: {maxlen}}}
providers:
  fine: {{type: python, callable: "fleet_providers:fine"}}
  limited: {{type: python, callable: "fleet_providers:limited"}}
  slow: {{type: python, callable: "fleet_providers:slow"}}
virtual_models:
  plain: {{providers: [{{name: fine, model: m}}]}}
  pair: {{strategy: first_wins, providers: [{{name: limited, model: m}}, {{name: fine, model: m}}]}}
  hedge:
    strategy: hedged
    hedge: {{delay_ms: 1, max_extra_load: 0.02}}
    providers: [{{name: slow, model: m, priority: 2}}, {{name: fine, model: m, priority: 1}}]
{extra}"""


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "fleet.yaml"
    path.write_text(text)
    return path


async def run_worker(config: Path, model: str, races: int) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    proc = await trio.run_process(
        [sys.executable, str(HERE / "fleet_worker.py"), str(config), model, str(races)],
        capture_stdout=True, capture_stderr=True, env=env,
    )
    result: dict[str, Any] = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    return result


@pytest.fixture(autouse=True)
def _tests_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(HERE))


# ---------------------------------------------------------------- learning


async def test_a_fresh_engine_sees_what_another_process_learned(redis_server: RedisServer, tmp_path: Path) -> None:
    config = write_config(tmp_path, fleet_config(redis_server.url))
    with trio.fail_after(30):
        first = await run_worker(config, "plain", 12)
    assert first["started"] == {"fine/m": 12}
    async with raceway.open_engine(config) as engine:
        fresh = engine.stats()["fine/m"]
        assert (fresh.races, fresh.wins, fresh.answered) == (12, 12, 12)
        assert fresh.ttft_p50_ms is not None  # its samples were replayed here
        for _ in range(3):
            await engine.complete(MESSAGES, model="plain")
        fleet = fleet_of(engine)
        assert fleet is not None
        with trio.fail_after(5):
            await fleet.synced()
        assert engine.stats()["fine/m"].races == 15  # each observation once, its own included
    with trio.fail_after(30):
        again = await run_worker(config, "plain", 1)
    assert again["started"] == {"fine/m": 1}
    async with raceway.open_engine(config) as engine:
        assert engine.stats()["fine/m"].races == 16


# ---------------------------------------------------------------- cooldowns


async def test_a_429_in_one_process_benches_the_provider_in_another(redis_server: RedisServer, tmp_path: Path) -> None:
    config = write_config(tmp_path, fleet_config(redis_server.url))
    async with raceway.open_engine(config) as engine:
        fleet = fleet_of(engine)
        assert fleet is not None and fleet.up
        await engine.complete(MESSAGES, model="plain")
        with trio.fail_after(30):
            other = await run_worker(config, "pair", 1)  # its 429 says retry-after: 30
            assert other["started"]["limited/m"] == 1
            while engine.tracker.cooldowns.until("limited/m") is None:
                await fleet.cooldowns.changed()
        until = engine.tracker.cooldowns.until("limited/m")
        assert until is not None and 25 < until - time.time() <= 30
        benched = await engine.complete(MESSAGES, model="pair")
        limited = next(a for a in benched.attempts if a.provider == "limited")
        assert (limited.status, limited.error_kind) == ("not_started", "cooldown")
        with trio.fail_after(5):
            await fleet.synced()
        stats = engine.stats()["limited/m"]  # the other's statistics arrived too
        assert (stats.cooldown_until, stats.failures) == (until, {"rate_limited": 1})


# ---------------------------------------------------------------- hedge budget


async def test_the_hedge_budget_holds_across_processes(redis_server: RedisServer, tmp_path: Path) -> None:
    # Every race wants a hedge (slow answers after 30 ms, the delay is 1 ms). Alone,
    # each engine may hedge 2 + 0.02 x 75 times (3 each, 6 in all); as one fleet,
    # 2 + 0.02 x 150 = 5 in all.
    config = write_config(tmp_path, fleet_config(redis_server.url))
    results: list[dict[str, Any]] = []

    async def one() -> None:
        results.append(await run_worker(config, "hedge", 75))

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(one)
            nursery.start_soon(one)
    hedges = sum(r["started"].get("fine/m", 0) for r in results)
    assert sum(r["started"]["slow/m"] for r in results) == 150
    assert 1 <= hedges <= 2 + 0.02 * 150


# ---------------------------------------------------------------- Redis going away


async def test_redis_killed_mid_run_and_restarted(
    redis_server: RedisServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="raceway")
    config = write_config(tmp_path, fleet_config(redis_server.url))
    async with raceway.open_engine(config) as engine:
        fleet = fleet_of(engine)
        assert fleet is not None
        for _ in range(5):
            await engine.complete(MESSAGES, model="plain")
        with trio.fail_after(5):
            await fleet.synced()
        redis_server.kill()
        for _ in range(5):  # races go on, on local state
            await engine.complete(MESSAGES, model="plain")
        with trio.fail_after(5):
            while fleet.up:
                await fleet.next_round()
        for _ in range(5):
            await engine.complete(MESSAGES, model="plain")
        assert engine.stats()["fine/m"].races == 15
        redis_server.start()  # empty: persistence is off
        with trio.fail_after(40):
            await fleet.synced()
        assert engine.stats()["fine/m"].races == 15
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len([w for w in warnings if "unreachable" in w]) == 1, warnings
    assert len([w for w in warnings if "is back" in w]) == 1, warnings
    async with raceway.open_engine(config) as engine:  # the fleet kept everything, once
        assert engine.stats()["fine/m"].races == 15


async def test_a_redis_that_never_answers_costs_a_warning(
    silent_server: SilentServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="raceway")
    config = write_config(tmp_path, fleet_config(silent_server.url))
    start = trio.current_time()
    async with raceway.open_engine(config) as engine:
        opened = trio.current_time()
        with trio.fail_after(2):
            for _ in range(50):
                await engine.complete(MESSAGES, model="plain")
        assert engine.stats()["fine/m"].races == 50
        closing = trio.current_time()
    assert opened - start < 1.0
    assert trio.current_time() - closing < CLOSE_TIMEOUT_S + 0.5
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "unreachable" in warnings[0], warnings


async def test_unreachable_at_start_then_racing_locally(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="raceway")
    config = write_config(tmp_path, fleet_config("redis://:hunter2@127.0.0.1:1/0"))
    async with raceway.open_engine(config) as engine:
        await engine.complete(MESSAGES, model="plain")
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "redis://:***@127.0.0.1:1/0" in warnings[0]
    assert "hunter2" not in caplog.text


# ---------------------------------------------------------------- events


async def test_the_events_stream_stays_capped_and_carries_wire_lines(redis_server: RedisServer, tmp_path: Path) -> None:
    config = write_config(tmp_path, fleet_config(redis_server.url, events=True, maxlen=100))
    async with raceway.open_engine(config) as engine:
        fleet = fleet_of(engine)
        assert fleet is not None and fleet.events is not None
        for _ in range(60):  # about 6 events each
            await engine.complete(MESSAGES, model="plain")
        with trio.fail_after(5):
            await fleet.synced()
    assert fleet.events.appended > 300
    async with coredis.Redis.from_url(redis_server.url, decode_responses=True) as client:
        length = await client.xlen("t:events")
        entries = await client.xrange("t:events")
    # MAXLEN ~ trims whole macro nodes (100 entries by default): near the cap, never far above it.
    assert 100 <= length <= 200
    kinds = set()
    for entry in entries:
        line = entry.field_values["event"]
        message = wire.decode(line)
        tags = json.loads(line)
        assert tags["pid"] == os.getpid() and tags["host"]
        kinds.add(message.type)
    assert {"race_started", "race_finished", "stats"} <= kinds


# ---------------------------------------------------------------- rate caps across the fleet


async def test_max_in_flight_holds_across_engines_in_their_races(redis_server: RedisServer) -> None:
    import fleet_providers

    fleet_providers.HOLD[:] = [trio.Event()]
    text = f"""
monitor: {{socket: "off"}}
performance_file: "off"
grace_period_ms: 0
redis: {{url: "{redis_server.url}", prefix: "caps"}}
providers:
  capped: {{type: python, callable: "fleet_providers:held", max_in_flight: 2}}
  fine: {{type: python, callable: "fleet_providers:fine"}}
virtual_models:
  hold: {{providers: [{{name: capped, model: m}}]}}
  pair: {{strategy: first_wins, providers: [{{name: capped, model: m}}, {{name: fine, model: m}}]}}
"""
    config = raceway.loads_config(text)

    async def hold(engine: raceway.Engine) -> None:
        try:
            await engine.complete(MESSAGES, "hold")
        except raceway.AllProvidersFailedError:
            pass  # refused: this engine's lease did not cover it yet

    with trio.fail_after(30):
        async with raceway.open_engine(config) as a, raceway.open_engine(config) as b, trio.open_nursery() as nursery:
            fa, fb = fleet_of(a), fleet_of(b)
            assert fa is not None and fb is not None
            assert a._tracker.caps.fleet is fa.caps  # the engine's rate caps ask the fleet
            while fa.caps._caps.get("capped") is None or fa.caps._caps["capped"].in_flight < 2:
                nursery.start_soon(hold, a)  # a wants slots; each round grants what the fleet has
                await fa.synced()
            for _ in range(3):  # a holds both slots: b's lease is what is left, nothing
                await fb.synced()
            result = await b.complete(MESSAGES, "pair")
            capped = next(r for r in result.attempts if r.provider == "capped")
            assert (capped.status, capped.error_kind) == ("not_started", "rate_cap"), result.attempts
            assert result.provider == "fine"
            assert fa.caps._caps["capped"].in_flight <= 2
            fleet_providers.HOLD[0].set()
