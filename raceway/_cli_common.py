"""What every ``raceway`` subcommand shares: exit codes, :class:`UsageError`, stderr lines, ``-c``.

Every line on stderr that is not a result starts ``raceway: `` (:func:`_err`);
errors read ``raceway: error: …`` and warnings ``raceway: warning: …``. The
library's log records print the same way, one line each (:func:`_log_to_stderr`).
``-c/--config`` names the config a command reads (:func:`_load`: else
``$RACEWAY_CONFIG``, else the embedded default).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from ._config import Config
from ._config_io import default_config, load_config

EXIT_OK, EXIT_RACE_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A command-line mistake: printed as one line, exit 2."""


def _err(message: str) -> None:
    """A note on stderr: ``raceway: message``."""
    print(f"raceway: {message}", file=sys.stderr, flush=True)


def _error(message: str) -> None:
    _err(f"error: {message}")


def _warn(message: str) -> None:
    _err(f"warning: {message}")


class _StderrHandler(logging.Handler):
    """The library's log records as ``raceway: …`` lines on the current ``sys.stderr``:
    one line each, never a traceback (what Python's last-resort handler would add)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            lines = record.getMessage().removeprefix("raceway: ").splitlines()
            _err(lines[0] if lines else record.levelname.lower())
        except Exception:
            self.handleError(record)


def _log_to_stderr() -> None:
    logger = logging.getLogger("raceway")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler(logging.WARNING)
        logger.addHandler(handler)


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
