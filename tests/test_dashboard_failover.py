"""The dashboard shows a failover as such: the real engine's events, through the wire, into the model and its drawings.

Races run on trio's virtual clock with scripted provider objects
(tests/scripted.py, a fresh ``Stage`` per test): a winner that breaks before ``complete()`` returns is
replaced by a loser still in its grace window (``race_decided`` with
``failover: true``), or by a cancelled loser started again
(``attempt_started`` with ``restart: true``). Each event goes through
``raceway.wire`` as the monitor socket carries it.
"""

from __future__ import annotations

from typing import Any

import pytest
from scripted import Script, Stage

import raceway
from dashboard import render, timeline
from dashboard.model import DashboardModel
from dashboard.views import CANCELLED, FAILED, WON
from raceway import wire

MSG = [{"role": "user", "content": "hi"}]


@pytest.fixture
def stage() -> Stage:
    return Stage()


def config(grace_ms: int) -> raceway.Config:
    """Virtual model ``v``: a and b, the stage's code providers, racing first_wins."""
    return raceway.Config(
        timeout_ms=5000,
        grace_period_ms=grace_ms,
        monitor=raceway.MonitorConfig(socket="off"),
        performance_file="off",
        virtual_models={
            "v": raceway.VirtualModel(
                strategy="first_wins", providers=[raceway.ProviderRef(name="a"), raceway.ProviderRef(name="b")]
            )
        },
    )


async def race_lines(stage: Stage, grace_ms: int) -> list[bytes]:
    """One race of the stage's providers, its events as the monitor socket would carry them."""
    lines: list[bytes] = []
    async with raceway.open_engine(config(grace_ms), providers=stage.providers()) as engine:
        engine.subscribe(lambda event: lines.append(wire.encode(event)))
        await engine.complete(MSG, "v")
    return lines


def plain(text: Any) -> str:
    return str(text.plain)


def log_lines(m: DashboardModel) -> list[str]:
    return [f"{e.glyph} {e.text}" for e in m.log]


async def test_a_loser_taking_over_reads_as_a_failover(autojump_clock: Any, stage: Stage) -> None:
    # a wins at 50 ms and breaks at 150; b answered at 60 ms, in its grace window, and takes over.
    stage.scripts["a"] = Script(ttft=0.050, chunks=["par", "tial"], gap=0.1, break_with=ConnectionResetError("gone"))
    stage.scripts["b"] = Script(ttft=0.060, chunks=["y"] * 5, gap=0.1)
    m = DashboardModel()
    assert m.feed_all(await race_lines(stage, grace_ms=1000)) == 9  # 2 started, 2 first tokens, 2 decided, 1 failed
    (race,) = m.races.values()
    assert race.outcome == "ok" and race.winner == 1
    assert race.failover_ms == pytest.approx(150) and race.ttft_ms == pytest.approx(150)
    assert [a.status for a in race.attempts] == [FAILED, WON]
    assert "⇄ b/b-m takes over from a/a-m at 150 ms (failover)" in log_lines(m)
    broke, took_over = plain(timeline.timeline(race, 48, m.now_ts, render.Palette.plain())).split("\n")
    # a: its first token (● at 50 ms), then streaming until it broke off (✗ at 150 ms, where b took over)
    assert 4 <= broke.index("●") <= 7 and broke.index("✗") == took_over.index("⇄")
    # b's first token (★ at 60 of 460 ms), buffered as a loser (┄) until it took over (⇄ at 150), then the caller's (━)
    star, swap = took_over.index("★"), took_over.index("⇄")
    assert 4 <= star <= 8 and 13 <= swap <= 17 and star < swap
    assert set(took_over[star + 1 : swap]) <= {"┄", "╴"} and "━" in took_over[swap:]
    details = plain(timeline.race_details(race, m.now_ts, render.Palette.plain()))
    assert "failover at 150ms: the winner broke before its answer was committed" in details


async def test_a_restart_reads_as_a_restart_live_and_from_the_records(autojump_clock: Any, stage: Stage) -> None:
    # grace 0: b is cancelled at a's win (50 ms); a breaks at 350; b starts again and answers at 450.
    stage.scripts["a"] = Script(ttft=0.050, chunks=["par", "tial"], gap=0.3, break_with=ConnectionResetError("gone"))
    stage.scripts["b"] = Script(ttft=0.100)
    lines = await race_lines(stage, grace_ms=0)
    assert any(wire.decode(line).type == "attempt_started" and wire.decode(line).restart for line in lines)

    live = DashboardModel()
    live.feed_all(lines)
    late = DashboardModel()  # joined at the end: only race_finished, with b's two records
    late.feed(lines[-1])
    for m in (live, late):
        (race,) = m.races.values()
        b = race.attempts[1]
        assert (race.winner, b.status, b.started_ms, b.ttft_ms) == (1, WON, pytest.approx(350), pytest.approx(100))
        assert b.restarted and b.earlier is not None
        assert (b.earlier.status, b.earlier.started_ms, b.earlier.ended_ms) == (CANCELLED, 0.0, pytest.approx(50))
        lines_drawn = plain(timeline.timeline(race, 46, m.now_ts, render.Palette.plain())).split("\n")
        assert all(len(line) == 46 for line in lines_drawn)
        # b: its first try cancelled near the start (⊘), ↻ just before it started again at 350 of 450 ms, then ★
        drawn = lines_drawn[1]
        assert drawn.index("⊘") <= 5 and 33 <= drawn.index("↻") <= 36 and drawn.index("↻") < drawn.index("★")
        details = plain(timeline.race_details(race, m.now_ts, render.Palette.plain()))
        assert "first try: started at 0ms · ended at 50ms, cancelled; restarted (failover)" in details
    assert "↻ b/b-m restarts at 350 ms: failover, the winner broke" in log_lines(live)
    assert "⇄ b/b-m takes over from a/a-m at 450 ms (failover)" in log_lines(live)
    assert live.races_version and late.races_version
