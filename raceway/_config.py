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

import datetime
import importlib
import math
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeAlias

import attrs
import cattrs
import tomli_w
import yaml
from attrs import field, frozen
from cattrs.errors import IterableValidationNote
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from ._checks import (
    FREE_TEXT,
    Range,
    SchemaError,
    check_document,
    check_values,
    config_error,
    env_name_problem,
    first_error,
    free_text,
    parse_failure,
    ranged,
)
from ._errors import ConfigError, NoSuchModelError
from ._fleet_config import RedisConfig, check_redis, redact_url
from ._presets import PRESETS
from ._text import one_line, short_repr, suggestion

BUILTIN_STRATEGIES = ("first_wins", "weighted", "quality", "hedged")

# Defaults. The seed's example uses a 5 s deadline and a 1 s grace; a shorter
# default grace keeps losers' billed tokens low while still measuring them.
DEFAULT_TIMEOUT_MS = 10_000
DEFAULT_GRACE_MS = 250
DEFAULT_IDLE_TIMEOUT_MS = 30_000
DEFAULT_MAX_EXTRA_LOAD = 0.1
DEFAULT_ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_ANTHROPIC_MAX_TOKENS = 4096
#: Seconds between saves of ``performance_file``: little to lose in a crash, little disk churn.
DEFAULT_SAVE_INTERVAL_S = 30.0

# What each numeric setting allows (checked by validate, with the setting's path).
POSITIVE_MS = Range(low=0, low_open=True, what="a positive number of milliseconds")
NON_NEGATIVE_MS = Range(low=0, what="0 or more milliseconds")
POSITIVE = Range(low=0, low_open=True, what="a positive number")
NON_NEGATIVE = Range(low=0, what="0 or more")
AT_LEAST_ONE = Range(low=1, what="1 or more")
PROBABILITY = Range(low=0, high=1, what="a probability between 0 and 1")
ANY_NUMBER = Range()
USD = Range(low=0, what="0 or more US dollars")
USD_PER_MTOK = Range(low=0, what="0 or more US dollars per million tokens")
#: Extra requests per race on average (0.1: one race in ten hedges); above 1
#: only makes sense with many providers, above 10 never.
EXTRA_LOAD = Range(low=0, high=10, what="between 0 and 10 extra requests per race on average (0.1: one race in ten)")
#: A lognormal's sigma past this draws times beyond any deadline (and overflows exp()).
SIGMA = Range(low=0, high=10, what="between 0 (exact) and 10")


@frozen(kw_only=True)
class HedgeConfig:
    """When ``hedged`` starts its next attempt, and how much extra load it may add.

    ``delay_ms`` is a number of milliseconds or ``"auto"``: the running
    provider's observed TTFT at the ``1 - max_extra_load`` quantile (p90 for
    0.1; kept between p75 and p99), so about the budget's share of races
    hedge. ``max_extra_load`` caps hedge attempts as a fraction of races (0.1:
    at most one extra request per ten races, plus a reserve of two).
    """

    delay_ms: int | Literal["auto"] = ranged("auto", NON_NEGATIVE_MS)
    max_extra_load: float = ranged(DEFAULT_MAX_EXTRA_LOAD, EXTRA_LOAD)


@frozen(kw_only=True)
class HedgeOverride:
    """A virtual model's ``hedge``: each key it sets overrides the top-level one."""

    delay_ms: int | Literal["auto"] | None = ranged(None, NON_NEGATIVE_MS)
    max_extra_load: float | None = ranged(None, EXTRA_LOAD)

    def over(self, base: HedgeConfig) -> HedgeConfig:
        return HedgeConfig(
            delay_ms=base.delay_ms if self.delay_ms is None else self.delay_ms,
            max_extra_load=base.max_extra_load if self.max_extra_load is None else self.max_extra_load,
        )


@frozen(kw_only=True)
class CooldownConfig:
    """When a failing provider sits races out (``_cooldown.py``).

    ``failures`` consecutive failures bench it under ``hedged`` (strategies
    that start everyone at once bench it only when nearly all of its recent
    attempts fail) for ``base_ms``, doubling on each trip up to ``max_ms``; a
    429 benches it for its retry-after, a 401/403 for ``max_ms``.
    """

    failures: int = ranged(3, AT_LEAST_ONE)
    base_ms: int = ranged(5_000, POSITIVE_MS)
    max_ms: int = ranged(300_000, POSITIVE_MS)


@frozen(kw_only=True)
class CooldownOverride:
    """A virtual model's ``cooldown``: each key it sets overrides the top-level one."""

    failures: int | None = ranged(None, AT_LEAST_ONE)
    base_ms: int | None = ranged(None, POSITIVE_MS)
    max_ms: int | None = ranged(None, POSITIVE_MS)

    def over(self, base: CooldownConfig) -> CooldownConfig:
        return CooldownConfig(
            failures=_pick(self.failures, base.failures),
            base_ms=_pick(self.base_ms, base.base_ms),
            max_ms=_pick(self.max_ms, base.max_ms),
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

    max_connections: int = ranged(100, AT_LEAST_ONE)
    max_keepalive_connections: int = ranged(20, NON_NEGATIVE)
    keepalive_expiry_s: float = ranged(30.0, Range(low=0, what="0 or more seconds"))
    connect_timeout_ms: int = ranged(5_000, POSITIVE_MS)


@frozen(kw_only=True)
class Prices:
    """USD per million tokens (issue 15). A key left out is unknown: on a
    reference it falls back to the provider definition's; ``raceway._cost``
    charges unknown input/output as 0 and unknown cached input at the input price."""

    input_per_mtok: float | None = ranged(None, USD_PER_MTOK)
    output_per_mtok: float | None = ranged(None, USD_PER_MTOK)
    cached_input_per_mtok: float | None = ranged(None, USD_PER_MTOK)

    def over(self, base: Prices | None) -> Prices:
        """These prices, each key left out taken from ``base``."""
        if base is None:
            return self
        return Prices(
            input_per_mtok=_pick(self.input_per_mtok, base.input_per_mtok),
            output_per_mtok=_pick(self.output_per_mtok, base.output_per_mtok),
            cached_input_per_mtok=_pick(self.cached_input_per_mtok, base.cached_input_per_mtok),
        )


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
    port: int = ranged(8765, Range(low=0, high=65535, what="a port number (0-65535; 0: any free one)"))
    api_keys_env: str | None = None
    max_body_bytes: int = ranged(32_000_000, Range(low=0, low_open=True, what="a positive number of bytes"))
    drain_timeout_s: float = ranged(5.0, Range(low=0, what="0 or more seconds"))


@frozen(kw_only=True)
class OpenAIProvider:
    """Any OpenAI-compatible chat completions endpoint (``POST {base_url}/chat/completions``)."""

    type: Literal["openai"] = "openai"
    base_url: str
    api_key_env: str | None = None
    headers: dict[str, str] = field(factory=dict)
    model: str = ""
    stream_usage: bool = True
    prices: Prices | None = None
    max_in_flight: int | None = ranged(None, AT_LEAST_ONE)  # rate caps (_ratecap.py)
    rpm: int | None = ranged(None, AT_LEAST_ONE)


@frozen(kw_only=True)
class AnthropicProvider:
    """The Anthropic Messages API (``POST {base_url}/v1/messages``)."""

    type: Literal["anthropic"] = "anthropic"
    base_url: str = "https://api.anthropic.com"
    api_key_env: str | None = "ANTHROPIC_API_KEY"
    headers: dict[str, str] = field(factory=dict)
    model: str = ""
    anthropic_version: str = DEFAULT_ANTHROPIC_VERSION
    max_tokens: int = ranged(DEFAULT_ANTHROPIC_MAX_TOKENS, AT_LEAST_ONE)
    prices: Prices | None = None
    max_in_flight: int | None = ranged(None, AT_LEAST_ONE)  # rate caps (_ratecap.py)
    rpm: int | None = ranged(None, AT_LEAST_ONE)


@frozen(kw_only=True)
class SimProvider:
    """A simulated provider: lognormal time to first token, a token rate, faults.

    ``ttft_ms`` is the median and ``sigma`` the lognormal's shape (0 makes it
    exact); ``failure_rate`` fails an attempt before its first token,
    ``hang_rate`` makes it never answer. ``seed`` makes the sequence repeatable.
    """

    type: Literal["sim"] = "sim"
    model: str = "sim"
    ttft_ms: float = ranged(200.0, POSITIVE_MS)
    sigma: float = ranged(0.3, SIGMA)
    tokens_per_s: float = ranged(50.0, POSITIVE)
    failure_rate: float = ranged(0.0, PROBABILITY)
    hang_rate: float = ranged(0.0, PROBABILITY)
    seed: int | None = ranged(None, ANY_NUMBER)
    text: str = free_text("This is a simulated answer from raceway.")
    prices: Prices | None = None
    max_in_flight: int | None = ranged(None, AT_LEAST_ONE)  # rate caps (_ratecap.py)
    rpm: int | None = ranged(None, AT_LEAST_ONE)


@frozen(kw_only=True)
class PythonProvider:
    """An async generator function by import path, called as ``fn(request)``, yielding text."""

    type: Literal["python"] = "python"
    callable: str
    model: str = ""
    prices: Prices | None = None
    max_in_flight: int | None = ranged(None, AT_LEAST_ONE)  # rate caps (_ratecap.py)
    rpm: int | None = ranged(None, AT_LEAST_ONE)


@frozen(kw_only=True)
class CodeProvider:
    """Stands in the config for a provider object built in code (``open_engine(providers=...)``).

    Not a type a file can name: it exists only so that such a provider has a
    definition like every other (its ``model`` is the object's ``model``
    attribute, if it has one).
    """

    type: Literal["code"] = "code"
    model: str = ""
    prices: Prices | None = None
    max_in_flight: int | None = ranged(None, AT_LEAST_ONE)  # rate caps (_ratecap.py)
    rpm: int | None = ranged(None, AT_LEAST_ONE)


ProviderDef: TypeAlias = OpenAIProvider | AnthropicProvider | SimProvider | PythonProvider | CodeProvider
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
    priority: int = ranged(0, ANY_NUMBER)
    weight: float = ranged(1.0, NON_NEGATIVE)
    config: dict[str, Any] = field(factory=dict, metadata={FREE_TEXT: True})  # passed through as JSON
    prices: Prices | None = None  # each key set overrides the definition's


@frozen(kw_only=True)
class VirtualModel:
    """A name callers ask for; which providers race for it and how.

    Every setting left unset (``None``) falls back to the top-level one.
    """

    display_name: str = free_text()
    description: str = free_text()
    providers: list[ProviderRef] = field(factory=list)
    strategy: str | None = None
    timeout_ms: int | None = ranged(None, POSITIVE_MS)
    grace_period_ms: int | None = ranged(None, NON_NEGATIVE_MS)
    ttft_timeout_ms: int | None = ranged(None, POSITIVE_MS)
    idle_timeout_ms: int | None = ranged(None, POSITIVE_MS)
    hedge: HedgeOverride | None = field(default=None, converter=_as_override)
    quality_scorer: str | None = None
    first_token: Literal["content", "any"] | None = None
    max_cost_per_race_usd: float | None = ranged(None, USD)
    cooldown: CooldownOverride | None = None


@frozen(kw_only=True)
class Config:
    """The whole configuration. Build it with :func:`load_config` or :func:`default_config`."""

    timeout_ms: int = ranged(DEFAULT_TIMEOUT_MS, POSITIVE_MS)
    grace_period_ms: int = ranged(DEFAULT_GRACE_MS, NON_NEGATIVE_MS)
    strategy: str = "first_wins"
    ttft_timeout_ms: int | None = ranged(None, POSITIVE_MS)
    idle_timeout_ms: int = ranged(DEFAULT_IDLE_TIMEOUT_MS, POSITIVE_MS)
    hedge: HedgeConfig = field(factory=HedgeConfig)
    quality_scorer: str | None = None
    #: What wins an attempt its first token: ``content`` (text or a tool call) or ``any`` (reasoning too).
    first_token: Literal["content", "any"] = "content"
    max_cost_per_race_usd: float | None = ranged(None, USD)
    cooldown: CooldownConfig = field(factory=CooldownConfig)
    monitor: MonitorConfig = field(factory=MonitorConfig)
    http: HttpConfig = field(factory=HttpConfig)
    serve: ServeConfig = field(factory=ServeConfig)
    providers: dict[str, ProviderDef] = field(factory=dict)
    virtual_models: dict[str, VirtualModel] = field(factory=dict)
    default_virtual_model: str = ""
    performance_file: str = ""
    performance_save_interval_s: float = ranged(DEFAULT_SAVE_INTERVAL_S, Range(low=0, low_open=True, what="a positive number of seconds"))
    redis: RedisConfig | None = None  # shared state across a fleet (_fleet_config.py)

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
            ConfigError: in legacy mode (no virtual models) asked for no
                model, a provider that needs a model has no default one.
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
        for i, ref in enumerate(vm.providers):
            definition = self.provider(ref.name)
            if not (ref.model or definition.model) and definition.type in MODEL_REQUIRED:
                raise _no_model(name, i, ref.name, legacy=not self.virtual_models)
            participants.append(
                Participant(
                    name=ref.name,
                    model=ref.model or definition.model,
                    priority=ref.priority,
                    weight=ref.weight,
                    params=dict(ref.config),
                    definition=definition,
                    prices=definition.prices if ref.prices is None else ref.prices.over(definition.prices),
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
            first_token=vm.first_token or self.first_token,
            participants=tuple(participants),
            max_cost_per_race_usd=_pick(vm.max_cost_per_race_usd, self.max_cost_per_race_usd),
            cooldown=self.cooldown if vm.cooldown is None else vm.cooldown.over(self.cooldown),
        )


LEGACY_MODEL = "default"
#: Provider types whose request must name a model (the upstream answers 400 to an empty one).
MODEL_REQUIRED = ("openai", "anthropic")


def _no_model(vm: str, index: int, provider: str, *, legacy: bool) -> ConfigError:
    if legacy:  # the reference is implicit: "every provider, on its own model"
        return config_error(
            f"$.providers[{provider!r}].model",
            f"required: with no virtual_models, every provider races on its own default model, and "
            f"{provider!r} has none; set one here, or define virtual_models",
        )
    return config_error(
        f"$.virtual_models[{vm!r}].providers[{index}].model",
        f"required: provider {provider!r} has no default model; name the model here",
    )


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
    prices: Prices | None = None  # the reference's over the definition's (issue 15)

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
    first_token: Literal["content", "any"] = "content"
    max_cost_per_race_usd: float | None = None
    cooldown: CooldownConfig = field(factory=CooldownConfig)


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
        raise SchemaError(
            f"provider {name!r} is not a preset{suggestion(name, PRESETS)}; "
            f"a provider of your own needs a 'type' ({', '.join(PROVIDER_TYPES)})"
        )
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


# ------------------------------------------------------------- validation


def with_code_providers(config: Config, providers: Mapping[str, Any]) -> Config:
    """``config`` with a :class:`CodeProvider` definition for each code-built provider it does not define."""
    extra = {
        name: CodeProvider(model=str(getattr(p, "model", "") or ""))
        for name, p in providers.items()
        if name not in config.providers
    }
    return attrs.evolve(config, providers={**config.providers, **extra}) if extra else config


def validate(config: Config, *, source: str | None = None) -> None:
    """The checks beyond the schema. Raises :class:`ConfigError` on the first problem.

    Every numeric setting is checked against the :class:`~raceway._checks.Range`
    its field declares, every string for NUL bytes, then the rules that span
    settings (references, models, import paths).
    """

    def fail(path: str, message: str) -> None:
        raise config_error(path, message, source)

    def check_settings(obj: Config | VirtualModel, base: str) -> None:
        if obj.strategy is not None:
            check_strategy_name(obj.strategy, f"{base}.strategy")
        if obj.quality_scorer is not None:
            check_import_path(obj.quality_scorer, f"{base}.quality_scorer")
        if obj.cooldown is not None:
            check_cooldown(obj.cooldown, f"{base}.cooldown", fail)

    def check_strategy_name(name: str, path: str) -> None:
        if name in BUILTIN_STRATEGIES:
            return
        if ":" not in name:
            fail(
                path,
                f"unknown strategy {name!r}{suggestion(name, BUILTIN_STRATEGIES)}: "
                f"use one of {', '.join(BUILTIN_STRATEGIES)} or 'module:Class'",
            )
        check_import_path(name, path)

    def check_import_path(ref: str, path: str) -> None:
        try:
            obj = import_object(ref)
        except ImportError as exc:
            fail(path, one_line(exc))
        else:
            if not callable(obj):
                fail(path, f"{ref!r} is not callable")
            if path.endswith(".strategy") and isinstance(obj, type) and not hasattr(obj, "decide"):
                fail(path, f"{ref!r} is not a strategy (a class with decide(now); see raceway.Strategy)")

    check_values(config, "$", fail)
    check_settings(config, "$")
    if config.monitor.socket.strip() == "":
        fail("$.monitor.socket", "must be a path, 'auto' or 'off'")
    check_redis(config.redis, fail)

    for pname, definition in config.providers.items():
        check_provider(definition, f"$.providers[{pname!r}]", fail)

    if config.default_virtual_model and config.default_virtual_model not in config.virtual_models:
        known = ", ".join(config.virtual_models) or "none defined"
        fail(
            "$.default_virtual_model",
            f"{config.default_virtual_model!r} is not a virtual model"
            f"{suggestion(config.default_virtual_model, config.virtual_models)} (known: {known})",
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
                hint = suggestion(ref.name, [*config.providers, *PRESETS])
                fail(f"{rpath}.name", f"provider {ref.name!r} is not defined under providers and is not a preset{hint}")
            definition = config.provider(ref.name)
            if not (ref.model or definition.model) and definition.type in MODEL_REQUIRED:
                raise _no_model(vname, i, ref.name, legacy=False)


def check_cooldown(c: CooldownConfig | CooldownOverride, path: str, fail: Any) -> None:
    """``cooldown``: a cap no shorter than the base (the ranges are declared on the fields)."""
    if c.base_ms is not None and c.max_ms is not None and c.max_ms < c.base_ms:
        fail(f"{path}.max_ms", f"must be at least base_ms ({c.base_ms}), not {c.max_ms}")


def check_provider(definition: ProviderDef, path: str, fail: Any) -> None:
    """Type-specific checks of one provider definition (ranges, prices too, are declared on the fields)."""
    if isinstance(definition, OpenAIProvider | AnthropicProvider):
        if not definition.base_url.startswith(("http://", "https://")):
            fail(f"{path}.base_url", "must start with http:// or https://")
        if definition.api_key_env:  # unset or empty: the provider needs no key
            problem = env_name_problem(definition.api_key_env)
            if problem:
                fail(f"{path}.api_key_env", problem)
    elif isinstance(definition, SimProvider):
        if definition.failure_rate + definition.hang_rate > 1:
            fail(f"{path}.hang_rate", "failure_rate + hang_rate must not exceed 1")
    elif isinstance(definition, PythonProvider):
        try:
            import_object(definition.callable)
        except ImportError as exc:
            fail(f"{path}.callable", one_line(exc))


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
