"""Small text helpers for one-line messages: shared so every module words things alike.

* :func:`one_line` — the first line of an exception's text (what attempt
  records, warnings and summaries quote);
* :func:`escaped` — a user's text with control characters escaped, so a key
  or a path with a newline cannot split a one-line error;
* :func:`did_you_mean` — the closest known name to a misspelt one (difflib);
* :func:`plural` — "1 provider", "2 providers".

No imports beyond the standard library: every stage of raceway may use it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

#: How alike two names must be for a suggestion (difflib's ratio; its own default).
SUGGESTION_CUTOFF = 0.6
#: A misspelling shorter than this is only matched by difflib, never by containment.
_MIN_CONTAINED = 3


def one_line(exc: BaseException) -> str:
    """The first line of ``str(exc)``, or the exception's type name when it has no text."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def escaped(text: str) -> str:
    """``text`` with control characters (newlines, NUL, escape, ...) written as escapes."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """The known name ``word`` most likely meant, or ``None``.

    difflib's closest match first (``weigth`` -> ``weight``, ``anthropc`` ->
    ``anthropic``); failing that, the one choice that contains ``word`` or is
    contained in it (``url`` -> ``base_url``).
    """
    options = {c.lower(): c for c in choices}
    low = word.lower()
    close = difflib.get_close_matches(low, list(options), n=1, cutoff=SUGGESTION_CUTOFF)
    if close:
        return options[close[0]]
    if len(low) < _MIN_CONTAINED:
        return None
    contained = [c for lc, c in options.items() if low in lc or (len(lc) >= _MIN_CONTAINED and lc in low)]
    return contained[0] if len(contained) == 1 else None


def suggestion(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for :func:`did_you_mean`'s answer, else ``""``."""
    match = did_you_mean(word, choices)
    return "" if match is None else f" (did you mean {match!r}?)"


def plural(n: int, word: str, many: str | None = None) -> str:
    """``"1 provider"``, ``"2 providers"`` (``many`` for irregular plurals)."""
    return f"{n} {word if n == 1 else many or word + 's'}"


def short_repr(value: object, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters (a pasted document does not fill the error)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
