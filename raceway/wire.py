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
``speed``; wins do not feed the score), ``last_seen`` (epoch s),
``cooldown_until`` (epoch s; in the future: cooling down; past: awaiting a
trial race; ``null``: racing as usual), ``cooldown_reason`` (``failures``,
``failing``, ``rate_limited``, ``auth`` or ``missing_key``),
``consecutive_failures``, ``ttft_p90_ms``, ``ttft_samples`` (effective
answers behind the TTFT estimate). ``win_rate`` is wins over attempts that
were not cancelled (a cancellation is no loss).

Cooldowns: ``provider_cooldown`` (``provider``, ``model``, ``race_id`` of
the race that tripped it, ``until``, ``seconds``, ``reason``, ``failures``)
when a provider starts sitting races out; ``provider_recovered``
(``provider``, ``model``, ``race_id``) when it answers again. A race lists a
benched participant in ``race_finished.attempts`` with status
``not_started`` and ``error_kind`` ``cooldown`` (it is not among
``race_started.participants``); one kept out by a rate cap, with
``error_kind`` ``rate_cap``.
"""

from __future__ import annotations

import json
import os
import tempfile
import types
import typing
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeAlias, Union

import attrs
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


def to_dict(message: Any) -> dict[str, Any]:
    """The message as plain JSON-ready data, ``type`` first."""
    body: dict[str, Any] = attrs.asdict(message, recurse=True)
    return {"type": message.type, **body}


# Decoding: a small structurer for exactly the types messages use (attrs
# classes, tuples, dicts, optionals, literals, scalars). cattrs would do it,
# but the dashboard imports this module alone and should not load cattrs.

_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    return hints


def _structure(value: Any, tp: Any, where: str) -> Any:
    if tp is Any:
        return value
    origin = typing.get_origin(tp)
    if origin is Union or origin is types.UnionType:
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        first: WireError | None = None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _structure(value, arg, where)
            except WireError as exc:
                first = first or exc
        raise first or WireError(f"{where}: unexpected null")
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise WireError(f"{where}: {value!r} is not one of {typing.get_args(tp)}")
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise WireError(f"{where}: expected a list, got {type(value).__name__}")
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_structure(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise WireError(f"{where}: expected {len(args)} items, got {len(value)}")
        return tuple(_structure(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True)))
    if origin is dict:
        if not isinstance(value, dict):
            raise WireError(f"{where}: expected an object, got {type(value).__name__}")
        value_type = typing.get_args(tp)[1]
        return {str(k): _structure(v, value_type, f"{where}.{k}") for k, v in value.items()}
    if isinstance(tp, type) and attrs.has(tp):
        if not isinstance(value, dict):
            raise WireError(f"{where}: expected an object, got {type(value).__name__}")
        hints = _hints(tp)
        kwargs = {}
        for f in attrs.fields(tp):
            if f.name in value:
                kwargs[f.name] = _structure(value[f.name], hints[f.name], f"{where}.{f.name}")
            elif f.default is attrs.NOTHING:
                raise WireError(f"{where}: missing {f.name!r}")
        return tp(**kwargs)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise WireError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise WireError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is str or tp is bool:
        if not isinstance(value, tp):
            raise WireError(f"{where}: expected {tp.__name__}, got {value!r}")
        return value
    return value


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
        return _structure(data, cls, kind)
    except WireError as exc:
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
