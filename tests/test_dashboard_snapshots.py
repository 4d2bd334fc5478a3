"""Screen snapshots of the dashboard (pytest-textual-snapshot's ``snap_compare``).

The main screen at 80x24 and 160x48 and the help screen, each after the
recorded session of the real engine (``tests/replay_session.ndjson``, see
:mod:`replay_monitor`) was fed through a real socket. Everything shown is a
function of the recording: times and rates run on the engine's clock, the
log's clock is read in UTC here. After an
intended change of the screens, look at the report and accept with::

    .venv/bin/python -m pytest tests/test_dashboard_snapshots.py --snapshot-update

The SVGs depend on Textual's rendering: they are checked against the Textual
release that made them and skipped (saying so) under another one, until
someone looks and updates them.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import textual
from replay_monitor import ReplayMonitor, recorded_lines
from textual.pilot import Pilot

from dashboard.app import Dashboard

#: The Textual release the committed SVGs were made with.
BASELINE_TEXTUAL = "8.2.8"

pytestmark = pytest.mark.skipif(
    textual.__version__ != BASELINE_TEXTUAL,
    reason=f"snapshots were made with Textual {BASELINE_TEXTUAL}, this is {textual.__version__}: "
    "check the screens and run with --snapshot-update",
)

LINES = recorded_lines()
Snap = Callable[..., bool]


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def engine_socket() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="rws-"))
    path = directory / "raceway-4242.sock"  # the name shows in the top bar
    with ReplayMonitor(path, LINES):
        yield path
    shutil.rmtree(directory, ignore_errors=True)


def after_the_recording(app: Dashboard) -> Callable[[Pilot[int]], object]:
    async def run_before(pilot: Pilot[int]) -> None:
        deadline = time.monotonic() + 15
        while app.model.messages < len(LINES) or app.inbox:
            assert time.monotonic() < deadline, "the recording did not arrive"
            await pilot.pause(0.02)
        ticks = app.ticks
        while app.ticks < ticks + 3:  # drawn, and the sparklines sized to their cells
            await pilot.pause(0.05)
        app.clear_notifications()
        await pilot.pause(0.1)

    return run_before


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_main_screen(snap_compare: Snap, utc: None, engine_socket: Path, size: tuple[int, int]) -> None:
    app = Dashboard(engine_socket)
    assert snap_compare(app, terminal_size=size, run_before=after_the_recording(app))


def test_help_screen(snap_compare: Snap, utc: None, engine_socket: Path) -> None:
    app = Dashboard(engine_socket)
    assert snap_compare(app, terminal_size=(80, 24), press=["question_mark"], run_before=after_the_recording(app))
