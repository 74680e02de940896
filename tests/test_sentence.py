"""The sentence-level output layer (sentence.py), checked the way model.py's tests check the window model.

First a worked example small enough to redo by hand (two tags, two tokens: the four paths written
out), then the recursions against brute-force enumeration of every path, the gradients against
centred differences, the IOB2 constraint, log space on long sentences, and the batched / compiled
versions against the reference.
"""

import itertools
import math

import numpy as np
import pytest

from ner_window import sentence as sn
from ner_window.gradcheck import numerical_gradient, relative_error


def brute_force(S, A):
    """Every tag path of S (n, T) with its score written out as the sum of its terms (no sentence.py)."""
    n, T = S.shape
    scores = {}
    for y in itertools.product(range(T), repeat=n):
        total = A[T, y[0]] + S[0, y[0]]
        for k in range(1, n):
            total += A[y[k - 1], y[k]] + S[k, y[k]]
        scores[y] = float(total)
    log_Z = math.log(sum(math.exp(v) for v in scores.values()))
    P = np.zeros((n, T))
    pairs = np.zeros((T + 1, T))
    for y, v in scores.items():
        prob = math.exp(v - log_Z)
        pairs[T, y[0]] += prob
        for k in range(n):
            P[k, y[k]] += prob
            if k:
                pairs[y[k - 1], y[k]] += prob
    return scores, log_Z, P, pairs


def random_transitions(T, rng):
    A = sn.init_transitions(T, np.float64)
    allowed = np.isfinite(A)
    A[allowed] = rng.normal(size=allowed.sum())
    return A


# --- the worked example: 2 tags, 2 tokens, 4 paths ---------------------------------------------

# A[i, j]: tag i then tag j; row 2 is the start.  S[k, t]: the score of tag t at token k.
A2 = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 0.0]])
S2 = np.array([[1.0, 0.0], [0.0, 1.0]])
# score(y0, y1) = A[start, y0] + S[0, y0] + A[y0, y1] + S[1, y1]:
#   (0, 0): 0 + 1 + 0 + 0 = 1     (0, 1): 0 + 1 + 1 + 1 = 3
#   (1, 0): 0 + 0 + 1 + 0 = 1     (1, 1): 0 + 0 + 0 + 1 = 1
# so Z = 3e + e³, log Z = 1 + log(3 + e²) ≈ 3.34075, and for the gold path (0, 1):
# J = log Z − 3 = log(1 + 3/e²) ≈ 0.34075.
E, E3 = math.e, math.e ** 3
Z = 3 * E + E3


def test_worked_example_score_partition_and_loss():
    assert sn.path_score(S2, A2, np.array([0, 1])) == 3.0
    assert sn.path_score(S2, A2, np.array([1, 1])) == 1.0
    alpha = sn.log_alpha(S2, A2)
    # α_0 = A[start] + S[0] = (1, 0); α_1(j) = S[1, j] + log Σ_i exp(α_0(i) + A[i, j])
    np.testing.assert_allclose(alpha[0], [1.0, 0.0])
    np.testing.assert_allclose(alpha[1], [math.log(E + E), 1.0 + math.log(E * E + 1.0)])
    assert sn.log_partition(alpha) == pytest.approx(math.log(Z)) == pytest.approx(3.34075, abs=1e-5)
    J, dS, dA = sn.sll(S2, A2, np.array([0, 1]))
    assert J == pytest.approx(math.log(1 + 3 / E ** 2)) == pytest.approx(0.34075, abs=1e-5)


def test_worked_example_marginals_and_gradients():
    alpha, beta = sn.log_alpha(S2, A2), sn.log_beta(S2, A2)
    P, pairs = sn.marginals(S2, A2, alpha, beta, sn.log_partition(alpha))
    # P(y0 = 0): paths (0,0), (0,1): (e + e³)/Z;  P(y1 = 1): paths (0,1), (1,1): (e³ + e)/Z
    np.testing.assert_allclose(P, [[(E + E3) / Z, 2 * E / Z], [2 * E / Z, (E3 + E) / Z]])
    # pairs: (0→0) e/Z, (0→1) e³/Z, (1→0) e/Z, (1→1) e/Z; start row = P(y0)
    np.testing.assert_allclose(pairs, [[E / Z, E3 / Z], [E / Z, E / Z], [(E + E3) / Z, 2 * E / Z]])
    _, dS, dA = sn.sll(S2, A2, np.array([0, 1]))
    # ∂J/∂S = P − Y: the gold path puts tag 0 at token 0 and tag 1 at token 1
    np.testing.assert_allclose(dS, [[(E + E3) / Z - 1, 2 * E / Z], [2 * E / Z, (E3 + E) / Z - 1]])
    assert dS[0, 0] == pytest.approx(-2 / (3 + E ** 2)) == pytest.approx(-0.19251, abs=1e-5)
    # ∂J/∂A = expected pair counts − gold counts: the gold path has start→0 and 0→1 once each
    np.testing.assert_allclose(dA, [[E / Z, E3 / Z - 1], [E / Z, E / Z], [(E + E3) / Z - 1, 2 * E / Z]])
    np.testing.assert_allclose(dS.sum(axis=1), 0.0, atol=1e-15)  # each row of P − Y sums to 0


def test_worked_example_viterbi_is_the_best_of_the_four_paths():
    path, score = sn.viterbi(S2, A2)
    assert path.tolist() == [0, 1] and score == 3.0


# --- against every path ------------------------------------------------------------------------


@pytest.mark.parametrize("T", [3, 5])
@pytest.mark.parametrize("n", [1, 2, 4])
def test_recursions_and_viterbi_match_brute_force_enumeration(T, n):
    rng = np.random.default_rng(10 * T + n)
    A, S = random_transitions(T, rng), rng.normal(size=(n, T)) * 2
    scores, log_Z, P_bf, pairs_bf = brute_force(S, A)
    alpha, beta = sn.log_alpha(S, A), sn.log_beta(S, A)
    assert sn.log_partition(alpha) == pytest.approx(log_Z, rel=1e-12)
    P, pairs = sn.marginals(S, A, alpha, beta, sn.log_partition(alpha))
    np.testing.assert_allclose(P, P_bf, atol=1e-12)
    np.testing.assert_allclose(pairs, pairs_bf, atol=1e-12)
    best = max(scores, key=scores.get)
    path, score = sn.viterbi(S, A)
    assert tuple(path) == best and score == pytest.approx(scores[best])
    y = np.array(best)
    J, _, _ = sn.sll(S, A, y)
    assert J == pytest.approx(log_Z - scores[best], rel=1e-10)


@pytest.mark.parametrize("n", [1, 2, 7])
def test_sll_gradients_against_centred_differences(n):
    rng = np.random.default_rng(n)
    T = 5
    A, S = random_transitions(T, rng), rng.normal(size=(n, T))
    y, _ = sn.viterbi(rng.normal(size=(n, T)), A)  # some valid IOB2 path
    J, dS, dA = sn.sll(S, A, y)
    numeric_S = numerical_gradient(lambda: sn.sll(S, A, y)[0], S, list(np.ndindex(S.shape)))
    assert relative_error(dS, numeric_S).max() < 1e-8
    allowed = [ix for ix in np.ndindex(A.shape) if np.isfinite(A[ix])]
    numeric_A = numerical_gradient(lambda: sn.sll(S, A, y)[0], A, allowed)
    mask = np.isfinite(A)
    assert relative_error(dA, numeric_A)[mask].max() < 1e-8
    assert (dA[~mask] == 0).all()  # a forbidden pair: no probability, no gold count, no gradient


# --- tags and the IOB2 constraint ---------------------------------------------------------------


def test_tag_sets_and_their_ids():
    assert sn.tag_set(["O", "LOC"]) == ["O", "B-LOC", "I-LOC"]
    assert sn.tag_set(["O", "LOC", "MISC", "ORG", "PER"]) == ["O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG",
                                                              "I-ORG", "B-PER", "I-PER"]
    assert sn.n_tags(5) == 9
    assert sn.class_of(np.arange(9)).tolist() == [0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert sn.begins(np.arange(5)).tolist() == [False, True, False, True, False]


def test_allowed_transitions_are_iob2s():
    ok = sn.allowed_transitions(3)  # rows O, B-LOC, I-LOC, start; columns O, B-LOC, I-LOC
    assert ok.tolist() == [[True, True, False],
                           [True, True, True],
                           [True, True, True],
                           [True, True, False]]
    ok5 = sn.allowed_transitions(5)  # O, B-LOC, I-LOC, B-PER, I-PER
    assert [i for i in range(6) if ok5[i, 4]] == [3, 4]  # I-PER only after B-PER or I-PER
    assert [i for i in range(6) if ok5[i, 2]] == [1, 2]


def test_gold_tags_come_from_the_decoded_spans():
    # "New York" and "Paris" adjacent (IOB1 B-LOC), a PER the binary tag set does not have
    spans = [[("LOC", 0, 2), ("LOC", 2, 3), ("PER", 4, 5)], [], [("LOC", 1, 2)]]
    tags = sn.iob2_tag_ids(spans, [5, 2, 2], ["O", "LOC"])
    assert tags.tolist() == [1, 2, 1, 0, 0, 0, 0, 0, 1]
    tags = sn.iob2_tag_ids(spans, [5, 2, 2], ["O", "LOC", "PER"])
    assert tags.tolist() == [1, 2, 1, 0, 3, 0, 0, 0, 1]
    assert sn.tag_spans(tags[:5], sn.tag_set(["O", "LOC", "PER"])) == spans[0]
    assert sn.decoded_spans(tags, sn.starts_of([5, 2, 2]), ["O", "LOC", "PER"]) == spans


def test_viterbi_never_puts_i_after_o_however_strong_its_score():
    A = sn.init_transitions(3, np.float64)
    # I-LOC scores highest at every token; I-LOC may not start a sentence or follow O
    S = np.array([[0.0, 1.0, 9.0], [5.0, 0.0, 9.0], [0.0, 0.0, 9.0]])
    path, _ = sn.viterbi(S, A)
    assert path.tolist() == [1, 2, 2]  # the best valid path starts the entity with B-LOC
    P, _ = sn.marginals(S, A, sn.log_alpha(S, A), sn.log_beta(S, A), sn.log_partition(sn.log_alpha(S, A)))
    assert P[0, 2] == 0.0  # no path begins with I-LOC


def test_long_sentences_with_large_scores_stay_finite_in_log_space():
    rng = np.random.default_rng(0)
    S = rng.normal(size=(500, 3)) * 50 + 200  # exp(score of a path) would be exp(10⁵)
    A = random_transitions(3, rng) * 30
    alpha, beta = sn.log_alpha(S, A), sn.log_beta(S, A)
    log_Z = sn.log_partition(alpha)
    assert np.isfinite(log_Z) and log_Z > 1e5
    P, pairs = sn.marginals(S, A, alpha, beta, log_Z)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-9)
    assert pairs.sum() == pytest.approx(500.0)


# --- the batched and compiled versions against the reference ----------------------------------


def batch_case(T=3, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    lengths = [3, 1, 0, 7, 2, 12, 1]  # an empty sentence too
    starts = sn.starts_of(lengths)
    A = random_transitions(T, rng).astype(dtype)
    S = (rng.normal(size=(starts[-1], T)) * 3).astype(dtype)
    y = np.concatenate([sn.viterbi(rng.normal(size=(n, T)), A)[0] for n in lengths if n])
    return S, A, y, starts


@pytest.mark.parametrize("T", [3, 9])
def test_batched_recursions_equal_the_reference_sentence_by_sentence(T):
    S, A, y, starts = batch_case(T)
    J, delta_s, dA = sn.loss_and_delta_s(S, A, y, starts)
    J_b, delta_s_b, dA_b = sn.sll_batch(S, A, y, starts)
    assert J_b == pytest.approx(J, rel=1e-12)
    np.testing.assert_allclose(delta_s_b, delta_s, atol=1e-14)
    np.testing.assert_allclose(dA_b, dA, atol=1e-14)
    paths = [sn.viterbi(S[a:b], A)[0] for a, b in zip(starts[:-1], starts[1:]) if b > a]
    assert sn.viterbi_batch(S, A, starts).tolist() == np.concatenate(paths).tolist()
    P = [sn.marginals(S[a:b], A, sn.log_alpha(S[a:b], A), sn.log_beta(S[a:b], A),
                      sn.log_partition(sn.log_alpha(S[a:b], A)))[0] for a, b in zip(starts[:-1], starts[1:]) if b > a]
    np.testing.assert_allclose(sn.marginals_batch(S, A, starts), np.concatenate(P), atol=1e-14)


def test_the_batch_loss_is_a_mean_per_token():
    S, A, y, starts = batch_case()
    total = sum(sn.sll(S[a:b], A, y[a:b])[0] for a, b in zip(starts[:-1], starts[1:]) if b > a)
    assert sn.loss_and_delta_s(S, A, y, starts)[0] == pytest.approx(total / len(y))


def test_decode_gives_the_path_its_classes_and_the_class_marginals():
    S, A, _, starts = batch_case(T=5)
    decoded = sn.decode(S, A, starts)
    assert decoded.classes.tolist() == ((decoded.tags + 1) // 2).tolist()
    P = sn.marginals_batch(S, A, starts)
    np.testing.assert_allclose(decoded.p[:, 1], P[:, 1] + P[:, 2])  # P(LOC) = P(B-LOC) + P(I-LOC)
    np.testing.assert_allclose(decoded.p.sum(axis=1), 1.0)


def test_the_compiled_kernel_equals_the_numpy_batch():
    from ner_window import kernels

    if kernels.njit is None:
        pytest.skip("numba is not installed (the 'fast' extra; make installs it)")
    for T in (3, 9):
        S, A, y, starts = batch_case(T, seed=T, dtype=np.float32)
        J, delta_s, dA = sn.sll_batch(S.astype(np.float64), A.astype(np.float64), y, starts)
        dS_k, dA_k = np.empty_like(S), np.empty_like(A)
        scale = -0.1 / len(y)  # −lr / N: the kernel writes the SGD steps
        J_k = kernels.sll_batch(S, A, y.astype(np.int64), starts, scale, dS_k, dA_k)
        assert J_k == pytest.approx(J, rel=1e-6)
        np.testing.assert_allclose(dS_k, -0.1 * delta_s, atol=1e-7)
        np.testing.assert_allclose(dA_k[np.isfinite(A)], -0.1 * dA[np.isfinite(A)], atol=1e-7)
        assert (dA_k[~np.isfinite(A)] == 0).all()


def test_the_batched_functions_take_a_batch_without_tokens():
    A, S = sn.init_transitions(3, np.float64), np.zeros((0, 3))
    starts = sn.starts_of([0, 0])
    assert sn.viterbi_batch(S, A, starts).shape == (0,)
    assert sn.marginals_batch(S, A, starts).shape == (0, 3)
    J, delta_s, dA = sn.sll_batch(S, A, np.zeros(0, np.intp), starts)
    assert J == 0.0 and delta_s.shape == (0, 3) and not dA.any()
