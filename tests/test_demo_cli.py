"""``raceway demo``: headless flags, and the dashboard demo's process lifecycle."""

from __future__ import annotations

import subprocess
import sys
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

    monkeypatch.setattr(subprocess, "Popen", popen)
    monkeypatch.setattr(subprocess, "call", dashboard)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert _cli.main(["demo"]) == 0
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


def _demo_with_child(monkeypatch: pytest.MonkeyPatch, child_code: str, wait_for_exit: bool) -> int:
    """Run ``raceway demo`` with the engine child replaced by ``python -c child_code``."""
    real_popen = subprocess.Popen
    children: list[subprocess.Popen[bytes]] = []

    def popen(command: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        children.append(real_popen([sys.executable, "-c", child_code], **kwargs))
        return children[-1]

    def dashboard(command: list[str]) -> int:
        if wait_for_exit:
            children[0].wait(30)
        return 0

    monkeypatch.setattr(subprocess, "Popen", popen)
    monkeypatch.setattr(subprocess, "call", dashboard)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    return _cli.main(["demo"])


def test_quitting_while_the_engine_still_starts_is_a_clean_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    """A dashboard quit at once interrupts the engine before its handlers are set (a
    KeyboardInterrupt in an import, exit 1): that stop was ours, not an engine failure."""
    code = "import sys, time; sys.stdout.write('up\\n'); sys.stdout.flush(); time.sleep(30)"
    assert _demo_with_child(monkeypatch, code, wait_for_exit=False) == 0


def test_an_engine_that_ends_on_its_own_with_an_error_is_reported(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code = "import sys; print('the engine broke'); sys.exit(3)"
    assert _demo_with_child(monkeypatch, code, wait_for_exit=True) == 1
    err = capsys.readouterr().err
    assert "the demo engine stopped with exit code 3" in err and "the engine broke" in err
