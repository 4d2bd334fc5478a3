"""Clean exits (issue 11, item 9): SIGINT and SIGTERM end every long-running command with
statistics saved, sockets removed, exit 0 (130 for Ctrl-C) and no traceback; and an
embedder's KeyboardInterrupt leaves raceway's nurseries as a bare KeyboardInterrupt.

The commands run for real in a subprocess (private HOME/XDG directories from
conftest); each test waits for a line that says the command is running, then
signals it. Waits are bounded by deadlines, never timed sleeps.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

import pytest
import trio
import trio.testing

import raceway
from raceway import _cli
from raceway._exits import Stopped, run_stoppable
from raceway._persist import default_performance_path, read_file

TESTS = Path(__file__).parent
DEADLINE_S = 60


class Running:
    """A command in a subprocess whose output is read as it comes."""

    def __init__(self, *args: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(TESTS)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "raceway", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        self.text = {"out": b"", "err": b""}
        self._lock = threading.Lock()
        self._readers = [
            threading.Thread(target=self._read, args=(name, stream), daemon=True)
            for name, stream in (("out", self.proc.stdout), ("err", self.proc.stderr))
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, name: str, stream: IO[bytes] | None) -> None:
        assert stream is not None
        while chunk := os.read(stream.fileno(), 65536):
            with self._lock:
                self.text[name] += chunk

    def wait_for(self, stream: str, marker: str) -> str:
        """Wait until ``marker`` shows in ``stream``; the stream's text so far."""
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            with self._lock:
                text = self.text[stream].decode(errors="replace")
            if marker in text:
                return text
            assert self.proc.poll() is None, f"ended early: {self.text['err'].decode(errors='replace')}"
            time.sleep(0.01)  # polling another process's output; bounded by the deadline
        raise AssertionError(f"{marker!r} never came; stderr: {self.text['err'].decode(errors='replace')}")

    def stop(self, signum: int) -> tuple[int, str, str]:
        self.proc.send_signal(signum)
        code = self.proc.wait(DEADLINE_S)
        for reader in self._readers:
            reader.join(DEADLINE_S)
        return code, self.text["out"].decode(errors="replace"), self.text["err"].decode(errors="replace")


EXPECTED = {signal.SIGINT: 130, signal.SIGTERM: 0}


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_demo_headless_stops_cleanly(signum: int) -> None:
    demo = Running("demo", "--headless")
    err = demo.wait_for("err", "monitor: ")
    demo.wait_for("out", "#")  # races are running
    socket = Path(err.split("monitor: ", 1)[1].splitlines()[0].strip())
    assert socket.exists()
    code, _, err = demo.stop(signum)
    assert code == EXPECTED[signum], err
    assert "Traceback" not in err and "ExceptionGroup" not in err
    assert not socket.exists(), "the monitor socket was removed"
    stats = read_file(default_performance_path())
    assert sum(r.races for r in stats.values()) > 0, "the statistics were saved"
    assert not list(default_performance_path().parent.glob(".*.tmp"))


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_bench_stops_cleanly(signum: int, tmp_path: Path) -> None:
    bench = Running("bench", "--requests", "100000", "--no-sweep", "--out", str(tmp_path / "report"))
    bench.wait_for("err", "raceway: bench:")
    code, _, err = bench.stop(signum)
    assert code == EXPECTED[signum], err
    assert "Traceback" not in err
    assert not (tmp_path / "report").exists(), "an interrupted bench writes no report"


def test_run_interrupted_exits_130_without_a_traceback(tmp_path: Path) -> None:
    cfg = tmp_path / "hang.yaml"
    cfg.write_text(
        "monitor: {socket: 'off'}\nproviders: {slow: {type: python, callable: 'failing:first_word_then_hang'}}\n"
    )
    run = Running("run", "-c", str(cfg), "hello")
    run.wait_for("out", "thinking...")
    code, _, err = run.stop(signal.SIGINT)
    assert code == 130, err
    assert "Traceback" not in err and err.strip().splitlines() == ["raceway: interrupted"]


def test_a_second_ctrl_c_is_still_no_traceback() -> None:
    demo = Running("demo", "--headless")
    demo.wait_for("out", "#")
    demo.proc.send_signal(signal.SIGINT)
    code, _, err = demo.stop(signal.SIGINT)
    assert code == 130 and "Traceback" not in err


# ---------------------------------------------------------------- the dashboard demo


def test_quitting_the_dashboard_demo_exits_0(monkeypatch: pytest.MonkeyPatch) -> None:
    """`make demo` then `q`: the dashboard exits 0, its engine child gets SIGINT and exits 130
    (a clean stop), so the demo exits 0."""
    children: list[subprocess.Popen[bytes]] = []
    real_popen = subprocess.Popen

    def popen(command: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        child = real_popen(command, **kwargs)
        children.append(child)
        return child

    def dashboard(command: list[str]) -> int:  # stands in for the real one: waits for races, quits
        socket = Path(command[command.index("--socket") + 1])
        log = socket.parent / "engine.log"
        deadline = time.monotonic() + DEADLINE_S
        while "monitor: " not in (log.read_text() if log.exists() else "") and time.monotonic() < deadline:
            time.sleep(0.02)
        assert socket.exists()
        return 0

    monkeypatch.setattr(subprocess, "Popen", popen)
    monkeypatch.setattr(subprocess, "call", dashboard)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert _cli.main(["demo"]) == 0
    assert children[0].returncode == 130, "the engine stopped cleanly on SIGINT"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a pseudo-terminal test")
@pytest.mark.parametrize("how", ["q", "SIGTERM"])
def test_make_demo_then_q_exits_0_in_a_terminal(how: str) -> None:
    """The real thing: the demo with its dashboard in a pseudo-terminal, then `q` (or a
    SIGTERM to the demo itself): exit 0, no traceback, no "exit code" complaint."""
    import pty
    import select

    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "100", "LINES": "30"}
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.execvpe(sys.executable, [sys.executable, "-m", "raceway", "demo"], env)
    screen = b""
    deadline = time.monotonic() + DEADLINE_S
    try:
        while b"swift" not in screen and time.monotonic() < deadline:  # a race is on screen
            if select.select([fd], [], [], 0.1)[0]:
                screen += os.read(fd, 65536)
        assert b"swift" in screen, screen[-500:]
        if how == "q":
            os.write(fd, b"q")
        else:
            os.kill(pid, signal.SIGTERM)
        status = None
        while status is None and time.monotonic() < deadline:
            if select.select([fd], [], [], 0.1)[0]:
                try:
                    screen += os.read(fd, 65536)
                except OSError:
                    pass
            done, raw = os.waitpid(pid, os.WNOHANG)
            status = raw if done else None
    finally:
        os.close(fd)
    assert status is not None, "the demo did not exit"
    assert os.waitstatus_to_exitcode(status) == 0
    assert b"Traceback" not in screen and b"exit code" not in screen


# ---------------------------------------------------------------- embedders


SIM = raceway.Config(
    performance_file="off",
    providers={"s": raceway.SimProvider(ttft_ms=50, sigma=0)},
)


@pytest.mark.parametrize("where", ["body", "stream", "nested"])
def test_a_keyboard_interrupt_in_the_callers_code_reaches_it_bare(where: str, tmp_path: Path) -> None:
    config = SIM if where != "body" else raceway.Config(
        performance_file=str(tmp_path / "perf.json"),
        monitor=raceway.MonitorConfig(socket=str(tmp_path / "m.sock")),
        providers={"s": raceway.SimProvider(ttft_ms=50, sigma=0)},
    )

    async def main() -> None:
        async with raceway.open_engine(config) as engine:
            await engine.complete([{"role": "user", "content": "hi"}])
            if where == "body":
                raise KeyboardInterrupt
            if where == "stream":
                async with engine.stream([{"role": "user", "content": "hi"}]) as race:
                    async for _ in race:
                        raise KeyboardInterrupt
            async with trio.open_nursery() as nursery:  # the caller's own nursery, inside ours
                nursery.start_soon(trio.sleep_forever)
                raise KeyboardInterrupt

    with pytest.raises(BaseException) as info:
        trio.run(main)
    if where == "nested":  # the caller's own nursery wraps it; raceway adds nothing around that
        assert isinstance(info.value, BaseExceptionGroup)
        assert [type(e) for e in info.value.exceptions] == [KeyboardInterrupt]
    else:
        assert type(info.value) is KeyboardInterrupt
    assert not (tmp_path / "m.sock").exists()


def test_a_real_sigint_in_an_embedders_trio_program_is_a_bare_keyboard_interrupt() -> None:
    async def main() -> None:
        async with raceway.open_engine(SIM) as engine:
            await engine.complete([{"role": "user", "content": "hi"}])
            signal.raise_signal(signal.SIGINT)
            await trio.sleep(5)

    with pytest.raises(KeyboardInterrupt):
        trio.run(main)


def test_run_stoppable_returns_the_result_or_raises_stopped() -> None:
    async def answer(x: int) -> int:
        await trio.sleep(0)
        return x * 2

    assert run_stoppable(answer, 21) == 42

    async def until_stopped() -> None:
        signal.raise_signal(signal.SIGTERM)
        await trio.sleep_forever()

    with pytest.raises(Stopped) as info:
        run_stoppable(until_stopped)
    assert info.value.exit_status == 0

    async def fails() -> None:
        raise ValueError("mine")

    with pytest.raises(ValueError, match="mine"):
        run_stoppable(fails)


def test_a_server_drains_within_the_grace_then_is_cancelled() -> None:
    """``stop_requested`` is a server's shutdown trigger; ``grace_s`` bounds the drain."""
    from raceway._exits import stop_requested

    events: list[tuple[str, float]] = []

    async def drains_in_time() -> None:
        signal.raise_signal(signal.SIGTERM)
        await stop_requested()
        events.append(("asked", trio.current_time()))
        await trio.sleep(1.0)  # finishing the requests in flight
        events.append(("drained", trio.current_time()))

    with pytest.raises(Stopped) as info:
        run_stoppable(drains_in_time, grace_s=5.0, clock=trio.testing.MockClock(autojump_threshold=0))
    assert info.value.exit_status == 0
    assert events == [("asked", 0.0), ("drained", 1.0)]

    async def never_drains() -> None:
        signal.raise_signal(signal.SIGINT)
        try:
            await trio.sleep_forever()
        finally:
            events.append(("cancelled", trio.current_time()))

    events.clear()
    with pytest.raises(Stopped) as info:
        run_stoppable(never_drains, grace_s=5.0, clock=trio.testing.MockClock(autojump_threshold=0))
    assert info.value.exit_status == 130 and events == [("cancelled", 5.0)]
