"""The engine's set-up of each race: from a virtual model's name to a :class:`~raceway._race.Race`.

:class:`RaceSetup` is the base of :class:`~raceway._engine.Engine` (which
holds the state) that ``complete()`` and ``stream()`` call on every race.
``_plan`` turns a virtual model's name into its ``_plan.Plan`` (made once per
virtual model, with the fleet's hedge budget when one runs); ``_new_race``
turns a plan and a request into a race: the tracker's admission (cooldowns,
rate caps: the benched are listed as not started), exploration's draws, each
contender's hedge delay, the ``RaceSpec`` (shared between races whenever it
cannot change), the strategy, and the race wired to the engine's timers,
listeners and learning (``_engine_learning.Learning``, this class's base).
This is the race's hot path: no call here that the race does not need.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import trio

from ._config import Config, Participant
from ._engine_learning import Learning
from ._errors import StrategyError
from ._plan import Plan, cost_controls, make_plan, wants_json
from ._providers import Provider, Request
from ._race import Race
from ._result import AttemptRecord
from ._strategy import Contender, HedgeBudget, RaceSpec
from ._timers import Timers


class RaceSetup(Learning):
    """Plans and races made for the engine's callers (a base of ``Engine``, which holds the state)."""

    # The engine's state these methods read and write (set in Engine.__init__), and its providers.
    config: Config
    _plans: dict[str | None, Plan]
    _specs: dict[tuple[str, bool], RaceSpec]
    _race_prefix: str
    _race_count: int
    _timers: Timers
    _clock: Callable[[], float]
    wall_clock: Callable[[], float]
    hedge_budget_for: Callable[[str, HedgeBudget], HedgeBudget] | None
    _provider: Callable[[Participant], Provider]

    def _new_race(
        self, plan: Plan, messages: list[dict[str, Any]], params: dict[str, Any], nursery: trio.Nursery, hold: bool
    ) -> Race:
        resolved = plan.model
        tracker = self._tracker  # a batch of good races may be unlearned yet: scores lag by at most LEARN_BATCH_S
        contenders: list[Contender] = []
        attempts = []
        self._race_count += 1
        race_id = f"{self._race_prefix}-{self._race_count}"
        # Cooldowns and rate caps (issues 4, 13): None when all may race; benched ones are listed as not_started.
        admitted = tracker.admit(plan.labels, race_id, plan.policy)
        benched: list[AttemptRecord] = []
        # Exploration (issue 13): one Thompson draw (score, TTFT ms) per participant, made here, never in decide().
        draws = tracker.sample_race(plan.labels) if plan.explore else None
        json_out = wants_json(params)
        # With everyone racing, no draws and a fixed hedge delay, the spec is the same every
        # race (frozen values, shared): made once per virtual model and output kind.
        fixed = admitted is None and draws is None and plan.hedge_delay is not None
        spec = self._specs.get((resolved.name, json_out)) if fixed else None
        for i, (p, provider, label) in enumerate(zip(resolved.participants, plan.providers, plan.labels, strict=True)):
            if admitted is not None and not admitted[i]:
                benched.append(attrs.evolve(tracker.benched(p.name, p.model), index=i))
                continue
            call_params = {**params, **p.params} if p.params else params
            attempts.append((provider, Request(messages=messages, model=p.model, params=call_params, provider=p.name)))
            if spec is not None:
                continue
            delay = plan.hedge_delay
            if delay is None:  # auto: from what the tracker saw of this provider
                delay = tracker.hedge_delay(label, plan.hedge_quantile)
            score, ttft = draws[i] if draws is not None else (0.5, None)
            contenders.append(
                Contender(
                    index=len(contenders),
                    provider=p.name,
                    model=p.model,
                    priority=p.priority,
                    weight=p.weight,
                    score=score,
                    hedge_delay=delay,
                    ttft_estimate=None if ttft is None else ttft / 1000,
                )
            )
        plan.budget.deposit()
        if spec is None:
            spec = RaceSpec(
                contenders=tuple(contenders),
                deadline=resolved.timeout_ms / 1000,
                grace=resolved.grace_period_ms / 1000,
                budget=plan.budget,
                scorer=plan.scorer,
                wants_json=json_out,
            )
            if fixed:
                self._specs[(resolved.name, json_out)] = spec
        try:
            strategy = plan.factory(spec)
        except Exception as exc:
            tracker.release(race_id)  # no race to record: give its rate-cap slots back
            raise StrategyError(f"making strategy {plan.strategy_name!r} failed: {type(exc).__name__}: {exc}") from exc
        return Race(
            race_id=race_id,
            nursery=nursery,
            timers=self._timers,
            clock=self._clock,
            wall=self.wall_clock(),
            strategy=strategy,
            spec=spec,
            attempts=attempts,
            virtual_model=resolved.name,
            virtual_model_desc=resolved.description,
            strategy_name=plan.strategy_name,
            ttft_timeout=None if resolved.ttft_timeout_ms is None else resolved.ttft_timeout_ms / 1000,
            idle_timeout=resolved.idle_timeout_ms / 1000,
            emit=self._emit if self._listeners else None,
            on_finished=self._race_finished,
            # With some benched, events and records keep each participant's own place.
            benched=tuple(benched),
            numbers=tuple(i for i in range(len(plan.labels)) if admitted is None or admitted[i]) if benched else (),
            participants=plan.participants,
            first_token_any=resolved.first_token == "any",
            hold=hold,
            learn_later=admitted is None and not plan.policy.capped,  # a capped race frees its slots when learned
            **cost_controls(plan, tracker, messages, params, list(range(len(attempts))), admitted),
        )

    def _plan(self, model: str | None) -> Plan:
        plan = self._plans.get(model)
        if plan is None:
            resolved = self.config.resolve(model)
            # One plan (and one hedge budget) per virtual model, however the caller names it.
            plan = self._plans.get(resolved.name)
            if plan is None:
                providers = tuple(self._provider(p) for p in resolved.participants)
                plan = make_plan(resolved, providers, self._tracker)
                if self.hedge_budget_for is not None:
                    plan = attrs.evolve(plan, budget=self.hedge_budget_for(resolved.name, plan.budget))
            self._plans[model] = self._plans[resolved.name] = plan
        return plan

    def forget_plans(self) -> None:
        """Make each virtual model's plan afresh at its next race (after ``hedge_budget_for`` changed)."""
        self._plans.clear()
        self._specs.clear()  # a reused spec holds its plan's hedge budget
