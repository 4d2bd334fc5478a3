"""Providers: the plug-in point that turns a request into a stream of chunks.

:data:`PROVIDER_CLASSES` is the one registry of provider types: it maps each
definition class of the config (``raceway.OpenAIProvider``, ...) to the
provider class that serves it, and each provider class says what it needs
(:attr:`Provider.uses_http`) and how it is built
(:meth:`Provider.from_definition`). Nothing else in raceway needs to spell a
type string. ``build_provider`` makes a provider object from its definition;
the engine builds one per configured name and shares it across races.
HTTP-based types share the engine's pooled ``httpx.AsyncClient``, handed in
through :class:`ProviderContext`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from attrs import define

from .._chunk import Chunk, Usage
from .._config import AnthropicProvider as AnthropicDefinition
from .._config import OpenAIProvider as OpenAIDefinition
from .._config import ProviderDef
from .._config import PythonProvider as PythonDefinition
from .._config import SimProvider as SimDefinition
from .._errors import ConfigError
from ._anthropic import AnthropicProvider
from ._base import Provider, Request
from ._http import HTTPProvider
from ._openai import OpenAIProvider
from ._python import PythonProvider
from ._sim import SimProvider

__all__ = [
    "PROVIDER_CLASSES",
    "AnthropicProvider",
    "Chunk",
    "HTTPProvider",
    "OpenAIProvider",
    "Provider",
    "ProviderContext",
    "PythonProvider",
    "Request",
    "SimProvider",
    "Usage",
    "build_provider",
    "provider_class",
]


@define
class ProviderContext:
    """What providers of one engine share: the HTTP client factory, for now."""

    http_client: Callable[[], Any] | None = None


#: Definition class (from the config) -> the provider class that serves it.
PROVIDER_CLASSES: dict[type[Any], type[Provider]] = {
    OpenAIDefinition: OpenAIProvider,
    AnthropicDefinition: AnthropicProvider,
    SimDefinition: SimProvider,
    PythonDefinition: PythonProvider,
}


def provider_class(definition: ProviderDef) -> type[Provider]:
    """The provider class serving ``definition``.

    Raises:
        ConfigError: no provider type serves this kind of definition.
    """
    cls = PROVIDER_CLASSES.get(type(definition))
    if cls is None:
        known = ", ".join(c.type for c in PROVIDER_CLASSES.values())
        raise ConfigError(
            "$.providers",
            f"no provider type serves a {type(definition).__name__} definition (known: {known})",
        )
    return cls


def build_provider(name: str, definition: ProviderDef, context: ProviderContext) -> Provider:
    """A provider object for config entry ``name``.

    Raises:
        ConfigError: ``definition`` is of no known provider type.
    """
    try:
        cls = provider_class(definition)
    except ConfigError as exc:
        raise ConfigError(f"$.providers[{name!r}].type", exc.message) from None
    return cls.from_definition(name, definition, context)
