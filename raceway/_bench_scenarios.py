"""The learning scenarios of issue 13 and the hindsight-optimal hedge curve, for ``_bench``.

Each scenario is three ``sim`` profiles that test one way learning can go
wrong; :func:`hedge_curve` sweeps fixed hedge delays (with a budget that never
binds) and says where ``hedged auto`` sits against the best of them at its
own extra load.
"""

from __future__ import annotations

from typing import Any

from ._config import SimProvider


def _trio(ttft_ms: tuple[float, float, float], sigma: float, failures: tuple[float, ...] = (0.0,) * 3,
          hangs: tuple[float, ...] = (0.0,) * 3) -> dict[str, SimProvider]:
    return {
        f"p{i}": SimProvider(model=f"p{i}", ttft_ms=t, sigma=sigma, failure_rate=failures[i], hang_rate=hangs[i],
                             tokens_per_s=100, text="one two three four five")
        for i, t in enumerate(ttft_ms)
    }


#: The learning scenarios (issue 13): each tests one way learning can go wrong.
SCENARIOS: dict[str, dict[str, SimProvider]] = {
    # The same profile three times: no provider should take over.
    "identical": _trio((50, 50, 50), 0.8),
    # One clearly fastest, listed last: it should win nearly always.
    "one_fast": _trio((120, 60, 25), 0.5),
    # Close medians, heavy tails, a few failures and hangs: the hedge delay's home.
    "heavy_tail": _trio((40, 50, 60), 0.8, (0.02, 0.02, 0.02), (0.01, 0.01, 0.01)),
    # The fastest is flaky: all-at-once strategies should keep racing it.
    "one_bad": _trio((40, 50, 60), 0.8, (0.30, 0.02, 0.02), (0.05, 0.01, 0.01)),
}


def hedge_curve(points: dict[str, tuple[float, float]], strategies: dict[str, Any]) -> dict[str, Any]:
    """The hindsight-optimal fixed delays: for each extra load, the lowest p99 any fixed delay reached
    with no more load; and where ``hedged auto`` sits against it (interpolated at auto's own load).

    ``points`` maps each swept variant to its (requests per answer, p99 ms).
    """
    pts = [{"variant": name, "requests_per_answer": round(load, 4), "p99_ms": p99} for name, (load, p99) in points.items()]
    frontier: list[dict[str, Any]] = []
    for pt in sorted(pts, key=lambda p: (p["requests_per_answer"], p["p99_ms"])):
        if not frontier or pt["p99_ms"] < frontier[-1]["p99_ms"]:
            frontier.append(pt)
    curve: dict[str, Any] = {"points": pts, "frontier": frontier}
    auto = strategies.get("hedged auto")
    if auto is not None and frontier:
        load, best = auto["requests_per_answer"], _frontier_at(frontier, auto["requests_per_answer"])
        curve["auto"] = {"requests_per_answer": load, "p99_ms": auto["p99_ms"], "best_fixed_p99_ms": best,
                         "vs_best_fixed": round(auto["p99_ms"] / best, 3) if best else None}
    return curve


def _frontier_at(frontier: list[dict[str, Any]], load: float) -> float | None:
    """The frontier's p99 at ``load``: linear between the points around it (the step below, past its ends)."""
    below = [p for p in frontier if p["requests_per_answer"] <= load]
    above = [p for p in frontier if p["requests_per_answer"] > load]
    if not below:
        return None
    lo = below[-1]
    if not above:
        return float(lo["p99_ms"])
    hi = above[0]
    f = (load - lo["requests_per_answer"]) / (hi["requests_per_answer"] - lo["requests_per_answer"])
    return round(float(lo["p99_ms"] + f * (hi["p99_ms"] - lo["p99_ms"])), 1)
