"""The bench report's renderings: a markdown table, the report folder and a text CDF.

:func:`markdown` renders what :func:`raceway._bench_summary.summarise` (and
the planned or live mode around it) returned; :func:`write_report` writes
``report.md``, ``report.json`` and, when matplotlib is installed, ``cdf.png``;
:func:`terminal_cdf` draws the percentiles on a shared log scale for the
terminal.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ._bench_summary import DEADLINE_MS


def _usd(value: float | None) -> str:
    return "" if value is None else f"${value:.6f}"


def markdown(report: dict[str, Any]) -> str:
    """The report as a markdown table."""
    seed = "" if report.get("seed") is None else f", seed {report['seed']}"  # live races have none
    lines = [
        f"# raceway bench — {report.get('mode', '')}",
        "",
        f"{report.get('requests')} requests per strategy{seed}"
        + (f", {report['concurrency']} in flight, figures from request {report['measured_from']} on"
           if "concurrency" in report else "")
        + f". Caller TTFT in ms (a failed request counts as {DEADLINE_MS} ms).",
        "",
        "| strategy | p50 | p95 | p99 | p99 / oracle | p99 / best single | failures | requests per answer "
        "| wasted tokens per request | cost per answer | wasted cost per request |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def fmt(row: dict[str, Any], name: str) -> str:
        vo = row.get("vs_oracle", {}).get("p99_ms")
        vb = row.get("vs_best_single", {}).get("p99_ms")
        return (
            f"| {name} | {row['p50_ms']:.0f} | {row['p95_ms']:.0f} | {row['p99_ms']:.0f} | "
            f"{'' if vo is None else f'{vo:.2f}'} | {'' if vb is None else f'{vb:.2f}'} | {row['failures']} | "
            f"{row['requests_per_answer']:.3f} | {row['wasted_tokens_per_request']:.1f} | "
            f"{_usd(row.get('cost_per_answer_usd'))} | {_usd(row.get('wasted_usd_per_request'))} |"
        )

    for name, row in report["strategies"].items():
        lines.append(fmt(row, name))
    for name, row in report["singles"].items():
        lines.append(fmt(row, name))
    if "oracle" in report["reference"]:
        o = report["reference"]["oracle"]
        lines.append(f"| oracle | {o['p50_ms']:.0f} | {o['p95_ms']:.0f} | {o['p99_ms']:.0f} | 1.00 | | | | | | |")
    lines += ["", "| strategy | share of wins | share of first attempts | share of attempts |", "|---|---|---|---|"]
    for name, row in report["strategies"].items():
        shares = [" ".join(f"{k} {v:.0%}" for k, v in row.get(key, {}).items())
                  for key in ("win_share", "first_attempt_share", "attempt_share")]
        lines.append(f"| {name} | {' | '.join(shares)} |")
    curve = report.get("hedge_curve")
    if curve:
        lines += ["", "Hindsight-optimal fixed hedge delays (a budget that never binds): the best p99 for each load.",
                  "", "| fixed delay | requests per answer | p99 |", "|---|---:|---:|"]
        lines += [f"| {p['variant']} | {p['requests_per_answer']:.3f} | {p['p99_ms']:.0f} |" for p in curve["frontier"]]
        auto = curve.get("auto")
        if auto:
            lines.append(
                f"| **hedged auto** | {auto['requests_per_answer']:.3f} | {auto['p99_ms']:.0f} "
                f"(best fixed at that load: {auto['best_fixed_p99_ms']}, ratio {auto['vs_best_fixed']}) |"
            )
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, Any], folder: Path, machine: dict[str, Any] | None = None) -> list[Path]:
    """Write ``report.md``, ``report.json`` and, when matplotlib is installed, ``cdf.png``."""
    folder.mkdir(parents=True, exist_ok=True)
    data = {**report, "machine": machine or {}}
    written = [folder / "report.md", folder / "report.json"]
    written[0].write_text(markdown(report))
    slim = json.loads(json.dumps(data))
    for group in ("strategies", "singles"):
        for row in slim[group].values():
            row.pop("cdf_ms", None)
    written[1].write_text(json.dumps(slim, indent=2) + "\n")
    png = _plot_cdf(report, folder / "cdf.png")
    if png is not None:
        written.append(png)
    return written


def _plot_cdf(report: dict[str, Any], path: Path) -> Path | None:
    try:
        import matplotlib  # type: ignore[import-not-found, unused-ignore]

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(8, 5))
    for name, row in {**report["strategies"], **report["singles"]}.items():
        xs = row["cdf_ms"]
        if xs:
            n = report.get("requests") or len(xs)
            ax.step(xs, [(i + 1) / n for i in range(len(xs))], where="post", label=name)
    ax.set_xscale("log")
    ax.set_xlabel("caller time to first token (ms)")
    ax.set_ylabel("fraction of requests answered")
    ax.legend(fontsize=7)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def terminal_cdf(report: dict[str, Any], width: int = 50) -> str:
    """A text CDF: per strategy, a bar per percentile up to p99 on a shared log scale."""
    rows = {**report["strategies"], **report["singles"]}
    hi = max((r["p99_ms"] for r in rows.values()), default=1.0)
    lo = max(1.0, min((r["p50_ms"] for r in rows.values()), default=1.0) / 2)
    span = math.log(hi / lo) if hi > lo else 1.0

    def pos(ms: float) -> int:
        return max(0, min(width - 1, round(math.log(max(ms, lo) / lo) / span * (width - 1))))

    out = [f"{'':18} {lo:.0f} ms{'':>{width - 12}}{hi:.0f} ms"]
    for name, r in rows.items():
        line = [" "] * width
        for key, glyph in (("p50_ms", "5"), ("p95_ms", "9"), ("p99_ms", "!")):
            line[pos(r[key])] = glyph
        p50 = pos(r["p50_ms"])
        for i in range(p50):
            line[i] = "─"
        out.append(f"{name[:18]:18} {''.join(line)}")
    out.append(f"{'':18} 5 = p50, 9 = p95, ! = p99 (log scale)")
    return "\n".join(out)
