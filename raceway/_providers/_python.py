"""The ``python`` provider: any async generator function, by import path.

``callable: "pkg.module:name"`` names a function called as ``name(request)``
that yields text chunks (``str``), or :class:`~raceway.Chunk` objects for
everything else an answer may hold: a finish reason and usage, ``reasoning``
text, ``tool_calls`` (:class:`~raceway.ToolCallDelta`, shaped as OpenAI
streams them: the first delta of a call with ``id`` and ``name``, then
argument fragments). An exception before the first chunk fails the attempt; one
after it interrupts the stream. A coroutine function returning one string is
accepted too, as a one-chunk answer.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable
from types import AsyncGeneratorType
from typing import Any

from .._chunk import Chunk
from .._config import PythonProvider as PythonDefinition
from .._config_check import import_object
from ._base import Provider, Request


class PythonProvider(Provider):
    """Wraps a user's async generator function as a provider."""

    definition_class = PythonDefinition

    def __init__(self, name: str, definition: PythonDefinition | Callable[..., Any]) -> None:
        super().__init__(name)
        if isinstance(definition, PythonDefinition):
            self.function: Callable[..., Any] = import_object(definition.callable)
        else:
            self.function = definition

    def stream(self, request: Request) -> AsyncIterator[Chunk]:
        produced = self.function(request)
        if type(produced) is not AsyncGeneratorType and inspect.isawaitable(produced):  # the ABC check is slow
            return _one_chunk(produced)
        # The user's generator is handed to the race driver as it is: the
        # driver takes ``str`` items as text chunks, so no wrapper is needed.
        stream: AsyncIterator[Chunk] = produced
        return stream


async def _one_chunk(answer: Any) -> AsyncIterator[Chunk]:
    text = await answer
    yield text if isinstance(text, Chunk) else Chunk(str(text))
