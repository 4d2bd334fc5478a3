"""What the dashboard says about its link: the top bar's texts and the empty Races panel's notice.

Plain functions of the model, the link and the app's flags, so the app's
redraw tick only hands them what they read. No layout or colour here: the
top bar's tone classes (``-ok``, ``-warn``, ...) are styled in ``dashboard.tcss``.
"""

from __future__ import annotations

import time
from pathlib import Path

from .link import CONNECTED, CONNECTING, SEARCHING, EngineLink
from .model import DashboardModel
from .widgets import TopBar

#: How to start an engine the dashboard finds by itself (``demo`` alone keeps its socket private).
START_HINT = "raceway demo --headless"


def draw_topbar(
    bar: TopBar, m: DashboardModel, state: str, link: EngineLink, *, narrow: bool, paused: bool, new_while_paused: int
) -> None:
    """Set the top bar's texts: what is watched, the link's state, the rates, pause and drop notices."""
    target = link.target
    text = target.name if target else "no engine"
    if m.hello is not None and target is not None:
        text = f"pid {m.hello.pid}" if narrow else f"{text} · pid {m.hello.pid} · raceway {m.hello.engine_version or '?'}"
    bar.target_text = text
    if state == CONNECTED:
        bar.state_text = ("● CONNECTED", "-ok")
        # fixed widths: the label keeps its size as the figures move
        bar.rate_text = (f"{m.race_rate():.1f} races/s · {m.event_rate():,.0f} ev/s".rjust(26), "")
    else:
        retry_at = link.next_retry_at
        wait = "" if retry_at is None else f" · next in {max(0.0, retry_at - time.monotonic()):.1f}s"
        if state == CONNECTING:
            bar.state_text = ("◌ CONNECTING", "-warn")
        elif state == SEARCHING:
            bar.state_text = ("○ NO ENGINE · looking", "-warn")
        elif m.hello is None:  # never connected yet: an engine starting up, most likely
            bar.state_text = (f"◌ WAITING FOR ENGINE · try {link.retries}{wait}", "-warn")
        else:
            bar.state_text = (f"✗ DISCONNECTED · RECONNECTING {link.retries}{wait}", "-bad")
        bar.rate_text = ("– races/s", "-muted")
    bar.paused_text = f"⏸ PAUSED · {new_while_paused:,} new" if paused else ""
    bar.dropped_text = f"⚠ {m.dropped:,} dropped" if m.dropped else ""


def notice(m: DashboardModel, state: str, link: EngineLink, socket: Path | None) -> str:
    """What the Races panel says when it has no race to show."""
    if m.filter.active:
        return f"No races match the filter ({m.filter.describe()}). Press escape to show all."
    if state == SEARCHING:
        return (
            f"No raceway engine is running.\nLooking for one in {link.where} every second…\n\n"
            f"Start one with `{START_HINT}` (or run your service with monitor.socket: auto),\n"
            "or give a socket: raceway-dashboard --socket PATH"
        )
    if state == CONNECTED:
        return "Connected. No races yet: they show here as they run."
    if socket is not None:
        return (
            f"Waiting for an engine at {socket}…\n\n"
            "It shows here as soon as it serves its monitor there (monitor.socket in its config)."
        )
    return "Waiting for the engine…"
