"""The dashboard's process: how often it collects garbage, and where screenshots go.

Neither is Textual's business nor the model's; :func:`dashboard.app.run`
calls :func:`tune_gc` before the app starts, and the app saves screenshots
under :func:`screenshot_dir`.
"""

from __future__ import annotations

import gc
import os
import tempfile
from pathlib import Path

#: Garbage-collection thresholds for the dashboard's process (see :func:`tune_gc`).
GC_THRESHOLDS = (50_000, 20, 100)


def screenshot_dir() -> Path:
    """The user's downloads directory if there is one, else the working directory, else a temporary one."""
    # platformdirs is Textual's own dependency, and where Textual saves by default.
    from platformdirs import user_downloads_path

    downloads = user_downloads_path()
    if downloads.is_dir():
        return downloads
    here = Path.cwd()
    return here if os.access(here, os.W_OK) else Path(tempfile.gettempdir())


def tune_gc() -> tuple[int, int, int]:
    """Collect garbage less often; returns the thresholds it replaced.

    A redraw allocates tens of thousands of short-lived objects (segments,
    strips, texts), so CPython's default young-generation threshold (700)
    runs collections constantly and promotes enough to make full collections
    frequent; each full pass over Textual's objects stalled the event loop for
    up to 300 ms at 1,000 events/s. With these thresholds the same load ran
    the redraw timer at its full 10 Hz with the worst stall under 50 ms
    (benchmarks/bench_dashboard.py). Memory stays bounded: the model is.
    """
    old = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLDS)
    return old
