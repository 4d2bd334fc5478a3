"""Configuration, the schema: attrs models, and how a virtual model resolves.

One schema serves YAML and TOML. :meth:`Config.resolve` turns a virtual
model name into a :class:`ResolvedModel` — the effective race settings and
each participant's provider definition — so the engine never re-reads raw
config. The provider definitions are ``_config_providers.py``; the ranges
numeric settings declare, ``_config_ranges.py``. Loading and writing are
``_config_io.py``; the checks beyond the schema, ``_config_check.py``. Every
numeric setting declares its range on its field (``ranged``), checked with
its path.
"""

from __future__ import annotations

from typing import Any, Literal

from attrs import field, frozen

from ._checks import (
    FREE_TEXT,
    Range,
    config_error,
    free_text,
    ranged,
)
from ._config_providers import DEFAULT_ANTHROPIC_MAX_TOKENS as DEFAULT_ANTHROPIC_MAX_TOKENS
from ._config_providers import DEFAULT_ANTHROPIC_VERSION as DEFAULT_ANTHROPIC_VERSION
from ._config_providers import MODEL_REQUIRED as MODEL_REQUIRED
from ._config_providers import PROVIDER_TYPES as PROVIDER_TYPES
from ._config_providers import AnthropicProvider as AnthropicProvider
from ._config_providers import CodeProvider as CodeProvider
from ._config_providers import OpenAIProvider as OpenAIProvider
from ._config_providers import Prices as Prices
from ._config_providers import ProviderDef as ProviderDef
from ._config_providers import PythonProvider as PythonProvider
from ._config_providers import SimProvider as SimProvider
from ._config_providers import _pick as _pick
from ._config_providers import preset_definition
from ._config_ranges import ANY_NUMBER as ANY_NUMBER
from ._config_ranges import AT_LEAST_ONE as AT_LEAST_ONE
from ._config_ranges import EXTRA_LOAD as EXTRA_LOAD
from ._config_ranges import NON_NEGATIVE as NON_NEGATIVE
from ._config_ranges import NON_NEGATIVE_MS as NON_NEGATIVE_MS
from ._config_ranges import POSITIVE as POSITIVE
from ._config_ranges import POSITIVE_MS as POSITIVE_MS
from ._config_ranges import PROBABILITY as PROBABILITY
from ._config_ranges import SIGMA as SIGMA
from ._config_ranges import USD as USD
from ._config_ranges import USD_PER_MTOK as USD_PER_MTOK
from ._errors import ConfigError, NoSuchModelError
from ._fleet_config import RedisConfig
from ._presets import PRESETS

BUILTIN_STRATEGIES = ("first_wins", "weighted", "quality", "hedged")

# Defaults. The seed's example uses a 5 s deadline and a 1 s grace; a shorter
# default grace keeps losers' billed tokens low while still measuring them.
DEFAULT_TIMEOUT_MS = 10_000
DEFAULT_GRACE_MS = 250
DEFAULT_IDLE_TIMEOUT_MS = 30_000
DEFAULT_MAX_EXTRA_LOAD = 0.1
#: Seconds between saves of ``performance_file``: little to lose in a crash, little disk churn.
DEFAULT_SAVE_INTERVAL_S = 30.0


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
            return preset_definition(name)
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


