"""raceway[otel] is optional: without it, or without an SDK configured, nothing changes.

Each case runs a race in a fresh interpreter, so what it imported is its own.
These tests run with and without the extra installed.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60
    )


RACE = """
    import trio, raceway
    config = raceway.loads_config('''
    monitor: {socket: "off"}
    performance_file: "off"
    providers: {a: {type: sim, ttft_ms: 1, sigma: 0, tokens_per_s: 100000}}
    ''')
    async def main():
        async with raceway.open_engine(config) as engine:
            assert engine._listeners == [], engine._listeners
            result = await engine.complete([{"role": "user", "content": "hi"}])
            assert result.text
    trio.run(main)
"""


def test_without_the_extra_nothing_changes_and_nothing_is_imported() -> None:
    proc = _run(
        "import sys\nsys.modules['opentelemetry'] = None  # as if raceway[otel] were not installed\n"
        + textwrap.dedent(RACE)
        + "assert [m for m in sys.modules if m.startswith('opentelemetry.')] == []\nprint('ok')\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_raceway_never_imports_opentelemetry_itself() -> None:
    proc = _run(textwrap.dedent(RACE) + "import sys\nprint(sorted(m for m in sys.modules if 'opentelemetry' in m))\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_with_the_api_imported_but_no_sdk_nothing_is_subscribed() -> None:
    pytest.importorskip("opentelemetry.trace", reason="the otel extra is not installed")
    proc = _run("from opentelemetry import trace, metrics\n" + textwrap.dedent(RACE) + "print('ok')\n")
    assert proc.returncode == 0, proc.stderr
