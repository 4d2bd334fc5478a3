"""A stand-in engine: a scripted stream of wire messages served on a Unix socket.

For the dashboard's tests and benchmark, and for trying the dashboard without
an engine::

    python -m dashboard.fake_engine                      # ~6 races/s, as `raceway demo` does
    python -m dashboard.fake_engine --events-per-s 1000  # a busy service
    raceway-dashboard                                    # finds it like a real engine

The races are made up but keep the engine's rules (``raceway._events``):
every race emits ``race_started``, per attempt ``attempt_started`` then how it
ended, ``race_decided`` and last ``race_finished`` with every attempt's record;
periodic ``stats`` carry per-provider figures shaped like the tracker's. The
providers and virtual models mirror raceway's embedded default (swift is fast
and flaky, steady steady, laggard slow with a heavy tail; one virtual model
per strategy). Everything is drawn from a seeded generator, so a script is the
same on every run: tests replay it and compare screens.

Two servers, both speaking only :mod:`raceway.wire`:

- :class:`ScriptedEngine` sends every client the same fixed list of lines
  (all at once, or paced), then keeps the connection open — a recorded session.
- :class:`LiveEngine` makes races in real time and broadcasts them like the
  engine's monitor: ``hello``, a ``snapshot`` of stats and recent races, then
  live events, with a bounded queue per client that overflows into
  ``{"type": "dropped"}``.

Both run on an asyncio loop, either the caller's (``await serve()``) or their
own thread's (:meth:`start` / :meth:`stop`), so a test can run one beside a
Textual app whatever loop the app uses.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import heapq
import math
import os
import random
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from raceway import wire

#: A script's clock starts here unless told otherwise (2023-11-14 22:13:20 UTC).
SCRIPT_EPOCH = 1_700_000_000.0
RACE_TIMEOUT_MS = 5000.0
GRACE_MS = {"first_wins": 250.0, "weighted": 150.0, "quality": 300.0, "hedged": 0.0}
HEDGE_DELAY_MS = 300.0
#: A rate limit's retry-after (the provider then cools down this long).
RETRY_AFTER_S = 2.0
#: Mean events per race, to turn an events/s target into races/s.
EVENTS_PER_RACE = 8.5


@dataclass(frozen=True)
class Profile:
    """A simulated provider, like a ``sim`` entry of raceway's default config."""

    provider: str
    model: str
    ttft_ms: float
    sigma: float
    tokens_per_s: float
    failure_rate: float
    hang_rate: float
    chars: int
    failure_kind: str = "upstream_http"
    weight: float = 1.0

    @property
    def label(self) -> str:
        return f"{self.provider}/{self.model}"


SWIFT = Profile("swift", "swift-1", 120, 0.35, 90, 0.15, 0.02, 49, "rate_limited", 1.0)
STEADY = Profile("steady", "steady-2", 260, 0.12, 60, 0.01, 0.0, 56, "upstream_http", 1.5)
LAGGARD = Profile("laggard", "laggard-xl", 420, 0.8, 40, 0.03, 0.01, 64, "connection", 0.8)

#: (virtual model, strategy, participants in attempt order) as in the default config.
VIRTUAL_MODELS: tuple[tuple[str, str, tuple[Profile, ...]], ...] = (
    ("fast", "first_wins", (SWIFT, STEADY, LAGGARD)),
    ("balanced", "weighted", (SWIFT, STEADY, LAGGARD)),
    ("best", "quality", (STEADY, LAGGARD, SWIFT)),
    ("hedged", "hedged", (STEADY, SWIFT, LAGGARD)),
)
ERRORS = {
    "rate_limited": "simulated rate limit: HTTP 429",
    "upstream_http": "simulated upstream error: HTTP 503",
    "connection": "simulated connection reset",
}


@dataclass
class _Draw:
    """One attempt's fate, drawn before the race runs."""

    profile: Profile
    ttft: float | None  # None: it fails or hangs
    fail_at: float | None
    stream: float  # ms from first token to the end of its answer


@dataclass
class _Stats:
    """A small tracker: per-provider figures shaped like ``ProviderStats``."""

    races: int = 0
    wins: int = 0
    losses: int = 0
    cancellations: int = 0
    answered: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    ttft: deque[float] = field(default_factory=lambda: deque(maxlen=200))
    last_seen: float | None = None
    cooldown_until: float | None = None

    def record(self, r: wire.AttemptRecord, ts: float) -> None:
        if r.status == "not_started":
            return
        self.races += 1
        self.last_seen = ts
        if r.ttft_ms is not None:
            self.answered += 1
            self.ttft.append(r.ttft_ms)
            if self.cooldown_until is not None and ts >= self.cooldown_until:
                self.cooldown_until = None  # its trial race answered
        if r.status == "won":
            self.wins += 1
        elif r.status == "failed":
            kind = r.error_kind or "error"
            self.failures[kind] = self.failures.get(kind, 0) + 1
            if r.retry_after:
                self.cooldown_until = ts + r.retry_after
        else:
            self.losses += 1
            if r.status == "cancelled":
                self.cancellations += 1

    def as_dict(self) -> dict[str, Any]:
        ordered = sorted(self.ttft)

        def q(p: float) -> float | None:
            return ordered[max(0, math.ceil(p * len(ordered)) - 1)] if ordered else None

        mean = sum(ordered) / len(ordered) if ordered else None
        reliability = (self.answered + 1) / (self.races + 2)
        win_rate = (self.wins + 1) / (self.races + 2)
        speed = 0.5 if mean is None else 0.5 / (0.5 + mean / 1000)
        return {
            "races": self.races,
            "wins": self.wins,
            "losses": self.losses,
            "cancellations": self.cancellations,
            "failures": dict(self.failures),
            "ttft_p50_ms": q(0.5),
            "ttft_p95_ms": q(0.95),
            "ttft_mean_ms": mean,
            "score": round(0.35 * reliability + 0.25 * win_rate + 0.40 * speed, 4),
            "last_seen": self.last_seen,
            "cooldown_until": self.cooldown_until,
        }


class RaceMaker:
    """Makes races' events, in time order, from a seeded generator.

    Args:
        seed: the generator's seed (same seed, same races).
        start_ts: the engine clock of the first race's start.
        races_per_s: how often races start (on average; exponential gaps).
        stats_every_s: how often a ``stats`` message goes out.
        prefix: the race ids' prefix (an engine picks a random one).
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        start_ts: float = SCRIPT_EPOCH,
        races_per_s: float = 6.0,
        stats_every_s: float = 1.0,
        prefix: str = "f4ce00",
    ) -> None:
        self.rng = random.Random(seed)
        self.start_ts = start_ts
        self.races_per_s = races_per_s
        self.stats_every_s = stats_every_s
        self.prefix = prefix
        self.stats: dict[str, _Stats] = {
            p.label: _Stats() for _, _, ps in VIRTUAL_MODELS for p in ps
        }
        self.races_made = 0

    # -------------------------------------------------------------- the stream

    def messages(self, races: int | None = None) -> Iterator[Any]:
        """Every message in time order; ``races=None`` goes on forever.

        A finite stream ends with one last ``stats`` after the last race finished.
        """
        heap: list[tuple[float, int, Any]] = []
        order = 0
        next_race = self.start_ts
        next_stats = self.start_ts + self.stats_every_s
        while True:
            more_races = races is None or self.races_made < races
            t_heap = heap[0][0] if heap else math.inf
            t_race = next_race if more_races else math.inf
            t_stats = next_stats if (more_races or heap) else math.inf
            t = min(t_heap, t_race, t_stats)
            if t == math.inf:
                yield self.stats_message(self._last_ts(next_stats))
                return
            if t == t_heap:
                _, _, message = heapq.heappop(heap)
                if isinstance(message, wire.RaceFinished):
                    for r in message.attempts:
                        self.stats[r.label].record(r, message.ts)
                yield message
            elif t == t_race:
                for ts, message in self.race(self.races_made + 1, next_race):
                    order += 1
                    heapq.heappush(heap, (ts, order, message))
                self.races_made += 1
                next_race += self.rng.expovariate(self.races_per_s)
            else:
                yield self.stats_message(next_stats)
                next_stats += self.stats_every_s

    def _last_ts(self, next_stats: float) -> float:
        return next_stats - self.stats_every_s + 0.001

    def stats_message(self, ts: float) -> wire.StatsSnapshot:
        return wire.StatsSnapshot(
            ts=ts, providers={label: s.as_dict() for label, s in self.stats.items()}
        )

    def hello(self, ts: float, pid: int = 4242) -> wire.Hello:
        return wire.Hello(
            ts=ts,
            engine_version="0.1.0",
            pid=pid,
            virtual_models=tuple(
                wire.VirtualModelInfo(
                    id=vm, strategy=strategy, providers=tuple(p.label for p in ps)
                )
                for vm, strategy, ps in VIRTUAL_MODELS
            ),
        )

    # -------------------------------------------------------------- one race

    def race(self, n: int, t0: float) -> list[tuple[float, Any]]:
        """The events of race number ``n`` starting at ``t0``, each with its ts."""
        vm, strategy, profiles = VIRTUAL_MODELS[(n - 1) % len(VIRTUAL_MODELS)]
        race_id = f"{self.prefix}-{n}"
        draws = [self._draw(p) for p in profiles]
        out: list[tuple[float, Any]] = []

        def at(ms: float) -> float:
            return t0 + ms / 1000.0

        out.append(
            (
                t0,
                wire.RaceStarted(
                    race_id=race_id,
                    ts=t0,
                    virtual_model=vm,
                    strategy=strategy,
                    participants=tuple((p.provider, p.model) for p in profiles),
                ),
            )
        )
        starts = self._starts(strategy, draws)
        grace = GRACE_MS[strategy]
        # When each attempt would succeed (first token; quality: complete answer).
        ready: dict[int, float] = {}
        for i, d in enumerate(draws):
            if i in starts and d.ttft is not None:
                ready[i] = starts[i] + d.ttft + (d.stream if strategy == "quality" else 0.0)
        decided_at, winner = self._decide(strategy, draws, starts, ready, grace)
        any_hung = any(
            i in starts and d.ttft is None and d.fail_at is None for i, d in enumerate(draws)
        )
        end_of_race: float
        if winner is None:
            if any_hung:
                end_of_race = RACE_TIMEOUT_MS
            else:
                end_of_race = (
                    max(starts[i] + (d.fail_at or 0.0) for i, d in enumerate(draws) if i in starts)
                    + 0.3
                )
            stop_at = end_of_race
        else:
            w = draws[winner]
            w_token = starts[winner] + (w.ttft or 0.0)
            end_of_race = max(decided_at, w_token + w.stream)
            stop_at = (
                decided_at if strategy != "first_wins" else min(decided_at + grace, end_of_race)
            )
        records: list[wire.AttemptRecord] = []
        for i, d in enumerate(draws):
            p = d.profile
            if i not in starts:
                records.append(
                    wire.AttemptRecord(
                        index=i, provider=p.provider, model=p.model, status="not_started"
                    )
                )
                continue
            s = starts[i]
            ids = (race_id, i, p.provider, p.model)
            out.append((at(s), _started(ids, at(s), s)))
            token = s + d.ttft if d.ttft is not None else None
            if i == winner:
                t = token if token is not None else s
                out.append((at(t), _first_token(ids, at(t), t, d.ttft or 0.0)))
                records.append(self._record(i, p, "won", s, d.ttft, end_of_race))
            elif d.fail_at is not None and s + d.fail_at < stop_at:
                f = s + d.fail_at
                retry = RETRY_AFTER_S if p.failure_kind == "rate_limited" else None
                error = ERRORS[p.failure_kind]
                out.append((at(f), _failed(ids, at(f), f, p.failure_kind, error, retry)))
                records.append(
                    wire.AttemptRecord(
                        index=i, provider=p.provider, model=p.model, status="failed", started_ms=s,
                        ended_ms=f, error=error, error_kind=p.failure_kind, retry_after=retry,
                    )
                )  # fmt: skip
            elif token is not None and token < stop_at:
                out.append((at(token), _first_token(ids, at(token), token, d.ttft or 0.0)))
                out.append((at(stop_at), _cancelled(ids, at(stop_at), stop_at, answered=True)))
                records.append(self._record(i, p, "lost", s, d.ttft, stop_at))
            else:
                out.append((at(stop_at), _cancelled(ids, at(stop_at), stop_at, answered=False)))
                records.append(
                    wire.AttemptRecord(
                        index=i, provider=p.provider, model=p.model, status="cancelled",
                        started_ms=s, ended_ms=stop_at,
                    )
                )  # fmt: skip
        if winner is not None:
            w = draws[winner]
            out.append(
                (
                    at(decided_at),
                    wire.RaceDecided(
                        race_id=race_id,
                        ts=at(decided_at),
                        elapsed_ms=decided_at,
                        index=winner,
                        provider=w.profile.provider,
                        model=w.profile.model,
                        ttft_ms=decided_at,
                    ),
                )
            )
        outcome = "ok" if winner is not None else ("timeout" if any_hung else "failed")
        out.append(
            (
                at(end_of_race),
                wire.RaceFinished(
                    race_id=race_id,
                    ts=at(end_of_race),
                    elapsed_ms=end_of_race,
                    virtual_model=vm,
                    strategy=strategy,
                    outcome=outcome,
                    attempts=tuple(records),
                    winner=winner,
                    ttft_ms=decided_at if winner is not None else None,
                    total_ms=end_of_race if winner is not None else None,
                    error=None if winner is not None else f"no provider answered ({outcome})",
                ),
            )
        )
        out.sort(key=lambda pair: pair[0])  # stable: same-time events keep their order
        return out

    def _draw(self, p: Profile) -> _Draw:
        rng = self.rng
        ttft = p.ttft_ms * math.exp(p.sigma * rng.gauss(0.0, 1.0))
        stream = p.chars / 4 / p.tokens_per_s * 1000.0
        roll = rng.random()
        if roll < p.failure_rate:
            return _Draw(p, None, ttft * rng.uniform(0.2, 0.9), stream)
        if roll < p.failure_rate + p.hang_rate:
            return _Draw(p, None, None, stream)
        return _Draw(p, ttft, None, stream)

    def _starts(self, strategy: str, draws: list[_Draw]) -> dict[int, float]:
        if strategy != "hedged":
            return {i: 0.2 for i in range(len(draws))}
        # One at a time: the next starts when the hedge delay passes without a
        # token, or at once when an attempt fails; none starts after a success.
        starts: dict[int, float] = {}
        t, first_success = 0.1, math.inf
        for i, d in enumerate(draws):
            if t >= first_success:
                break
            starts[i] = t
            if d.ttft is not None:
                first_success = min(first_success, t + d.ttft)
            t += min(HEDGE_DELAY_MS, d.fail_at) if d.fail_at is not None else HEDGE_DELAY_MS
        return starts

    def _decide(
        self,
        strategy: str,
        draws: list[_Draw],
        starts: dict[int, float],
        ready: dict[int, float],
        grace: float,
    ) -> tuple[float, int | None]:
        in_time = {i: t for i, t in ready.items() if t < RACE_TIMEOUT_MS}
        if not in_time:
            return RACE_TIMEOUT_MS, None
        first = min(in_time, key=lambda i: in_time[i])
        if strategy in ("first_wins", "hedged"):
            return in_time[first] + 0.3, first
        window_end = in_time[first] + grace
        candidates = [i for i, t in in_time.items() if t <= window_end]
        decided = (
            window_end if len(candidates) < len(starts) else max(in_time[i] for i in candidates)
        )
        if strategy == "weighted":
            best = max(
                candidates,
                key=lambda i: draws[i].profile.weight / (0.5 + (draws[i].ttft or 0) / 1000),
            )
        else:  # quality: the longest complete answer
            best = max(candidates, key=lambda i: draws[i].profile.chars)
        return decided, best

    @staticmethod
    def _record(
        i: int, p: Profile, status: Any, s: float, ttft: float | None, end: float
    ) -> wire.AttemptRecord:
        return wire.AttemptRecord(
            index=i, provider=p.provider, model=p.model, status=status, started_ms=s,
            ttft_ms=ttft, ended_ms=end, output_chars=p.chars if status == "won" else p.chars // 3,
        )  # fmt: skip


_Ids = tuple[str, int, str, str]  # race_id, index, provider, model


def _started(ids: _Ids, ts: float, t: float) -> wire.AttemptStarted:
    race_id, index, provider, model = ids
    return wire.AttemptStarted(
        race_id=race_id, ts=ts, elapsed_ms=t, index=index, provider=provider, model=model
    )


def _first_token(ids: _Ids, ts: float, t: float, ttft: float) -> wire.AttemptFirstToken:
    race_id, index, provider, model = ids
    return wire.AttemptFirstToken(
        race_id=race_id, ts=ts, elapsed_ms=t, index=index, provider=provider, model=model,
        ttft_ms=ttft,
    )  # fmt: skip


def _failed(
    ids: _Ids, ts: float, t: float, kind: str, error: str, retry: float | None
) -> wire.AttemptFailed:
    race_id, index, provider, model = ids
    return wire.AttemptFailed(
        race_id=race_id, ts=ts, elapsed_ms=t, index=index, provider=provider, model=model,
        error_kind=kind, error=error, retry_after=retry,
    )  # fmt: skip


def _cancelled(ids: _Ids, ts: float, t: float, *, answered: bool) -> wire.AttemptCancelled:
    race_id, index, provider, model = ids
    return wire.AttemptCancelled(
        race_id=race_id, ts=ts, elapsed_ms=t, index=index, provider=provider, model=model,
        answered=answered,
    )  # fmt: skip


# ------------------------------------------------------------------ scripts


@dataclass
class Script:
    """A recorded session: what a client reads, line by line."""

    hello: wire.Hello
    snapshot: wire.Snapshot
    live: list[Any]

    def lines(self) -> list[bytes]:
        return [
            wire.encode(self.hello),
            wire.encode(self.snapshot),
            *(wire.encode(m) for m in self.live),
        ]

    @property
    def end_ts(self) -> float:
        return max((m.ts for m in self.live), default=self.snapshot.ts)


def make_script(
    races: int = 40, *, history: int = 12, seed: int = 7, start_ts: float = SCRIPT_EPOCH
) -> Script:
    """A session that joins a running engine: ``history`` races already done (in the
    snapshot), then the live events of the rest. Same arguments, same script."""
    maker = RaceMaker(seed=seed, start_ts=start_ts)
    done: list[wire.RaceFinished] = []
    live: list[Any] = []
    joined_at: float | None = None
    history_ids = {f"{maker.prefix}-{n}" for n in range(1, history + 1)}
    for message in maker.messages(races):
        race_id = getattr(message, "race_id", None)
        if race_id in history_ids:
            if isinstance(message, wire.RaceFinished):
                done.append(message)
                if len(done) == history:
                    joined_at = message.ts
            continue
        if joined_at is None:
            continue  # before the client connected: only the snapshot tells of it
        live.append(message)
    if joined_at is None:
        joined_at = start_ts
    snapshot_stats = _replay_stats(done)
    return Script(
        hello=maker.hello(joined_at),
        snapshot=wire.Snapshot(ts=joined_at, stats=snapshot_stats, races=tuple(done)),
        live=live,
    )


def _replay_stats(finished: Sequence[wire.RaceFinished]) -> dict[str, dict[str, Any]]:
    stats: dict[str, _Stats] = {}
    for race in finished:
        for r in race.attempts:
            stats.setdefault(r.label, _Stats()).record(r, race.ts)
    return {label: s.as_dict() for label, s in stats.items()}


# ------------------------------------------------------------------ servers


class _Server:
    """A Unix-socket server on its own loop (thread) or the caller's."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.clients_served = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def open(self) -> None:
        """Start listening on :attr:`path` (in the running loop)."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._server = await asyncio.start_unix_server(self._serve_client, path=str(self.path))
        os.chmod(self.path, 0o600)

    async def close(self, *, unlink: bool = True) -> None:
        """Stop listening and hang up on every client (as a dying engine would)."""
        if self._server is not None:
            self._server.close()
        for w in list(self._writers):
            w.close()
        for t in list(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            self._server = None
        if unlink:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    async def _serve_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        self.clients_served += 1
        # Like the engine, read and ignore what the client sends; its end is our cue to hang up.
        session = asyncio.ensure_future(self.session(writer))
        hangup = asyncio.ensure_future(_read_until_eof(reader))
        try:
            await asyncio.wait({session, hangup}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            pass
        finally:
            for t in (session, hangup):
                t.cancel()
            await asyncio.gather(session, hangup, return_exceptions=True)
            self._writers.discard(writer)
            self._tasks.discard(task)
            writer.close()

    async def session(self, writer: asyncio.StreamWriter) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def connected(self) -> int:
        """Clients connected now."""
        return len(self._writers)

    # -------------------------------------------------------------- in a thread

    def start(self) -> None:
        """Serve from a thread of its own (returns once listening)."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self.open())
            except BaseException as exc:  # surface to start()
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(
            target=run, name=f"fake-engine {self.path.name}", daemon=True
        )
        self._thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]

    def stop(self, *, unlink: bool = True) -> None:
        """Stop the thread's server, hanging up on clients."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(self.close(unlink=unlink), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        self._loop = self._thread = None

    def __enter__(self) -> _Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def _read_until_eof(reader: asyncio.StreamReader) -> None:
    with contextlib.suppress(ConnectionError):
        while await reader.read(4096):
            pass


class ScriptedEngine(_Server):
    """Sends each client the same lines, then holds the line open until stopped.

    Args:
        path: where to listen.
        lines: what to send (``Script.lines()``).
        rate: lines per second after the first two (hello, snapshot); ``None``: all at once.
    """

    def __init__(
        self, path: Path | str, lines: Sequence[bytes], *, rate: float | None = None
    ) -> None:
        super().__init__(path)
        self.lines = list(lines)
        self.rate = rate

    async def session(self, writer: asyncio.StreamWriter) -> None:
        if self.rate is None:
            writer.write(b"".join(self.lines))
            await writer.drain()
        else:
            writer.write(b"".join(self.lines[:2]))
            started = time.monotonic()
            sent = 2
            while sent < len(self.lines):
                due = 2 + int((time.monotonic() - started) * self.rate)
                if due > sent:
                    writer.write(b"".join(self.lines[sent:due]))
                    sent = due
                    await writer.drain()
                await asyncio.sleep(0.005)
        await asyncio.Event().wait()  # an engine keeps its clients until it stops

    def push(self, lines: Sequence[bytes]) -> None:
        """Send more lines to every client connected now (from any thread)."""
        data = b"".join(lines)

        async def send() -> None:
            for w in list(self._writers):
                w.write(data)
                with contextlib.suppress(ConnectionError):
                    await w.drain()

        if self._loop is not None:
            asyncio.run_coroutine_threadsafe(send(), self._loop).result(10)


class LiveEngine(_Server):
    """Makes races in real time and broadcasts them as the engine's monitor does.

    Args:
        path: where to listen.
        races_per_s: how busy the fake service is (``EVENTS_PER_RACE`` events each).
        seed: the generator's seed.
        queue_limit: lines a client may fall behind before it is sent ``dropped``.
        pid: the pid told in ``hello``.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        races_per_s: float = 6.0,
        seed: int = 1,
        queue_limit: int = 10_000,
        pid: int | None = None,
    ) -> None:
        super().__init__(path)
        self.maker = RaceMaker(seed=seed, start_ts=time.time(), races_per_s=races_per_s)
        self.queue_limit = queue_limit
        self.pid = os.getpid() if pid is None else pid
        self.sent = 0  # events broadcast
        self.recent: deque[wire.RaceFinished] = deque(maxlen=50)
        self._queues: set[asyncio.Queue[bytes | None]] = set()
        self._dropped: dict[asyncio.Queue[bytes | None], int] = {}
        self._producer: asyncio.Task[None] | None = None

    async def open(self) -> None:
        await super().open()
        self._producer = asyncio.create_task(self._produce())

    async def close(self, *, unlink: bool = True) -> None:
        if self._producer is not None:
            self._producer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._producer
            self._producer = None
        await super().close(unlink=unlink)

    async def _produce(self) -> None:
        stream = self.maker.messages()
        pending = next(stream)
        while True:
            now = time.time()
            batch: list[bytes] = []
            while pending.ts <= now:
                if isinstance(pending, wire.RaceFinished):
                    self.recent.append(pending)
                batch.append(wire.encode(pending))
                pending = next(stream)
            if batch:
                self.sent += len(batch)
                for q in list(self._queues):
                    for line in batch:
                        self._offer(q, line)
            await asyncio.sleep(min(0.01, max(0.0, pending.ts - time.time())))

    def _offer(self, q: asyncio.Queue[bytes | None], line: bytes) -> None:
        if q.qsize() >= self.queue_limit:
            self._dropped[q] = self._dropped.get(q, 0) + 1
            return
        skipped = self._dropped.pop(q, 0)
        if skipped:
            q.put_nowait(wire.encode(wire.Dropped(ts=time.time(), count=skipped)))
        q.put_nowait(line)

    async def session(self, writer: asyncio.StreamWriter) -> None:
        q: asyncio.Queue[bytes | None] = asyncio.Queue()
        now = time.time()
        writer.write(wire.encode(self.maker.hello(now, pid=self.pid)))
        writer.write(
            wire.encode(
                wire.Snapshot(
                    ts=now,
                    stats={label: s.as_dict() for label, s in self.maker.stats.items() if s.races},
                    races=tuple(self.recent),
                )
            )
        )
        self._queues.add(q)
        try:
            while True:
                line = await q.get()
                chunk = [line] if line is not None else []
                while not q.empty() and len(chunk) < 512:
                    item = q.get_nowait()
                    if item is not None:
                        chunk.append(item)
                writer.write(b"".join(x for x in chunk if x is not None))
                await writer.drain()
        finally:
            self._queues.discard(q)
            self._dropped.pop(q, None)


# ------------------------------------------------------------------ command line


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m dashboard.fake_engine",
        description="Serve made-up races on a monitor socket, for trying raceway's dashboard.",
    )
    p.add_argument(
        "--socket", help="where to listen (default: the per-user monitor dir, raceway-<pid>.sock)"
    )
    rate = p.add_mutually_exclusive_group()
    rate.add_argument(
        "--races-per-s", type=float, default=6.0, help="races started per second (default 6)"
    )
    rate.add_argument(
        "--events-per-s", type=float, help=f"events per second (about {EVENTS_PER_RACE} per race)"
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--seconds",
        type=float,
        default=0.0,
        help="stop after this long (default: until interrupted)",
    )
    args = p.parse_args(argv)
    path = (
        Path(args.socket)
        if args.socket
        else wire.default_monitor_dir() / f"raceway-{os.getpid()}.sock"
    )
    races_per_s = args.events_per_s / EVENTS_PER_RACE if args.events_per_s else args.races_per_s
    engine = LiveEngine(path, races_per_s=races_per_s, seed=args.seed)

    async def run() -> None:
        await engine.open()
        print(f"fake engine: {races_per_s:.1f} races/s on {path} (ctrl-c stops)", flush=True)
        try:
            if args.seconds:
                await asyncio.sleep(args.seconds)
            else:
                await asyncio.Event().wait()
        finally:
            await engine.close()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
    print(
        f"fake engine: sent {engine.sent:,} events to {engine.clients_served} clients",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
