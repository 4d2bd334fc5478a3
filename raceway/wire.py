"""The monitor's wire format: newline-delimited JSON, one message per line.

This module alone defines what travels over the monitor socket; the engine's
monitor encodes with it and the dashboard decodes with it (the dashboard
imports nothing else from raceway). A session reads:

1. ``hello`` — ``{"type": "hello", "protocol": 1, "engine_version": ...,
   "pid": ..., "virtual_models": [...]}`` (never a secret);
2. ``snapshot`` — per-provider ``stats`` and the ``races`` finished recently
   (``race_finished`` bodies, oldest first, at most the last 200);
3. live events — ``race_started``, ``attempt_started``,
   ``attempt_first_token``, ``attempt_failed``, ``attempt_cancelled``,
   ``race_decided``, ``race_finished``, ``provider_cooldown``,
   ``provider_recovered``, ``stats`` (every second while a client is
   attached) — and ``dropped`` (``{"type": "dropped", "count": N}``) when
   this client fell behind and ``N`` events were skipped for it (sent where
   the gap is, once the client has caught up).

Every message has ``type`` and ``ts`` (wall clock, seconds since the epoch);
race events carry ``race_id`` and ``elapsed_ms`` (since the race began).
Readers must ignore keys they do not know, so the format can grow within
protocol 1, and must accept long lines: a ``snapshot`` with 200 races is a
few hundred kilobytes (asyncio's ``open_unix_connection`` needs
``limit=MAX_LINE_BYTES``). What a client sends is ignored.

Statistics (``snapshot.stats`` and ``stats.providers``) map
``"provider/model"`` to an object with these keys (times in ms, ``null``
until known): ``provider``, ``model``, ``races``, ``wins``, ``losses``,
``cancellations``, ``answered``, ``failures`` (``{kind: count}``),
``failure_count``, ``win_rate``, ``ttft_p50_ms``, ``ttft_p95_ms``,
``ttft_mean_ms``, ``latency_p50_ms``, ``latency_p95_ms``,
``latency_mean_ms``, ``output_chars``, ``input_tokens``, ``output_tokens``,
``score`` (0..1, 0.5 neutral), ``score_parts`` (``reliability``,
``win_rate``, ``speed``), ``last_seen`` (epoch s), ``cooldown_until``
(epoch s; in the future: cooling down; past: awaiting a trial race;
``null``: racing as usual), ``cooldown_reason`` (``failures`` or
``rate_limited``), ``consecutive_failures``.

Cooldowns: ``provider_cooldown`` (``provider``, ``model``, ``race_id`` of
the race that tripped it, ``until``, ``seconds``, ``reason``, ``failures``)
when a provider starts sitting races out; ``provider_recovered``
(``provider``, ``model``, ``race_id``) when it answers again. A race lists a
benched participant in ``race_finished.attempts`` with status
``not_started`` and ``error_kind`` ``cooldown`` (it is not among
``race_started.participants``).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, ClassVar, TypeAlias

import cattrs
from attrs import field, frozen

from ._events import (
    EVENT_TYPES,
    AttemptCancelled,
    AttemptFailed,
    AttemptFirstToken,
    AttemptStarted,
    Event,
    ProviderCooldown,
    ProviderRecovered,
    RaceDecided,
    RaceFinished,
    RaceStarted,
    StatsSnapshot,
)
from ._result import AttemptRecord

PROTOCOL = 1
#: Engines name their sockets ``raceway-<pid>.sock`` inside :func:`default_monitor_dir`
#: (``raceway-<pid>-<n>.sock`` for a second engine in the same process).
SOCKET_PREFIX = "raceway-"
SOCKET_SUFFIX = ".sock"
#: The longest line a reader should accept (a full ``snapshot`` stays far below it).
MAX_LINE_BYTES = 16 * 1024 * 1024


def default_monitor_dir() -> Path:
    """Where engines put their sockets by default (``monitor.socket: auto``).

    ``$XDG_RUNTIME_DIR/raceway`` when that variable is set (a per-user,
    private runtime directory), else ``<tempdir>/raceway-<uid>``. The engine
    creates it with mode 0700.
    """
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "raceway"
    return Path(tempfile.gettempdir()) / f"raceway-{os.getuid()}"


def find_sockets(directory: Path | None = None) -> list[Path]:
    """The engine sockets in ``directory`` (default: :func:`default_monitor_dir`), newest first."""
    d = directory or default_monitor_dir()
    try:
        found = [p for p in d.iterdir() if p.name.startswith(SOCKET_PREFIX) and p.name.endswith(SOCKET_SUFFIX)]
    except OSError:
        return []
    def mtime(p: Path) -> float:
        try:
            return p.stat().st_mtime
        except OSError:
            return 0.0
    return sorted(found, key=mtime, reverse=True)


@frozen(kw_only=True)
class VirtualModelInfo:
    id: str
    display_name: str = ""
    description: str = ""
    strategy: str = ""
    providers: tuple[str, ...] = ()


@frozen(kw_only=True)
class Hello:
    """The first line of every session."""

    type: ClassVar[str] = "hello"
    ts: float
    protocol: int = PROTOCOL
    engine_version: str = ""
    pid: int = 0
    virtual_models: tuple[VirtualModelInfo, ...] = ()


@frozen(kw_only=True)
class Snapshot:
    """The second line: statistics so far and the recent races."""

    type: ClassVar[str] = "snapshot"
    ts: float
    stats: dict[str, dict[str, Any]] = field(factory=dict)
    races: tuple[RaceFinished, ...] = ()


@frozen(kw_only=True)
class Dropped:
    """``count`` events were skipped for this client because it read too slowly."""

    type: ClassVar[str] = "dropped"
    ts: float
    count: int


Message: TypeAlias = Hello | Snapshot | Dropped | Event

MESSAGE_TYPES: dict[str, type[Any]] = {"hello": Hello, "snapshot": Snapshot, "dropped": Dropped, **EVENT_TYPES}


class WireError(ValueError):
    """A line that is not a valid message of this protocol."""


_converter = cattrs.Converter()


def to_dict(message: Any) -> dict[str, Any]:
    """The message as plain JSON-ready data, ``type`` first."""
    body: dict[str, Any] = _converter.unstructure(message)
    return {"type": message.type, **body}


def encode(message: Any) -> bytes:
    """One message as one line of UTF-8 JSON, newline included."""
    return json.dumps(to_dict(message), separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def decode(line: bytes | str) -> Any:
    """Parse one line into its message object.

    Unknown keys are ignored (the format may grow). Raises :class:`WireError`
    for anything that is not JSON, has no known ``type``, or misses fields.
    """
    try:
        data = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WireError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise WireError("a message must be a JSON object")
    kind = data.pop("type", None)
    cls = MESSAGE_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise WireError(f"unknown message type {kind!r}")
    try:
        return _converter.structure(data, cls)
    except Exception as exc:
        raise WireError(f"invalid {kind} message: {exc}") from None


__all__ = [
    "MAX_LINE_BYTES",
    "MESSAGE_TYPES",
    "PROTOCOL",
    "AttemptCancelled",
    "AttemptFailed",
    "AttemptFirstToken",
    "AttemptRecord",
    "AttemptStarted",
    "Dropped",
    "Hello",
    "Message",
    "ProviderCooldown",
    "ProviderRecovered",
    "RaceDecided",
    "RaceFinished",
    "RaceStarted",
    "Snapshot",
    "StatsSnapshot",
    "VirtualModelInfo",
    "WireError",
    "decode",
    "default_monitor_dir",
    "encode",
    "find_sockets",
    "to_dict",
]
