"""Complete lines from a byte stream, each at most :data:`MAX_LINE` bytes, in flat memory.

A run file's reader takes a line only once its newline has arrived: its writer may still be
writing it. :class:`LineReader` keeps what it has read of an unfinished line and, when asked
again, reads only the bytes added since, so waiting for a newline costs a read of nothing per
poll instead of a read of the whole unfinished line again (a 50 MB header without its newline
cost 37% of a core, re-read every 50 ms).

A line longer than :data:`MAX_LINE` is never held: once it passes the limit its bytes are
dropped as they arrive, up to its newline, and it is handed out as a :class:`RawLine` without
data (its offset and size only), which readers count as a corrupt line. So no file, not even
``/dev/zero`` or a gigabyte without a newline, makes a reader grow past ``MAX_LINE`` plus one
read of :data:`CHUNK` bytes.

Conventions: offsets are byte offsets in the stream (``start`` is where the reader began); a
line's ``size`` counts its newline; a line of exactly ``MAX_LINE`` bytes, newline included, is
read whole, one byte more is too long.
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple, Protocol

# The longest line read whole: a snapshot of about 5,000 predictions is 0.4 MB and one of a
# 1,300-layer torch model about 0.6 MB, so 16 MiB leaves room for ~25x either while keeping a
# hostile file's cost bounded (one line parsed as JSON takes a few times its size in memory).
MAX_LINE = 16 * 1024 * 1024
# Bytes asked of the stream per read: small enough that a too-long line is dropped in steps of
# this size, large enough that a file of short lines is read in few calls.
CHUNK = 256 * 1024


class Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes | None: ...


class RawLine(NamedTuple):
    """One complete line: where it starts, its bytes (newline included), or None when it was
    longer than the limit and dropped, and its size in bytes."""

    offset: int
    data: bytes | None
    size: int


class LineReader:
    """The complete lines of ``stream``, read from its current position (which is ``start``).

    :meth:`next` returns the next complete line, or None when the stream has none now (at its
    end, or a last line still without its newline); call it again later to go on, as a
    followed file grows. :attr:`offset` is where the next line not yet returned starts, and
    :attr:`pending` how many bytes of an unfinished line are held (at most ``limit``).
    """

    def __init__(
        self, stream: Readable, start: int = 0, limit: int = MAX_LINE, chunk: int = CHUNK
    ) -> None:
        self._stream = stream
        self._limit = limit
        self._chunk = chunk
        self._line_start = start  # where the unfinished line starts
        self._buf = bytearray()  # its bytes so far, while it is within the limit
        self._dropped = 0  # its size so far, once it has passed the limit (its bytes dropped)
        self._ready: deque[RawLine] = deque()

    @property
    def offset(self) -> int:
        return self._ready[0].offset if self._ready else self._line_start

    @property
    def pending(self) -> int:
        return self._dropped or len(self._buf)

    def peek(self, size: int = 64) -> bytes:
        """The first bytes of the unfinished line, when they are held."""
        return bytes(self._buf[:size])

    def next(self) -> RawLine | None:
        while not self._ready:
            chunk = self._stream.read(self._chunk)
            if not chunk:
                return None
            self._feed(chunk)
        return self._ready.popleft()

    def __iter__(self) -> LineReader:
        return self

    def __next__(self) -> RawLine:
        line = self.next()
        if line is None:
            raise StopIteration
        return line

    def _feed(self, chunk: bytes) -> None:
        start = 0
        end = len(chunk)
        while start < end:
            newline = chunk.find(b"\n", start)
            stop = end if newline < 0 else newline + 1
            size = stop - start
            if self._dropped:
                self._dropped += size
            elif len(self._buf) + size > self._limit:
                # Past the limit: what was held goes, and the rest of the line is only counted.
                self._dropped = len(self._buf) + size
                self._buf = bytearray()
            elif newline >= 0 and not self._buf:
                self._emit(chunk[start:stop], size)
                start = stop
                continue
            else:
                self._buf += chunk[start:stop]
            if newline >= 0:
                if self._dropped:
                    self._emit(None, self._dropped)
                    self._dropped = 0
                else:
                    self._emit(bytes(self._buf), len(self._buf))
                    self._buf = bytearray()
            start = stop

    def _emit(self, data: bytes | None, size: int) -> None:
        self._ready.append(RawLine(self._line_start, data, size))
        self._line_start += size


def skip_line(stream: Readable, chunk: int = CHUNK) -> int:
    """Read ``stream`` past the next newline (or to its end); the bytes read, newline
    included. Only one ``chunk`` at a time is held, however long the line."""
    skipped = 0
    while True:
        data = stream.read(chunk)
        if not data:
            return skipped
        newline = data.find(b"\n")
        if newline >= 0:
            return skipped + newline + 1
        skipped += len(data)


class Seekable(Readable, Protocol):
    def seek(self, offset: int, whence: int = ..., /) -> int: ...


def last_line_start(stream: Seekable, end: int, floor: int, limit: int = MAX_LINE) -> int:
    """Where the last complete line before ``end`` starts (not before ``floor``), looking back
    at most ``limit`` bytes past its newline; ``end`` when no complete line starts within them
    (none, or one too long to read whole). A last line still without its newline is passed
    over: the line before it is the last complete one."""
    newline = _find_back(stream, end, floor, limit)
    if newline is None:
        return end
    before = _find_back(stream, newline, floor, limit)
    if before is not None:
        return before + 1
    return floor if newline - floor < limit else end


def _find_back(stream: Seekable, end: int, floor: int, limit: int) -> int | None:
    """The offset of the last newline in ``[max(floor, end - limit), end)``, or None."""
    low = max(floor, end - limit)
    high = end
    while high > low:
        start = max(low, high - CHUNK)
        stream.seek(start)
        data = stream.read(high - start) or b""
        at = data.rfind(b"\n")
        if at >= 0:
            return start + at
        high = start
    return None
