"""The command line, run as a user runs it: exit codes, one-line errors, no tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import raceway

TESTS = Path(__file__).parent


def run(*args: str, cwd: Path | None = None, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(TESTS), "RACEWAY_CONFIG": ""}
    return subprocess.run(
        [sys.executable, "-m", "raceway", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=cwd,
        input=stdin,
    )


def assert_user_error(proc: subprocess.CompletedProcess[str], code: int, words: str) -> None:
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert words in lines[0]


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


PY_CONFIG = """
monitor: {socket: "off"}
performance_file: "off"
providers:
  bad: {type: python, callable: "failing:broken"}
  good: {type: python, callable: "failing:fine"}
virtual_models:
  doomed: {providers: [{name: bad}]}
  echo: {providers: [{name: good}, {name: bad}]}
"""


def test_run_streams_the_answer_and_summarises_on_stderr() -> None:
    proc = run("run", "-m", "fast", "hello")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()
    summary = proc.stderr.strip().splitlines()[-1]
    assert " won · first token " in summary and " ms · total " in summary and "fast (first_wins)" in summary


def test_run_json(tmp_path: Path) -> None:
    cfg = write(tmp_path / "c.yaml", PY_CONFIG)
    proc = run("run", "-c", str(cfg), "-m", "echo", "--json", "ping")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["text"] == "echo: ping" and data["provider"] == "good"
    assert {a["status"] for a in data["attempts"]} <= {"won", "failed", "cancelled"}


def test_run_reads_the_prompt_from_stdin(tmp_path: Path) -> None:
    cfg = write(tmp_path / "c.yaml", PY_CONFIG)
    proc = run("run", "-c", str(cfg), "-m", "echo", "-", stdin="from stdin")
    assert proc.returncode == 0 and proc.stdout.strip() == "echo: from stdin"


def test_run_failed_race_exits_1(tmp_path: Path) -> None:
    cfg = write(tmp_path / "c.yaml", PY_CONFIG)
    proc = run("run", "-c", str(cfg), "-m", "doomed", "hello")
    assert_user_error(proc, 1, "upstream on fire")


def test_unknown_model_exits_2() -> None:
    assert_user_error(run("run", "-m", "nope", "hello"), 2, "unknown virtual model 'nope'")


def test_bad_config_exits_2_naming_the_path(tmp_path: Path) -> None:
    cfg = write(tmp_path / "bad.yaml", "virtual_models: {v: {providers: [{name: ghost}]}}\n")
    proc = run("run", "-c", str(cfg), "hello")
    assert_user_error(proc, 2, "$.virtual_models['v'].providers[0].name")
    assert_user_error(run("config", "validate", str(cfg)), 2, "'ghost' is not defined")


def test_missing_config_file_exits_2(tmp_path: Path) -> None:
    assert_user_error(run("run", "-c", str(tmp_path / "none.yaml"), "hi"), 2, "file not found")


def test_config_validate_convert_round_trip(tmp_path: Path) -> None:
    cfg = write(tmp_path / "c.yaml", PY_CONFIG)
    assert run("config", "validate", str(cfg)).returncode == 0
    toml = tmp_path / "c.toml"
    back = tmp_path / "back.yml"
    assert run("config", "convert", str(cfg), str(toml)).returncode == 0
    assert run("config", "convert", str(toml), str(back)).returncode == 0
    assert raceway.load_config(toml) == raceway.load_config(cfg) == raceway.load_config(back)
    assert_user_error(run("config", "convert", str(cfg), str(tmp_path / "x.txt")), 2, "cannot tell the format")


@pytest.mark.parametrize("fmt", ["yaml", "toml"])
def test_config_init_writes_a_valid_commented_starter(tmp_path: Path, fmt: str) -> None:
    proc = run("config", "init", "--format", fmt, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    path = tmp_path / f"raceway.{fmt}"
    assert "#" in path.read_text()
    raceway.load_config(path)
    assert_user_error(run("config", "init", "--format", fmt, cwd=tmp_path), 2, "already exists")


def test_config_show_redacts_and_shows_presets(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "c.yaml",
        "providers: {p: {type: openai, base_url: 'http://x/v1', headers: {Authorization: Bearer sk-123}}}\n"
        "virtual_models: {v: {providers: [{name: p, model: m}, {name: groq, model: llama}]}}\n",
    )
    proc = run("config", "show", "-c", str(cfg))
    assert proc.returncode == 0, proc.stderr
    assert "sk-123" not in proc.stdout and "Authorization" in proc.stdout
    assert "api.groq.com" in proc.stdout


def test_demo_headless_runs_n_races() -> None:
    proc = run("demo", "--headless", "--races", "4")
    assert proc.returncode == 0, proc.stderr
    races = [line for line in proc.stdout.splitlines() if line.startswith("#")]
    assert len(races) == 4


def test_no_command_prints_help() -> None:
    proc = run()
    assert proc.returncode == 2 and "usage" in proc.stdout


def test_a_race_that_only_lacks_api_keys_is_a_usage_error(tmp_path: Path) -> None:
    cfg = write(tmp_path / "c.yaml", "virtual_models: {v: {providers: [{name: groq, model: m}]}}\nmonitor: {socket: off}\n")
    env_without_key = {k: v for k, v in os.environ.items() if k != "GROQ_API_KEY"}
    proc = subprocess.run(
        [sys.executable, "-m", "raceway", "run", "-c", str(cfg), "hi"],
        capture_output=True, text=True, timeout=60, env={**env_without_key, "PYTHONPATH": str(TESTS)},
    )
    assert_user_error(proc, 2, "set the environment variable GROQ_API_KEY")


def test_config_show_prints_the_effective_settings(tmp_path: Path) -> None:
    cfg = write(tmp_path / "c.yaml", "providers: {x: {type: sim}}\n")
    proc = run("config", "show", "-c", str(cfg))
    assert proc.returncode == 0
    for key in ("timeout_ms: 10000", "grace_period_ms: 250", "strategy: first_wins", "socket: auto"):
        assert key in proc.stdout
