"""Checks on configuration data that do not depend on the schema's particulars.

A configuration file is input from anywhere (a pasted snippet, a generated
file, a hostile one), so before the schema sees it :func:`check_document`
bounds it: nesting depth, size once YAML aliases are expanded (a "billion
laughs" document is a few hundred bytes that expand to gigabytes when
``config show`` walks it), and mapping keys that are strings (YAML 1.1 reads
``on:`` as ``True``, ``1:`` as an int, ``~:`` as None). After structuring,
:func:`check_values` walks the models: every numeric field declares its
allowed :class:`Range` in its attrs metadata (a test checks that none is
missing), and no string holds a NUL byte (no file system, socket or HTTP
header takes one) except free text (:func:`free_text`: an answer, a
description, parameters passed through as JSON). :func:`first_error` turns cattrs' nested errors into one
path and one message, unknown keys first and with a "did you mean".

Errors are ``(path, message)`` pairs or :class:`~raceway.ConfigError`; the
text is escaped (:func:`raceway._text.escaped`) so it stays on one line.
"""

from __future__ import annotations

import math
import re
import typing
from collections.abc import Mapping
from typing import Any

import attrs
from attrs import frozen
from cattrs.errors import (
    BaseValidationError,
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
)

from ._errors import ConfigError
from ._text import escaped, suggestion

#: Nesting levels a document may have. raceway's own schema needs six; a
#: provider's ``config`` (JSON schemas for structured output) a few dozen.
MAX_DEPTH = 64
#: Values (mappings, lists, scalars) a document may hold once YAML aliases are
#: expanded: a hundred times a large real configuration.
MAX_VALUES = 100_000
#: The attrs metadata key under which a numeric field declares its range.
RANGE = "raceway.range"
#: The attrs metadata key of fields holding free text or pass-through data (no NUL check).
FREE_TEXT = "raceway.free_text"
#: Mapping-valued settings whose keys are names, not setting keys (paths read ``['name']``).
NAMED_ENTRIES = frozenset({"providers", "virtual_models", "headers", "config"})


def config_error(path: str, message: str, source: str | None = None) -> ConfigError:
    """A :class:`ConfigError` whose every part is escaped onto one line."""
    return ConfigError(escaped(path), escaped(message), None if source is None else escaped(source))


# ---------------------------------------------------------------- the raw document


def check_document(data: Any, source: str | None = None) -> None:
    """Bound a parsed document before the schema sees it.

    Raises:
        ConfigError: it nests deeper than :data:`MAX_DEPTH`, holds more than
            :data:`MAX_VALUES` values once aliases are expanded, or has a
            mapping key that is not a string.
    """
    # Iterative, and it stops at the first problem: a document that expands
    # forever costs MAX_VALUES steps, not forever.
    stack: list[tuple[Any, tuple[Any, ...]]] = [(data, ())]
    seen = 0
    while stack:
        value, where = stack.pop()
        seen += 1
        if seen > MAX_VALUES:
            raise config_error(
                "$",
                f"the document is too large: more than {MAX_VALUES:,} values once its aliases are expanded",
                source,
            )
        if len(where) > MAX_DEPTH:
            raise config_error(_path(where), f"nested more than {MAX_DEPTH} levels deep", source)
        if isinstance(value, Mapping):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise config_error(_path(where), _key_problem(key), source)
                stack.append((item, (*where, key)))
        elif isinstance(value, list | tuple):
            stack.extend((item, (*where, i)) for i, item in enumerate(value))


def _path(where: tuple[Any, ...]) -> str:
    parts = ["$"]
    parent: Any = None
    for step in where:
        if isinstance(step, int):
            parts.append(f"[{step}]")
        elif parent in NAMED_ENTRIES or not step.isidentifier():
            parts.append(f"[{step!r}]")
        else:
            parts.append(f".{step}")
        parent = step
    return "".join(parts)


def _key_problem(key: Any) -> str:
    if isinstance(key, bool):
        return (
            f"a key reads as the boolean {str(key).lower()}: YAML takes on, off, yes and no for true "
            "and false; quote the key (\"on\")"
        )
    if key is None:
        return "a key reads as null (~ or nothing): quote the key, or remove it"
    return f"the key {key!r} is a {type(key).__name__}, not a string: quote it (\"{key}\")"


def parse_failure(exc: RecursionError, source: str | None) -> ConfigError:
    """The error for a document the YAML/TOML parser could not even nest (it recursed too deep)."""
    return config_error("$", f"nested too deeply to read (more than {MAX_DEPTH} levels are not allowed)", source)


# ---------------------------------------------------------------- ranges


@frozen
class Range:
    """The values a numeric setting allows: ``low``/``high`` bounds, each inclusive unless open.

    ``what`` is how the message words it ("a positive number of
    milliseconds"). An empty ``Range()`` says "any number" explicitly (a
    seed, a priority); NaN and infinities are never allowed.
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    what: str = ""

    def problem(self, value: float) -> str | None:
        """Why ``value`` is out of range, or ``None`` when it is allowed."""
        if isinstance(value, float) and not math.isfinite(value):
            return f"must be a finite number, not {value}"
        low, high = self.low, self.high
        too_low = low is not None and (value <= low if self.low_open else value < low)
        too_high = high is not None and value > high
        if not (too_low or too_high):
            return None
        return f"must be {self.what or self._words()}, not {value:g}"

    def _words(self) -> str:
        if self.low is not None and self.high is not None:
            return f"between {self.low:g} and {self.high:g}"
        if self.low is not None:
            return f"more than {self.low:g}" if self.low_open else f"{self.low:g} or more"
        return f"{self.high:g} or less"


def ranged(default: Any, allowed: Range) -> Any:
    """An attrs field with ``default`` whose numeric value must be in ``allowed``."""
    return attrs.field(default=default, metadata={RANGE: allowed})


def free_text(default: str = "") -> Any:
    """An attrs field of free text: any character is fine there."""
    return attrs.field(default=default, metadata={FREE_TEXT: True})


def check_values(obj: Any, path: str, fail: Any) -> None:
    """Walk the models from ``obj``: every declared :class:`Range` holds, no string has a NUL.

    ``fail(path, message)`` raises.
    """
    if attrs.has(type(obj)):
        for f in attrs.fields(type(obj)):
            if f.metadata.get(FREE_TEXT):
                continue
            value = getattr(obj, f.name)
            where = f"{path}.{f.name}"
            allowed = f.metadata.get(RANGE)
            if allowed is not None and isinstance(value, int | float) and not isinstance(value, bool):
                problem = allowed.problem(value)
                if problem:
                    fail(where, problem)
            check_values(value, where, fail)
    elif isinstance(obj, Mapping):
        for key, value in obj.items():
            where = f"{path}[{key!r}]"
            if isinstance(key, str) and "\x00" in key:
                fail(where, "the key contains a NUL byte")
            check_values(value, where, fail)
    elif isinstance(obj, list | tuple):
        for i, value in enumerate(obj):
            check_values(value, f"{path}[{i}]", fail)
    elif isinstance(obj, str) and "\x00" in obj:
        fail(path, "contains a NUL byte (\\x00), which no file name, socket path or header can hold")


# ---------------------------------------------------------------- secrets in the wrong place


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
#: How API keys of well-known services begin (OpenAI, Anthropic, Groq, xAI,
#: Google, Hugging Face, GitHub, Replicate, Perplexity, NVIDIA, Fireworks, Cerebras).
_KEY_PREFIXES = ("sk-", "sk_", "gsk_", "xai-", "AIza", "hf_", "ghp_", "github_pat_", "r8_", "pplx-", "nvapi-", "fw_", "csk-")


def env_name_problem(value: str) -> str | None:
    """Why ``value`` cannot be the *name* of an environment variable holding a key, or ``None``.

    The message never repeats ``value``: what was pasted there may be the key itself.
    """
    if _looks_like_key(value):
        return (
            "this looks like an API key, not the name of an environment variable: put the key in a "
            "variable (export MY_KEY=...) and name the variable here; the value is not shown"
        )
    if not _ENV_NAME.match(value):
        return (
            "must be the name of an environment variable (letters, digits and _, not starting with "
            "a digit), e.g. OPENAI_API_KEY; the value is not shown"
        )
    return None


def _looks_like_key(value: str) -> bool:
    if value.startswith(_KEY_PREFIXES) and len(value) >= 16:
        return True
    # Names of variables are words in one case joined by _; keys are long
    # random runs: mixed case with digits, or hex/base64 without separators.
    digit = any(c.isdigit() for c in value)
    mixed = any(c.islower() for c in value) and any(c.isupper() for c in value)
    return (len(value) >= 20 and digit and mixed) or (len(value) >= 32 and digit and "_" not in value)


# ---------------------------------------------------------------- cattrs' errors


class SchemaError(ValueError):
    """A schema problem whose message is already meant for the user."""


def first_error(exc: BaseValidationError, path: str = "$") -> tuple[str, str]:
    """The path and message of the first problem in a cattrs validation error.

    Unknown keys come first (a misspelt key also makes the right one
    "missing"), named at the key itself with a suggestion.
    """
    found = _errors(exc, path)
    found.sort(key=lambda e: not e[2])
    where, message, _ = found[0]
    return where, message


def _errors(exc: BaseException, path: str, expected: Any = None) -> list[tuple[str, str, bool]]:
    if isinstance(exc, IterableValidationError):
        noted, plain = exc.group_exceptions()
        pairs = [(e, f"{path}[{note.index!r}]", note.type) for e, note in noted]
    elif isinstance(exc, ClassValidationError):
        noted_attrs, plain = exc.group_exceptions()
        pairs = [(e, f"{path}.{note.name}", note.type) for e, note in noted_attrs]
    else:
        return [_one(exc, path, expected)]
    out = [item for e in plain for item in _errors(e, path)]
    for e, where, type_ in pairs:
        out.extend(_errors(e, where, type_))
    return out


def _one(exc: BaseException, path: str, expected: Any) -> tuple[str, str, bool]:
    if isinstance(exc, ForbiddenExtraKeysError):
        known = [f.name for f in attrs.fields(exc.cl)] if attrs.has(exc.cl) else []
        unknown = sorted(map(str, exc.extra_fields))
        keys = ", ".join(escaped(k) + suggestion(k, known) for k in unknown)
        return path, f"unknown key(s): {keys}", True
    if isinstance(exc, SchemaError):
        return path, str(exc), False
    if isinstance(exc, KeyError):
        return path, "required field is missing", False
    if isinstance(exc, TypeError | AttributeError | ValueError):
        # cattrs met a value of the wrong shape: say which shape was expected.
        origin = typing.get_origin(expected) or expected
        if attrs.has(origin) or origin in (dict, Mapping):
            return path, "must be a mapping of settings", False
        if origin in (list, tuple):
            return path, "must be a list", False
    return path, f"invalid value ({type(exc).__name__})", False
