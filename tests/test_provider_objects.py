"""Provider objects built in code race beside configured ones (``open_engine(providers=...)``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import trio

import raceway


class Echo(raceway.Provider):
    """Answers with the last message's content after ``delay`` seconds (trio's clock)."""

    def __init__(self, name: str, delay: float, model: str = "echo-1") -> None:
        super().__init__(name)
        self.delay = delay
        self.model = model
        self.closed = False
        self.requests: list[raceway.Request] = []

    async def stream(self, request: raceway.Request) -> AsyncIterator[raceway.Chunk]:
        self.requests.append(request)
        await trio.sleep(self.delay)
        yield raceway.Chunk(str(request.messages[-1]["content"]), finish_reason="stop")

    async def aclose(self) -> None:
        self.closed = True


MSG = [{"role": "user", "content": "hi"}]


def config(text: str) -> raceway.Config:
    return raceway.loads_config('monitor: {socket: "off"}\nperformance_file: "off"\n' + text)


async def test_a_code_provider_races_beside_a_configured_one(autojump_clock: Any) -> None:
    cfg = raceway.Config(
        monitor=raceway.MonitorConfig(socket="off"),
        performance_file="off",
        providers={"slow": raceway.SimProvider(ttft_ms=500, sigma=0, seed=1)},
        virtual_models={
            "v": raceway.VirtualModel(providers=[raceway.ProviderRef(name="slow"), raceway.ProviderRef(name="mine")])
        },
    )
    mine = Echo("mine", delay=0.05)
    async with raceway.open_engine(cfg, providers={"mine": mine}) as engine:
        t0 = trio.current_time()
        result = await engine.complete(MSG, "v")
        assert trio.current_time() - t0 < 0.5
        assert [m.providers for m in engine.models()] == [("slow/sim", "mine/echo-1")]
    assert (result.provider, result.model, result.text) == ("mine", "echo-1", "hi")
    assert mine.requests[0].model == "echo-1" and mine.closed


async def test_an_object_replaces_the_definition_of_its_name(autojump_clock: Any) -> None:
    cfg = config("providers: {a: {type: sim, ttft_ms: 900, sigma: 0}}\nvirtual_models: {v: {providers: [a]}}\n")
    async with raceway.open_engine(cfg, providers={"a": Echo("a", delay=0.01)}) as engine:
        result = await engine.complete(MSG, "v")
    assert result.text == "hi" and result.ttft_ms == 10


async def test_without_virtual_models_code_providers_race_with_every_configured_one(autojump_clock: Any) -> None:
    cfg = config("providers: {s: {type: sim, ttft_ms: 300, sigma: 0}}\n")
    async with raceway.open_engine(cfg, providers={"x": Echo("x", delay=0.02), "y": Echo("y", delay=0.01)}) as engine:
        result = await engine.complete(MSG)
        report = await engine.health_check()
    assert result.provider == "y"
    assert [(a.provider, a.status) for a in result.attempts] == [("s", "cancelled"), ("x", "cancelled"), ("y", "won")]  # y ended at 0.010: nothing to wait for
    assert report.ok and set(report.providers) == {"s", "x", "y"}


async def test_an_engine_used_after_its_block_says_so(autojump_clock: Any) -> None:
    cfg = config("providers: {a: {type: sim, ttft_ms: 10, sigma: 0}}\nvirtual_models: {v: {providers: [a]}}\n")
    async with raceway.open_engine(cfg) as engine:
        await engine.complete(MSG, "v")
    with trio.fail_after(1):
        try:
            await engine.complete(MSG, "v")
        except RuntimeError as exc:
            assert "this engine is closed" in str(exc)
        else:
            raise AssertionError("a closed engine raced")
