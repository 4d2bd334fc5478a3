"""The ``redis:`` setting: where a fleet of engines shares what it learns, and its checks.

``redis: {url, prefix, events, events_maxlen}`` (top level only). ``url`` is
``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` for TLS or
``unix://[[user]:password@]/path.sock[?db=N]``; every key raceway writes lives
under ``{prefix}:``. A password in the URL is a secret: :func:`redact_url`
replaces it wherever the URL is shown (``config show``, log lines, errors).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlsplit

from attrs import frozen

from ._checks import Range, ranged

#: Where engines and ``raceway-dashboard --redis`` meet unless told otherwise.
DEFAULT_PREFIX = "raceway"
#: Entries the fleet's event stream keeps (``XADD ... MAXLEN ~``): about ten
#: seconds at 1,000 events/s, a few megabytes in Redis.
DEFAULT_EVENTS_MAXLEN = 10_000
SCHEMES = ("redis", "rediss", "unix")
_PREFIX_RE = re.compile(r"^[A-Za-z0-9_.\-]+(:[A-Za-z0-9_.\-]+)*$")


@frozen(kw_only=True)
class RedisConfig:
    """Shared state across processes and hosts (README: "Running a fleet").

    ``url`` names the Redis server; ``prefix`` the namespace of every key;
    ``events`` also appends monitor events and ``stats`` lines to the stream
    ``{prefix}:events``, capped near ``events_maxlen`` entries.
    """

    url: str
    prefix: str = DEFAULT_PREFIX
    events: bool = False
    events_maxlen: int = ranged(DEFAULT_EVENTS_MAXLEN, Range(low=1, what="a positive number of entries"))

    def __repr__(self) -> str:  # the URL may hold a password
        return (
            f"RedisConfig(url={redact_url(self.url)!r}, prefix={self.prefix!r}, "
            f"events={self.events!r}, events_maxlen={self.events_maxlen!r})"
        )


def redact_url(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``; never raises."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url if "@" not in url else "***"
    authority, slash, tail = rest.partition("/")
    if "@" not in authority:
        if scheme == "unix" and "@" in rest:  # unix://:password@/path
            creds, _, path = rest.rpartition("@")
            user = creds.partition(":")[0]
            return f"{scheme}://{user + ':' if user else ':'}***@{path}"
        return url
    creds, _, host = authority.rpartition("@")
    user, has_password, _ = creds.partition(":")
    shown = f"{user}:***" if has_password else ("***" if creds else "")
    return f"{scheme}://{shown}@{host}{slash}{tail}"


def check_redis(redis: RedisConfig | None, fail: Callable[[str, str], None]) -> None:
    """Validate ``redis`` (``fail(path, message)`` raises); the messages never show a password."""
    if redis is None:
        return
    shown = redact_url(redis.url)
    problem = url_problem(redis.url)
    if problem is not None:
        fail("$.redis.url", f"{problem} (got {shown!r})")
    if not _PREFIX_RE.match(redis.prefix):
        fail("$.redis.prefix", f"must be letters, digits, '_', '-', '.' and ':' separators, not {redis.prefix!r}")
    if redis.events_maxlen < 1:
        fail("$.redis.events_maxlen", f"must be a positive number of entries, not {redis.events_maxlen}")


def url_problem(url: str) -> str | None:
    """What is wrong with ``url`` as a Redis URL, or ``None`` when it is one."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port  # raises ValueError when not a number in range
    except ValueError:
        return "not a valid URL"
    if parts.scheme not in SCHEMES:
        return "must start with redis://, rediss:// or unix://"
    if parts.scheme == "unix":
        return None if parts.path else "a unix:// URL needs the socket's path"
    if not parts.hostname:
        return "needs a host, as in redis://localhost:6379/0"
    db = parts.path.strip("/")
    if db and not db.isdigit():
        return f"the database after the host must be a number, not {db!r}"
    del port
    return None
