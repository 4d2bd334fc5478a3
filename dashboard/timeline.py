"""How a race looks: its row in the Races table, its timeline, and its details.

A race's timeline is drawn on the race's own time scale, one line per
participant: blank until the attempt started, ``─`` while it waited for its
first token, its outcome glyph where that wait ended, and for the winner a
heavy ``━`` while it streamed to the caller. Half-cell tips (``╴``) give
the bars twice the resolution of the columns. A failover reads as one: a
winner that broke off after answering shows ``●`` at its first token and
``✗`` where it broke; the attempt that took over shows ``⇄`` there (it
buffered as a loser until then), and a participant started again shows its
first try, then ``↻`` just before its restart.

The details dialog (:func:`race_details`) says the same things in words,
from the same pieces: the race's name, its caller TTFT and total, and each
participant's result as the table's cell reads.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from rich.style import Style
from rich.text import Text

from .render import GLYPHS, Palette, fit, fit_label, ms
from .views import (
    ANSWERED,
    BENCHED,
    CANCELLED,
    FAILED,
    LOST,
    NOT_STARTED,
    PENDING,
    RUNNING,
    UNKNOWN,
    WON,
    AttemptView,
    RaceView,
)

#: The narrowest timeline worth drawing; participant names give way to it.
MIN_TIMELINE = 24


@dataclass(frozen=True)
class RaceLayout:
    """Column widths of the Races table, worked out from the panel's width."""

    race: int = 11
    ttft: int = 7
    participant: int = 18
    timeline: int = 24
    result: int = 12

    @classmethod
    def for_width(cls, width: int, longest_label: int = 16) -> RaceLayout:
        """Widths that fill a table ``width`` columns wide (cell padding and scrollbar included).

        The participant column fits the longest ``provider/model`` label when
        the timeline keeps at least :data:`MIN_TIMELINE` columns; longer labels
        are cut with an ellipsis.
        """
        padding = 2 * 5 + 1  # one cell of padding each side of five columns, a scrollbar
        if width < 96:
            race, ttft, result = 10, 6, 9
        else:
            race, ttft, result = 11, 7, 12
        others = race + ttft + result + padding
        participant = max(12, min(longest_label + 2, 32, width - others - MIN_TIMELINE))
        timeline = max(10, min(72, width - others - participant))
        return cls(race, ttft, participant, timeline, result)

    def widths(self) -> dict[str, int]:
        return {
            "race": self.race,
            "ttft": self.ttft,
            "participant": self.participant,
            "timeline": self.timeline,
            "result": self.result,
        }


def race_height(race: RaceView) -> int:
    """Lines a race's row needs: one per participant, at least two."""
    return max(2, len(race.attempts))


def race_lines(
    race: RaceView, layout: RaceLayout, now_ts: float, p: Palette, expected_ms: float = 0.0
) -> dict[str, list[Text]]:
    """The Races table's cells for one race, keyed by column, as exactly ``race_height`` lines each.

    ``expected_ms``: how long such races usually take (the scale of a running one).
    """
    height = race_height(race)
    return {
        "race": _pad(_race_cell(race, layout.race, height, p), height),
        "ttft": _pad(_ttft_cell(race, layout.ttft, p), height),
        "participant": _pad([_participant_line(a, layout.participant, p) for a in race.attempts], height),
        "timeline": timeline_lines(race, layout.timeline, now_ts, p, expected_ms),
        "result": _pad([_result_line(a, layout.result, now_ts, race, p) for a in race.attempts], height),
    }


def race_cells(
    race: RaceView, layout: RaceLayout, now_ts: float, p: Palette, expected_ms: float = 0.0
) -> dict[str, Text]:
    """:func:`race_lines` with each cell's lines joined into one multi-line Text."""
    return {k: _join(v) for k, v in race_lines(race, layout, now_ts, p, expected_ms).items()}


def _pad(lines: list[Text], height: int) -> list[Text]:
    while len(lines) < height:
        lines.append(Text(""))
    return lines


def _join(lines: list[Text]) -> Text:
    out = Text("\n").join(lines)
    out.no_wrap = True
    out.end = ""
    return out


def _race_cell(race: RaceView, width: int, height: int, p: Palette) -> list[Text]:
    lines = [
        Text(fit(race.virtual_model, width), style=p.text + Style(bold=True)),
        Text(fit(race.strategy, width), style=p.muted),
    ]
    if height > 2:
        lines.append(Text(fit(race.title, width), style=p.muted))
    return lines


def _ttft_cell(race: RaceView, width: int, p: Palette) -> list[Text]:
    if race.ttft_ms is not None:
        first = Text(ms(race.ttft_ms).rjust(width), style=p.success + Style(bold=True))
    elif race.running:
        first = Text("…".rjust(width), style=p.accent)
    elif race.outcome == UNKNOWN:
        first = Text("?".rjust(width), style=p.warning)
    else:
        first = Text(fit(race.outcome or "", width).rstrip().rjust(width), style=p.error)
    lines = [first]
    if race.total_ms is not None:
        lines.append(Text(("Σ" + ms(race.total_ms)).rjust(width), style=p.muted))
    return lines


def _participant_line(a: AttemptView, width: int, p: Palette) -> Text:
    glyph = GLYPHS.get(a.status, "·")
    line = Text(glyph + " ", style=p.for_status(a.status))
    name_style = p.text if a.status in (WON, RUNNING, ANSWERED) else p.muted
    line.append(fit_label(a.label, width - 2), style=name_style)
    return line


def _result_line(a: AttemptView, width: int, now_ts: float, race: RaceView, p: Palette) -> Text:
    if a.status == FAILED:
        return Text(fit(a.error_kind or "failed", width), style=p.error)
    if a.status == NOT_STARTED:
        return Text(fit("unneeded", width), style=p.muted)
    if a.status == BENCHED:
        return Text(fit("cooling down", width), style=p.warning)
    if a.status == PENDING:
        return Text(fit("waiting", width), style=p.muted)
    if a.status == UNKNOWN:
        return Text(fit("lost track", width), style=p.warning)
    if a.ttft_ms is not None:
        style = p.success if a.status == WON else p.muted if a.status == LOST else p.accent
        return Text(ms(a.ttft_ms).rjust(width - 1).ljust(width), style=style)
    if a.status == CANCELLED:
        return Text(fit("cancelled", width), style=p.muted)
    # running, no token yet: how long it has waited
    waited = (now_ts - race.started_ts) * 1000.0 - (a.started_ms or 0.0)
    return Text(("…" + ms(max(0.0, waited))).rjust(width - 1).ljust(width), style=p.accent)


def timeline_lines(
    race: RaceView, width: int, now_ts: float, p: Palette, expected_ms: float = 0.0
) -> list[Text]:
    """The race's participants as bars on its own time scale, one line each."""
    span = race.span_ms(now_ts, expected_ms)
    now_ms = (now_ts - race.started_ts) * 1000.0 if race.running else span
    takeover = race.failover_ms
    bars = [_bar(a, width, span, now_ms, p, takeover if a.index == race.winner else None) for a in race.attempts]
    return _pad(bars, race_height(race))


def timeline(race: RaceView, width: int, now_ts: float, p: Palette, expected_ms: float = 0.0) -> Text:
    """:func:`timeline_lines` as one multi-line Text."""
    return _join(timeline_lines(race, width, now_ts, p, expected_ms))


def _bar(a: AttemptView, width: int, span: float, now_ms: float, p: Palette, takeover_ms: float | None = None) -> Text:
    """One participant's line. A failover shows on it: a restart's first try, then ``↻`` where it
    started again; ``⇄`` where the winner took over from one that broke (``takeover_ms``)."""
    line = Text(no_wrap=True, end="")
    if a.started_ms is None or a.status in (PENDING, NOT_STARTED, BENCHED):
        return line.append(" " * width)
    # Half-cells: position x on [0, span] maps to 2*(width-1) half-steps, leaving
    # the last cell free for the glyph of an attempt that ends at the very end.
    halves = 2 * (width - 1)

    def at(t_ms: float) -> int:
        return max(0, min(halves, round(t_ms / span * halves)))

    style = p.for_status(a.status)
    start = at(a.started_ms)
    token = a.token_ms
    if a.status in (RUNNING, UNKNOWN):
        end, tail_end, glyph = (
            at(now_ms if a.status == RUNNING else (a.ended_ms or now_ms)),
            None,
            GLYPHS[a.status],
        )
    elif token is not None:  # answered: won, lost or still deciding; or it broke off after answering
        end, tail_end = at(token), at(a.ended_ms if a.ended_ms is not None else now_ms)
        broke_later = a.status == FAILED and tail_end > end + 1  # ✗ goes where it broke off
        glyph = GLYPHS[ANSWERED if broke_later else a.status]
    else:  # failed or cancelled before a token
        end, tail_end, glyph = (
            at(a.ended_ms if a.ended_ms is not None else now_ms),
            None,
            GLYPHS[a.status],
        )
    cells = _half_line(start, end, "─", "╴")
    if a.earlier is not None:
        line.append_text(_first_try(a.earlier, start // 2, at, p))
    else:
        line.append(" " * (start // 2))
    line.append(cells, style=style)
    line.append(glyph, style=style + Style(bold=True))
    used = start // 2 + len(cells) + 1
    if tail_end is not None and tail_end > end + 1:
        tail_char = "━" if a.status == WON else "┄"
        tail_style = p.success if a.status == WON else p.muted if a.status == LOST else p.accent
        took = None if takeover_ms is None else at(takeover_ms)
        if a.status == WON and took is not None and end + 2 < took < tail_end:
            # it buffered as a loser until the winner broke, then took over
            before = _half_line(end + 2, took, "┄", "╴")
            segments = [(before, p.muted), ("⇄", p.success + Style(bold=True))]
            segments.append((_half_line(took + 2, tail_end, "━", "╸"), tail_style))
        else:
            segments = [(_half_line(end + 2, tail_end, tail_char, "╸" if a.status == WON else "╴"), tail_style)]
        if a.status == FAILED:  # where it broke off
            segments = [(_half_line(end + 2, tail_end, "┄", "╴"), p.muted), (GLYPHS[FAILED], style + Style(bold=True))]
        for text, seg_style in segments:
            text = text[: max(0, width - used)]
            line.append(text, style=seg_style)
            used += len(text)
    if used < width:
        line.append(" " * (width - used))
    elif used > width:
        line.truncate(width)
    return line


def _first_try(earlier: AttemptView, cells: int, at: Callable[[float], int], p: Palette) -> Text:
    """The ``cells`` before a restart's start: its first try (to its end glyph), then ``↻``."""
    out = Text(no_wrap=True, end="")
    if cells <= 0:
        return out
    room = cells - 1  # the last one is the restart's ↻
    if earlier.started_ms is not None and room > 0:
        first = min(at(earlier.started_ms) // 2, room - 1)
        last = min(at(earlier.ended_ms if earlier.ended_ms is not None else earlier.started_ms) // 2, room - 1)
        style = p.for_status(earlier.status)
        out.append(" " * first)
        out.append("─" * max(0, last - first), style=style)
        out.append(GLYPHS.get(earlier.status, "·"), style=style)
    out.append(" " * (room - len(out)))
    out.append("↻", style=p.warning + Style(bold=True))
    return out


def _half_line(start: int, end: int, full: str, half: str) -> str:
    """Cells covering half-steps ``start``..``end``, a half tip if it ends mid-cell."""
    n = max(0, end - start)
    body = full * (n // 2)
    if n % 2:
        body += half
    return body


# ---------------------------------------------------------------- the details dialog

#: What a participant's state reads as, in words (the table says it with a glyph).
STATUS_WORDS = {
    WON: "won",
    LOST: "answered, lost",
    ANSWERED: "answered",
    FAILED: "failed",
    CANCELLED: "cancelled",
    RUNNING: "running",
    PENDING: "waiting to start",
    NOT_STARTED: "not started: unneeded",
    BENCHED: "not started: cooling down",
    UNKNOWN: "lost track (the connection dropped)",
}


def race_details(race: RaceView, now_ts: float, p: Palette) -> Text:
    """Everything known about one race, as the details dialog shows it.

    Named as in the table and the log (``#12``), with the times the table
    shows: the caller's TTFT and total (``…`` while running), and for each
    participant its table cell (its TTFT, how long it has waited, or why it
    did not answer) beside when it started and ended.
    """
    body = Text()
    body.append(race.title, style=p.text + Style(bold=True))
    body.append(f"  {race.virtual_model} · {race.strategy} · {race.outcome or 'running'}", style=p.text)
    body.append(f"  ({race.race_id})\n", style=p.muted)
    when = time.strftime("%H:%M:%S", time.localtime(race.started_ts))
    caller = ms(race.ttft_ms) if race.ttft_ms is not None else "…" if race.running else "–"
    total = ms(race.total_ms) if race.total_ms is not None else "…" if race.running else "–"
    body.append(f"started {when} · first token to caller {caller} · total Σ{total}\n", style=p.text)
    if race.failover_ms is not None:
        body.append(f"failover at {ms(race.failover_ms)}: the winner broke before its answer was committed\n", style=p.warning)
    if race.error:
        body.append(f"error: {race.error}\n", style=p.error)
    width = max((len(a.label) for a in race.attempts), default=10)
    for a in race.attempts:
        body.append("\n")
        body.append(f"{GLYPHS.get(a.status, '·')} ", style=p.for_status(a.status) + Style(bold=True))
        body.append(a.label.ljust(width), style=p.text + Style(bold=True))
        cell = _result_line(a, 14, now_ts, race, p)
        body.append("  ")
        shown = cell.plain.strip()
        body.append(shown, style=cell.style)
        words = STATUS_WORDS.get(a.status, a.status)
        body.append(f"  {words}\n" if words != shown else "\n", style=p.muted)
        if (first := a.earlier) is not None:
            ended = f" · ended at {ms(first.ended_ms)}" if first.ended_ms is not None else ""
            started = ms(first.started_ms) if first.started_ms is not None else "?"
            words = STATUS_WORDS.get(first.status, first.status)
            body.append(f"    first try: started at {started}{ended}, {words}; restarted (failover)\n", style=p.warning)
        if a.started_ms is None:
            body.append("    never started\n", style=p.muted)
        else:
            times = [f"started at {ms(a.started_ms)}"]
            if a.token_ms is not None:
                times.append(f"first token at {ms(a.token_ms)} (after {ms(a.ttft_ms)})")
            if a.ended_ms is not None:
                times.append(f"ended at {ms(a.ended_ms)}")
            body.append("    " + " · ".join(times) + " (race time)\n", style=p.muted)
        if a.error:
            body.append(f"    {a.error_kind}: {a.error}\n", style=p.error if a.status == FAILED else p.warning)
    return body
