"""Sentence-level training and Viterbi decoding (Collobert et al. 2011, "sentence-level log-likelihood").

The window network of model.py scores every tag t of an IOB2 tag set for each token k of a
sentence; a transition matrix A scores tag pairs; the score of a whole tag path is the sum of
both, and the model is trained to give the gold path a high probability against every other
path.  This module is the reference path of that output layer, in plain numpy, per sentence:
each equation below is one line of code.  Below it, the same maths vectorised over the
sentences of a batch (the ``*_batch`` functions, used for tagging and by fast.py's numpy
path; kernels.sll_batch is the compiled twin), tested against the reference.

Shapes: n tokens in a sentence, T tags, N tokens in a batch of sentences (B sentences laid end
to end, sentence s at rows starts[s]:starts[s+1]).

Tags.  tag_set(classes): "O", then "B-c", "I-c" for each entity class c of model's classes
(binary: O, B-LOC, I-LOC; multiclass: O plus B-/I- of each type).  Tag 2c-1 is B-c and tag 2c
is I-c for class index c >= 1, so class_of(t) = (t + 1) // 2 and a tag begins an entity iff it
is odd.

The model, for one sentence
---------------------------
    S = h Uᵀ + c        (n, T)     S[k, t] = f(t | k): model.forward with u = U (T, H), c (T,)
    A                   (T+1, T)   A[i, j]: tag i followed by tag j; row T: the start, A[start, j]
    score(y) = Σ_k (A[y_{k-1}, y_k] + S[k, y_k]),   y_{-1} = start       path_score()
    log Z = logadd over all Tⁿ paths y' of score(y')                     log_partition()
    J = −log p(y | sentence) = log Z − score(y)                          sll()

Backward, step by step (shape convention: a gradient has its parameter's shape)
------------------------------------------------------------------------------
Step 1, the forward recursion (log α).  α_k(j) is log Σ exp(score of the prefix y_0..y_k)
    over the prefixes that end in tag j.  A prefix's score is the score of its own prefix plus
    A[y_{k-1}, j] + S[k, j], so the sum over Tᵏ prefixes factors through the T values of the
    previous tag (+ distributes over logadd): n T² work instead of Tⁿ.          log_alpha()
        α_0(j) = A[start, j] + S[0, j]
        α_k(j) = S[k, j] + logadd_i (α_{k-1}(i) + A[i, j])
        log Z  = logadd_j α_{n-1}(j)                                             log_partition()
Step 2, the backward recursion (log β).  β_k(i) is log Σ exp(score of the rest, y_{k+1}..y_{n-1})
    over the continuations of a path that has tag i at k.                        log_beta()
        β_{n-1}(i) = 0
        β_k(i) = logadd_j (A[i, j] + S[k+1, j] + β_{k+1}(j))
Step 3, marginals.  A path through tag j at k is a prefix ending in j and a continuation from
    j, so α_k(j) + β_k(j) is the logadd of the scores of every path with y_k = j:   marginals()
        P(y_k = j | sentence)              = exp(α_k(j) + β_k(j) − log Z)
        P(y_{k-1} = i, y_k = j | sentence) = exp(α_{k-1}(i) + A[i, j] + S[k, j] + β_k(j) − log Z)
    and the pair (start, j) at k = 0 has probability P(y_0 = j).
Step 4, J -> S and A.  ∂ log Z / ∂θ = Σ_y' exp(score(y') − log Z) ∂score(y')/∂θ = E_p[∂score/∂θ]
    (the derivative of log Σ exp is the softmax, here over paths), and score is linear:
    ∂score(y)/∂S[k, t] = [y_k = t] and ∂score(y)/∂A[i, j] = #{k : y_{k-1} = i, y_k = j}.  So sll():
        ∂J/∂S[k, t] = P(y_k = t | sentence) − [y_k = t]                              (n, T)
        ∂J/∂A[i, j] = Σ_k P(y_{k-1} = i, y_k = j | sentence) − #{k : y_{k-1} = i, y_k = j}   (T+1, T)
    -- model.py's softmax δs = p − y, with the Tⁿ paths as the classes; each row of ∂J/∂S sums to 0.
Step 5, the batch.  J_data = Σ_s J_s / N, the mean per TOKEN (as the window model's J is a mean
    per window, so the same learning rates fit both): δs = ∂J_data/∂S = (P − Y) / N (N, T) and
    ∂J_data/∂A = Σ_s ∂J_s/∂A / N.                                                loss_and_delta_s()
Step 6, into the network.  S = h Uᵀ + c is model.forward's multiclass output layer, so δs
    enters model.backward unchanged: ∂J/∂U = δsᵀ h, ∂J/∂c = Σ_rows δs, ∂J/∂h = δs U,
    δ = ∂J/∂h ∘ f'(z), ∂J/∂W = Δᵀ X, ∂J/∂b = Δᵀ 1, ∂J/∂X = Δ W scattered into E and C.
L2.  As the window model: λ/2 (‖W‖² + ‖U‖² [+ the E rows used]).  A is not regularised: like
    the biases it multiplies no input, and each of its few entries is seen in every sentence.

Log space.  α, β and log Z are logs, and every Σ exp is a logsumexp (shifted by its max):
exp(α) itself would overflow (α grows with the sentence: ~n times a typical score).

IOB2, by construction.  I-c may only continue a c entity (after B-c or I-c).  A holds −∞ at
every other pair (row start included), fixed from init_transitions on: exp(−∞) = 0, so such a
path has probability 0, its pairs' marginals and gold counts are both 0 (the gradient there is
exactly 0 and the entry never moves), and Viterbi never picks it.  Why not repair an I-c after O
as conlleval reads it (as a start)?  Then a B-c path and an I-c path would be the same entities,
the model would spread probability over paths that mean one thing, and the best path would not
be the best entities.  With the constraint, a tag path and its entities are one to one, and A
can be used as saved: params.npz's A is the matrix the decoding adds, −∞ entries included.

Decoding (viterbi()): the max-sum twin of step 1, with back-pointers.
    v_0(j) = A[start, j] + S[0, j]
    v_k(j) = S[k, j] + max_i (v_{k-1}(i) + A[i, j]),     b_k(j) = argmax_i (v_{k-1}(i) + A[i, j])
    y_{n-1} = argmax_j v_{n-1}(j),   y_{k-1} = b_k(y_k)
Entities are read off the path: a B-c tag starts one, the I-c tags after it continue it; so
"Gulf of Mexico" can be one span and two adjacent places (B-LOC B-LOC) stay two.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

from .conll import entity_spans

LOSS = "sll"  # the sentence-level log-likelihood, the name the configs and reports use
# how a saved sentence model decides (meta.json "decoding"), for readers and other runtimes
DECODING = ("Viterbi (max-sum with back-pointers) over score(y) = sum_k A[y_(k-1), y_k] + S[k, y_k], y_(-1) = start: "
            "S (n, T) the tag scores s = U h + c of each token's window (T = the 'tags' list), A (T+1, T) the array "
            "'A' of params.npz, row T the start; its -inf entries are the pairs IOB2 forbids (I-c after anything "
            "but B-c or I-c). Entities: a B-c tag starts one, the I-c tags after it continue it. p: the marginals.")
TAG_PREFIXES = ("B", "I")


# --- Tags -----------------------------------------------------------------------------------------


def tag_set(classes: Sequence[str]) -> list[str]:
    """The IOB2 tags of ``classes`` ("O" first): O, then B-c, I-c of each entity class c.

    >>> tag_set(["O", "LOC"])
    ['O', 'B-LOC', 'I-LOC']
    """
    return ["O"] + [f"{prefix}-{c}" for c in list(classes)[1:] for prefix in TAG_PREFIXES]


def n_tags(n_classes: int) -> int:
    """T = 2 (n_classes − 1) + 1: O and a B-, I- pair for each entity class."""
    return 2 * n_classes - 1


def class_of(tags: np.ndarray) -> np.ndarray:
    """The class index of each tag id: O -> 0, B-c and I-c -> c (tag 2c − 1, 2c)."""
    return (np.asarray(tags) + 1) // 2


def begins(tags: np.ndarray) -> np.ndarray:
    """(N,) bool: the tag starts an entity (a B- tag, i.e. an odd tag id)."""
    return np.asarray(tags) % 2 == 1


def allowed_transitions(T: int) -> np.ndarray:
    """(T+1, T) bool: may tag j follow tag i (row T: the start)?  IOB2: I-c only after B-c or I-c."""
    ok = np.ones((T + 1, T), dtype=bool)
    for j in range(2, T, 2):  # I-c is tag 2c
        ok[:, j] = False
        ok[j - 1, j] = ok[j, j] = True
    return ok


def init_transitions(T: int, dtype=np.float32) -> np.ndarray:
    """A (T+1, T): 0 where IOB2 allows the pair, −∞ where it forbids it (see the module docstring)."""
    return np.where(allowed_transitions(T), 0.0, -np.inf).astype(dtype)


def iob2_tag_ids(spans_per_sentence: Sequence[Sequence[tuple[str, int, int]]], lengths: Sequence[int],
                 classes: Sequence[str]) -> np.ndarray:
    """(N,) int32 gold tag ids of all tokens, sentence after sentence, from each sentence's entity
    spans [(type, start, end)] (conll.entity_spans, so any scheme is read as conlleval reads it).
    A type that is not one of ``classes`` is O (binary: only LOC is an entity)."""
    index = {c: i for i, c in enumerate(classes)}
    tags = np.zeros(int(sum(lengths)), dtype=np.int32)
    offset = 0
    for spans, n in zip(spans_per_sentence, lengths):
        for t, a, b in spans:
            c = index.get(t, 0)
            if c:
                tags[offset + a] = 2 * c - 1  # B-c
                tags[offset + a + 1:offset + b] = 2 * c  # I-c
        offset += n
    return tags


def tag_spans(path: Sequence[int], tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """The entities (type, start, end) of one sentence's tag path, decoded as conlleval decodes IOB2."""
    return entity_spans([tags[t] for t in path])


def decoded_spans(path: np.ndarray, starts: np.ndarray, classes: Sequence[str]) -> list[list[tuple[str, int, int]]]:
    """tag_spans of every sentence: path (N,) tag ids of sentences at rows starts[s]:starts[s+1]."""
    tags = tag_set(classes)
    return [tag_spans(path[a:b], tags) for a, b in zip(starts[:-1], starts[1:])]


def starts_of(lengths: Sequence[int]) -> np.ndarray:
    """(B+1,) int64: the first row of each of B sentences laid end to end, then N = Σ lengths."""
    return np.concatenate([[0], np.cumsum(np.asarray(lengths, dtype=np.int64))]).astype(np.int64)


# --- The reference path, one sentence -------------------------------------------------------------


def logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    """log Σ exp(a) along ``axis``, shifted by the max (exp never sees a large number).
    A slice that is all −∞ gives −∞ (the shift is then 0, not −∞ − −∞ = NaN)."""
    m = np.max(a, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return np.log(np.sum(np.exp(a - m), axis=axis)) + np.squeeze(m, axis=axis)


def path_score(S: np.ndarray, A: np.ndarray, y: np.ndarray) -> float:
    """score(y) = Σ_k (A[y_{k-1}, y_k] + S[k, y_k]), y_{-1} = start (row T of A).  S (n, T), y (n,) int."""
    y = np.asarray(y, dtype=np.intp)
    prev = np.concatenate([[S.shape[1]], y[:-1]])  # y_{k-1}, the start for k = 0
    return float(A[prev, y].sum() + S[np.arange(len(y)), y].sum())


def log_alpha(S: np.ndarray, A: np.ndarray) -> np.ndarray:
    """Step 1: α (n, T), α[k, j] = logadd of the scores of the prefixes y_0..y_k with y_k = j."""
    n, T = S.shape
    alpha = np.empty_like(S)
    alpha[0] = A[T] + S[0]  # α_0(j) = A[start, j] + S[0, j]
    for k in range(1, n):
        # α_k(j) = S[k, j] + logadd_i (α_{k-1}(i) + A[i, j])
        alpha[k] = S[k] + logsumexp(alpha[k - 1][:, None] + A[:T], axis=0)
    return alpha


def log_beta(S: np.ndarray, A: np.ndarray) -> np.ndarray:
    """Step 2: β (n, T), β[k, i] = logadd of the scores of the continuations y_{k+1}..y_{n-1} after y_k = i."""
    n, T = S.shape
    beta = np.empty_like(S)
    beta[n - 1] = 0.0  # β_{n-1}(i) = 0: nothing follows the last token
    for k in range(n - 2, -1, -1):
        # β_k(i) = logadd_j (A[i, j] + S[k+1, j] + β_{k+1}(j))
        beta[k] = logsumexp(A[:T] + (S[k + 1] + beta[k + 1])[None, :], axis=1)
    return beta


def log_partition(alpha: np.ndarray) -> float:
    """log Z = logadd_j α_{n-1}(j): the logadd of the scores of all Tⁿ paths."""
    return float(logsumexp(alpha[-1], axis=0))


def marginals(S: np.ndarray, A: np.ndarray, alpha: np.ndarray, beta: np.ndarray,
              log_Z: float) -> tuple[np.ndarray, np.ndarray]:
    """Step 3: P (n, T), P[k, j] = P(y_k = j | sentence), and the expected transition counts
    (T+1, T), Σ_k P(y_{k-1} = i, y_k = j | sentence) (row T: the start, P(y_0 = j))."""
    n, T = S.shape
    P = np.exp(alpha + beta - log_Z)  # P(y_k = j) = exp(α_k(j) + β_k(j) − log Z)
    pairs = np.zeros((T + 1, T), dtype=S.dtype)
    pairs[T] = P[0]  # the pair (start, y_0)
    for k in range(1, n):
        pairs[:T] += np.exp(alpha[k - 1][:, None] + A[:T] + (S[k] + beta[k])[None, :] - log_Z)  # P(y_{k-1}=i, y_k=j)
    return P, pairs


def transition_counts(y: np.ndarray, T: int) -> np.ndarray:
    """(T+1, T): #{k : y_{k-1} = i, y_k = j} in the path y (n,), row T counting the start."""
    y = np.asarray(y, dtype=np.intp)
    counts = np.zeros((T + 1, T))
    np.add.at(counts, (np.concatenate([[T], y[:-1]]), y), 1.0)
    return counts


def sll(S: np.ndarray, A: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """One sentence: J = log Z − score(y), ∂J/∂S (n, T) and ∂J/∂A (T+1, T) (steps 1-4)."""
    n, T = S.shape
    alpha, beta = log_alpha(S, A), log_beta(S, A)
    log_Z = log_partition(alpha)
    J = log_Z - path_score(S, A, y)  # J = −log p(y | sentence)
    P, pairs = marginals(S, A, alpha, beta, log_Z)
    dS = P - np.eye(T, dtype=S.dtype)[y]  # ∂J/∂S[k, t] = P(y_k = t) − [y_k = t]
    dA = pairs - transition_counts(y, T)  # ∂J/∂A[i, j] = Σ_k P(y_{k-1} = i, y_k = j) − #(i → j in y)
    return J, dS, dA.astype(S.dtype)


def loss_and_delta_s(S: np.ndarray, A: np.ndarray, y: np.ndarray,
                     starts: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Step 5, a batch of sentences: J_data = Σ_s J_s / N, δs = ∂J_data/∂S (N, T), ∂J_data/∂A (T+1, T).

    S (N, T) the tag scores of all tokens, sentence after sentence; y (N,) int gold tags;
    starts (B+1,) the first row of each sentence and N.  Runs sll() sentence by sentence.
    """
    N = S.shape[0]
    delta_s, dA, J_sum = np.zeros_like(S), np.zeros_like(A), 0.0
    for a, b in zip(starts[:-1], starts[1:]):
        if b > a:
            J, delta_s[a:b], dA_s = sll(S[a:b], A, y[a:b])
            J_sum, dA = J_sum + J, dA + dA_s
    return J_sum / N, delta_s / N, dA / N


def viterbi(S: np.ndarray, A: np.ndarray) -> tuple[np.ndarray, float]:
    """The best tag path of one sentence (n,) intp and its score: max-sum with back-pointers."""
    n, T = S.shape
    v = A[T] + S[0]  # v_0(j) = A[start, j] + S[0, j]
    back = np.zeros((n, T), dtype=np.intp)
    for k in range(1, n):
        cand = v[:, None] + A[:T]  # cand[i, j] = v_{k-1}(i) + A[i, j]
        back[k] = cand.argmax(axis=0)  # b_k(j) = argmax_i (v_{k-1}(i) + A[i, j])
        v = S[k] + cand.max(axis=0)  # v_k(j) = S[k, j] + max_i (v_{k-1}(i) + A[i, j])
    y = np.empty(n, dtype=np.intp)
    y[n - 1] = v.argmax()  # y_{n-1} = argmax_j v_{n-1}(j)
    for k in range(n - 1, 0, -1):
        y[k - 1] = back[k, y[k]]  # y_{k-1} = b_k(y_k)
    return y, float(v.max())


# --- The same maths vectorised over the sentences of a batch ------------------------------------
#
# Time-major: sort the sentences longest first; the sentences that have a token k are then the
# counts[k] longest, a prefix of that order.  Lay the rows out position by position (token 0 of
# every sentence, then token 1 of those that have one, ...): block k holds rows offsets[k] to
# offsets[k+1], and the first counts[k+1] rows of block k are the same sentences as block k+1.
# Every step of a recursion is then a few numpy calls on contiguous slices, for all sentences at
# once, and a loop over positions (the longest sentence's length) replaces the loop over
# sentences.  Each step's logadd is _log_matmul_exp: still log space, but shifted by one max per
# sentence (and one for A) instead of one per tag pair, so a token costs 2T exp/log, not T².


class Layout(NamedTuple):
    """The time-major layout of B sentences of N rows in all.

    rows (N,)        the row of S at each time-major position (S[rows] is S time-major)
    offsets (L+1,)   block k (token k of every sentence that has one) is offsets[k]:offsets[k+1]
    sentence (N,)    which sentence (0 = the longest) each time-major position belongs to
    last (B,)        the time-major position of each sentence's last token, longest first
    """

    rows: np.ndarray
    offsets: np.ndarray
    sentence: np.ndarray
    last: np.ndarray


def layout(starts: np.ndarray) -> Layout:
    """The time-major layout of sentences at rows starts[s]:starts[s+1] (empty sentences allowed)."""
    starts = np.asarray(starts, dtype=np.intp)
    lengths = np.diff(starts)
    order = np.argsort(-lengths, kind="stable")
    lengths, first = lengths[order], starts[:-1][order]
    L, N = (int(lengths[0]) if lengths.size else 0), int(lengths.sum())
    counts = len(lengths) - np.searchsorted(lengths[::-1], np.arange(L), side="right")  # sentences longer than k
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.intp)
    b = np.repeat(np.arange(len(lengths)), lengths)  # each row's sentence, sentence after sentence
    k = np.arange(N) - np.repeat(np.cumsum(lengths) - lengths, lengths)  # and its position in it
    rows, sentence = np.empty(N, dtype=np.intp), np.empty(N, dtype=np.intp)
    rows[offsets[k] + b], sentence[offsets[k] + b] = first[b] + k, b
    nonempty = lengths > 0
    return Layout(rows, offsets, sentence, offsets[lengths[nonempty] - 1] + np.flatnonzero(nonempty))


def _shifted_exp(A: np.ndarray) -> tuple[np.ndarray, float]:
    """(exp(A[:T] − c), c) with c the largest finite transition score: every entry in [0, 1]."""
    T = A.shape[1]
    c = float(A[:T][np.isfinite(A[:T])].max())
    return np.exp(A[:T].astype(np.float64) - c), c


def _log_matmul_exp(x: np.ndarray, expA: np.ndarray, c: float) -> np.ndarray:
    """logadd_i (x[:, i] + A[i, j]) for every row of x (n, T), i.e. log(exp(x) @ exp(A)), given
    expA = exp(A − c): x is shifted by its row max m first, so exp sees no positive number, and
    log(exp(x − m) @ expA) + m + c is the same logadd.  A logadd of only −∞ terms is −∞."""
    m = x.max(axis=1, keepdims=True)
    with np.errstate(divide="ignore"):
        return np.log(np.exp(x - m) @ expA) + (m + c)


def _log_alpha_tm(St: np.ndarray, A: np.ndarray, lay: Layout) -> np.ndarray:
    """log_alpha of every sentence, time-major: St = S[lay.rows] (N, T) -> α (N, T)."""
    T, o, alpha = St.shape[1], lay.offsets, np.empty_like(St)
    if len(o) < 2:  # no tokens at all
        return alpha
    expA, c = _shifted_exp(A)
    alpha[:o[1]] = A[T] + St[:o[1]]
    for k in range(1, len(o) - 1):  # α_k(j) = S[k, j] + logadd_i (α_{k-1}(i) + A[i, j])
        n = o[k + 1] - o[k]
        alpha[o[k]:o[k + 1]] = St[o[k]:o[k + 1]] + _log_matmul_exp(alpha[o[k - 1]:o[k - 1] + n], expA, c)
    return alpha


def _log_beta_tm(St: np.ndarray, A: np.ndarray, lay: Layout) -> np.ndarray:
    """log_beta of every sentence, time-major: β (N, T), 0 at each sentence's last token."""
    o, beta = lay.offsets, np.zeros_like(St)
    if len(o) < 2:
        return beta
    expA, c = _shifted_exp(A)
    for k in range(len(o) - 3, -1, -1):  # β_k(i) = logadd_j (A[i, j] + S[k+1, j] + β_{k+1}(j))
        n = o[k + 2] - o[k + 1]  # the sentences that have a token k + 1
        beta[o[k]:o[k] + n] = _log_matmul_exp(St[o[k + 1]:o[k + 2]] + beta[o[k + 1]:o[k + 2]], expA.T, c)
    return beta


def _from_tm(a_tm: np.ndarray, lay: Layout) -> np.ndarray:
    """A time-major array back in the rows' own order."""
    out = np.empty_like(a_tm)
    out[lay.rows] = a_tm
    return out


def log_alpha_batch(S: np.ndarray, A: np.ndarray, lay: Layout) -> np.ndarray:
    """log_alpha of every sentence: α (N, T), float64."""
    return _from_tm(_log_alpha_tm(S[lay.rows].astype(np.float64), A, lay), lay)


def log_beta_batch(S: np.ndarray, A: np.ndarray, lay: Layout) -> np.ndarray:
    """log_beta of every sentence: β (N, T), float64."""
    return _from_tm(_log_beta_tm(S[lay.rows].astype(np.float64), A, lay), lay)


def _marginals_tm(St: np.ndarray, A: np.ndarray, lay: Layout):
    """(α, β, log Z of each sentence (B,), P) time-major."""
    alpha, beta = _log_alpha_tm(St, A, lay), _log_beta_tm(St, A, lay)
    log_Z = np.logaddexp.reduce(alpha[lay.last], axis=1)  # log Z = logadd_j α_{n-1}(j)
    return alpha, beta, log_Z, np.exp(alpha + beta - log_Z[lay.sentence][:, None])


def marginals_batch(S: np.ndarray, A: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """P (N, T), P[r, j] = P(tag j at row r | its sentence), for every sentence at once."""
    lay = layout(starts)
    return _from_tm(_marginals_tm(S[lay.rows].astype(np.float64), A, lay)[3], lay)


def sll_batch(S: np.ndarray, A: np.ndarray, y: np.ndarray, starts: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """loss_and_delta_s, vectorised over the sentences: (J_data, δs (N, T), ∂J_data/∂A (T+1, T))."""
    N, T = S.shape
    if N == 0:
        return 0.0, np.zeros_like(S), np.zeros_like(A)
    lay = layout(starts)
    St, yt = S[lay.rows].astype(np.float64), np.asarray(y, dtype=np.intp)[lay.rows]
    alpha, beta, log_Z, P = _marginals_tm(St, A, lay)
    o = lay.offsets
    prev = np.empty(N, dtype=np.intp)  # y_{k-1} at each position: the start in block 0
    prev[:o[1]] = T
    for k in range(1, len(o) - 1):
        prev[o[k]:o[k + 1]] = yt[o[k - 1]:o[k - 1] + o[k + 1] - o[k]]
    score = float(A[prev, yt].sum() + St[np.arange(N), yt].sum())
    prev_row = np.concatenate([np.arange(o[k - 1], o[k - 1] + o[k + 1] - o[k]) for k in range(1, len(o) - 1)]
                              + [np.zeros(0, np.intp)])  # the time-major position of each row's previous token
    pairs = np.zeros_like(A)
    pairs[T] = P[:o[1]].sum(axis=0)  # the pairs (start, y_0)
    r = np.arange(o[1], N)
    pairs[:T] = np.exp(alpha[prev_row][:, :, None] + A[None, :T] + (St[r] + beta[r])[:, None, :]
                       - log_Z[lay.sentence[r]][:, None, None]).sum(axis=0)
    counts = np.zeros(A.shape)
    np.add.at(counts, (prev, yt), 1.0)
    delta_s = _from_tm(P - np.eye(T)[yt], lay)
    return (float(log_Z.sum()) - score) / N, (delta_s / N).astype(S.dtype), ((pairs - counts) / N).astype(S.dtype)


def viterbi_batch(S: np.ndarray, A: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """viterbi() of every sentence: the best tag paths, (N,) intp, sentence after sentence."""
    N, T = S.shape
    lay = layout(starts)
    if N == 0:
        return np.empty(0, dtype=np.intp)
    St, o = S[lay.rows], lay.offsets
    back = np.empty((N, T), dtype=np.intp)
    last = np.empty(len(lay.last), dtype=np.intp)  # each sentence's best final tag
    v = A[T] + St[:o[1]]
    for k in range(1, len(o) - 1):
        n = o[k + 1] - o[k]
        last[n:len(v)] = v[n:].argmax(axis=1)  # the sentences whose last token is k − 1
        cand = v[:n, :, None] + A[None, :T]  # cand[b, i, j] = v_{k-1}(i) + A[i, j]
        back[o[k]:o[k + 1]] = cand.argmax(axis=1)
        v = St[o[k]:o[k + 1]] + cand.max(axis=1)
    last[:len(v)] = v.argmax(axis=1)
    tags, current = np.empty(N, dtype=np.intp), last  # current: each sentence's tag at position k
    for k in range(len(o) - 2, -1, -1):
        n = o[k + 1] - o[k]
        tags[o[k]:o[k + 1]] = current[:n]
        if k:
            current[:n] = back[o[k]:o[k + 1]][np.arange(n), current[:n]]
    return _from_tm(tags, lay)


def class_marginals(P: np.ndarray, n_classes: int) -> np.ndarray:
    """(N, n_classes): P(token in class c | sentence) = P(B-c) + P(I-c); column 0 is P(O)."""
    out = np.empty((P.shape[0], n_classes), dtype=P.dtype)
    out[:, 0] = P[:, 0]
    out[:, 1:] = P[:, 1::2] + P[:, 2::2]
    return out


class Decoded(NamedTuple):
    """What decode() returns for N tokens: tags (N,) the Viterbi path's tag ids, classes (N,)
    their class ids, begins (N,) bool (the tag starts an entity), p (N, n_classes) the class
    marginals (class_marginals)."""

    tags: np.ndarray
    classes: np.ndarray
    begins: np.ndarray
    p: np.ndarray


def decode(S: np.ndarray, A: np.ndarray, starts: np.ndarray) -> Decoded:
    """The sentence model's decision for every token: the Viterbi path, and the marginals beside it."""
    tags = viterbi_batch(S, A, starts)
    n_classes = (S.shape[1] + 1) // 2
    return Decoded(tags, class_of(tags).astype(np.int32), begins(tags),
                   class_marginals(marginals_batch(S, A, starts), n_classes))
