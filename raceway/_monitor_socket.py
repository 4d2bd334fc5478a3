"""The monitor's socket file: binding it privately, replacing stale ones, removing it at the end.

``auto`` (and ``None``) means ``raceway-<pid>.sock`` in
:func:`raceway.wire.default_monitor_dir`, created 0700 (``raceway-<pid>-2.sock``
and so on if a live engine of this process already serves there; the
per-user temporary directory if ``$XDG_RUNTIME_DIR`` is unusable or too long
for a socket path). Sockets left there by crashed engines are removed. A path
means exactly that file; its directory is created 0700 when missing. A file
left by a crashed engine (``connect`` is refused) is replaced; a live engine
at an explicit path is a :class:`~raceway.ConfigError`. The file is removed
when the monitor stops, unless another engine replaced it meanwhile.

:func:`_bind_auto` and :func:`_bind_explicit` return the listening socket,
the path bound and the file's identity, which :func:`_remove` checks before
unlinking; :func:`raceway._monitor.serve_monitor` drives them.
"""

from __future__ import annotations

import errno
import os
import socket as stdlib_socket
import stat
import tempfile
from pathlib import Path

import trio

from . import wire
from ._errors import ConfigError

#: Pending connections the kernel holds for us.
BACKLOG = 64
#: ``sun_path`` holds 108 bytes on Linux (104 on macOS), the terminating NUL included.
MAX_SOCKET_PATH = 103


class _InUse(Exception):
    pass


async def _bind_auto() -> tuple[trio.socket.SocketType, Path, tuple[int, int]]:
    preferred = wire.default_monitor_dir()
    fallback = Path(tempfile.gettempdir()) / f"raceway-{os.getuid()}"
    for directory in dict.fromkeys((preferred, fallback)):
        # The fallback serves when $XDG_RUNTIME_DIR is unusable or too deep for sun_path.
        try:
            _private_dir(directory)
            await _sweep_stale(directory)
            return await _bind_first_free(directory)
        except ConfigError as exc:
            problem = exc
    raise problem


async def _bind_first_free(directory: Path) -> tuple[trio.socket.SocketType, Path, tuple[int, int]]:
    pid = os.getpid()
    for n in range(1, 100):
        name = f"{wire.SOCKET_PREFIX}{pid}{'' if n == 1 else f'-{n}'}{wire.SOCKET_SUFFIX}"
        try:
            return await _bind(directory / name)
        except _InUse:
            continue
    raise ConfigError("$.monitor.socket", f"no free socket name in {directory}")


async def _bind_explicit(path: Path) -> tuple[trio.socket.SocketType, Path, tuple[int, int]]:
    if "\x00" in str(path):  # the kernel would bind the name cut at the NUL: a stray file
        raise ConfigError("$.monitor.socket", "contains a NUL byte (\\x00), which no socket path can hold")
    path = path.expanduser()
    if not path.parent.exists():
        try:
            path.parent.mkdir(parents=True, mode=0o700)
        except OSError as exc:
            raise ConfigError("$.monitor.socket", f"cannot create {path.parent}: {exc.strerror or exc}") from None
    try:
        return await _bind(path)
    except _InUse:
        raise ConfigError(
            "$.monitor.socket", f"{path} is in use by a running raceway engine; choose another path or 'auto'"
        ) from None


def _private_dir(directory: Path) -> None:
    """Make sure ``directory`` exists, is ours and only we can enter it (0700)."""
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        st = directory.lstat()
    except OSError as exc:
        raise ConfigError("$.monitor.socket", f"cannot create {directory}: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        raise ConfigError("$.monitor.socket", f"{directory} is not a directory of this user's")
    if st.st_mode & 0o077:
        os.chmod(directory, 0o700)


async def _bind(path: Path) -> tuple[trio.socket.SocketType, Path, tuple[int, int]]:
    """Bind and listen at ``path``, replacing a stale socket file; ``_InUse`` if a live one answers."""
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        raise ConfigError("$.monitor.socket", f"{path} is too long for a Unix socket (at most {MAX_SOCKET_PATH} bytes)")
    for _ in range(3):  # another engine may be replacing the same stale file right now
        sock = trio.socket.socket(stdlib_socket.AF_UNIX, stdlib_socket.SOCK_STREAM)
        try:
            await sock.bind(str(path))
        except OSError as exc:
            sock.close()
            if exc.errno != errno.EADDRINUSE:
                raise ConfigError("$.monitor.socket", f"cannot bind {path}: {exc.strerror or exc}") from None
            await _replace_if_stale(path)
            continue
        try:
            os.chmod(path, 0o600)
            st = os.stat(path)
            sock.listen(BACKLOG)
        except BaseException:
            sock.close()
            raise
        return sock, path, (st.st_dev, st.st_ino)
    raise _InUse


async def _sweep_stale(directory: Path) -> None:
    """Remove sockets of crashed engines from the default directory, so discovery finds live ones."""
    for path in wire.find_sockets(directory):
        try:
            await _replace_if_stale(path)
        except (_InUse, ConfigError):
            pass


async def _replace_if_stale(path: Path) -> None:
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise ConfigError("$.monitor.socket", f"{path} exists and is not a socket")
    probe = trio.socket.socket(stdlib_socket.AF_UNIX, stdlib_socket.SOCK_STREAM)
    try:
        with trio.move_on_after(2.0):
            await probe.connect(str(path))
            raise _InUse  # a live engine answered
        raise _InUse  # it accepts connections but is slow to: treat as live
    except OSError as exc:
        if exc.errno == errno.ECONNREFUSED:  # left by a crashed process
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            return
        if exc.errno == errno.ENOENT:
            return
        raise _InUse from None  # cannot tell (EACCES, EAGAIN): never steal it
    finally:
        probe.close()


def _remove(path: Path, identity: tuple[int, int]) -> None:
    try:
        st = os.stat(path)
        if (st.st_dev, st.st_ino) == identity:
            path.unlink()
    except OSError:
        pass
