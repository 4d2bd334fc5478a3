"""The ``raceway`` subcommands over files that race nothing: ``config …`` and ``stats``.

``config validate|convert|init|show`` check, convert, create and print a
configuration; ``stats`` prints the performance file as a table. A file that
cannot be written is a :class:`~raceway._cli_common.UsageError`; an
unreadable performance file is a warning, never fatal.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from ._cli_common import EXIT_OK, UsageError, _load, _warn
from ._config_io import dumps_config, load_config, show_config
from ._text import plural

# ------------------------------------------------------------------ config


def cmd_config_validate(args: argparse.Namespace) -> int:
    config = load_config(args.file)
    config.resolve(None)  # legacy mode: every provider needs a model of its own
    defined = plural(len(config.providers), "provider")
    print(f"{args.file}: valid ({defined} defined, {plural(len(config.virtual_models), 'virtual model')})")
    return EXIT_OK


def cmd_config_convert(args: argparse.Namespace) -> int:
    config = load_config(args.input)
    out = Path(args.output)
    fmt = _format_of(out)
    _write(out, dumps_config(config, fmt))
    print(f"wrote {out} ({fmt})")
    return EXIT_OK


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{path}: cannot write: {exc.strerror or exc}") from None


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
    _write(path, text)
    print(f"wrote {path}; check it with: raceway config validate {path}")
    return EXIT_OK


def cmd_config_show(args: argparse.Namespace) -> int:
    sys.stdout.write(show_config(_load(args), args.format))
    return EXIT_OK


# ------------------------------------------------------------------ stats


def cmd_stats(args: argparse.Namespace) -> int:
    from ._persist import (
        NewerSchema,
        UnreadableFile,
        performance_path,
        stats_from_file,
        stats_table,
    )

    config = _load(args)
    path = performance_path(config.performance_file)
    # A named config (-c or RACEWAY_CONFIG) shows its own participants; --all, or no config, the whole file.
    named = bool(args.config or os.environ.get("RACEWAY_CONFIG"))
    if path is None:
        print("performance_file is off in this configuration")
    elif not path.exists():
        print(f"no statistics yet ({path} does not exist)")
    else:
        try:
            stats = stats_from_file(path)
        except NewerSchema as exc:
            _warn(f"{path} was written by a newer raceway ({exc}); upgrade raceway to read it")
            return EXIT_OK
        except (UnreadableFile, OSError) as exc:
            # Never fatal: the next engine sets the file aside and starts fresh.
            _warn(f"{path} is unreadable ({exc}); the next engine will set it aside and start fresh")
            return EXIT_OK
        if named and not args.all:
            models: list[str | None] = [*config.virtual_models] or [None]
            labels = {p.label for m in models for p in config.resolve(m).participants}
            stats = {k: v for k, v in stats.items() if k in labels}
        print(f"{path}\n{stats_table(stats)}")
    return EXIT_OK
