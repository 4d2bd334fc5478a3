"""The main screen's widgets: the top bar, the three panels and what they are made of.

Each view follows reactive state (``var`` + ``watch_*``): the app's redraw
tick hands a panel the model's version (and, while something runs, the
clock) as its ``frame``; Textual calls ``watch_frame`` only when that value
moved, and the panel redraws from the model. A paused app stops handing
frames over, so the views hold still while the model keeps ingesting. Smaller
parts work the same way: a provider row's ``cells``, a sparkline's ``data``,
the top bar's texts. Layout and colour are in ``dashboard.tcss``.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.events import Resize
from textual.reactive import reactive, var
from textual.widget import Widget
from textual.widgets import Label, RichLog, Static

from .model import DashboardModel
from .racelist import RaceList
from .render import Palette, fit_label, log_line, ms, sparkline
from .timeline import RaceLayout
from .views import ProviderView

#: Log lines written per frame at most (one write: a burst, or what came in while paused).
LOG_PER_FRAME = 400
TONES = ("-ok", "-warn", "-bad", "-muted")

#: A frame: the model version a view shows, and the clock while something moves (else None).
Frame = tuple[int, float | None]


class Panel(Vertical):
    """A bordered panel that ``e`` can maximise."""

    ALLOW_MAXIMIZE = True


# ---------------------------------------------------------------- top bar


class TopBar(Horizontal):
    """One row: what we watch, the link's state, the rates, pause and drop notices."""

    target_text: var[str] = var("", init=False)
    state_text: var[tuple[str, str]] = var(("", ""), init=False)  # (text, tone class)
    rate_text: var[tuple[str, str]] = var(("", ""), init=False)
    paused_text: var[str] = var("", init=False)
    dropped_text: var[str] = var("", init=False)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._parts = {part: Label("", id=f"tb-{part}") for part in ("target", "state", "rate", "paused", "dropped")}
        self._shown: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        yield Label("raceway", id="tb-brand")
        yield from self._parts.values()

    def watch_target_text(self, text: str) -> None:
        self._show("target", text, "")

    def watch_state_text(self, value: tuple[str, str]) -> None:
        self._show("state", *value)

    def watch_rate_text(self, value: tuple[str, str]) -> None:
        self._show("rate", *value)

    def watch_paused_text(self, text: str) -> None:
        self._show("paused", text, "-warn")

    def watch_dropped_text(self, text: str) -> None:
        self._show("dropped", text, "-warn")

    def _show(self, part: str, text: str, tone: str) -> None:
        old = self._shown.get(part)
        self._shown[part] = text
        label = self._parts[part]
        # A layout pass costs the whole screen: only when the label's width changes.
        label.update(text, layout=old is None or len(old) != len(text))
        for cls in TONES:
            label.set_class(cls == tone, cls)
        label.display = bool(text)

    def text(self, part: str) -> str:
        """What ``part`` (``target``, ``state``, ``rate``, ``paused``, ``dropped``) shows now."""
        return self._shown.get(part, "")


# ---------------------------------------------------------------- races


class RacesPanel(Panel):
    """The Races panel: the table of timelines, or a notice when there is nothing to show."""

    frame: var[Frame] = var((-1, None), init=False)
    palette: var[Palette] = var(Palette.plain, init=False)
    notice: var[str] = var("", init=False)

    def __init__(self, model: DashboardModel, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="panel")
        self.model = model
        self.table = RaceList(id="races")
        self.empty = Static("", id="races-empty")
        self.layout_used: RaceLayout | None = None
        self.draws = 0

    def compose(self) -> ComposeResult:
        yield self.table
        yield self.empty

    def watch_frame(self) -> None:
        self.draw()

    def watch_palette(self) -> None:
        self.draw()

    def watch_notice(self, text: str) -> None:
        self.empty.update(text)

    def on_resize(self, event: Resize) -> None:
        self.call_after_refresh(self.draw)  # the table's own width sets the timeline's

    def draw(self) -> None:
        if not self.table.is_attached:
            return
        m = self.model
        longest = max((len(label) for label in m.providers), default=16)
        self.layout_used = layout = RaceLayout.for_width(self.table.size.width or self.size.width, longest)
        visible = m.visible_races()
        now = self.frame[1] if self.frame[1] is not None else m.now_ts
        self.table.show(visible, layout=layout, palette=self.palette, now=now, typical=m.typical)
        self.set_class(not visible, "-empty")
        title = f"Races · {len(visible)} shown · {m.running_count()} running"
        if m.filter.active:
            title += f" · filter {m.filter.describe()}"
        if self.border_title != title:  # setting it repaints the whole panel
            self.border_title = title
        self.draws += 1


# ---------------------------------------------------------------- providers

PROVIDER_COLUMNS = ("name", "races", "wins", "win", "fail", "cool", "p50", "p95", "score", "cost", "waste", "spark")
PROVIDER_HEADINGS = {
    "name": "provider/model", "races": "races", "wins": "wins", "win": "win%", "fail": "fail",
    "cool": "cooldown", "p50": "p50", "p95": "p95", "score": "score", "cost": "cost $", "waste": "wasted $",
    "spark": "recent ttft",
}  # fmt: skip


class Spark(Widget):
    """A provider's recent first-token times as ▁…█, as wide as its cell."""

    DEFAULT_CSS = "Spark { height: 1; }"

    data: reactive[tuple[tuple[float, ...], float, float]] = reactive(((), 0.0, 0.0))  # samples, floor, ceiling

    def render(self) -> str:
        samples, floor, ceiling = self.data
        return sparkline(samples, self.content_region.width, floor, ceiling)


class NameCell(Widget):
    """A ``provider/model`` label fitted to its cell, keeping the end that tells models apart."""

    DEFAULT_CSS = "NameCell { height: 1; }"

    def __init__(self, label: str, *, classes: str | None = None) -> None:
        super().__init__(classes=classes)
        self.label = label

    def render(self) -> str:
        return fit_label(self.label, self.content_region.width).rstrip()


class ProviderRow(Horizontal):
    """One provider/model's figures, a cell per column; only changed cells are touched."""

    cells: var[dict[str, tuple[str, str]]] = var(dict, init=False)  # column -> (text, tone)
    spark: var[tuple[tuple[float, ...], float, float]] = var(((), 0.0, 0.0), init=False)

    def __init__(self, label: str | None) -> None:
        super().__init__(classes="prow -header" if label is None else "prow")
        self.label = label
        self._cells: dict[str, Label] = {}
        self._spark: Spark | None = None

    def compose(self) -> ComposeResult:
        for col in PROVIDER_COLUMNS:
            if self.label is not None and col == "spark":
                self._spark = Spark(classes="pc c-spark")
                self._spark.data = self.spark
                yield self._spark
            elif self.label is not None and col == "name":
                yield NameCell(self.label, classes="pc c-name")
            else:
                text, tone = self.cells.get(col, (PROVIDER_HEADINGS[col] if self.label is None else "", ""))
                cell = self._cells[col] = Label(text, classes=f"pc c-{col} {tone}".strip())
                yield cell

    def watch_spark(self, data: tuple[tuple[float, ...], float, float]) -> None:
        if self._spark is not None:
            self._spark.data = data

    def watch_cells(self, old: dict[str, tuple[str, str]], new: dict[str, tuple[str, str]]) -> None:
        for col, (text, tone) in new.items():
            cell = self._cells.get(col)
            if cell is None or old.get(col) == (text, tone):
                continue  # not composed yet (compose draws it from cells), or unchanged
            cell.update(text, layout=False)  # cells have fixed widths (the stylesheet's)
            for cls in TONES:
                cell.set_class(tone == cls, cls)


def provider_cells(p: ProviderView, now_ts: float) -> dict[str, tuple[str, str]]:
    """Text and tone (a CSS class) of each figure of a provider's row (name and sparkline aside)."""

    def count(n: int | None, bad: bool = False) -> tuple[str, str]:
        if n is None:
            return "–", "-muted"
        return f"{n:,}", "-muted" if n == 0 else ("-bad" if bad else "")

    rate, score, cool = p.win_rate, p.score, p.cooldown_left_s(now_ts)
    return {
        "races": count(p.races),
        "wins": count(p.wins),
        "win": ("–", "-muted") if rate is None else (f"{rate:.0%}", "-muted" if rate == 0 else ""),
        "fail": count(p.failures, bad=True),
        "cool": ("· ready", "-muted") if cool is None else (f"◐ {cool:.0f}s", "-warn") if cool > 0 else ("◐ trial", "-warn"),
        "p50": (ms(p.ttft_p50_ms), "" if p.ttft_p50_ms is not None else "-muted"),
        "p95": (ms(p.ttft_p95_ms), "" if p.ttft_p95_ms is not None else "-muted"),
        "score": ("–", "-muted") if score is None else (f"{score:.2f}", "-ok" if score >= 0.6 else "-bad" if score < 0.4 else ""),
        "cost": usd(p.cost_usd),
        "waste": usd(p.wasted_cost_usd, bad=True),
    }


def usd(value: float | None, bad: bool = False) -> tuple[str, str]:
    """A dollar figure for a cell: four significant digits at most, muted when nothing was priced."""
    if not value:
        return "–", "-muted"
    text = f"{value:.4f}" if value < 10 else f"{value:,.2f}"
    return text, "-bad" if bad else ""


class ProvidersPanel(VerticalScroll):
    """The Providers panel: a row per ``provider/model``, in name order."""

    ALLOW_MAXIMIZE = True

    frame: var[Frame] = var((-1, None), init=False)

    def __init__(self, model: DashboardModel, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="panel")
        self.model = model
        self.rows: dict[str, ProviderRow] = {}
        self.draws = 0

    def compose(self) -> ComposeResult:
        yield ProviderRow(None)

    def watch_frame(self, frame: Frame) -> None:
        self.draw(self.model.now_ts if frame[1] is None else frame[1])

    def draw(self, now: float) -> None:
        m = self.model
        labels = m.provider_labels()
        for label in [lb for lb in self.rows if lb not in m.providers]:
            self.rows.pop(label).remove()
        for i, label in enumerate(labels):
            row = self.rows.get(label)
            if row is None:
                row = self.rows[label] = ProviderRow(label)
                later = [self.rows[lb] for lb in labels[i + 1 :] if lb in self.rows and self.rows[lb].parent]
                self.mount(row, before=later[0] if later else None)
            view = m.providers[label]
            row.cells = provider_cells(view, now)
            row.spark = (tuple(view.samples), view.floor_ms, view.ceiling_ms)
        # The cost columns show once the engine prices anything (``prices:`` in its config).
        self.set_class(any(m.providers[lb].cost_usd for lb in labels), "-priced")
        title = f"Providers · {len(labels)}"
        if self.border_title != title:  # setting it repaints the whole panel
            self.border_title = title
        self.draws += 1


# ---------------------------------------------------------------- the event log


class EventLog(RichLog):
    """The event log: writes the model's entries up to ``seq``; follows its end unless scrolled up."""

    seq: var[int] = var(0, init=False)
    palette: var[Palette] = var(Palette.plain, init=False)

    def __init__(self, model: DashboardModel, **kwargs: Any) -> None:
        super().__init__(max_lines=model.log.maxlen, wrap=False, markup=False, **kwargs)
        self.model = model
        self.draws = 0
        self._following = True

    def watch_seq(self, old: int, new: int) -> None:
        self._write(self.model.entries_after(old))

    def watch_palette(self) -> None:
        self.rewrite()

    def rewrite(self) -> None:
        """Everything again (the filter or the colours changed)."""
        self.clear()
        self.set_reactive(EventLog.seq, self.model.log_seq)
        self._write(self.model.entries_after(0))

    def _write(self, entries: list[Any]) -> None:
        if not entries:
            return
        # One write a frame (a write's fixed cost is what adds up), bounded.
        text = Text(no_wrap=True, end="")
        if len(entries) > LOG_PER_FRAME:
            skipped = len(entries) - LOG_PER_FRAME
            text.append(f"… {skipped:,} more events (too fast to show here; p pauses)\n", style=self.palette.muted)
            entries = entries[-LOG_PER_FRAME:]
        for i, entry in enumerate(entries):
            if i:
                text.append("\n")
            text.append_text(log_line(entry, self.palette))
        self.write(text)
        self.draws += 1

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self._following = new_value >= self.max_scroll_y

    def on_resize(self, event: Resize) -> None:
        if self._following:
            self.call_after_refresh(self.scroll_end, animate=False, immediate=True)
