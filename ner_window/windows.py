"""Stage 4: turn sentences into windows of word ids, one window per token.

For radius m, the window of token i is the ids of positions i-m ... i+m, padded
with ``<s>`` on the left and ``</s>`` on the right of the sentence.  A corpus
becomes an int32 index matrix ``ids`` (N, 2m+1), a casing matrix of the same
shape and a label vector ``y`` (N,).  The float matrix x (N, (2m+1)·d) is never
built for a whole corpus: the model gathers it per minibatch from E.

Casing classes exist because pretrained vectors such as GloVe are lowercased,
while capitalisation is the strongest single cue for a name.  With a gazetteer, a
token's categorical feature is its casing class and its gazetteer tag together:
id = casing class + K · tag (K = len(CASING_CLASSES); tag 0 outside, 1 begins, 2
continues a known place name), one row of C per pair (``feature_name``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .conll import Sentence, entity_spans
from .errors import ModelError
from .gazetteer import TAGS, Gazetteer
from .vocab import BOS, EOS, Vocab

CASING_CLASSES = ("pad", "lower", "title", "upper", "mixed", "digit", "punct", "other")
PAD, LOWER, TITLE, UPPER, MIXED, DIGIT, PUNCT, OTHER = range(len(CASING_CLASSES))


def casing_class(token: str) -> int:
    """The casing class id of a token (see CASING_CLASSES).

    >>> [CASING_CLASSES[casing_class(t)] for t in ["paris", "Paris", "PARIS", "McDonald", "1996", ",", "北京"]]
    ['lower', 'title', 'upper', 'mixed', 'digit', 'punct', 'other']
    """
    if any(ch.isdigit() for ch in token):
        return DIGIT
    if not any(ch.isalnum() for ch in token):
        return PUNCT
    if token.islower():
        return LOWER
    if token.isupper():
        # a lone capital ("A", "I") behaves like a capitalised word, not a headline
        return TITLE if sum(ch.isalpha() for ch in token) == 1 else UPPER
    if token.istitle() or (token[0].isupper() and token[1:].islower()):
        return TITLE
    if any(ch.isupper() for ch in token):
        return MIXED
    return OTHER  # letters without case (CJK, Arabic, ...)


def n_features(gazetteer: bool) -> int:
    """Rows of C: one per casing class, times the three gazetteer tags when there is a gazetteer."""
    return len(CASING_CLASSES) * (len(TAGS) if gazetteer else 1)


def feature_name(feature_id: int) -> str:
    """The name of a categorical feature id: "title", or "title+begins" with a gazetteer tag."""
    tag, casing = divmod(int(feature_id), len(CASING_CLASSES))
    return CASING_CLASSES[casing] + (f"+{TAGS[tag]}" if tag else "")


@dataclass
class Windows:
    """Index windows for a corpus of N tokens, radius m.

    ids      (N, 2m+1) int32  word ids, <s>/</s> ids past the sentence edges
    casing   (N, 2m+1) int32  casing class ids, 0 (pad) past the edges
    y        (N,)      int32  label: 1 = part of a location (binary) or class id (multiclass, 0 = O)
    sentence (N,)      int32  index of the token's sentence
    position (N,)      int32  index of the token inside its sentence
    """

    ids: np.ndarray
    casing: np.ndarray
    y: np.ndarray
    sentence: np.ndarray
    position: np.ndarray

    def __len__(self) -> int:
        return len(self.y)

    @property
    def radius(self) -> int:
        return (self.ids.shape[1] - 1) // 2

    def subset(self, index: np.ndarray) -> "Windows":
        return Windows(self.ids[index], self.casing[index], self.y[index], self.sentence[index], self.position[index])

    def to_frame(self, vocab: Vocab):
        """A pandas DataFrame, one row per window: the words at each position, casing, label, sentence, position."""
        import pandas as pd  # lazy: the tagging path never needs pandas

        m = self.radius
        words = np.asarray(vocab.words, dtype=object)
        cols = {f"w{o:+d}" if o else "w0": words[self.ids[:, j]] for j, o in enumerate(range(-m, m + 1))}
        cols["casing"] = [feature_name(c) for c in self.casing[:, m]]
        cols["label"] = self.y
        cols["sentence"] = self.sentence
        cols["position"] = self.position
        return pd.DataFrame(cols)


MAX_KNOWN = 1 << 19  # tokens a KnownTokens keeps before it starts a new dictionary


class KnownTokens:
    """token -> word id · 8 + casing class, kept by a caller of token_ids across calls (the Tagger,
    the pipeline's Encoder), bounded: past MAX_KNOWN entries ``current()`` starts a new, empty
    dictionary rather than clearing the old one, so a thread still using that one keeps it whole."""

    def __init__(self):
        self.codes: dict[str, int] = {}

    def current(self) -> dict[str, int]:
        if len(self.codes) > MAX_KNOWN:
            self.codes = {}
        return self.codes


def token_ids(tokens: Sequence[str], lengths: np.ndarray, vocab: Vocab, gazetteer: Gazetteer | None = None,
              known: dict[str, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(word ids, casing ids), (n,) int32 each, of the flat token list of sentences of ``lengths``
    tokens: the centre column of make_windows' windows (a gazetteer's tag folded into the casing id).

    known: token -> word id · 8 + casing class, filled here and kept by a caller that tags many
    short texts (KnownTokens.current()), so a token is looked up once, not once per call."""
    n = len(tokens)
    K = len(CASING_CLASSES)
    # Text repeats its words (Zipf's law), so each DISTINCT token is looked up once;
    # the per-token work is then one dict lookup in C (~4x faster on running text).
    code_of = {} if known is None else known
    try:  # a caller's known tokens: usually all of them (a list first: fromiter pulls a map at twice the cost)
        codes = list(map(code_of.__getitem__, tokens))
    except KeyError:
        for t in set(tokens).difference(code_of):
            code_of[t] = vocab.lookup(t) * K + casing_class(t)
        codes = list(map(code_of.__getitem__, tokens))
    word_ids, casing = np.divmod(np.fromiter(codes, dtype=np.int64, count=n), K)
    word_ids, casing = word_ids.astype(np.int32), casing.astype(np.int32)
    if gazetteer is not None:
        casing += K * gazetteer.tags(tokens, lengths)
    return word_ids, casing


def make_windows(
    sentences: Sequence[Sequence[str]],
    vocab: Vocab,
    radius: int,
    labels: Sequence[Sequence[int]] | None = None,
    gazetteer: Gazetteer | None = None,
) -> Windows:
    """Windows for every token of ``sentences`` (lists of tokens); with a ``gazetteer``, each
    token's casing id also says whether it begins or continues a known place name.

    Each sentence is padded with m ``<s>`` and m ``</s>`` ids and all padded
    sentences are laid end to end in one flat array; the window of the token at
    flat position k is then ``flat[k-m : k+m+1]``, built for all tokens at once
    by fancy indexing (no Python loop over windows).
    """
    m = int(radius)
    if m < 0:
        raise ValueError(f"window radius must be >= 0, got {m}")
    lengths = np.fromiter((len(s) for s in sentences), dtype=np.int64, count=len(sentences))
    n = int(lengths.sum())
    width = 2 * m + 1
    if n == 0:
        empty = np.zeros((0, width), dtype=np.int32)
        return Windows(empty, empty.copy(), np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.int32))
    word_ids, casing = token_ids([t for s in sentences for t in s], lengths, vocab, gazetteer)
    sentence = np.repeat(np.arange(len(sentences), dtype=np.int32), lengths)
    starts = np.cumsum(lengths) - lengths
    position = (np.arange(n) - np.repeat(starts, lengths)).astype(np.int32)

    # flat layout: [m x <s>] sent0 [m x </s>][m x <s>] sent1 [m x </s>] ...
    padded_len = lengths + 2 * m
    flat_len = int(padded_len.sum())
    center = (np.repeat(np.cumsum(padded_len) - padded_len, lengths) + m + position).astype(np.int64)
    flat_ids = np.empty(flat_len, dtype=np.int32)
    flat_cas = np.full(flat_len, PAD, dtype=np.int32)
    pad_starts = np.cumsum(padded_len) - padded_len
    bos, eos = vocab.lookup(BOS), vocab.lookup(EOS)
    for k in range(m):  # m is tiny (1-3): fill the edge pads column by column
        flat_ids[pad_starts + k] = bos
        flat_ids[pad_starts + padded_len - 1 - k] = eos
    flat_ids[center] = word_ids
    flat_cas[center] = casing
    gather = center[:, None] + np.arange(-m, m + 1)[None, :]
    y = np.zeros(n, dtype=np.int32) if labels is None else np.fromiter(
        (v for lab in labels for v in lab), dtype=np.int32, count=n
    )
    return Windows(flat_ids[gather], flat_cas[gather], y, sentence, position)


RECASINGS = ("as written", "lower", "upper")  # case augmentation: how a training sentence is read


def recased_windows(sentences: Sequence[Sequence[str]], vocab: Vocab, radius: int, windows: Windows,
                    gazetteer: Gazetteer | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(ids, casing), each (3, N, 2m+1): ``windows`` with every sentence as written, lowercased, uppercased.

    Case augmentation reads a share of the training sentences lowercased or uppercased.
    With a lowercased vocabulary (GloVe) "PARIS", "paris" and "Paris" look up the same
    row of E, so only the casing classes change; the word ids are recomputed anyway, for
    a vocabulary that keeps case and for the few words whose case mapping is not a round
    trip ("ß" -> "SS").  Recasing a sentence is then choosing, for each of its windows,
    row 1 or 2 of these arrays instead of row 0.
    """
    ids = np.empty((len(RECASINGS), *windows.ids.shape), dtype=windows.ids.dtype)
    casing = np.empty_like(ids)
    ids[0], casing[0] = windows.ids, windows.casing
    for k, change in ((1, str.lower), (2, str.upper)):
        recased = make_windows([[change(t) for t in s] for s in sentences], vocab, radius, gazetteer=gazetteer)
        ids[k], casing[k] = recased.ids, recased.casing
    return ids, casing


def check_window_shape(ids: np.ndarray, casing: np.ndarray | None, width: int, needs_casing: bool) -> None:
    """ModelError unless ids (and casing) are integer (B, width) arrays, casing present when ``needs_casing``."""
    for name, a in (("word", ids), ("casing", casing)):
        if a is not None and a.dtype.kind not in "iu":
            raise ModelError(f"{name} ids must be an integer array, got dtype {a.dtype}: "
                             "build them with ner_window.windows")
    if ids.ndim != 2 or ids.shape[1] != width:
        raise ModelError(f"the model expects windows of {width} tokens (radius {(width - 1) // 2}), got ids of "
                         f"shape {ids.shape}: build the windows with the radius the model was trained with")
    if needs_casing and (casing is None or casing.shape != ids.shape):
        got = None if casing is None else casing.shape
        raise ModelError(f"the model has casing vectors, so casing ids of shape {ids.shape} are needed (got {got})")


def check_window_ids(ids: np.ndarray, casing: np.ndarray | None, n_words: int, n_casing: int | None) -> None:
    """ModelError if a word id is outside [0, n_words) (or a casing id outside [0, n_casing), when given)."""
    checks = [("word", ids, n_words)] + ([] if n_casing is None else [("casing", casing, n_casing)])
    for name, a, n in checks:
        if a.size and (a.min() < 0 or a.max() >= n):
            raise ModelError(f"{name} ids must lie in [0, {n}) but range over [{a.min()}, {a.max()}]: "
                             "the windows were built with another vocabulary")


OTHER_LOC = "OTHER_LOC"  # the class of a type named LOC that is not among data.location_types


def entity_class(type_: str, location_types: Sequence[str]) -> str:
    """The class an entity type is learned as: "LOC" for every type in ``location_types``;
    a type that happens to be named LOC but is not among them (``location_types: [GPE]``)
    is just another type, OTHER_LOC, so that "LOC" always means the chosen location types.

    >>> [entity_class(t, ["GPE"]) for t in ("GPE", "LOC", "PER")]
    ['LOC', 'OTHER_LOC', 'PER']
    """
    if type_ in location_types:
        return "LOC"
    return OTHER_LOC if type_ == "LOC" else type_


@dataclass
class LabelledData:
    """A labelled file ready for training or evaluation.

    sentences  the file's sentences (tokens and gold tags)
    windows    one window per token, labels for the task
    spans      gold entity spans per sentence, ``(type, start, end)``, decoded as conlleval does
    """

    sentences: list[Sentence]
    windows: Windows
    spans: list[list[tuple[str, int, int]]]

    @property
    def tokens(self) -> list[tuple[str, ...]]:
        return [s.tokens for s in self.sentences]


def labelled_data(
    sentences: list[Sentence], vocab: Vocab, radius: int, classes: Sequence[str], location_types: Sequence[str],
    gazetteer: Gazetteer | None = None,
) -> LabelledData:
    """Windows and labels for ``sentences``: binary when ``classes`` is ("O", "LOC"), else multiclass.

    In the binary task every type in ``location_types`` is a location; in the
    multiclass task each type is its own class, with ``location_types`` mapped
    to "LOC" so the location figures mean the same thing in both tasks.
    """
    binary = list(classes) == ["O", "LOC"]
    spans = [[(entity_class(t, location_types), a, b) for t, a, b in entity_spans(s.tags)] for s in sentences]
    index = {c: i for i, c in enumerate(classes)}
    labels = []
    for sent, sent_spans in zip(sentences, spans):
        y = [0] * len(sent.tokens)
        for t, a, b in sent_spans:
            k = (1 if t == "LOC" else 0) if binary else index.get(t, 0)
            y[a:b] = [k] * (b - a)
        labels.append(y)
    windows = make_windows([s.tokens for s in sentences], vocab, radius, labels, gazetteer)
    return LabelledData(sentences, windows, spans)
