"""Checking a request's JSON fields, with 400s that name the field.

Both APIs answer a malformed request with 400 and a message that names the
parameter (OpenAI also sets ``param``). The gateway checks every field it
reads or passes on before a race starts, so a caller mistake never reaches
a provider and never counts against one.
"""

from __future__ import annotations

from typing import Any

from ._exchange import ApiError, bad_request

_NAMES: dict[str, tuple[type | tuple[type, ...], str]] = {
    "string": (str, "a string"),
    "integer": (int, "an integer"),
    "number": ((int, float), "a number"),
    "boolean": (bool, "a boolean"),
    "object": (dict, "an object"),
    "array": (list, "an array"),
}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def wrong_type(path: str, expected: str, value: Any) -> ApiError:
    return bad_request(path, f"Invalid type for '{path}': expected {expected}, but got {_json_type(value)} instead.")


def check(value: Any, path: str, *kinds: str, nullable: bool = False) -> Any:
    """``value`` when it is of one of ``kinds`` (JSON type names), else a 400 naming ``path``."""
    if value is None and nullable:
        return value
    for kind in kinds:
        types, _ = _NAMES[kind]
        # JSON has no separate booleans among numbers: true is not 1 here.
        if isinstance(value, types) and not (isinstance(value, bool) and kind != "boolean"):
            return value
    expected = " or ".join(_NAMES[k][1] for k in kinds)
    raise wrong_type(path, expected, value)


def field(body: dict[str, Any], name: str, *kinds: str, prefix: str = "") -> Any:
    """``body[name]`` checked with :func:`check` (``None`` when absent or null)."""
    value = body.get(name)
    if value is None:
        return None
    return check(value, prefix + name, *kinds)


def required(body: dict[str, Any], name: str, *kinds: str, prefix: str = "") -> Any:
    """``body[name]``, which must be present: a 400 ``Missing required parameter`` if not."""
    if body.get(name) is None:
        raise bad_request(prefix + name, f"Missing required parameter: '{prefix}{name}'.")
    return check(body[name], prefix + name, *kinds)


def one_of(value: Any, path: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        options = ", ".join(f"'{c}'" for c in choices)
        raise bad_request(path, f"Invalid value for '{path}': {value!r}. Supported values are: {options}.")
    return value


def json_body(raw: bytes) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 saying what is wrong with it."""
    import json

    if not raw.strip():
        raise bad_request(None, "The request body is empty: send a JSON object.")
    try:
        body = json.loads(raw)
    except UnicodeDecodeError:
        raise bad_request(None, "The request body is not UTF-8 JSON.") from None
    except ValueError as exc:
        raise bad_request(None, f"The request body is not valid JSON: {exc}.") from None
    if not isinstance(body, dict):
        raise bad_request(None, f"The request body must be a JSON object, not {_json_type(body)}.")
    return body


__all__ = ["ApiError", "check", "field", "json_body", "one_of", "required", "wrong_type"]
