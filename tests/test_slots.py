"""Scoring by slot projections (slots.py): z = Σ_k T_k[token in slot k] + b.

A worked example by hand, then the whole bundled test set against the matrix-product path
(fast.predict_scores), then what the scorer promises: a token's score never depends on what
else is scored with it (batch, chunk, cache size), and the cache stays within its bound.
"""

import math

import numpy as np
import pytest

from ner_window.artifact import load_model
from ner_window.conll import read_conll
from ner_window.fast import predict_proba, predict_scores
from ner_window.model import Params, init_params
from ner_window.slots import SlotScorer
from ner_window.tagger import Tagger
from ner_window.vocab import BOS_ID, EOS_ID, SPECIALS, Vocab
from ner_window.windows import make_windows

from conftest import ROOT


def hand_model() -> Params:
    """V = 4 words (<unk>, <s>, </s>, "a"), d = 1, no casing vectors, radius 1 (w = 3), H = 1."""
    f = np.float64
    return Params(E=np.array([[0.0], [0.1], [-0.2], [0.3]], f), C=None, W=np.asfortranarray([[1.0, 2.0, 3.0]]),
                  b=np.array([0.05]), u=np.array([2.0]), c=np.array(0.1))


def test_a_window_by_hand():
    """The line "a": its window is (<s>, a, </s>), so z = W_0 e(<s>) + W_1 e(a) + W_2 e(</s>) + b
    = 1(0.1) + 2(0.3) + 3(-0.2) + 0.05 = 0.15, and s = u tanh(z) + c = 2 tanh(0.15) + 0.1."""
    scorer = SlotScorer(hand_model(), "tanh")
    s = scorer.scores_lines(np.array([3]), None, np.array([1]))
    assert s[0] == pytest.approx(2 * math.tanh(0.15) + 0.1, abs=1e-12)  # 0.3977700...
    # the rows it computed: T[a] = (W_0 e(a), W_1 e(a) + b, W_2 e(a)) = (0.3, 0.6 + 0.05, 0.9)
    np.testing.assert_allclose(scorer.T[scorer.row_of[3]][:, 0], [0.3, 0.65, 0.9], atol=1e-12)
    np.testing.assert_allclose(scorer.T[scorer.row_of[BOS_ID]][:, 0], [0.1, 0.25, 0.3], atol=1e-12)
    np.testing.assert_allclose(scorer.T[scorer.row_of[EOS_ID]][:, 0], [-0.2, -0.35, -0.6], atol=1e-12)
    # the line "a a": windows (<s>, a, a) and (a, a, </s>): z = 0.1 + 0.65 + 0.9 = 1.65 and 0.3 + 0.65 - 0.6 = 0.35
    s2 = scorer.scores_lines(np.array([3, 3]), None, np.array([2]))
    np.testing.assert_allclose(s2, [2 * math.tanh(1.65) + 0.1, 2 * math.tanh(0.35) + 0.1], atol=1e-12)


def test_a_sentence_computes_only_its_own_rows():
    params = init_params(50_000, 8, 2, 16, n_casing=8, d_c=3, rng=np.random.default_rng(0))
    scorer = SlotScorer(params, "tanh")
    ids = np.array([7, 8, 9, 7, 10])
    scorer.scores_lines(ids, np.array([1, 1, 2, 1, 1]), np.array([5]))
    # token types: (7, 1), (8, 1), (9, 2), (10, 1), and <s>, </s> with the pad casing: 6 rows, not 50,000 x 8
    assert scorer.n_rows == 6


@pytest.fixture(scope="module")
def test_set_windows(base_run):
    model = load_model(base_run)
    sentences = read_conll(ROOT / "data" / "test.txt", scheme="iob2")
    windows = make_windows([s.tokens for s in sentences], model.vocab, model.radius)
    return model, windows, np.array([len(s.tokens) for s in sentences])


def test_equal_to_the_matrix_product_on_the_whole_test_set(test_set_windows):
    model, w, lengths = test_set_windows
    reference = predict_scores(model.params, w.ids, w.casing, model.activation)
    scorer = SlotScorer(model.params, model.activation)
    s = scorer.scores_windows(w.ids, w.casing)
    assert len(s) == len(w) > 3000
    # float32: the same sums of the same products in another order; s is O(10), so ~1e-6 is rounding
    assert np.abs(s - reference).max() <= 2e-5 * max(1.0, np.abs(reference).max()) / 10
    p, p_ref = scorer.probabilities(s), predict_proba(model.params, w.ids, w.casing, model.activation)
    assert np.abs(p - p_ref).max() < 5e-6  # dp/ds = p(1 - p) <= 1/4
    m = model.radius
    np.testing.assert_array_equal(scorer.scores_lines(w.ids[:, m], w.casing[:, m], lengths), s)


def test_tagger_labels_equal_the_matrix_products_labels(test_set_windows, base_run):
    model, w, _ = test_set_windows
    tagger = Tagger.load(base_run)
    p_ref = predict_proba(model.params, w.ids, w.casing, model.activation)
    p = tagger.scorer.probabilities(tagger.scorer.scores_windows(w.ids, w.casing))
    near = np.abs(p_ref - tagger.threshold) < 1e-6  # a label may flip only this close to the threshold
    assert ((p >= tagger.threshold) == (p_ref >= tagger.threshold))[~near].all()


@pytest.mark.parametrize("casing, n_classes, activation", [(True, 1, "tanh"), (False, 1, "relu"),
                                                           (True, 5, "sigmoid")])
def test_a_windows_score_does_not_depend_on_its_batch(casing, n_classes, activation):
    """Bit for bit: any subset, any order, any cache size (rows computed per row, no BLAS)."""
    rng = np.random.default_rng(1)
    params = init_params(400, 8, 2, 16, n_casing=8 if casing else 0, d_c=3 if casing else 0,
                         n_classes=n_classes, rng=rng)
    ids = rng.integers(0, 400, size=(3000, 5))
    cas = rng.integers(0, 8, size=(3000, 5)) if casing else None
    whole = SlotScorer(params, activation).scores_windows(ids, cas)
    np.testing.assert_allclose(whole, predict_scores(params, ids, cas, activation), atol=1e-5)
    small = SlotScorer(params, activation, cache_bytes=1)  # 64 rows: emptied again and again
    for _ in range(5):
        pick = rng.permutation(3000)[: rng.integers(1, 3000)]
        got = small.scores_windows(ids[pick], None if cas is None else cas[pick])
        np.testing.assert_array_equal(got, whole[pick])
    assert small.refills > 0 and small.n_rows <= small.capacity == 64
    np.testing.assert_array_equal(SlotScorer(params, activation, threads=3).scores_windows(ids, cas), whole)


def test_lines_score_the_same_in_any_grouping():
    rng = np.random.default_rng(2)
    params = init_params(300, 6, 2, 10, n_casing=8, d_c=3, rng=rng)
    vocab = Vocab([*SPECIALS, *(f"w{i}" for i in range(297))])
    sentences = [[f"w{j}" if j % 3 else f"W{j}" for j in rng.integers(0, 297, rng.integers(0, 15))] for _ in range(400)]
    w = make_windows(sentences, vocab, 2)
    lengths = np.array([len(s) for s in sentences])
    scorer = SlotScorer(params, "tanh")
    whole = scorer.scores_lines(w.ids[:, 2], w.casing[:, 2], lengths)
    np.testing.assert_array_equal(whole, SlotScorer(params, "tanh").scores_windows(w.ids, w.casing))
    ends = np.cumsum(lengths)
    for cut in (1, 57, 200, 399):  # the lines in two groups, each scored on its own
        a, b = int(ends[cut - 1]), cut
        first = scorer.scores_lines(w.ids[:a, 2], w.casing[:a, 2], lengths[:b])
        second = SlotScorer(params, "tanh", cache_bytes=1).scores_lines(w.ids[a:, 2], w.casing[a:, 2], lengths[b:])
        np.testing.assert_array_equal(np.concatenate([first, second]), whole)
    for i in range(60):  # each line alone (the one-line path: its padded rows, a slice per window)
        a, b = int(ends[i] - lengths[i]), int(ends[i])
        np.testing.assert_array_equal(scorer.scores_lines(w.ids[a:b, 2], w.casing[a:b, 2], lengths[i:i + 1]),
                                      whole[a:b])
    # one long line, scored in pieces of 58 tokens by a 64-row cache: the pieces' edges see their neighbours
    long = [t for s in sentences for t in s][:700]
    lw = make_windows([long], vocab, 2)
    small = SlotScorer(params, "tanh", cache_bytes=1)
    np.testing.assert_array_equal(small.scores_lines(lw.ids[:, 2], lw.casing[:, 2], np.array([len(long)])),
                                  SlotScorer(params, "tanh").scores_windows(lw.ids, lw.casing))


def test_the_cache_holds_at_most_cache_bytes():
    params = init_params(5000, 8, 2, 16, n_casing=8, d_c=3, rng=np.random.default_rng(3))
    row_bytes = 5 * 16 * 4  # w · H · float32
    scorer = SlotScorer(params, "tanh", cache_bytes=200 * row_bytes)
    assert scorer.capacity == 200
    rng = np.random.default_rng(4)
    for _ in range(20):
        ids = rng.integers(0, 5000, 300)
        scorer.scores_lines(ids, rng.integers(0, 8, 300), np.array([300]))
        assert scorer.n_rows <= 200
    assert scorer.refills >= 15
    assert scorer.T.nbytes == 200 * row_bytes


def test_an_ensembles_block_diagonal_w_is_projected_block_by_block():
    """ensemble.merge's W is block diagonal: the scorer finds the K blocks and leaves the zeros out,
    with the same rows as the dense projection (to float32 rounding), and scores the members' mean."""
    from ner_window.ensemble import merge
    from ner_window.slots import independent_blocks

    rng = np.random.default_rng(5)
    members = [init_params(300, 6, 2, 10, n_casing=8, d_c=3, rng=rng) for _ in range(3)]
    merged = merge(members)
    scorer = SlotScorer(merged, "tanh")
    assert [(len(h), len(x)) for h, x, _ in scorer.blocks] == [(10, 9)] * 3  # 10 units reading d + d_c = 9 each
    assert len(independent_blocks(np.ones((4, 5, 7)))) == 1  # a dense W is one block
    assert SlotScorer(members[0], "tanh").blocks == []  # one network: the plain slot matrix, no copy of it
    types = np.arange(0, 300 * 8, 7)
    blocked = scorer._project(types)
    scorer.blocks = []  # the dense product over all K·(d + d_c) columns
    np.testing.assert_allclose(blocked, scorer._project(types), rtol=0, atol=1e-6)  # BLAS adds in its own order
    ids, cas = rng.integers(0, 300, size=(2000, 5)), rng.integers(0, 8, size=(2000, 5))
    s = SlotScorer(merged, "tanh").scores_windows(ids, cas)
    mean = np.mean([SlotScorer(p, "tanh").scores_windows(ids, cas) for p in members], axis=0)
    np.testing.assert_allclose(s, mean, atol=1e-5)
    np.testing.assert_allclose(s, predict_scores(merged, ids, cas, "tanh"), atol=1e-5)


def test_a_full_cache_keeps_its_most_used_rows():
    """Running text is Zipfian: when the cache is full, the rows read most stay and the rare ones go."""
    params = init_params(5000, 8, 2, 16, n_casing=8, d_c=3, rng=np.random.default_rng(6))
    scorer = SlotScorer(params, "tanh", cache_bytes=1)  # 64 rows
    rng = np.random.default_rng(7)
    for _ in range(30):
        ids = np.concatenate([np.full(40, 11), rng.integers(100, 5000, 40)])  # word 11 in every line
        scorer.scores_lines(ids, np.ones(80, np.int64), np.array([80]))
    assert scorer.refills >= 10 and scorer.n_rows <= 64
    assert scorer.row_of[scorer.type_ids(np.array([11]), np.array([1]))][0] >= 0  # still cached


def _rss_kb_of_mapping(address: int) -> int:
    """Rss of the mapping that holds ``address``, from /proc/self/smaps (kB)."""
    with open("/proc/self/smaps") as f:
        inside = False
        for line in f:
            head = line.split()[0]
            if "-" in head and not head.endswith(":"):
                lo, hi = (int(x, 16) for x in head.split("-"))
                inside = lo <= address < hi
            elif inside and head == "Rss:":
                return int(line.split()[1])
    raise AssertionError("no mapping holds the address")


def test_a_mapped_e_gives_back_its_pages_and_the_same_scores(tmp_path, monkeypatch):
    """params.npz's E is mapped read-only (artifact.read_npz); once a batch's rows are in T its pages
    leave the process (the merged default model's 68 MB E would otherwise stay ~50 MB of its memory),
    and rows computed again after the cache is emptied read the same numbers from the file."""
    import ner_window.slots as slots
    from ner_window.artifact import MAP_BYTES, read_npz

    monkeypatch.setattr(slots, "DROP_ROWS", 1)  # after every piece of rows (256 rows of a real E: ~16 MB)
    params = init_params(30000, 50, 2, 8, n_casing=8, d_c=3, rng=np.random.default_rng(8))
    assert params.E.nbytes >= MAP_BYTES  # 6 MB: mapped, as a real model's E
    np.savez(tmp_path / "params.npz", **params.to_dict())
    mapped = Params.from_dict(read_npz(tmp_path / "params.npz"))
    assert not mapped.E.flags.writeable
    rng = np.random.default_rng(9)
    ids, cas = rng.integers(0, 30000, 20000), rng.integers(0, 8, 20000)
    lengths = np.full(100, 200)
    cache = 3000 * 5 * 8 * 4  # 3,000 rows: refilled many times over 20,000 tokens of 30,000 words
    in_memory, from_file = SlotScorer(params, "tanh", cache_bytes=cache), SlotScorer(mapped, "tanh", cache_bytes=cache)
    want = in_memory.scores_lines(ids, cas, lengths)
    got = from_file.scores_lines(ids, cas, lengths)
    assert from_file.refills >= 3
    np.testing.assert_array_equal(got, want)
    address = mapped.E.__array_interface__["data"][0]
    assert _rss_kb_of_mapping(address) == 0  # the rows were read, then the pages given back
    mapped.E[::100].sum()  # a reader still sees every row
    assert _rss_kb_of_mapping(address) > 0
    assert in_memory._pages is None  # an array in memory is left alone
