"""The dashboard app: one App class, its screens and small widgets; layout and colour in ``dashboard.tcss``.

How data moves: the ``engine link`` worker reads the socket with asyncio streams
and only appends raw lines to an inbox. A timer (:data:`TICK_HZ`) hands the
inbox to the model, then redraws what changed inside ``batch_update()``:
races rows by ``race_id``, provider rows by ``provider/model``, new log lines.
Redraw cost therefore follows the screen (a few hundred cells, ten times a
second), not the event rate, and a burst of events costs one redraw.

Pause freezes the view, not the feed: the model keeps ingesting (it is bounded)
and the top bar counts what is new; resuming draws the difference at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, Horizontal, Vertical, VerticalScroll
from textual.events import Resize
from textual.reactive import reactive
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Footer, Label, OptionList, RichLog, Select, Static
from textual.widgets.option_list import Option

from raceway import wire

from . import link
from .model import DashboardModel, Filter, ProviderView, RaceView
from .racelist import RaceList
from .render import (
    GLYPHS,
    Palette,
    RaceLayout,
    fit,
    log_line,
    ms,
    sparkline,
)

#: Redraws per second: smooth enough to watch, cheap enough at any event rate.
TICK_HZ = 10
#: Lines the worker may buffer before it stops reading (the engine then drops
#: events for us and says so): about twenty seconds at 1,000 events/s.
INBOX_LIMIT = 20_000
#: Lines decoded per tick at most, so one huge burst cannot freeze the keys.
FEED_PER_TICK = 2_000
#: Log lines written per tick at most (one write: a burst, or what came in while paused).
LOG_PER_TICK = 400
#: Below this the dashboard only says what size it needs (btop does the same).
MIN_SIZE = (60, 16)
#: Narrower than this: the compact layout (short log, no sparklines).
NARROW_BELOW = 100
#: At least this wide: Races beside Providers and the log.
WIDE_FROM = 140
#: At least this wide: every provider column beside the races.
ROOMY_FROM = 190
#: Garbage-collection thresholds for the dashboard's process (see :func:`tune_gc`).
GC_THRESHOLDS = (50_000, 20, 100)
#: Running bars keep growing between events for at most this long.
EXTRAPOLATE_S = 2.0

# Link states, shown in the top bar.
SEARCHING, CONNECTING, CONNECTED, DISCONNECTED = (
    "searching",
    "connecting",
    "connected",
    "disconnected",
)


class EventLog(RichLog):
    """The event log: follows its end, also when a resize moves the end (unless scrolled up)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._following = True

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self._following = new_value >= self.max_scroll_y

    def on_resize(self, event: Resize) -> None:
        if self._following:
            self.call_after_refresh(self.scroll_end, animate=False, immediate=True)


class Spark(Widget):
    """A provider's recent first-token times as ▁…█, as wide as its cell."""

    DEFAULT_CSS = "Spark { height: 1; }"

    def __init__(self, *, classes: str | None = None) -> None:
        super().__init__(classes=classes)
        self._data: tuple[tuple[float, ...], float, float] = ((), 0.0, 0.0)

    def set_data(self, samples: tuple[float, ...], floor: float, ceiling: float) -> None:
        data = (samples, floor, ceiling)
        if data != self._data:
            self._data = data
            self.refresh()

    def render(self) -> str:
        samples, floor, ceiling = self._data
        return sparkline(samples, self.content_region.width, floor, ceiling)


class Panel(Vertical):
    """A bordered panel that ``e`` can maximise."""

    ALLOW_MAXIMIZE = True


class ScrollPanel(VerticalScroll):
    """A bordered, scrolling panel that ``e`` can maximise."""

    ALLOW_MAXIMIZE = True


# ---------------------------------------------------------------- widgets


class TopBar(Horizontal):
    """One row: what we watch, the link's state, the rates, pause and drop notices."""

    PARTS = ("target", "state", "rate", "paused", "dropped")

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._parts = {part: Label("", id=f"tb-{part}") for part in self.PARTS}
        self._shown: dict[str, tuple[str, frozenset[str]]] = {}

    def compose(self) -> ComposeResult:
        yield Label("raceway", id="tb-brand")
        yield from self._parts.values()

    def set(self, part: str, text: str, *classes: str) -> None:
        """Show ``text`` in ``part`` (``target``, ``state``, ...), with only ``classes`` set."""
        wanted = frozenset(classes)
        old = self._shown.get(part)
        if old == (text, wanted):
            return
        self._shown[part] = (text, wanted)
        label = self._parts[part]
        # A layout pass costs the whole screen: only when the label's width changes.
        label.update(text, layout=old is None or len(old[0]) != len(text))
        for cls in ("-ok", "-warn", "-bad", "-muted"):
            label.set_class(cls in wanted, cls)
        if label.display != bool(text):
            label.display = bool(text)

    def text(self, part: str) -> str:
        """What ``part`` shows now (for tests)."""
        return self._shown.get(part, ("", frozenset()))[0]


PROVIDER_COLUMNS = ("name", "races", "wins", "win", "fail", "cool", "p50", "p95", "score", "spark")
PROVIDER_HEADINGS = {
    "name": "provider/model",
    "races": "races",
    "wins": "wins",
    "win": "win%",
    "fail": "fail",
    "cool": "cooldown",
    "p50": "p50",
    "p95": "p95",
    "score": "score",
    "spark": "recent ttft",
}


class ProviderRow(Horizontal):
    """One provider/model's figures, a cell per column; only changed cells are touched."""

    def __init__(self, label: str | None) -> None:
        super().__init__(classes="prow -header" if label is None else "prow")
        self.label = label
        self._cells: dict[str, Label] = {}
        self._shown: dict[str, tuple[str, str]] = {}
        self._spark: Spark | None = None
        self._spark_data: tuple[tuple[float, ...], float, float] = ((), 0.0, 0.0)

    def compose(self) -> ComposeResult:
        for col in PROVIDER_COLUMNS:
            if col == "spark" and self.label is not None:
                self._spark = Spark(classes="pc c-spark")
                self._spark.set_data(*self._spark_data)
                yield self._spark
                continue
            text, tone = self._shown.get(
                col, (PROVIDER_HEADINGS[col] if self.label is None else "", "")
            )
            cell = self._cells[col] = Label(text, classes=f"pc c-{col} {tone}".strip())
            yield cell

    def show(self, cells: dict[str, tuple[str, str]], spark: tuple[tuple[float, ...], float, float]) -> None:
        self._spark_data = spark
        if self._spark is not None:
            self._spark.set_data(*spark)
        for col, (text, tone) in cells.items():
            if self._shown.get(col) == (text, tone):
                continue
            self._shown[col] = (text, tone)
            cell = self._cells.get(col)
            if cell is None:
                continue  # not composed yet: compose draws it from _shown
            cell.update(text, layout=False)  # cells have fixed widths (the stylesheet's)
            for cls in ("-ok", "-warn", "-bad", "-muted"):
                cell.set_class(tone == cls, cls)


def provider_cells(p: ProviderView, now_ts: float) -> dict[str, tuple[str, str]]:
    """Text and tone (a CSS class) of each cell of a provider's row (the sparkline aside)."""

    def count(n: int | None, bad: bool = False) -> tuple[str, str]:
        if n is None:
            return "–", "-muted"
        return f"{n:,}", "-muted" if n == 0 else ("-bad" if bad else "")

    rate = p.win_rate
    score = p.score
    cool = p.cooldown_left_s(now_ts)
    return {
        "name": (fit(p.label, 40).rstrip(), ""),
        "races": count(p.races),
        "wins": count(p.wins),
        "win": ("–", "-muted") if rate is None else (f"{rate:.0%}", "-muted" if rate == 0 else ""),
        "fail": count(p.failures, bad=True),
        "cool": ("· ready", "-muted")
        if cool is None
        else (f"◐ {cool:.0f}s", "-warn")
        if cool > 0
        else ("◐ trial", "-warn"),
        "p50": (ms(p.ttft_p50_ms), "" if p.ttft_p50_ms is not None else "-muted"),
        "p95": (ms(p.ttft_p95_ms), "" if p.ttft_p95_ms is not None else "-muted"),
        "score": ("–", "-muted")
        if score is None
        else (f"{score:.2f}", "-ok" if score >= 0.6 else "-bad" if score < 0.4 else ""),
    }


# ---------------------------------------------------------------- screens


class HelpScreen(ModalScreen[None]):
    """The keys (generated from the app's bindings) and what the glyphs mean."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark,f1", "dismiss", "Close", show=False),
    ]

    def compose(self) -> ComposeResult:
        app = self.app
        described: dict[str, list[str]] = {}  # key as shown -> what it does
        for binding in app.BINDINGS:
            if not isinstance(binding, Binding) or not binding.description:
                continue
            keys = binding.key_display or ", ".join(
                app.get_key_display(Binding(k.strip(), "")) for k in binding.key.split(",")
            )
            doing = described.setdefault(keys, [])
            if binding.description not in doing:
                doing.append(binding.description)
        table = Text(no_wrap=True)
        for keys, doing in described.items():
            table.append(f"{keys:>5}  ", style="bold")
            table.append(" / ".join(doing) + "\n")
        legend = Text(no_wrap=True)
        for glyph, meaning in (
            ("★", "won: first token to the caller"),
            ("●", "answered; lost, or still deciding"),
            ("✗", "failed before a first token"),
            ("⊘", "cancelled before a first token"),
            ("▸", "running, no token yet"),
            ("·", "not started (hedged)"),
            ("─", "waiting for a first token"),
            ("━", "the winner streaming"),
            ("┄", "a loser kept for the grace window"),
            ("◐", "a provider cooling down"),
            ("Σ", "the race's total time"),
        ):
            legend.append(f"{glyph:>2}  ", style="bold")
            legend.append(meaning + "\n")
        with Vertical(id="help"):
            yield Label("raceway dashboard — help", classes="dialog-title")
            with Horizontal(id="help-columns"):
                with Vertical(id="help-keys"):
                    yield Label("keys", classes="dialog-heading")
                    yield Static(table)
                with Vertical(id="help-glyphs"):
                    yield Label("glyphs", classes="dialog-heading")
                    yield Static(legend)
            yield Label(
                "Each race is drawn on its own time scale. Escape closes this.",
                classes="dialog-hint",
            )

    def action_dismiss(self, result: Any = None) -> Any:
        self.dismiss(None)


class FilterScreen(ModalScreen["Filter | None"]):
    """Pick a virtual model and/or a provider; races and the log show only those."""

    AUTO_FOCUS = "#filter-model"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", show=False)]

    def __init__(self, current: Filter, models: list[str], providers: list[str]) -> None:
        super().__init__()
        self.current = current
        self.models = models
        self.providers = providers

    def compose(self) -> ComposeResult:
        with Vertical(id="filter"):
            yield Label("Filter races and events", classes="dialog-title")
            yield Label("virtual model")
            yield Select(
                [(m, m) for m in self.models],
                prompt="all virtual models",
                value=self.current.virtual_model
                if self.current.virtual_model in self.models
                else Select.NULL,
                id="filter-model",
            )
            yield Label("provider")
            yield Select(
                [(p, p) for p in self.providers],
                prompt="all providers",
                value=self.current.provider
                if self.current.provider in self.providers
                else Select.NULL,
                id="filter-provider",
            )
            with Horizontal(id="filter-buttons"):
                yield Button("Apply", variant="primary", id="filter-apply")
                yield Button("Show all", id="filter-clear")
                yield Button("Cancel", id="filter-cancel")

    @on(Button.Pressed, "#filter-apply")
    def apply(self) -> None:
        vm = self.query_one("#filter-model", Select).value
        provider = self.query_one("#filter-provider", Select).value
        self.dismiss(
            Filter(
                virtual_model=vm if isinstance(vm, str) else None,
                provider=provider if isinstance(provider, str) else None,
            )
        )

    @on(Button.Pressed, "#filter-clear")
    def clear(self) -> None:
        self.dismiss(Filter())

    @on(Button.Pressed, "#filter-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class PickEngineScreen(ModalScreen["Path | None"]):
    """Several engines are running: which one to watch."""

    AUTO_FOCUS = "#pick-list"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", show=False)]

    def __init__(self, sockets: list[Path]) -> None:
        super().__init__()
        self.sockets = sockets

    def compose(self) -> ComposeResult:
        options = []
        for i, path in enumerate(self.sockets):
            pid = link.pid_of(path)
            try:
                since = time.strftime("%H:%M:%S", time.localtime(path.stat().st_mtime))
            except OSError:
                since = "?"
            who = f"pid {pid}" if pid is not None else path.name
            options.append(Option(f"{who:<12} since {since}   {path}", id=str(i)))
        with Vertical(id="pick"):
            yield Label(
                f"{len(self.sockets)} raceway engines are running — watch which?",
                classes="dialog-title",
            )
            yield OptionList(*options, id="pick-list")
            yield Label("enter picks · escape looks again later", classes="dialog-hint")

    @on(OptionList.OptionSelected)
    def picked(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.sockets[int(event.option.id or 0)])

    def action_cancel(self) -> None:
        self.dismiss(None)


class RaceScreen(ModalScreen[None]):
    """Everything known about one race, errors in full."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,enter,q", "close", "Close", show=False)
    ]

    def __init__(self, race: RaceView) -> None:
        super().__init__()
        self.race = race

    def compose(self) -> ComposeResult:
        r = self.race
        body = Text()
        body.append(f"race {r.race_id}", style="bold")
        body.append(f"   {r.virtual_model} · {r.strategy} · {r.outcome or 'running'}\n")
        when = time.strftime("%H:%M:%S", time.localtime(r.started_ts))
        body.append(
            f"started {when} · first token to caller {ms(r.ttft_ms)} · total {ms(r.total_ms)}\n"
        )
        if r.error:
            body.append(f"error: {r.error}\n")
        body.append("\n")
        for a in r.attempts:
            body.append(f"{GLYPHS.get(a.status, '·')} {a.label}", style="bold")
            body.append(f"  {a.status}\n")
            body.append(
                f"    started {ms(a.started_ms)} · first token after {ms(a.ttft_ms)} · ended {ms(a.ended_ms)}\n"
            )
            if a.error:
                body.append(f"    {a.error_kind}: {a.error}\n")
        with Vertical(id="race-detail"):
            yield Static(body)
            yield Label("escape closes", classes="dialog-hint")

    def action_close(self) -> None:
        self.dismiss(None)


# ---------------------------------------------------------------- the app


class Dashboard(App[int]):
    """Watch a raceway engine: its races as timelines, its providers, its events."""

    CSS_PATH = "dashboard.tcss"
    TITLE = "raceway dashboard"
    ENABLE_COMMAND_PALETTE = True
    AUTO_FOCUS = None  # nothing focused at start: no cursor until the user asks for one
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit", id="quit"),
        Binding("question_mark,f1", "help", "Help", key_display="?", id="help"),
        Binding("p", "pause", "Pause", id="pause"),
        Binding("p", "resume", "Resume", id="resume"),
        Binding("slash", "filter", "Filter", key_display="/", id="filter"),
        Binding("e", "expand", "Expand", id="expand"),
        Binding("r", "reconnect", "Reconnect", id="reconnect"),
        Binding("1", "focus_panel('races')", "Focus races", show=False, id="focus-races"),
        Binding(
            "2", "focus_panel('providers')", "Focus providers", show=False, id="focus-providers"
        ),
        Binding("3", "focus_panel('log')", "Focus event log", show=False, id="focus-log"),
        Binding(
            "escape", "clear_filter", "Clear filter / un-expand", show=False, id="clear-filter"
        ),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True, id="quit-ctrl-c"),
    ]

    paused: reactive[bool] = reactive(False, bindings=True)
    link_state: reactive[str] = reactive(SEARCHING)

    def __init__(self, socket: Path | str | None = None, *, directory: Path | None = None) -> None:
        super().__init__()
        self.socket = Path(socket) if socket is not None else None
        self.directory = directory
        self.model = DashboardModel()
        self.palette = Palette.plain()
        self.target: Path | None = self.socket
        self._notice: str | None = None
        self.retries = 0  # failed connects since the last success
        self.next_retry_at: float | None = None  # monotonic
        self.lines_received = 0
        self.sessions = 0  # successful connections so far
        self.redraws = 0  # ticks that drew something
        self.ticks = 0
        self.new_while_paused = 0
        self._inbox: list[bytes] = []
        self._room = asyncio.Event()
        self._wake = asyncio.Event()
        self._writer: asyncio.StreamWriter | None = None
        self._last_feed = time.monotonic()
        self._layout: RaceLayout | None = None
        self._providers_drawn = -1
        self._races_drawn = -1
        self._log_drawn = 0
        self._provider_rows: dict[str, ProviderRow] = {}
        self._main_screen: Any = None
        self._dropped_toast_at = 0.0
        # The widgets the redraw touches, made here so no query can miss them
        # (a query from the app searches whichever screen is on top).
        self.topbar = TopBar(id="topbar")
        self.races_panel = Panel(id="races-panel", classes="panel")
        self.races_table = RaceList(id="races")
        self.races_empty = Static("", id="races-empty")
        self.providers_panel = ScrollPanel(id="providers-panel", classes="panel")
        self.log_panel = Panel(id="log-panel", classes="panel")
        self.log_view = EventLog(id="log", max_lines=self.model.log.maxlen, wrap=False, markup=False)
        self.too_small = Static("", id="too-small")

    # ------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield self.topbar
        with Container(id="main"):
            with self.races_panel:
                yield self.races_table
                yield self.races_empty
            with Vertical(id="side"):
                with self.providers_panel:
                    yield ProviderRow(None)
                with self.log_panel:
                    yield self.log_view
        yield self.too_small
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self._main_screen = self.screen
        self.races_panel.border_title = "Races"
        self.providers_panel.border_title = "Providers"
        self.log_panel.border_title = "Events"
        self._set_palette()
        self.theme_changed_signal.subscribe(self, lambda _theme: self._theme_changed())
        self._apply_size(self.size.width, self.size.height)
        self.set_interval(1 / TICK_HZ, self._tick, name="redraw")
        self.engine_link()
        self._apply_and_draw()

    def on_resize(self, event: Resize) -> None:
        self._apply_size(event.size.width, event.size.height)

    def _apply_size(self, width: int, height: int) -> None:
        screen = self._main_screen
        if screen is None:
            return
        tiny = width < MIN_SIZE[0] or height < MIN_SIZE[1]
        screen.set_class(tiny, "-tiny")
        screen.set_class(width < NARROW_BELOW, "-narrow")
        screen.set_class(width >= WIDE_FROM, "-wide")
        screen.set_class(width >= ROOMY_FROM, "-roomy")
        screen.set_class(height < 30, "-short")
        if tiny:
            self.too_small.update(
                f"raceway-dashboard needs at least {MIN_SIZE[0]}×{MIN_SIZE[1]} (this is {width}×{height}).\n"
                "Make the terminal bigger, or press q to quit."
            )
        self.call_after_refresh(self._relayout)

    def _relayout(self) -> None:
        # The table's own width sets the timeline's.
        self._draw_races(force_layout=True)

    def _set_palette(self) -> None:
        self.palette = Palette.from_theme(self.get_css_variables())

    def _theme_changed(self) -> None:
        self._set_palette()
        self._providers_drawn = -1
        self._redraw_log()
        self._draw_races(force_layout=True)

    # ------------------------------------------------------------ the engine link (a worker)

    @work(exclusive=True, group="link", name="engine link")
    async def engine_link(self) -> None:
        """Find the engine, read its lines into the inbox, reconnect when it goes away. Never returns."""
        while True:
            path = await self._find_target()
            self.link_state = CONNECTING
            self.next_retry_at = None
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_unix_connection(str(path), limit=link.LINE_LIMIT),
                    link.CONNECT_TIMEOUT_S,
                )
            except (TimeoutError, OSError) as exc:
                self.retries += 1
                self._link_down(path, exc)
                await self._sleep(link.backoff_s(self.retries))
                continue
            self._writer = writer
            self.retries = 0
            self._link_up(path)
            try:
                await self._pump(reader)
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                self._writer = None
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
            self.retries = 1
            self._link_lost(path)
            await self._sleep(link.backoff_s(self.retries))

    async def _find_target(self) -> Path:
        if self.socket is not None:
            return self.socket
        announced = False
        while True:
            candidates = link.discover(self.directory)
            chosen = link.choose(candidates, self.target)
            if chosen is None and len(candidates) > 1:
                chosen = await self.push_screen_wait(PickEngineScreen(candidates))
            if chosen is not None:
                self.target = chosen
                return chosen
            if self.model.hello is not None:  # we had one: it is gone, we look for it again
                self.link_state = DISCONNECTED
                self.retries += 1
            else:
                self.link_state = SEARCHING
            if not announced:
                where = self.directory or wire.default_monitor_dir()
                self.model.note("○", f"no raceway engine is running; looking in {where}", "warn")
                announced = True
            await self._sleep(link.SEARCH_INTERVAL_S)

    async def _sleep(self, seconds: float) -> None:
        """Wait ``seconds``, or less if the user asks to reconnect now."""
        self._wake.clear()
        self.next_retry_at = time.monotonic() + seconds
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self.next_retry_at = None

    async def _pump(self, reader: asyncio.StreamReader) -> None:
        pending = b""
        while True:
            chunk = await reader.read(1 << 16)
            if not chunk:
                return
            pending += chunk
            if b"\n" not in chunk:
                if len(pending) > link.LINE_LIMIT:
                    pending = b""  # a runaway line: not a message of ours
                continue
            *lines, pending = pending.split(b"\n")
            self._inbox.extend(line for line in lines if line)
            self.lines_received += len(lines)
            while len(self._inbox) >= INBOX_LIMIT:
                # Stop reading: the engine's bounded queue takes the strain, drops and tells us.
                self._room.clear()
                await self._room.wait()

    def _link_up(self, path: Path) -> None:
        self.sessions += 1
        self.link_state = CONNECTED
        self._main_screen.remove_class("-stale")
        self.model.note("●", f"connected to {path}", "good")
        self.notify(
            f"Watching the engine at {path.name}",
            title="Connected" if self.sessions == 1 else "Reconnected",
        )

    def _link_down(self, path: Path, exc: BaseException) -> None:
        self.link_state = DISCONNECTED
        self._main_screen.add_class("-stale")
        if self.retries == 1:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            self.model.note("✗", f"cannot connect to {path}: {why}; retrying", "bad")

    def _link_lost(self, path: Path) -> None:
        self.link_state = DISCONNECTED
        self.model.connection_lost()
        self._main_screen.add_class("-stale")
        self.model.note("✗", f"lost the engine at {path}; reconnecting", "bad")
        self.notify(
            "The engine went away; reconnecting by itself", title="Disconnected", severity="warning"
        )

    # ------------------------------------------------------------ the redraw tick

    def _tick(self) -> None:
        self.ticks += 1
        self._apply_and_draw()

    def _apply_and_draw(self) -> None:
        if not self.races_table.is_attached:
            return  # shutting down
        if self._inbox:
            lines = self._inbox[:FEED_PER_TICK]
            del self._inbox[:FEED_PER_TICK]
            if len(self._inbox) < INBOX_LIMIT:
                self._room.set()
            before = self.model.messages
            dropped_before = self.model.dropped
            self.model.feed_all(lines)
            self._last_feed = time.monotonic()
            if self.paused:
                self.new_while_paused += self.model.messages - before
            if self.model.dropped != dropped_before:
                self._toast_dropped(self.model.dropped - dropped_before)
        with self.batch_update():
            self._draw_topbar()
            if not self.races_table.order:
                self._update_empty_notice(False)
            if not self.paused:
                drew = self._draw_races()
                drew = self._draw_providers() or drew
                drew = self._draw_log() or drew
                if drew:
                    self.redraws += 1

    def _now(self) -> float:
        """The engine's clock, run forward a little between events so running bars grow."""
        model = self.model
        if self.link_state != CONNECTED:
            return model.now_ts
        return model.now_ts + min(EXTRAPOLATE_S, time.monotonic() - self._last_feed)

    def _toast_dropped(self, count: int) -> None:
        now = time.monotonic()
        if now - self._dropped_toast_at > 5.0:
            self._dropped_toast_at = now
            self.notify(
                f"The engine skipped {count:,} events: this dashboard fell behind.",
                title="Events dropped",
                severity="warning",
            )

    def _draw_topbar(self) -> None:
        bar = self.topbar
        m = self.model
        target = self.target.name if self.target else "no engine"
        if m.hello is not None and self.target is not None:
            if self.size.width < NARROW_BELOW:
                target = f"pid {m.hello.pid}"
            else:
                target += f" · pid {m.hello.pid} · raceway {m.hello.engine_version or '?'}"
        bar.set("target", target)
        state = self.link_state
        if state == CONNECTED:
            bar.set("state", "● CONNECTED", "-ok")
        elif state == CONNECTING:
            bar.set("state", "◌ CONNECTING", "-warn")
        elif state == SEARCHING:
            bar.set("state", "○ NO ENGINE · looking", "-warn")
        else:
            wait = ""
            if self.next_retry_at is not None:
                wait = f" · next in {max(0.0, self.next_retry_at - time.monotonic()):.1f}s"
            if m.hello is None:  # never connected yet: an engine starting up, most likely
                bar.set("state", f"◌ WAITING FOR ENGINE · try {self.retries}{wait}", "-warn")
            else:
                bar.set("state", f"✗ DISCONNECTED · RECONNECTING {self.retries}{wait}", "-bad")
        if state == CONNECTED:
            # fixed widths: the label keeps its size as the figures move
            bar.set("rate", f"{m.race_rate():.1f} races/s · {m.event_rate():,.0f} ev/s".rjust(26))
        else:
            bar.set("rate", "– races/s", "-muted")
        bar.set(
            "paused", f"⏸ PAUSED · {self.new_while_paused:,} new" if self.paused else "", "-warn"
        )
        bar.set("dropped", f"⚠ {m.dropped:,} dropped" if m.dropped else "", "-warn")

    # races

    def _draw_races(self, force_layout: bool = False) -> bool:
        if self.paused and not force_layout:
            return False
        m = self.model
        if m.races_version == self._races_drawn and not m.running_count() and not force_layout:
            return False
        self._races_drawn = m.races_version
        table = self.races_table
        longest = max((len(label) for label in m.providers), default=16)
        layout = RaceLayout.for_width(table.size.width or self.size.width, longest)
        self._layout = layout
        visible = m.visible_races()
        table.show(visible, layout=layout, palette=self.palette, now=self._now(), typical=m.typical)
        self.races_panel.set_class(not visible, "-empty")
        self._update_races_title(len(visible))
        self._update_empty_notice(bool(visible))
        return True

    def _update_races_title(self, shown: int | None = None) -> None:
        m = self.model
        if shown is None:
            shown = len(self.races_table.order)
        title = f"Races · {shown} shown · {m.running_count()} running"
        if m.filter.active:
            title += f" · filter {m.filter.describe()}"
        panel = self.races_panel
        if panel.border_title != title:
            panel.border_title = title

    def _update_empty_notice(self, any_races: bool) -> None:
        if any_races:
            return
        notice = self.races_empty
        if self.model.filter.active:
            text = f"No races match the filter ({self.model.filter.describe()}). Press escape to show all."
        elif self.link_state == SEARCHING:
            where = self.directory or wire.default_monitor_dir()
            text = (
                f"No raceway engine is running.\nLooking for one in {where} every second…\n\n"
                "Start one with `raceway demo`, or give a socket: raceway-dashboard --socket PATH"
            )
        elif self.link_state == CONNECTED:
            text = "Connected. No races yet: they show here as they run."
        elif self.socket is not None:
            text = (
                f"Waiting for an engine at {self.socket}…\n\n"
                "It shows here as soon as it serves its monitor there (monitor.socket in its config)."
            )
        else:
            text = "Waiting for the engine…"
        if text != getattr(self, "_notice", None):
            self._notice = text
            notice.update(text)

    # providers

    def _draw_providers(self) -> bool:
        m = self.model
        now = self._now()
        cooling = any(p.cooldown_left_s(m.now_ts) for p in m.providers.values())
        if m.providers_version == self._providers_drawn and not cooling:
            return False
        self._providers_drawn = m.providers_version
        panel = self.providers_panel
        labels = m.provider_labels()
        for label in [lb for lb in self._provider_rows if lb not in m.providers]:
            self._provider_rows.pop(label).remove()
        for i, label in enumerate(labels):
            row = self._provider_rows.get(label)
            if row is None:
                row = self._provider_rows[label] = ProviderRow(label)
                later = [
                    self._provider_rows[lb]
                    for lb in labels[i + 1 :]
                    if lb in self._provider_rows and self._provider_rows[lb].parent
                ]
                if later:
                    panel.mount(row, before=later[0])
                else:
                    panel.mount(row)
                self.call_after_refresh(
                    self._relayout
                )  # its sparkline's width is known once laid out
            view = m.providers[label]
            row.show(provider_cells(view, now), (tuple(view.samples), view.floor_ms, view.ceiling_ms))
        title = f"Providers · {len(labels)}"
        if panel.border_title != title:
            panel.border_title = title
        return True

    # log

    def _draw_log(self) -> bool:
        m = self.model
        if m.log_seq == self._log_drawn:
            self._update_log_title()
            return False
        entries = m.entries_after(self._log_drawn)
        self._log_drawn = m.log_seq
        log = self.log_view
        # One write a tick (a write's fixed cost is what adds up), bounded.
        room = LOG_PER_TICK
        text = Text(no_wrap=True, end="")
        if len(entries) > room:
            skipped = len(entries) - room
            text.append(f"… {skipped:,} more events (too fast to show here; p pauses)\n", style=self.palette.muted)
            entries = entries[-room:]
        for i, entry in enumerate(entries):
            if i:
                text.append("\n")
            text.append_text(log_line(entry, self.palette))
        if entries:
            log.write(text)
        self._update_log_title()
        return bool(entries)

    def _redraw_log(self) -> None:
        log = self.log_view
        log.clear()
        self._log_drawn = 0
        self._draw_log()

    def _update_log_title(self) -> None:
        m = self.model
        title = "Events"
        if m.filter.active:
            title += f" · filter {m.filter.describe()}"
        panel = self.log_panel
        if panel.border_title != title:
            panel.border_title = title

    # ------------------------------------------------------------ actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "pause":
            return not self.paused
        if action == "resume":
            return self.paused
        return True

    def action_pause(self) -> None:
        self.paused = True
        self.new_while_paused = 0

    def action_resume(self) -> None:
        self.paused = False
        self.new_while_paused = 0
        self._apply_and_draw()

    def watch_paused(self, paused: bool) -> None:
        if self._main_screen is not None:
            self._main_screen.set_class(paused, "-paused")

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_filter(self) -> None:
        m = self.model

        def done(result: Filter | None) -> None:
            if result is not None:
                self._set_filter(result)

        self.push_screen(FilterScreen(m.filter, list(m.virtual_models), m.provider_labels()), done)

    def action_clear_filter(self) -> None:
        if self.screen.maximized is not None:
            self.screen.minimize()
        elif self.model.filter.active:
            self._set_filter(Filter())

    def _set_filter(self, new: Filter) -> None:
        self.model.set_filter(new)
        self._redraw_log()
        self._draw_races()
        self._update_races_title()
        self._update_log_title()

    def action_expand(self) -> None:
        screen = self.screen
        if screen.maximized is not None:
            screen.minimize()
            return
        focused = self.focused
        panel: Widget | None = None
        node = focused
        while node is not None and panel is None:
            if isinstance(node, Widget) and node.has_class("panel"):
                panel = node
            node = node.parent  # type: ignore[assignment]
        if panel is None:
            panel = self.races_panel
        screen.maximize(panel, container=False)

    def action_focus_panel(self, which: str) -> None:
        target = {
            "races": self.races_table,
            "providers": self.providers_panel,
            "log": self.log_view,
        }[which]
        target.focus()

    def action_reconnect(self) -> None:
        if self._writer is not None:
            self._writer.close()  # the worker sees the end and reconnects at once
            self.retries = 0
        self._wake.set()
        self.notify("Reconnecting now")

    @on(RaceList.Selected)
    def show_race(self, event: RaceList.Selected) -> None:
        race = self.model.races.get(event.race_id)
        if race is not None:
            self.push_screen(RaceScreen(race))

    async def action_quit(self) -> None:
        self.exit(0)


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


def run(socket: Path | str | None = None, directory: Path | None = None) -> int:
    """Run the dashboard in this terminal until the user quits; the exit code."""
    tune_gc()
    result = Dashboard(socket, directory=directory).run()
    return int(result or 0)
