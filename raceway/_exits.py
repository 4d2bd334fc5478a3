"""Clean exits: long-running commands stop on SIGINT/SIGTERM, and a caller's exception leaves
raceway's nurseries as itself.

Stopping a command
------------------

:func:`run_stoppable` is ``trio.run`` for a command that runs until the user
stops it (``raceway demo``, ``bench``, ``serve``). While it runs, SIGINT and
SIGTERM do not raise anything: they *cancel* the command, so every
``finally`` and ``async with`` on the way out runs as for any other
cancellation — the engine saves its statistics, the monitor removes its
socket. Then :class:`Stopped` is raised, and the command line turns it into
exit status 0 (SIGTERM, an orderly stop) or 130 (Ctrl-C, the shell's
convention for SIGINT), with no traceback. A server that should drain first
waits on :func:`stop_requested` (hypercorn's ``shutdown_trigger``) and runs
with ``grace_s``: the cancellation comes that much later.

The naive version — letting trio raise ``KeyboardInterrupt`` — fails twice:
the interrupt lands at any bytecode (in the middle of a save), and each
nursery it passes wraps it in another ``BaseExceptionGroup``, so the user
sees a three-deep traceback and exit status 1. SIGTERM by default kills the
process outright, saving nothing.

A second signal while the first one's clean-up runs is left to the
handlers outside (the receiver is closed after the first): a user who
presses Ctrl-C twice gets a plain ``KeyboardInterrupt``, which the command
line reports as "interrupted", 130.

Outside trio — before ``trio.run`` starts, after it ends, or in a command
that only waits on child processes (the demo's dashboard) —
:func:`sigterm_interrupts` makes SIGTERM behave as Ctrl-C does (a
``KeyboardInterrupt``, delivered through the SIGINT handler, so inside
``trio.run`` trio's own safe delivery applies) while remembering that it
was SIGTERM: :func:`interrupt_status` then says 0, not 130.

A caller's own exception
------------------------

:func:`own_exception` wraps the nursery of ``open_engine``: with trio's
strict exception groups, whatever the caller's code raises inside ``async
with open_engine(...)`` would come out wrapped in a group of one.
"""

from __future__ import annotations

import signal
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn, TypeVar

import trio

T = TypeVar("T")

#: The exit status of a command stopped by each signal (the shell's 128 + n for Ctrl-C).
EXIT_STATUS = {signal.SIGINT: 130, signal.SIGTERM: 0}
STOP_SIGNALS = tuple(EXIT_STATUS)


class Stopped(Exception):
    """A command ended because it received ``signum`` (after cleaning up)."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.exit_status = EXIT_STATUS.get(signal.Signals(signum), 128 + signum)
        super().__init__(f"stopped by {signal.Signals(signum).name}")


class SigtermInterrupts:
    """What :func:`sigterm_interrupts` saw: whether a SIGTERM caused the interrupt."""

    def __init__(self) -> None:
        self.terminated = False

    @property
    def exit_status(self) -> int:
        """0 when SIGTERM stopped the command, else 130 (Ctrl-C)."""
        return EXIT_STATUS[signal.SIGTERM if self.terminated else signal.SIGINT]

    def _handle(self, signum: int, frame: Any) -> None:
        self.terminated = True
        if signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, signal.SIG_DFL, None):
            raise KeyboardInterrupt  # no Python handler to go through (SIGINT ignored)
        signal.raise_signal(signal.SIGINT)  # trio's handler, or Python's default one


@contextmanager
def sigterm_interrupts() -> Iterator[SigtermInterrupts]:
    """Inside this block, SIGTERM raises ``KeyboardInterrupt`` as Ctrl-C does, and is remembered.

    For a whole command: :func:`run_stoppable` replaces the handler while
    its trio loop runs and puts it back after. Off the main thread, a no-op.
    """
    seen = SigtermInterrupts()
    try:
        previous = signal.signal(signal.SIGTERM, seen._handle)
    except ValueError:  # not the main thread
        yield seen
        return
    try:
        yield seen
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_stoppable(
    async_fn: Callable[..., Awaitable[T]], *args: Any, grace_s: float = 0.0, **run_kwargs: Any
) -> T:
    """``trio.run(async_fn, *args, **run_kwargs)``, stopped cleanly by SIGINT or SIGTERM.

    On the first signal, :func:`stop_requested` returns (a server stops
    accepting and drains: hypercorn's ``shutdown_trigger``); ``grace_s``
    seconds later — at once by default — ``async_fn`` is cancelled. Must be
    called from the main thread (signal handlers live there).

    Raises:
        Stopped: a signal stopped the run (its clean-up done), whether
            ``async_fn`` then returned or was cancelled.
        KeyboardInterrupt: a second Ctrl-C during that clean-up, or one
            before the signal handlers were in place.
    """
    try:
        return trio.run(_stoppable, async_fn, args, grace_s, **run_kwargs)
    except BaseExceptionGroup as group:
        _raise_single(group)
        raise


async def stop_requested() -> None:
    """Return once SIGINT or SIGTERM asked the :func:`run_stoppable` run around us to stop."""
    await _STOP.get().wait()


#: The current run_stoppable run's "a signal came" event.
_STOP: trio.lowlevel.RunVar[trio.Event] = trio.lowlevel.RunVar("raceway_stop")


async def _stoppable(async_fn: Callable[..., Awaitable[T]], args: tuple[Any, ...], grace_s: float) -> T:
    received: list[int] = []
    _STOP.set(trio.Event())
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            await nursery.start(_watch_signals, scope, received, grace_s)
            with own_exception():
                result = await async_fn(*args)
            nursery.cancel_scope.cancel()
    if received:
        raise Stopped(received[0])
    return result


async def _watch_signals(
    scope: trio.CancelScope,
    received: list[int],
    grace_s: float,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    with trio.open_signal_receiver(*STOP_SIGNALS) as signals:
        task_status.started()
        async for signum in signals:
            received.append(signum)
            break
    # Out of the receiver: the handlers outside take a second signal.
    _STOP.get().set()
    await trio.sleep(grace_s)
    scope.cancel()


@contextmanager
def own_exception() -> Iterator[None]:
    """Let an exception out of the nurseries inside this block as itself, not as a group.

    raceway's tasks never raise (they report through the race or log), so a
    group of one holds what the caller's code raised — a ``KeyboardInterrupt``,
    the caller's own error, or the caller's own exception group — and it is
    re-raised unwrapped. A group of several that holds a ``KeyboardInterrupt``
    becomes that ``KeyboardInterrupt`` (the rest are its context): an
    interrupt must reach the caller as one.
    """
    try:
        yield
    except BaseExceptionGroup as group:
        _raise_single(group)
        raise


def _raise_single(group: BaseExceptionGroup[BaseException]) -> None:
    if len(group.exceptions) == 1:
        _reraise(group.exceptions[0])
    interrupts, _ = group.split(KeyboardInterrupt)
    if interrupts is not None:
        interrupt = _first_leaf(interrupts)
        interrupt.__context__ = group
        _reraise(interrupt)


def _first_leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc


def _reraise(exc: BaseException) -> NoReturn:
    raise exc from exc.__cause__
