"""Race timelines: who takes part, and what each participant does once started.

A :class:`Scenario` is the input of :func:`~raceway.testing.simulate`: the
participants (each a :class:`Participant` with its ranking and its script)
and the race's time rules. A participant's script is relative to the moment
the strategy starts it, because the strategy decides when that is (``hedged``
starts its attempts one after another). Times are seconds.

This module is pure Python; :func:`race_scenarios` (the hypothesis strategy
that draws scenarios) lives in ``_draw.py``.
"""

from __future__ import annotations

import math

from attrs import field, frozen

from .._strategies import (
    Completed,
    Contender,
    Fact,
    Failed,
    FirstToken,
    HedgeBudget,
    RaceSpec,
)

#: The engine's hedge budget holds at most this many hedges (HedgeBudget's default reserve).
HEDGE_RESERVE: float = HedgeBudget().reserve


def fmt_time(t: float) -> str:
    """Seconds as a timeline shows them: ``0``, ``0.120``, ``2.000``."""
    if t == 0:
        return "0"
    if math.isinf(t):
        return "never"
    return f"{t:.3f}"


def _non_negative(instance: object, attribute: object, value: float | None) -> None:
    if value is not None and not value >= 0:
        name = getattr(attribute, "name", "time")
        raise ValueError(f"{name} must be 0 or more seconds, not {value!r}")


@frozen(kw_only=True)
class Participant:
    """One participant: how the strategy sees it, and what it does once started.

    The script, in seconds after the attempt starts:

    * ``ttft``: its first non-empty token (``None``: it never produces one);
    * ``end``: its stream ends (``None``: it hangs, never ending);
    * ``fails``: the end is an error of kind ``fail_kind`` rather than a
      complete answer. An end without a token and without ``fails`` is an
      empty answer, which fails (kind ``protocol``) as in the engine.

    ``text`` and ``finish_reason`` make up the complete answer (what a
    quality scorer sees); ``priority``, ``weight``, ``score`` and
    ``hedge_delay`` become the :class:`~raceway.Contender`.
    """

    name: str
    ttft: float | None = field(default=None, validator=_non_negative)
    end: float | None = field(default=None, validator=_non_negative)
    fails: bool = False
    fail_kind: str = "error"
    text: str = "ok"
    finish_reason: str | None = "stop"
    priority: int = 0
    weight: float = 1.0
    score: float = 0.5
    hedge_delay: float = 1.0

    def __attrs_post_init__(self) -> None:
        if self.ttft is not None and self.end is not None and self.end < self.ttft:
            raise ValueError(f"participant {self.name}: end ({self.end}) comes before ttft ({self.ttft})")
        if self.ttft is not None and not self.text:
            raise ValueError(f"participant {self.name}: a participant with a token needs a non-empty text")
        if self.fails and self.end is None:
            raise ValueError(f"participant {self.name}: fails=True needs the time it fails (end)")

    @property
    def answer(self) -> str:
        """The text of its complete answer: ``text`` if it produces a token, else empty."""
        return self.text if self.ttft is not None else ""

    def facts(self, index: int, start: float) -> list[Fact]:
        """The facts this participant produces when started at ``start``, in order."""
        out: list[Fact] = []
        if self.ttft is not None:
            out.append(FirstToken(index, start + self.ttft))
        if self.end is not None:
            if self.fails:
                out.append(Failed(index, start + self.end, self.fail_kind))
            elif self.ttft is None:
                # An answer without any text is a failed attempt (the engine's
                # "empty answer", a protocol error).
                out.append(Failed(index, start + self.end, "protocol"))
            else:
                out.append(Completed(index, start + self.end, self.answer, self.finish_reason))
        return out

    def script(self) -> str:
        """Its behaviour in words, relative to its start: ``token +0.120, complete +0.300``."""
        parts = []
        if self.ttft is not None:
            parts.append(f"token +{fmt_time(self.ttft)}")
        if self.end is None:
            parts.append("then hangs" if parts else "hangs")
        elif self.fails:
            parts.append(f"fail +{fmt_time(self.end)} ({self.fail_kind})")
        else:
            if self.ttft is None:
                parts.append(f"fail +{fmt_time(self.end)} (empty answer)")
                return ", ".join(parts)
            done = f"complete +{fmt_time(self.end)}"
            if self.finish_reason != "stop":
                done += f" ({self.finish_reason})"
            parts.append(done)
        return ", ".join(parts)


@frozen(kw_only=True)
class Scenario:
    """One race timeline: the participants, the deadline and grace window, the hedge budget.

    ``deadline`` is ``timeout_ms`` in seconds: a winner must be decided by
    then. ``grace`` is ``grace_period_ms`` in seconds. ``max_extra_load``
    and ``hedge_balance`` describe the :class:`~raceway.HedgeBudget` as this
    race finds it (``hedge_balance`` hedges left; the engine's budget holds
    at most ``HEDGE_RESERVE``, 2).
    """

    participants: tuple[Participant, ...]
    deadline: float = 1.0
    grace: float = 0.25
    max_extra_load: float = 0.1
    hedge_balance: float = HEDGE_RESERVE

    def __attrs_post_init__(self) -> None:
        if not self.participants:
            raise ValueError("a scenario needs at least one participant")
        if not self.deadline > 0:
            raise ValueError(f"deadline must be positive, not {self.deadline!r}")
        if not self.grace >= 0:
            raise ValueError(f"grace must be 0 or more, not {self.grace!r}")
        names = [p.name for p in self.participants]
        if len(set(names)) != len(names):
            raise ValueError(f"participant names must be distinct: {names}")

    def spec(self) -> RaceSpec:
        """A fresh :class:`~raceway.RaceSpec` for this race (with its own, unspent hedge budget)."""
        contenders = tuple(
            Contender(
                index=i,
                provider=p.name,
                priority=p.priority,
                weight=p.weight,
                score=p.score,
                hedge_delay=p.hedge_delay,
            )
            for i, p in enumerate(self.participants)
        )
        budget = HedgeBudget(
            max_extra_load=self.max_extra_load,
            reserve=max(HEDGE_RESERVE, self.hedge_balance),
            balance=self.hedge_balance if self.max_extra_load > 0 else 0.0,
        )
        return RaceSpec(contenders=contenders, deadline=self.deadline, grace=self.grace, budget=budget)

    def describe(self) -> str:
        """The scenario in words, one participant a line."""
        grace = "huge" if self.grace >= 1000 else fmt_time(self.grace)
        lines = [
            f"deadline {fmt_time(self.deadline)}, grace {grace}, hedge budget "
            f"{self.hedge_balance:g} (max_extra_load {self.max_extra_load:g})"
        ]
        for p in self.participants:
            lines.append(
                f"{p.name} (priority {p.priority}, weight {p.weight:g}, score {p.score:g}, "
                f"hedge_delay {fmt_time(p.hedge_delay)}): {p.script()}"
            )
        return "\n".join(lines)
