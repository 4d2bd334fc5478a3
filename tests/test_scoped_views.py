"""Views cover what they are about: an engine its participants, `raceway stats -c` its config, the demo its run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
import trio.testing
from test_tracker import Clock, race

import raceway
from raceway._cli import _demo_headless, main
from raceway._monitor import stats_to_wire
from raceway._persist import PerformanceFile, read_file
from raceway._tracker import Tracker

HI = [{"role": "user", "content": "hi"}]


def sim_config(path: Path) -> raceway.Config:
    return raceway.loads_config(
        f"""
performance_file: "{path}"
monitor: {{socket: "off"}}
grace_period_ms: 0
providers:
  a: {{type: sim, model: a1, ttft_ms: 10, sigma: 0, text: "from a"}}
  b: {{type: sim, model: b1, ttft_ms: 20, sigma: 0, text: "from b"}}
virtual_models:
  vm: {{providers: [{{name: a}}, {{name: b}}]}}
"""
    )


async def other_configs_were_here(path: Path) -> None:
    """The shared per-user file already knows providers this config never races."""
    tracker = Tracker(clock=Clock())
    for name in ("x", "y", "a"):
        tracker.record(race("won", 30.0, provider=name, model=f"{name}1"))
    await PerformanceFile(tracker, path).save()


async def test_engine_stats_and_the_monitor_cover_this_engines_participants_only(
    tmp_path: Path, autojump_clock: Any
) -> None:
    path = tmp_path / "perf.json"
    await other_configs_were_here(path)
    async with raceway.open_engine(sim_config(path)) as engine:
        assert set(engine.stats()) == {"a/a1"}  # known from the file, and one of ours
        for _ in range(3):
            await engine.complete(HI, model="vm")
        stats = engine.stats()
        assert set(stats) == {"a/a1", "b/b1"}
        assert set(stats_to_wire(stats)) == {"a/a1", "b/b1"}  # what the snapshot and stats lines carry
        assert stats["a/a1"].races == 4  # lifetime, the file's race included
        run = engine.stats(this_run=True)
        assert (run["a/a1"].races, run["a/a1"].wins, run["b/b1"].races) == (3, 3, 3)
        assert engine.tracker.snapshot().keys() >= {"x/x1", "y/y1"}  # still kept, and saved
    assert {"x/x1", "y/y1", "a/a1", "b/b1"} <= set(read_file(path))


async def test_raceway_stats_shows_the_configs_participants_or_all(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], autojump_clock: Any
) -> None:
    path = tmp_path / "perf.json"
    await other_configs_were_here(path)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f'performance_file: "{path}"\nproviders: {{a: {{type: sim, model: a1}}}}\n')
    assert main(["stats", "-c", str(cfg)]) == 0
    rows = [line.split()[0] for line in capsys.readouterr().out.splitlines()[2:]]
    assert rows == ["a/a1"]
    assert main(["stats", "-c", str(cfg), "--all"]) == 0
    rows = [line.split()[0] for line in capsys.readouterr().out.splitlines()[2:]]
    assert sorted(rows) == ["a/a1", "x/x1", "y/y1"]


def test_the_demos_closing_table_shows_this_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = attrs.evolve(
        raceway.default_config(), performance_file=str(tmp_path / "perf.json"), monitor=raceway.MonitorConfig(socket="off")
    )
    for _ in range(2):
        trio.run(_demo_headless, config, 4, 1, clock=trio.testing.MockClock(autojump_threshold=0))
    table = capsys.readouterr().out.split("provider/model")[-1].splitlines()[1:]
    races = {line.split()[0]: int(line.split()[1]) for line in table if line.strip()}
    assert races and all(n <= 4 for n in races.values())  # the second run's, not both runs'
    assert sum(r.races for r in read_file(tmp_path / "perf.json").values()) > sum(races.values())
