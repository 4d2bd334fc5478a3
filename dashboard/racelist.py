"""The Races panel's table: one row per race, one line per participant, newest on top.

A line-API widget rather than a ``DataTable``: at 1,000 events/s a dozen races
arrive, a dozen leave and a few dozen change every tenth of a second, and a
``DataTable`` pays for each of those (row removal rebuilds its index, any cell
update drops every row's render cache). Here each race is rendered once per
change into :class:`~textual.strip.Strip` lines kept in a cache keyed by the
race's version; a frame then only copies the lines in view. Rows are keyed by
``race_id``; the order is the model's (newest first), so inserting on top is
free.

Keys (when focused): up/down move the cursor a race at a time, page up/down
and home/end jump, enter shows the race's details.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from .render import Palette
from .timeline import RaceLayout, race_height, race_lines
from .views import RaceView

COLUMNS = ("race", "ttft", "participant", "timeline", "result")
HEADINGS = {
    "race": "race",
    "ttft": "ttft",
    "participant": "participant",
    "timeline": "timeline",
    "result": "result",
}


@dataclass
class _Rendered:
    key: tuple[object, ...]
    columns: dict[str, list[Text]]
    lines: list[Strip]


class RaceList(ScrollView, can_focus=True):
    """Races as rows of timelines, drawn from cached lines."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"racelist--header", "racelist--cursor"}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor(-1)", "Previous race", show=False, key_display="↑ k"),
        Binding("down,j", "cursor(1)", "Next race", show=False, key_display="↓ j"),
        Binding("pageup", "cursor(-10)", "Ten races up", show=False),
        Binding("pagedown", "cursor(10)", "Ten races down", show=False),
        Binding("home", "cursor_to(0)", "Newest race", show=False),
        Binding("end", "cursor_to(-1)", "Oldest race", show=False),
        Binding("enter", "select", "The race's details", show=False, key_display="enter"),
    ]

    cursor: reactive[int] = reactive(0, repaint=True)

    class Selected(Message):
        """Enter on a race."""

        def __init__(self, race_id: str) -> None:
            super().__init__()
            self.race_id = race_id

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.order: list[str] = []  # race ids, top to bottom
        self._races: dict[str, RaceView] = {}
        self._starts: list[int] = []  # first line of each row
        self._total = 0
        self._cache: dict[str, _Rendered] = {}
        self._layout = RaceLayout()
        self._palette = Palette.plain()
        self._now = 0.0
        self._tick = 0
        self._typical: dict[str, float] = {}
        self._header: Strip | None = None
        self._base = Style()
        self._cursor_style = Style()

    # ------------------------------------------------------------ feeding

    def show(
        self,
        races: Sequence[RaceView],
        *,
        layout: RaceLayout,
        palette: Palette,
        now: float,
        typical: dict[str, float],
    ) -> int:
        """Show ``races`` (top to bottom); returns how many rows are new on top.

        What the user looks at stays in place: if they scrolled down or moved
        the cursor, new races arriving on top push the view down with them.
        """
        if layout != self._layout or palette is not self._palette:
            self._cache.clear()
            self._header = None
        self._layout, self._palette, self._now = layout, palette, now
        self._typical = typical
        self._tick += 1
        old_first = self.order[0] if self.order else None
        selected = self.order[self.cursor] if self.order and self.cursor < len(self.order) else None
        self.order = [r.race_id for r in races]
        self._races = {r.race_id: r for r in races}
        for gone in [rid for rid in self._cache if rid not in self._races]:
            del self._cache[gone]
        starts, line = [], 0
        for r in races:
            starts.append(line)
            line += race_height(r)
        self._starts, self._total = starts, line
        added = 0
        if old_first is not None and old_first in self._races:
            added = self.order.index(old_first)
        elif old_first is None:
            added = len(self.order)
        keep_place = self.scroll_y > 0 or self.cursor > 0
        self.virtual_size = Size(self.size.width, self._total + 1)
        if selected is not None and selected in self._races and keep_place:
            self.set_reactive(RaceList.cursor, self.order.index(selected))
            if added:
                added_lines = starts[added] if added < len(starts) else self._total
                self.scroll_to(y=self.scroll_y + added_lines, animate=False, immediate=True)
        elif self.cursor >= len(self.order):
            self.set_reactive(RaceList.cursor, max(0, len(self.order) - 1))
        self.refresh()
        return added

    def cells_of(self, race_id: str) -> dict[str, str]:
        """The cells drawn for a race as plain text, one line per participant (for tests)."""
        return {k: "\n".join(t.plain for t in v) for k, v in self._rendered(race_id).columns.items()}

    def lines_of(self, race_id: str) -> list[str]:
        """A race's lines as plain text."""
        return [strip.text for strip in self._rendered(race_id).lines]

    # ------------------------------------------------------------ drawing

    def _rendered(self, race_id: str) -> _Rendered:
        race = self._races[race_id]
        # A running race's bars move with time: redrawn every tick it shows.
        key: tuple[object, ...] = (race.version, self._tick if race.running else None)
        done = self._cache.get(race_id)
        if done is not None and done.key == key:
            return done
        expected = self._typical.get(race.virtual_model, 0.0)
        columns = race_lines(race, self._layout, self._now, self._palette, expected)
        lines = self._to_strips([columns[c] for c in COLUMNS], race_height(race))
        done = self._cache[race_id] = _Rendered(key, columns, lines)
        return done

    def _to_strips(self, columns: list[list[Text]], height: int) -> list[Strip]:
        widths = [self._layout.widths()[c] for c in COLUMNS]
        space = Segment(" ")
        out: list[Strip] = []
        for i in range(height):
            segments: list[Segment] = []
            for lines, width in zip(columns, widths, strict=True):
                segments.append(space)
                segments.extend(_segments(lines[i], width))
                segments.append(space)
            out.append(Strip(segments).apply_style(self._base))
        return out

    def _header_strip(self) -> Strip:
        if self._header is None:
            style = self.get_component_rich_style("racelist--header")
            widths = self._layout.widths()
            text = "".join(f" {HEADINGS[c][: widths[c]].ljust(widths[c])} " for c in COLUMNS)
            self._header = Strip([Segment(text, style)])
        return self._header

    def render_lines(self, crop: Region) -> list[Strip]:
        # The widget's style, once a frame (not once a line): cached lines carry it.
        base = self.rich_style
        if base != self._base:
            self._base = base
            self._cache.clear()
            self._header = None
        self._cursor_style = base + self.get_component_rich_style("racelist--cursor")
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self._base
        if y == 0:
            return (
                self._header_strip()
                .apply_style(base)
                .extend_cell_length(width, base)
                .crop(0, width)
            )
        line = int(self.scroll_y) + y - 1
        if line >= self._total or not self.order:
            return Strip.blank(width, base)
        row = bisect_right(self._starts, line) - 1
        race_id = self.order[row]
        strip = self._rendered(race_id).lines[line - self._starts[row]]
        if self.has_focus and row == self.cursor:
            style = self._cursor_style
            return strip.apply_style(style).extend_cell_length(width, style).crop(0, width)
        return strip.extend_cell_length(width, base).crop(0, width)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._header = None

    # ------------------------------------------------------------ the cursor

    def watch_cursor(self) -> None:
        self._scroll_cursor_into_view()

    def _scroll_cursor_into_view(self) -> None:
        if not self.order or self.cursor >= len(self._starts):
            return
        top = self._starts[self.cursor]
        bottom = top + race_height(self._races[self.order[self.cursor]])
        view = self.size.height - 1
        if top < self.scroll_y:
            self.scroll_to(y=top, animate=False)
        elif bottom > self.scroll_y + view:
            self.scroll_to(y=bottom - view, animate=False)

    def action_cursor(self, delta: int) -> None:
        if self.order:
            self.cursor = max(0, min(len(self.order) - 1, self.cursor + delta))

    def action_cursor_to(self, where: int) -> None:
        if self.order:
            self.cursor = where if where >= 0 else len(self.order) - 1

    def action_select(self) -> None:
        if self.order and self.cursor < len(self.order):
            self.post_message(self.Selected(self.order[self.cursor]))

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    def on_click(self, event: object) -> None:
        y = getattr(event, "y", 0)
        line = int(self.scroll_y) + y - 1
        if 0 <= line < self._total and y > 0:
            self.cursor = bisect_right(self._starts, line) - 1


def _segments(text: Text, width: int) -> list[Segment]:
    """One line of a cell as segments, exactly ``width`` cells wide.

    Cells are built by appending styled pieces (no overlapping spans, no
    wide characters past the cell), so spans map straight to segments: much
    cheaper than a console render, which races do ten times a second.
    """
    plain = text.plain
    base = _style(text.style)
    out: list[Segment] = []
    pos = 0
    for span in text.spans:
        if span.start > pos:
            out.append(Segment(plain[pos : span.start], base))
        style = _style(span.style)
        out.append(Segment(plain[span.start : span.end], style if base is None else base + style))
        pos = max(pos, span.end)
    if pos < len(plain):
        out.append(Segment(plain[pos:], base))
    used = len(plain)
    if used < width:
        out.append(Segment(" " * (width - used), base))
    elif used > width:
        return list(Segment.adjust_line_length(out, width))
    return out


def _style(style: str | Style | None) -> Style | None:
    if not style:
        return None
    return style if isinstance(style, Style) else Style.parse(style)
