"""raceway-dashboard --redis: the fleet's stream read back as wire messages, two engines in it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio
from conftest_redis import RedisServer, redis_server
from test_shared import HERE, MESSAGES, fleet_config, run_worker, write_config

import raceway
from dashboard import fleet_link
from dashboard.__main__ import main as dashboard_main

__all__ = ["redis_server"]


async def read_until(url: str, prefix: str, done: Any) -> list[Any]:
    got: list[Any] = []

    async def collect() -> None:
        async for message in fleet_link.fleet_messages(url, prefix):
            got.append(message)
            if done(got):
                return

    await asyncio.wait_for(collect(), 20)
    return got


async def test_the_fleet_link_yields_two_engines_events(redis_server: RedisServer, tmp_path: Path) -> None:
    config = write_config(tmp_path, fleet_config(redis_server.url, prefix="fleet", events=True))
    with trio.fail_after(30):
        await run_worker(config, "plain", 3)  # another process
        async with raceway.open_engine(config) as engine:
            for _ in range(3):
                await engine.complete(MESSAGES, model="plain")

    def fleet_total(messages: list[Any]) -> bool:
        return any(m.type == "stats" and m.providers.get("fine/m", {}).get("races") == 6 for m in messages)

    messages = await trio.to_thread.run_sync(lambda: asyncio.run(read_until(redis_server.url, "fleet", fleet_total)))
    assert messages[0].type == "hello"
    engines = {m.race_id.rpartition("-")[0] for m in messages if m.type == "race_finished"}
    assert len(engines) == 2
    kinds = {m.type for m in messages}
    assert {"race_started", "attempt_started", "race_finished", "stats"} <= kinds
    # (the fleet's figures, from the stream alone: the read ended at a stats line with all 6 races)


def test_the_relay_serves_the_stream_on_a_socket(redis_server: RedisServer) -> None:
    async def scenario() -> list[bytes]:
        path = fleet_link.start_relay(redis_server.url, "empty")
        reader, writer = await asyncio.open_unix_connection(str(path))
        line = await asyncio.wait_for(reader.readline(), 10)
        writer.close()
        assert os.stat(path).st_mode & 0o777 == 0o600
        return [line]

    (line,) = asyncio.run(scenario())
    assert b'"type":"hello"' in line


def test_dashboard_rejects_a_bad_redis_url(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        dashboard_main(["--redis", "http://user:secret@host"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--redis must be a URL" in err and "secret" not in err


def test_the_dashboard_imports_only_raceway_wire() -> None:
    code = (
        "import sys, dashboard.fleet_link, dashboard.__main__;"
        "print(sorted(m for m in sys.modules if m.startswith('raceway')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=HERE.parent)
    loaded = eval(out.stdout)
    assert set(loaded) <= {"raceway", "raceway.wire", "raceway._events", "raceway._result", "raceway._chunk"}, loaded
