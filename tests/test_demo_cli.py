"""``raceway demo``: headless flags, and the dashboard demo's process lifecycle."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from raceway import _cli


def test_headless_quiet_prints_no_race_lines(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = _cli.main(["demo", "--headless", "--quiet", "--races", "3", "--monitor-socket", str(tmp_path / "m.sock")])
    assert code == 0
    assert "#1" not in capsys.readouterr().out


def test_the_dashboard_demo_runs_the_engine_beside_it_and_stops_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine runs as a child (headless, quiet, monitor on a private socket) while the
    dashboard runs in front; when the dashboard exits, the child is stopped and its files removed."""
    children: list[subprocess.Popen[bytes]] = []
    seen: dict[str, Any] = {}
    real_popen = subprocess.Popen

    def popen(command: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        child = real_popen(command, **kwargs)
        children.append(child)
        return child

    def dashboard(command: list[str]) -> int:
        seen["command"] = command
        socket = Path(command[command.index("--socket") + 1])
        seen["socket"] = socket
        seen["workdir_existed"] = socket.parent.is_dir()
        seen["engine_running"] = children[0].poll() is None
        return 0

    assert _run_demo(monkeypatch, popen, dashboard) == 0
    assert seen["command"][:3] == [sys.executable, "-m", "dashboard"]
    assert seen["workdir_existed"] and seen["engine_running"]
    engine_command = children[0].args
    assert isinstance(engine_command, list)
    assert engine_command[1:6] == ["-m", "raceway", "demo", "--headless", "--quiet"]
    assert engine_command[engine_command.index("--monitor-socket") + 1] == str(seen["socket"])
    assert children[0].returncode is not None, "the engine was stopped"
    assert not seen["socket"].parent.exists(), "its directory was removed"


def test_without_a_terminal_the_demo_runs_headless(capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli.main(["demo", "--races", "2"]) == 0
    captured = capsys.readouterr()
    assert "no terminal to show the dashboard in; running headless" in captured.err
    assert "#1" in captured.out or "#2" in captured.out


def _run_demo(monkeypatch: pytest.MonkeyPatch, popen: Callable[..., Any], dashboard: Callable[[list[str]], int]) -> int:
    """``raceway demo`` in a (pretended) terminal, with the engine's ``Popen`` and the dashboard stood in for."""
    monkeypatch.setattr(subprocess, "Popen", popen)
    monkeypatch.setattr(subprocess, "call", dashboard)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    return _cli.main(["demo"])


def _demo_with_child(monkeypatch: pytest.MonkeyPatch, child_code: str, *, wait_for: str | None = None) -> int:
    """``raceway demo`` with the engine child replaced by ``python -c child_code``; the dashboard
    quits once the child's log shows ``wait_for`` (at once when ``None``), or when it exited."""
    real_popen = subprocess.Popen
    children: list[subprocess.Popen[bytes]] = []

    def popen(command: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        children.append(real_popen([sys.executable, "-c", child_code], **kwargs))
        return children[-1]

    def dashboard(command: list[str]) -> int:
        log = Path(command[command.index("--socket") + 1]).parent / "engine.log"
        deadline = time.monotonic() + 30
        while wait_for is not None and wait_for not in log.read_text() and children[0].poll() is None:
            assert time.monotonic() < deadline, "the child never said it was up"
            time.sleep(0.01)
        if wait_for is None:
            children[0].wait(30)
        return 0

    return _run_demo(monkeypatch, popen, dashboard)


def test_quitting_while_the_engine_still_starts_is_a_clean_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    """A dashboard quit at once interrupts the engine before its handlers are set (a
    KeyboardInterrupt in an import, exit 1): that stop was ours, not an engine failure."""
    # As when the interrupt lands in Python's start-up imports: a traceback and exit 1 (not -SIGINT).
    code = "import sys, time\nprint('up', flush=True)\ntry:\n    time.sleep(30)\nexcept KeyboardInterrupt:\n    sys.exit(1)"
    assert _demo_with_child(monkeypatch, code, wait_for="up") == 0


def test_an_engine_that_ends_on_its_own_with_an_error_is_reported(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code = "import sys; print('the engine broke'); sys.exit(3)"
    assert _demo_with_child(monkeypatch, code) == 1
    err = capsys.readouterr().err
    assert "the demo engine stopped with exit code 3" in err and "the engine broke" in err
