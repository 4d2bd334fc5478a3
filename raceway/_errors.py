"""The exception tree: every error raceway raises on purpose.

::

    RacewayError
    ├── ConfigError                 bad configuration; carries the field path
    ├── NoSuchModelError            a virtual model name that the config does not define
    ├── AllProvidersFailedError     no attempt produced a usable answer
    │   └── RaceTimeoutError        ... because timeout_ms passed before a decision
    ├── StreamInterruptedError      the winner broke after tokens reached the caller
    ├── StrategyError               a strategy raised or broke a rule (its bug, not a provider's)
    └── ProviderError               one attempt failed (the cause of the above)
        ├── MissingAPIKeyError      the provider's key variable is not set
        ├── ProviderConnectionError connect refused/reset, DNS, TLS
        ├── ProviderTimeoutError    no first token / no chunk in time
        ├── ProviderProtocolError   malformed or truncated stream
        ├── UnsupportedRequestError the provider cannot honour a parameter (nothing was sent)
        └── ProviderHTTPError       the upstream answered with an HTTP error status
            ├── AuthenticationError 401 / 403
            └── RateLimitedError    429, with retry_after

A ``ProviderError`` is never raised to the caller on its own: attempts fail,
the race goes on, and only when every attempt failed does the caller see an
``AllProvidersFailedError`` whose ``__cause__`` is an ``ExceptionGroup`` of
every attempt's ``ProviderError``.
"""

from __future__ import annotations

from typing import Any


class RacewayError(Exception):
    """Base of every error raceway raises on purpose."""


class ConfigError(RacewayError):
    """The configuration is invalid.

    Raised by :func:`raceway.load_config` and when an engine is opened. ``path``
    names the field in JSONPath style (``$.virtual_models['fast'].timeout_ms``)
    and ``message`` says what is wrong with it; ``source`` is the file, when
    there is one. ``str()`` is one line meant for a human (the whole document,
    ``$``, is not named: ``raceway.yaml: invalid YAML at line 3``).
    """

    def __init__(self, path: str, message: str, source: str | None = None) -> None:
        self.path = path
        self.message = message
        self.source = source
        where = [part for part in (source, None if path == "$" else path) if part]
        super().__init__(": ".join([*where, message]))


class NoSuchModelError(RacewayError):
    """The requested virtual model is not defined in the configuration."""

    def __init__(self, model: str, known: list[str]) -> None:
        self.model = model
        self.known = known
        choices = ", ".join(known) if known else "none defined"
        super().__init__(f"unknown virtual model {model!r} (known: {choices})")


class AllProvidersFailedError(RacewayError):
    """Every attempt of a race failed before a winner could be decided.

    ``__cause__`` is an ``ExceptionGroup`` holding each attempt's error, and
    ``errors`` maps ``provider/model`` labels to them. It is not raised when a
    winner broke mid-stream (that is :class:`StreamInterruptedError`).
    """

    def __init__(self, message: str, errors: dict[str, BaseException] | None = None) -> None:
        self.errors = dict(errors or {})
        super().__init__(message)


class RaceTimeoutError(AllProvidersFailedError):
    """``timeout_ms`` passed before any attempt succeeded.

    This bounds the decision only; a winner that is already streaming is held
    to ``idle_timeout_ms`` between chunks instead.
    """


class StreamInterruptedError(RacewayError):
    """The winner's stream broke after some of its text reached the caller.

    ``partial_text`` is everything the caller received; ``provider`` and
    ``model`` name the winner. Losers were already cancelled, so the race is
    not retried: the caller decides whether to ask again.
    """

    def __init__(self, message: str, partial_text: str, provider: str = "", model: str = "") -> None:
        self.partial_text = partial_text
        #: The tool calls the winner had streamed (arguments possibly cut off).
        self.partial_tool_calls: tuple[Any, ...] = ()
        self.provider = provider
        self.model = model
        super().__init__(message)


class StrategyError(RacewayError):
    """A strategy raised, or broke a rule the race core enforces.

    A bug in the strategy (starting an attempt twice, picking one that has
    not succeeded, answering something that is not a decision), never a
    provider's failure: the race fails with it and no provider is blamed.
    ``rule`` names the broken rule (``raceway.testing.RULES`` lists them).
    """

    rule: str = "raise"


class ProviderError(RacewayError):
    """One attempt at one provider failed.

    ``provider`` is the provider's configured name; ``kind`` is a short stable
    label for statistics (``http``, ``rate_limited``, ``timeout``, ...).
    """

    kind = "error"

    def __init__(self, message: str, provider: str = "") -> None:
        self.provider = provider
        super().__init__(message)


class MissingAPIKeyError(ProviderError):
    """The environment variable holding the provider's API key is not set."""

    kind = "missing_key"

    def __init__(self, env_var: str, provider: str = "") -> None:
        self.env_var = env_var
        super().__init__(f"API key missing: set the environment variable {env_var}", provider)


class ProviderConnectionError(ProviderError):
    """The connection could not be made or was lost (refused, reset, DNS, TLS)."""

    kind = "connection"


class ProviderTimeoutError(ProviderError):
    """No first token within ``ttft_timeout_ms``, or no chunk within ``idle_timeout_ms``."""

    kind = "timeout"


class ProviderProtocolError(ProviderError):
    """The upstream's stream was malformed or ended without its end marker."""

    kind = "protocol"


class UnsupportedRequestError(ProviderError):
    """The request asks for something this provider cannot do; nothing was sent.

    Raised before any I/O, so the attempt costs nothing: ``json_object``
    output on ``anthropic`` (the Messages API needs a schema), a forced tool
    call on a ``sim`` provider, a content part the wire format has no block
    for. ``parameter`` names what could not be honoured
    (``response_format``, ``messages[2].content[1]``, ...). It is not a
    caller mistake (another provider of the race may well honour it) and not
    an upstream failure.
    """

    kind = "unsupported"

    def __init__(self, parameter: str, reason: str, provider: str = "") -> None:
        self.parameter = parameter
        super().__init__(f"unsupported {parameter}: {reason}", provider)


class ProviderHTTPError(ProviderError):
    """The upstream answered with an HTTP error status."""

    kind = "http"

    def __init__(self, message: str, status_code: int, provider: str = "") -> None:
        self.status_code = status_code
        super().__init__(message, provider)


class AuthenticationError(ProviderHTTPError):
    """401 or 403: the key is missing, wrong or not allowed this model."""

    kind = "auth"


class RateLimitedError(ProviderHTTPError):
    """429: the upstream asks us to slow down; ``retry_after`` is in seconds, if given."""

    kind = "rate_limited"

    def __init__(
        self, message: str, retry_after: float | None = None, provider: str = ""
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, 429, provider)
