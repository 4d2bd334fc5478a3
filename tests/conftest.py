"""Shared test setup: hypothesis profiles, and private state directories for every test.

``HYPOTHESIS_PROFILE`` picks a profile (default ``ci``):

* ``ci`` — a fixed, modest number of examples, derandomized, so CI runs are
  quick and reproducible (``.ci/run`` sets it);
* ``thorough`` — many more examples, randomized, for hunting bugs locally:
  ``HYPOTHESIS_PROFILE=thorough make test``.

Isolation: engines keep statistics in ``performance_file`` (default under
``$XDG_STATE_HOME``) and open a monitor socket (default under
``$XDG_RUNTIME_DIR``), so every test gets fresh, private directories for both
and nothing is written to the real home directory. The runtime directory is
short on purpose: a Unix socket path holds at most 107 bytes.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

settings.register_profile("ci", max_examples=100, deadline=None, derandomize=True, print_blob=True)
settings.register_profile("thorough", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _private_state_dirs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    runtime = tempfile.mkdtemp(prefix="rw-")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", runtime)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("RACEWAY_CONFIG", raising=False)
    try:
        yield
    finally:
        shutil.rmtree(runtime, ignore_errors=True)
