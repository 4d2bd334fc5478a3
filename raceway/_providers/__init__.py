"""Providers: the plug-in point that turns a request into a stream of chunks.

``build_provider`` makes a provider object from its config definition; the
engine builds one per configured name and shares it across races.
HTTP-based types share the engine's pooled ``httpx.AsyncClient``, handed in
through :class:`ProviderContext`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from attrs import define

from .._chunk import Chunk, Usage
from .._config import ProviderDef
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
]


@define
class ProviderContext:
    """What providers of one engine share: the HTTP client factory, for now."""

    http_client: Callable[[], Any] | None = None


Builder = Callable[[str, Any, ProviderContext], Provider]

PROVIDER_CLASSES: dict[str, Builder] = {
    "sim": lambda name, d, ctx: SimProvider(name, d),
    "python": lambda name, d, ctx: PythonProvider(name, d),
    "openai": lambda name, d, ctx: OpenAIProvider(name, d, ctx),
    "anthropic": lambda name, d, ctx: AnthropicProvider(name, d, ctx),
}


def build_provider(name: str, definition: ProviderDef, context: ProviderContext) -> Provider:
    """A provider object for config entry ``name``."""
    try:
        builder = PROVIDER_CLASSES[definition.type]
    except KeyError:
        raise NotImplementedError(f"provider type {definition.type!r} is not available") from None
    return builder(name, definition, context)
