"""Server-Sent Events, bounded: bytes in, lines out, events out.

Two small pieces, each tested on its own (``tests/test_sse.py``):

* :class:`LineSplitter` cuts the response body into lines. It splits on
  ``\\n``, ``\\r\\n`` and ``\\r`` — also when a ``\\r\\n`` is split across two
  network reads — and decodes each complete line as UTF-8 (a multi-byte
  character never contains a line-ending byte, so splitting bytes first is
  safe). It enforces :data:`MAX_LINE_BYTES` *while reading*: the bytes of an
  unfinished line are counted as they arrive, so an upstream that sends one
  line that never ends fails the attempt after a megabyte, instead of growing
  memory until the deadline (httpx's ``aiter_lines`` keeps the whole line).

* :class:`SSEDecoder` follows the WHATWG ``text/event-stream`` rules: ``data``
  lines joined with ``\\n``, ``event``/``id``/``retry`` fields, ``:`` comments,
  one optional space after the colon, an event dispatched on a blank line, an
  unfinished event at end of stream discarded, a leading BOM ignored. The
  data of one event is bounded too (:data:`MAX_EVENT_CHARS`), against a stream
  of short ``data`` lines with no blank line between them.

Both raise :class:`~raceway.ProviderProtocolError`; neither quotes the
upstream's bytes, so nothing here can leak a secret the upstream echoes.
"""

from __future__ import annotations

from attrs import frozen

from .._errors import ProviderProtocolError

#: Bytes of one line. A chat chunk is a few hundred bytes and a whole
#: non-streamed answer in one event (a long tool call, a cached answer) stays
#: well under this; an upstream past it is broken, and reading stops here.
MAX_LINE_BYTES = 1024 * 1024
#: Characters of one event's ``data``: bounds a stream of short ``data`` lines
#: with no blank line between them.
MAX_EVENT_CHARS = 4 * 1024 * 1024

_ENDINGS = (b"\n", b"\r")


@frozen(slots=True)
class ServerSentEvent:
    """One dispatched event: its type (``message`` by default) and its data."""

    event: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None


class LineSplitter:
    """Turns the chunks of a byte stream into lines, without their endings.

    Feed each chunk to :meth:`feed`, which returns the lines it completed;
    at the end of the stream :meth:`flush` returns the unfinished last line,
    if any.
    """

    def __init__(self, *, max_line_bytes: int = MAX_LINE_BYTES, provider: str = "") -> None:
        self._pending: list[bytes] = []  # pieces of the unfinished line
        self._pending_size = 0
        self._skip_lf = False  # the last chunk ended in \r: a \n next is its other half
        self._max = max_line_bytes
        self._provider = provider

    def feed(self, data: bytes) -> list[str]:
        if self._skip_lf:
            self._skip_lf = False
            if data[:1] == b"\n":
                data = data[1:]
        has_cr = b"\r" in data
        if not has_cr and b"\n" not in data:
            if data:
                self._pending.append(data)
                self._pending_size += len(data)
                self._check(self._pending_size)
            return []
        if self._pending:
            self._pending.append(data)
            data = b"".join(self._pending)
            self._pending, self._pending_size = [], 0
        if has_cr:
            pieces = data.splitlines()
            if data.endswith(b"\r"):
                self._skip_lf = True
                tail = b""
            elif data.endswith(b"\n"):
                tail = b""
            else:
                tail = pieces.pop()
        else:  # the common case, \n only: one decode for all the complete lines
            last = data.rfind(b"\n")
            tail = data[last + 1 :]
            if len(data) > self._max:
                for piece in data[:last].split(b"\n"):
                    self._check(len(piece))
            if tail:
                self._check(len(tail))
                self._pending, self._pending_size = [tail], len(tail)
            return data[:last].decode("utf-8", "replace").split("\n")
        if len(data) > self._max:
            for piece in pieces:
                self._check(len(piece))
        if tail:
            self._check(len(tail))
            self._pending, self._pending_size = [tail], len(tail)
        return [piece.decode("utf-8", "replace") for piece in pieces]

    def flush(self) -> list[str]:
        """The unfinished last line (a stream may end without a line ending)."""
        rest = b"".join(self._pending)
        self._pending, self._pending_size = [], 0
        return [rest.decode("utf-8", "replace")] if rest else []

    def _check(self, size: int) -> None:
        if size > self._max:
            raise ProviderProtocolError(
                f"a line in the stream exceeds {self._max} bytes with no end", self._provider
            )


class SSEDecoder:
    """Turns ``text/event-stream`` lines into events, one line at a time.

    Feed each line (without its line ending) to :meth:`decode`; it returns an
    event when a blank line completes one. Whatever is pending when the stream
    ends is dropped, as the specification says.
    """

    def __init__(self, *, max_data_chars: int = MAX_EVENT_CHARS, provider: str = "") -> None:
        self._event = ""
        self._data: list[str] = []
        self._size = 0
        self._last_id: str | None = None
        self._retry: int | None = None
        self._first = True
        self._max = max_data_chars
        self._provider = provider

    def decode(self, line: str) -> ServerSentEvent | None:
        if self._first:
            self._first = False
            line = line.removeprefix("\ufeff")
        if not line:
            return self._dispatch()
        if line.startswith("data: "):  # nearly every line of a chat stream
            self._add_data(line[6:])
            return None
        if line.startswith(":"):
            return None  # a comment (often a keep-alive)
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._add_data(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._last_id = value
        elif name == "retry":
            if value.isdigit():
                self._retry = int(value)
        return None

    def _add_data(self, value: str) -> None:
        self._data.append(value)
        self._size += len(value) + 1
        if self._size > self._max:
            raise ProviderProtocolError(
                f"an event in the stream exceeds {self._max} characters with no end", self._provider
            )

    def _dispatch(self) -> ServerSentEvent | None:
        data, event = self._data, self._event
        self._data, self._event, self._size = [], "", 0
        if not data:
            return None
        return ServerSentEvent(event or "message", "\n".join(data), self._last_id, self._retry)
