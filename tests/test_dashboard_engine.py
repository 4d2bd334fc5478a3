"""The dashboard against the real engine, and its command line.

``raceway demo --headless --monitor-socket PATH`` is the dashboard's live test
double: the real engine on the embedded ``sim`` providers, serving its monitor
where the test says. The command line must refuse to run without a terminal
(Textual would otherwise draw into a pipe forever).
"""

from __future__ import annotations

import ast
import asyncio
import os
import pty
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dashboard.app import CONNECTED, DISCONNECTED, Dashboard


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="rwe-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_the_dashboard_shows_a_real_engine_on_sim_providers(sock_dir: Path) -> None:
    path = sock_dir / "raceway-demo.sock"
    command = [sys.executable, "-m", "raceway", "demo", "--headless", "--quiet", "--monitor-socket", str(path)]
    engine = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    app = Dashboard(path)

    async def main() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            deadline = time.monotonic() + 20

            async def until(condition: object, what: str) -> None:
                while not condition():  # type: ignore[operator]
                    assert time.monotonic() < deadline, f"timed out waiting for {what}"
                    assert engine.poll() is None or what == "disconnected", "the demo engine stopped"
                    await pilot.pause(0.05)

            await until(lambda: app.link_state == CONNECTED, "connected")
            await until(lambda: sum(r.finished for r in app.model.races.values()) >= 4, "four races")
            assert app.model.hello is not None and app.model.hello.pid == engine.pid
            assert {"swift/swift-1", "steady/steady-2", "laggard/laggard-xl"} <= set(app.providers_panel.rows)
            assert app.races_table.order and app.topbar.text("state") == "● CONNECTED"
            engine.send_signal(signal.SIGTERM)
            await until(lambda: app.link_state == DISCONNECTED, "disconnected")

    try:
        asyncio.run(asyncio.wait_for(main(), 30))
    finally:
        engine.kill()
        _, err = engine.communicate(timeout=10)
    assert b"Traceback" not in err, err.decode(errors="replace")


@pytest.mark.parametrize("stdin_is_a_tty", [False, True])
def test_no_terminal_exits_2_with_one_line(stdin_is_a_tty: bool) -> None:
    master, slave = pty.openpty()
    try:
        started = time.monotonic()
        out = subprocess.run(
            [sys.executable, "-m", "dashboard", "--socket", "/nonexistent/raceway.sock"],
            stdin=slave if stdin_is_a_tty else subprocess.DEVNULL,  # stdout is a pipe either way
            capture_output=True,
            timeout=30,
        )
    finally:
        os.close(master)
        os.close(slave)
    assert out.returncode == 2
    lines = out.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "needs a terminal" in lines[0], lines
    assert out.stdout == b"", "no escape codes into the pipe"
    assert time.monotonic() - started < 20


def test_the_command_line_describes_itself() -> None:
    out = subprocess.run([sys.executable, "-m", "dashboard", "--help"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "--socket PATH" in out.stdout


def test_the_dashboard_imports_nothing_of_raceway_but_the_wire_format() -> None:
    def loaded(imports: str) -> set[str]:
        code = f"import sys, {imports}; print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
        return set(ast.literal_eval(out.stdout))

    assert loaded("dashboard.app, dashboard.__main__") == loaded("raceway.wire")
    assert not loaded("dashboard.app") & {"trio", "httpx", "cattrs", "yaml", "raceway._engine"}
    for module in Path(__file__).parent.parent.joinpath("dashboard").glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("raceway"):
                assert node.module == "raceway" and [a.name for a in node.names] == ["wire"], module
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("raceway") for a in node.names), module


HEAVY = ("raceway", "trio", "httpx", "cattrs", "yaml")
