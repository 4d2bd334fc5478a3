"""raceway.seed_metrics: the seed's metrics events, each exactly once per fact (NOTES.md item 11)."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import trio

import raceway
from raceway import ProviderRef, PythonProvider, Request, VirtualModel


def prompt(request: Request) -> str:
    return str(request.messages[-1]["content"])


async def x(request: Request) -> AsyncIterator[str]:
    if prompt(request) == "fail":
        raise raceway.ProviderConnectionError("reset", "x")
    await trio.sleep(0.01 if prompt(request) == "x" else 0.03)
    yield "from x"


async def y(request: Request) -> AsyncIterator[str]:
    if prompt(request) == "fail":
        raise raceway.ProviderHTTPError("HTTP 500", 500, "y")
    await trio.sleep(0.01 if prompt(request) == "y" else 0.03)
    yield "from y"


CONFIG = raceway.Config(
    performance_file="off",
    monitor=raceway.MonitorConfig(socket="off"),
    grace_period_ms=0,
    providers={
        "x": PythonProvider(callable="test_seed_metrics:x", model="xm"),
        "y": PythonProvider(callable="test_seed_metrics:y", model="ym"),
    },
    virtual_models={
        # y listed twice: its two attempts must not collide in the latencies
        "vm": VirtualModel(providers=[ProviderRef(name="x"), ProviderRef(name="y"), ProviderRef(name="y")]),
        "solo": VirtualModel(providers=[ProviderRef(name="x")]),
    },
)


async def test_each_seed_metric_once_per_fact(autojump_clock: Any) -> None:
    metrics: list[dict[str, Any]] = []
    plan = [("vm", "x"), ("vm", "x"), ("vm", "y"), ("solo", "y"), ("vm", "fail"), ("vm", "y"), ("vm", "x")]
    outcomes: list[tuple[str, str, str | None]] = []  # (race_id, virtual model, winner label or None)
    async with raceway.open_engine(CONFIG) as engine:
        engine.subscribe(raceway.seed_metrics(metrics.append))
        for model, text in plan:
            try:
                result = await engine.complete([{"role": "user", "content": text}], model=model)
                outcomes.append((result.race_id, model, f"{result.provider}/{result.model}"))
            except raceway.AllProvidersFailedError:
                outcomes.append(("", model, None))

    per_race = Counter((m["type"], m["race_id"]) for m in metrics)
    assert set(per_race.values()) == {1}  # nothing reported twice
    races = {m["race_id"] for m in metrics}
    assert len(races) == len(plan)
    by_type = Counter(m["type"] for m in metrics)
    assert by_type["request"] == by_type["race_complete"] == len(plan)
    assert by_type["success"] == 6 and by_type["error"] == 1

    # A switch whenever a virtual model's winner differs from its previous winner.
    last: dict[str, str] = {}
    expected = []
    for race_id, model, winner in outcomes:
        if winner is None:
            continue
        if model in last and last[model] != winner:
            expected.append((race_id, last[model], winner))
        last[model] = winner
    switches = [(m["race_id"], m["previous"], m["current"]) for m in metrics if m["type"] == "provider_switch"]
    assert switches == expected == [
        (outcomes[2][0], "x/xm", "y/ym"),
        (outcomes[6][0], "y/ym", "x/xm"),
    ]

    complete = next(m for m in metrics if m["type"] == "race_complete" and m["race_id"] == outcomes[0][0])
    assert complete["participants"] == ["x/xm", "y/ym", "y/ym"]
    assert [(lat["provider"], lat["status"]) for lat in complete["latencies"]] == [
        ("x", "won"),
        ("y", "cancelled"),
        ("y", "cancelled"),
    ]
    assert (complete["winner"], complete["winner_model"], complete["outcome"]) == ("x", "xm", "ok")
    error = next(m for m in metrics if m["type"] == "error")
    assert error["outcome"] == "failed" and "reset" in error["error"]
    request = next(m for m in metrics if m["type"] == "request")
    assert (request["virtual_model"], request["strategy"]) == ("vm", "first_wins")
