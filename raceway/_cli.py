"""The ``raceway`` command line: its parser and dispatch, and the commands that race here.

Each subcommand is a small function over the public API. User errors (bad
config, unknown model, missing key) print one line naming what to fix and
exit 2; a race that fails exits 1; never a traceback for either. Every line
on stderr that is not a result starts ``raceway: ``; every error reads ``raceway: error: …`` (as
argparse's own do), whether the config, the race or the command line failed;
the library's log warnings print as one line each. Commands that run
until stopped go through :func:`raceway._exits.run_stoppable`: SIGINT and
SIGTERM end them cleanly (statistics saved, sockets removed) with exit 0, or
130 for Ctrl-C.

This module owns :func:`main`, the parser, the mapping of errors to exit
codes, and the commands that run an engine in this process: ``run``,
``demo`` (headless; its dashboard front is :mod:`raceway._cli_dashboard`)
and ``serve``. The rest live beside it: :mod:`raceway._cli_common` (exit
codes, stderr lines, ``-c``), :mod:`raceway._cli_files` (``config …``,
``stats``) and :mod:`raceway._cli_bench` (``bench``); their names stay
importable from here.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

import attrs
import trio

from . import __version__
from ._cli_bench import cmd_bench
from ._cli_common import (
    EXIT_OK,
    EXIT_RACE_FAILED,
    EXIT_USAGE,
    UsageError,
    _config_arg,
    _err,
    _error,
    _load,
    _log_to_stderr,
    _usage,
)
from ._cli_common import _StderrHandler as _StderrHandler
from ._cli_common import _warn as _warn
from ._cli_dashboard import _demo_with_dashboard
from ._cli_dashboard import _stop_child as _stop_child
from ._cli_dashboard import _terminal_restored as _terminal_restored
from ._cli_files import _format_of as _format_of
from ._cli_files import _write as _write
from ._cli_files import (
    cmd_config_convert,
    cmd_config_init,
    cmd_config_show,
    cmd_config_validate,
    cmd_stats,
)
from ._config import Config
from ._engine import open_engine
from ._errors import (
    AllProvidersFailedError,
    ConfigError,
    MissingAPIKeyError,
    NoSuchModelError,
    RacewayError,
    StreamInterruptedError,
)
from ._exits import SigtermInterrupts, Stopped, run_stoppable, sigterm_interrupts
from ._result import AttemptRecord, RaceResult

DEMO_PROMPTS = (
    "Is the sky blue?",
    "Summarise the plot of Hamlet in one line.",
    "Should I hedge my requests?",
    "What is a nursery in trio?",
    "Name a prime larger than 100.",
)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``raceway`` console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    _log_to_stderr()
    with sigterm_interrupts() as interrupts:
        return _dispatch(args, interrupts)


def _dispatch(args: argparse.Namespace, interrupts: SigtermInterrupts) -> int:
    try:
        code: int = args.func(args)
        return code
    except (ConfigError, NoSuchModelError, UsageError) as exc:
        _error(str(exc))
        return EXIT_USAGE
    except AllProvidersFailedError as exc:
        _error(str(exc))
        if exc.errors and all(isinstance(e, MissingAPIKeyError) for e in exc.errors.values()):
            return EXIT_USAGE  # nothing raced: a setup mistake, not a failed race
        return EXIT_RACE_FAILED
    except (StreamInterruptedError, RacewayError) as exc:
        _error(str(exc))
        return EXIT_RACE_FAILED
    except Stopped as exc:
        if exc.signum == signal.SIGINT:
            _err("interrupted")
        return exc.exit_status
    except KeyboardInterrupt:
        if not interrupts.terminated:
            _err("interrupted")
        return interrupts.exit_status
    except BrokenPipeError:
        return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="raceway", description="Race LLM providers: the first good answer wins."
    )
    p.add_argument("--version", action="version", version=f"raceway {__version__}")
    sub = p.add_subparsers(metavar="COMMAND")

    run = sub.add_parser("run", help="race one prompt and stream the winner's answer")
    _config_arg(run)
    run.add_argument("-m", "--model", help="virtual model (default: the config's default_virtual_model)")
    run.add_argument("--json", action="store_true", help="print the whole result as JSON instead of streaming")
    run.add_argument("-s", "--system", help="a system prompt")
    run.add_argument("--temperature", type=float)
    run.add_argument("--max-tokens", type=int)
    run.add_argument("prompt", nargs="?", help="the prompt ('-' or nothing: read standard input)")
    run.set_defaults(func=cmd_run)

    demo = sub.add_parser("demo", help="race continuously on the embedded default (or -c FILE)")
    _config_arg(demo)
    demo.add_argument("--headless", action="store_true", help="print each race instead of opening the dashboard")
    demo.add_argument("--races", type=int, default=0, help="stop after N races (default: run until interrupted)")
    demo.add_argument("--concurrency", type=int, default=3, help="races in flight at once (default 3)")
    demo.add_argument("--quiet", action="store_true", help="with --headless: print nothing per race")
    demo.add_argument("--monitor-socket", metavar="PATH", help="serve the monitor on PATH (monitor.socket)")
    demo.set_defaults(func=cmd_demo)

    cfg = sub.add_parser("config", help="validate, convert, create or show a configuration")
    csub = cfg.add_subparsers(metavar="ACTION")
    v = csub.add_parser("validate", help="check a config file")
    v.add_argument("file")
    v.set_defaults(func=cmd_config_validate)
    c = csub.add_parser("convert", help="convert YAML <-> TOML (by the files' extensions)")
    c.add_argument("input")
    c.add_argument("output")
    c.set_defaults(func=cmd_config_convert)
    i = csub.add_parser("init", help="write a commented starter config")
    i.add_argument("--format", choices=("yaml", "toml"), default="yaml")
    i.add_argument("-o", "--output", help="file to write (default raceway.yaml/.toml; '-' for stdout)")
    i.set_defaults(func=cmd_config_init)
    s = csub.add_parser("show", help="print the effective config, secrets redacted")
    _config_arg(s)
    s.add_argument("--format", choices=("yaml", "toml"), default="yaml")
    s.set_defaults(func=cmd_config_show)
    cfg.set_defaults(func=lambda a: _usage(cfg))

    bench = sub.add_parser("bench", help="compare strategies on the embedded profiles or your config")
    _config_arg(bench)
    bench.add_argument("-m", "--model", help="whose providers to compare (default: the default virtual model)")
    bench.add_argument("--requests", type=int, default=0, help="requests per strategy (default 2000 planned, 20 live)")
    bench.add_argument("--seed", type=int, default=1, help="seed of the planned draws (default 1)")
    bench.add_argument("--concurrency", type=int, default=2, help="live mode: races in flight at once")
    bench.add_argument("--out", help="results folder (default ./raceway-bench-<time>)")
    bench.add_argument("--no-sweep", action="store_true", help="skip the hedge delay sweep")
    bench.add_argument("--yes", action="store_true", help="live mode: do not ask before sending requests")
    bench.add_argument("--scenario", help="planned: one of the learning scenarios (identical, one_fast, heavy_tail, one_bad)")
    bench.set_defaults(func=cmd_bench)

    serve = sub.add_parser("serve", help="serve the OpenAI/Anthropic-compatible racing gateway over HTTP")
    _config_arg(serve)
    serve.add_argument("--host", help="address to listen on (default serve.host: 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default serve.port: 8765; 0: any free one)")
    serve.set_defaults(func=cmd_serve)

    stats = sub.add_parser("stats", help="print the performance file as a table")
    _config_arg(stats)
    stats.add_argument("--all", action="store_true", help="every provider/model in the file, not only the config's")
    stats.set_defaults(func=cmd_stats)
    return p


# ------------------------------------------------------------------ run


def cmd_run(args: argparse.Namespace) -> int:
    config = _load(args)
    prompt = args.prompt
    if prompt is None or prompt == "-":
        if sys.stdin.isatty() and prompt is None:
            raise UsageError("give a prompt, or '-' to read it from standard input")
        prompt = sys.stdin.read()
    if not prompt.strip():
        raise UsageError("the prompt is empty")
    messages: list[dict[str, Any]] = []
    if args.system:
        messages.append({"role": "system", "content": args.system})
    messages.append({"role": "user", "content": prompt})
    params = {k: v for k, v in (("temperature", args.temperature), ("max_tokens", args.max_tokens)) if v is not None}
    config = attrs.evolve(config, monitor=attrs.evolve(config.monitor, socket="off"))
    result: RaceResult = run_stoppable(_run, config, messages, args.model, params, args.json)
    if args.json:
        print(json.dumps(_result_json(result), indent=2))
    _err(summary_line(result))
    return EXIT_OK


async def _run(
    config: Config, messages: list[dict[str, Any]], model: str | None, params: dict[str, Any], quiet: bool
) -> RaceResult:
    wrote = False
    async with open_engine(config) as engine, engine.stream(messages, model, **params) as race:
        async for chunk in race:
            if not quiet and chunk.text:
                sys.stdout.write(chunk.text)
                sys.stdout.flush()
                wrote = True
    if wrote:
        sys.stdout.write("\n")
    if not quiet:  # the tool calls the answer makes, one readable line each, after its text
        for call in race.result.tool_calls:
            sys.stdout.write(f"→ {call.name}({call.arguments})\n")
    sys.stdout.flush()
    return race.result


def summary_line(result: RaceResult) -> str:
    """One line about a race: winner, caller-visible TTFT, total, what became of the others
    (with each failure's reason: ``openai failed (set OPENAI_API_KEY)``)."""
    others = ", ".join(_fate(a) for a in result.attempts if a.status != "won")
    line = (
        f"{result.provider}/{result.model} won · first token {result.ttft_ms:.0f} ms · "
        f"total {result.total_ms:.0f} ms · {result.virtual_model} ({result.strategy})"
    )
    return f"{line} · {others}" if others else line


#: Characters of an attempt's error a summary line quotes.
REASON_LIMIT = 80


def _fate(a: AttemptRecord) -> str:
    if not a.error or a.status in ("lost", "cancelled"):
        return f"{a.provider} {a.status}"
    return f"{a.provider} {a.status} ({_reason(a.error, a.error_kind)})"


def _reason(error: str, kind: str | None) -> str:
    if kind == "missing_key" and "environment variable " in error:
        return "set " + error.rpartition("environment variable ")[2]  # the variable's name
    return error if len(error) <= REASON_LIMIT else error[: REASON_LIMIT - 1] + "…"


def _result_json(result: RaceResult) -> dict[str, Any]:
    data = attrs.asdict(result)
    return data


# ------------------------------------------------------------------ demo


def cmd_demo(args: argparse.Namespace) -> int:
    config = _load(args)
    if args.races < 0 or args.concurrency < 1:
        raise UsageError("--races must be 0 or more and --concurrency at least 1")
    if not args.headless and not (sys.stdin.isatty() and sys.stdout.isatty()):
        _err("no terminal to show the dashboard in; running headless")
        args.headless = True
    if not args.headless:
        return _demo_with_dashboard(args)
    if args.monitor_socket:
        config = attrs.evolve(config, monitor=attrs.evolve(config.monitor, socket=args.monitor_socket))
    # --quiet sends the per-race lines to /dev/null (the demo's child engine is
    # watched through the dashboard); _demo_headless itself stays as it is.
    with open(os.devnull, "w") if args.quiet else contextlib.nullcontext(sys.stdout) as out:
        with contextlib.redirect_stdout(out):
            run_stoppable(_demo_headless, config, args.races, args.concurrency)
    return EXIT_OK


async def _demo_headless(config: Config, races: int, concurrency: int) -> None:
    async with open_engine(config) as engine:
        if engine.monitor_socket is not None:  # so users can attach (issue 4)
            print(f"monitor: {engine.monitor_socket}", file=sys.stderr, flush=True)
        models = [m.id for m in engine.models()]
        counter = iter(range(1, races + 1)) if races else itertools.count(1)

        async def worker() -> None:
            for n in counter:
                model = models[n % len(models)]
                prompt = DEMO_PROMPTS[n % len(DEMO_PROMPTS)]
                try:
                    result = await engine.complete([{"role": "user", "content": prompt}], model=model)
                    print(f"#{n:<4} {summary_line(result)}", flush=True)
                except (AllProvidersFailedError, StreamInterruptedError) as exc:
                    print(f"#{n:<4} {model}: race failed: {exc}", flush=True)

        async with trio.open_nursery() as nursery:
            for _ in range(concurrency):
                nursery.start_soon(worker)
        if races:
            _print_stats(engine.stats(this_run=True))  # this run's races, not the file's lifetime


def _print_stats(stats: dict[str, Any]) -> None:
    print(f"{'provider/model':28} {'races':>6} {'wins':>5} {'fail':>5} {'p50 ttft':>9} {'p95 ttft':>9} {'score':>6}")
    for label, s in sorted(stats.items()):
        p50 = "-" if s.ttft_p50_ms is None else f"{s.ttft_p50_ms:.0f} ms"
        p95 = "-" if s.ttft_p95_ms is None else f"{s.ttft_p95_ms:.0f} ms"
        print(f"{label:28} {s.races:>6} {s.wins:>5} {s.failure_count:>5} {p50:>9} {p95:>9} {s.score:>6.2f}")


# ------------------------------------------------------------------ serve


def cmd_serve(args: argparse.Namespace) -> int:
    """The gateway until SIGINT/SIGTERM: it drains in-flight requests, then stops (0, or 130 on Ctrl-C)."""
    from ._gateway import run_gateway

    config = _load(args)
    if args.port is not None and not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be between 0 and 65535, not {args.port}")
    # The drain ends the run by itself; grace_s is the backstop after it.
    run_stoppable(run_gateway, config, args.host, args.port, grace_s=config.serve.drain_timeout_s + 2.0)
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
