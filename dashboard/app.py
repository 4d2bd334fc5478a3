"""The dashboard app: one App class; its widgets, dialogs, link and status texts live beside it, layout and colour in ``dashboard.tcss``.

How data moves: the ``engine link`` worker (:class:`dashboard.link.EngineLink`)
reads the socket with asyncio streams and only appends raw lines to an inbox.
A timer (:data:`TICK_HZ`) hands the inbox to the model, then hands each view
its state: the panels' ``frame`` (the model's version, and the clock while
races run), the log's ``seq``, the top bar's texts. Those are Textual
reactives, so a view redraws only when its value moved, inside one
``batch_update()``. Redraw cost therefore follows the screen (a few hundred
cells, ten times a second), not the event rate, and a burst costs one redraw.

Pause freezes the view, not the feed: the model keeps ingesting (it is bounded)
and the top bar counts what is new; resuming hands the views the current state
at once.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, Vertical
from textual.events import Resize
from textual.reactive import reactive, var
from textual.widget import Widget
from textual.widgets import Footer, Static

from .link import CONNECTED, CONNECTING, DISCONNECTED, SEARCHING, EngineLink
from .model import DashboardModel
from .process import GC_THRESHOLDS as GC_THRESHOLDS
from .process import screenshot_dir, tune_gc
from .racelist import RaceList
from .render import Palette
from .screens import FilterScreen, HelpScreen, PickEngineScreen, RaceScreen
from .status import START_HINT as START_HINT
from .status import draw_topbar, notice
from .views import Filter
from .widgets import EventLog, Panel, ProvidersPanel, RacesPanel, Spark, TopBar

__all__ = [  # what tests and the benchmark reach for
    "CONNECTED", "CONNECTING", "DISCONNECTED", "SEARCHING", "Dashboard", "FilterScreen", "HelpScreen",
    "PickEngineScreen", "RaceScreen", "Spark", "run", "tune_gc",
]  # fmt: skip

#: Redraws per second: smooth enough to watch, cheap enough at any event rate.
TICK_HZ = 10
#: Lines decoded per tick at most, so one huge burst cannot freeze the keys.
FEED_PER_TICK = 2_000
#: Below this the dashboard only says what size it needs (btop does the same).
MIN_SIZE = (60, 16)
#: Narrower than this: the compact layout (short log, no sparklines).
NARROW_BELOW = 100
#: At least this wide: Races beside Providers and the log.
WIDE_FROM = 140
#: At least this wide: every provider column beside the races.
ROOMY_FROM = 190
#: Running bars keep growing between events for at most this long.
EXTRAPOLATE_S = 2.0


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
        Binding("2", "focus_panel('providers')", "Focus providers", show=False, id="focus-providers"),
        Binding("3", "focus_panel('log')", "Focus event log", show=False, id="focus-log"),
        Binding("escape", "clear_filter", "Clear filter / un-expand", show=False, id="clear-filter"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True, id="quit-ctrl-c"),
    ]

    paused: reactive[bool] = reactive(False, bindings=True)
    link_state: var[str] = var(SEARCHING)
    palette: var[Palette] = var(Palette.plain, init=False)

    def __init__(self, socket: Path | str | None = None, *, directory: Path | None = None) -> None:
        super().__init__()
        self.socket = Path(socket) if socket is not None else None
        self.directory = directory
        self.model = DashboardModel()
        self.link = EngineLink(self, self.socket, directory)
        self.redraws = 0  # ticks that drew something (a figure for the benchmark)
        self.ticks = 0
        self.new_while_paused = 0
        self._last_feed = time.monotonic()
        self._dropped_toast_at = 0.0
        # The widgets the redraw touches, made here so no query can miss them
        # (a query from the app searches whichever screen is on top).
        self.topbar = TopBar(id="topbar")
        self.races_panel = RacesPanel(self.model, id="races-panel")
        self.races_table = self.races_panel.table
        self.providers_panel = ProvidersPanel(self.model, id="providers-panel")
        self.log_panel = Panel(id="log-panel", classes="panel")
        self.log_view = EventLog(self.model, id="log")
        self.too_small = Static("", id="too-small")
        self._main_screen: Any = None

    @property
    def target(self) -> Path | None:
        """The socket watched (or last watched)."""
        return self.link.target

    @property
    def retries(self) -> int:
        """Failed connects since the last success."""
        return self.link.retries

    @property
    def sessions(self) -> int:
        """Successful connections so far."""
        return self.link.sessions

    @property
    def inbox(self) -> list[bytes]:
        """Lines read and not yet applied."""
        return self.link.inbox

    # ------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield self.topbar
        with Container(id="main"):
            yield self.races_panel
            with Vertical(id="side"):
                yield self.providers_panel
                with self.log_panel:
                    yield self.log_view
        yield self.too_small
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self._main_screen = self.screen
        self.log_panel.border_title = "Events"
        self.palette = Palette.from_theme(self.get_css_variables())
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
            return  # not mounted yet: on_mount applies the size
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

    def _theme_changed(self) -> None:
        self.palette = Palette.from_theme(self.get_css_variables())

    def watch_palette(self, palette: Palette) -> None:
        self.races_panel.palette = self.log_view.palette = palette

    def watch_paused(self, paused: bool) -> None:
        if self._main_screen is not None:
            self._main_screen.set_class(paused, "-paused")

    def watch_link_state(self, state: str) -> None:
        if self._main_screen is not None:
            self._main_screen.set_class(state != CONNECTED, "-stale")

    # ------------------------------------------------------------ the engine link (a worker)

    @work(exclusive=True, group="link", name="engine link")
    async def engine_link(self) -> None:
        """Run the link: find the engine, read it, reconnect. Never returns."""
        await self.link.run()

    # What the link tells us (dashboard.link.LinkHost).

    def link_state_changed(self, state: str) -> None:
        self.link_state = state

    def link_up(self, path: Path) -> None:
        self.link_state = CONNECTED
        self.model.note("●", f"connected to {path}", "good")
        self.notify(f"Watching the engine at {path.name}", title="Connected" if self.sessions == 1 else "Reconnected")

    def link_failed(self, path: Path, exc: BaseException, retries: int) -> None:
        self.link_state = DISCONNECTED
        if retries == 1:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            self.model.note("✗", f"cannot connect to {path}: {why}; retrying", "bad")

    def link_lost(self, path: Path, asked: bool) -> None:
        if asked:  # the user pressed r: the engine is fine, we hung up ourselves
            self.link_state = CONNECTING
            self.model.note("↻", f"reconnecting to {path}, as asked", "muted")
            return
        self.link_state = DISCONNECTED
        self.model.connection_lost()
        self.model.note("✗", f"lost the engine at {path}; reconnecting", "bad")
        self.notify("The engine went away; reconnecting by itself", title="Disconnected", severity="warning")

    def link_searching(self, directory: Path, first: bool, had_engine: bool) -> None:
        self.link_state = DISCONNECTED if had_engine else SEARCHING
        if first:
            self.model.note("○", f"no raceway engine is running; looking in {directory}", "warn")

    async def pick_engine(self, candidates: list[Path]) -> Path | None:
        return await self.push_screen_wait(PickEngineScreen(candidates))

    # ------------------------------------------------------------ the redraw tick

    def _tick(self) -> None:
        self.ticks += 1
        self._apply_and_draw()

    def _apply_and_draw(self) -> None:
        if not self.races_table.is_attached:
            return  # shutting down
        m = self.model
        if self.link.inbox:
            before, dropped_before = m.messages, m.dropped
            m.feed_all(self.link.take(FEED_PER_TICK))
            self._last_feed = time.monotonic()
            if self.paused:
                self.new_while_paused += m.messages - before
            if m.dropped != dropped_before:
                self._toast_dropped(m.dropped - dropped_before)
        draws = self._draws()
        with self.batch_update():
            self._draw_topbar()
            self.races_panel.notice = self._notice()
            if not self.paused:
                now = self._now()
                self.races_panel.frame = (m.races_version, now if m.running_count() else None)
                self.providers_panel.frame = (m.providers_version, now if m.cooling() else None)
                self.log_view.seq = m.log_seq
        if self._draws() != draws:
            self.redraws += 1

    def _draws(self) -> int:
        return self.races_panel.draws + self.providers_panel.draws + self.log_view.draws

    def _now(self) -> float:
        """The engine's clock, run forward a little between events so running bars grow."""
        if self.link_state != CONNECTED:
            return self.model.now_ts
        return self.model.now_ts + min(EXTRAPOLATE_S, time.monotonic() - self._last_feed)

    def _toast_dropped(self, count: int) -> None:
        now = time.monotonic()
        if now - self._dropped_toast_at > 5.0:
            self._dropped_toast_at = now
            self.notify(
                f"The engine skipped {count:,} events: this dashboard fell behind.", title="Events dropped", severity="warning"
            )

    def _draw_topbar(self) -> None:
        draw_topbar(
            self.topbar, self.model, self.link_state, self.link,
            narrow=self.size.width < NARROW_BELOW, paused=self.paused, new_while_paused=self.new_while_paused,
        )  # fmt: skip

    def _notice(self) -> str:
        """What the Races panel says when it has no race to show."""
        return notice(self.model, self.link_state, self.link, self.socket)

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

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_filter(self) -> None:
        m = self.model

        def done(result: Filter | None) -> None:
            if result is not None:
                self.set_filter(result)

        self.push_screen(FilterScreen(m.filter, list(m.virtual_models), m.provider_labels()), done)

    def action_clear_filter(self) -> None:
        if self.screen.maximized is not None:
            self.screen.minimize()
        elif self.model.filter.active:
            self.set_filter(Filter())

    def set_filter(self, new: Filter) -> None:
        """Show only the races and events ``new`` lets through."""
        self.model.set_filter(new)
        self.log_view.rewrite()
        self.log_panel.border_title = f"Events · filter {new.describe()}" if new.active else "Events"
        self.races_panel.draw()

    def action_expand(self) -> None:
        screen = self.screen
        if screen.maximized is not None:
            screen.minimize()
            return
        node: Any = self.focused
        while node is not None and not (isinstance(node, Widget) and node.has_class("panel")):
            node = node.parent
        screen.maximize(node if node is not None else self.races_panel, container=False)

    def action_focus_panel(self, which: str) -> None:
        {"races": self.races_table, "providers": self.providers_panel, "log": self.log_view}[which].focus()

    def action_reconnect(self) -> None:
        self.link.reconnect_now()
        self.notify("Reconnecting now")

    @on(RaceList.Selected)
    def show_race(self, event: RaceList.Selected) -> None:
        race = self.model.races.get(event.race_id)
        if race is not None:
            self.push_screen(RaceScreen(race, self._now, self.palette))

    def deliver_screenshot(self, filename: str | None = None, path: str | None = None, time_format: str | None = None) -> str | None:
        """Textual's screenshot (``^p`` → Screenshot), saved where it can be: Downloads, else here."""
        return super().deliver_screenshot(filename, path or str(screenshot_dir()), time_format)

    async def action_quit(self) -> None:
        self.exit(0)


def run(socket: Path | str | None = None, directory: Path | None = None) -> int:
    """Run the dashboard in this terminal until the user quits; the exit code."""
    tune_gc()
    result = Dashboard(socket, directory=directory).run()
    return int(result or 0)

