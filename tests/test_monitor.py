"""The monitor socket, attached to the way a user would: a plain Unix socket, JSON lines."""

from __future__ import annotations

import functools
import json
import os
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio

import raceway
from raceway import wire
from raceway._monitor import serve_monitor

HI = [{"role": "user", "content": "hi"}]


def sim_config(socket_setting: str = "auto") -> raceway.Config:
    # a answers at 10 ms then 1 ms per word; b at 20 ms. Exact on a virtual clock.
    return raceway.loads_config(
        f"""
performance_file: "off"
monitor: {{socket: "{socket_setting}"}}
grace_period_ms: 0
providers:
  a: {{type: sim, model: a1, ttft_ms: 10, sigma: 0, tokens_per_s: 1000, text: "from a"}}
  b: {{type: sim, model: b1, ttft_ms: 20, sigma: 0, tokens_per_s: 1000, text: "from b"}}
  secretive: {{type: openai, base_url: "https://example.invalid/v1", api_key_env: SECRET_KEY_VAR,
               model: m, headers: {{Authorization: "Bearer sk-hush"}}}}
virtual_models:
  vm: {{display_name: "Two sims", providers: [{{name: a}}, {{name: b}}]}}
  other: {{providers: [{{name: secretive}}]}}
default_virtual_model: vm
"""
    )


class Lines:
    """Reads newline-delimited JSON from a trio stream."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self.stream = stream
        self.buffer = bytearray()

    async def raw(self) -> bytes:
        while (end := self.buffer.find(b"\n")) < 0:
            data = await self.stream.receive_some(1 << 16)
            if not data:
                raise EOFError("the monitor closed the connection")
            self.buffer += data
        line = bytes(self.buffer[: end + 1])
        del self.buffer[: end + 1]
        return line

    async def next(self) -> dict[str, Any]:
        line = await self.raw()
        wire.decode(line)  # every line is a valid message of the protocol
        message: dict[str, Any] = json.loads(line)
        return message

    async def until(self, kind: str, **match: Any) -> list[dict[str, Any]]:
        """Messages up to and including the first of ``kind`` matching ``match``."""
        seen = []
        while True:
            m = await self.next()
            seen.append(m)
            if m["type"] == kind and all(m.get(k) == v for k, v in match.items()):
                return seen


async def test_a_client_reads_hello_snapshot_then_live_events() -> None:
    with trio.fail_after(10):
        async with raceway.open_engine(sim_config()) as engine:
            before = await engine.complete(HI)
            path = engine.monitor_socket
            assert path is not None and path.parent == wire.default_monitor_dir()
            assert path.name == f"raceway-{os.getpid()}.sock"
            assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_ISSOCK(path.stat().st_mode)
            assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
            assert wire.find_sockets() == [path]

            async with await trio.open_unix_socket(str(path)) as stream:
                lines = Lines(stream)
                hello_raw = await lines.raw()
                assert b"sk-hush" not in hello_raw and b"SECRET_KEY_VAR" not in hello_raw
                hello = wire.decode(hello_raw)
                assert isinstance(hello, wire.Hello)
                assert (hello.protocol, hello.pid, hello.engine_version) == (1, os.getpid(), raceway.__version__)
                assert [m.id for m in hello.virtual_models] == ["vm", "other"]
                assert hello.virtual_models[0].providers == ("a/a1", "b/b1")

                snapshot = await lines.next()
                assert snapshot["type"] == "snapshot"
                assert [r["race_id"] for r in snapshot["races"]] == [before.race_id]
                assert snapshot["stats"]["a/a1"]["wins"] == 1 and snapshot["stats"]["b/b1"]["races"] == 1

                result = await engine.complete(HI)
                events = await lines.until("race_finished", race_id=result.race_id)
            types = [e["type"] for e in events if e.get("race_id") == result.race_id]
            assert types == [
                "race_started",
                "attempt_started",
                "attempt_started",
                "attempt_first_token",
                "race_decided",
                "attempt_cancelled",
                "race_finished",
            ]
            assert all(isinstance(e["ts"], float) for e in events)
        assert not path.exists()  # removed at a clean exit


async def test_snapshot_keeps_the_recent_races_bounded(autojump_clock: Any) -> None:
    async with raceway.open_engine(sim_config()) as engine:
        ids = [(await engine.complete(HI)).race_id for _ in range(205)]
        assert engine.monitor_socket is not None
        async with await trio.open_unix_socket(str(engine.monitor_socket)) as stream:
            lines = Lines(stream)
            await lines.next()
            snapshot = await lines.next()
    assert [r["race_id"] for r in snapshot["races"]] == ids[-200:]


async def test_many_clients_at_once_each_get_every_event_and_input_is_ignored() -> None:
    with trio.fail_after(10):
        async with raceway.open_engine(sim_config()) as engine:
            assert engine.monitor_socket is not None
            streams = [await trio.open_unix_socket(str(engine.monitor_socket)) for _ in range(3)]
            readers = [Lines(s) for s in streams]
            for r in readers:
                assert [(await r.next())["type"] for _ in range(2)] == ["hello", "snapshot"]
            await streams[0].send_all(b'{"type": "please"}\nnonsense\n' * 1000)  # ignored
            await streams[1].send_eof()  # a half-closed client (socat after its stdin ends) still reads
            result = await engine.complete(HI)
            for r in readers:
                events = await r.until("race_finished", race_id=result.race_id)
                assert sum(e["type"] == "attempt_started" for e in events) == 2
            for s in streams:
                await s.aclose()


async def test_stats_arrive_periodically_while_a_client_is_attached(tmp_path: Path) -> None:
    path = tmp_path / "m.sock"
    with trio.fail_after(10):
        async with raceway.open_engine(sim_config("off")) as engine, trio.open_nursery() as nursery:
            await engine.complete(HI)
            await nursery.start(functools.partial(serve_monitor, engine, path, stats_interval=0.01))
            async with await trio.open_unix_socket(str(path)) as stream:
                lines = Lines(stream)
                (stats,) = [m for m in await lines.until("stats") if m["type"] == "stats"]
                assert stats["providers"]["a/a1"]["wins"] == 1
                assert {"score", "ttft_p95_ms", "cooldown_until", "provider", "model"} <= set(stats["providers"]["a/a1"])
            nursery.cancel_scope.cancel()
    assert not path.exists()


async def test_a_client_that_never_reads_neither_slows_races_nor_misses_a_count(
    autojump_clock: Any, tmp_path: Path
) -> None:
    path = tmp_path / "m.sock"
    races = 300
    per_race = 0.011  # a's first token at 10 ms, its second word 1 ms later; b cancelled then
    emitted: list[Any] = []
    async with raceway.open_engine(sim_config("off")) as engine, trio.open_nursery() as nursery:
        engine.subscribe(emitted.append)
        await nursery.start(functools.partial(serve_monitor, engine, path, queue_limit=50, stats_interval=1e9))
        async with await trio.open_unix_socket(str(path)) as stuck:
            start = trio.current_time()
            for _ in range(races):
                await engine.complete(HI)
            assert trio.current_time() - start == pytest.approx(races * per_race)  # not a tick slower

            lines = Lines(stuck)  # now it reads, and must account for every event
            delivered = dropped = 0
            while delivered + dropped < len(emitted):
                m = await lines.next()
                if m["type"] == "dropped":
                    dropped += m["count"]
                elif m["type"] not in ("hello", "snapshot"):
                    delivered += 1
            assert dropped > 0 and delivered + dropped == len(emitted)
        nursery.cancel_scope.cancel()


async def test_a_stale_socket_file_is_replaced_and_a_live_one_is_not(tmp_path: Path) -> None:
    path = tmp_path / "m.sock"
    crashed = socket.socket(socket.AF_UNIX)
    crashed.bind(str(path))
    crashed.close()  # the file stays, nobody listens: what a crash leaves
    with trio.fail_after(10):
        async with raceway.open_engine(sim_config(str(path))) as engine:
            assert engine.monitor_socket == path
            with pytest.raises(raceway.ConfigError, match="in use by a running raceway engine"):
                async with raceway.open_engine(sim_config(str(path))):
                    pass  # pragma: no cover
            async with await trio.open_unix_socket(str(path)) as stream:
                assert (await Lines(stream).next())["type"] == "hello"  # still the first engine's


async def test_auto_picks_another_name_when_this_process_already_serves(tmp_path: Path) -> None:
    with trio.fail_after(10):
        async with raceway.open_engine(sim_config()) as one, raceway.open_engine(sim_config()) as two:
            assert one.monitor_socket is not None and two.monitor_socket is not None
            assert two.monitor_socket.name == f"raceway-{os.getpid()}-2.sock"
            assert set(wire.find_sockets()) == {one.monitor_socket, two.monitor_socket}


async def test_a_path_that_is_not_a_socket_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_text("mine")
    with pytest.raises(raceway.ConfigError, match="not a socket"):
        async with raceway.open_engine(sim_config(str(path))):
            pass  # pragma: no cover
    assert path.read_text() == "mine"


async def test_off_serves_nothing() -> None:
    async with raceway.open_engine(sim_config("off")) as engine:
        assert engine.monitor_socket is None
    assert wire.find_sockets() == []


def test_attach_to_a_running_demo_with_a_plain_socket() -> None:
    """What a user (or socat) does: start the demo, read its socket path from stderr, attach."""
    demo = subprocess.Popen(
        [sys.executable, "-m", "raceway._cli", "demo", "--headless"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert demo.stderr is not None
        first = demo.stderr.readline()
        assert first.startswith("monitor: "), first
        path = Path(first.removeprefix("monitor: ").strip())
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        with socket.socket(socket.AF_UNIX) as client:
            client.settimeout(20)
            client.connect(str(path))
            reader = client.makefile("rb")
            kinds = [json.loads(reader.readline())["type"] for _ in range(12)]
        assert kinds[:2] == ["hello", "snapshot"]
        assert set(kinds[2:]) & {"race_started", "attempt_started", "attempt_first_token", "race_finished"}
        demo.send_signal(signal.SIGTERM)  # a plain kill ends the demo cleanly
        assert demo.wait(timeout=20) == 0
        assert not path.exists()
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()


async def test_auto_falls_back_to_the_temp_dir_when_the_runtime_dir_is_too_deep(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    short_root = os.environ["XDG_RUNTIME_DIR"]  # a private, short temporary directory
    deep = Path(short_root, *["d" * 30] * 4)
    deep.mkdir(parents=True)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(deep))
    monkeypatch.setattr("tempfile.tempdir", short_root)
    async with raceway.open_engine(sim_config()) as engine:
        path = engine.monitor_socket
        assert path is not None and path.parent == Path(short_root, f"raceway-{os.getuid()}")
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert not path.exists()
