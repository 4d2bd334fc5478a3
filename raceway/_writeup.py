"""How a finished race is written up: its records, result, final event, or the error the caller gets.

Pure functions of the attempts' state (``_attempt.Attempt``): the driver
(``_race.py``) calls them once, at the race's end or, for what nobody
waits for, in the engine's learning batch — :func:`result_fields` for an
answer, :func:`records` for every participant's record, :func:`finished`
for the ``RaceFinished`` event every race ends with, :func:`failure` and
:func:`interrupted` for the exception of a race without one.
"""

from __future__ import annotations

from typing import Any

from ._attempt import Attempt
from ._config import Prices
from ._cost import price_records
from ._errors import (
    AllProvidersFailedError,
    ProviderError,
    ProviderTimeoutError,
    RaceTimeoutError,
    StreamInterruptedError,
)
from ._events import RaceFinished
from ._result import AttemptRecord
from ._text import one_line


def records(
    attempts: list[Attempt],
    benched: tuple[AttemptRecord, ...],
    contenders: int,
    pricing: tuple[tuple[Prices | None, ...], int] | None,
) -> tuple[AttemptRecord, ...]:
    """One record per participant, in their order (benched ones included), priced when prices are known."""
    out: tuple[AttemptRecord, ...] = tuple(a.record() for a in attempts)
    if benched or len(out) != contenders:
        out = tuple(sorted((*out, *benched), key=lambda r: r.index))
    if pricing is not None:
        out = price_records(out, *pricing)
    return out


def result_fields(
    w: Attempt,
    *,
    race_id: str,
    virtual_model: str,
    virtual_model_desc: str,
    strategy: str,
    decided_at: float,
    now: float,
) -> dict[str, Any]:
    """The :class:`RaceResult` fields, but ``attempts`` and ``cost_usd``, of a race that ``w`` won, ended at race time ``now``."""
    return {
        "race_id": race_id,
        "text": "".join(w.parts),
        "provider": w.provider.name,
        "model": w.request.model,
        "virtual_model": virtual_model,
        "strategy": strategy,
        "ttft_ms": decided_at * 1000,
        "total_ms": now * 1000,
        "finish_reason": w.finish_reason,
        "usage": w.usage,
        "metadata": {
            "racing_winner": w.provider.name,
            "racing_latency_ms": round(decided_at * 1000),
            "virtual_model": virtual_model,
            "virtual_model_desc": virtual_model_desc,
        },
        "tool_calls": w.tool_calls() if w.tool_deltas else (),
        "reasoning": "".join(w.reasoning),
        "thinking_blocks": tuple(w.thinking),
    }


def finished(
    outcome: str,
    now: float,
    records: tuple[AttemptRecord, ...],
    *,
    race_id: str,
    virtual_model: str,
    strategy: str,
    winner: Attempt | None,
    decided_at: float | None,
    error: str | None,
    ts: float,
) -> RaceFinished:
    """The ``RaceFinished`` event of a race that ended at race time ``now``."""
    usage: dict[str, Any] | None = None
    if winner is not None and winner.usage is not None:
        usage = {"input_tokens": winner.usage.input_tokens, "output_tokens": winner.usage.output_tokens}
    return RaceFinished(
        race_id=race_id,
        ts=ts,
        elapsed_ms=now * 1000,
        virtual_model=virtual_model,
        strategy=strategy,
        outcome=outcome,
        attempts=records,
        winner=None if winner is None else winner.number,
        ttft_ms=None if decided_at is None else decided_at * 1000,
        total_ms=now * 1000,
        error=error,
        usage=usage,
    )


def interrupted(w: Attempt, partial: str) -> StreamInterruptedError:
    """The error of a winner that broke off after ``partial`` (what the caller has, or would have had)."""
    assert w.error is not None
    exc = StreamInterruptedError(
        f"{w.label} broke off after {len(partial)} characters: {one_line(w.error)}",
        partial_text=partial,
        provider=w.provider.name,
        model=w.request.model,
    )
    exc.partial_tool_calls = w.tool_calls()
    exc.__cause__ = w.error
    return exc


def failure(
    attempts: list[Attempt],
    reason: str,
    *,
    timeout: bool,
    deadline: float,
    benched: tuple[AttemptRecord, ...],
) -> AllProvidersFailedError:
    """The error a race without a winner raises: why each attempt failed, in one line.

    ``errors`` maps each attempt's ``provider/model`` (``#2``, ``#3``... for a
    second attempt of the same label) to its error; ``__cause__`` is an
    ExceptionGroup of them all.
    """
    errors: dict[str, BaseException] = {}
    for a in attempts:
        if a.error is None:
            continue
        label = a.label
        n = 2
        while label in errors:
            label, n = f"{a.label}#{n}", n + 1
        errors[label] = a.error
    late = f"no answer before the race deadline ({deadline * 1000:.0f} ms)"
    if timeout:
        message = f"no provider answered within {deadline * 1000:.0f} ms"
        # Say why the attempts that failed before the deadline failed (a
        # missing key, a 401 naming its variable): that is what to fix.
        reasons = "; ".join(f"{a.label}: {one_line(e)}" for a in attempts if (e := a.error) and str(e) != late)
        if reasons:
            message = f"{message} ({reasons})"
        exc: AllProvidersFailedError = RaceTimeoutError(message, errors)
    else:
        detail = "; ".join(f"{a.label}: {one_line(a.error)}" for a in attempts if a.error is not None)
        exc = AllProvidersFailedError(f"all providers failed: {detail or reason}", errors)
    if benched:
        sitting = ", ".join(f"{b.label} ({b.error})" for b in benched)
        exc.args = (f"{exc.args[0]}; sitting this race out: {sitting}",)
    group = list(errors.values()) or [ProviderError(reason)]
    exc.__cause__ = ExceptionGroup("errors of every attempt", group)  # type: ignore[type-var]
    return exc


def stopped_error(a: Attempt, reason: str, *, timeout: bool, deadline: float) -> ProviderError:
    """What a still-running attempt is booked with when the race fails around it."""
    if timeout:
        return ProviderTimeoutError(f"no answer before the race deadline ({deadline * 1000:.0f} ms)", a.provider.name)
    return ProviderError(f"stopped: {reason}", a.provider.name)
