"""Read text to tag: a file or stdin as lines, decoded one way, in bounded memory.

API for other engineers (these names are stable):

    read_lines(source, encoding=None) -> Iterator[str]
        every line of ``source`` without its line ending, decoded as below.  ``source`` is a
        path, "-" or None for stdin, or a binary file object.  A line is as long as it is:
        use read_pieces where one line may be huge.
    read_pieces(source, encoding=None, max_chars=None) -> Iterator[Piece]
        the same text in pieces of at most ``max_chars`` [MAX_PIECE_CHARS] characters: a line
        that fits is one Piece(text, 0, True); a longer one comes as several, each cut after a whitespace
        character (so no token of the tokenizer is cut), the last with ``last=True``.
        Joining a line's pieces gives the line.  A run of more than ``max_chars`` characters
        without whitespace is cut where it reaches the limit.
    read_blocks(source, encoding=None, max_chars=None) -> Iterator[list[str] | Piece]
        the same lines as read_pieces, a list of whole lines per block read instead of a Piece
        per line (a line over ``max_chars`` still comes as Pieces): for callers that work on many
        lines at once (pipeline.py), without a Python object per line.
    Piece(text, start, last)     text; character offset of text in its line; ends the line?
    source_name(source) -> str   the name errors use: the path, or "stdin"

Decoding: a byte-order mark decides (UTF-8, UTF-16 LE/BE, UTF-32 LE/BE; the mark is not
part of the text); otherwise the text is UTF-8, and a byte that is not valid UTF-8 is a
DataError naming the file, the byte offset, the line and ``--encoding``.  ``encoding=`` (the
CLI's ``--encoding``) names the codec instead (a UTF-8 mark is still dropped).  A NUL
character is never text: a file holding one is binary (or UTF-16 without a mark), a
DataError too.  Lines end at ``\\n``; a ``\\r`` before it is dropped (CRLF files); a lone
``\\r`` stays in the line (the tokenizer treats it as a space).

The input is read in blocks of BLOCK_BYTES and decoded incrementally, so memory does not
grow with a file, nor (through read_pieces) with a line.  Only the standard library is
imported: this module is on the predict path.
"""

from __future__ import annotations

import codecs
import os
import re
import sys
from typing import BinaryIO, Generator, Iterator, NamedTuple

from .errors import DataError

BLOCK_BYTES = 1 << 18  # read this much at a time (256 KB)
MAX_PIECE_CHARS = 1 << 18  # ~50k tokens of running text: what the tagger scores in one go

# longest first: the UTF-32 LE mark begins with the UTF-16 LE one
BOMS = ((codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"), (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
NEWLINE, NUL = "\n", "\x00"
_UP_TO_LAST_SPACE = re.compile(r".*\s", re.S)  # greedy: matches through the last whitespace character


class Piece(NamedTuple):
    """A stretch of one line: ``line[start:start + len(text)] == text``; ``last``: it ends the line."""

    text: str
    start: int
    last: bool


def source_name(source) -> str:
    """How errors name ``source``: its path, or "stdin"."""
    if source is None or source == "-":
        return "stdin"
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return str(getattr(source, "name", "input"))


def read_lines(source, encoding: str | None = None) -> Iterator[str]:
    """Every line of ``source``, without its line ending (see the module docstring)."""
    parts: list[str] = []
    for piece in read_pieces(source, encoding):
        if piece.last and not parts:
            yield piece.text
            continue
        parts.append(piece.text)
        if piece.last:
            yield "".join(parts)
            parts = []


def read_pieces(source, encoding: str | None = None, max_chars: int | None = None) -> Iterator[Piece]:
    """The lines of ``source`` as Pieces of at most ``max_chars`` [MAX_PIECE_CHARS] characters
    (see the module docstring)."""
    return _read(_pieces, source, encoding, max_chars)


def read_blocks(source, encoding: str | None = None, max_chars: int | None = None) -> Iterator[list[str] | Piece]:
    """The lines of read_pieces(source, encoding, max_chars) in order: each run of lines that fit in
    one piece as a list of their texts, each piece of a longer line as its Piece."""
    return _read(_blocks, source, encoding, max_chars)


def _read(produce, source, encoding: str | None, max_chars: int | None) -> Iterator:
    """``produce(decoder, max_chars)``'s items over ``source`` opened and decoded, closed at the end."""
    max_chars = MAX_PIECE_CHARS if max_chars is None else max_chars
    if max_chars < 2:
        raise ValueError(f"max_chars must be at least 2, got {max_chars}")
    name = source_name(source)
    stream, close = _open(source, name)
    try:
        yield from produce(_Decoder(stream, name, encoding), max_chars)
    finally:
        if close:
            stream.close()


def _open(source, name: str) -> tuple[BinaryIO, bool]:
    """(a binary stream, whether to close it): stdin, a path opened here, or the caller's file object."""
    if source is None or source == "-":
        return getattr(sys.stdin, "buffer", sys.stdin), False
    if not isinstance(source, (str, os.PathLike)):
        return source, False
    try:
        return open(source, "rb"), True
    except FileNotFoundError:
        raise DataError(f"{name}: no such file; give a text file to tag (one text per line)") from None
    except IsADirectoryError:
        raise DataError(f"{name}: is a directory; give a text file to tag (one text per line)") from None
    except OSError as e:
        raise DataError(f"{name}: cannot be read ({e.strerror}); check its permissions") from None


class _Decoder:
    """Blocks of ``stream`` decoded to text, with the byte offsets and line numbers errors need."""

    def __init__(self, stream: BinaryIO, name: str, encoding: str | None):
        self.stream, self.name, self.given = stream, name, encoding
        # read1: what is there, up to a block (read() of a pipe would wait until a whole block came)
        self.read = getattr(stream, "read1", stream.read)
        self.offset = 0  # bytes of the stream read so far
        self.lines = 0  # complete lines handed out so far (the caller counts them: line_done)
        self.codec = None if encoding is None else _codec(encoding)
        self.decoder = None

    def line_done(self) -> None:
        self.lines += 1

    def blocks(self) -> Iterator[str]:
        while True:
            raw, start = self.read(BLOCK_BYTES), self.offset  # start: the byte offset of raw[0]
            if not isinstance(raw, bytes):
                raise TypeError(f"{self.name}: read_pieces needs a binary stream, got {type(raw).__name__}")
            final = not raw
            if self.decoder is None:
                raw, start, final = self._first(raw, start)
            self.offset = start + len(raw)
            if self.codec == "utf-8" and b"\x00" in raw:  # in UTF-8 a NUL byte is a NUL character
                at = raw.index(b"\x00")
                line = self.lines + 1 + raw.count(b"\n", 0, at)
                self._nul(f"byte offset {start + at:,} (line {line:,})")
            buffered = len(self.decoder.getstate()[0])  # the end of a character cut by the last block
            try:
                text = self.decoder.decode(raw, final)
            except UnicodeDecodeError as e:
                self._undecodable(start - buffered + e.start, e)
            if "\x00" in text:
                self._nul(f"line {self.lines + 1 + text.count(NEWLINE, 0, text.index(NUL)):,}")
            if text:
                yield text
            if final:
                return

    def _first(self, raw: bytes, start: int) -> tuple[bytes, int, bool]:
        """Choose the codec on the first block: the one given, else a byte-order mark's, else UTF-8.
        Returns the block without its mark, its byte offset, and whether the stream ended."""
        final = not raw
        while len(raw) < 4 and not final:  # a mark is up to 4 bytes; a short read must not hide it
            more = self.read(BLOCK_BYTES)
            raw, final = raw + more, not more
        mark = next(((bom, codec) for bom, codec in BOMS if raw.startswith(bom)), None)
        if mark and (self.codec is None or self.codec == "utf-8" and mark[1] == "utf-8"):
            self.codec = mark[1]
            raw, start = raw[len(mark[0]):], start + len(mark[0])
        self.codec = self.codec or "utf-8"
        self.decoder = codecs.getincrementaldecoder(self.codec)("strict")
        return raw, start, final

    def _undecodable(self, at: int, e: UnicodeDecodeError) -> None:
        before = codecs.decode(e.object[:e.start], self.codec, "replace").count("\n")
        where = (f"{self.name}: byte 0x{e.object[e.start:e.start + 1].hex()} at byte offset {at:,} "
                 f"(line {self.lines + 1 + before:,})")
        if self.given is None:
            raise DataError(f"{where} is not valid UTF-8; give the file's encoding with --encoding "
                            f"(e.g. --encoding latin-1) or convert it to UTF-8") from None
        raise DataError(f"{where} is not valid {self.given}; check --encoding {self.given} "
                        f"(the file may be UTF-8: drop --encoding)") from None

    def _nul(self, where: str) -> None:
        hint = (" (or UTF-16 without a byte-order mark: give --encoding utf-16-le or utf-16-be)"
                if self.given is None and self.codec == "utf-8" else "")
        raise DataError(f"{self.name}: a NUL character at {where}: this is binary data, not text{hint}")


def _codec(encoding: str) -> str:
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise DataError(f"--encoding {encoding}: unknown encoding; give one Python knows, e.g. utf-8, "
                        f"latin-1, cp1252, utf-16") from None


def _pieces(decoder: _Decoder, max_chars: int) -> Iterator[Piece]:
    """Split the decoded text at \\n (dropping a \\r before it) and cut lines over max_chars."""
    buf, start = "", 0  # the unfinished line, from character ``start`` of its line on
    for text in decoder.blocks():
        lines = (buf + text).split("\n")
        buf = lines.pop()
        for line in lines:
            line = line[:-1] if line.endswith("\r") else line
            line, start = yield from _cut_pieces(line, start, max_chars)
            yield Piece(line, start, True)
            decoder.line_done()
            start = 0
        # its last character stays: it may be a \r before the next block's \n
        buf, start = yield from _cut_pieces(buf, start, max_chars)
    if buf or start:
        yield Piece(buf[:-1] if buf.endswith("\r") else buf, start, True)
        decoder.line_done()


def _blocks(decoder: _Decoder, max_chars: int) -> Iterator[list[str] | Piece]:
    """_pieces, with the whole lines of each decoded block handed out as one list."""
    buf, start = "", 0
    for text in decoder.blocks():
        text = buf + text
        lines = text.split("\n")
        buf = lines.pop()
        if "\r" in text:
            lines = [line[:-1] if line.endswith("\r") else line for line in lines]
        if start or (lines and max(map(len, lines)) > max_chars):  # a long line among them: one by one
            yield from _blocks_of(lines, start, decoder, max_chars)
        elif lines:
            decoder.lines += len(lines)
            yield lines
        if lines:  # the line that ``start`` belonged to has ended
            start = 0
        # its last character stays: it may be a \r before the next block's \n
        buf, start = yield from _cut_pieces(buf, start, max_chars)
    if buf or start:
        line = buf[:-1] if buf.endswith("\r") else buf
        decoder.line_done()
        yield Piece(line, start, True) if start or len(line) > max_chars else [line]


def _blocks_of(lines: list[str], start: int, decoder: _Decoder, max_chars: int) -> Iterator[list[str] | Piece]:
    """Lines one block holds, the first continuing a long line when ``start`` > 0: runs of whole lines
    as lists, a long line's pieces as Pieces (cut as _pieces cuts them)."""
    whole: list[str] = []
    for line in lines:
        if not start and len(line) <= max_chars:
            whole.append(line)
            decoder.line_done()
            continue
        if whole:
            yield whole
            whole = []
        line, start = yield from _cut_pieces(line, start, max_chars)
        decoder.line_done()
        yield Piece(line, start, True)
        start = 0
    if whole:
        yield whole


def _cut_pieces(text: str, start: int, max_chars: int) -> Generator[Piece, None, tuple[str, int]]:
    """Yield the leading pieces of ``text`` (at offset ``start`` of its line) while it is longer than
    max_chars, each cut by _cut; return what is left of it and that rest's offset."""
    while len(text) > max_chars:
        cut = _cut(text, max_chars)
        yield Piece(text[:cut], start, False)
        text, start = text[cut:], start + cut
    return text, start


def _cut(text: str, max_chars: int) -> int:
    """Where to end a piece of ``text`` (longer than max_chars): after its last whitespace
    character within max_chars, or at max_chars when there is none."""
    m = _UP_TO_LAST_SPACE.match(text, 0, max_chars)
    return m.end() if m else max_chars
