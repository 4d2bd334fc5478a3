"""Strategy comparison: which strategy, grace and hedge delay suit a provider mix.

Two modes share one report:

* **Planned** (the embedded profiles, or any ``sim`` providers): every
  request's fate at every provider — time to first token, failure, hang,
  tokens — is drawn once up front from the providers' latency profiles, and
  every strategy is raced through the real engine on trio's virtual clock
  against those same draws, so the comparison is exact, repeatable (``seed``)
  and takes seconds. The *oracle* is the fastest planned success of each
  request; the best single provider is each provider alone.
* **Live** (a config with real providers): each strategy's virtual model
  races the real providers on the real clock. It costs money, so the CLI
  states how many requests it will send and asks first.

Reported per strategy: p50/p95/p99 caller TTFT, failures, upstream requests
per answer, tokens streamed by losers (wasted), cost per answer and the
losers' cost per request (at the providers' ``prices``; the embedded profiles
carry illustrative ones), and ratios to the oracle and to the best single
provider. A caller-visible TTFT of a failed request counts
as the deadline, so failures show in the tail.

This module owns the choice of mode (:func:`sim_profiles`: planned when
every provider is simulated) and is the bench's one namespace; the parts
live beside it, each importable from here: :mod:`raceway._bench_planned`,
:mod:`raceway._bench_live`, :mod:`raceway._bench_summary` (the variants,
:class:`Outcome`, :func:`summarise`), :mod:`raceway._bench_report` (markdown,
the report folder, the text CDF) and :mod:`raceway._bench_scenarios`.
"""

from __future__ import annotations

import attrs

from ._bench_live import _run_live as _run_live
from ._bench_live import compare_live as compare_live
from ._bench_live import live_plan as live_plan
from ._bench_live import live_request_count as live_request_count
from ._bench_planned import BENCH_PRICES as BENCH_PRICES
from ._bench_planned import HEAVY_TAILED as HEAVY_TAILED
from ._bench_planned import HEDGE_DELAYS_MS as HEDGE_DELAYS_MS
from ._bench_planned import HEDGE_SWEEP_LOAD as HEDGE_SWEEP_LOAD
from ._bench_planned import PLANNED_CONCURRENCY as PLANNED_CONCURRENCY
from ._bench_planned import PLANNED_STAGGER_S as PLANNED_STAGGER_S
from ._bench_planned import TABLE as TABLE
from ._bench_planned import WARMUP_FRACTION as WARMUP_FRACTION
from ._bench_planned import Plan as Plan
from ._bench_planned import _one as _one
from ._bench_planned import _run_planned as _run_planned
from ._bench_planned import _Table as _Table
from ._bench_planned import compare_planned as compare_planned
from ._bench_planned import draw_plans as draw_plans
from ._bench_planned import planned as planned
from ._bench_planned import planned_config as planned_config
from ._bench_planned import planned_races as planned_races
from ._bench_report import _plot_cdf as _plot_cdf
from ._bench_report import _usd as _usd
from ._bench_report import markdown as markdown
from ._bench_report import terminal_cdf as terminal_cdf
from ._bench_report import write_report as write_report
from ._bench_scenarios import SCENARIOS as SCENARIOS
from ._bench_scenarios import hedge_curve as hedge_curve
from ._bench_summary import DEADLINE_MS as DEADLINE_MS
from ._bench_summary import DEFAULT_VARIANTS as DEFAULT_VARIANTS
from ._bench_summary import Outcome as Outcome
from ._bench_summary import _costs as _costs
from ._bench_summary import _pcts as _pcts
from ._bench_summary import _shares as _shares
from ._bench_summary import summarise as summarise
from ._config import Config, SimProvider


def sim_profiles(config: Config, model: str | None) -> dict[str, SimProvider] | None:
    """The ``sim`` profiles of ``model``'s providers, or ``None`` if any is not simulated."""
    out: dict[str, SimProvider] = {}
    for p in config.resolve(model).participants:
        if not isinstance(p.definition, SimProvider):
            return None
        out[p.name] = attrs.evolve(p.definition, prices=p.prices)  # a reference's prices over its definition's
    return out
