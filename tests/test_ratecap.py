"""Rate caps per provider definition: an attempt over ``max_in_flight`` or ``rpm`` sits the race out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio

import raceway
from raceway import PythonProvider, Request, VirtualModel

HI = [{"role": "user", "content": "hi"}]


async def slow(request: Request) -> AsyncIterator[str]:
    await trio.sleep(0.100)
    yield "slow answer"


async def quick(request: Request) -> AsyncIterator[str]:
    await trio.sleep(0.010)
    yield "quick answer"


def config(strategy: str = "first_wins", **caps: Any) -> raceway.Config:
    return raceway.Config(
        strategy=strategy,
        grace_period_ms=0,
        performance_file="off",
        monitor=raceway.MonitorConfig(socket="off"),
        providers={
            "capped": PythonProvider(callable="test_ratecap:slow", model="c", **caps),
            "free": PythonProvider(callable="test_ratecap:slow", model="f"),
            "fast": PythonProvider(callable="test_ratecap:quick", model="q"),
        },
        virtual_models={
            "both": VirtualModel(providers=[raceway.ProviderRef(name="capped"), raceway.ProviderRef(name="free")]),
            "alone": VirtualModel(providers=[raceway.ProviderRef(name="capped")]),
            "hedge": VirtualModel(
                strategy="hedged",
                hedge=raceway.HedgeOverride(delay_ms=500),
                providers=[raceway.ProviderRef(name="fast", priority=2), raceway.ProviderRef(name="capped", priority=1)],
            ),
        },
    )


def statuses(result: raceway.RaceResult) -> list[tuple[str, str, str | None]]:
    return [(a.provider, a.status, a.error_kind) for a in result.attempts]


async def test_max_in_flight_sits_the_extra_race_out_until_a_slot_frees(autojump_clock: Any) -> None:
    results: list[raceway.RaceResult] = []
    async with raceway.open_engine(config(max_in_flight=2)) as engine:
        engine.tracker.clock = trio.current_time

        async def one() -> None:
            results.append(await engine.complete(HI, model="both"))

        async with trio.open_nursery() as nursery:
            for _ in range(3):  # three races in flight at once
                nursery.start_soon(one)
        capped = [r for r in results if statuses(r)[0][1] == "not_started"]
        assert len(capped) == 1
        (record,) = [a for a in capped[0].attempts if a.provider == "capped"]
        assert (record.index, record.error_kind) == (0, "rate_cap")
        assert record.error is not None and "max_in_flight 2" in record.error
        assert capped[0].provider == "free"  # the strategy raced the rest
        assert engine.tracker.caps.in_flight("capped") == 0  # every slot came back
        again = await engine.complete(HI, model="both")
        assert statuses(again)[0][:2] == ("capped", "won")  # (listed first: ties go to it)


async def test_rpm_is_a_sliding_minute_on_the_virtual_clock(autojump_clock: Any) -> None:
    async with raceway.open_engine(config(rpm=2)) as engine:
        engine.tracker.clock = trio.current_time
        t0 = trio.current_time()
        for _ in range(2):
            assert statuses(await engine.complete(HI, model="both"))[0][:2] == ("capped", "won")
        third = await engine.complete(HI, model="both")
        assert statuses(third)[0] == ("capped", "not_started", "rate_cap")
        assert third.provider == "free"
        await trio.sleep_until(t0 + 60.0)  # the first request leaves the window
        assert statuses(await engine.complete(HI, model="both"))[0][:2] == ("capped", "won")


async def test_a_participant_hedged_never_needed_gives_its_request_back(autojump_clock: Any) -> None:
    async with raceway.open_engine(config("hedged", rpm=1)) as engine:
        engine.tracker.clock = trio.current_time
        for _ in range(3):  # "fast" answers before any hedge: "capped" never starts
            result = await engine.complete(HI, model="hedge")
            assert statuses(result)[1] == ("capped", "not_started", None)
        assert engine.tracker.caps.in_flight("capped") == 0


async def test_when_every_participant_is_capped_the_race_fails_saying_so(autojump_clock: Any) -> None:
    async with raceway.open_engine(config(rpm=1)) as engine:
        engine.tracker.clock = trio.current_time
        await engine.complete(HI, model="alone")
        with pytest.raises(raceway.AllProvidersFailedError) as info:
            await engine.complete(HI, model="alone")
        assert "rate cap" in str(info.value)


def test_caps_load_on_a_definition_and_must_be_positive() -> None:
    config = raceway.loads_config("providers: {a: {type: sim, max_in_flight: 4, rpm: 600}}\n")
    assert (config.providers["a"].max_in_flight, config.providers["a"].rpm) == (4, 600)
    preset = raceway.loads_config("providers: {openai: {rpm: 100}}\nvirtual_models: {v: {providers: [{name: openai, model: m}]}}\n")
    assert preset.provider("openai").rpm == 100
    for bad in ("max_in_flight: 0", "rpm: -5", "rpm: 1.5"):
        with pytest.raises(raceway.ConfigError) as info:
            raceway.loads_config(f"providers: {{a: {{type: sim, {bad}}}}}\n")
        assert info.value.path == f"$.providers['a'].{bad.split(':')[0]}"
