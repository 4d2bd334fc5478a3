"""The command line's messages on hostile or mistaken input (issue 11): one line each, the
same ``raceway: error:`` prefix, the reason of every failure, no secret, no stray file."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_cli import assert_user_error, run, write
from test_config_hostile import BILLION_LAUGHS, KEY

import raceway
from raceway import _bench, _cli

README = Path(__file__).parent.parent / "README.md"


# ---------------------------------------------------------------- 2: keys never printed


@pytest.mark.parametrize("command", ["run -c {} hello", "config show -c {}", "config validate {}"])
def test_a_key_pasted_into_api_key_env_is_never_printed(tmp_path: Path, command: str) -> None:
    cfg = write(tmp_path / "c.yaml", f"providers:\n  openai: {{api_key_env: {KEY}}}\n"
                "virtual_models: {v: {providers: [{name: openai, model: gpt-4o-mini}]}}\n")
    proc = run(*command.format(cfg).split())
    assert_user_error(proc, 2, "$.providers['openai'].api_key_env")
    assert KEY not in proc.stderr + proc.stdout and KEY[:10] not in proc.stderr + proc.stdout


# ---------------------------------------------------------------- 4, 5: documents that must not load


def test_config_show_and_convert_refuse_a_billion_laughs_at_once(tmp_path: Path) -> None:
    cfg = write(tmp_path / "lol.yaml", BILLION_LAUGHS)
    assert_user_error(run("config", "show", "-c", str(cfg)), 2, "too large")
    assert_user_error(run("config", "convert", str(cfg), str(tmp_path / "lol.toml")), 2, "too large")
    assert not (tmp_path / "lol.toml").exists()


def test_deep_nesting_and_bad_encodings_exit_2_with_the_file(tmp_path: Path) -> None:
    deep = write(tmp_path / "deep.toml", "a = " + "[" * 5000 + "]" * 5000)
    assert_user_error(run("config", "validate", str(deep)), 2, f"{deep}: nested too deeply")
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"description: caf\xe9\n")
    assert_user_error(run("config", "validate", str(latin)), 2, f"{latin}: not UTF-8")


@pytest.mark.parametrize("key", ["performance_file", "monitor.socket"])
def test_a_nul_byte_in_a_path_exits_2_and_leaves_no_file(tmp_path: Path, key: str) -> None:
    work = tmp_path / "work"
    work.mkdir()
    bad = f'"{work}/st\\0ate"'  # YAML's escape for a NUL byte, inside double quotes
    setting = f"performance_file: {bad}" if key == "performance_file" else f"monitor: {{socket: {bad}}}"
    cfg = write(tmp_path / "c.yaml", setting + "\nproviders: {s: {type: sim}}\n")
    assert_user_error(run("config", "validate", str(cfg)), 2, f"$.{key}: contains a NUL byte")
    assert_user_error(run("demo", "--headless", "--races", "1", "-c", str(cfg)), 2, "NUL")
    assert_user_error(run("run", "-c", str(cfg), "hi"), 2, "NUL")
    assert list(work.iterdir()) == [], "no stray file (the name cut at the NUL)"


# ---------------------------------------------------------------- 13: no empty model sent


def test_run_in_legacy_mode_without_a_model_says_where_to_name_one(tmp_path: Path) -> None:
    cfg = write(tmp_path / "c.yaml", "providers: [openai]\n")
    proc = run("run", "-c", str(cfg), "hello")
    assert_user_error(proc, 2, "$.providers['openai'].model: required")
    assert_user_error(run("config", "validate", str(cfg)), 2, "$.providers['openai'].model")


# ---------------------------------------------------------------- 14: did you mean


def test_the_cli_suggests_the_key_meant(tmp_path: Path) -> None:
    cfg = write(tmp_path / "c.yaml", "providers: {mine: {type: openai, url: 'http://h/v1', model: m}}\n")
    assert_user_error(run("config", "validate", str(cfg)), 2, "did you mean 'base_url'?")


# ---------------------------------------------------------------- 15: messages


def test_every_error_line_has_the_same_prefix(tmp_path: Path) -> None:
    broken = write(tmp_path / "broken.yaml", "a: [unclosed\n")
    doomed = write(tmp_path / "doomed.yaml", "monitor: {socket: 'off'}\nperformance_file: 'off'\n"
                   "providers: {bad: {type: python, callable: 'failing:broken'}}\n")
    nokey = write(tmp_path / "nokey.yaml", "virtual_models: {v: {providers: [{name: openai, model: m}]}}\n")
    cases = [
        run("run", "-c", str(broken), "hi"),
        run("run", "-c", str(doomed), "hi"),
        run("run", "-c", str(nokey), "hi"),
        run("run", "-m", "nope", "hi"),
        run("config", "convert", str(doomed), str(tmp_path / "x.txt")),
        run("demo", "--headless", "--races", "-1"),
    ]
    for proc in cases:
        assert proc.returncode in (1, 2)
        (line,) = proc.stderr.strip().splitlines()
        assert line.startswith("raceway: error: "), line


def test_a_whole_document_error_is_not_prefixed_with_dollar(tmp_path: Path) -> None:
    cfg = write(tmp_path / "broken.yaml", "a: [unclosed\n")
    proc = run("config", "validate", str(cfg))
    assert_user_error(proc, 2, f"raceway: error: {cfg}: invalid YAML at line")
    assert "$:" not in proc.stderr
    exc = raceway.ConfigError("$", "invalid YAML", "f.yaml")
    assert str(exc) == "f.yaml: invalid YAML" and exc.path == "$"
    assert str(raceway.ConfigError("$.a", "bad", "f.yaml")) == "f.yaml: $.a: bad"


def test_a_missing_key_failure_names_each_providers_reason(tmp_path: Path) -> None:
    cfg = write(tmp_path / "c.yaml", "monitor: {socket: 'off'}\nperformance_file: 'off'\n"
                "virtual_models: {v: {providers: [{name: openai, model: a}, {name: groq, model: b}]}}\n")
    proc = run("run", "-c", str(cfg), "hello")
    assert proc.returncode == 2
    assert "openai" in proc.stderr and "OPENAI_API_KEY" in proc.stderr
    assert "groq" in proc.stderr and "GROQ_API_KEY" in proc.stderr


async def test_the_summary_of_a_race_gives_each_failures_reason(autojump_clock: object) -> None:
    config = raceway.loads_config(
        "monitor: {socket: 'off'}\nperformance_file: 'off'\ngrace_period_ms: 0\n"
        "providers:\n  late: {type: python, callable: 'failing:late_fine'}\n"
        "  bad: {type: python, callable: 'failing:broken'}\n"
        "virtual_models: {v: {providers: [late, bad, {name: openai, model: gpt-4o-mini}]}}\n"
    )
    async with raceway.open_engine(config) as engine:
        result = await engine.complete([{"role": "user", "content": "hi"}])
    line = _cli.summary_line(result)
    assert line.startswith("late/")
    assert "openai failed (set OPENAI_API_KEY)" in line
    assert "bad failed (upstream on fire)" in line and "\n" not in line


def test_one_provider_is_not_one_providers(tmp_path: Path) -> None:
    cfg = write(tmp_path / "c.yaml", "providers: {s: {type: sim}}\nvirtual_models: {v: {providers: [s]}}\n")
    proc = run("config", "validate", str(cfg))
    assert proc.returncode == 0 and "(1 provider defined, 1 virtual model)" in proc.stdout


def test_the_live_bench_report_names_no_seed() -> None:
    report = {"mode": "live (real providers, real clock)", "requests": 20, "seed": None,
              "strategies": {}, "singles": {}, "reference": {}}
    text = _bench.markdown(report)
    assert "seed None" not in text and "20 requests per strategy." in text
    report["seed"] = 7
    assert "seed 7" in _bench.markdown(report)


def test_config_init_and_readme_agree_on_auto() -> None:
    starter = run("config", "init", "-o", "-").stdout
    readme = README.read_text()
    (said,) = re.findall(r"auto: its (p\d\d) TTFT", starter)
    assert said == "p90" and "p90 by default" in readme and "p95 TTFT" not in starter


def test_config_show_writes_text_that_reads_back_with_unicode_line_breaks(tmp_path: Path) -> None:
    cfg = write(tmp_path / "c.yaml", 'providers: {s: {type: sim}}\nvirtual_models:\n  v:\n'
                '    display_name: "a\\u2028b \\u0085 c ☃"\n    providers: [s]\n')
    proc = run("config", "show", "-c", str(cfg))
    assert proc.returncode == 0, proc.stderr
    shown = yaml.safe_load(proc.stdout)
    assert shown["virtual_models"]["v"]["display_name"] == "a\u2028b \u0085 c ☃"


def test_the_cli_imports_only_declared_dependencies() -> None:
    pyproject = (Path(__file__).parent.parent / "pyproject.toml").read_text()
    assert re.search(r'"rich[>=<]', pyproject), "raceway bench's progress bar needs rich declared"
    source = Path(_cli.__file__).read_text()
    assert "def _forever" not in source and "itertools.count" in source


def test_a_warning_from_the_library_prints_as_one_line(tmp_path: Path) -> None:
    state = tmp_path / "state" / "raceway"
    state.mkdir(parents=True)
    (state / "performance.json").write_text("garbage\nmore garbage")
    proc = subprocess.run(
        [sys.executable, "-m", "raceway", "demo", "--headless", "--races", "1"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")},
    )
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "performance file" in line]
    assert len(warnings) == 1 and warnings[0].startswith("raceway: performance file")


def test_convert_says_what_toml_cannot_hold_and_where_it_cannot_write(tmp_path: Path) -> None:
    cfg = write(tmp_path / "c.yaml", "providers: {s: {type: sim}}\n"
                "virtual_models: {v: {providers: [{name: s, config: {stop: null}}]}}\n")
    assert_user_error(run("config", "convert", str(cfg), str(tmp_path / "c.toml")), 2, "cannot be written as TOML")
    assert_user_error(run("config", "convert", str(cfg), str(tmp_path / "no" / "c.yml")), 2, "cannot write")
