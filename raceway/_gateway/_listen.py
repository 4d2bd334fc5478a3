"""The HTTP server: hypercorn's trio connections, under a listener that can always stop.

hypercorn's trio worker (``hypercorn.trio.serve``) has one flaw for a
streaming gateway: every write to a client runs shielded from cancellation
(so a response is never cut mid-frame). A client that stops reading — a
suspended laptop, a stuck proxy — fills its socket, and the write waits
until it reads again, which may be never. That is the backpressure we want
while the gateway runs (a slow client slows only its own race), but it means
such a connection's task can never be cancelled, and a gateway with one of
them can never stop.

So this module assembles the worker from hypercorn's own pieces
(``TCPServer`` per connection, its ``WorkerContext``) around listeners that
remember every accepted socket:

1. serve until ``shutdown_trigger`` returns (or the caller cancels);
2. stop accepting, tell idle keep-alive connections to close (hypercorn's
   ``terminated`` event), and give busy ones ``graceful_timeout`` to finish;
3. then cancel the connections and, after :data:`LAST_WORDS_S` for a
   cancelled stream to write its error event, close every socket still
   open: a write stuck on a client that does not read fails at once (trio
   wakes a task blocked on a socket that is closed), and the task ends.

Cancelling from outside skips step 2. Verified with hypercorn 0.18.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ConnectionState
from hypercorn.utils import repr_socket_addr, wrap_app

#: When connections are cancelled, how long they may take to say goodbye (a
#: cancelled stream writes an error event) before their sockets are closed.
LAST_WORDS_S = 0.5


class _Remembering(trio.abc.Listener[trio.SocketStream]):
    """A listener that keeps a (weak) set of the streams it accepted."""

    def __init__(self, inner: trio.SocketListener, streams: weakref.WeakSet[trio.SocketStream]) -> None:
        self._inner = inner
        self._streams = streams

    async def accept(self) -> trio.SocketStream:
        stream = await self._inner.accept()
        self._streams.add(stream)
        return stream

    async def aclose(self) -> None:
        await self._inner.aclose()


async def serve_http(
    app: Any,
    config: HypercornConfig,
    *,
    shutdown_trigger: Callable[[], Awaitable[Any]] | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the ASGI ``app`` on ``config.bind``; reports the bound URLs.

    Raises:
        OSError: an address cannot be bound.
    """
    sockets = config.create_sockets()  # (binds now: an address in use raises here)
    streams: weakref.WeakSet[trio.SocketStream] = weakref.WeakSet()
    listeners = []
    binds = []
    for sock in sockets.insecure_sockets:
        sock.listen(config.backlog)
        listeners.append(_Remembering(trio.SocketListener(trio.socket.from_stdlib_socket(sock)), streams))
        binds.append(f"http://{repr_socket_addr(sock.family, sock.getsockname())}")
    context = WorkerContext(None)
    wrapped = wrap_app(app, config.wsgi_max_body_size, "asgi")
    active = 0
    all_closed = trio.Event()

    async def connection(stream: trio.SocketStream) -> None:
        nonlocal active, all_closed
        active += 1
        try:
            await TCPServer(wrapped, config, context, ConnectionState({}), stream)  # type: ignore[arg-type]
        finally:
            active -= 1
            if active == 0:
                all_closed.set()
                all_closed = trio.Event()

    async def close_what_is_left() -> None:
        try:
            await trio.sleep_forever()
        finally:  # cancelled: a moment for last words (a stream's error event), then close
            with trio.CancelScope(shield=True), trio.move_on_after(LAST_WORDS_S):
                while active:
                    await all_closed.wait()
            for stream in list(streams):
                stream.socket.close()

    async with trio.open_nursery() as connections:
        connections.start_soon(close_what_is_left)
        async with trio.open_nursery() as accepting:
            accepting.start_soon(partial(trio.serve_listeners, connection, listeners, handler_nursery=connections))
            task_status.started(binds)
            await (shutdown_trigger or trio.sleep_forever)()
            accepting.cancel_scope.cancel()
        await context.terminated.set()  # idle keep-alive connections close now
        with trio.move_on_after(config.graceful_timeout):
            while active:
                await all_closed.wait()
        connections.cancel_scope.cancel()
