"""The ``sim`` provider: realistic latency and faults without a network.

Time to first token is lognormal (``ttft_ms`` is its median, ``sigma`` its
shape: 0.1 is steady, 1.0 heavy-tailed), then the text streams word by word at
``tokens_per_s``. ``failure_rate`` fails an attempt before its first token with
an error a real provider gives (5xx, 429 with retry-after, connection reset);
``hang_rate`` makes an attempt never answer, so it waits until cancelled. All
waiting is ``trio.sleep``, so on trio's virtual clock a sim race is exact and
instant. ``seed`` makes the draws repeatable.

A simulated model never calls a tool: with ``tool_choice`` ``auto`` (or
``none``) it answers in text, as any model may, but asked for a tool call by
``tool_choice`` ``required`` or a named function it fails the attempt with
:class:`~raceway.UnsupportedRequestError` before "sending" anything.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import AsyncIterator

import trio

from .._chunk import Chunk, Usage
from .._config import SimProvider as SimDefinition
from .._errors import (
    ProviderConnectionError,
    ProviderHTTPError,
    RateLimitedError,
    UnsupportedRequestError,
)
from ._base import Provider, Request

# Failures strike early in the attempt: a fraction of the drawn TTFT.
_FAILURE_AT = 0.4


class SimProvider(Provider):
    """A simulated provider following a :class:`raceway.SimProvider` profile (its config model)."""

    definition_class = SimDefinition
    movable_stream = True  # it only sleeps between yields

    def __init__(self, name: str, definition: SimDefinition) -> None:
        super().__init__(name)
        self.profile = definition
        self._rng = random.Random(definition.seed)
        self._words = re.findall(r"\S+\s*", definition.text) or [""]

    def draw_ttft(self) -> float:
        """One time to first token, in seconds."""
        p = self.profile
        return p.ttft_ms / 1000 * math.exp(p.sigma * self._rng.gauss(0.0, 1.0))

    async def stream(self, request: Request) -> AsyncIterator[Chunk]:
        choice = request.params.get("tool_choice")
        if choice == "required" or (isinstance(choice, dict) and choice.get("type") == "function"):
            raise UnsupportedRequestError(
                "tool_choice", "a simulated provider never calls a tool", self.name
            )
        p = self.profile
        ttft = self.draw_ttft()
        fate = self._rng.random()
        if fate < p.hang_rate:
            await trio.sleep_forever()
        if fate < p.hang_rate + p.failure_rate:
            await trio.sleep(ttft * _FAILURE_AT)
            raise self._draw_error()
        await trio.sleep(ttft)
        gap = 1 / p.tokens_per_s
        max_tokens = request.params.get("max_tokens")
        words = self._words
        if isinstance(max_tokens, int) and 0 < max_tokens < len(words):
            words = words[:max_tokens]
        for i, word in enumerate(words):
            if i:
                await trio.sleep(gap)
            yield Chunk(word)
        reason = "length" if len(words) < len(self._words) else "stop"
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in request.messages)
        yield Chunk("", finish_reason=reason, usage=Usage(input_tokens=prompt_tokens, output_tokens=len(words)))

    def _draw_error(self) -> Exception:
        roll = self._rng.random()
        if roll < 0.6:
            status = self._rng.choice((500, 502, 503))
            return ProviderHTTPError(f"simulated upstream error: HTTP {status}", status, self.name)
        if roll < 0.85:
            return ProviderConnectionError("simulated connection reset by peer", self.name)
        return RateLimitedError("simulated rate limit: HTTP 429", retry_after=1.0, provider=self.name)
