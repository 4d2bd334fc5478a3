"""Configuration, the provider definitions: one attrs model per provider type.

What a file writes under ``providers:`` (or a preset stands for): the
endpoint, key variable and default model of each type, its
:class:`Prices`, its rate caps. :func:`preset_definition` turns a preset
(``_presets.py``) into such a definition, so :meth:`Config.provider
<raceway._config.Config.provider>` and the loader (``_config_io.py``) both
build presets from here.
"""

from __future__ import annotations

from typing import Any, Literal, TypeAlias

from attrs import field, frozen

from ._checks import SchemaError, free_text, ranged
from ._config_ranges import (
    ANY_NUMBER,
    AT_LEAST_ONE,
    POSITIVE,
    POSITIVE_MS,
    PROBABILITY,
    SIGMA,
    USD_PER_MTOK,
)
from ._presets import PRESETS
from ._text import suggestion

DEFAULT_ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_ANTHROPIC_MAX_TOKENS = 4096
#: Provider types whose request must name a model (the upstream answers 400 to an empty one).
MODEL_REQUIRED = ("openai", "anthropic")


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


def preset_definition(name: str) -> ProviderDef:
    """The definition of preset ``name`` with no settings of the user's.

    Raises:
        SchemaError: ``name`` is not a preset.
    """
    preset = PRESETS.get(name)
    if preset is None:
        raise not_a_preset(name)
    definition: ProviderDef = PROVIDER_TYPES[preset["type"]](**preset)
    return definition


def not_a_preset(name: str) -> SchemaError:
    """The error for a provider with no ``type`` whose name is no preset either."""
    return SchemaError(
        f"provider {name!r} is not a preset{suggestion(name, PRESETS)}; "
        f"a provider of your own needs a 'type' ({', '.join(PROVIDER_TYPES)})"
    )


def _pick(override_value: Any, default: Any) -> Any:
    return default if override_value is None else override_value
