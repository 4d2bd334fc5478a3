"""Scripted provider objects for race tests: each provider name gets a script.

A test makes a :class:`Stage` (the ``stage`` fixture), sets
``stage.scripts[name] = Script(...)``, and races the stage's providers with
``raceway.open_engine(config, providers=stage.providers())``. Every step and
every cancellation is recorded in ``stage.log`` with trio's (virtual) time,
so tests can assert exactly when a loser was cancelled. Nothing is shared
between stages: each test owns its scripts, log and requests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import trio
from attrs import define, field

import raceway
from raceway import Chunk, Request


@define
class Script:
    """``ttft``: seconds to the first chunk; ``chunks``: the text pieces; ``gap``:
    seconds between them; ``fail_at``: raise at this time instead of answering;
    ``hang``: never answer; ``finish``: the last chunk's finish reason;
    ``stall_after``: stop sending (hang) after this many chunks; ``break_with``:
    raise this after the chunks instead of finishing."""

    ttft: float = 0.0
    chunks: list[str] = field(factory=lambda: ["hello"])
    gap: float = 0.0
    fail_at: float | None = None
    error: Exception | None = None
    hang: bool = False
    finish: str | None = "stop"
    stall_after: int | None = None
    break_with: Exception | None = None


@define
class Stage:
    """One test's scripts (by provider name), what its providers did (``log``) and were asked (``requests``)."""

    scripts: dict[str, Script] = field(factory=dict)
    log: list[tuple[str, str, float]] = field(factory=list)
    requests: list[Request] = field(factory=list)

    def providers(self, *names: str) -> dict[str, ScriptedProvider]:
        """A provider object for each scripted name and each of ``names``, for ``open_engine(providers=...)``.

        Each plays its name's script as it is when a request comes, so a name
        given here needs a script only if it is asked to answer.
        """
        return {name: ScriptedProvider(name, self) for name in sorted({*self.scripts, *names})}

    def events(self, name: str) -> list[tuple[str, float]]:
        return [(what, t) for n, what, t in self.log if n == name]

    def when(self, name: str, what: str) -> float | None:
        for n, w, t in self.log:
            if n == name and w == what:
                return t
        return None


class ScriptedProvider(raceway.Provider):
    """Plays ``stage.scripts[name]``, logging each step in ``stage.log``; its model is ``{name}-m``."""

    def __init__(self, name: str, stage: Stage) -> None:
        super().__init__(name)
        self.stage = stage
        self.model = f"{name}-m"

    async def stream(self, request: Request) -> AsyncIterator[Chunk]:
        name = self.name
        log = self.stage.log
        s = self.stage.scripts[name]
        self.stage.requests.append(request)
        t0 = trio.current_time()
        log.append((name, "start", t0))
        try:
            if s.hang:
                await trio.sleep_forever()
            if s.fail_at is not None:
                await trio.sleep(s.fail_at)
                log.append((name, "fail", trio.current_time()))
                raise s.error or RuntimeError(f"{name} failed on purpose")
            await trio.sleep(s.ttft)
            for i, text in enumerate(s.chunks):
                if i:
                    await trio.sleep(s.gap)
                if s.stall_after is not None and i >= s.stall_after:
                    await trio.sleep_forever()
                log.append((name, "chunk", trio.current_time()))
                last = i == len(s.chunks) - 1
                yield Chunk(text, finish_reason=s.finish if last and not s.break_with else None)
            if s.break_with is not None:
                raise s.break_with
            log.append((name, "done", trio.current_time()))
        except trio.Cancelled:
            log.append((name, "cancelled", trio.current_time()))
            raise
        except GeneratorExit:
            log.append((name, "closed", trio.current_time()))
            raise
