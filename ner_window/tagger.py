"""Stage 9: tag raw text with a saved model.

    >>> tagger = Tagger.load("runs/latest")                    # doctest: +SKIP
    >>> tagger.tag("museums in Paris are amazing").spans       # doctest: +SKIP
    [Span(label='LOC', start=11, end=16, text='Paris')]

Text is tokenised the way CoNLL-2003 is, turned into windows, and scored by
slot projections (``slots.SlotScorer``: each window's z is a sum of cached rows, equal
to ``fast.predict_proba``'s matrix product to float32 rounding, and the same for a
token whatever else is tagged with it).  The label is decision.decide's: binary models call a token
a location when p >= the threshold tuned on dev (or the one given to ``Tagger``);
multiclass models take the argmax class.  Spans are runs of consecutive tokens with the
same label.  Every token carries ``p`` = P(location), whatever its label, so a
caller can re-mark the text at another threshold without scoring it again.

A sentence-level model (model.output: sentence) scores its IOB2 tags with
the same slot projections and decodes each line (a sentence) at once (sentence.decode): the
label is the Viterbi path's, a span is a B- tag and the I- tags after it (so two adjacent
places stay two spans), and ``p`` is the marginal P(location | sentence), shown, not thresholded.

This module is on the prediction path: it imports numpy and the package's own
light modules only (no gensim, pandas, scikit-learn or matplotlib), so
``ner-window predict`` starts fast.
"""

from __future__ import annotations

import itertools
import json
import os
from collections import deque
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from .artifact import Model, load_model
from .decision import decide, p_location
from .errors import DataError
from .sentence import decode, starts_of
from .slots import SlotScorer
from .textio import Piece
from .tokenize import token_spans
from .windows import KnownTokens, token_ids

MODEL_ENV = "NER_WINDOW_MODEL"
DEFAULT_MODEL = Path("runs") / "latest"
FORMATS = ("text", "conll", "json", "jsonl")


def default_model_path() -> Path:
    """$NER_WINDOW_MODEL if set, else runs/latest (where `make train` points)."""
    return Path(os.environ.get(MODEL_ENV) or DEFAULT_MODEL)


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs 3x more, and tagging makes one per token
class TaggedToken:
    text: str
    start: int
    end: int
    label: str  # "O" or an entity type such as "LOC"
    p: float  # P(location): binary sigma(s); multiclass the softmax probability of LOC


@dataclass(frozen=True)
class Span:
    label: str
    start: int  # character offsets into the tagged text
    end: int
    text: str


@dataclass(frozen=True)
class TaggedPiece:
    """A piece of a line too long to tag at once (textio.read_pieces): its tokens, tagged with
    their context in the whole line; offsets are into the whole line."""

    piece: Piece
    tokens: list[TaggedToken]


@dataclass(frozen=True)
class Tagged:
    text: str
    tokens: list[TaggedToken]
    spans: list[Span]

    def to_dict(self) -> dict:
        """{"text", "tokens", "spans"}: each token and span as a dict of its fields, in field order.

        Written out field by field: dataclasses.asdict deep-copies every value and cost
        12 µs a token, more than tagging it (an HTTP answer is mostly this dict)."""
        return {"text": self.text,
                "tokens": [{"text": t.text, "start": t.start, "end": t.end, "label": t.label, "p": t.p}
                           for t in self.tokens],
                "spans": [{"label": s.label, "start": s.start, "end": s.end, "text": s.text} for s in self.spans]}


class Tagger:
    """A loaded model that tags text: ``Tagger.load(path).tag("text")``."""

    def __init__(self, model: Model, threshold: float | None = None, scorer: SlotScorer | None = None):
        """threshold: P(location) at which a binary model tags LOC [the one tuned on dev, model.threshold];
        scorer: another Tagger's ``scorer`` for the same model, to share its row cache (not between threads)."""
        if threshold is not None and not (isinstance(threshold, (int, float)) and 0.0 <= threshold <= 1.0):
            raise DataError(f"threshold {threshold!r} must be a number from 0 to 1 (P(location) at which "
                            f"a token is tagged LOC)")
        self.model = model
        self.binary = model.task == "binary" and model.output == "window"  # decides by a threshold on p
        self.classes = model.classes
        self.threshold = model.threshold if threshold is None else float(threshold)
        self._scorer = scorer
        self._known = KnownTokens()  # token -> word id · 8 + casing class (windows.token_ids)

    @property
    def scorer(self) -> SlotScorer:
        """The model's slot-projection scorer (slots.py), built on first use; it computes a token type's
        rows when it first sees it, so a sentence costs only its own rows."""
        if self._scorer is None:
            self._scorer = SlotScorer(self.model.params, self.model.activation)
        return self._scorer

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, threshold: float | None = None) -> "Tagger":
        return cls(load_model(default_model_path() if path is None else path), threshold)

    @property
    def rule(self) -> str:
        """How this tagger decides, for messages: '<model> is <what> and tags <how>'."""
        if self.model.output == "sentence":
            return f"{self.model.path} is a sentence-level model and tags each sentence's Viterbi path"
        if self.binary:
            return f"{self.model.path} is binary and tags LOC where p >= {self.threshold:g}"
        return f"{self.model.path} is {self.model.task} and tags the argmax class"

    def label_tokens(self, sentences: Sequence[Sequence[str]],
                     decimals: int | None = None) -> list[tuple[list[str], list[float]]]:
        """Labels and P(location) for pre-tokenised sentences (one window per token),
        the probabilities rounded to ``decimals`` places when given."""
        return self.label_tokens_and_begins(sentences, decimals)[0]

    def label_tokens_and_begins(self, sentences: Sequence[Sequence[str]], decimals: int | None = None):
        """(label_tokens' list, the entity-begins flags per sentence or None): a sentence model's
        B- tags, where a span starts even right after another one of its class (None for a
        window model, whose spans are the runs of equal labels)."""
        lengths = np.fromiter(map(len, sentences), np.int64, len(sentences))
        if not lengths.sum():
            return [([], []) for _ in sentences], None
        begins = None
        ids, casing = token_ids([t for s in sentences for t in s], lengths, self.model.vocab, self.model.gazetteer,
                                self._known.current())
        s = self.scorer.scores_lines(ids, casing, lengths)  # each token's window: slots.SlotScorer pads the lines
        if self.model.output == "sentence":
            decoded = decode(s, self.model.params.A, starts_of(lengths))
            decided, p, begins = decoded.classes, decoded.p, decoded.begins.tolist()
        else:
            p = self.scorer.probabilities(s)
            decided = decide(p, self.threshold, self.classes)
        labels = np.asarray(self.classes, dtype=object)[decided]
        conf = p_location(p, self.classes).astype(np.float64)
        if decimals is not None:
            conf = np.round(conf, decimals)  # for float32 p, exactly Python's round(p, decimals)
        labels, conf = labels.tolist(), conf.tolist()  # once, not per sentence
        out, flags, start = [], [], 0
        for sent in sentences:
            end = start + len(sent)
            out.append((labels[start:end], conf[start:end]))
            if begins is not None:
                flags.append(begins[start:end])
            start = end
        return out, None if begins is None else flags

    def tag(self, text: str) -> Tagged:
        return self.tag_many([text])[0]

    def tag_many(self, texts: Sequence[str]) -> list[Tagged]:
        """Tag several texts in one batch (each text is one window sequence)."""
        toks = [token_spans(t) for t in texts]  # (text, start, end) per token
        labelled, begins = self.label_tokens_and_begins([[word for word, _, _ in ts] for ts in toks], decimals=6)
        results = []
        for k, (text, ts, (labels, conf)) in enumerate(zip(texts, toks, labelled)):
            tokens = [TaggedToken(word, start, end, lab, c) for (word, start, end), lab, c in zip(ts, labels, conf)]
            results.append(Tagged(text, tokens, spans_of(text, tokens, None if begins is None else begins[k])))
        return results

    def tag_lines(self, lines: Iterable[str], chunk_tokens: int = 50_000) -> Iterator[Tagged]:
        """Stream: tag lines in chunks of about ``chunk_tokens`` tokens, so memory stays bounded."""
        batch: list[str] = []
        size = 0
        for line in lines:
            line = line.rstrip("\r\n")
            batch.append(line)
            size += line.count(" ") + 1
            if size >= chunk_tokens:
                yield from self.tag_many(batch)
                batch, size = [], 0
        if batch:
            yield from self.tag_many(batch)

    def tag_pieces(self, pieces: Iterable[Piece], chunk_tokens: int = 50_000) -> Iterator[Tagged | TaggedPiece]:
        """Stream over textio.read_pieces: a line that came whole is a Tagged (lines are tagged in
        chunks of about ``chunk_tokens`` tokens, as tag_lines does); a line that came in pieces is
        a TaggedPiece per piece, in order, each token's window the one it has in the whole line,
        so a long line is tagged exactly as it would be whole, in memory bounded by its pieces."""
        pieces = iter(pieces)
        lines: list[str] = []
        size = 0
        for piece in pieces:
            if piece.start == 0 and piece.last:
                lines.append(piece.text)
                size += piece.text.count(" ") + 1
                if size >= chunk_tokens:
                    yield from self.tag_many(lines)
                    lines, size = [], 0
                continue
            if lines:
                yield from self.tag_many(lines)
                lines, size = [], 0
            yield from self._tag_long_line(piece, pieces)
        if lines:
            yield from self.tag_many(lines)

    def _tag_long_line(self, first: Piece, pieces: Iterator[Piece]) -> Iterator[TaggedPiece]:
        """The pieces of one line, from ``first`` on.  A piece is scored once the m tokens after it
        are known (or the line has ended): its windows are those of the line's token sequence."""
        m = self.model.radius
        left: list[str] = []  # the m tokens before the oldest waiting piece
        waiting: deque[tuple[Piece, list[tuple[str, int, int]]]] = deque()
        piece, ended = first, False
        while waiting or not ended:
            if not ended:
                waiting.append((piece, _piece_spans(piece)))
                ended = piece.last
                if not ended:
                    piece = next(pieces, None)
                    ended = piece is None  # read_pieces always ends a line; a caller's stream may not
            ahead = sum(len(spans) for _, spans in list(waiting)[1:])
            while waiting and (ended or ahead >= m):
                done, spans = waiting.popleft()
                right = [w for _, later in waiting for w, _, _ in later][:m]
                words = [w for w, _, _ in spans]
                [(labels, conf)] = self.label_tokens([left + words + right], decimals=6)
                k = len(left)
                yield TaggedPiece(done, [TaggedToken(w, a, b, lab, c) for (w, a, b), lab, c
                                         in zip(spans, labels[k:k + len(words)], conf[k:k + len(words)])])
                left = (left + words)[-m:] if m else []
                ahead -= len(waiting[0][1]) if waiting else 0


def _piece_spans(piece: Piece) -> list[tuple[str, int, int]]:
    """The tokens of a piece, with offsets into its line.  A piece after the first follows a
    whitespace character, which tokenize's look-behinds see: a space in front stands for it."""
    if piece.start == 0:
        return token_spans(piece.text)
    return [(w, piece.start + a - 1, piece.start + b - 1) for w, a, b in token_spans(" " + piece.text)]


def spans_of(text: str, tokens: Sequence[TaggedToken], begins: Sequence[bool] | None = None) -> list[Span]:
    """Runs of consecutive tokens with the same non-O label, as character spans; with ``begins``
    (a sentence model's B- tags), a token that begins an entity also starts a new span."""
    spans: list[Span] = []
    i = 0
    while i < len(tokens):
        if tokens[i].label == "O":
            i += 1
            continue
        j = i
        while j + 1 < len(tokens) and tokens[j + 1].label == tokens[i].label and not (begins and begins[j + 1]):
            j += 1
        start, end = tokens[i].start, tokens[j].end
        spans.append(Span(tokens[i].label, start, end, text[start:end]))
        i = j + 1
    return spans


def iob2_tags(tokens: Sequence[TaggedToken], spans: Sequence[Span] | None = None) -> list[str]:
    """B-/I- tags for the runs of equal labels, or (spans given) B- where a span starts."""
    starts = None if spans is None else {s.start for s in spans}
    tags, prev = [], "O"
    for t in tokens:
        begins = prev != t.label if starts is None else t.start in starts
        tags.append("O" if t.label == "O" else ("B-" if begins else "I-") + t.label)
        prev = t.label
    return tags


def format_tagged(tagged: Tagged, fmt: str = "text") -> str:
    """One tagged text as text (``museums in [Paris]LOC are amazing``), conll, json or jsonl."""
    if fmt == "text":
        out, pos = [], 0
        for s in tagged.spans:
            out += [tagged.text[pos:s.start], f"[{s.text}]{s.label}"]
            pos = s.end
        out.append(tagged.text[pos:])
        return "".join(out)
    if fmt == "conll":
        return "".join(f"{t.text} {tag}\n" for t, tag in zip(tagged.tokens, iob2_tags(tagged.tokens, tagged.spans)))
    if fmt == "json":
        return json.dumps(tagged.to_dict(), ensure_ascii=False, indent=1)
    if fmt == "jsonl":
        return json.dumps(tagged.to_dict(), ensure_ascii=False)
    raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")


class TagWriter:
    """Tagged texts written in one format as they come: text, conll, jsonl (one object a line),
    or json: one document -- the object of one text, or with ``array=True`` an array of objects.

        writer = TagWriter(out.write, "jsonl")       # out: files.line_writer(...)
        for item in tagger.tag_pieces(textio.read_pieces(path)):
            writer.add(item)
        writer.close()

    A line that comes in pieces (TaggedPiece) is written as its pieces come, and reads exactly
    as format_tagged of the whole line would (json: as json.dumps of the whole array).
    """

    def __init__(self, write: Callable[[str], None], fmt: str = "text", array: bool = False):
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
        self.write, self.fmt, self.array = write, fmt, array and fmt == "json"
        self.count = 0  # texts written (or begun, for a long line being written)
        self._long: _LongLine | None = None

    def add(self, item: Tagged | TaggedPiece) -> None:
        if isinstance(item, Tagged):
            self._begin()
            text = format_tagged(item, self.fmt)
            if self.array:
                text = " " + text.replace("\n", "\n ")  # one level down, as json.dumps(list, indent=1)
            self.write(text if self.array else text + "\n")
            return
        if self._long is None:
            self._begin()
            self._long = _LongLine(self.write, self.fmt, depth=1 if self.array else 0)
        self._long.add(item)
        if item.piece.last:
            self._long.end()
            self._long = None
            if not self.array:
                self.write("\n")

    def _begin(self) -> None:
        if self.array:
            self.write(",\n" if self.count else "[\n")
        self.count += 1

    def close(self) -> None:
        """End the document (json with array=True: close the array; an empty one is [])."""
        if self.array:
            self.write("\n]\n" if self.count else "[]\n")


class _LongLine:
    """One line written piece by piece in ``fmt``; the same characters as format_tagged of the line.

    A piece is taken run by run: a run is a stretch of consecutive tokens with one label, and
    its text runs from its first token's start to its last token's end.  A run ends only when a
    token with another label (or the line's end) comes, perhaps in a later piece, so the text
    after the last run of a piece waits in ``pending`` until it is known to lie inside a run
    (a LOC run continuing in the next piece) or after it.  json writes the line's text as it
    comes and keeps tokens and spans in temporary files (they follow the text in the object)
    until the line ends.
    """

    def __init__(self, write: Callable[[str], None], fmt: str, depth: int):
        self.write, self.fmt, self.depth = write, fmt, depth
        self.label = "O"  # the label of the line's last run so far
        self.pending = ""  # the text after it, when it is not O (where it belongs is not known yet)
        self.run: list = []  # json: [start, text parts] of the open non-O run
        self.json = fmt in ("json", "jsonl")
        if self.json:
            import tempfile  # lazy: only a long line in json needs it, and it costs the cold start a few ms

            self.indent = 1 if fmt == "json" else None
            self.tokens = tempfile.SpooledTemporaryFile(8 << 20, mode="w+", encoding="utf-8")
            self.spans = tempfile.SpooledTemporaryFile(8 << 20, mode="w+", encoding="utf-8")
            self.n_tokens = self.n_spans = 0
            write((" " * depth if self.indent else "") + "{" + self._open(depth + 1) + '"text": "')

    def add(self, tp: TaggedPiece) -> None:
        text, base, out, pos = tp.piece.text, tp.piece.start, [], 0
        if self.fmt == "conll":
            for t in tp.tokens:
                out.append(f"{t.text} {'O' if t.label == 'O' else ('I-' if self.label == t.label else 'B-') + t.label}\n")
                self.label = t.label
            self.write("".join(out))
            return
        if self.json:
            self.write(json.dumps(text, ensure_ascii=False)[1:-1])  # escaping is per character
            self._items(self.tokens, "n_tokens", [{"text": t.text, "start": t.start, "end": t.end, "label": t.label,
                                                   "p": t.p} for t in tp.tokens])
        for label, run in itertools.groupby(tp.tokens, key=attrgetter("label")):
            run = list(run)
            a, b = run[0].start - base, run[-1].end - base
            if label != "O" and label == self.label:  # the run goes on: the text since it is inside
                self._in_run(out, self.pending + text[pos:b])
            else:
                self._end_run(out, label)
                out.append(text[pos:a])
                self._start_run(out, label, run[0].start, text[a:b])
            self.pending, pos = "", b
        tail = text[pos:]
        if self.label == "O":
            out.append(tail)
        else:
            self.pending += tail
        if self.fmt == "text":
            self.write("".join(out))

    def _in_run(self, out: list, text: str) -> None:
        if self.fmt == "text":
            out.append(text)
        else:
            self.run[1].append(text)

    def _start_run(self, out: list, label: str, start: int, text: str) -> None:
        if self.fmt == "text":
            out.append(f"[{text}" if label != "O" else text)
        elif label != "O":
            self.run = [start, [text]]
        self.label = label

    def _end_run(self, out: list, next_label: str = "O") -> None:
        """Close the open run before a run of ``next_label``: "]LABEL" and the text after it (text),
        its span (json)."""
        if self.label != "O":
            if self.fmt == "text":
                out.append(f"]{self.label}{self.pending}")
            elif self.json:
                start, parts = self.run
                text = "".join(parts)
                self._items(self.spans, "n_spans", [{"label": self.label, "start": start,
                                                     "end": start + len(text), "text": text}])
        self.label, self.pending = "O", ""

    def end(self) -> None:
        out: list[str] = []
        self._end_run(out)
        self.write("".join(out))
        if not self.json:
            return
        d = self.depth
        self.write('"' + self._sep(d + 1) + '"tokens": [')
        self._copy(self.tokens, self.n_tokens, d + 2)
        self.write("]" + self._sep(d + 1) + '"spans": [')
        self._copy(self.spans, self.n_spans, d + 2)
        self.write("]" + self._open(d) + "}")

    # json layout: the separators and indentation of json.dumps(..., indent=1 or None)
    def _open(self, depth: int) -> str:
        return "\n" + " " * depth if self.indent else ""

    def _sep(self, depth: int) -> str:
        return ",\n" + " " * depth if self.indent else ", "

    def _items(self, spool, counter: str, items: list[dict]) -> None:
        """Append ``items`` to a list written at depth self.depth + 2, as json.dumps would lay it out."""
        if not items:
            return
        text = json.dumps(items, ensure_ascii=False, indent=self.indent)[1:-1]
        if self.indent:  # "\n {...},\n {...}\n" -> each item one level deeper per enclosing level
            text = text[:-1].replace("\n", "\n" + " " * (self.depth + 1))
        n = getattr(self, counter)
        spool.write(("," if self.indent else ", ") + text if n else text)
        setattr(self, counter, n + len(items))

    def _copy(self, spool, n: int, depth: int) -> None:
        spool.seek(0)
        while chunk := spool.read(1 << 20):
            self.write(chunk)
        spool.close()
        if n:
            self.write(self._open(depth - 1))
