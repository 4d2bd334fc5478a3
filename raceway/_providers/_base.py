"""The provider interface: one required method, ``stream(request)``.

Like httpx's ``AsyncBaseTransport``, a provider is small: it turns one
:class:`Request` into an async iterator of :class:`Chunk` objects and knows
nothing about racing. The race driver decides what a chunk means (the first
non-empty ``text`` or tool-call delta is the attempt's first token) and
stops a provider by closing its iterator (``aclose()``), under cancellation
if need be, so a provider must release what it holds (an HTTP response, a
socket) in a ``finally`` or ``async with`` around its loop.

A provider reports failure by raising: a :class:`~raceway.ProviderError`
subclass when it knows the kind (rate limited, HTTP status, protocol,
connection, timeout, ``unsupported`` for a request it cannot honour, raised
before any I/O); any other exception counts as a failed attempt too.
"""

from __future__ import annotations

import abc
import builtins
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, ClassVar

import attrs
from attrs import field, frozen

from .._chunk import Chunk

if TYPE_CHECKING:
    from . import ProviderContext


@frozen(kw_only=True)
class Request:
    """What a provider is asked: the chat, the model, and pass-through parameters.

    ``params`` holds the caller's keyword parameters (``temperature``,
    ``max_tokens``, ...) with the virtual model's per-reference ``config``
    laid over them. ``provider`` is the configured provider name.
    """

    messages: list[dict[str, Any]]
    model: str
    params: dict[str, Any] = field(factory=dict)
    provider: str = ""


class Provider(abc.ABC):
    """Base class of every provider type.

    Subclasses implement :meth:`stream`; :meth:`health_check` and
    :meth:`aclose` have sensible defaults. ``name`` is the configured name.
    """

    #: The config ``type`` this class serves (``openai``, ``sim``, ...), read
    #: from :attr:`definition_class` (whose ``type`` field defaults to it).
    type: ClassVar[str] = ""
    #: The config model this class is built from; ``None`` for provider
    #: objects made in code (``open_engine(config, providers={...})``).
    definition_class: ClassVar[builtins.type[Any] | None] = None
    #: Whether it speaks HTTP (and so needs the engine's pooled client).
    uses_http: ClassVar[bool] = False
    #: Whether its :meth:`stream` may be read on from another task once it has
    #: begun: true when the stream holds no cancel scope or nursery open across
    #: a ``yield`` (trio forbids moving those between tasks). The race then lets
    #: its caller read the winner's stream itself, with no hand-off per chunk.
    #: Off unless a class says so: a provider written in code may hold one.
    movable_stream: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        definition = cls.__dict__.get("definition_class")
        if definition is not None:
            cls.type = attrs.fields(definition).type.default

    def __init__(self, name: str) -> None:
        self.name = name

    @classmethod
    def from_definition(cls, name: str, definition: Any, context: ProviderContext) -> Provider:
        """Build the provider configured as ``name`` from its definition."""
        return cls(name, definition)  # type: ignore[call-arg]

    @abc.abstractmethod
    def stream(self, request: Request) -> AsyncIterator[Chunk]:
        """Stream the answer to ``request`` as chunks.

        Usually an async generator. It is closed with ``aclose()`` when the
        race no longer needs it (won elsewhere, cancelled, failed). A plain
        ``str`` item is accepted as shorthand for ``Chunk(text)``.
        """

    async def health_check(self) -> None:  # noqa: B027 - optional hook, healthy by default
        """Check cheaply that the provider answers; raise ``ProviderError`` if not."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release what the provider holds beyond one request."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
