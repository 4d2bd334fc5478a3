"""A real ``redis-server`` per test, on a free loopback port, persistence off; and a silent one.

Import the fixtures into a test module (``from conftest_redis import redis_server``).
Without ``redis-server`` on ``PATH`` the tests that use it skip with a one-line
reason — except under ``CI=true``, where a missing server is a failure
(``.ci/run`` installs the Debian package).

``redis_server.kill()`` and ``.start()`` stop and restart the same port (an
empty server again: nothing is persisted), for tests of Redis going away.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator

import pytest

#: How long a server may take to say it is ready.
START_TIMEOUT_S = 10.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class RedisServer:
    """One ``redis-server`` process on 127.0.0.1 (``url``), restartable on its port."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "notice",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        ready = threading.Event()
        seen: list[bytes] = []

        out = self.proc.stdout
        assert out is not None

        def watch() -> None:  # reads to the end, so the server never blocks on a full pipe
            for line in out:
                seen.append(line)
                if b"Ready to accept connections" in line:
                    ready.set()
            ready.set()

        threading.Thread(target=watch, daemon=True).start()
        if not ready.wait(START_TIMEOUT_S) or self.proc.poll() is not None:
            self.kill()
            raise RuntimeError("redis-server did not start: " + b"".join(seen[-5:]).decode(errors="replace"))

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


def redis_binary() -> str:
    """``redis-server``'s path; skips (fails under ``CI=true``) when it is not installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is not installed; .ci/run installs it (apt-get install redis-server)")
        pytest.skip("redis-server is not installed (apt-get install redis-server to run the fleet tests)")
    return binary


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer(redis_binary())
    server.start()
    try:
        yield server
    finally:
        server.kill()


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never answers (a Redis that hangs)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()  # the kernel completes the handshakes; nobody ever reads
    try:
        yield server
    finally:
        server.sock.close()
