"""The dashboard's model, renderers and link rules: plain Python, no terminal.

These pin the folding of wire messages into what the dashboard shows: race
states, bounded history, provider figures from partial stats, filters, and
the glyphs each outcome draws.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from replay_monitor import recorded_messages

from dashboard import link, render, timeline
from dashboard.model import DashboardModel
from dashboard.views import (
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
    Filter,
    ProviderView,
    nice_ceiling,
    nice_floor,
)
from raceway import wire

T0 = 1_700_000_000.0
PARTICIPANTS = (("swift", "swift-1"), ("steady", "steady-2"), ("laggard", "laggard-xl"))


def started(race_id: str = "r-1", vm: str = "fast", ts: float = T0) -> wire.RaceStarted:
    return wire.RaceStarted(race_id=race_id, ts=ts, virtual_model=vm, strategy="first_wins", participants=PARTICIPANTS)


def attempt(kind: type, index: int, ms: float, race_id: str = "r-1", **extra: object) -> object:
    provider, model = PARTICIPANTS[index]
    return kind(race_id=race_id, ts=T0 + ms / 1000, elapsed_ms=ms, index=index, provider=provider, model=model, **extra)


def record(index: int, status: str, **extra: object) -> wire.AttemptRecord:
    provider, model = PARTICIPANTS[index]
    return wire.AttemptRecord(index=index, provider=provider, model=model, status=status, **extra)  # type: ignore[arg-type]


def finished(race_id: str = "r-1", vm: str = "fast", ms: float = 400.0) -> wire.RaceFinished:
    return wire.RaceFinished(
        race_id=race_id,
        ts=T0 + ms / 1000,
        elapsed_ms=ms,
        virtual_model=vm,
        strategy="first_wins",
        outcome="ok",
        attempts=(
            record(0, "failed", started_ms=0.5, ended_ms=40.0, error="HTTP 429", error_kind="rate_limited"),
            record(1, "won", started_ms=0.5, ttft_ms=250.0, ended_ms=ms),
            record(2, "cancelled", started_ms=0.5, ended_ms=300.0),
        ),
        winner=1,
        ttft_ms=251.0,
        total_ms=ms,
    )


def one_race() -> list[object]:
    return [
        started(),
        *(attempt(wire.AttemptStarted, i, 0.5) for i in range(3)),
        attempt(wire.AttemptFailed, 0, 40.0, error_kind="rate_limited", error="HTTP 429", retry_after=1.0),
        attempt(wire.AttemptFirstToken, 1, 250.5, ttft_ms=250.0),
        attempt(wire.RaceDecided, 1, 251.0, ttft_ms=251.0),
        attempt(wire.AttemptCancelled, 2, 300.0, answered=False),
        finished(),
    ]


# ---------------------------------------------------------------- races


def test_a_race_moves_through_its_states_as_events_arrive() -> None:
    m = DashboardModel()
    events = one_race()
    m.apply(events[0])
    race = m.races["r-1"]
    assert [a.status for a in race.attempts] == [PENDING] * 3 and race.running
    for e in events[1:4]:
        m.apply(e)
    assert [a.status for a in race.attempts] == [RUNNING] * 3
    m.apply(events[4])
    assert race.attempts[0].status == FAILED and race.attempts[0].error_kind == "rate_limited"
    m.apply(events[5])
    assert race.attempts[1].status == ANSWERED and race.attempts[1].ttft_ms == 250.0
    m.apply(events[6])
    assert race.attempts[1].status == WON and race.winner == 1 and race.ttft_ms == 251.0
    m.apply(events[7])
    assert race.attempts[2].status == CANCELLED
    m.apply(events[8])
    assert race.finished and race.outcome == "ok" and race.total_ms == 400.0
    assert [a.status for a in race.attempts] == [FAILED, WON, CANCELLED]
    # each first token is a sparkline sample, counted once
    assert list(m.providers["steady/steady-2"].samples) == [250.0]


def test_an_answer_then_a_cancel_is_a_loss() -> None:
    m = DashboardModel()
    m.apply(started())
    m.apply(attempt(wire.AttemptStarted, 2, 0.5))
    m.apply(attempt(wire.AttemptFirstToken, 2, 300.0, ttft_ms=299.5))
    m.apply(attempt(wire.AttemptCancelled, 2, 320.0, answered=True))
    assert m.races["r-1"].attempts[2].status == LOST


def test_a_race_first_heard_of_at_its_end_is_complete() -> None:
    m = DashboardModel()
    m.apply(finished())  # joined mid-race: no race_started was seen
    race = m.races["r-1"]
    assert not race.live and race.finished
    assert [a.status for a in race.attempts] == [FAILED, WON, CANCELLED]
    assert list(m.providers["steady/steady-2"].samples) == [250.0]


def test_events_of_unknown_races_are_ignored() -> None:
    m = DashboardModel()
    m.apply(attempt(wire.AttemptFirstToken, 1, 250.0, race_id="nope", ttft_ms=249.0))
    assert not m.races
    assert m.messages == 1


def test_history_is_bounded_and_dropped_races_stay_dropped() -> None:
    m = DashboardModel(race_history=5)
    for n in range(8):
        m.apply(started(race_id=f"r-{n}", ts=T0 + n))
    assert list(m.races) == [f"r-{n}" for n in range(3, 8)]
    m.apply(finished(race_id="r-0"))  # its end arrives after it was dropped
    assert "r-0" not in m.races and len(m.races) == 5
    assert next(r.race_id for r in m.newest_first()) == "r-7"


def test_a_lost_connection_leaves_running_races_of_unknown_fate() -> None:
    m = DashboardModel()
    for e in one_race()[:5]:
        m.apply(e)
    m.connection_lost()
    race = m.races["r-1"]
    assert race.outcome == UNKNOWN
    assert [a.status for a in race.attempts] == [FAILED, UNKNOWN, UNKNOWN]


def test_races_per_second_run_on_the_engines_clock() -> None:
    m = DashboardModel()
    for n in range(10):  # two races a second for five seconds
        m.apply(started(race_id=f"r-{n}", ts=T0 + n / 2))
    m.apply(wire.StatsSnapshot(ts=T0 + 5.0))
    assert m.race_rate() == pytest.approx(2.0)
    m.apply(wire.StatsSnapshot(ts=T0 + 60.0))  # a minute of silence
    assert m.race_rate() == 0.0


# ---------------------------------------------------------------- providers


def test_provider_figures_cope_with_missing_and_odd_keys() -> None:
    p = ProviderView("x/y", stats={"races": 10, "wins": 4, "failures": {"http": 2, "timeout": 1}, "mystery": [1]})
    assert (p.races, p.wins, p.win_rate, p.failures) == (10, 4, 0.4, 3)
    assert p.ttft_p50_ms is None and p.score is None and p.cooldown_left_s(T0) is None
    odd = ProviderView("x/y", stats={"races": "many", "wins": None, "failures": 7, "score": True})
    assert (odd.races, odd.wins, odd.win_rate, odd.failures, odd.score) == (None, None, None, 7, None)


def test_cooldown_counts_down_on_the_engines_clock_then_awaits_its_trial() -> None:
    p = ProviderView("x/y", stats={"cooldown_until": T0 + 30})
    assert p.cooldown_left_s(T0) == 30.0
    assert p.cooldown_left_s(T0 + 40) == 0.0  # over, not yet tried again


def test_cooldown_events_update_the_provider_at_once() -> None:
    m = DashboardModel()
    cooldown = SimpleNamespace(
        type="provider_cooldown", ts=T0, race_id="r-1", provider="swift", model="swift-1",
        until=T0 + 20, seconds=20.0, reason="rate_limited", failures=0,
    )  # fmt: skip
    m.apply(cooldown)
    assert m.providers["swift/swift-1"].cooldown_left_s(T0) == 20.0
    assert "sits out races for 20 s (rate limited)" in m.log[-1].text
    m.apply(SimpleNamespace(type="provider_recovered", ts=T0 + 25, race_id="r-9", provider="swift", model="swift-1"))
    assert m.providers["swift/swift-1"].cooldown_left_s(T0 + 25) is None


def test_a_snapshot_replaces_the_statistics_of_an_earlier_session() -> None:
    m = DashboardModel()
    m.apply(wire.Snapshot(ts=T0, stats={"old/one": {"races": 3}}))
    m.apply(wire.Snapshot(ts=T0 + 1, stats={"new/one": {"races": 1}}, races=(finished(),)))
    assert set(m.providers) >= {"new/one", "steady/steady-2"} and "old/one" not in m.providers
    assert m.races["r-1"].finished


def test_stats_only_bump_versions_when_something_changed() -> None:
    m = DashboardModel()
    m.apply(wire.StatsSnapshot(ts=T0, providers={"a/b": {"races": 1}}))
    version = m.providers_version
    m.apply(wire.StatsSnapshot(ts=T0 + 1, providers={"a/b": {"races": 1}}))
    assert m.providers_version == version
    m.apply(wire.StatsSnapshot(ts=T0 + 2, providers={"a/b": {"races": 2}}))
    assert m.providers_version > version


def test_sparkline_scales_are_fixed_per_provider_and_only_widen() -> None:
    p = ProviderView("x/y")
    for v in (260.0, 240.0, 280.0):
        p.add_sample(v)
    assert (p.floor_ms, p.ceiling_ms) == (200.0, 500.0)
    p.add_sample(90.0)
    assert (p.floor_ms, p.ceiling_ms) == (50.0, 500.0)
    assert [nice_ceiling(v) for v in (0.5, 7, 120, 260, 999, 1001)] == [0.5, 10, 200, 500, 1000, 2000]
    assert [nice_floor(v) for v in (0.5, 7, 120, 260, 999)] == [0.0, 5, 100, 250, 500]


# ---------------------------------------------------------------- filters and log


def test_filters_pick_races_and_log_entries_by_model_and_provider() -> None:
    m = DashboardModel()
    for e in one_race():
        m.apply(e)
    m.apply(started(race_id="r-2", vm="best"))
    m.note("●", "connected", "good")
    m.set_filter(Filter(virtual_model="best"))
    assert [r.race_id for r in m.visible_races()] == ["r-2"]
    assert all(e.virtual_model == "best" or not e.engine for e in m.entries_after(0))
    m.set_filter(Filter(provider="swift/swift-1"))
    shown = m.entries_after(0)
    assert any("rate_limited" in e.text for e in shown)
    assert not any("steady/steady-2 first token" in e.text for e in shown)
    assert any(e.text == "connected" for e in shown)  # connection news always shows
    assert Filter(virtual_model="fast", provider="a/b").describe() == "model=fast provider=a/b"


def test_dropped_events_are_counted_and_logged() -> None:
    m = DashboardModel()
    m.apply(wire.Dropped(ts=T0, count=120))
    m.apply(wire.Dropped(ts=T0 + 1, count=5))
    assert m.dropped == 125
    assert "skipped 120 events" in m.log[0].text


def test_lines_that_are_not_messages_are_counted_and_ignored() -> None:
    m = DashboardModel()
    assert not m.feed(b"not json")
    assert not m.feed(b'{"type": "mystery", "ts": 1}')
    assert not m.feed(b'{"type": "race_started"}')
    assert m.feed(wire.encode(started()))
    assert m.invalid_lines == 3 and len(m.races) == 1


def test_the_log_is_bounded() -> None:
    m = DashboardModel(log_history=50)
    for message in recorded_messages():
        m.apply(message)
    assert len(m.log) == 50
    assert m.entries_after(m.log_seq - 3) == list(m.log)[-3:]


# ---------------------------------------------------------------- rendering


def plain(text: object) -> str:
    return str(getattr(text, "plain", text))


def test_a_timeline_marks_each_outcome_where_it_happened() -> None:
    m = DashboardModel()
    for e in one_race():
        m.apply(e)
    race = m.races["r-1"]
    lines = plain(timeline.timeline(race, 40, m.now_ts, render.Palette.plain())).split("\n")
    assert [len(line) for line in lines] == [40, 40, 40]
    failed, won, cancelled = lines
    assert failed.rstrip().endswith("✗") and failed.index("✗") < 6  # at 40 of 400 ms
    assert "★" in won and "━" in won  # first token, then streaming to the caller
    assert 22 <= won.index("★") <= 26  # 250 of 400 ms, on 40 columns
    assert cancelled.rstrip().endswith("⊘") and 27 <= cancelled.index("⊘") <= 31


def test_a_running_race_grows_across_a_typical_duration() -> None:
    m = DashboardModel()
    m.apply(started())
    m.apply(attempt(wire.AttemptStarted, 0, 0.5))
    race = m.races["r-1"]
    early = plain(timeline.timeline(race, 30, T0 + 0.1, render.Palette.plain(), expected_ms=1000))
    later = plain(timeline.timeline(race, 30, T0 + 0.5, render.Palette.plain(), expected_ms=1000))
    assert early.split("\n")[0].index("▸") < later.split("\n")[0].index("▸")


def test_race_cells_show_the_winner_the_failure_and_the_callers_ttft() -> None:
    m = DashboardModel()
    for e in one_race():
        m.apply(e)
    layout = timeline.RaceLayout.for_width(120)
    cells = {k: plain(v) for k, v in timeline.race_cells(m.races["r-1"], layout, m.now_ts, render.Palette.plain()).items()}
    assert cells["race"].split("\n")[:2] == ["fast".ljust(layout.race), "first_wins".ljust(layout.race)]
    assert cells["ttft"].split("\n")[0].strip() == "251ms"
    assert cells["participant"].split("\n")[1].startswith("★ steady/steady-2")
    assert "rate_limited" in cells["result"].split("\n")[0]
    assert "cancelled" in cells["result"].split("\n")[2]


def test_not_started_attempts_have_no_bar() -> None:
    m = DashboardModel()
    m.apply(finished())
    m.races["r-1"].attempts[2].status = NOT_STARTED
    line = plain(timeline.timeline(m.races["r-1"], 20, m.now_ts, render.Palette.plain())).split("\n")[2]
    assert line == " " * 20


def test_layouts_fill_the_table_and_keep_a_readable_timeline() -> None:
    for width in (60, 78, 96, 118, 160, 200):
        layout = timeline.RaceLayout.for_width(width, longest_label=18)
        used = sum(layout.widths().values()) + 11
        assert used <= max(width, 70)
        assert layout.timeline >= 10
    assert timeline.RaceLayout.for_width(200, longest_label=60).participant == 32


def test_small_formatters() -> None:
    assert [render.ms(v) for v in (None, 3.4, 842.0, 1234.0, 45_000.0)] == ["–", "3ms", "842ms", "1.2s", "45s"]
    assert render.fit("steady/steady-2", 10) == "steady/st…"
    assert render.fit("ok", 4) == "ok  "
    assert render.sparkline([100, 300, 500], 5, 0.0, 500.0) == "  ▂▅█"
    assert render.sparkline([], 3, float("inf"), 0.0) == "   "


def test_log_lines_read_time_race_model_and_what_happened() -> None:
    m = DashboardModel()
    for e in one_race():
        m.apply(e)
    texts = [plain(render.log_line(e, render.Palette.plain())) for e in m.log]
    assert any("#1 " in t and "fast" in t and "★ steady/steady-2 wins" in t for t in texts)


def test_the_palette_follows_the_theme() -> None:
    palette = render.Palette.from_theme({"success": "#00ff00", "error": "#ff000080", "background": "#000000"})
    assert palette.success.color is not None and palette.success.color.triplet is not None
    assert palette.success.color.triplet.hex == "#00ff00"
    assert palette.error.color is not None and palette.error.color.triplet is not None
    assert palette.error.color.triplet.hex == "#800000"  # alpha blended onto the background
    ansi = render.Palette.from_theme({"success": "ansi_green", "warning": "auto 60%"})
    assert ansi.success.color is not None and ansi.success.color.number == 2  # the terminal's own green
    assert ansi.warning.color is None  # no fixed colour to give: the terminal's default


# ---------------------------------------------------------------- finding engines


def test_backoff_doubles_up_to_a_cap() -> None:
    assert [link.backoff_s(n) for n in range(0, 8)] == [0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


def test_sockets_of_dead_engines_are_skipped(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    paths = [tmp_path / f"raceway-{os.getpid()}.sock", tmp_path / f"raceway-{dead_pid}.sock", tmp_path / "raceway-x.sock"]
    assert link.live_sockets(paths) == [paths[0], paths[2]]
    assert link.pid_of(paths[0]) == os.getpid() and link.pid_of(paths[2]) is None
    assert link.pid_of(tmp_path / "other.sock") is None


def test_which_socket_to_attach_to() -> None:
    a, b = Path("/x/raceway-1.sock"), Path("/x/raceway-2.sock")
    assert link.choose([], None) is None
    assert link.choose([a], None) == a
    assert link.choose([a, b], None) is None  # ask the user
    assert link.choose([a, b], b) == b  # keep watching the same one
    assert link.choose([a], b) == a  # it restarted under a new pid


def test_the_line_limit_is_wires_and_holds_while_reading() -> None:
    assert not hasattr(link, "LINE_LIMIT")  # one limit, raceway.wire's
    assert link.LineSplitter().limit == wire.MAX_LINE_BYTES
    s = link.LineSplitter(limit=10)
    assert s.feed(b"abc\nde") == [b"abc"] and s.feed(b"f\n\n") == [b"def"]
    # a line that never ends: dropped once past the limit, nothing of it kept...
    assert s.feed(b"x" * 8) == [] and s.feed(b"y" * 8) == [] and s._size == 0
    assert s.feed(b"z" * 1000) == [] and s.too_long == 1
    # ...and the next line starts clean at its newline
    assert s.feed(b"zz\nok\n") == [b"ok"]
    assert s.feed(b"0123456789AB\nfine\n") == [b"fine"] and s.too_long == 2


# ---------------------------------------------------------------- issue 11 item 17


def test_a_benched_participant_is_cooling_down_not_unneeded() -> None:
    m = DashboardModel()
    race = finished()
    attempts = (
        *race.attempts[:2],
        record(2, "not_started", error="cooling down (rate limited), 1.0 s left", error_kind="cooldown"),
    )
    m.apply(started())
    m.apply(_with_attempts(race, attempts))
    view = m.races["r-1"]
    assert view.attempts[2].status == BENCHED
    cells = timeline.race_cells(view, timeline.RaceLayout.for_width(120, 18), m.now_ts, render.Palette.plain())
    assert cells["participant"].plain.split("\n")[2].startswith("◐ laggard/laggard-xl")
    assert cells["result"].plain.split("\n")[2].strip() == "cooling down"
    assert "sat out: cooling down" in m.log[-2].text
    # hedged's unneeded participant stays unneeded
    m.apply(_with_attempts(finished("r-2"), (*race.attempts[:2], record(2, "not_started"))))
    assert m.races["r-2"].attempts[2].status == NOT_STARTED


def _with_attempts(race: wire.RaceFinished, attempts: tuple[wire.AttemptRecord, ...]) -> wire.RaceFinished:
    import attrs

    return attrs.evolve(race, attempts=attempts)


def test_long_labels_keep_the_end_that_tells_them_apart() -> None:
    assert render.fit_label("steady/steady-2", 20) == "steady/steady-2".ljust(20)
    assert render.fit_label("mock-oai/gpt-4o-mini", 16) == "moc…/gpt-4o-mini"
    assert render.fit_label("mock-oai/gpt-4o-mini", 18) == "mock-…/gpt-4o-mini"
    assert render.fit_label("mock-oai/gpt-4o", 12) == "mock…/gpt-4o"
    assert render.fit_label("anthropic/claude-3-5-sonnet-20241022", 19) == "…-5-sonnet-20241022"
    assert render.fit_label("anthropic/claude-3-5-sonnet-20241022", 32) == "anth…/claude-3-5-sonnet-20241022"
    for label in ("mock-oai/gpt-4o-mini", "anthropic/claude-3-5-sonnet-20241022", "x/" + "y" * 40):
        for width in range(1, 30):
            fitted = render.fit_label(label, width)
            assert len(fitted) == width
            if len(label) > width:
                assert "…" in fitted
                assert width == 1 or fitted.endswith(label[-min(3, width - 1) :])
    many = ["mock-oai/gpt-4o", "mock-oai/gpt-4o-mini", "mock-oai/o3-mini"]
    assert len({render.fit_label(lb, 12) for lb in many}) == 3


def test_race_details_name_the_race_as_the_list_and_show_its_times() -> None:
    m = DashboardModel()
    for e in one_race():
        m.apply(e)
    race = m.races["r-1"]
    text = timeline.race_details(race, m.now_ts, render.Palette.plain()).plain
    assert text.startswith("#1  fast · first_wins · ok")
    assert "first token to caller 251ms · total Σ400ms" in text
    assert "★ steady/steady-2" in text and "250ms" in text and "rate_limited: HTTP 429" in text
    assert " – " not in text


def test_provider_cells_show_cost_and_waste_when_the_engine_prices() -> None:
    from dashboard.views import ProviderView
    from dashboard.widgets import provider_cells

    priced = ProviderView("a/m", stats={"races": 3, "wins": 1, "cost_usd": 0.01234, "wasted_cost_usd": 0.0081})
    cells = provider_cells(priced, 0.0)
    assert cells["cost"] == ("0.0123", "") and cells["waste"] == ("0.0081", "-bad")
    unpriced = provider_cells(ProviderView("b/m", stats={"races": 3}), 0.0)
    assert unpriced["cost"] == ("–", "-muted")
