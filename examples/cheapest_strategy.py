"""A custom raceway strategy: prefer the cheapest provider unless it is 2x slower.

Everyone starts at once, as in ``first_wins``. When the first answer comes
(its first token at ``f`` seconds), a cheaper provider still on its way gets
until ``2 × f`` to answer too: the cheapest answer by then wins. A cheap
answer that would keep the caller waiting more than twice as long as the
fastest one loses to the faster, dearer one. Costs come from a table of
dollars per million output tokens by provider name (``COST_PER_MTOK``);
subclass and set ``costs`` for your own prices, or ``slowdown`` for another
ratio.

Name it in config by import path::

    strategy: "examples.cheapest_strategy:Cheapest"

and prove it keeps raceway's rules with ``raceway.testing.check_strategy``
(``tests/test_example_cheapest.py`` does). Run it against two simulated
providers, from the repository's root::

    python -m examples.cheapest_strategy
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import trio

import raceway
from raceway import Decision, GiveUp, Pick, Start, Strategy, Wait

#: Dollars per million output tokens, by provider name (list prices in 2025; yours will differ).
COST_PER_MTOK: Mapping[str, float] = {
    "deepseek": 1.10,
    "groq": 0.79,
    "mistral": 2.00,
    "openai": 10.00,
    "anthropic": 15.00,
}
#: The cost of a provider missing from the table: dear, so it never wins on price alone.
UNKNOWN_COST = 100.0


class Cheapest(Strategy):
    """The cheapest answer that comes within ``slowdown`` × the fastest one's time wins."""

    name = "cheapest"
    costs: ClassVar[Mapping[str, float]] = COST_PER_MTOK
    slowdown: ClassVar[float] = 2.0

    def cost(self, i: int) -> float:
        return self.costs.get(self.spec.contenders[i].provider, UNKNOWN_COST)

    def decide(self, now: float) -> Decision:
        waiting = self.not_started()
        if waiting:
            return Start(waiting[0])
        wins = self.successes()  # earliest first
        if not wins:
            if not self.any_pending():
                return GiveUp("every attempt failed")
            return Wait(self.spec.deadline)
        fastest = self.success_time(wins[0])
        assert fastest is not None
        best = min(wins, key=self.cost)  # min() keeps the first of equals: the earlier answer
        patience = fastest * self.slowdown
        cheaper_on_the_way = any(
            a.running and a.first_token is None and self.cost(i) < self.cost(best)
            for i, a in enumerate(self.attempts)
        )
        if cheaper_on_the_way and now < patience and now < self.spec.deadline:
            return Wait(min(patience, self.spec.deadline))
        return Pick(best, cancel_losers_at=now)


CONFIG = """
strategy: "examples.cheapest_strategy:Cheapest"
timeout_ms: 5000
monitor: {socket: "off"}
providers:
  openai:   {type: sim, model: fast-and-dear, ttft_ms: 300, sigma: 0.3}
  deepseek: {type: sim, model: cheap-and-slower, ttft_ms: 450, sigma: 0.5}
"""


async def main() -> None:
    async with raceway.open_engine(raceway.loads_config(CONFIG)) as engine:
        for _ in range(5):
            result = await engine.complete([{"role": "user", "content": "Say hello."}])
            print(f"{result.provider:>8} won at {result.ttft_ms:4.0f} ms")


if __name__ == "__main__":
    trio.run(main)
