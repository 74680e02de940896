"""Properties that must hold for every input, checked on random inputs with hypothesis.

* the CoNLL reader returns sentences or raises DataError, never anything else;
* write_conll -> read_conll gives back exactly what was written;
* every token gets exactly one window, centred on it, that never leaks across sentences;
* entity_spans agrees with independent references: a one-rule restatement of
  conlleval on arbitrary tag sequences, and the scheme definitions on valid ones.
"""

import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ner_window.conll import SCHEMES, Sentence, entity_spans, is_valid_tag, read_conll, write_conll
from ner_window.errors import DataError
from ner_window.vocab import BOS, EOS, UNK, Vocab
from ner_window.windows import make_windows

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
PREFIXES = {"iob1": "BI", "iob2": "BI", "io": "I", "bioes": "BIES"}
TYPES = ["LOC", "PER", "ORG"]


@contextmanager
def scratch_file():
    """A fresh file path per example (pytest's tmp_path is shared by all examples of a test)."""
    with tempfile.TemporaryDirectory(prefix="ner-prop-") as d:
        yield Path(d) / "f.txt"


# --- the reader never fails with anything but DataError ------------------------------------

# Pieces a CoNLL-ish file is made of, so random files also reach the deep paths of the
# reader (columns, tags, -DOCSTART-, blank lines), not only the "not UTF-8" one.
PIECES = ["Paris", "is", "O", "B-LOC", "I-LOC", "E-PER", "S-ORG", "I-", "B-", "-DOCSTART-", "NNP", "é", "日本",
          " ", "  ", "\t", "\n", "\n\n", "\r\n", "\r", "\ufeff", "\x00", "\x0b", "\x1c", "\u2028", "\x85", "\xa0"]
conllish = st.lists(st.sampled_from(PIECES), max_size=40).map("".join)


def _check_read(raw: bytes, scheme: str, strict: bool) -> None:
    with scratch_file() as p:
        p.write_bytes(raw)
        try:
            sents = read_conll(p, scheme, strict=strict)
        except DataError as e:
            msg = str(e)
            assert "\n" not in msg and msg.startswith(str(p)), msg  # one line, naming the file
            return
    assert isinstance(sents, list) and sents
    for s in sents:
        assert isinstance(s, Sentence) and s.tokens and len(s.tokens) == len(s.tags)
        assert all(t and t.split() == [t] for t in s.tokens), s.tokens
        assert all(is_valid_tag(t) for t in s.tags)
        assert s.line >= 1


@FAST
@given(raw=st.binary(max_size=300), scheme=st.sampled_from(SCHEMES + ("auto",)), strict=st.booleans())
def test_reader_on_random_bytes_returns_sentences_or_raises_data_error(raw, scheme, strict):
    _check_read(raw, scheme, strict)


@FAST
@given(text=conllish, encoding=st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16"]),
       scheme=st.sampled_from(SCHEMES + ("auto",)), strict=st.booleans())
def test_reader_on_random_conll_like_text_returns_sentences_or_raises_data_error(text, encoding, scheme, strict):
    try:
        raw = text.encode(encoding)
    except UnicodeEncodeError:
        raw = text.encode("utf-8")
    _check_read(raw, scheme, strict)


@FAST
@given(text=st.text(max_size=200), scheme=st.sampled_from(SCHEMES + ("auto",)))
def test_reader_on_random_unicode_text_returns_sentences_or_raises_data_error(text, scheme):
    _check_read(text.encode("utf-8"), scheme, False)


# --- write -> read round-trips --------------------------------------------------------------

# A token is any non-empty text that str.split() keeps whole (no whitespace of any kind),
# except the document marker, NUL (the mark of a binary file) and a leading U+FEFF (a BOM).
token = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=6).filter(
    lambda t: t.split() == [t] and t != "-DOCSTART-" and "\x00" not in t and not t.startswith("\ufeff"))
tag = st.one_of(st.just("O"), st.builds(lambda p, t: f"{p}-{t}", st.sampled_from("BIES"), st.sampled_from(TYPES)))


@st.composite
def sentences(draw):
    out = []
    for _ in range(draw(st.integers(1, 5))):
        n = draw(st.integers(1, 6))
        out.append((tuple(draw(st.lists(token, min_size=n, max_size=n))),
                    tuple(draw(st.lists(tag, min_size=n, max_size=n)))))
    return out


@FAST
@given(sents=sentences())
def test_write_then_read_round_trips_exactly(sents):
    with scratch_file() as p:
        write_conll(p, [Sentence(tokens, tags) for tokens, tags in sents])
        back = read_conll(p, "bioes")  # bioes has every prefix, so every tag written is legal
    assert [(s.tokens, s.tags) for s in back] == sents
    # sentence k starts after the k earlier sentences and their blank lines
    lines = np.cumsum([0] + [len(t) + 1 for t, _ in sents])[:-1] + 1
    assert [s.line for s in back] == lines.tolist()
    assert all(s.doc == 0 for s in back)


@pytest.mark.parametrize("bad", ["", "New York", "a\tb", "-DOCSTART-", "x\u2028y", "a\x00", "\ufeffParis"])
def test_write_conll_refuses_a_token_it_could_not_read_back(tmp_path, bad):
    with pytest.raises(ValueError, match="token"):
        write_conll(tmp_path / "out.txt", [Sentence(("Paris", bad), ("B-LOC", "O"))])
    assert not (tmp_path / "out.txt").exists()


# --- windows ----------------------------------------------------------------------------------


@FAST
@given(lengths=st.lists(st.integers(0, 7), max_size=6), m=st.integers(0, 3))
def test_every_token_gets_exactly_one_window_centred_on_it(lengths, m):
    # distinct words, so a word id names exactly one token
    words = [f"w{i}" for i in range(sum(lengths))]
    vocab = Vocab([UNK, BOS, EOS, *words])
    sents, k = [], 0
    for n in lengths:
        sents.append(words[k:k + n])
        k += n
    w = make_windows(sents, vocab, m)
    assert w.ids.shape == (len(words), 2 * m + 1)
    # one window per token, in order, and its centre is that token
    assert [vocab.words[i] for i in w.ids[:, m]] == words
    for row, (s, i) in enumerate(zip(w.sentence, w.position)):
        assert sents[s][i] == words[row]
        # neighbours come from the same sentence, <s> / </s> past its edges
        expected = [BOS if j < 0 else EOS if j >= len(sents[s]) else sents[s][j] for j in range(i - m, i + m + 1)]
        assert [vocab.words[x] for x in w.ids[row]] == expected
        assert all((c == 0) == (e in (BOS, EOS)) for c, e in zip(w.casing[row], expected))


# --- entity decoding ----------------------------------------------------------------------------


def reference_spans(tags):
    """conlleval's chunk rules collapsed into one: a non-O token *continues* the entity of the
    token before it only when that token is B- or I- of the same type and this one is I- or E-;
    every other non-O token starts a new entity; O belongs to none."""
    spans, prev = [], ("O", None)
    for i, t in enumerate(tags):
        prefix, type_ = ("O", None) if t == "O" else (t[0], t[2:])
        if prefix == "O":
            pass
        elif prev[0] in "BI" and prev[1] == type_ and prefix in "IE":
            spans[-1][2] = i + 1
        else:
            spans.append([type_, i, i + 1])
        prev = (prefix, type_)
    return [tuple(s) for s in spans]


@st.composite
def scheme_and_tags(draw):
    scheme = draw(st.sampled_from(SCHEMES))
    tag = st.one_of(st.just("O"), st.builds(lambda p, t: f"{p}-{t}", st.sampled_from(PREFIXES[scheme]),
                                            st.sampled_from(TYPES[:2])))
    return scheme, draw(st.lists(tag, max_size=12))


@settings(max_examples=500, deadline=None)
@given(st_=scheme_and_tags())
def test_entity_spans_agrees_with_conlleval_rules_on_any_tag_sequence(st_):
    _, tags = st_
    assert entity_spans(tags) == reference_spans(tags)


def encode(spans, n, scheme):
    """Tags for non-overlapping sorted ``spans`` by the scheme's definition."""
    tags = ["O"] * n
    for type_, a, b in spans:
        if scheme == "bioes":
            tags[a:b] = [f"S-{type_}"] if b - a == 1 else [f"B-{type_}"] + [f"I-{type_}"] * (b - a - 2) + [f"E-{type_}"]
        elif scheme == "iob2":
            tags[a:b] = [f"B-{type_}"] + [f"I-{type_}"] * (b - a - 1)
        else:  # iob1 and io: I- throughout; iob1 marks a B- where an entity touches one of its type
            touches = a > 0 and tags[a - 1] != "O" and tags[a - 1][2:] == type_
            first = "B" if scheme == "iob1" and touches else "I"
            tags[a:b] = [f"{first}-{type_}"] + [f"I-{type_}"] * (b - a - 1)
    return tags


@st.composite
def scheme_and_entities(draw):
    scheme = draw(st.sampled_from(SCHEMES))
    spans, i = [], draw(st.integers(0, 2))
    for _ in range(draw(st.integers(0, 5))):
        length, type_ = draw(st.integers(1, 3)), draw(st.sampled_from(TYPES[:2]))
        # io cannot tell two touching entities of one type apart: keep them apart there
        if scheme == "io" and spans and spans[-1][2] == i and spans[-1][0] == type_:
            i += 1
        spans.append((type_, i, i + length))
        i += length + draw(st.integers(0, 2))
    return scheme, spans, i + draw(st.integers(0, 2))


@settings(max_examples=500, deadline=None)
@given(case=scheme_and_entities())
def test_entity_spans_decodes_what_each_scheme_encodes(case):
    scheme, spans, n = case
    assert entity_spans(encode(spans, n, scheme)) == spans


def test_reference_on_the_lecture_examples():
    # the reference itself, on cases checked by hand
    assert reference_spans(["I-LOC", "I-LOC", "B-LOC", "O", "I-PER"]) == [("LOC", 0, 2), ("LOC", 2, 3), ("PER", 4, 5)]
    assert reference_spans(["B-LOC", "E-LOC", "I-LOC", "S-PER", "E-PER"]) == [
        ("LOC", 0, 2), ("LOC", 2, 3), ("PER", 3, 4), ("PER", 4, 5)]
    assert encode([("LOC", 0, 2), ("LOC", 2, 3)], 4, "iob1") == ["I-LOC", "I-LOC", "B-LOC", "O"]
    assert encode([("LOC", 0, 3)], 3, "bioes") == ["B-LOC", "I-LOC", "E-LOC"]
