"""Configuration, in and out: text -> dict -> models, and models -> YAML/TOML.

Loading goes text -> dict (pyyaml or tomllib, with ``_checks``' guards
against hostile documents) -> models (cattrs, unknown keys forbidden) ->
``_config_check.validate``. Every failure is a :class:`~raceway.ConfigError`
naming the field in JSONPath style. Writing goes models -> dict (defaults
omitted) -> YAML or TOML (tomli-w), so ``load(dump(config)) == config``.
"""

from __future__ import annotations

import datetime
import math
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import attrs
import cattrs
import tomli_w
import yaml
from cattrs.errors import IterableValidationNote
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from ._checks import (
    SchemaError,
    check_document,
    config_error,
    first_error,
    parse_failure,
)
from ._config import (
    PROVIDER_TYPES,
    Config,
    MonitorConfig,
    ProviderDef,
    ProviderRef,
)
from ._config_check import validate
from ._config_providers import not_a_preset
from ._config_providers import preset_definition as preset_definition
from ._fleet_config import redact_url
from ._presets import PRESETS
from ._text import one_line, short_repr, suggestion

# ------------------------------------------------------------- cattrs wiring


#: Whole numbers beyond this lose precision as floats (and overflow the
#: millisecond arithmetic): no setting needs one.
MAX_WHOLE = 2**53


def _whole(value: Any, what: str = "a whole number") -> int:
    # Not int(value): that turns true into 1 and 5.7 into 5 without a word.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SchemaError(f"must be {what}, not {short_repr(value)}")
    if isinstance(value, float) and not value.is_integer():
        raise SchemaError(f"must be {what}, not {value}")
    if abs(value) > MAX_WHOLE:
        raise SchemaError(f"must be {what} of at most {MAX_WHOLE} (2**53)")
    return int(value)


def _make_converter(omit_defaults: bool = True) -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True, omit_if_default=omit_defaults)

    def structure_delay(value: Any, _: Any) -> int | str:
        if value == "auto":
            return "auto"
        return _whole(value, "a whole number of milliseconds or 'auto'")

    conv.register_structure_hook_func(lambda t: t == int | Literal["auto"], structure_delay)
    conv.register_structure_hook_func(
        lambda t: t == int | Literal["auto"] | None, lambda v, _: None if v is None else structure_delay(v, _)
    )

    conv.register_structure_hook(int, lambda value, _: _whole(value))

    def structure_float(value: Any, _: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SchemaError(f"must be a number, not {short_repr(value)}")
        if isinstance(value, int) and abs(value) > MAX_WHOLE:
            raise SchemaError(f"must be a number of at most {MAX_WHOLE} (2**53)")
        number = float(value)
        if not math.isfinite(number):
            raise SchemaError(f"must be a finite number, not {number}")
        return number

    conv.register_structure_hook(float, structure_float)

    def structure_bool(value: Any, _: Any) -> bool:
        if not isinstance(value, bool):
            raise SchemaError(f"must be true or false, not {short_repr(value)}")
        return value

    conv.register_structure_hook(bool, structure_bool)  # (bool is an int: it needs its own hook)

    def structure_str(value: Any, _: Any) -> str:
        # Numbers and dates read from YAML pass as their text (model: 4,
        # anthropic_version: 2023-06-01); a boolean or null is a YAML surprise.
        if isinstance(value, str):
            return value
        if isinstance(value, bool) or value is None:
            hint = " (YAML reads on, off, yes and no as booleans: quote it)" if isinstance(value, bool) else ""
            raise SchemaError(f"must be a string, not {short_repr(value)}{hint}")
        if isinstance(value, int | float | datetime.date):
            return str(value)
        raise SchemaError(f"must be a string, not {type(value).__name__} {short_repr(value)}")

    conv.register_structure_hook(str, structure_str)

    def structure_providers(value: Any, _: Any) -> dict[str, ProviderDef]:
        # The seed's form is a list of names; raceway's is a mapping of
        # name -> definition. Either way a preset name needs no definition.
        if isinstance(value, list):
            for i, name in enumerate(value):
                if not isinstance(name, str):
                    raise SchemaError(f"providers[{i}] must be a provider name, not {short_repr(name)}")
            value = dict.fromkeys(value)
        if not isinstance(value, Mapping):
            raise SchemaError("must be a list of provider names or a mapping of name to definition")
        out: dict[str, ProviderDef] = {}
        errors: list[Exception] = []
        for name, body in value.items():
            try:
                out[str(name)] = _structure_provider(str(name), body)
            except Exception as exc:
                exc.__notes__ = [*getattr(exc, "__notes__", []), _key_note(name)]
                errors.append(exc)
        if errors:
            raise cattrs.IterableValidationError("invalid providers", errors, dict)
        return out

    conv.register_structure_hook_func(lambda t: t == dict[str, ProviderDef], structure_providers)

    def unstructure_provider(value: Any) -> dict[str, Any]:
        d: dict[str, Any] = conv.unstructure(value, unstructure_as=type(value))
        d = {"type": value.type, **d}
        return d

    for cls in PROVIDER_TYPES.values():
        conv.register_unstructure_hook(
            cls,
            make_dict_unstructure_fn(cls, conv, _cattrs_omit_if_default=omit_defaults, type=override(omit=True)),
        )
    conv.register_unstructure_hook_func(lambda t: t == ProviderDef, unstructure_provider)

    def structure_switch(value: Any, _: Any) -> str:
        # YAML 1.1 reads a bare `off` (or `no`, `false`) as False: for the
        # settings whose keyword is "off", that is what the user wrote.
        if value is False:
            return "off"
        if not isinstance(value, str):
            raise SchemaError(f"must be a string ('off', 'auto' or a path), not {short_repr(value)}")
        return value

    ref_fn = make_dict_structure_fn(ProviderRef, conv, _cattrs_forbid_extra_keys=True)

    def structure_ref(value: Any, _: Any) -> ProviderRef:
        # `providers: [openai, groq]` in a virtual model: a bare name is a reference.
        if isinstance(value, str):
            return ProviderRef(name=value)
        if not isinstance(value, Mapping):
            raise SchemaError(f"a provider reference is a name or a mapping with 'name', not {short_repr(value)}")
        return ref_fn(value, ProviderRef)

    conv.register_structure_hook(ProviderRef, structure_ref)
    refs_fn = conv.get_structure_hook(list[ProviderRef])

    def structure_refs(value: Any, _: Any) -> list[ProviderRef]:
        if isinstance(value, str | Mapping):  # a string is iterable too: its letters are no providers
            raise SchemaError(f"must be a list of provider references, not {short_repr(value)}")
        refs: list[ProviderRef] = refs_fn(value, list[ProviderRef])
        return refs

    conv.register_structure_hook_func(lambda t: t == list[ProviderRef], structure_refs)
    switch = override(struct_hook=structure_switch)
    conv.register_structure_hook(
        MonitorConfig, make_dict_structure_fn(MonitorConfig, conv, _cattrs_forbid_extra_keys=True, socket=switch)
    )
    conv.register_structure_hook(
        Config, make_dict_structure_fn(Config, conv, _cattrs_forbid_extra_keys=True, performance_file=switch)
    )
    return conv


def _key_note(name: Any) -> IterableValidationNote:
    # Noted like cattrs notes a dict value, so the path reads $.providers['name'].
    return IterableValidationNote(f"Structuring mapping value @ key {name!r}", name, object)


def _structure_provider(name: str, body: Any) -> ProviderDef:
    if body is None:
        body = {}
    if not isinstance(body, Mapping):
        raise SchemaError(f"provider {name!r} must be a mapping of settings")
    merged = dict(PRESETS.get(name, {}))
    if "type" in body and body["type"] != merged.get("type"):
        merged = {}  # a different type replaces the preset entirely
    merged.update(body)
    kind = merged.get("type")
    if kind is None:
        raise not_a_preset(name)
    cls = PROVIDER_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise SchemaError(
            f"unknown provider type {short_repr(kind)}{suggestion(str(kind), PROVIDER_TYPES)} "
            f"(known: {', '.join(PROVIDER_TYPES)})"
        )
    result: ProviderDef = _converter.structure(merged, cls)
    return result


_converter = _make_converter()
_full_converter = _make_converter(omit_defaults=False)  # for showing the effective config


# ------------------------------------------------------------ load and dump


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate a configuration file (``.yaml``, ``.yml`` or ``.toml``).

    Raises:
        ConfigError: the file is missing, unreadable, not valid YAML/TOML, or
            does not fit the schema; the error names the offending field.
    """
    p = Path(path)
    source = str(p)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise config_error("$", "file not found", source) from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        raise config_error("$", f"cannot read: {getattr(exc, 'strerror', None) or exc}", source) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise config_error(
            "$", f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); save it as UTF-8", source
        ) from None
    if p.suffix.lower() == ".toml":
        return loads_config(text, "toml", source=source)
    return loads_config(text, "yaml", source=source)


def loads_config(text: str, fmt: Literal["yaml", "toml"] = "yaml", *, source: str | None = None) -> Config:
    """Parse and validate configuration text in ``fmt``.

    Raises:
        ConfigError: not valid YAML/TOML, nested too deeply, too large once
            YAML aliases are expanded, or not fitting the schema.
    """
    try:
        if fmt == "toml":
            data: Any = tomllib.loads(text)
        else:
            data = yaml.safe_load(text)
    except tomllib.TOMLDecodeError as exc:
        raise config_error("$", f"invalid TOML: {exc}", source) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise config_error("$", f"invalid YAML{where}: {problem}", source) from None
    except RecursionError as exc:  # both parsers recurse once per nesting level
        raise parse_failure(exc, source) from None
    except ValueError as exc:  # a value the parser cannot build (an int of 5,000 digits)
        raise config_error("$", f"unreadable value: {one_line(exc).partition('; use sys.')[0]}", source) from None
    if data is None:
        data = {}
    return config_from_dict(data, source=source)


def config_from_dict(data: Any, *, source: str | None = None) -> Config:
    """Structure and validate a plain mapping (as parsed from YAML/TOML)."""
    if not isinstance(data, Mapping):
        raise config_error("$", "the top level must be a mapping of settings", source)
    check_document(data, source)
    try:
        config = _converter.structure(dict(data), Config)
    except cattrs.BaseValidationError as exc:
        path, message = first_error(exc)
        raise config_error(path, message, source) from None
    except SchemaError as exc:
        raise config_error("$", str(exc), source) from None
    except Exception as exc:  # a shape no hook expected: still one line, never a traceback
        raise config_error("$", f"invalid configuration ({type(exc).__name__}: {one_line(exc)})", source) from None
    validate(config, source=source)
    return config


def config_to_dict(config: Config, *, defaults: bool = False) -> dict[str, Any]:
    """The configuration as plain data: defaults omitted (what ``convert`` writes),
    or with ``defaults=True`` every setting (what ``config show`` prints; unset
    optional settings are left out, as TOML has no null)."""
    if not defaults:
        data: dict[str, Any] = _converter.unstructure(config)
        return data
    full: dict[str, Any] = _drop_none(_full_converter.unstructure(config))
    return full


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def dumps_config(config: Config, fmt: Literal["yaml", "toml"] = "yaml") -> str:
    """Serialise ``config`` as YAML or TOML text that loads back to an equal config.

    Raises:
        ConfigError: ``fmt`` is TOML and the config holds what TOML cannot
            (a null inside a reference's ``config``).
    """
    return dumps_data(config_to_dict(config), fmt)


def show_config(config: Config, fmt: Literal["yaml", "toml"] = "yaml") -> str:
    """The effective configuration as text (``raceway config show``): every setting,
    the presets its virtual models use spelt out, and no secret values."""
    used = {ref.name for vm in config.virtual_models.values() for ref in vm.providers}
    presets = {name: config.provider(name) for name in sorted(used - set(config.providers))}
    return dumps_data(redacted(attrs.evolve(config, providers={**config.providers, **presets})), fmt)


def dumps_data(data: dict[str, Any], fmt: Literal["yaml", "toml"] = "yaml") -> str:
    """Plain configuration data as YAML or TOML text that reads back to the same data."""
    if fmt == "toml":
        try:
            return tomli_w.dumps(data)
        except (TypeError, ValueError) as exc:
            raise config_error("$", f"cannot be written as TOML: {one_line(exc)}") from None
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    # pyyaml writes a few line-break characters (U+0085, U+2028, U+2029) raw,
    # which do not read back; escaping everything non-ASCII always does.
    if yaml.safe_load(text) != data:
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=False)
    return text


def redacted(config: Config) -> dict[str, Any]:
    """Plain data for display: every setting, defaults included, but no secret values.

    Keys are only ever named by environment variable, but ``headers`` may
    carry tokens, so header values are masked.
    """
    data = config_to_dict(config, defaults=True)
    for body in data.get("providers", {}).values():
        if "headers" in body:
            body["headers"] = {k: "***" for k in body["headers"]}
    if config.redis is not None:
        data["redis"]["url"] = redact_url(config.redis.url)
    return data


def default_config() -> Config:
    """The embedded default: simulated providers with distinct profiles, one model per strategy.

    Works offline; it is what ``raceway demo`` and ``raceway run`` use without ``-c``.
    """
    from importlib.resources import files

    text = files("raceway").joinpath("default_config.yaml").read_text(encoding="utf-8")
    return loads_config(text, "yaml", source="<embedded default>")


