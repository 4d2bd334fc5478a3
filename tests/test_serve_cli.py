"""``raceway serve`` as a command: start-up lines, the monitor socket, signals, setup errors."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from serve_support import sse_events

import raceway
from raceway._gateway import _server

TESTS = Path(__file__).parent
CONFIG = """
timeout_ms: 3000
grace_period_ms: 0
performance_file: off
default_virtual_model: fast
providers:
  quick: {type: sim, model: quick-1, ttft_ms: 5, sigma: 0, tokens_per_s: 2000, text: "Hello from quick."}
  slow: {type: sim, model: slow-1, ttft_ms: 700, sigma: 0, tokens_per_s: 2000, text: "Hello from slow."}
virtual_models:
  fast: {providers: [quick]}
  slowest: {providers: [slow]}
"""


class Serve:
    """A ``raceway serve`` child process and what it said at start."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.output = ""
        self.url = ""
        self.socket = ""

    async def read_until(self, pattern: str) -> re.Match[str]:
        assert self.process.stderr is not None
        with trio.fail_after(20):
            while (match := re.search(pattern, self.output)) is None:
                data = await self.process.stderr.receive_some(4096)
                if not data:
                    raise AssertionError(f"raceway serve ended early:\n{self.output}")
                self.output += data.decode()
        return match

    async def finish(self) -> int:
        assert self.process.stderr is not None
        with trio.fail_after(20):
            while data := await self.process.stderr.receive_some(4096):
                self.output += data.decode()
            return await self.process.wait()


async def start(tmp_path: Path, config: str = CONFIG, *args: str) -> Serve:
    path = tmp_path / "raceway.yaml"
    path.write_text(config)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "raceway", "serve", "-c", str(path), "--port", "0", *args]
    process = await trio.lowlevel.open_process(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                               stderr=subprocess.PIPE, env=env)
    serve = Serve(process)
    serve.url = (await serve.read_until(r"listening on (http://\S+) "))[1]
    serve.socket = (await serve.read_until(r"monitor socket (\S+) "))[1]
    return serve


async def test_serve_prints_where_answers_is_watched_and_stops_on_sigterm(tmp_path: Path) -> None:
    serve = await start(tmp_path)
    try:
        monitor = await trio.open_unix_socket(serve.socket)
        hello = json.loads((await monitor.receive_some(65536)).split(b"\n")[0])
        async with httpx.AsyncClient(base_url=serve.url) as http:
            health = await http.get("/healthz")
            answer = await http.post("/v1/chat/completions", json={"model": "fast", "messages": [{"role": "user", "content": "hi"}]})
        await monitor.aclose()
    finally:
        serve.process.send_signal(signal.SIGTERM)
    code = await serve.finish()
    assert hello["type"] == "hello"
    assert health.status_code == 200
    assert answer.json()["choices"][0]["message"]["content"] == "Hello from quick."
    assert code == 0, serve.output
    assert "Traceback" not in serve.output and "raceway serve: stopped" in serve.output
    assert not Path(serve.socket).exists()  # the engine closed as usual


def test_a_piped_stdout_carries_the_url_too(tmp_path: Path) -> None:
    """A script waiting for ``--port 0``'s URL may read stdout or stderr: both carry it when piped."""
    path = tmp_path / "raceway.yaml"
    path.write_text(CONFIG)
    command = [sys.executable, "-m", "raceway", "serve", "-c", str(path), "--port", "0"]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert re.search(r"raceway serve: listening on http://127\.0\.0\.1:\d+ ", line), line
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=20)
    assert process.returncode == 0 and "listening on http://127.0.0.1:" in err


async def test_ctrl_c_drains_in_flight_requests_then_exits_130(tmp_path: Path) -> None:
    serve = await start(tmp_path)
    answers: list[httpx.Response] = []
    monitor = await trio.open_unix_socket(serve.socket)
    async with httpx.AsyncClient(base_url=serve.url, timeout=10) as http, trio.open_nursery() as nursery:

        async def ask() -> None:
            body = {"model": "slowest", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
            answers.append(await http.post("/v1/chat/completions", json=body))

        nursery.start_soon(ask)
        seen = b""
        with trio.fail_after(10):  # the race is running (the monitor says so): now interrupt
            while b'"race_started"' not in seen:
                seen += await monitor.receive_some(65536)
        serve.process.send_signal(signal.SIGINT)
    await monitor.aclose()
    code = await serve.finish()
    assert code == 130, serve.output  # Ctrl-C: the shell's 128 + SIGINT, as every raceway command
    events = [data for _, data in sse_events(answers[0].text)]
    assert answers[0].status_code == 200 and events[-1] == "[DONE]"
    assert "".join(e["choices"][0]["delta"].get("content") or "" for e in events[:-1]) == "Hello from slow."
    assert "stopping: finishing in-flight requests" in serve.output and "Traceback" not in serve.output
    assert serve.output.rstrip().endswith("raceway: interrupted")


def run_cli(tmp_path: Path, config: str, *args: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "raceway.yaml"
    path.write_text(config)
    return subprocess.run([sys.executable, "-m", "raceway", "serve", "-c", str(path), *args],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def test_an_unset_key_variable_is_a_setup_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RW_UNSET_KEYS", raising=False)
    done = run_cli(tmp_path, CONFIG + "serve: {api_keys_env: RW_UNSET_KEYS}\n", "--port", "0")
    assert done.returncode == 2
    assert "serve.api_keys_env" in done.stderr and "RW_UNSET_KEYS" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_an_address_in_use_is_a_setup_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_cli(tmp_path, CONFIG, "--port", str(port))
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr and "Traceback" not in done.stderr


def test_a_bad_port_is_a_usage_error(tmp_path: Path) -> None:
    done = run_cli(tmp_path, CONFIG, "--port", "70000")
    assert done.returncode == 2 and "--port" in done.stderr


class _Lines(io.StringIO):
    """Collects what ``run_gateway`` prints and wakes whoever waits for a line."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = trio.Event()

    def write(self, text: str) -> int:
        n = super().write(text)
        self.changed.set()
        self.changed = trio.Event()
        return n


async def test_no_keys_on_a_public_address_prints_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    # Bound on loopback all the same: the check is what we test, not a public socket.
    monkeypatch.setattr(_server, "is_loopback", lambda host: False)
    config = raceway.loads_config(CONFIG + "monitor: {socket: off}\n")
    out = _Lines()
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(partial(_server.run_gateway, config, "127.0.0.1", 0, out=out, shutdown_trigger=stop.wait))
        with trio.fail_after(10):
            while "listening on" not in out.getvalue():
                await out.changed.wait()
        stop.set()
    text: Any = out.getvalue()
    assert "warning: listening on 127.0.0.1 without gateway keys" in text
    assert "serve.api_keys_env" in text and text.rstrip().endswith("stopped")
