"""The ``raceway`` command line: run, demo, config, stats, bench.

Each subcommand is a small function over the public API. User errors (bad
config, unknown model, missing key) print one line naming what to fix and
exit 2; a race that fails exits 1; never a traceback for either.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import trio
import yaml

from . import __version__
from ._config import Config, default_config, dumps_config, load_config, redacted
from ._engine import open_engine
from ._errors import (
    AllProvidersFailedError,
    ConfigError,
    NoSuchModelError,
    RacewayError,
    StreamInterruptedError,
)
from ._result import RaceResult

EXIT_OK, EXIT_RACE_FAILED, EXIT_USAGE = 0, 1, 2

DEMO_PROMPTS = (
    "Is the sky blue?",
    "Summarise the plot of Hamlet in one line.",
    "Should I hedge my requests?",
    "What is a nursery in trio?",
    "Name a prime larger than 100.",
)


class UsageError(Exception):
    """A command-line mistake: printed as one line, exit 2."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``raceway`` console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        code: int = args.func(args)
        return code
    except (ConfigError, NoSuchModelError, UsageError) as exc:
        _err(f"error: {exc}")
        return EXIT_USAGE
    except (AllProvidersFailedError, StreamInterruptedError) as exc:
        _err(f"race failed: {exc}")
        return EXIT_RACE_FAILED
    except RacewayError as exc:
        _err(f"error: {exc}")
        return EXIT_RACE_FAILED
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except BrokenPipeError:
        return EXIT_OK


def _err(message: str) -> None:
    print(f"raceway: {message}", file=sys.stderr, flush=True)


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
    return p


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def _config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-c", "--config", help="config file (.yaml/.toml); default $RACEWAY_CONFIG, else the embedded default"
    )


def _load(args: argparse.Namespace) -> Config:
    path = args.config or os.environ.get("RACEWAY_CONFIG")
    return load_config(path) if path else default_config()


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
    result: RaceResult = trio.run(_run, config, messages, args.model, params, args.json)
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
        sys.stdout.flush()
    return race.result


def summary_line(result: RaceResult) -> str:
    """One line about a race: winner, caller-visible TTFT, total, what became of the others."""
    others = ", ".join(f"{a.provider} {a.status}" for a in result.attempts if a.status != "won")
    line = (
        f"{result.provider}/{result.model} won · first token {result.ttft_ms:.0f} ms · "
        f"total {result.total_ms:.0f} ms · {result.virtual_model} ({result.strategy})"
    )
    return f"{line} · {others}" if others else line


def _result_json(result: RaceResult) -> dict[str, Any]:
    data = attrs.asdict(result)
    return data


# ------------------------------------------------------------------ demo


def cmd_demo(args: argparse.Namespace) -> int:
    config = _load(args)
    if args.races < 0 or args.concurrency < 1:
        raise UsageError("--races must be 0 or more and --concurrency at least 1")
    if not args.headless:
        _err("the dashboard is not available yet; running headless")
    trio.run(_demo_headless, config, args.races, args.concurrency)
    return EXIT_OK


async def _demo_headless(config: Config, races: int, concurrency: int) -> None:
    async with open_engine(config) as engine:
        models = [m.id for m in engine.models()]
        counter = iter(range(1, races + 1) if races else _forever())

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
            _print_stats(engine.stats())


def _forever() -> Any:
    n = 1
    while True:
        yield n
        n += 1


def _print_stats(stats: dict[str, Any]) -> None:
    print(f"{'provider/model':28} {'races':>6} {'wins':>5} {'fail':>5} {'p50 ttft':>9} {'p95 ttft':>9} {'score':>6}")
    for label, s in sorted(stats.items()):
        p50 = "-" if s.ttft_p50_ms is None else f"{s.ttft_p50_ms:.0f} ms"
        p95 = "-" if s.ttft_p95_ms is None else f"{s.ttft_p95_ms:.0f} ms"
        print(f"{label:28} {s.races:>6} {s.wins:>5} {s.failure_count:>5} {p50:>9} {p95:>9} {s.score:>6.2f}")


# ------------------------------------------------------------------ config


def cmd_config_validate(args: argparse.Namespace) -> int:
    config = load_config(args.file)
    n_models = len(config.virtual_models)
    print(f"{args.file}: valid ({len(config.providers)} providers defined, {n_models} virtual models)")
    return EXIT_OK


def cmd_config_convert(args: argparse.Namespace) -> int:
    config = load_config(args.input)
    out = Path(args.output)
    fmt = _format_of(out)
    out.write_text(dumps_config(config, fmt), encoding="utf-8")
    print(f"wrote {out} ({fmt})")
    return EXIT_OK


def _format_of(path: Path) -> Any:
    suffix = path.suffix.lower()
    if suffix == ".toml":
        return "toml"
    if suffix in (".yaml", ".yml"):
        return "yaml"
    raise UsageError(f"{path}: cannot tell the format; name it .yaml, .yml or .toml")


def cmd_config_init(args: argparse.Namespace) -> int:
    from ._starter import STARTER

    text = STARTER[args.format]
    target = args.output or f"raceway.{args.format}"
    if target == "-":
        sys.stdout.write(text)
        return EXIT_OK
    path = Path(target)
    if path.exists():
        raise UsageError(f"{path} already exists; remove it or choose another file with -o")
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}; check it with: raceway config validate {path}")
    return EXIT_OK


def cmd_config_show(args: argparse.Namespace) -> int:
    config = _load(args)
    # Effective: presets that virtual models use are shown with their settings.
    used = {ref.name for vm in config.virtual_models.values() for ref in vm.providers}
    providers = {name: config.provider(name) for name in sorted(used - set(config.providers))}
    data = redacted(attrs.evolve(config, providers={**config.providers, **providers}))
    if args.format == "toml":
        import tomli_w

        sys.stdout.write(tomli_w.dumps(data))
    else:
        sys.stdout.write(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
