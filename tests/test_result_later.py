"""A race that went well with nobody listening writes its records up later (``RaceResultLater``).

The caller's result reads exactly as an eager one: its ``attempts`` are
there on first read, it compares, pickles, copies and converts to a dict
as a ``RaceResult``; the learning batch fills it within ``LEARN_BATCH_S``
and then no longer holds the race.
"""

from __future__ import annotations

import copy
import pickle
from typing import Any

import attrs
import trio
from test_provider_objects import MSG, Echo, config

import raceway
from raceway._engine import LEARN_BATCH_S
from raceway._result import RaceResultLater

TWO = """
providers:
  a: {type: sim, model: m, ttft_ms: 10, sigma: 0, tokens_per_s: 1000, text: "hello"}
  b: {type: sim, model: m, ttft_ms: 30, sigma: 0, tokens_per_s: 1000, text: "hello"}
virtual_models:
  v: {strategy: first_wins, providers: [{name: a}, {name: b}]}
"""


async def test_the_records_are_there_on_first_read_and_read_as_a_plain_result(autojump_clock: Any) -> None:
    async with raceway.open_engine(config(TWO)) as engine:
        result = await engine.complete(MSG, "v")
        assert type(result) is RaceResultLater and isinstance(result, raceway.RaceResult)
        assert [(a.provider, a.status) for a in result.attempts] == [("a", "won"), ("b", "cancelled")]
        assert result.winner.provider == "a"
        plain = raceway.RaceResult(**{f.name: getattr(result, f.name) for f in attrs.fields(raceway.RaceResult)})
        assert result == plain and plain == result
        assert pickle.loads(pickle.dumps(result)) == plain
        assert type(copy.copy(result)) is raceway.RaceResult
        assert attrs.asdict(result)["attempts"][0]["status"] == "won"
        assert repr(result) == repr(plain)
        assert attrs.evolve(result, text="x").attempts == plain.attempts


async def test_the_learning_batch_fills_the_result_and_lets_the_race_go(autojump_clock: Any) -> None:
    async with raceway.open_engine(config(TWO)) as engine:
        result = await engine.complete(MSG, "v")
        assert isinstance(result, RaceResultLater)
        assert result._write_up is not None  # nothing read yet: the race is still held
        await trio.sleep(LEARN_BATCH_S * 2)
        assert result._write_up is None  # filled by the batch, the race let go
        assert [a.status for a in result.attempts] == ["won", "cancelled"]
        assert engine.stats()["a/m"].wins == 1


async def test_a_listener_or_prices_make_the_records_at_once(autojump_clock: Any) -> None:
    events: list[Any] = []
    async with raceway.open_engine(config(TWO)) as engine:
        engine.subscribe(events.append)
        result = await engine.complete(MSG, "v")
        finished = [e for e in events if isinstance(e, raceway.RaceFinished)]
        assert finished and finished[0].attempts == result.attempts
        assert result._write_up is None if isinstance(result, RaceResultLater) else True
    priced = TWO.replace('text: "hello"}', 'text: "hello", prices: {input_per_mtok: 1, output_per_mtok: 2}}')
    async with raceway.open_engine(config(priced)) as engine:
        result = await engine.complete(MSG, "v")
        assert type(result) is raceway.RaceResult and result.cost_usd is not None and result.cost_usd > 0


async def test_code_providers_write_up_the_same(autojump_clock: Any) -> None:
    cfg = config("providers: {s: {type: sim, ttft_ms: 300, sigma: 0}}\n")
    async with raceway.open_engine(cfg, providers={"x": Echo("x", 0.01), "y": Echo("y", 0.02)}) as engine:
        result = await engine.complete(MSG)
        assert {a.provider: a.status for a in result.attempts} == {"s": "cancelled", "x": "won", "y": "cancelled"}
