"""Fleet-wide rate caps and hedge budget, part by part, against a real Redis (two engines' sides)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import coredis
import pytest
from conftest_redis import RedisServer, redis_server

from raceway._fleet_budget import FleetHedgeBudget
from raceway._fleet_caps import FleetCaps
from raceway._fleet_link import Link

__all__ = ["redis_server"]


@pytest.fixture
async def links(redis_server: RedisServer) -> AsyncIterator[tuple[Link, Link]]:
    async with (
        coredis.Redis.from_url(redis_server.url, decode_responses=True) as a,
        coredis.Redis.from_url(redis_server.url, decode_responses=True) as b,
    ):
        yield Link(a, "caps", "engine-a"), Link(b, "caps", "engine-b")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_020.0  # 20 s into a minute

    def __call__(self) -> float:
        return self.now


async def test_max_in_flight_holds_across_engines(links: tuple[Link, Link]) -> None:
    one, two = FleetCaps(), FleetCaps()
    assert all(one.try_start("p", max_in_flight=4) for _ in range(4))  # alone: the whole cap
    assert not one.try_start("p", max_in_flight=4)
    for _ in range(4):
        one.finished("p")
    await one.sync(links[0])
    await two.sync(links[1])
    for _ in range(3):  # both want more than the cap, round after round
        for caps in (one, two):
            while caps.try_start("p", max_in_flight=4):
                pass
        await one.sync(links[0])
        await two.sync(links[1])
    running = one._caps["p"].in_flight + two._caps["p"].in_flight
    assert running <= 4
    assert one._caps["p"].lease + two._caps["p"].lease <= 4
    for _ in range(one._caps["p"].in_flight):
        one.finished("p")
    await one.sync(links[0])  # one is idle now: its lease shrinks to its ask, two can grow
    await two.sync(links[1])
    assert one._caps["p"].lease + two._caps["p"].lease <= 4


async def test_rpm_holds_across_engines(links: tuple[Link, Link]) -> None:
    clock = Clock()
    one, two = FleetCaps(clock), FleetCaps(clock)
    started = 0
    for _ in range(10):  # ten rounds in one minute, both engines always wanting more
        for caps, link in ((one, links[0]), (two, links[1])):
            await caps.sync(link)
            for _ in range(20):
                if caps.try_start("p", rpm=30):
                    started += 1
                    caps.finished("p")
        clock.now += 1
    assert 20 <= started <= 30


async def test_the_fleet_bucket_bounds_hedges_over_all_races(links: tuple[Link, Link]) -> None:
    budgets = [FleetHedgeBudget(max_extra_load=0.1), FleetHedgeBudget(max_extra_load=0.1)]
    hedges = races = 0
    for _ in range(20):  # rounds; between them each engine runs 10 races that all want a hedge
        for budget, link in zip(budgets, links, strict=True):
            await budget.sync(link, "m")
            for _ in range(10):
                budget.deposit()
                races += 1
                hedges += budget.try_spend()
    assert hedges <= 2 + 0.1 * races
    assert hedges >= 0.1 * races * 0.7  # and the fleet does get to hedge
