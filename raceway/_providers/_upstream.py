"""What an upstream's failure says, read: retry-after, error bodies, error objects, TLS and OS reasons.

Pure functions, no I/O, so each is tested on its own. They *read* what the
upstream sent; none of them decides what may be shown: every text taken from
upstream bytes reaches a message only through :meth:`HTTPProvider.quote`
(secrets removed, then one line, then cut), which is why the functions here
return whole texts and never cut them.
"""

from __future__ import annotations

import email.utils
import json
import os
import socket
import ssl
import time
from collections.abc import Iterator, Mapping
from typing import Any

#: Characters of the upstream's error message kept in ours (one line).
MESSAGE_LIMIT = 240

#: Status codes of the error types Anthropic documents
#: (https://docs.anthropic.com/en/api/errors), and the ``type``/``code``
#: values OpenAI-compatible servers put in an in-stream ``{"error": ...}``
#: (OpenAI's ``server_error``, ``rate_limit_exceeded``, ``insufficient_quota``;
#: Groq's ``requests``/``tokens``; vLLM's and others' exception names), so an
#: error inside a 200 response is classified as its HTTP twin would be.
ERROR_STATUS = {
    "invalid_request_error": 400,
    "bad_request": 400,
    "badrequesterror": 400,
    "authentication_error": 401,
    "invalid_api_key": 401,
    "billing_error": 402,
    "permission_error": 403,
    "permission_denied": 403,
    "not_found_error": 404,
    "model_not_found": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "rate_limit_exceeded": 429,
    "ratelimiterror": 429,
    "requests": 429,
    "tokens": 429,
    "insufficient_quota": 429,
    "api_error": 500,
    "server_error": 500,
    "internal_error": 500,
    "internal_server_error": 500,
    "service_unavailable": 503,
    "timeout_error": 504,
    "timeout": 504,
    "overloaded_error": 529,
    "overloaded": 529,
}

# OpenSSL reasons that mean the other side answered something that is not TLS
# at all: almost always a plain-HTTP server behind an https:// URL.
_NOT_TLS = frozenset(
    {"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG", "UNKNOWN_PROTOCOL"}
)


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait, from ``retry-after-ms`` or ``retry-after`` (seconds or HTTP date).

    ``None`` when neither header is there or neither parses; never negative.
    """
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            return max(0.0, float(raw_ms) / 1000)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP date is always GMT
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def upstream_message(body: bytes | str) -> str:
    """The upstream's own error message from an error body, as one line (not cut).

    Understands the OpenAI shape (``{"error": {"message": ...}}``), the
    Anthropic shape (``{"type": "error", "error": {"type": ..., "message": ...}}``)
    and the common ``message``/``detail``/``error: "..."`` variants; otherwise
    the first line of the text.
    """
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        obj = json.loads(text)
    except ValueError:
        return one_line(next((ln for ln in text.splitlines() if ln.strip()), ""), None)
    return error_message(obj)


def error_message(obj: Any) -> str:
    """The message of a parsed error object (see :func:`upstream_message`), one line, not cut."""
    if isinstance(obj, list) and obj and isinstance(obj[0], dict):
        obj = obj[0]  # some gateways wrap the error in a list
    message = ""
    if isinstance(obj, dict):
        err = obj.get("error")
        if isinstance(err, dict):
            message = str(err.get("message") or err.get("type") or err.get("code") or "")
        elif isinstance(err, str):
            message = err
        if not message:
            for key in ("message", "detail", "error_description"):
                value = obj.get(key)
                if isinstance(value, str) and value:
                    message = value
                    break
    elif isinstance(obj, str):
        message = obj
    return one_line(message, None)


def error_label_and_status(obj: Any) -> tuple[str, int]:
    """What an in-stream error object is: a label (its type or code) and the HTTP status it stands for.

    A numeric ``code``/``status`` (OpenRouter and vLLM send ``"code": 429``)
    is taken as it is; otherwise the ``type`` or ``code`` is looked up in
    :data:`ERROR_STATUS`, then read loosely (``...rate_limit...``,
    ``...overloaded...``); anything else is a server error (500), as an
    unexplained failure inside a 200 response is.
    """
    err = obj.get("error") if isinstance(obj, dict) else None
    if not isinstance(err, dict):
        return "error", 500
    kind, code = err.get("type"), err.get("code")
    label = str(kind or code or "error")
    for value in (code, err.get("status"), kind):
        if isinstance(value, bool):
            continue
        if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
            if 100 <= int(value) <= 599:
                return label, int(value)
    names = [str(v).lower() for v in (kind, code) if isinstance(v, str) and v]
    for name in names:
        if name in ERROR_STATUS:
            return label, ERROR_STATUS[name]
    for name in names:
        if "rate" in name and "limit" in name:
            return label, 429
        if "overload" in name:
            return label, 529
    return label, 500


def one_line(text: str, limit: int | None = MESSAGE_LIMIT) -> str:
    """``text`` with its whitespace collapsed, cut to ``limit`` characters (``None``: not cut)."""
    flat = " ".join(text.split())
    return flat if limit is None or len(flat) <= limit else flat[: limit - 1] + "…"


def connect_reason(exc: BaseException) -> str | None:
    """Why a connection could not be made, from the causes buried in a connect error.

    A TLS failure is said to be one, with its reason: a server that speaks
    plain HTTP, a certificate that does not verify (and why), a handshake the
    server refused. Otherwise the operating system's reason (``Connection
    refused``): trio's happy eyeballs reports "all attempts to connect to ...
    failed" and keeps each attempt's ``OSError`` in the cause chain, inside a
    group. ``ssl.SSLError`` is an ``OSError`` whose errno is OpenSSL's error
    code, so it is looked for first: read as an OS error, errno 1 would say
    "Operation not permitted".
    """
    causes = list(_causes(exc))
    for current in causes:
        if isinstance(current, ssl.SSLError):
            return tls_reason(current)
    for current in causes:
        if isinstance(current, OSError) and (current.errno or current.strerror):
            if current.errno and not isinstance(current, socket.gaierror):
                return os.strerror(current.errno)  # trio's strerror also names the address
            return current.strerror
    return None


def tls_reason(exc: ssl.SSLError) -> str:
    """One line on a TLS failure, saying it is one and why."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        why = exc.verify_message or exc.reason or "it does not verify"
        return f"TLS error: the server's certificate was rejected ({why})"
    reason = str(exc.reason or "")
    if reason in _NOT_TLS:
        return (
            "TLS error: the server does not speak TLS on this port"
            f" (OpenSSL: {reason.lower()}); if it serves plain HTTP, use an http:// base_url"
        )
    if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError):
        return "TLS error: the server closed the connection during the TLS handshake"
    if "ALERT" in reason:
        return f"TLS error: the server refused the TLS handshake (OpenSSL: {reason.lower()})"
    detail = reason.lower() or (exc.strerror or "").strip() or type(exc).__name__
    return f"TLS error: the TLS handshake failed (OpenSSL: {detail})"


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and everything in its cause/context chain and exception groups, breadth first."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            todo.extend(current.exceptions)
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                todo.append(linked)
