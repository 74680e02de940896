"""Windows: one per token, padded with <s> / </s> at sentence edges, labels from decoded spans."""

import numpy as np
import pytest

from ner_window.conll import Sentence
from ner_window.vocab import BOS, EOS, UNK, Vocab
from ner_window.windows import CASING_CLASSES, casing_class, labelled_data, make_windows

VOCAB = Vocab([UNK, BOS, EOS, "museums", "in", "paris", "are", "amazing", "rome"])
S, E_, U = 1, 2, 0  # <s>, </s>, <unk> ids


def words(vocab, ids):
    return [vocab.words[i] for i in ids]


def test_radius_2_worked_example():
    w = make_windows([["museums", "in", "Paris", "are", "amazing"]], VOCAB, radius=2)
    assert w.ids.shape == (5, 5) and w.ids.dtype == np.int32
    assert words(VOCAB, w.ids[0]) == [BOS, BOS, "museums", "in", "paris"]
    assert words(VOCAB, w.ids[2]) == ["museums", "in", "paris", "are", "amazing"]
    assert words(VOCAB, w.ids[4]) == ["paris", "are", "amazing", EOS, EOS]


@pytest.mark.parametrize("m", [0, 1, 2])
def test_every_token_gets_one_window_centred_on_it(m):
    sents = [["Paris", "in", "Rome"], ["amazing"], ["are", "museums"]]
    w = make_windows(sents, VOCAB, radius=m)
    flat = [t for s in sents for t in s]
    assert w.ids.shape == (len(flat), 2 * m + 1)
    assert list(w.ids[:, m]) == [VOCAB.lookup(t) for t in flat]
    assert list(w.sentence) == [0, 0, 0, 1, 2, 2] and list(w.position) == [0, 1, 2, 0, 0, 1]


def test_sentence_shorter_than_the_window_and_no_leak_across_sentences():
    w = make_windows([["Rome"], ["in", "Paris"]], VOCAB, radius=2)
    assert words(VOCAB, w.ids[0]) == [BOS, BOS, "rome", EOS, EOS]
    assert words(VOCAB, w.ids[1]) == [BOS, BOS, "in", "paris", EOS]
    assert list(w.casing[0]) == [0, 0, casing_class("Rome"), 0, 0]  # pads have casing class 0


def test_unknown_word_maps_to_unk():
    w = make_windows([["Zanzibar"]], VOCAB, radius=0)
    assert w.ids[0, 0] == U


def test_empty_corpus():
    w = make_windows([], VOCAB, radius=2)
    assert w.ids.shape == (0, 5) and len(w) == 0


@pytest.mark.parametrize("token, cls", [
    ("paris", "lower"), ("Paris", "title"), ("PARIS", "upper"), ("McDonald", "mixed"), ("iPhone", "mixed"),
    ("1996-08-22", "digit"), ("3-1", "digit"), (",", "punct"), ("--", "punct"), ("A", "title"),
    ("U.S.", "upper"), ("北京", "other"), ("O'Neill", "title"),
])
def test_casing_classes(token, cls):
    assert CASING_CLASSES[casing_class(token)] == cls


def test_labels_from_decoded_spans_binary_and_multiclass():
    sent = Sentence(("Paris", "Hilton", "visited", "New", "York"), ("I-PER", "I-PER", "O", "I-LOC", "I-LOC"))
    binary = labelled_data([sent], VOCAB, 1, ["O", "LOC"], ["LOC"])
    assert list(binary.windows.y) == [0, 0, 0, 1, 1]
    assert binary.spans == [[("PER", 0, 2), ("LOC", 3, 5)]]
    multi = labelled_data([sent], VOCAB, 1, ["O", "LOC", "PER"], ["LOC"])
    assert list(multi.windows.y) == [2, 2, 0, 1, 1]


def test_location_types_mapping():
    sent = Sentence(("Texas", "and", "JFK"), ("B-GPE", "O", "B-FAC"))
    d = labelled_data([sent], VOCAB, 1, ["O", "LOC"], ["GPE", "LOC", "FAC"])
    assert list(d.windows.y) == [1, 0, 1]


def test_to_frame_for_inspection():
    w = make_windows([["museums", "in", "Paris"]], VOCAB, radius=1, labels=[[0, 0, 1]])
    df = w.to_frame(VOCAB)
    assert list(df.columns) == ["w-1", "w0", "w+1", "casing", "label", "sentence", "position"]
    assert df.loc[2, "w0"] == "paris" and df.loc[2, "w+1"] == EOS and df.loc[2, "casing"] == "title"
    assert df["label"].tolist() == [0, 0, 1]


def test_known_tokens_start_a_new_dictionary_past_the_bound(monkeypatch):
    """token_ids fills the caller's dictionary; past MAX_KNOWN entries current() hands out a new one
    and leaves the old one whole (a thread still using it is not disturbed)."""
    from ner_window import windows
    monkeypatch.setattr(windows, "MAX_KNOWN", 2)
    vocab = VOCAB  # "and" is not in it: <unk>
    known = windows.KnownTokens()
    first = known.current()
    ids, casing = windows.token_ids(["in", "Paris", "and", "Rome"], np.array([4]), vocab, None, first)
    assert len(first) == 4 and known.current() is not first and known.current() == {}
    assert first == {t: int(i) * len(CASING_CLASSES) + casing_class(t)
                     for t, i in zip(["in", "Paris", "and", "Rome"], ids)}
    assert list(ids) == [vocab.lookup(t) for t in ["in", "Paris", "and", "Rome"]]
