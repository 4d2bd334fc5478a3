"""How the model looks, in small pieces: colours, glyphs, durations, names, sparklines, log lines.

Colour never comes from here: a :class:`Palette` is built once from the app's
theme variables (``$success``, ``$warning``, ``$error``, ``$accent``, muted
text), so table cells and the stylesheet agree, and a theme change repaints
both. Every colour comes with a glyph (★ won, ● answered, ✗ failed, ⊘
cancelled, ▸ running, · idle, ◐ cooling down) so the views read on a
monochrome terminal too. Races' rows and timelines are drawn in
:mod:`dashboard.timeline` from these pieces.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from rich.style import Style
from rich.text import Text

from .views import (
    ANSWERED,
    BAD,
    BENCHED,
    CANCELLED,
    FAILED,
    GOOD,
    LOST,
    MUTED,
    NOT_STARTED,
    PENDING,
    RUNNING,
    UNKNOWN,
    WARN,
    WON,
    LogEntry,
)

GLYPHS = {
    WON: "★",
    LOST: "●",
    ANSWERED: "●",
    FAILED: "✗",
    CANCELLED: "⊘",
    RUNNING: "▸",
    PENDING: "·",
    NOT_STARTED: "·",
    BENCHED: "◐",
    UNKNOWN: "?",
}
SPARK_BARS = "▁▂▃▄▅▆▇█"
ELLIPSIS = "…"


@dataclass(frozen=True)
class Palette:
    """Rich styles for the semantic colours, resolved from a Textual theme."""

    success: Style
    warning: Style
    error: Style
    accent: Style
    muted: Style
    text: Style

    @classmethod
    def plain(cls) -> Palette:
        """No colour at all (tests, and before the app has a theme)."""
        return cls(Style(), Style(), Style(), Style(), Style(dim=True), Style())

    @classmethod
    def from_theme(cls, variables: dict[str, str]) -> Palette:
        """Resolve Textual's CSS variables (``app.get_css_variables()``) to Rich styles."""
        from textual.color import Color

        background = _parse(Color, variables.get("background")) or Color(0, 0, 0)
        foreground = _parse(Color, variables.get("foreground")) or Color(224, 224, 224)

        def style(name: str, fallback: Color | None = None, **extra: Any) -> Style:
            color = _parse(Color, variables.get(name)) or fallback
            if color is None:
                return Style(**extra)
            if color.a < 1.0:
                color = background.blend(color.with_alpha(1.0), color.a)
            return Style(color=color.rich_color, **extra)

        muted = background.blend(foreground, 0.55)
        return cls(
            success=style("success"),
            warning=style("warning"),
            error=style("error"),
            accent=style("accent"),
            muted=Style(color=muted.rich_color),
            text=style("foreground"),
        )

    def for_status(self, status: str) -> Style:
        if status == WON:
            return self.success
        if status == FAILED:
            return self.error
        if status in (RUNNING, ANSWERED):
            return self.accent
        if status in (UNKNOWN, BENCHED):
            return self.warning
        return self.muted

    def for_level(self, level: str) -> Style:
        return {GOOD: self.success, WARN: self.warning, BAD: self.error, MUTED: self.muted}.get(
            level, self.text
        )


def _parse(color_cls: Any, value: str | None) -> Any:
    if not value:
        return None
    try:
        return color_cls.parse(value)
    except Exception:  # "ansi_green", "auto 60%": no fixed colour to hand Rich
        return None


# ---------------------------------------------------------------- small pieces


def ms(value: float | None, *, unit: bool = True) -> str:
    """A duration for a cell: ``842ms``, ``1.2s``, ``12s``; ``–`` when unknown."""
    if value is None:
        return "–"
    if value < 1000:
        return f"{value:.0f}ms" if unit else f"{value:.0f}"
    if value < 10_000:
        return f"{value / 1000:.1f}s"
    return f"{value / 1000:.0f}s"


def fit(text: str, width: int) -> str:
    """``text`` cut to ``width`` cells with an ellipsis, padded to exactly ``width``."""
    if width <= 0:
        return ""
    if len(text) > width:
        return text[: width - 1] + ELLIPSIS if width > 1 else text[:width]
    return text.ljust(width)


def fit_label(label: str, width: int) -> str:
    """A ``provider/model`` label in ``width`` cells, keeping the end that tells models apart.

    Labels of one race often share their start (``mock-oai/gpt-4o``,
    ``mock-oai/gpt-4o-mini``): the provider gives way first (``mock…/gpt-4o-mini``),
    then the start of the model (``…gpt-4o-mini``); the cut always shows ``…``.
    Padded to exactly ``width``.
    """
    if width <= 0:
        return ""
    if len(label) <= width:
        return label.ljust(width)
    if width == 1:
        return ELLIPSIS
    provider, sep, model = label.partition("/")
    keep = width - len(model) - 2  # provider characters left beside "…/" and the whole model
    if sep and keep >= 2:
        return f"{provider[:keep]}{ELLIPSIS}/{model}"
    return ELLIPSIS + label[-(width - 1) :]


def sparkline(samples: Any, width: int, floor: float, ceiling: float) -> str:
    """The last ``width`` samples as ▁…█ on the fixed scale ``floor..ceiling``, newest right."""
    if width <= 0:
        return ""
    values = list(samples)[-width:]
    if ceiling <= floor:
        floor, ceiling = 0.0, max(values, default=1.0) or 1.0
    top = len(SPARK_BARS) - 1
    span = ceiling - floor
    bars = "".join(SPARK_BARS[min(top, max(0, round((v - floor) / span * top)))] for v in values)
    return bars.rjust(width)


# ---------------------------------------------------------------- log


def log_line(entry: LogEntry, p: Palette) -> Text:
    """One event-log line: time, race, model, glyph and what happened."""
    clock = (
        time.strftime("%H:%M:%S", time.localtime(entry.ts)) + f".{int(entry.ts * 1000) % 1000:03d}"
    )
    line = Text(no_wrap=True, end="")
    line.append(clock + " ", style=p.muted)
    style = p.for_level(entry.level)
    if entry.race is not None:
        line.append(f"{entry.race:<6} ", style=p.muted)
        line.append(f"{entry.virtual_model or '':<9} ", style=p.text)
    line.append(entry.glyph + " ", style=style + Style(bold=True))
    line.append(entry.text, style=style)
    return line
