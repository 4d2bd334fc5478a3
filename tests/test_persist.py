"""performance_file: default path, load/save, atomic and merged writes, corrupt files, `raceway stats`."""

from __future__ import annotations

import functools
import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
from test_tracker import Clock, race

import raceway
from raceway import _persist
from raceway._cli import main
from raceway._persist import (
    SCHEMA_VERSION,
    PerformanceFile,
    default_performance_path,
    keep_performance_file,
    performance_path,
    read_file,
)
from raceway._tracker import Tracker


def sim_config(path: Path | str = "", races_to: str = "off") -> raceway.Config:
    return raceway.loads_config(
        f"""
performance_file: "{path}"
monitor: {{socket: "{races_to}"}}
grace_period_ms: 0
providers:
  a: {{type: sim, model: a1, ttft_ms: 10, sigma: 0, tokens_per_s: 1000, text: "from a"}}
  b: {{type: sim, model: b1, ttft_ms: 20, sigma: 0, tokens_per_s: 1000, text: "from b"}}
virtual_models:
  vm: {{providers: [{{name: a}}, {{name: b}}]}}
"""
    )


HI = [{"role": "user", "content": "hi"}]

# ------------------------------------------------------------------ where


def test_default_path_follows_xdg_state_home_then_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert default_performance_path() == tmp_path / "xdg" / "raceway" / "performance.json"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_performance_path() == tmp_path / "home" / ".local" / "state" / "raceway" / "performance.json"
    assert performance_path("") == default_performance_path()
    assert performance_path("off") is None and performance_path(" OFF ") is None
    assert performance_path("~/x.json") == tmp_path / "home" / "x.json"


# ------------------------------------------------------------------ round trips


def tracker_with(*events: Any, clock: Clock | None = None) -> Tracker:
    tracker = Tracker(clock=clock or Clock())
    for e in events:
        tracker.record(e)
    return tracker


async def test_save_then_load_gives_the_same_statistics(tmp_path: Path) -> None:
    path = tmp_path / "perf.json"
    clock = Clock()
    first = tracker_with(
        race("won", 120.0, usage={"input_tokens": 3, "output_tokens": 5}),
        race("lost", 300.0),
        race("failed", error_kind="http", waited=5.0),
        race("cancelled", waited=800.0, provider="q"),
        clock=clock,
    )
    assert await PerformanceFile(first, path).save()
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert not [p for p in path.parent.iterdir() if p.suffix == ".tmp"]  # no temporary left behind
    doc = json.loads(path.read_text())
    assert (doc["format"], doc["version"]) == ("raceway-performance", SCHEMA_VERSION)

    second = Tracker(clock=clock)
    await PerformanceFile(second, path).load()
    in_memory_only = {"consecutive_failures": 0}  # cooldowns are not persisted
    assert second.snapshot() == {k: attrs.evolve(v, **in_memory_only) for k, v in first.snapshot().items()}
    assert second.changes() == {}  # what was loaded counts as saved


async def test_saving_twice_never_counts_twice(tmp_path: Path) -> None:
    path = tmp_path / "perf.json"
    tracker = tracker_with(race("won", 100.0), race("lost", 100.0))
    keeper = PerformanceFile(tracker, path)
    await keeper.save()
    await keeper.save()
    tracker.record(race("won", 100.0))
    await keeper.save()
    assert read_file(path)["p/m"].races == 3
    mtime = path.stat().st_mtime_ns
    await keeper.save()  # nothing new: the file is not touched
    assert path.stat().st_mtime_ns == mtime


async def test_two_engines_sharing_a_file_keep_each_others_counts(tmp_path: Path) -> None:
    path = tmp_path / "perf.json"
    one, two = Tracker(clock=Clock()), Tracker(clock=Clock())
    await PerformanceFile(one, path).load()
    await PerformanceFile(two, path).load()
    for _ in range(3):
        one.record(race("won", 100.0))
    for _ in range(5):
        two.record(race("failed", error_kind="http", waited=1.0))
    two.record(race("lost", 900.0, provider="q"))
    await PerformanceFile(one, path).save()
    keeper_two = PerformanceFile(two, path)
    await keeper_two.save()
    records = read_file(path)
    assert (records["p/m"].races, records["p/m"].wins, records["p/m"].failures) == (8, 3, {"http": 5})
    assert records["q/m"].races == 1
    assert list(records["p/m"].ttft) == [100.0] * 3  # samples merged, failures have none
    one.record(race("won", 100.0))
    await PerformanceFile(one, path).save()
    assert read_file(path)["p/m"].races == 9


def test_concurrent_savers_never_corrupt_the_file_nor_lose_counts(tmp_path: Path) -> None:
    """Four writers (own trackers, own lock descriptors) and a reader, all at once."""
    path = tmp_path / "perf.json"
    writers, saves, per_save = 4, 15, 3
    stop = threading.Event()
    bad: list[str] = []

    def write(n: int) -> None:
        tracker = Tracker()
        for _ in range(saves):
            for _ in range(per_save):
                tracker.record(race("won", 10.0 + n, provider=f"w{n % 2}"))
            changes = tracker.changes()
            _persist.save(path, changes)
            tracker.commit(changes)

    def read() -> None:
        while not stop.is_set():
            try:
                read_file(path)
            except Exception as exc:
                bad.append(repr(exc))

    reader = threading.Thread(target=read)
    reader.start()
    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    stop.set()
    reader.join(timeout=30)
    assert bad == []
    records = read_file(path)
    assert sum(r.races for r in records.values()) == writers * saves * per_save
    assert records["w0/m"].wins == records["w1/m"].wins == writers // 2 * saves * per_save


# ------------------------------------------------------------------ broken files


@pytest.mark.parametrize(
    "garbage",
    [b"garbage{{", b"\x00\xff\xfe", b"[]", b'{"format": "raceway-performance", "version": 1, "providers": {"p/m": {"races": -1}}}', b""],
)
async def test_a_corrupt_file_is_set_aside_with_one_warning_and_the_engine_starts_fresh(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, garbage: bytes
) -> None:
    path = tmp_path / "perf.json"
    path.write_bytes(garbage)
    with caplog.at_level(logging.WARNING, logger="raceway"):
        async with raceway.open_engine(sim_config(path)) as engine:
            assert engine.stats() == {}
            await engine.complete(HI, model="vm")
    (warning,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    message = warning.getMessage()
    assert "\n" not in message and str(path) in message and "starting fresh" in message
    assert warning.exc_info is None
    (aside,) = tmp_path.glob("perf.json.corrupt-*")
    assert aside.read_bytes() == garbage
    assert set(read_file(path)) == {"a/a1", "b/b1"}


async def test_a_file_from_a_newer_raceway_is_left_alone(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "perf.json"
    newer = json.dumps({"format": "raceway-performance", "version": SCHEMA_VERSION + 1, "providers": {}})
    path.write_text(newer)
    with caplog.at_level(logging.WARNING, logger="raceway"):
        async with raceway.open_engine(sim_config(path)) as engine:
            await engine.complete(HI, model="vm")
    assert path.read_text() == newer
    assert "newer" in caplog.text


def test_the_cli_prints_one_line_for_a_corrupt_file_and_carries_on(tmp_path: Path) -> None:
    path = Path(os.environ["XDG_STATE_HOME"]) / "raceway" / "performance.json"
    path.parent.mkdir(parents=True)
    path.write_text("garbage")
    done = subprocess.run(
        [sys.executable, "-m", "raceway._cli", "demo", "--headless", "--races", "2"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert "Traceback" not in done.stderr
    assert [line for line in lines if "performance file" in line] == [
        next(line for line in lines if line.startswith("raceway: performance file"))
    ]
    assert len(list(path.parent.glob("performance.json.corrupt-*"))) == 1
    assert {"swift/swift-1", "steady/steady-2", "laggard/laggard-xl"} <= set(read_file(path))


# ------------------------------------------------------------------ in the engine


async def test_the_engine_loads_at_start_and_saves_at_close(autojump_clock: Any, tmp_path: Path) -> None:
    path = tmp_path / "deep" / "perf.json"
    async with raceway.open_engine(sim_config(path)) as engine:
        assert engine.performance_path == path
        for _ in range(4):
            await engine.complete(HI, model="vm")
    first = read_file(path)
    assert (first["a/a1"].races, first["a/a1"].wins, first["b/b1"].races) == (4, 4, 4)
    async with raceway.open_engine(sim_config(path)) as engine:
        assert engine.stats()["a/a1"].wins == 4
        await engine.complete(HI, model="vm")
    assert read_file(path)["a/a1"].wins == 5


async def test_the_engine_saves_periodically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "perf.json"
    saved = trio.Event()
    real_save = PerformanceFile.save

    async def save_and_tell(self: PerformanceFile) -> bool:
        ok = await real_save(self)
        if path.exists():
            saved.set()
        return ok

    monkeypatch.setattr(PerformanceFile, "save", save_and_tell)
    tracker = tracker_with(race("won", 50.0))
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(functools.partial(keep_performance_file, tracker, path, interval=0.01))
            await saved.wait()
            nursery.cancel_scope.cancel()
    assert read_file(path)["p/m"].wins == 1


async def test_off_keeps_no_file(tmp_path: Path, autojump_clock: Any) -> None:
    async with raceway.open_engine(sim_config("off")) as engine:
        assert engine.performance_path is None
        await engine.complete(HI, model="vm")
    assert not default_performance_path().exists()


async def test_the_default_file_goes_under_xdg_state_home(autojump_clock: Any) -> None:
    async with raceway.open_engine(sim_config("")) as engine:
        await engine.complete(HI, model="vm")
    path = default_performance_path()
    assert path.is_relative_to(os.environ["XDG_STATE_HOME"])
    assert "a/a1" in read_file(path)


# ------------------------------------------------------------------ raceway stats


async def test_raceway_stats_prints_the_file_as_a_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], autojump_clock: Any
) -> None:
    async with raceway.open_engine(sim_config("")) as engine:
        for _ in range(3):
            await engine.complete(HI, model="vm")
    assert main(["stats"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == str(default_performance_path())
    assert out[1].split()[:3] == ["provider/model", "races", "wins"]
    assert out[2].split()[:3] == ["a/a1", "3", "3"]
    assert out[3].split()[:3] == ["b/b1", "3", "0"]


def test_raceway_stats_without_a_file_or_with_off(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats"]) == 0
    assert "no statistics yet" in capsys.readouterr().out
    cfg = tmp_path / "c.yaml"
    cfg.write_text("performance_file: 'off'\nproviders: [openai]\n")
    assert main(["stats", "-c", str(cfg)]) == 0
    assert "off" in capsys.readouterr().out


def test_raceway_stats_on_a_corrupt_file_says_so_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    path = default_performance_path()
    path.parent.mkdir(parents=True)
    path.write_text("nope")
    assert main(["stats"]) == 0  # never fatal: a warning, and the next engine sets it aside
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unreadable" in err


# ------------------------------------------------------------------ leftovers and the save interval (issue 11, item 8)


def _leftover(path: Path, name: str) -> Path:
    leftover = path.with_name(f".{path.name}.{name}.tmp")
    leftover.write_text('{"format": "raceway-perf')  # half a file: a save killed mid-write
    return leftover


async def test_leftovers_of_killed_saves_are_removed_when_an_engine_opens(tmp_path: Path, autojump_clock: Any) -> None:
    path = tmp_path / "perf.json"
    leftovers = [_leftover(path, n) for n in ("a1b2c3", "zz_9")]
    unrelated = [tmp_path / "notes.tmp", tmp_path / ".other.json.x.tmp", tmp_path / "perf.json.bak"]
    for f in unrelated:
        f.write_text("keep me")
    async with raceway.open_engine(sim_config(path)):
        assert not any(f.exists() for f in leftovers)
    assert all(f.read_text() == "keep me" for f in unrelated)


async def test_leftovers_are_removed_even_when_the_file_itself_is_missing_or_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "perf.json"
    leftover = _leftover(path, "q")
    assert _persist.load(path) == ({}, True)
    assert not leftover.exists()
    path.write_text("garbage")
    leftover = _leftover(path, "r")
    _persist.load(path)
    assert not leftover.exists() and list(tmp_path.glob("perf.json.corrupt-*"))


def test_a_name_with_glob_characters_removes_only_its_own_leftovers(tmp_path: Path) -> None:
    path = tmp_path / "perf[1].json"
    mine = _leftover(path, "a")
    other = (tmp_path / ".perf1.json.a.tmp")
    other.write_text("keep")
    assert _persist.remove_leftovers(path) == [mine]
    assert other.exists()


def test_performance_save_interval_s_is_a_setting() -> None:
    assert raceway.default_config().performance_save_interval_s == 30
    config = raceway.loads_config("performance_save_interval_s: 0.25\nproviders: {s: {type: sim}}")
    assert config.performance_save_interval_s == 0.25
    assert raceway.loads_config(raceway.dumps_config(config)) == config
    assert raceway.loads_config(raceway.dumps_config(config, "toml"), "toml") == config
    assert not hasattr(_persist, "SAVE_INTERVAL_S"), "the module constant is gone: the setting replaces it"


async def test_the_engine_saves_every_performance_save_interval_s(
    tmp_path: Path, autojump_clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = attrs.evolve(sim_config(tmp_path / "perf.json"), performance_save_interval_s=2.5)
    saves: list[float] = []

    async def timed_save(self: PerformanceFile) -> bool:  # no worker thread: the virtual clock stays exact
        saves.append(trio.current_time())
        return True

    monkeypatch.setattr(PerformanceFile, "save", timed_save)
    async with raceway.open_engine(config) as engine:
        start = trio.current_time()
        await engine.complete(HI, model="vm")
        await trio.sleep(8 - (trio.current_time() - start))
    assert [round(t - start, 3) for t in saves] == [2.5, 5.0, 7.5, 8.0]  # three periodic saves, one at close
