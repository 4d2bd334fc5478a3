"""Serving the gateway: :class:`GatewayApp` on hypercorn's trio connections, and ``raceway serve``.

The entry points come in a pair, as trio's do: :func:`serve_gateway` for
``nursery.start`` (it reports the :class:`Gateway` once it listens) and
:func:`open_gateway`, an async context manager that owns its nursery. Both
serve one engine the caller opened; :func:`run_gateway` is the command:
engine, gateway, the start-up lines, the drain.

Stopping (``raceway._exits.run_stoppable`` turns SIGINT/SIGTERM into a stop
request): the gateway stops accepting connections and gives in-flight
requests ``serve.drain_timeout_s`` to finish; a stream still running then
ends with an error event, and a client that stopped reading is disconnected
(``_listen``). The engine closes as usual (statistics saved, monitor socket
removed); the command exits 0 on SIGTERM, 130 on Ctrl-C, with no traceback.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import IO, TYPE_CHECKING, Any

import trio
from attrs import frozen
from hypercorn.config import Config as HypercornConfig

from .._errors import ConfigError
from ._app import GatewayApp
from ._listen import serve_http

if TYPE_CHECKING:
    from .._config import Config, ServeConfig
    from .._engine import Engine


@frozen
class Gateway:
    """A running gateway: where it listens, and its app (metrics, health)."""

    url: str
    app: GatewayApp

    @property
    def openai_base_url(self) -> str:
        """What the openai SDK takes as ``base_url``."""
        return f"{self.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        """What the anthropic SDK takes as ``base_url``."""
        return self.url


def gateway_keys(settings: ServeConfig) -> tuple[bytes, ...]:
    """SHA-256 digests of the keys in ``serve.api_keys_env`` (none: no keys needed).

    Raises:
        ConfigError: the variable is named but unset or holds no keys.
    """
    name = settings.api_keys_env
    if not name:
        return ()
    keys = [k.strip() for k in os.environ.get(name, "").split(",") if k.strip()]
    if not keys:
        raise ConfigError(
            "$.serve.api_keys_env", f"names {name}, which is not set or holds no keys; set it to comma-separated gateway keys"
        )
    return tuple(hashlib.sha256(k.encode()).digest() for k in keys)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _bind(host: str, port: int) -> str:
    return f"[{host.strip('[]')}]:{port}" if ":" in host else f"{host}:{port}"


async def serve_gateway(
    engine: Engine,
    *,
    host: str | None = None,
    port: int | None = None,
    shutdown_trigger: Callable[[], Awaitable[Any]] | None = None,
    task_status: trio.TaskStatus[Gateway] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``engine`` over HTTP until cancelled (or ``shutdown_trigger`` returns, then drain).

    ``host`` and ``port`` default to ``serve.host``/``serve.port``; port 0
    picks a free one. Reports the :class:`Gateway` to ``task_status``.

    Raises:
        ConfigError: ``serve.api_keys_env`` names an unset variable.
        OSError: the address cannot be bound.
    """
    settings = engine.config.serve
    host = settings.host if host is None else host
    port = settings.port if port is None else port
    app = GatewayApp(engine, settings, gateway_keys(settings))
    config = HypercornConfig()
    config.bind = [_bind(host, port)]
    config.accesslog = None  # (requests carry keys in headers: no access log at all)
    config.loglevel = "WARNING"
    config.graceful_timeout = settings.drain_timeout_s
    config.include_server_header = False
    unsubscribe = engine.subscribe(app.metrics)
    try:
        async with trio.open_nursery() as nursery:
            app.nursery = nursery
            binds = await nursery.start(partial(serve_http, app, config, shutdown_trigger=shutdown_trigger))
            task_status.started(Gateway(url=binds[0], app=app))
    finally:
        unsubscribe()


@asynccontextmanager
async def open_gateway(engine: Engine, *, host: str | None = None, port: int | None = None) -> AsyncIterator[Gateway]:
    """Serve ``engine`` while inside: ``async with open_gateway(engine, port=0) as gw``."""
    from .._exits import own_exception

    with own_exception():
        async with trio.open_nursery() as nursery:
            gateway: Gateway = await nursery.start(partial(serve_gateway, engine, host=host, port=port))
            try:
                yield gateway
            finally:
                nursery.cancel_scope.cancel()


async def run_gateway(
    config: Config,
    host: str | None = None,
    port: int | None = None,
    *,
    out: IO[str] | None = None,
    shutdown_trigger: Callable[[], Awaitable[Any]] | None = None,
) -> None:
    """``raceway serve``: open the engine, serve it, say where, and drain when told to stop.

    ``shutdown_trigger`` returns when it is time to stop; by default, the
    first SIGINT/SIGTERM of the :func:`raceway._exits.run_stoppable` run
    this runs in. Then in-flight requests get ``serve.drain_timeout_s``.

    Raises:
        ConfigError: a setup mistake (the key variable unset, the address taken).
    """
    from .._exits import stop_requested

    say = partial(print, file=out or sys.stderr, flush=True)
    to_stdout = out is None and not sys.stdout.isatty()

    def announce(line: str) -> None:
        """The URL and socket lines: on stderr, and on stdout too when it is piped (a
        supervisor, a script waiting for ``--port 0``'s URL); in a terminal they show once."""
        say(line)
        if to_stdout:
            print(line, flush=True)
    settings = config.serve
    host = settings.host if host is None else host
    gateway_keys(settings)  # a missing key variable is a setup error: before anything opens
    address = _bind(host, settings.port if port is None else port)
    trigger = shutdown_trigger or stop_requested

    async def stop() -> None:
        await trigger()
        say(f"raceway serve: stopping: finishing in-flight requests (up to {settings.drain_timeout_s:g} s)")

    try:
        await _serve_until_stopped(config, host, port, stop, say, announce)
    except (OSError, BaseExceptionGroup) as exc:
        error = _find(exc, OSError)
        if error is None:
            raise
        raise ConfigError("$.serve", f"cannot listen on {address}: {error.strerror or error}") from None
    say("raceway serve: stopped")


async def _serve_until_stopped(
    config: Config,
    host: str,
    port: int | None,
    stop: Callable[[], Awaitable[None]],
    say: Callable[[str], None],
    announce: Callable[[str], None],
) -> None:
    from .._engine import open_engine

    async with open_engine(config) as engine:
        gateway: Gateway
        async with trio.open_nursery() as nursery:
            gateway = await nursery.start(partial(serve_gateway, engine, host=host, port=port, shutdown_trigger=stop))
            announce(f"raceway serve: listening on {gateway.url} (OpenAI base URL {gateway.openai_base_url}, "
                     f"Anthropic base URL {gateway.anthropic_base_url})")
            if engine.monitor_socket is not None:
                announce(f"raceway serve: monitor socket {engine.monitor_socket} (raceway-dashboard attaches to it)")
            if not gateway.app.keys and not is_loopback(host):
                say(f"raceway serve: warning: listening on {host} without gateway keys: anyone who can reach it "
                    "can spend your providers' quota (set serve.api_keys_env)")


def _find(exc: BaseException, kind: type[OSError]) -> OSError | None:
    """The first ``kind`` in ``exc`` or the groups it is made of."""
    if isinstance(exc, kind):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _find(inner, kind)
            if found is not None:
                return found
    return None
