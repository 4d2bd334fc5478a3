"""Shared statistics: what the tracker gives the fleet and takes back, and Redis's side of it.

The interface
-------------

The tracker side is :class:`FleetLearning`, three methods and two plain
records, so any tracker can take part (today's :class:`TrackerShare`
adapter; a tracker with mergeable sketches can implement it directly):

* ``export_delta()`` — this engine's observations since the last export,
  per ``provider/model`` label, as a :class:`LabelDelta`: ``sums`` (numbers
  that add up across engines: counts, histogram bins, decayed sums as of a
  shared epoch), ``highs`` (the largest value wins: ``last_seen``) and
  ``samples`` (opaque strings the *other* engines replay, newest kept: today's
  tracker sends its observations for its windows and running estimates).
  The exporter owns the delta from then on and delivers it exactly once.
* ``absorb_fleet(fleet)`` — the fleet's view per label as a
  :class:`LabelFleet`: ``sums``/``highs`` totals over every engine's exports
  (this engine's included) and the other engines' ``samples`` that are new
  since the last read. The tracker shows those totals plus whatever it
  observed after its last export, so each observation counts once.
* ``labels()`` — the labels this engine wants to read (its participants).

Exactly once
------------

:class:`SharedStatistics` keeps one unconfirmed batch at a time, numbered per
engine. A Lua script applies a batch only if its number is new for this
engine (``{prefix}:seen:{engine}``), then reads the totals — one atomic step. A call
that timed out is sent again unchanged, and applied at most once whatever
happened to the first try; nothing new is exported until it is confirmed,
so what the engine learns while Redis is away waits in the tracker and goes
out as one delta once Redis is back. Each delta also carries the engine's
``whole`` view of the sums, applied instead when the fleet has no record of
a label: the first engine of a new fleet seeds it with its
``performance_file`` history, and a Redis restarted empty is refilled.

Keys: ``{prefix}:stats:{label}`` (a hash: ``s:<name>`` sums, ``h:<name>``
highs, ``provider``, ``model``) and ``{prefix}:obs:{label}`` (a stream of
sample batches, capped near :data:`OBS_BATCHES_KEPT`), both expiring
:data:`KEY_TTL_S` after their last write so a retired provider ages out.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

from attrs import field, frozen

from ._events import RaceFinished
from ._record import COUNTERS, Observation, Record, observe
from ._tracker import Tracker

if TYPE_CHECKING:
    from ._fleet_link import Link

#: A label's shared keys expire this long after the last engine wrote them.
KEY_TTL_S = 7 * 24 * 3600
#: Samples a label sends per export at most (the newest): the tracker's windows hold 200.
SAMPLES_PER_EXPORT = 100
#: Sample batches a label's stream keeps: enough for a fresh engine's windows.
OBS_BATCHES_KEPT = 64
#: Batches a fresh engine replays from a label's stream (its newest).
FIRST_READ_BATCHES = 4
#: Finished races the adapter keeps between exports for their samples.
EVENTS_KEPT = 4096


@frozen(kw_only=True)
class LabelDelta:
    """One label's news since the last export (see the module docstring)."""

    provider: str
    model: str
    sums: dict[str, float]
    highs: dict[str, float]
    samples: tuple[str, ...] = ()
    #: This engine's whole view of the sums, applied instead of ``sums`` when the fleet has no
    #: record of the label (a new fleet, or a Redis restarted without persistence): history
    #: from ``performance_file`` and what the fleet knew are not lost.
    whole: dict[str, float] = field(factory=dict)


@frozen(kw_only=True)
class LabelFleet:
    """One label as the fleet knows it: totals, and the other engines' new samples."""

    provider: str
    model: str
    sums: dict[str, float]
    highs: dict[str, float]
    samples: tuple[str, ...] = ()


class FleetLearning(Protocol):
    """What a tracker offers to share its learning (module docstring)."""

    def labels(self) -> Iterable[str]: ...

    def export_delta(self) -> dict[str, LabelDelta]: ...

    def absorb_fleet(self, fleet: dict[str, LabelFleet]) -> None: ...


# ---------------------------------------------------------------- today's tracker


def encode_observation(obs: Observation) -> list[Any]:
    """What another engine needs to learn from one attempt (``Record.learn``): times, status, kind."""
    return [obs.ts, obs.status, obs.ttft_ms, obs.latency_ms, obs.waited_ms, obs.error_kind]


def decode_observation(item: Any) -> Observation | None:
    try:
        ts, status, ttft, latency, waited, kind = item[:6]
        return Observation(
            ts=float(ts),
            status=str(status),
            ttft_ms=None if ttft is None else float(ttft),
            latency_ms=None if latency is None else float(latency),
            waited_ms=None if waited is None else float(waited),
            error_kind=None if kind is None else str(kind),
        )
    except (TypeError, ValueError):
        return None


class TrackerShare:
    """:class:`FleetLearning` for today's :class:`Tracker` (counters, windows, running estimates).

    Counts travel as ``sums`` (``races``, ..., ``f:<kind>`` per failure
    kind); each attempt's observation travels as a sample, which the other
    engines replay into their windows and estimates (as ``performance_file``
    merges). :meth:`note` must see every finished race (:func:`install` in
    ``_shared.py`` wraps ``tracker.record`` for it).
    """

    def __init__(self, tracker: Tracker, labels: Iterable[str]) -> None:
        self.tracker = tracker
        self._wanted = set(labels)
        # Counts at the last export / absorb; what the tracker holds now (performance_file's
        # history) is not news: it reaches the fleet only as ``whole``, where the fleet has nothing.
        self._mark: dict[str, dict[str, float]] = {label: _counts(r) for label, r in self._records().items()}
        self._races: deque[RaceFinished] = deque(maxlen=EVENTS_KEPT)

    def note(self, event: RaceFinished) -> None:
        """A race finished (on the race path: one append)."""
        self._races.append(event)

    def labels(self) -> Iterable[str]:
        return self._wanted | set(self.tracker.labels())

    def export_delta(self) -> dict[str, LabelDelta]:
        samples: dict[str, deque[str]] = {}
        while self._races:
            event = self._races.popleft()
            for a in event.attempts:
                if a.status != "not_started":
                    q = samples.setdefault(a.label, deque(maxlen=SAMPLES_PER_EXPORT))
                    q.append(json.dumps(encode_observation(observe(event, a, event.ts)), separators=(",", ":")))
        out: dict[str, LabelDelta] = {}
        for label, r in self._records().items():
            now = _counts(r)
            base = self._mark.get(label, {})
            sums = {k: v - base.get(k, 0.0) for k, v in now.items() if v != base.get(k, 0.0)}
            self._mark[label] = now
            out[label] = LabelDelta(
                provider=r.provider,
                model=r.model,
                sums=sums,
                highs={} if r.last_seen is None else {"last_seen": r.last_seen},
                samples=tuple(samples.get(label, ())),
                whole={k: v for k, v in now.items() if v},
            )
        return out

    def absorb_fleet(self, fleet: dict[str, LabelFleet]) -> None:
        records = self._records()
        for label, f in fleet.items():
            r = records.get(label)
            if r is None:
                if not f.sums and not f.samples:
                    continue
                r = records[label] = Record(provider=f.provider, model=f.model)
            old = _counts(r)
            mark = self._mark.get(label, {})
            new = {k: f.sums.get(k, 0.0) + old.get(k, 0.0) - mark.get(k, 0.0) for k in old.keys() | f.sums.keys()}
            _set_counts(r, old, new)
            self._mark[label] = {k: f.sums.get(k, 0.0) for k in new}
            seen = f.highs.get("last_seen")
            if seen is not None and (r.last_seen is None or seen > r.last_seen):
                r.last_seen = seen
            for text in f.samples:
                try:
                    batch = json.loads(text)
                except ValueError:
                    continue
                for item in batch if isinstance(batch, list) and batch and isinstance(batch[0], list) else [batch]:
                    obs = decode_observation(item)
                    if obs is not None:
                        r.learn(obs)

    def _records(self) -> dict[str, Record]:
        records: dict[str, Record] = self.tracker._records
        return records


def _counts(r: Record) -> dict[str, float]:
    out: dict[str, float] = {name: float(getattr(r, name)) for name in COUNTERS}
    for kind, n in r.failures.items():
        out[f"f:{kind}"] = float(n)
    return out


def _set_counts(r: Record, old: dict[str, float], new: dict[str, float]) -> None:
    """Show ``new`` counts; ``performance_file``'s baselines move along, so it still saves only our own."""
    for key, value in new.items():
        n = max(0, round(value))
        delta = n - round(old.get(key, 0.0))
        if key.startswith("f:"):
            kind = key[2:]
            r.failures[kind] = n
            if delta:
                r.saved_failures[kind] = r.saved_failures.get(kind, 0) + delta
        else:
            setattr(r, key, n)
            if delta:
                r.saved[key] = r.saved.get(key, 0) + delta


# ---------------------------------------------------------------- Redis's side

_MERGE = """
local P, me, seq, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local body = cjson.decode(ARGV[5])
local seen = P .. ':seen:' .. me
local field = 'stats'
local last = tonumber(redis.call('HGET', seen, field) or '0')
if seq > last then
  for label, d in pairs(body.push) do
    local h = P .. ':stats:' .. label
    local sums = d.s
    if redis.call('EXISTS', h) == 0 then sums = d.w end
    redis.call('HSET', h, 'provider', d.p, 'model', d.m)
    for k, v in pairs(sums) do redis.call('HINCRBYFLOAT', h, 's:' .. k, v) end
    for k, v in pairs(d.h) do
      local cur = tonumber(redis.call('HGET', h, 'h:' .. k) or '-1e308')
      if v > cur then redis.call('HSET', h, 'h:' .. k, v) end
    end
    redis.call('EXPIRE', h, ttl)
    if #d.o > 0 then
      local o = P .. ':obs:' .. label
      redis.call('XADD', o, 'MAXLEN', '~', ARGV[6], '*', 'e', me, 'd', '[' .. table.concat(d.o, ',') .. ']')
      redis.call('EXPIRE', o, ttl)
    end
  end
  redis.call('HSET', seen, field, seq)
  redis.call('EXPIRE', seen, ttl)
end
local out = {}
for label, cursor in pairs(body.read) do
  local t = redis.call('HGETALL', P .. ':stats:' .. label)
  local o = P .. ':obs:' .. label
  local entries
  if cursor == '' then
    entries = redis.call('XREVRANGE', o, '+', '-', 'COUNT', ARGV[7])
  else
    entries = redis.call('XRANGE', o, '(' .. cursor, '+', 'COUNT', ARGV[6])
  end
  local samples, newest = {}, cursor
  for _, e in ipairs(entries) do
    local id, f = e[1], e[2]
    if cursor == '' then
      if newest == '' then newest = id end
    else
      newest = id
    end
    local who, data = nil, nil
    for i = 1, #f, 2 do
      if f[i] == 'e' then who = f[i + 1] elseif f[i] == 'd' then data = f[i + 1] end
    end
    if who ~= me and data then samples[#samples + 1] = data end
  end
  if cursor == '' and newest == '' then newest = '0-0' end
  out[label] = {t = t, o = samples, c = newest, rev = (cursor == '')}
end
return cjson.encode(out)
"""


class SharedStatistics:
    """The fleet's statistics: one round pushes the unconfirmed batch and reads the totals."""

    def __init__(self, learning: FleetLearning) -> None:
        self.learning = learning
        self._seq = 0
        self._batch: dict[str, LabelDelta] | None = None
        self._cursors: dict[str, str] = {}
        self.rounds = 0

    async def sync(self, link: Link) -> None:
        if self._batch is None:
            self._batch = self.learning.export_delta()
            self._seq += 1
        push = {
            label: {
                "p": d.provider,
                "m": d.model,
                "s": d.sums or _EMPTY,
                "h": d.highs or _EMPTY,
                "o": list(d.samples) or _EMPTY_LIST,
                "w": d.whole or _EMPTY,
            }
            for label, d in self._batch.items()
        }
        read = {label: self._cursors.get(label, "") for label in self.learning.labels()}
        body = json.dumps({"push": push or _EMPTY, "read": read or _EMPTY}, separators=(",", ":"))
        reply = await link.script(
            "stats", _MERGE, link.prefix, link.engine_id, self._seq, KEY_TTL_S, body, OBS_BATCHES_KEPT, FIRST_READ_BATCHES
        )
        self._batch = None  # confirmed: applied exactly once
        self.rounds += 1
        self.learning.absorb_fleet(self._parse(json.loads(reply)))

    def _parse(self, data: Any) -> dict[str, LabelFleet]:
        out: dict[str, LabelFleet] = {}
        if not isinstance(data, dict):
            return out
        for label, item in data.items():
            flat = item.get("t") or []
            fields = dict(zip(flat[::2], flat[1::2], strict=False))
            sums = {k[2:]: float(v) for k, v in fields.items() if k.startswith("s:")}
            highs = {k[2:]: float(v) for k, v in fields.items() if k.startswith("h:")}
            samples = list(item.get("o") or [])
            if item.get("rev"):
                samples.reverse()  # a first read comes newest first
            self._cursors[label] = str(item.get("c") or "0-0")
            out[label] = LabelFleet(
                provider=str(fields.get("provider", label.partition("/")[0])),
                model=str(fields.get("model", label.partition("/")[2])),
                sums=sums,
                highs=highs,
                samples=tuple(samples),
            )
        return out


_EMPTY: dict[str, Any] = {}
_EMPTY_LIST: list[Any] = []
