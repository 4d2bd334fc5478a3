"""The dashboard app driven headless (``App.run_test`` + ``Pilot``) against the real engine's recorded session.

Each test is a plain function that runs its own asyncio loop (pytest-trio's
``trio_mode`` owns ``async def`` tests): Textual runs on asyncio. The replay
servers (:mod:`replay_monitor`) serve from a thread of their own, so they keep
going whatever the app's loop is doing, as a real engine would. Waits are on
conditions, each with a deadline; the whole of every test is bounded by
:data:`TEST_TIMEOUT_S`. How fast the dashboard keeps up is a benchmark
(``python -m benchmarks.bench_dashboard``), not a test.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from replay_monitor import ReplayMonitor, recorded_lines, recorded_messages
from textual.pilot import Pilot
from textual.widgets import Label, RichLog

from dashboard.app import (
    CONNECTED,
    DISCONNECTED,
    SEARCHING,
    Dashboard,
    FilterScreen,
    PickEngineScreen,
    RaceScreen,
)
from dashboard.views import Filter
from dashboard.widgets import NameCell, Spark
from raceway import wire

TEST_TIMEOUT_S = 30.0
LINES = recorded_lines()
MESSAGES = recorded_messages()
HELLO, SNAPSHOT, LIVE = MESSAGES[0], MESSAGES[1], MESSAGES[2:]
RACE_IDS = {r.race_id for r in SNAPSHOT.races} | {m.race_id for m in LIVE if isinstance(m, wire.RaceStarted | wire.RaceFinished)}


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
    await until(pilot, lambda: app.model.messages >= messages and not app.inbox, f"{messages} messages")
    ticks = app.ticks
    await until(pilot, lambda: app.ticks >= ticks + 2, "two redraws")


def column(app: Dashboard, race_id: str, name: str) -> list[str]:
    return app.races_table.cells_of(race_id)[name].split("\n")


def log_text(app: Dashboard) -> str:
    return "\n".join(line.text for line in app.query_one("#log", RichLog).lines)


def provider_cells(app: Dashboard, label: str) -> dict[str, str]:
    row = app.providers_panel.rows[label]
    cells = {c.removeprefix("c-"): str(lbl.content) for lbl in row.query(Label) for c in lbl.classes if c.startswith("c-")}
    cells["spark"] = str(row.query_one(Spark).render())
    cells["name"] = str(row.query_one(NameCell).render())
    return cells


def toasts(app: Dashboard) -> list[str]:
    return [n.title or "" for n in app._notifications]


# ---------------------------------------------------------------- a recorded session


def test_a_recorded_session_shows_races_providers_and_events(sock_dir: Path) -> None:
    path = sock_dir / "raceway-4242.sock"

    async def scenario(app: Dashboard, pilot: Pilot[int]) -> None:
        await settled(app, pilot, len(LINES))
        table = app.races_table
        races = list(app.model.newest_first())
        assert len(table.order) == len(races) == len(RACE_IDS)
        assert table.order[:3] == [r.race_id for r in races[:3]]  # newest on top
        top = races[0]
        assert column(app, top.race_id, "race")[0].strip() == top.virtual_model
        assert column(app, top.race_id, "race")[2].strip() == top.title
        for race in races:  # every race shows its winner with a star, at the winner's line
            participants = column(app, race.race_id, "participant")
            if race.winner is not None:
                assert participants[race.winner].startswith("★")
                assert column(app, race.race_id, "timeline")[race.winner].count("★") == 1
            for a, line in zip(race.attempts, participants, strict=False):
                if a.status == "failed":
                    assert line.startswith("✗") and a.error_kind
                    assert a.error_kind[:6] in column(app, race.race_id, "result")[a.index]
        last_stats = next(m for m in reversed(LIVE) if isinstance(m, wire.StatsSnapshot))
        for label, figures in last_stats.providers.items():  # the engine's own figures
            cells = provider_cells(app, label)
            assert cells["races"] == f"{figures['races']:,}" and cells["wins"] == f"{figures['wins']:,}"
            assert cells["spark"].strip(), "a TTFT sparkline"
            assert cells["name"] == label
        assert app.topbar.text("state") == "● CONNECTED"
        assert f"raceway-4242.sock · pid {HELLO.pid} · raceway {HELLO.engine_version}" in app.topbar.text("target")
        assert "races/s" in app.topbar.text("rate")
        text = log_text(app)
        assert "wins · first token to caller" in text and "connected to" in text

    with ReplayMonitor(path, LINES):
        run(scenario, socket=path)


def test_benched_participants_show_as_cooling_down_not_unneeded(sock_dir: Path) -> None:
    path = sock_dir / "raceway-1.sock"
    benched = [
        (m.race_id, r.index) for m in LIVE if isinstance(m, wire.RaceFinished)
        for r in m.attempts if r.status == "not_started" and r.error_kind == "cooldown"
    ]  # fmt: skip
    unneeded = [
        (m.race_id, r.index) for m in LIVE if isinstance(m, wire.RaceFinished)
        for r in m.attempts if r.status == "not_started" and r.error_kind is None
    ]  # fmt: skip
    assert benched and unneeded, "the recording has both (tests/replay_session.yaml)"

    async def scenario(app: Dashboard, pilot: Pilot[int]) -> None:
        await settled(app, pilot, len(LINES))
        for race_id, index in benched:
            assert column(app, race_id, "participant")[index].startswith("◐")
            assert column(app, race_id, "result")[index].strip() == "cooling down"
        for race_id, index in unneeded:
            assert column(app, race_id, "result")[index].strip() == "unneeded"
        assert "sat out: cooling down" in log_text(app)

    with ReplayMonitor(path, LINES):
        run(scenario, socket=path)


def test_a_race_is_drawn_live_and_its_details_follow_it(sock_dir: Path) -> None:
    path = sock_dir / "raceway-2.sock"
    race_id = next(m.race_id for m in LIVE if isinstance(m, wire.RaceStarted))
    events = [wire.encode(m) for m in LIVE if getattr(m, "race_id", None) == race_id]

    async def scenario(app: Dashboard, pilot: Pilot[int]) -> None:
        await settled(app, pilot, 2)  # hello and snapshot: attached
        engine.push(events[:-1])  # everything but race_finished
        await settled(app, pilot, 2 + len(events) - 1)
        race = app.model.races[race_id]
        assert race.running and "1 running" in str(app.races_panel.border_title)
        await pilot.press("1", "enter")
        assert isinstance(app.screen, RaceScreen)
        await pilot.pause(0.15)
        details = app.screen.text()
        assert details.startswith(race.title + "  "), "named as in the list"
        assert column(app, race_id, "race")[2].strip() == race.title
        if race.ttft_ms is not None:
            assert f"first token to caller {column(app, race_id, 'ttft')[0].strip()}" in details
        assert "total Σ…" in details
        engine.push(events[-1:])
        await settled(app, pilot, 2 + len(events))
        await pilot.pause(0.15)
        assert race.finished and "0 running" in str(app.races_panel.border_title)
        details = app.screen.text()  # the open dialog followed the race to its end
        ttft, total = column(app, race_id, "ttft")[:2]
        assert f"first token to caller {ttft.strip()} · total {total.strip()}" in details
        for a, cell in zip(race.attempts, column(app, race_id, "result"), strict=False):
            assert cell.strip() in details.split(a.label, 1)[1].split("\n", 1)[0]  # the list's cell, on its line
        assert " – " not in details

    with ReplayMonitor(path, LINES[:2]) as engine:
        run(scenario, socket=path)


def test_garbage_unknown_dropped_and_overlong_lines(sock_dir: Path) -> None:
    path = sock_dir / "raceway-3.sock"
    limit = max(len(line) for line in LINES) + 100  # every recorded line fits...
    lines = [
        LINES[0],
        b"this is not json\n",
        b'{"type": "provider_mood", "ts": 1}\n',
        b'{"type": "stats", "providers": {"' + b"x" * limit + b'": {}}}\n',  # ...this one does not
        LINES[1],
        wire.encode(wire.Dropped(ts=HELLO.ts, count=120)),
        *LINES[2:],
    ]

    async def scenario(app: Dashboard, pilot: Pilot[int]) -> None:
        await settled(app, pilot, len(LINES) + 1)
        assert app.model.invalid_lines == 2
        assert app.link.splitter.too_long == 1  # dropped whole while reading, the rest intact
        assert app.topbar.text("dropped") == "⚠ 120 dropped"
        assert "skipped 120 events" in log_text(app)

    app = Dashboard(path)
    app.link.splitter.limit = limit

    async def main() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await scenario(app, pilot)

    with ReplayMonitor(path, lines):
        asyncio.run(asyncio.wait_for(main(), TEST_TIMEOUT_S))


def test_long_names_keep_their_distinguishing_end(sock_dir: Path) -> None:
    path = sock_dir / "raceway-4.sock"
    names = (("mock-oai", "gpt-4o-mini-2024-07-18"), ("mock-oai", "gpt-4o-2024-08-06"), ("anthropic", "claude-3-5-sonnet-20241022"))
    ts = HELLO.ts
    lines = [
        LINES[0], wire.encode(wire.Snapshot(ts=ts)),
        wire.encode(wire.RaceStarted(race_id="x-1", ts=ts, virtual_model="fast", strategy="first_wins", participants=names)),
    ]  # fmt: skip

    async def scenario(app: Dashboard, pilot: Pilot[int]) -> None:
        await settled(app, pilot, 3)
        shown = [line[2:].strip() for line in column(app, "x-1", "participant")]
        assert len(set(shown)) == 3 and all("…" in s for s in shown), shown
        assert all(s.endswith(model[-5:]) for s, (_, model) in zip(shown, names, strict=True)), shown
        cells = [provider_cells(app, f"{p}/{m}")["name"] for p, m in names]
        assert len(set(cells)) == 3 and all("…" in c for c in cells), cells

    with ReplayMonitor(path, lines):
        run(scenario, socket=path, size=(140, 40))


# ---------------------------------------------------------------- keys


def test_pause_freezes_the_view_not_the_feed(sock_dir: Path) -> None:
    path = sock_dir / "raceway-5.sock"
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
        assert app.topbar.text("paused") == f"⏸ PAUSED · {len(LINES) - half:,} new"
        assert any(b.binding.action == "resume" for b in app.active_bindings.values())
        await pilot.press("p")
        await pilot.pause(0.2)
        assert not app.paused and app.topbar.text("paused") == ""
        assert len(table.order) == len(app.model.races) > rows_before

    with ReplayMonitor(path, LINES[:half]) as engine:
        run(scenario, socket=path)


def test_filter_by_virtual_model_and_provider(sock_dir: Path) -> None:
    path = sock_dir / "raceway-6.sock"

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
        app.set_filter(Filter(provider="laggard/laggard-xl"))
        await pilot.pause(0.1)
        assert all("laggard-xl" in "".join(column(app, rid, "participant")) for rid in table.order)

    with ReplayMonitor(path, LINES):
        run(scenario, socket=path)


def test_help_lists_every_key() -> None:
    async def scenario(app: Dashboard, pilot: Pilot[int]) -> None:
        await pilot.press("question_mark")
        shown = "\n".join(str(w.render()) for w in app.screen.query("Static"))
        for words in (
            "Quit", "Pause / Resume", "Filter", "Expand", "Reconnect", "Focus races", "Focus providers",
            "Focus event log", "esc", "Clear filter", "^p", "Commands", "enter", "↑ k", "↓ j",
            "pgup", "pgdn", "home", "end", "details", "★", "⊘", "◐",
        ):  # fmt: skip
            assert words in shown, words
        await pilot.press("escape")
        assert app.screen is app._main_screen

    run(scenario, directory=Path("/nonexistent"))


@pytest.mark.parametrize("key", ["1", "2", "3"])
def test_e_enlarges_the_focused_panel(sock_dir: Path, key: str) -> None:
    path = sock_dir / f"raceway-7{key}.sock"

    async def scenario(app: Dashboard, pilot: Pilot[int]) -> None:
        await settled(app, pilot, len(LINES))
        panel = {"1": app.races_panel, "2": app.providers_panel, "3": app.log_panel}[key]
        before = panel.region
        await pilot.press(key, "e")
        await pilot.pause(0.1)
        assert app.screen.maximized is panel
        assert panel.region.height >= 40 - 2 > before.height and panel.region.width == 120
        await pilot.press("escape")
        assert app.screen.maximized is None

    with ReplayMonitor(path, LINES):
        run(scenario, socket=path, size=(120, 40))


def test_q_quits_cleanly(sock_dir: Path) -> None:
    path = sock_dir / "raceway-8.sock"

    async def scenario(app: Dashboard, pilot: Pilot[int]) -> None:
        await settled(app, pilot, len(LINES))
        await pilot.press("q")

    with ReplayMonitor(path, LINES) as engine:
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
def test_the_layout_reflows_with_the_terminal(sock_dir: Path, size: tuple[int, int], sparklines: bool, side_by_side: bool) -> None:
    path = sock_dir / "raceway-9.sock"

    async def scenario(app: Dashboard, pilot: Pilot[int]) -> None:
        await settled(app, pilot, len(LINES))
        assert app.providers_panel.rows["swift/swift-1"].query_one(".c-spark").display == sparklines
        races, providers = app.races_panel.region, app.providers_panel.region
        assert (providers.x > races.x) == side_by_side
        layout = app.races_panel.layout_used
        assert layout is not None and layout.timeline >= 20

    with ReplayMonitor(path, LINES):
        run(scenario, socket=path, size=size)


def test_a_screenshot_is_saved_without_a_downloads_directory(sock_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(sock_dir)  # HOME is a fresh directory (conftest): no ~/Downloads

    async def scenario(app: Dashboard, pilot: Pilot[int]) -> None:
        assert not (Path.home() / "Downloads").exists()
        await pilot.press("ctrl+p", *"screenshot")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await until(pilot, lambda: any(sock_dir.glob("*.svg")), "the screenshot")
        await until(pilot, lambda: "Screenshot" in toasts(app), "its toast")
        assert "Failed to save screenshot" not in [str(n.message) for n in app._notifications]

    run(scenario, directory=sock_dir)


# ---------------------------------------------------------------- finding and losing the engine


def test_no_engine_says_so_points_to_a_discoverable_demo_and_keeps_looking(sock_dir: Path) -> None:
    async def scenario(app: Dashboard, pilot: Pilot[int]) -> None:
        await until(pilot, lambda: app.link_state == SEARCHING, "searching")
        await pilot.pause(0.2)
        notice = str(app.races_panel.empty.render())
        assert "No raceway engine is running" in notice and "raceway demo --headless" in notice
        assert "NO ENGINE" in app.topbar.text("state")
        # an engine starts: found by itself (its socket name carries a live pid: ours)
        with ReplayMonitor(sock_dir / f"raceway-{os.getpid()}.sock", LINES):
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
        await settled(app, pilot, len(LINES))

    with ReplayMonitor(first, LINES), ReplayMonitor(second, LINES):
        app = run(scenario, directory=sock_dir)
    assert app.target in (first, second)


def test_it_reconnects_by_itself_when_the_engine_restarts(sock_dir: Path) -> None:
    """Stop the engine: the dashboard says so, dims what it shows, retries with back-off;
    an engine on the same path again: it reconnects without a key pressed."""
    path = sock_dir / "raceway-10.sock"
    engine = ReplayMonitor(path, LINES)

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
        assert "lost the engine" in log_text(app) and "Disconnected" in toasts(app)
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


def test_r_reconnects_at_once_without_calling_the_engine_lost(sock_dir: Path) -> None:
    path = sock_dir / "raceway-11.sock"

    async def scenario(app: Dashboard, pilot: Pilot[int]) -> None:
        await settled(app, pilot, len(LINES))
        await pilot.press("r")
        await until(pilot, lambda: app.sessions == 2 and app.link_state == CONNECTED, "a second session")
        await settled(app, pilot, 2 * len(LINES))
        text = log_text(app)
        assert "lost the engine" not in text and "reconnecting to" in text
        assert "Disconnected" not in toasts(app) and "Reconnected" in toasts(app)
        assert app.model.races and not any(r.outcome == "unknown" for r in app.model.races.values())

    with ReplayMonitor(path, LINES):
        run(scenario, socket=path)


def test_a_theme_change_repaints_races_in_the_new_colours(sock_dir: Path) -> None:
    path = sock_dir / "raceway-12.sock"

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

    with ReplayMonitor(path, LINES):
        run(scenario, socket=path)
