"""The dashboard app driven headless (``App.run_test`` + ``Pilot``) against fake engines on real sockets.

Each test is a plain function that runs its own asyncio loop (pytest-trio's
``trio_mode`` owns ``async def`` tests): Textual runs on asyncio. The fake
engines serve from a thread of their own, so they keep going whatever the
app's loop is doing, as a real engine would. Waits are on conditions, each
with a deadline; the whole of every test is bounded by :data:`TEST_TIMEOUT_S`.
"""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Label, RichLog

from dashboard.app import (
    CONNECTED,
    DISCONNECTED,
    SEARCHING,
    Dashboard,
    FilterScreen,
    HelpScreen,
    PickEngineScreen,
    RaceScreen,
    Spark,
    tune_gc,
)
from dashboard.fake_engine import EVENTS_PER_RACE, LiveEngine, ScriptedEngine, make_script
from dashboard.model import Filter
from dashboard.racelist import RaceList
from raceway import wire

TEST_TIMEOUT_S = 30.0
SCRIPT = make_script(40)
LINES = SCRIPT.lines()


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    # Unix socket paths are short (108 bytes): a short directory, not tmp_path.
    path = Path(tempfile.mkdtemp(prefix="rwd-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def run(
    scenario: Callable[[Dashboard, Pilot[int]], Awaitable[None]],
    *,
    socket: Path | None = None,
    directory: Path | None = None,
    size: tuple[int, int] = (120, 40),
) -> Dashboard:
    """Run the app headless through ``scenario``, all of it within TEST_TIMEOUT_S."""
    app = Dashboard(socket, directory=directory)

    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await scenario(app, pilot)

    asyncio.run(asyncio.wait_for(main(), TEST_TIMEOUT_S))
    return app


async def until(pilot: Pilot[int], condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Let the app run until ``condition`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


async def settled(app: Dashboard, pilot: Pilot[int], messages: int) -> None:
    """Wait until ``messages`` messages were applied and drawn."""
    await until(pilot, lambda: app.model.messages >= messages and not app._inbox, f"{messages} messages")
    ticks = app.ticks
    await until(pilot, lambda: app.ticks >= ticks + 2, "two redraws")


def cell_text(table: RaceList, race_id: str, column: str) -> str:
    return table.cells_of(race_id)[column]


def log_text(app: Dashboard) -> str:
    log = app.query_one("#log", RichLog)
    return "\n".join(line.text for line in log.lines)


def provider_cells(app: Dashboard, label: str) -> dict[str, str]:
    row = app._provider_rows[label]
    cells = {cls.removeprefix("c-"): str(lbl.content) for lbl in row.query(Label) for cls in lbl.classes if cls.startswith("c-")}
    cells["spark"] = str(row.query_one(Spark).render())
    return cells


# ---------------------------------------------------------------- a recorded session


def test_a_recorded_session_shows_races_providers_and_events(sock_dir: Path) -> None:
    path = sock_dir / "raceway-4242.sock"

    async def scenario(app: Dashboard, pilot: Pilot[int]) -> None:
        await settled(app, pilot, len(LINES))
        table = app.races_table
        races = list(app.model.newest_first())
        assert len(table.order) == len(races) == 38
        # newest on top
        assert table.order[:3] == [r.race_id for r in races[:3]]
        assert table.lines_of(races[0].race_id)[0].strip().startswith(races[0].virtual_model)
        top = races[0]
        assert cell_text(table, top.race_id, "race").split("\n")[0].strip() == top.virtual_model
        # every race shows its winner with a star, at the winner's line
        for race in races:
            participants = cell_text(table, race.race_id, "participant").split("\n")
            if race.winner is not None:
                assert participants[race.winner].startswith("★")
                assert cell_text(table, race.race_id, "timeline").split("\n")[race.winner].count("★") == 1
            for a, line in zip(race.attempts, participants, strict=False):
                if a.status == "failed":
                    assert line.startswith("✗")
                    assert a.error_kind and a.error_kind[:6] in cell_text(table, race.race_id, "result")
        # providers: the engine's figures, with sparklines
        stats = SCRIPT.live[-1].providers
        for label, figures in stats.items():
            cells = provider_cells(app, label)
            assert cells["races"] == f"{figures['races']:,}"
            assert cells["wins"] == f"{figures['wins']:,}"
            assert cells["spark"].strip(), "a TTFT sparkline"
        # the top bar and the log
        assert app.topbar.text("state") == "● CONNECTED"
        assert "raceway-4242.sock · pid 4242 · raceway 0.1.0" in app.topbar.text("target")
        assert "races/s" in app.topbar.text("rate")
        text = log_text(app)
        assert "wins · first token to caller" in text and "connected to" in text

    with ScriptedEngine(path, LINES):
        run(scenario, socket=path)


def test_a_race_is_drawn_live_as_its_events_arrive(sock_dir: Path) -> None:
    path = sock_dir / "raceway-1.sock"
    race_id = next(m.race_id for m in SCRIPT.live if isinstance(m, wire.RaceStarted))
    race = [m for m in SCRIPT.live if getattr(m, "race_id", None) == race_id]
    hello = [wire.encode(SCRIPT.hello), wire.encode(wire.Snapshot(ts=SCRIPT.hello.ts))]

    async def scenario(app: Dashboard, pilot: Pilot[int]) -> None:
        table = app.races_table
        await settled(app, pilot, 2)  # hello and snapshot: attached
        engine.push([wire.encode(m) for m in race[:-1]])  # everything but race_finished
        await settled(app, pilot, 2 + len(race) - 1)
        assert app.model.races[race_id].running
        if app.model.races[race_id].ttft_ms is None:
            assert cell_text(table, race_id, "ttft").split("\n")[0].strip() == "…"
        assert "1 running" in str(app.races_panel.border_title)
        engine.push([wire.encode(race[-1])])
        await settled(app, pilot, 2 + len(race))
        assert app.model.races[race_id].finished
        assert "0 running" in str(app.races_panel.border_title)
        assert "…" not in cell_text(table, race_id, "result")

    with ScriptedEngine(path, hello) as engine:
        run(scenario, socket=path)


def test_garbage_unknown_and_dropped_lines(sock_dir: Path) -> None:
    path = sock_dir / "raceway-2.sock"
    lines = [
        LINES[0],
        b"this is not json\n",
        b'{"type": "provider_mood", "ts": 1}\n',
        LINES[1],
        wire.encode(wire.Dropped(ts=SCRIPT.hello.ts, count=120)),
        *LINES[2:],
    ]

    async def scenario(app: Dashboard, pilot: Pilot[int]) -> None:
        await settled(app, pilot, len(LINES) + 1)
        assert app.model.invalid_lines == 2
        assert app.topbar.text("dropped") == "⚠ 120 dropped"
        assert "skipped 120 events" in log_text(app)

    with ScriptedEngine(path, lines):
        run(scenario, socket=path)


# ---------------------------------------------------------------- keys


def test_pause_freezes_the_view_not_the_feed(sock_dir: Path) -> None:
    path = sock_dir / "raceway-3.sock"
    half = 2 + (len(LINES) - 2) // 2

    async def scenario(app: Dashboard, pilot: Pilot[int]) -> None:
        table = app.races_table
        await settled(app, pilot, half)
        rows_before, log_before = len(table.order), len(app.query_one("#log", RichLog).lines)
        await pilot.press("p")
        assert app.paused and app.screen.has_class("-paused")
        engine.push(LINES[half:])
        await settled(app, pilot, len(LINES))  # the feed goes on...
        assert len(table.order) == rows_before  # ...the view does not
        assert len(app.query_one("#log", RichLog).lines) == log_before
        new = len(LINES) - half
        assert app.topbar.text("paused") == f"⏸ PAUSED · {new:,} new"
        assert any(b.binding.action == "resume" for b in app.active_bindings.values())
        await pilot.press("p")
        await pilot.pause(0.2)
        assert not app.paused and app.topbar.text("paused") == ""
        assert len(table.order) == len(app.model.races) > rows_before

    with ScriptedEngine(path, LINES[:half]) as engine:
        run(scenario, socket=path)


def test_filter_by_virtual_model_and_provider(sock_dir: Path) -> None:
    path = sock_dir / "raceway-4.sock"

    async def scenario(app: Dashboard, pilot: Pilot[int]) -> None:
        table = app.races_table
        await settled(app, pilot, len(LINES))
        await pilot.press("slash")
        assert isinstance(app.screen, FilterScreen)
        app.screen.query_one("#filter-model").value = "hedged"  # type: ignore[attr-defined]
        await pilot.click("#filter-apply")
        await pilot.pause(0.2)
        assert app.model.filter == Filter(virtual_model="hedged")
        shown = table.order
        assert shown and all(app.model.races[rid].virtual_model == "hedged" for rid in shown)
        engine_lines = [ln for ln in log_text(app).splitlines() if ln[13:14] == "#"]
        assert engine_lines and all(" hedged " in ln for ln in engine_lines)
        assert "filter model=hedged" in str(app.races_panel.border_title)
        await pilot.press("escape")  # shows everything again
        await pilot.pause(0.2)
        assert len(table.order) == len(app.model.races)
        app._set_filter(Filter(provider="laggard/laggard-xl"))
        await pilot.pause(0.1)
        assert all("laggard/laggard-xl" in cell_text(table, rid, "participant") for rid in table.order)

    with ScriptedEngine(path, LINES):
        run(scenario, socket=path)


def test_help_lists_every_key(sock_dir: Path) -> None:
    async def scenario(app: Dashboard, pilot: Pilot[int]) -> None:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        shown = "\n".join(str(w.render()) for w in app.screen.query("Static"))
        for words in ("Quit", "Pause / Resume", "Filter", "Expand", "Reconnect", "Focus races", "★", "⊘"):
            assert words in shown
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)

    run(scenario, directory=sock_dir)


def test_expand_focus_and_race_details(sock_dir: Path) -> None:
    path = sock_dir / "raceway-5.sock"

    async def scenario(app: Dashboard, pilot: Pilot[int]) -> None:
        await settled(app, pilot, len(LINES))
        await pilot.press("3")
        assert app.focused is app.log_view
        await pilot.press("e")
        assert app.screen.maximized is app.log_panel
        await pilot.press("escape")
        assert app.screen.maximized is None
        await pilot.press("1", "enter")
        assert isinstance(app.screen, RaceScreen)
        assert app.screen.race is next(app.model.newest_first())
        await pilot.press("escape")
        assert not isinstance(app.screen, RaceScreen)

    with ScriptedEngine(path, LINES):
        run(scenario, socket=path)


def test_q_quits_cleanly(sock_dir: Path) -> None:
    path = sock_dir / "raceway-6.sock"

    async def scenario(app: Dashboard, pilot: Pilot[int]) -> None:
        await settled(app, pilot, len(LINES))
        await pilot.press("q")

    with ScriptedEngine(path, LINES) as engine:
        app = run(scenario, socket=path)
        assert app.return_value == 0
        deadline = time.monotonic() + 5
        while engine.connected and time.monotonic() < deadline:
            time.sleep(0.02)
        assert engine.connected == 0, "the dashboard hung up"


def test_a_terminal_too_small_says_what_it_needs_and_still_quits() -> None:
    async def scenario(app: Dashboard, pilot: Pilot[int]) -> None:
        await pilot.pause(0.1)
        assert app.too_small.display and not app.query_one("#main").display
        assert "at least 60×16" in str(app.too_small.render())
        await pilot.press("q")

    app = run(scenario, directory=Path("/nonexistent"), size=(50, 12))
    assert app.return_value == 0


@pytest.mark.parametrize(("size", "sparklines", "side_by_side"), [((80, 24), False, False), ((200, 50), True, True)])
def test_the_layout_reflows_with_the_terminal(
    sock_dir: Path, size: tuple[int, int], sparklines: bool, side_by_side: bool
) -> None:
    path = sock_dir / "raceway-7.sock"

    async def scenario(app: Dashboard, pilot: Pilot[int]) -> None:
        await settled(app, pilot, len(LINES))
        spark = app._provider_rows["swift/swift-1"].query_one(".c-spark")
        assert spark.display == sparklines
        races, providers = app.races_panel.region, app.providers_panel.region
        assert (providers.x > races.x) == side_by_side
        layout = app._layout
        assert layout is not None and layout.timeline >= 20

    with ScriptedEngine(path, LINES):
        run(scenario, socket=path, size=size)


# ---------------------------------------------------------------- finding and losing the engine


def test_no_engine_says_so_and_keeps_looking(sock_dir: Path) -> None:
    async def scenario(app: Dashboard, pilot: Pilot[int]) -> None:
        await until(pilot, lambda: app.link_state == SEARCHING, "searching")
        await pilot.pause(0.2)
        assert "No raceway engine is running" in str(app.races_empty.render())
        assert "NO ENGINE" in app.topbar.text("state")
        # an engine starts: found by itself (its socket name carries a live pid: ours)
        with ScriptedEngine(sock_dir / f"raceway-{os.getpid()}.sock", LINES):
            await until(pilot, lambda: app.link_state == CONNECTED, "connected")
            await settled(app, pilot, len(LINES))

    run(scenario, directory=sock_dir)


def test_several_engines_let_the_user_pick(sock_dir: Path) -> None:
    first = sock_dir / f"raceway-{os.getpid()}.sock"
    second = sock_dir / f"raceway-{os.getppid()}.sock"

    async def scenario(app: Dashboard, pilot: Pilot[int]) -> None:
        await until(pilot, lambda: isinstance(app.screen, PickEngineScreen), "the picker")
        assert len(app.screen.sockets) == 2  # type: ignore[attr-defined]
        await pilot.press("down", "enter")
        await until(pilot, lambda: app.link_state == CONNECTED, "connected")
        assert app.target == app.screen.sockets[1] if isinstance(app.screen, PickEngineScreen) else True
        await settled(app, pilot, len(LINES))

    with ScriptedEngine(first, LINES), ScriptedEngine(second, LINES):
        app = run(scenario, directory=sock_dir)
    assert app.target in (first, second)


def test_it_reconnects_by_itself_when_the_engine_restarts(sock_dir: Path) -> None:
    """Kill the engine: the dashboard says so, dims what it shows, retries with back-off;
    an engine on the same path again: it reconnects without a key pressed."""
    path = sock_dir / "raceway-8.sock"
    engine = ScriptedEngine(path, LINES)

    async def scenario(app: Dashboard, pilot: Pilot[int]) -> None:
        await settled(app, pilot, len(LINES))
        races = len(app.model.races)
        engine.stop()
        await until(pilot, lambda: app.link_state == DISCONNECTED, "disconnected")
        await until(pilot, lambda: app.retries >= 2, "a few retries")
        await pilot.pause(0.15)
        state = app.topbar.text("state")
        assert state.startswith("✗ DISCONNECTED · RECONNECTING") and "next in" in state
        assert app.screen.has_class("-stale")
        assert len(app.model.races) == races  # stale, not cleared
        assert "lost the engine" in log_text(app)
        engine.start()
        await until(pilot, lambda: app.link_state == CONNECTED, "reconnected")
        assert app.sessions == 2 and app.retries == 0
        assert not app.screen.has_class("-stale")
        await settled(app, pilot, 2 * len(LINES))
        assert app.topbar.text("state") == "● CONNECTED"

    engine.start()
    try:
        run(scenario, socket=path)
    finally:
        engine.stop()


def test_r_reconnects_at_once(sock_dir: Path) -> None:
    path = sock_dir / "raceway-9.sock"

    async def scenario(app: Dashboard, pilot: Pilot[int]) -> None:
        await settled(app, pilot, len(LINES))
        await pilot.press("r")
        await until(pilot, lambda: app.sessions == 2 and app.link_state == CONNECTED, "a second session")

    with ScriptedEngine(path, LINES):
        run(scenario, socket=path)


# ---------------------------------------------------------------- keeping up


def test_keeps_up_with_1000_events_per_second_and_answers_keys(sock_dir: Path) -> None:
    """A few seconds at 1,000 events/s (the full minute: ``python -m benchmarks.bench_dashboard``)."""
    path = sock_dir / "raceway-10.sock"
    seconds = 4.0
    latencies: list[float] = []

    async def key(app: Dashboard, paused: bool) -> None:
        before = time.monotonic()
        app.simulate_key("p")  # as the terminal driver delivers it
        while app.paused != paused and time.monotonic() - before < 5:
            await asyncio.sleep(0.001)
        latencies.append(time.monotonic() - before)

    async def scenario(app: Dashboard, pilot: Pilot[int]) -> None:
        await until(pilot, lambda: app.link_state == CONNECTED, "connected")
        await asyncio.sleep(1.0)  # the snapshot settles
        start, ticks0, redraws0 = time.monotonic(), app.ticks, app.redraws
        while time.monotonic() - start < seconds:
            await key(app, True)
            await key(app, False)  # pause, resume: the view stays live
            await asyncio.sleep(0.2)
        elapsed = time.monotonic() - start
        lag = time.time() - app.model.now_ts
        assert lag < 1.0, f"{lag:.2f}s behind the engine"
        assert app.model.dropped == 0
        rate = (app.ticks - ticks0) / elapsed
        assert rate >= 5, f"redraw timer at {rate:.1f} Hz"
        assert app.redraws - redraws0 >= 0.5 * (app.ticks - ticks0)
        assert app.model.race_rate() > 50
        assert len(app.model.races) == 200  # bounded

    old = tune_gc()  # as raceway-dashboard does
    try:
        with LiveEngine(path, races_per_s=1000 / EVENTS_PER_RACE, seed=3) as engine:
            run(scenario, socket=path)
    finally:
        gc.set_threshold(*old)
    assert engine.sent > 0.8 * 1000 * seconds
    latencies.sort()
    assert latencies[len(latencies) // 2] < 0.25, f"median key latency {latencies[len(latencies) // 2]:.2f}s"
    assert latencies[-1] < 1.0, f"a key took {latencies[-1]:.2f}s"


def test_a_theme_change_repaints_races_in_the_new_colours(sock_dir: Path) -> None:
    path = sock_dir / "raceway-11.sock"

    async def scenario(app: Dashboard, pilot: Pilot[int]) -> None:
        await settled(app, pilot, len(LINES))
        before = app.palette.success
        app.theme = "nord"
        await pilot.pause(0.3)
        assert app.palette.success != before
        winner = next(r for r in app.model.newest_first() if r.winner is not None)
        lines = app.races_table._rendered(winner.race_id).lines
        styles = {seg.style.color for seg in lines[winner.winner or 0] if seg.style and seg.style.color}
        assert app.palette.success.color in styles

    with ScriptedEngine(path, LINES):
        run(scenario, socket=path)


def test_the_command_line_describes_itself() -> None:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "dashboard", "--help"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "--socket PATH" in out.stdout
