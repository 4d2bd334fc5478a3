"""The dashboard's dialogs: help, the filter, which engine to watch, one race's details."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.reactive import var
from textual.screen import ModalScreen
from textual.widgets import Button, Label, OptionList, Select, Static
from textual.widgets.option_list import Option

from . import link
from .racelist import RaceList
from .render import Palette
from .timeline import race_details
from .views import Filter, RaceView

GLYPH_LEGEND = (
    ("★", "won: first token to the caller"),
    ("●", "answered: lost, or deciding"),
    ("✗", "failed before a first token"),
    ("⊘", "cancelled before a first token"),
    ("▸", "running, no token yet"),
    ("·", "not started: unneeded (hedged)"),
    ("◐", "cooling down: sat the race out"),
    ("─", "waiting for a first token"),
    ("━", "the winner streaming"),
    ("┄", "a loser in the grace window"),
    ("Σ", "the race's total time"),
)


def key_table(app: App[Any], bindings: Iterable[BindingType]) -> Text:
    """``bindings`` as lines of keys and what they do (keys that do the same share a line)."""
    described: dict[str, list[str]] = {}  # keys as shown -> what they do
    for binding in bindings:
        if not isinstance(binding, Binding) or not binding.description:
            continue
        keys = binding.key_display or " ".join(app.get_key_display(Binding(k.strip(), "")) for k in binding.key.split(","))
        doing = described.setdefault(keys, [])
        if binding.description not in doing:
            doing.append(binding.description)
    merged: dict[str, list[str]] = {}  # what they do -> every key that does it (q and ^c quit)
    for keys, doing in described.items():
        merged.setdefault(" / ".join(doing), []).append(keys)
    table = Text(no_wrap=True, end="")
    for doing_text, keys_list in merged.items():
        table.append(f"{' '.join(keys_list):>6}  ", style="bold")
        table.append(doing_text + "\n")
    return table


class HelpScreen(ModalScreen[None]):
    """Every key (generated from the bindings: the app's, the Races table's, the command palette's) and the glyphs."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark,f1", "dismiss", "Close", show=False),
    ]

    def compose(self) -> ComposeResult:
        app = self.app
        palette = Binding(app.COMMAND_PALETTE_BINDING, "command_palette", "Commands: screenshot, theme")
        legend = Text(no_wrap=True, end="")
        for glyph, meaning in GLYPH_LEGEND:
            legend.append(f"{glyph:>2}  ", style="bold")
            legend.append(meaning + "\n")
        with VerticalScroll(id="help"):
            yield Label("raceway dashboard — help", classes="dialog-title")
            with Horizontal(id="help-columns"):
                with Vertical(id="help-keys"):
                    yield Label("keys", classes="dialog-heading")
                    yield Static(key_table(app, [*app.BINDINGS, palette]), id="help-app-keys")
                    yield Label("in the Races table (1)", classes="dialog-heading")
                    yield Static(key_table(app, RaceList.BINDINGS), id="help-race-keys")
                with Vertical(id="help-glyphs"):
                    yield Label("glyphs", classes="dialog-heading")
                    yield Static(legend)
            yield Label("Each race is drawn on its own time scale. Escape closes this.", classes="dialog-hint")

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
        vm, provider = self.current.virtual_model, self.current.provider
        with Vertical(id="filter"):
            yield Label("Filter races and events", classes="dialog-title")
            yield Label("virtual model")
            yield Select(
                [(m, m) for m in self.models], prompt="all virtual models",
                value=vm if vm in self.models else Select.NULL, id="filter-model",
            )  # fmt: skip
            yield Label("provider")
            yield Select(
                [(p, p) for p in self.providers], prompt="all providers",
                value=provider if provider in self.providers else Select.NULL, id="filter-provider",
            )  # fmt: skip
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
            yield Label(f"{len(self.sockets)} raceway engines are running — watch which?", classes="dialog-title")
            yield OptionList(*options, id="pick-list")
            yield Label("enter picks · escape looks again later", classes="dialog-hint")

    @on(OptionList.OptionSelected)
    def picked(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.sockets[int(event.option.id or 0)])

    def action_cancel(self) -> None:
        self.dismiss(None)


class RaceScreen(ModalScreen[None]):
    """Everything known about one race, errors in full, kept up to date while it runs.

    Its state is the race's version (and the clock while the race runs): the
    dialog redraws when that moves, so it always shows what the table shows.
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,enter,q", "close", "Close", show=False)]

    shown: var[tuple[int, float | None]] = var((-1, None), init=False)

    def __init__(self, race: RaceView, now: Callable[[], float], palette: Palette) -> None:
        super().__init__()
        self.race = race
        self.now = now
        self.palette = palette
        self.body = Static("", id="race-detail-body")

    def compose(self) -> ComposeResult:
        with Vertical(id="race-detail"):
            yield self.body
            yield Label("escape closes", classes="dialog-hint")

    def on_mount(self) -> None:
        self._follow()
        self.set_interval(0.1, self._follow)

    def _follow(self) -> None:
        self.shown = (self.race.version, self.now() if self.race.running else None)

    def watch_shown(self, shown: tuple[int, float | None]) -> None:
        now = self.now() if shown[1] is None else shown[1]
        details = race_details(self.race, now, self.palette)
        self.body.update(details)
        self._text = details.plain

    def text(self) -> str:
        """What the dialog says now, as plain text."""
        return getattr(self, "_text", "")

    def action_close(self) -> None:
        self.dismiss(None)
