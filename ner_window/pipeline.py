"""Stage 10: tag a stream of lines chunk by chunk: tokenize -> ids -> score -> labels -> write.

API for other modules:

    LinePipeline(tagger, fmt)           fmt: "text", "conll" or "jsonl"
      .run_pieces(items, write)         the lines of textio.read_blocks, chunk by chunk: write(str) per chunk
      .run(lines, write) -> Counts      the same for an iterable of lines
      .tag_chunk(lines) -> str          the output for a list of lines (no line breaks in them)
    ChunkTokenizer()(lines) -> Chunk    tokenize.token_spans for every line at once
    Encoder(vocab, gazetteer)(chunk) -> (word_ids, casing_ids)   tokens -> ids (windows.token_ids),
                                        and a gazetteer model's tags (matched within each line)
    label(tagger, s, chunk) -> (labels, p_location)            scores -> labels: decide (window model)
                                        or the Viterbi path of each line (sentence model)

What it writes is, line for line, ``format_tagged(tagger.tag(line), fmt)`` (tests/test_line_pipeline.py
checks it on the bundled corpus): the same tokens, offsets, labels and probabilities, but
no Python object per token.  A chunk of lines is one string; each step works on the
whole chunk:

* tokenize: the chunk's separators are found by numpy over its code points, the runs
  between them by ``str.split`` (the same runs as tokenize's _RUN); a run of letters or a
  single character is one token, which is most runs, and only the other runs go through
  tokenize's regular expression, against their own line (so ``^`` and the look-behinds
  see exactly what token_spans sees) and cached by the run and what precedes it.
* ids: each distinct token is looked up once (vocab.lookup and windows.casing_class),
  in a dictionary kept across chunks.
* score: slots.SlotScorer, the windows' rows gathered and summed (no matrix product).
* write: the output of a chunk is assembled with one ``str.join``, the pieces of every
  token laid out by list slicing; strings of offsets and probabilities come from tables.

Memory is bounded by the chunk (``CHUNK_CHARS``), the dictionaries (emptied past
``MAX_CACHED`` entries; the Encoder's, ``windows.KnownTokens``, past as many) and the scorer's row
cache, whatever the input's size.
"""

from __future__ import annotations

import bisect
import itertools
import json
import re
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from .decision import decide, p_location
from .sentence import decode, starts_of
from .tagger import TagWriter
from .textio import Piece
from .tokenize import _SEPARATOR, _TOKEN
from .vocab import Vocab
from .windows import MAX_KNOWN, KnownTokens, token_ids

CHUNK_CHARS = 64 * 1024  # ~10k tokens of running text a chunk
MAX_CACHED = MAX_KNOWN  # entries in the tokenizer's run cache before it is emptied: the Encoder's bound
PIPELINE_FORMATS = ("text", "conll", "jsonl")

_encode_json = json.encoder.encode_basestring  # json.dumps(str, ensure_ascii=False), in C


# ------------------------------------------------------------------ tokenize


_separator_table: np.ndarray | None = None


def separator_table() -> np.ndarray:
    """(65536,) bool: code point c (BMP) is a separator of tokenize (its _SEPARATOR class).
    No code point above the BMP is one; index 65535 (a non-character) is False, so clipping works."""
    global _separator_table
    if _separator_table is None:
        table = np.zeros(65536, bool)
        table[[c for c in range(0x3001) if chr(c).isspace()]] = True  # \s: every str.isspace() is <= U+3000
        table[0x00:0x20] = table[0x7F:0xA0] = True
        table[[0x200B, 0x2060, 0xFEFF]] = True
        _separator_table = table
    return _separator_table


# separators that str.split() does not split on: turned into spaces (same length) before splitting
_NOT_SPACE = "".join(chr(c) for c in [*range(0x00, 0x20), *range(0x7F, 0xA0), 0x200B, 0x2060, 0xFEFF]
                     if not chr(c).isspace())
_NOT_SPACE_RE = re.compile(f"[{re.escape(_NOT_SPACE)}]")
_NOT_SPACE_TO_SPACE = str.maketrans(_NOT_SPACE, " " * len(_NOT_SPACE))

@dataclass
class Chunk:
    """The tokens of a list of lines.

    lines       (L,) the lines, without line breaks
    text        the lines joined by "\\n"; line j starts at line_start[j]
    line_start  (L,) int64
    tokens      (N,) the tokens, line after line
    start       (N,) int64 offset of each token in ``text``
    size        (N,) int64 characters in each token
    lengths     (L,) int64 tokens per line
    begins      (N,) bool where a sentence model's path starts an entity (a B- tag), or None (a
                window model's spans are the runs of equal labels); set by label()
    """

    lines: Sequence[str]
    text: str
    line_start: np.ndarray
    tokens: list[str]
    start: np.ndarray
    size: np.ndarray
    lengths: np.ndarray
    begins: np.ndarray | None = None

    def token_line(self) -> np.ndarray:
        """(N,) the line of each token."""
        return np.repeat(np.arange(len(self.lengths)), self.lengths)

    def token_end(self) -> np.ndarray:
        """(N,) offset one past each token's last character in ``text``."""
        return self.start + self.size


def _array(values: Iterable, dtype) -> np.ndarray:
    """np.fromiter over a list (a list first: fromiter pulls from a map object at twice the cost)."""
    values = list(values)
    return np.fromiter(values, dtype, len(values))


def _runs(text: str) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """The runs of non-separator characters of ``text`` (tokenize's _RUN), their offsets and sizes,
    and the text's code points."""
    if text.isascii():
        cp = np.frombuffer(text.encode("ascii"), np.uint8)
    else:
        cp = np.frombuffer(text.encode("utf-32-le"), np.uint32)
    inside = ~np.take(separator_table(), cp, mode="clip")
    edges = np.flatnonzero(np.diff(inside.view(np.int8), prepend=np.int8(0), append=np.int8(0)))
    start, size = edges[0::2], edges[1::2] - edges[0::2]
    split_text = text.translate(_NOT_SPACE_TO_SPACE) if _NOT_SPACE_RE.search(text) else text
    runs = split_text.split()  # the same runs: str.split() splits at exactly the str.isspace() characters
    if len(runs) != len(start):  # cannot happen while separator_table() is _SEPARATOR; cut by offset then
        runs = [text[a:b] for a, b in zip(start.tolist(), (start + size).tolist())]
    return runs, start, size, cp


_space_table: np.ndarray | None = None


def _before(cp: np.ndarray, pos: np.ndarray, line_start: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What precedes each run at ``pos`` as the tokenizer's look-behinds and ^ see it -- 0 the start of
    its line, 1 "\n", 2 other white space, 3 another separator -- and each run's offset in its line."""
    global _space_table
    if _space_table is None:
        _space_table = np.zeros(65536, bool)
        _space_table[[c for c in range(0x3001) if chr(c).isspace()]] = True
    rel = pos - line_start
    prev = cp[np.maximum(pos - 1, 0)].astype(np.int64)  # a separator: always in the BMP
    kind = np.where(prev == 10, 1, np.where(np.take(_space_table, prev, mode="clip"), 2, 3))
    return np.where(rel == 0, 0, kind), rel


def _split_run(line: str, pos: int, end: int) -> tuple[tuple[str, ...], tuple[int, ...], tuple[int, ...]]:
    """The tokens of the run line[pos:end] (tokenize._TOKEN at each token start, against the line
    as token_spans sees it), their offsets from pos and their sizes."""
    tokens, offsets, sizes = [], [], []
    p = pos
    while p < end:
        m = _TOKEN.match(line, p)
        tokens.append(m.group())
        offsets.append(p - pos)
        sizes.append(m.end() - p)
        p = m.end()
    return tuple(tokens), tuple(offsets), tuple(sizes)


class ChunkTokenizer:
    """tokenize_chunk with its per-run caches (kept across chunks)."""

    def __init__(self):
        self.split: dict[tuple[str, int], tuple] = {}

    def __call__(self, lines: Sequence[str]) -> Chunk:
        text = "\n".join(lines)
        lens = _array(map(len, lines), np.int64) + 1
        line_start = np.cumsum(lens) - lens
        runs, run_start, run_size, cp = _runs(text)
        run_line = np.searchsorted(line_start, run_start, side="right") - 1
        plain = (run_size == 1) | _array(map(str.isalpha, runs), bool)  # token_spans' fast path: one token
        if plain.all():
            tokens, start, size, tok_line = runs, run_start, run_size, run_line
        else:
            cut = np.flatnonzero(~plain)
            tokens, start, size, tok_line = self._split_runs(lines, runs, run_start, run_size, run_line, cut,
                                                             _before(cp, run_start[cut], line_start[run_line[cut]]))
        lengths = np.bincount(tok_line, minlength=len(lines)).astype(np.int64)
        return Chunk(lines, text, line_start, tokens, start, size, lengths)

    def _split_runs(self, lines, runs, run_start, run_size, run_line, cut, before):
        """Tokens, offsets, sizes and lines when the runs ``cut`` may hold several tokens ("Paris," ->
        Paris | ,).  A run's tokens depend on itself, on what comes before it (``before``), and after a
        final "." on the text after it (No. 5, M. Waugh, "1. "): those runs are not cached."""
        if len(self.split) > MAX_CACHED:
            self.split.clear()
        tokens: list[str] = []
        offsets: list[int] = []
        sizes: list[int] = []
        n_split: list[int] = []
        prev = 0
        kinds, rel = before
        for i, r, b, j in zip(cut.tolist(), rel.tolist(), kinds.tolist(), run_line[cut].tolist()):
            run = runs[i]
            got = self.split.get((run, b))
            if got is None:
                got = _split_run(lines[j], r, r + len(run))
                if run[-1] != ".":
                    self.split[(run, b)] = got
            tokens += runs[prev:i]
            tokens += got[0]
            offsets += got[1]
            sizes += got[2]
            n_split.append(len(got[0]))
            prev = i + 1
        counts = np.ones(len(runs), np.int64)
        counts[cut] = n_split
        tokens += runs[prev:]
        first = np.cumsum(counts) - counts  # index of each run's first token
        start, size = np.repeat(run_start, counts), np.repeat(run_size, counts)
        within = np.arange(int(counts[cut].sum())) - np.repeat(np.cumsum(counts[cut]) - counts[cut], counts[cut])
        at = np.repeat(first[cut], counts[cut]) + within  # where the split runs' tokens are
        start[at] += np.asarray(offsets, np.int64)
        size[at] = sizes
        return tokens, start, size, np.repeat(run_line, counts)


# ------------------------------------------------------------------ ids, labels


class Encoder:
    """encode() = windows.token_ids over a chunk's tokens (a gazetteer model's tags matched within each
    line), with its dictionary token -> word id · 8 + casing class kept across chunks."""

    def __init__(self, vocab: Vocab, gazetteer=None):
        self.vocab, self.gazetteer = vocab, gazetteer
        self.known = KnownTokens()

    def __call__(self, chunk: Chunk) -> tuple[np.ndarray, np.ndarray]:
        """(word_ids, casing_ids), (N,) int32 each, for the chunk's tokens."""
        return token_ids(chunk.tokens, chunk.lengths, self.vocab, self.gazetteer, self.known.current())


def label(tagger, s: np.ndarray, chunk: Chunk) -> tuple[np.ndarray, np.ndarray]:
    """Scores -> (label index per token (N,) int32, P(location) (N,)), the tagger's decision rule:
    decision.decide for a window model; for a sentence model the Viterbi path of each line
    (sentence.decode, p the marginals), whose entity starts go to ``chunk.begins``."""
    if tagger.model.output == "sentence":
        decoded = decode(s, tagger.model.params.A, starts_of(chunk.lengths))
        chunk.begins = decoded.begins
        return decoded.classes, p_location(decoded.p, tagger.classes)
    p = tagger.scorer.probabilities(s)
    return decide(p, tagger.threshold, tagger.classes), p_location(p, tagger.classes)


# ------------------------------------------------------------------ write


_SMALL = np.array([str(i) for i in range(4096)], dtype=object)


def _int_strings(a: np.ndarray) -> list[str]:
    """str(i) for each i of ``a`` (from a table for the small ones)."""
    if not len(a) or a.max() < len(_SMALL):
        return _SMALL[a].tolist()
    return list(map(str, a.tolist()))


def _decimal_tables() -> tuple[np.ndarray, ...]:
    """Pieces of repr(q / 10⁶) for q = 0 ... 10⁶ (see _p_strings)."""
    three = [f"{i:03d}" for i in range(1000)]
    head = np.array(["0." + t for t in three], dtype=object)  # q = hi·1000 + lo, lo > 0: head[hi] + tail[lo]
    tail = np.array([t.rstrip("0") for t in three], dtype=object)
    whole = np.array(["0." + (t.rstrip("0") or "0") for t in three], dtype=object)  # lo = 0: "0.5", "0.0"
    small = np.array([repr(q / 1e6) for q in range(100)], dtype=object)  # below 10⁻⁴ repr has an exponent: 5e-05
    return head, tail, whole, small


_DECIMALS = _decimal_tables()


def _p_strings(p_loc: np.ndarray) -> list[str]:
    """repr(round(p, 6)) for each p, as json.dumps writes the tagger's rounded p.  q = rint(p·10⁶) is
    round(p, 6)·10⁶ for float32 p (tests/test_predict_path.py), so the string is repr(q / 10⁶),
    assembled from tables (tests/test_line_pipeline.py checks every q)."""
    head, tail, whole, small = _DECIMALS
    q = np.rint(p_loc.astype(np.float64) * 1e6).astype(np.int64)
    hi, lo = np.divmod(np.minimum(q, 999_999), 1000)
    out = np.where(lo > 0, head[hi] + tail[lo], whole[hi])
    out[q < 100] = small[q[q < 100]]
    out[q >= 1_000_000] = "1.0"
    return out.tolist()


def spans(chunk: Chunk, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Runs of consecutive tokens of one line with the same non-O label (tagger.spans_of):
    (first token, last token, label, line) per span, each (S,) int."""
    line = chunk.token_line()
    same = np.zeros(len(labels), bool)
    same[1:] = (labels[1:] == labels[:-1]) & (line[1:] == line[:-1])
    if chunk.begins is not None:  # a sentence model's B- tag starts a span even after one of its class
        same &= ~chunk.begins
    entity = labels != 0
    first = np.flatnonzero(entity & ~same)
    after = np.flatnonzero(entity & ~np.append(same[1:], False))  # last token of each span
    return first, after, labels[first], line[first]


def format_text(chunk: Chunk, labels: np.ndarray, classes: Sequence[str]) -> str:
    """Every line with its spans marked, ``museums in [Paris]LOC are amazing``."""
    first, last, lab, _ = spans(chunk, labels)
    if not len(first):
        return chunk.text + "\n"
    text, start, end = chunk.text, chunk.start, chunk.token_end()
    out, pos = [], 0
    for a, b, c in zip(start[first].tolist(), end[last].tolist(), lab.tolist()):
        out += [text[pos:a], "[", text[a:b], "]", classes[c]]
        pos = b
    out += [text[pos:], "\n"]
    return "".join(out)


def format_conll(chunk: Chunk, labels: np.ndarray, classes: Sequence[str]) -> str:
    """``token TAG`` (IOB2) per token, a blank line after each line."""
    N = len(chunk.tokens)
    line = chunk.token_line()
    begins = np.ones(N, bool)
    begins[1:] = (labels[1:] != labels[:-1]) | (line[1:] != line[:-1])
    if chunk.begins is not None:
        begins |= chunk.begins
    last = np.zeros(N, bool)
    last[np.cumsum(chunk.lengths)[chunk.lengths > 0] - 1] = True
    n = len(classes)  # suffix table: [O, B-X..., I-X...] x [inside, last of line]
    tags = ["O"] + [f"B-{c}" for c in classes[1:]] + [f"I-{c}" for c in classes[1:]]
    table = np.array([f" {t}\n" for t in tags] + [f" {t}\n\n" for t in tags], dtype=object)
    tag = np.where(labels == 0, 0, np.where(begins, labels, labels + n - 1)) + last * (2 * n - 1)
    pieces = [None] * (2 * N)
    pieces[0::2] = chunk.tokens
    pieces[1::2] = table[tag].tolist()
    return _with_empty_lines(pieces, chunk.lengths, 2, lambda j: "\n")


def _with_empty_lines(pieces: list, lengths: np.ndarray, per_token: int, empty: Callable[[int], str]) -> str:
    """"".join(pieces), with ``empty(j)`` for each line j without tokens put where that line belongs."""
    if lengths.all():
        return "".join(pieces)
    out, prev = [], 0
    before = np.cumsum(lengths) - lengths  # tokens before each line
    for j in np.flatnonzero(lengths == 0).tolist():
        cut = int(before[j]) * per_token
        out += pieces[prev:cut]
        out.append(empty(j))
        prev = cut
    out += pieces[prev:]
    return "".join(out)


def format_jsonl(chunk: Chunk, labels: np.ndarray, p_loc: np.ndarray, classes: Sequence[str]) -> str:
    """One JSON object per line, ``json.dumps(Tagged.to_dict(), ensure_ascii=False)`` character for character."""
    N, L = len(chunk.tokens), len(chunk.lines)
    line = chunk.token_line()
    rel = chunk.start - chunk.line_start[line]
    rel_end = rel + chunk.size
    first, last, lab, span_line = spans(chunk, labels)
    span_json = [[] for _ in range(L)]
    for a, b, c, j in zip(rel[first].tolist(), rel_end[last].tolist(), lab.tolist(), span_line.tolist()):
        span_json[j].append(f'{{"label": {_encode_json(classes[c])}, "start": {a}, "end": {b}, '
                            f'"text": {_encode_json(chunk.lines[j][a:b])}}}')
    head = [f'{{"text": {_encode_json(t)}, "tokens": [' for t in chunk.lines]
    tail = ["], \"spans\": [" + ", ".join(s) + "]}\n" for s in span_json]
    label_piece = np.array([f', "label": {_encode_json(c)}, "p": ' for c in classes], dtype=object)
    pre = [', {"text": '] * N  # between two tokens of a line
    post = ["}"] * N
    ends = np.cumsum(chunk.lengths)
    for j in np.flatnonzero(chunk.lengths).tolist():
        pre[int(ends[j] - chunk.lengths[j])] = head[j] + '{"text": '
        post[int(ends[j]) - 1] = "}" + tail[j]
    pieces = [None] * (9 * N)
    pieces[0::9] = pre
    pieces[1::9] = map(_encode_json, chunk.tokens)
    pieces[2::9] = [', "start": '] * N
    pieces[3::9] = _int_strings(rel)
    pieces[4::9] = [', "end": '] * N
    pieces[5::9] = _int_strings(rel_end)
    pieces[6::9] = label_piece[labels].tolist()
    pieces[7::9] = _p_strings(p_loc)
    pieces[8::9] = post
    return _with_empty_lines(pieces, chunk.lengths, 9, lambda j: head[j] + tail[j])


# ------------------------------------------------------------------ the pipeline


@dataclass
class Counts:
    lines: int = 0
    tokens: int = 0


class LinePipeline:
    """tokenize -> ids -> score -> labels -> write for a Tagger (tagger.py) and an output format."""

    def __init__(self, tagger, fmt: str = "text"):
        if fmt not in PIPELINE_FORMATS:
            raise ValueError(f"unknown format {fmt!r}; the pipeline writes {', '.join(PIPELINE_FORMATS)}")
        self.tagger, self.fmt = tagger, fmt
        self.tokenize = ChunkTokenizer()
        self.encode = Encoder(tagger.model.vocab, tagger.model.gazetteer)

    def tag_chunk(self, lines: Sequence[str]) -> str:
        """The output for ``lines`` (no line breaks in them), each line's output ending in a line break."""
        chunk, ids = self._prepare(lines)
        return self._format(chunk, *self._score(chunk, ids))

    def _prepare(self, lines: Sequence[str]) -> tuple[Chunk, tuple[np.ndarray, np.ndarray]]:
        chunk = self.tokenize(lines)
        return chunk, self.encode(chunk)

    def _score(self, chunk: Chunk, ids: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        s = self.tagger.scorer.scores_lines(*ids, chunk.lengths)
        return label(self.tagger, s, chunk)

    def _format(self, chunk: Chunk, labels: np.ndarray, p_loc: np.ndarray) -> str:
        classes = self.tagger.classes
        if self.fmt == "text":
            return format_text(chunk, labels, classes)
        if self.fmt == "conll":
            return format_conll(chunk, labels, classes)
        return format_jsonl(chunk, labels, p_loc, classes)

    def run(self, lines: Iterable[str], write: Callable[[str], object], max_chars: int = CHUNK_CHARS,
            overlap: bool = False) -> Counts:
        """Tag every line of ``lines`` (``\r\n`` stripped, as Tagger.tag_lines does); see run_pieces."""
        return self.run_pieces((Piece(line.rstrip("\r\n"), 0, True) for line in lines), write, max_chars, overlap)

    def run_pieces(self, pieces: Iterable[Piece | list[str]], write: Callable[[str], object],
                   max_chars: int = CHUNK_CHARS, overlap: bool = False) -> Counts:
        """Tag the lines of textio.read_blocks (or read_pieces) in order, writing each chunk's output as it is done.

        Whole lines go in chunks of about ``max_chars`` characters; a line that came in pieces
        (longer than textio.MAX_PIECE_CHARS) goes through Tagger.tag_pieces and TagWriter, which
        write it exactly as it would be whole, in memory bounded by the pieces.
        overlap: score each chunk in a second thread while this one tokenizes the next chunk and
        writes the last.  Off by default: numpy releases the GIL only inside each of the scorer's
        short calls, so the two threads mostly wait for each other; on the project's 2 cores the
        default model's 10M tokens took 21.1-22.7 s in one thread against 24.1-26.8 s in two
        (jsonl and a sentence model: the same or slower in two; BENCHMARKS.md, issue 19).
        """
        counts = Counts()
        pool = None
        if overlap:
            from concurrent.futures import ThreadPoolExecutor  # lazy: a sentence needs no thread

            pool = ThreadPoolExecutor(1, thread_name_prefix="ner-window-score")
        pending = None  # (chunk, its scores or their future): written once the next chunk is prepared
        try:
            for unit in _units(pieces, max_chars):
                if isinstance(unit, list):
                    chunk, ids = self._prepare(unit)
                    scored = pool.submit(self._score, chunk, ids) if pool else self._score(chunk, ids)
                    counts.lines, counts.tokens = counts.lines + len(chunk.lines), counts.tokens + len(chunk.tokens)
                    if pending is not None:
                        write(self._format(pending[0], *_result(pending[1])))
                    pending = (chunk, scored)
                    continue
                if pending is not None:  # the scorer is used by one thread at a time
                    write(self._format(pending[0], *_result(pending[1])))
                    pending = None
                writer = TagWriter(write, self.fmt)
                for item in self.tagger.tag_pieces(unit):
                    writer.add(item)
                    counts.tokens += len(item.tokens)
                counts.lines += 1
            if pending is not None:
                write(self._format(pending[0], *_result(pending[1])))
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        return counts


def _result(scored):
    """The scores of a chunk: a future's result, or the scores themselves."""
    return scored.result() if hasattr(scored, "result") else scored


def _units(items: Iterable[Piece | list[str]], max_chars: int) -> Iterator[list[str] | Iterator[Piece]]:
    """Lists of whole lines of about ``max_chars`` characters, and for a line that came in pieces
    an iterator over its pieces (the caller reads it to the end before asking for more).
    ``items``: textio.read_pieces' Pieces or read_blocks' lists of whole lines and Pieces."""
    items = iter(items)
    batch: list[str] = []
    size = 0
    for item in items:
        if isinstance(item, list):  # whole lines: cut where the characters so far reach max_chars
            cum = list(itertools.accumulate(map(len, item)))
            first = 0
            while first < len(item):
                base = cum[first - 1] if first else 0
                i = bisect.bisect_left(cum, max_chars - size + base, lo=first)
                if i >= len(item):
                    break
                yield batch + item[first:i + 1]
                batch, size, first = [], 0, i + 1
            if first < len(item):
                batch += item[first:]
                size += cum[-1] - (cum[first - 1] if first else 0)
            continue
        if item.start == 0 and item.last:
            batch.append(item.text)
            size += len(item.text) + 1
            if size >= max_chars:
                yield batch
                batch, size = [], 0
            continue
        if batch:
            yield batch
            batch, size = [], 0
        yield _rest_of_line(item, items)
    if batch:
        yield batch


def _rest_of_line(first: Piece, pieces: Iterator[Piece]) -> Iterator[Piece]:
    """``first`` and the pieces after it, up to the one that ends its line."""
    piece = first
    while True:
        yield piece
        if piece.last:
            return
        piece = next(pieces, None)
        if piece is None:
            return


def line_chunks(lines: Iterable[str], max_chars: int = CHUNK_CHARS) -> Iterator[list[str]]:
    """Lists of lines, ``\r\n`` stripped as Tagger.tag_lines does, each about ``max_chars`` characters
    (a longer line is a list of its own); pulls lines only as it needs them."""
    batch: list[str] = []
    size = 0
    for line in lines:
        line = line.rstrip("\r\n")
        batch.append(line)
        size += len(line) + 1
        if size >= max_chars:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch
