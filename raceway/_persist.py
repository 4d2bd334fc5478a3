"""``performance_file``: the tracker's knowledge, kept across runs and shared between processes.

Where
-----

``performance_file`` in the config is a path, ``off``, or empty for the
per-user default :func:`default_performance_path`:
``$XDG_STATE_HOME/raceway/performance.json``, else
``~/.local/state/raceway/performance.json`` (both follow the environment, so
tests point them at a temporary directory).

When
----

The engine loads the file when it opens, saves every
``performance_save_interval_s`` seconds (a setting, 30 by default; a task in
the engine's nursery, the file work in a worker thread) and once more when it
closes. A save with nothing new does not touch the file.

How
---

A save never overwrites another process's work. Under an exclusive
``flock`` on a sidecar ``<file>.lock`` it reads the file as it is *now*,
adds this process's counter deltas since its last save (counters are
additive), replays its recent observations on top of the samples and score
estimates it finds there, and writes the result atomically: a temporary file
in the same directory, ``fsync``, ``os.replace``, ``fsync`` of the
directory. Readers never see half a file; two engines sharing one file lose
neither's counts. A process killed in the middle of a save leaves its
temporary file behind: the next engine to open the file removes such
leftovers (under the lock, so no live save's file is touched). (Each engine keeps its own in-memory view between saves:
it learns of the other's races when it next opens the file.)

A file that cannot be parsed is set aside as ``<file>.corrupt-<timestamp>``
with a one-line warning, and the engine starts fresh; one from a newer
raceway (a higher schema ``version``) is left alone, unused and unsaved.

Format (JSON, schema version 1)::

    {"format": "raceway-performance", "version": 1, "saved_at": <epoch s>,
     "providers": {"<provider>/<model>": {
         "provider": ..., "model": ...,
         "races", "wins", "losses", "cancellations", "answered",
         "output_chars", "input_tokens", "output_tokens": <counts>,
         "cost_nusd", "wasted_nusd": <cost and losers' cost, nano-USD>,
         "failures": {"<kind>": <count>},
         "ttft_ms": [recent...], "latency_ms": [recent...],
         "ttft_mean_ms", "latency_mean_ms": <decaying means or null>,
         "estimates": {"reliability", "win_rate", "speed", "n_reliability",
                       "n_win_rate", "n_speed", "updated"},
         "last_seen": <epoch s or null>}}}
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import json
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import trio

from ._config import DEFAULT_SAVE_INTERVAL_S
from ._text import one_line
from ._tracker import Change, ProviderStats, Record, Tracker, merge_records

log = logging.getLogger("raceway")

FORMAT = "raceway-performance"
SCHEMA_VERSION = 1
#: How long a save waits for another process's lock before trying again later.
LOCK_TIMEOUT_S = 10.0
_LOCK_POLL_S = 0.01


def default_performance_path() -> Path:
    """The per-user default: ``$XDG_STATE_HOME/raceway/performance.json``, else under ``~/.local/state``."""
    state = os.environ.get("XDG_STATE_HOME")
    base = Path(state) if state and os.path.isabs(state) else Path.home() / ".local" / "state"
    return base / "raceway" / "performance.json"


def performance_path(setting: str) -> Path | None:
    """The file a ``performance_file`` setting means: ``None`` for ``off``, the default for empty."""
    setting = setting.strip()
    if setting.lower() == "off":
        return None
    if not setting:
        return default_performance_path()
    return Path(setting).expanduser()


class UnreadableFile(Exception):
    """The file exists but is not a performance file this raceway can use."""


class NewerSchema(UnreadableFile):
    """The file was written by a newer raceway (a higher schema version)."""


# ------------------------------------------------------------ the file


def read_file(path: Path) -> dict[str, Record]:
    """The records in ``path``; empty when it does not exist.

    Raises:
        UnreadableFile: not JSON, not this format, or invalid values
            (:class:`NewerSchema` for a newer schema version).
        OSError: it could not be read at all.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    try:
        doc = json.loads(raw)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise UnreadableFile(f"not JSON: {one_line(exc)}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise UnreadableFile("not a raceway performance file")
    version = doc.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise UnreadableFile(f"invalid schema version {version!r}")
    if version > SCHEMA_VERSION:
        raise NewerSchema(f"schema version {version} is newer than this raceway's ({SCHEMA_VERSION})")
    providers = doc.get("providers")
    if not isinstance(providers, dict):
        raise UnreadableFile("'providers' must be an object")
    records: dict[str, Record] = {}
    for label, body in providers.items():
        try:
            records[str(label)] = Record.from_json(body)
        except ValueError as exc:
            raise UnreadableFile(f"{label}: {exc}") from None
    return records


def write_file(path: Path, records: dict[str, Record]) -> None:
    """Write ``records`` to ``path`` atomically (temporary file, fsync, rename, fsync dir)."""
    doc = {
        "format": FORMAT,
        "version": SCHEMA_VERSION,
        "saved_at": time.time(),
        "providers": {label: r.to_json() for label, r in sorted(records.items())},
    }
    text = json.dumps(doc, indent=1, allow_nan=False)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=_TMP_SUFFIX)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


_TMP_SUFFIX = ".tmp"


def remove_leftovers(path: Path) -> list[Path]:
    """Remove the temporary files that killed saves left beside ``path``; the ones removed.

    Call it holding ``path``'s lock: every save writes its temporary file under
    that lock, so any such file found then belongs to a save that died.
    """
    removed = []
    pattern = f".{glob.escape(path.name)}.*{_TMP_SUFFIX}"
    for leftover in path.parent.glob(pattern):
        try:
            leftover.unlink()
        except OSError:
            continue
        removed.append(leftover)
    return removed


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems cannot fsync a directory; the rename is still atomic
    finally:
        os.close(fd)


@contextlib.contextmanager
def locked(path: Path, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold the exclusive lock of ``path`` (``flock`` on ``<path>.lock``; blocking: run in a thread).

    Raises:
        TimeoutError: another process held it for ``timeout`` seconds.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{path}: another process holds its lock") from None
                time.sleep(_LOCK_POLL_S)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def set_aside(path: Path, reason: str) -> Path | None:
    """Rename an unreadable ``path`` to ``<path>.corrupt-<timestamp>`` and warn in one line."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    try:
        os.replace(path, aside)
    except OSError as exc:
        log.warning(
            "raceway: performance file %s is unreadable (%s) and could not be moved aside (%s); starting fresh",
            path, reason, exc.strerror or exc,
        )
        return None
    log.warning("raceway: performance file %s is unreadable (%s); moved it to %s and starting fresh", path, reason, aside.name)
    return aside


def load(path: Path) -> tuple[dict[str, Record], bool]:
    """Read ``path`` for an engine that starts (blocking): its records, and whether to save to it."""
    try:
        with locked(path):
            remove_leftovers(path)
            try:
                return read_file(path), True
            except NewerSchema as exc:
                log.warning("raceway: performance file %s is left alone: %s", path, exc)
                return {}, False
            except UnreadableFile as exc:
                set_aside(path, str(exc))
                return {}, True
    except (OSError, TimeoutError) as exc:
        log.warning("raceway: cannot read performance file %s (%s); not keeping statistics there", path, one_line(exc))
        return {}, False


def save(path: Path, changes: dict[str, Change]) -> None:
    """Merge ``changes`` into ``path`` under its lock (blocking).

    Raises:
        OSError, TimeoutError: it could not be written (the caller tries again later).
        NewerSchema: a newer raceway took the file over meanwhile.
    """
    with locked(path):
        try:
            current = read_file(path)
        except NewerSchema:
            raise
        except UnreadableFile as exc:
            set_aside(path, str(exc))
            current = {}
        write_file(path, merge_records(current, changes))


# ------------------------------------------------------------ the engine's task


class PerformanceFile:
    """Keeps one tracker and one file in step (used by :func:`keep_performance_file`)."""

    def __init__(self, tracker: Tracker, path: Path) -> None:
        self.tracker = tracker
        self.path = path
        self.enabled = True
        self._last_error: str | None = None

    async def load(self) -> None:
        records, self.enabled = await trio.to_thread.run_sync(load, self.path)
        self.tracker.load(records)

    async def save(self) -> bool:
        """Save what is new; ``True`` when the file is up to date afterwards."""
        if not self.enabled:
            return False
        changes = self.tracker.changes()
        if not changes:
            return True
        try:
            await trio.to_thread.run_sync(save, self.path, changes)
        except NewerSchema as exc:
            log.warning("raceway: performance file %s is left alone from now on: %s", self.path, exc)
            self.enabled = False
            return False
        except (OSError, TimeoutError) as exc:
            message = one_line(exc)
            if message != self._last_error:  # once per distinct problem, not every 30 s
                log.warning("raceway: could not save performance file %s (%s); will retry", self.path, message)
            self._last_error = message
            return False
        self._last_error = None
        self.tracker.commit(changes)
        return True


async def keep_performance_file(
    tracker: Tracker,
    path: Path,
    *,
    interval: float = DEFAULT_SAVE_INTERVAL_S,
    task_status: trio.TaskStatus[Path] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Load ``path`` into ``tracker``, then save every ``interval`` seconds and on cancellation.

    ``interval`` is the config's ``performance_save_interval_s``.
    """
    keeper = PerformanceFile(tracker, path)
    await keeper.load()
    task_status.started(path)
    try:
        while True:
            await trio.sleep(interval)
            await keeper.save()
    finally:
        with trio.CancelScope(shield=True):
            await keeper.save()


# ------------------------------------------------------------ reading for people


def stats_from_file(path: Path) -> dict[str, ProviderStats]:
    """The statistics ``path`` holds, as :meth:`Engine.stats` would show them (no lock, no repair)."""
    tracker = Tracker()
    tracker.load(read_file(path))
    return tracker.snapshot()


def stats_table(stats: dict[str, ProviderStats], now: float | None = None) -> str:
    """A plain-text table of statistics, one ``provider/model`` a line, best score first."""
    now = time.time() if now is None else now
    header = (
        f"{'provider/model':30} {'races':>6} {'wins':>5} {'lost':>5} {'failed':>6} "
        f"{'ttft p50':>9} {'ttft p95':>9} {'mean':>8} {'score':>6}  last seen"
    )
    lines = [header]
    for label, s in sorted(stats.items(), key=lambda kv: (-kv[1].score, kv[0])):
        lines.append(
            f"{label:30} {s.races:>6} {s.wins:>5} {s.losses:>5} {s.failure_count:>6} "
            f"{_ms(s.ttft_p50_ms):>9} {_ms(s.ttft_p95_ms):>9} {_ms(s.ttft_mean_ms):>8} {s.score:>6.2f}  "
            f"{_ago(s.last_seen, now)}"
        )
        if s.failures:
            kinds = ", ".join(f"{k} {n}" for k, n in sorted(s.failures.items()))
            lines.append(f"{'':30}   failures: {kinds}")
        if s.cost_usd:
            lines.append(f"{'':30}   cost: ${s.cost_usd:.6f}, wasted by losing: ${s.wasted_cost_usd:.6f}")
    return "\n".join(lines)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def _ago(ts: float | None, now: float) -> str:
    if ts is None:
        return "-"
    age = max(0.0, now - ts)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if age >= size:
            return f"{age / size:.0f}{unit} ago"
    return f"{age:.0f}s ago"
