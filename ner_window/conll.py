"""Stage 1: read labelled CoNLL column files and decode entity spans.

A CoNLL file holds one token per line: the token in the first column, the NER
tag in the last, 2 or more columns separated by spaces or tabs.  A blank (or
whitespace-only, e.g. a lone tab) line ends a sentence.  ``-DOCSTART-`` lines
are document markers wherever they stand, never tokens.

Tag schemes (``scheme``):

    iob1   I-X inside or starting an entity; B-X only where an X entity directly
           follows another X entity (original CoNLL-2003)
    iob2   B-X starts every entity, I-X continues it
    io     only I-X: adjacent entities of one type cannot be told apart
    bioes  B-X begin, I-X inside, E-X end, S-X single-token entity

Spans are decoded exactly as the conlleval script does (its chunk start/end
rules, with the S-/E- extensions of the common Python port), so the same
function serves every scheme and our F1 agrees with conlleval's.  A tag whose
prefix the scheme does not have at all (``E-LOC`` in an IOB2 file) is an
error; a sequence the scheme forbids (``I-LOC`` after ``O`` in IOB2) is
accepted leniently, as conlleval does, unless ``strict=True``.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from .errors import DataError
from .files import write_text_atomic

SCHEMES = ("iob1", "iob2", "io", "bioes")
PREFIXES = {"iob1": "BI", "iob2": "BI", "io": "I", "bioes": "BIES"}
DOCSTART = "-DOCSTART-"
MAX_LINE_CHARS = 100_000  # a CoNLL line holds one token and its columns
_TAB_HINT = ("; in a tab-separated file this is an empty token or one with whitespace inside: fix the "
             "line (to train on such a file, data.clean_tokens: true removes the whitespace and drops empty tokens)")


@dataclass(frozen=True)
class Sentence:
    """One sentence: ``tokens[i]`` carries ``tags[i]``; ``line`` is the 1-based line of its first token."""

    tokens: tuple[str, ...]
    tags: tuple[str, ...]
    line: int = 0
    doc: int = 0


# --- tags and spans ------------------------------------------------------------


def split_tag(tag: str) -> tuple[str, str]:
    """``"B-LOC" -> ("B", "LOC")``, ``"O" -> ("O", "")``."""
    if tag == "O":
        return "O", ""
    return tag[0], tag[2:]


def is_valid_tag(tag: str) -> bool:
    """O, or one of B/I/E/S, a hyphen and a non-empty type."""
    return tag == "O" or (len(tag) > 2 and tag[0] in "BIES" and tag[1] == "-")


def _end_of_chunk(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    # conlleval.pl endOfChunk, plus the E/S rules of the Python port (conlleval.py)
    if prev_tag in ("E", "S"):
        return True
    if prev_tag == "B" and tag in ("B", "S", "O"):
        return True
    if prev_tag == "I" and tag in ("B", "S", "O"):
        return True
    return prev_tag != "O" and prev_type != type_


def _start_of_chunk(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    # conlleval.pl startOfChunk: note that I-X after O (or after another type) starts a chunk
    if tag in ("B", "S"):
        return True
    if prev_tag in ("E", "S", "O") and tag in ("E", "I"):
        return True
    return tag != "O" and prev_type != type_


def entity_spans(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """Decode tags into ``(type, start, end)`` spans, ``end`` exclusive, as conlleval does.

    >>> entity_spans(["I-LOC", "I-LOC", "B-LOC", "O", "I-PER"])   # IOB1
    [('LOC', 0, 2), ('LOC', 2, 3), ('PER', 4, 5)]
    """
    spans: list[tuple[str, int, int]] = []
    prev_tag, prev_type, start = "O", "", -1
    for i, tag in enumerate(list(tags) + ["O"]):
        t, type_ = split_tag(tag)
        if start >= 0 and _end_of_chunk(prev_tag, t, prev_type, type_):
            spans.append((prev_type, start, i))
            start = -1
        if _start_of_chunk(prev_tag, t, prev_type, type_):
            start = i
        prev_tag, prev_type = t, type_
    return spans


def scheme_violation(tags: Sequence[str], scheme: str) -> int | None:
    """Index of the first tag the scheme's sequence rules forbid, else None (used by ``strict``)."""
    prev_t, prev_type = "O", ""
    for i, tag in enumerate(tags):
        t, type_ = split_tag(tag)
        continues = prev_t != "O" and prev_type == type_
        if scheme == "iob2" and t == "I" and not continues:
            return i
        if scheme == "iob1" and t == "B" and not continues:
            return i
        if scheme == "bioes":
            if t in ("I", "E") and not (continues and prev_t in ("B", "I")):
                return i
            if prev_t in ("B", "I") and not (t in ("I", "E") and type_ == prev_type):
                return i
        prev_t, prev_type = t, type_
    if scheme == "bioes" and prev_t in ("B", "I"):
        return len(tags) - 1
    return None


def detect_scheme(sentences: Iterable[Sentence]) -> str:
    """Guess the scheme from the prefixes used: S/E -> bioes; a B- that starts an entity -> iob2; else iob1."""
    seen_b_start = False
    for sent in sentences:
        prev = "O"
        for tag in sent.tags:
            t = tag[0]
            if t in "ES" and tag != "O":
                return "bioes"
            if t == "B" and (prev == "O" or split_tag(prev)[1] != split_tag(tag)[1]):
                seen_b_start = True
            prev = tag
    return "iob2" if seen_b_start else "iob1"


def token_types(tags: Sequence[str]) -> list[str | None]:
    """Entity type of each token via the decoded spans (``None`` outside every entity)."""
    out: list[str | None] = [None] * len(tags)
    for type_, start, end in entity_spans(tags):
        out[start:end] = [type_] * (end - start)
    return out


# --- reading -----------------------------------------------------------------------


def _open_lines(path: str | os.PathLike) -> list[str]:
    """The file's lines as text, or a DataError naming the file and what to do."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: no such file; check the path (data paths in the config are relative to where you run)")
    if p.is_dir():
        raise DataError(f"{p}: is a directory; give the path of a CoNLL file inside it")
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise DataError(f"{p}: cannot be read ({e.strerror}); check its permissions") from None
    head = raw[:4096]
    # UTF-16 without a byte-order mark: ASCII text has a NUL in every other byte
    bomless_utf16 = len(head) >= 4 and max(head[0::2].count(0), head[1::2].count(0)) >= 0.9 * (len(head) // 2)
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")) or bomless_utf16:
        raise DataError(f"{p}: is UTF-16; convert it to UTF-8 (e.g. iconv -f UTF-16 -t UTF-8)")
    if b"\x00" in raw[:65536]:
        raise DataError(f"{p}: is binary (it contains NUL bytes), not a CoNLL text file")
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]  # a UTF-8 byte-order mark is valid, not a token
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise DataError(
            f"{p}:{line}: byte 0x{raw[e.start]:02x} is not valid UTF-8; convert the file to UTF-8 "
            f"(e.g. iconv -f latin1 -t utf-8 if it is Latin-1)"
        ) from None
    # splitlines would also split on \x0b, \x1c, U+2028 ... inside a token; CoNLL lines end with \n or \r\n
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def read_conll(path: str | os.PathLike, scheme: str = "iob1", strict: bool = False,
               clean_tokens: bool = False) -> list[Sentence]:
    """Read a CoNLL file into sentences (see ``_read`` for the errors it raises).

    clean_tokens: in a tab-separated line, whitespace inside the token is removed ("ke s" -> "kes")
    and a line whose token is empty is dropped, instead of being an error (the Broad Twitter Corpus
    has 10 such lines among 150,000: 6 empty tokens, 4 with a space inside).
    """
    return _read(path, scheme, strict, clean_tokens)[0]


def _clean_columns(line: str) -> list[str]:
    """The columns of a tab-separated line, whitespace removed from the token; [] if the token is empty.

    >>> _clean_columns("ke s\tO"), _clean_columns(" \tO"), _clean_columns("Paris\tB-LOC")
    (['kes', 'O'], [], ['Paris', 'B-LOC'])
    """
    token, *rest = line.split("\t")
    token = "".join(token.split())
    return [token, *(field.strip() for field in rest if field.strip())] if token else []


def _read(path: str | os.PathLike, scheme: str, strict: bool,
          clean_tokens: bool = False) -> tuple[list[Sentence], int]:
    """Sentences and the number of ``-DOCSTART-`` markers.

    ``scheme`` is one of SCHEMES or ``"auto"`` (guessed from the tags).  Raises
    DataError with ``file:line`` for: a missing/binary/undecodable file, a line
    whose column count differs from the file's first token line, a tag that is
    not ``O`` or ``P-TYPE`` with a prefix of the scheme, and (``strict`` only) a
    tag sequence the scheme forbids.  An empty file, or one with no token, is
    an error too: there is nothing to train or evaluate on.
    """
    if scheme != "auto" and scheme not in SCHEMES:
        raise DataError(f"unknown tag scheme {scheme!r}; use one of {', '.join(SCHEMES)} or auto")
    p = Path(path)
    lines = _open_lines(p)
    sentences: list[Sentence] = []
    tokens: list[str] = []
    tags: list[str] = []
    first_line = 0
    n_columns = 0
    columns_line = 0
    doc = 0
    n_docstart = 0

    def flush() -> None:
        nonlocal tokens, tags
        if tokens:
            sentences.append(Sentence(tuple(tokens), tuple(tags), first_line, doc))
            tokens, tags = [], []

    for n, line in enumerate(lines, 1):
        if len(line) > MAX_LINE_CHARS:
            raise DataError(
                f"{p}:{n}: line is {len(line):,} characters long; a CoNLL line holds one token and its "
                f"tags (is this a plain-text file? tag it with `ner-window predict --file`)"
            )
        cols = line.split()
        if not cols:
            flush()
            continue
        if clean_tokens and "\t" in line:
            cols = _clean_columns(line)
            if not cols:
                continue  # an empty token: the line is dropped, the sentence goes on
        if cols[0] == DOCSTART:
            flush()
            if n_docstart or sentences:
                doc += 1
            n_docstart += 1
            continue
        if len(cols) < 2:
            raise DataError(
                f"{p}:{n}: expected a token and its NER tag (2 or more columns separated by spaces or "
                f"tabs), found 1 column {cols[0][:40]!r}" + _TAB_HINT * ("\t" in line)
            )
        if n_columns == 0:
            n_columns, columns_line = len(cols), n
        elif len(cols) != n_columns:
            raise DataError(
                f"{p}:{n}: has {len(cols)} columns but line {columns_line} has {n_columns}; every token "
                f"line needs the same columns (token first, NER tag last)" + _TAB_HINT * ("\t" in line)
            )
        tag = cols[-1]
        if not is_valid_tag(tag) or (scheme != "auto" and tag != "O" and tag[0] not in PREFIXES[scheme]):
            allowed = "O or " + "/".join(f"{c}-TYPE" for c in (PREFIXES.get(scheme, "BIES")))
            raise DataError(
                f"{p}:{n}: unknown tag {tag[:40]!r} for scheme {scheme}; expected {allowed} "
                f"(if the file uses another scheme, set data.scheme in the config or pass --scheme)"
            )
        if not tokens:
            first_line = n
        tokens.append(cols[0])
        tags.append(tag)
    flush()
    if not sentences:
        raise DataError(f"{p}: holds no tokens; a CoNLL file needs 'token ... TAG' lines")
    if strict:
        _check_strict(p, sentences, detect_scheme(sentences) if scheme == "auto" else scheme)
    return sentences, n_docstart


def _check_strict(p: Path, sentences: list[Sentence], scheme: str) -> None:
    """DataError with ``file:line`` at the first tag the scheme forbids where it stands."""
    for sent in sentences:
        i = scheme_violation(sent.tags, scheme)
        if i is not None:
            raise DataError(
                f"{p}:{sent.line + i}: tag {sent.tags[i]!r} is not allowed here in scheme {scheme} "
                f"(after {sent.tags[i - 1] if i else 'the sentence start'!r}); fix the tag or drop --strict"
            )


def write_conll(path: str | os.PathLike, sentences: Iterable[Sentence]) -> None:
    """Write ``token TAG`` lines, a blank line after each sentence, atomically.

    Raises ValueError for a token or tag ``read_conll`` could not read back: empty, holding
    whitespace or NUL, ``-DOCSTART-``, or starting with U+FEFF (read as a byte-order mark).
    """
    lines: list[str] = []
    for sent in sentences:
        for field in (*sent.tokens, *sent.tags):
            if field.split() != [field] or field == DOCSTART or "\x00" in field or field.startswith("\ufeff"):
                raise ValueError(f"write_conll: token or tag {field!r} in {sent.tokens[:5]!r} would not read back")
        lines += [f"{t} {g}" for t, g in zip(sent.tokens, sent.tags)]
        lines.append("")
    write_text_atomic(path, "\n".join(lines) + ("\n" if lines else ""))


# --- statistics --------------------------------------------------------------------


def file_stats(path: str | os.PathLike, scheme: str = "iob1", strict: bool = False) -> dict:
    """Per-file counts for ``ner-window data stats``: documents, sentences, tokens, entities per type."""
    p = Path(path)
    sentences, n_docstart = _read(p, scheme, strict)
    entities: Counter = Counter()
    entity_tokens: Counter = Counter()
    for sent in sentences:
        for type_, start, end in entity_spans(sent.tags):
            entities[type_] += 1
            entity_tokens[type_] += end - start
    return {
        "path": str(path),
        "documents": n_docstart if n_docstart else 1,
        "sentences": len(sentences),
        "tokens": sum(len(s.tokens) for s in sentences),
        "entities": dict(sorted(entities.items())),
        "entity_tokens": dict(sorted(entity_tokens.items())),
    }
