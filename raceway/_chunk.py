"""What an answer is made of: :class:`Chunk`, :class:`Usage`, tool calls, thinking blocks.

A provider streams :class:`Chunk` objects; a finished race gathers them into
a :class:`~raceway.RaceResult`. These are plain values with no I/O, so the
wire format, the race core and the gateway can all use them without loading
trio or httpx.
"""

from __future__ import annotations

from attrs import frozen


@frozen(kw_only=True, slots=True)
class Usage:
    """Token counts as the provider reports them (``None`` when it does not).

    ``cached_input_tokens`` is the part of ``input_tokens`` served from the
    provider's prompt cache; ``reasoning_tokens`` the part of
    ``output_tokens`` spent thinking.
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_input_tokens: int | None = None
    reasoning_tokens: int | None = None


@frozen(slots=True)
class ToolCallDelta:
    """One piece of a streamed tool call, shaped as OpenAI streams them.

    ``index`` is the call's ordinal in the answer (0, 1, ...). The first delta
    of a call carries ``id`` and ``name``; later ones carry fragments of
    ``arguments`` (JSON text) only.
    """

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@frozen(slots=True)
class ToolCall:
    """A complete tool call: ``arguments`` is the whole JSON text."""

    id: str
    name: str
    arguments: str


@frozen(slots=True)
class ThinkingBlock:
    """One finished block of Anthropic thinking, kept so a follow-up turn can send it back.

    ``type`` is ``thinking`` (``thinking`` holds the whole text, ``signature``
    the signature that authenticates it) or ``redacted_thinking`` (``data``,
    encrypted). The text was streamed as ``Chunk.reasoning`` already; this is
    what the Messages API asks to get back, unchanged, on the assistant turn
    of a tool-use loop: put :meth:`as_dict` of each in that message's
    ``thinking_blocks`` list.
    """

    type: str
    thinking: str = ""
    signature: str = ""
    data: str = ""

    def as_dict(self) -> dict[str, str]:
        """The block as the Messages API takes it back."""
        if self.type == "redacted_thinking":
            return {"type": self.type, "data": self.data}
        return {"type": self.type, "thinking": self.thinking, "signature": self.signature}


@frozen(slots=True)
class Chunk:
    """One piece of a streamed answer.

    ``text`` is visible content and may be empty (a role-only or usage-only
    chunk); ``reasoning`` is thinking text (``""`` when none); ``tool_calls``
    the tool-call deltas it carries. The last chunk of a complete answer
    usually carries ``finish_reason`` (``stop``, ``length``, ``tool_calls``,
    ``content_filter``) and, where the provider reports it, ``usage``.
    ``thinking_blocks`` carries each finished Anthropic thinking block (with
    its signature) on a chunk of its own, after its text came as ``reasoning``.
    """

    text: str = ""
    finish_reason: str | None = None
    usage: Usage | None = None
    reasoning: str = ""
    tool_calls: tuple[ToolCallDelta, ...] = ()
    thinking_blocks: tuple[ThinkingBlock, ...] = ()
