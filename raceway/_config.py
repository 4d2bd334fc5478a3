"""Configuration: the schema as attrs models, loading (YAML/TOML), validation, writing.

One schema serves both formats. Loading goes text -> dict (pyyaml or tomllib)
-> models (cattrs, unknown keys forbidden) -> :func:`validate` (the checks the
seed never made). Every failure is a :class:`~raceway.ConfigError` naming the
field in JSONPath style. Writing goes models -> dict (defaults omitted) ->
YAML or TOML (tomli-w), so ``load(dump(config)) == config``.

Resolution lives here too: :meth:`Config.resolve` turns a virtual model name
into a :class:`ResolvedModel` — the effective race settings and each
participant's provider definition — so the engine never re-reads raw config.
"""

from __future__ import annotations

import importlib
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeAlias

import cattrs
import tomli_w
import yaml
from attrs import field, frozen
from cattrs.errors import IterableValidationNote
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from ._errors import ConfigError, NoSuchModelError
from ._presets import PRESETS

BUILTIN_STRATEGIES = ("first_wins", "weighted", "quality", "hedged")

# Defaults. The seed's example uses a 5 s deadline and a 1 s grace; a shorter
# default grace keeps losers' billed tokens low while still measuring them.
DEFAULT_TIMEOUT_MS = 10_000
DEFAULT_GRACE_MS = 250
DEFAULT_IDLE_TIMEOUT_MS = 30_000
DEFAULT_MAX_EXTRA_LOAD = 0.1
DEFAULT_ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_ANTHROPIC_MAX_TOKENS = 4096


# ---------------------------------------------------------------- the models


@frozen(kw_only=True)
class HedgeConfig:
    """When ``hedged`` starts its next attempt, and how much extra load it may add.

    ``delay_ms`` is a number of milliseconds or ``"auto"``: the running
    provider's observed TTFT at the ``1 - max_extra_load`` quantile (p90 for
    0.1; kept between p75 and p99), so about the budget's share of races
    hedge. ``max_extra_load`` caps hedge attempts as a fraction of races (0.1:
    at most one extra request per ten races, plus a reserve of two).
    """

    delay_ms: int | Literal["auto"] = "auto"
    max_extra_load: float = DEFAULT_MAX_EXTRA_LOAD


@frozen(kw_only=True)
class HedgeOverride:
    """A virtual model's ``hedge``: each key it sets overrides the top-level one."""

    delay_ms: int | Literal["auto"] | None = None
    max_extra_load: float | None = None

    def over(self, base: HedgeConfig) -> HedgeConfig:
        return HedgeConfig(
            delay_ms=base.delay_ms if self.delay_ms is None else self.delay_ms,
            max_extra_load=base.max_extra_load if self.max_extra_load is None else self.max_extra_load,
        )


def _as_override(hedge: HedgeOverride | HedgeConfig | None) -> HedgeOverride | None:
    """A full :class:`HedgeConfig` given for a virtual model overrides both keys."""
    if isinstance(hedge, HedgeConfig):
        return HedgeOverride(delay_ms=hedge.delay_ms, max_extra_load=hedge.max_extra_load)
    return hedge


@frozen(kw_only=True)
class MonitorConfig:
    """The live monitor socket: a path, ``auto`` (per-user default) or ``off``."""

    socket: str = "auto"


@frozen(kw_only=True)
class HttpConfig:
    """The engine's pooled HTTP client: connection limits and connect timeout."""

    max_connections: int = 100
    max_keepalive_connections: int = 20
    keepalive_expiry_s: float = 30.0
    connect_timeout_ms: int = 5_000


def _serve_setting(check: Any, rule: str) -> Any:
    """An attrs validator whose message names the field (its path stops at ``$.serve``)."""

    def validator(_: Any, attribute: Any, value: Any) -> None:
        if not check(value):
            raise _SchemaError(f"{attribute.name} {rule}, not {value!r}")

    return validator


@frozen(kw_only=True)
class ServeConfig:
    """``raceway serve``: where it listens, who may call it, what it accepts.

    ``api_keys_env`` names an environment variable holding comma-separated
    gateway keys; when set, ``/v1/...`` needs one of them (``Authorization:
    Bearer KEY`` or ``x-api-key: KEY``). ``max_body_bytes`` caps a request
    body (413 beyond it; Anthropic's own limit, 32 MB, by default).
    ``drain_timeout_s`` is how long SIGINT/SIGTERM wait for in-flight
    requests before stopping them.
    """

    host: str = "127.0.0.1"
    port: int = field(default=8765, validator=_serve_setting(lambda v: 0 <= v <= 65535, "must be a port (0-65535)"))
    api_keys_env: str | None = None
    max_body_bytes: int = field(default=32_000_000, validator=_serve_setting(lambda v: v > 0, "must be positive"))
    drain_timeout_s: float = field(default=5.0, validator=_serve_setting(lambda v: v >= 0, "must be 0 or more"))


@frozen(kw_only=True)
class OpenAIProvider:
    """Any OpenAI-compatible chat completions endpoint (``POST {base_url}/chat/completions``)."""

    type: Literal["openai"] = "openai"
    base_url: str
    api_key_env: str | None = None
    headers: dict[str, str] = field(factory=dict)
    model: str = ""
    stream_usage: bool = True


@frozen(kw_only=True)
class AnthropicProvider:
    """The Anthropic Messages API (``POST {base_url}/v1/messages``)."""

    type: Literal["anthropic"] = "anthropic"
    base_url: str = "https://api.anthropic.com"
    api_key_env: str | None = "ANTHROPIC_API_KEY"
    headers: dict[str, str] = field(factory=dict)
    model: str = ""
    anthropic_version: str = DEFAULT_ANTHROPIC_VERSION
    max_tokens: int = DEFAULT_ANTHROPIC_MAX_TOKENS


@frozen(kw_only=True)
class SimProvider:
    """A simulated provider: lognormal time to first token, a token rate, faults.

    ``ttft_ms`` is the median and ``sigma`` the lognormal's shape (0 makes it
    exact); ``failure_rate`` fails an attempt before its first token,
    ``hang_rate`` makes it never answer. ``seed`` makes the sequence repeatable.
    """

    type: Literal["sim"] = "sim"
    model: str = "sim"
    ttft_ms: float = 200.0
    sigma: float = 0.3
    tokens_per_s: float = 50.0
    failure_rate: float = 0.0
    hang_rate: float = 0.0
    seed: int | None = None
    text: str = "This is a simulated answer from raceway."


@frozen(kw_only=True)
class PythonProvider:
    """An async generator function by import path, called as ``fn(request)``, yielding text."""

    type: Literal["python"] = "python"
    callable: str
    model: str = ""


ProviderDef: TypeAlias = OpenAIProvider | AnthropicProvider | SimProvider | PythonProvider
PROVIDER_TYPES: dict[str, type[Any]] = {
    "openai": OpenAIProvider,
    "anthropic": AnthropicProvider,
    "sim": SimProvider,
    "python": PythonProvider,
}


@frozen(kw_only=True)
class ProviderRef:
    """One participant of a virtual model: which provider, which model, how it ranks."""

    name: str
    model: str = ""
    priority: int = 0
    weight: float = 1.0
    config: dict[str, Any] = field(factory=dict)


@frozen(kw_only=True)
class VirtualModel:
    """A name callers ask for; which providers race for it and how.

    Every setting left unset (``None``) falls back to the top-level one.
    """

    display_name: str = ""
    description: str = ""
    providers: list[ProviderRef] = field(factory=list)
    strategy: str | None = None
    timeout_ms: int | None = None
    grace_period_ms: int | None = None
    ttft_timeout_ms: int | None = None
    idle_timeout_ms: int | None = None
    hedge: HedgeOverride | None = field(default=None, converter=_as_override)
    quality_scorer: str | None = None


@frozen(kw_only=True)
class Config:
    """The whole configuration. Build it with :func:`load_config` or :func:`default_config`."""

    timeout_ms: int = DEFAULT_TIMEOUT_MS
    grace_period_ms: int = DEFAULT_GRACE_MS
    strategy: str = "first_wins"
    ttft_timeout_ms: int | None = None
    idle_timeout_ms: int = DEFAULT_IDLE_TIMEOUT_MS
    hedge: HedgeConfig = field(factory=HedgeConfig)
    quality_scorer: str | None = None
    monitor: MonitorConfig = field(factory=MonitorConfig)
    http: HttpConfig = field(factory=HttpConfig)
    serve: ServeConfig = field(factory=ServeConfig)
    providers: dict[str, ProviderDef] = field(factory=dict)
    virtual_models: dict[str, VirtualModel] = field(factory=dict)
    default_virtual_model: str = ""
    performance_file: str = ""

    def provider(self, name: str) -> ProviderDef:
        """The definition of provider ``name``: the user's own, else a preset."""
        if name in self.providers:
            return self.providers[name]
        if name in PRESETS:
            return _structure_provider(name, None)
        raise KeyError(name)

    @property
    def default_model_name(self) -> str:
        """The virtual model used when a caller passes ``model=None``."""
        if self.default_virtual_model:
            return self.default_virtual_model
        return next(iter(self.virtual_models), LEGACY_MODEL)

    def resolve(self, model: str | None) -> ResolvedModel:
        """The effective settings and participants for virtual model ``model``.

        Raises:
            NoSuchModelError: ``model`` is not a virtual model of this config.
        """
        name = model or self.default_model_name
        vm = self.virtual_models.get(name)
        if vm is None:
            if self.virtual_models:
                raise NoSuchModelError(name, list(self.virtual_models))
            # The seed's legacy mode: no virtual models, every provider races;
            # a model name the caller gives is passed to each provider as is.
            passthrough = "" if model in (None, LEGACY_MODEL) else name
            vm = VirtualModel(
                display_name="All providers",
                description="Every configured provider races (no virtual models defined).",
                providers=[ProviderRef(name=p, model=passthrough) for p in self.providers],
            )
        participants = []
        for ref in vm.providers:
            definition = self.provider(ref.name)
            participants.append(
                Participant(
                    name=ref.name,
                    model=ref.model or definition.model,
                    priority=ref.priority,
                    weight=ref.weight,
                    params=dict(ref.config),
                    definition=definition,
                )
            )
        return ResolvedModel(
            name=name,
            display_name=vm.display_name or name,
            description=vm.description,
            strategy=vm.strategy or self.strategy,
            timeout_ms=_pick(vm.timeout_ms, self.timeout_ms),
            grace_period_ms=_pick(vm.grace_period_ms, self.grace_period_ms),
            ttft_timeout_ms=_pick(vm.ttft_timeout_ms, self.ttft_timeout_ms),
            idle_timeout_ms=_pick(vm.idle_timeout_ms, self.idle_timeout_ms),
            hedge=self.hedge if vm.hedge is None else vm.hedge.over(self.hedge),
            quality_scorer=vm.quality_scorer or self.quality_scorer,
            participants=tuple(participants),
        )


LEGACY_MODEL = "default"


def _pick(override_value: Any, default: Any) -> Any:
    return default if override_value is None else override_value


@frozen(kw_only=True)
class Participant:
    """One resolved participant: its provider's definition and the call's model and params."""

    name: str
    model: str
    priority: int
    weight: float
    params: dict[str, Any]
    definition: ProviderDef

    @property
    def label(self) -> str:
        """``provider/model``: the key of statistics."""
        return f"{self.name}/{self.model}"


@frozen(kw_only=True)
class ResolvedModel:
    """A virtual model with every setting resolved: what one race needs from config."""

    name: str
    display_name: str
    description: str
    strategy: str
    timeout_ms: int
    grace_period_ms: int
    ttft_timeout_ms: int | None
    idle_timeout_ms: int
    hedge: HedgeConfig
    quality_scorer: str | None
    participants: tuple[Participant, ...]


# ------------------------------------------------------------- cattrs wiring


class _SchemaError(ValueError):
    """A schema problem whose message is already meant for the user."""


def _format_exception(exc: BaseException, type_: Any) -> str:
    if isinstance(exc, _SchemaError):
        return str(exc)
    return cattrs.v.format_exception(exc, type_)


def _make_converter(omit_defaults: bool = True) -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True, omit_if_default=omit_defaults)

    def structure_delay(value: Any, _: Any) -> int | str:
        if value == "auto":
            return "auto"
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or (isinstance(value, float) and not value.is_integer())
        ):
            raise _SchemaError(f"must be a whole number of milliseconds or 'auto', not {value!r}")
        return int(value)

    conv.register_structure_hook_func(lambda t: t == int | Literal["auto"], structure_delay)
    conv.register_structure_hook_func(
        lambda t: t == int | Literal["auto"] | None, lambda v, _: None if v is None else structure_delay(v, _)
    )

    def structure_int(value: Any, _: Any) -> int:
        # Not int(value): that turns true into 1 and 5.7 into 5 without a word.
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _SchemaError(f"must be a whole number, not {value!r}")
        if isinstance(value, float) and not value.is_integer():
            raise _SchemaError(f"must be a whole number, not {value}")
        return int(value)

    conv.register_structure_hook(int, structure_int)

    def structure_float(value: Any, _: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _SchemaError(f"must be a number, not {value!r}")
        return float(value)

    conv.register_structure_hook(float, structure_float)

    def structure_bool(value: Any, _: Any) -> bool:
        if not isinstance(value, bool):
            raise _SchemaError(f"must be true or false, not {value!r}")
        return value

    conv.register_structure_hook(bool, structure_bool)  # (bool is an int: it needs its own hook)

    def structure_providers(value: Any, _: Any) -> dict[str, ProviderDef]:
        # The seed's form is a list of names; raceway's is a mapping of
        # name -> definition. Either way a preset name needs no definition.
        if isinstance(value, list):
            value = {name: None for name in value}
        if not isinstance(value, Mapping):
            raise _SchemaError("must be a list of provider names or a mapping of name to definition")
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
            raise _SchemaError(f"must be a string ('off', 'auto' or a path), not {value!r}")
        return value

    ref_fn = make_dict_structure_fn(ProviderRef, conv, _cattrs_forbid_extra_keys=True)

    def structure_ref(value: Any, _: Any) -> ProviderRef:
        # `providers: [openai, groq]` in a virtual model: a bare name is a reference.
        if isinstance(value, str):
            return ProviderRef(name=value)
        if not isinstance(value, Mapping):
            raise _SchemaError(f"a provider reference is a name or a mapping with 'name', not {value!r}")
        return ref_fn(value, ProviderRef)

    conv.register_structure_hook(ProviderRef, structure_ref)
    refs_fn = conv.get_structure_hook(list[ProviderRef])

    def structure_refs(value: Any, _: Any) -> list[ProviderRef]:
        if isinstance(value, str | Mapping):  # a string is iterable too: its letters are no providers
            raise _SchemaError(f"must be a list of provider references, not {value!r}")
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
        raise _SchemaError(f"provider {name!r} must be a mapping of settings")
    merged = dict(PRESETS.get(name, {}))
    if "type" in body and body["type"] != merged.get("type"):
        merged = {}  # a different type replaces the preset entirely
    merged.update(body)
    kind = merged.get("type")
    if kind is None:
        raise _SchemaError(
            f"provider {name!r} needs a 'type' ({', '.join(PROVIDER_TYPES)}); it is not a preset"
        )
    cls = PROVIDER_TYPES.get(kind)
    if cls is None:
        raise _SchemaError(f"unknown provider type {kind!r} (known: {', '.join(PROVIDER_TYPES)})")
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
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("$", "file not found", source) from None
    except OSError as exc:
        raise ConfigError("$", f"cannot read: {exc.strerror or exc}", source) from None
    if p.suffix.lower() == ".toml":
        return loads_config(text, "toml", source=source)
    return loads_config(text, "yaml", source=source)


def loads_config(text: str, fmt: Literal["yaml", "toml"] = "yaml", *, source: str | None = None) -> Config:
    """Parse and validate configuration text in ``fmt``."""
    try:
        if fmt == "toml":
            data: Any = tomllib.loads(text)
        else:
            data = yaml.safe_load(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("$", f"invalid TOML: {exc}", source) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise ConfigError("$", f"invalid YAML{where}: {problem}", source) from None
    if data is None:
        data = {}
    return config_from_dict(data, source=source)


def config_from_dict(data: Any, *, source: str | None = None) -> Config:
    """Structure and validate a plain mapping (as parsed from YAML/TOML)."""
    if not isinstance(data, Mapping):
        raise ConfigError("$", "the top level must be a mapping of settings", source)
    try:
        config = _converter.structure(dict(data), Config)
    except Exception as exc:
        if not isinstance(exc, cattrs.BaseValidationError):
            raise ConfigError("$", str(exc), source) from None
        first = cattrs.transform_error(exc, path="$", format_exception=_format_exception)[0]
        message, _, path = first.rpartition(" @ ")
        raise ConfigError(path or "$", _friendly(message or first), source) from None
    validate(config, source=source)
    return config


def _friendly(message: str) -> str:
    if message.startswith("extra fields found"):
        return "unknown key(s): " + message.partition("(")[2].rstrip(")")
    if message == "required field missing":
        return "required field is missing"
    return message


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
    """Serialise ``config`` as YAML or TOML text that loads back to an equal config."""
    data = config_to_dict(config)
    if fmt == "toml":
        return tomli_w.dumps(data)
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
    return data


def default_config() -> Config:
    """The embedded default: simulated providers with distinct profiles, one model per strategy.

    Works offline; it is what ``raceway demo`` and ``raceway run`` use without ``-c``.
    """
    from importlib.resources import files

    text = files("raceway").joinpath("default_config.yaml").read_text(encoding="utf-8")
    return loads_config(text, "yaml", source="<embedded default>")


# ------------------------------------------------------------- validation


def validate(config: Config, *, source: str | None = None) -> None:
    """The checks beyond the schema. Raises :class:`ConfigError` on the first problem."""

    def fail(path: str, message: str) -> None:
        raise ConfigError(path, message, source)

    def check_settings(obj: Config | VirtualModel, base: str) -> None:
        for name in ("timeout_ms", "idle_timeout_ms", "ttft_timeout_ms"):
            value = getattr(obj, name)
            if value is not None and value <= 0:
                fail(f"{base}.{name}", f"must be a positive number of milliseconds, not {value}")
        grace = obj.grace_period_ms
        if grace is not None and grace < 0:
            fail(f"{base}.grace_period_ms", f"must be 0 or more milliseconds, not {grace}")
        if obj.strategy is not None:
            check_strategy_name(obj.strategy, f"{base}.strategy")
        if obj.hedge is not None:
            delay = obj.hedge.delay_ms
            if delay is not None and delay != "auto" and delay < 0:
                fail(f"{base}.hedge.delay_ms", f"must be 0 or more milliseconds or 'auto', not {delay}")
            load = obj.hedge.max_extra_load
            if load is not None and not 0 <= load <= 10:
                fail(f"{base}.hedge.max_extra_load", "must be a fraction between 0 and 10")
        if obj.quality_scorer is not None:
            check_import_path(obj.quality_scorer, f"{base}.quality_scorer")

    def check_strategy_name(name: str, path: str) -> None:
        if name in BUILTIN_STRATEGIES:
            return
        if ":" not in name:
            fail(path, f"unknown strategy {name!r}: use one of {', '.join(BUILTIN_STRATEGIES)} or 'module:Class'")
        check_import_path(name, path)

    def check_import_path(ref: str, path: str) -> None:
        try:
            obj = import_object(ref)
        except ImportError as exc:
            fail(path, str(exc))
        else:
            if not callable(obj):
                fail(path, f"{ref!r} is not callable")
            if path.endswith(".strategy") and isinstance(obj, type) and not hasattr(obj, "decide"):
                fail(path, f"{ref!r} is not a strategy (a class with decide(now); see raceway.Strategy)")

    check_settings(config, "$")
    if config.monitor.socket.strip() == "":
        fail("$.monitor.socket", "must be a path, 'auto' or 'off'")

    for pname, definition in config.providers.items():
        check_provider(definition, f"$.providers[{pname!r}]", fail)

    if config.default_virtual_model and config.default_virtual_model not in config.virtual_models:
        known = ", ".join(config.virtual_models) or "none defined"
        fail(
            "$.default_virtual_model",
            f"{config.default_virtual_model!r} is not a virtual model (known: {known})",
        )
    if not config.virtual_models and not config.providers:
        fail("$.providers", "define at least one provider or virtual model")

    for vname, vm in config.virtual_models.items():
        base = f"$.virtual_models[{vname!r}]"
        check_settings(vm, base)
        if not vm.providers:
            fail(f"{base}.providers", "list at least one provider")
        for i, ref in enumerate(vm.providers):
            rpath = f"{base}.providers[{i}]"
            if ref.name not in config.providers and ref.name not in PRESETS:
                fail(f"{rpath}.name", f"provider {ref.name!r} is not defined under providers and is not a preset")
            if ref.weight < 0:
                fail(f"{rpath}.weight", f"must be 0 or more, not {ref.weight}")
            definition = config.provider(ref.name)
            if not (ref.model or definition.model) and definition.type in ("openai", "anthropic"):
                fail(f"{rpath}.model", f"required: provider {ref.name!r} has no default model")


def check_provider(definition: ProviderDef, path: str, fail: Any) -> None:
    """Type-specific checks of one provider definition."""
    if isinstance(definition, OpenAIProvider | AnthropicProvider):
        if not definition.base_url.startswith(("http://", "https://")):
            fail(f"{path}.base_url", f"must start with http:// or https://, not {definition.base_url!r}")
    elif isinstance(definition, SimProvider):
        for name in ("ttft_ms", "tokens_per_s"):
            if getattr(definition, name) <= 0:
                fail(f"{path}.{name}", "must be positive")
        if definition.sigma < 0:
            fail(f"{path}.sigma", "must be 0 or more")
        for name in ("failure_rate", "hang_rate"):
            if not 0 <= getattr(definition, name) <= 1:
                fail(f"{path}.{name}", "must be a probability between 0 and 1")
        if definition.failure_rate + definition.hang_rate > 1:
            fail(f"{path}.hang_rate", "failure_rate + hang_rate must not exceed 1")
    elif isinstance(definition, PythonProvider):
        try:
            import_object(definition.callable)
        except ImportError as exc:
            fail(f"{path}.callable", str(exc))


def import_object(ref: str) -> Any:
    """Import ``"package.module:attr.path"``; raises ImportError with a one-line reason."""
    module_name, sep, attr_path = ref.partition(":")
    if not sep or not module_name or not attr_path:
        raise ImportError(f"{ref!r} is not an import path of the form 'package.module:name'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImportError(f"cannot import module {module_name!r}: {exc}") from None
    except Exception as exc:  # the module itself is broken (SyntaxError, an error at import)
        raise ImportError(f"importing module {module_name!r} failed: {type(exc).__name__}: {exc}") from None
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ImportError(f"module {module_name!r} has no attribute {attr_path!r}") from None
    return obj
