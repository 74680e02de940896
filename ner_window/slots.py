"""Tagging without a matrix product per window: z as a sum of precomputed slot projections.

API for other modules: ``SlotScorer(params, activation)``; ``.scores_lines(word_ids,
casing_ids, lengths)`` scores the tokens of whole lines (one window per token, padded
with <s>/</s> at each line's edges) and ``.scores_windows(ids, casing)`` scores (N, w)
windows as fast.predict_scores does; both return s (N,) binary or (N, n_classes).
``.probabilities(s)`` is p.  tagger.py and pipeline.py score through it.

The derivation (lecture 3's forward pass, model.py, read block by block)
-----------------------------------------------------------------------
A window is w = 2m+1 slots; slot k holds token t_k, whose part of x is
x_k = [e(t_k); c(t_k)] (d + d_c,).  Cut W (H, D) into the matching column blocks,
W = [W_0 | W_1 | ... | W_{w-1}] with W_k (H, d + d_c).  A matrix times a stacked
vector is the sum of the blocks times the pieces, so

    z = W x + b = Σ_k W_k x_k + b                                     (H,)

and W_k x_k depends on the token in slot k only.  Name the projection of token
type a = (word id, casing id) into slot k

    T_k[a] = W_k [e(word); c(casing)]                                 (H,)

(P_k = E W_kᵀ, the lecture's E times the slot's block, and likewise the casing block;
here both are added per token type: a word with its casing class).  Then

    z = Σ_k T_k[a_k] + b          a gather of w rows and w-1 additions  (H,)

instead of the (D,)·(D, H) product: H·w additions per window against 2·D·H flops
(d = 50, d_c = 4, H = 100, w = 5: 500 against 54,000), as Chen & Manning (2014)
precomputed the products of their parser's most frequent words per input position.
h = f(z), s = uᵀh + c and p = σ(s) follow as in model.forward, per window.  The bias b
is folded into the centre slot's rows (T_m[a] + b): every window has exactly one centre.

Which rows, and what they cost
------------------------------
A row T[a] = (T_0[a]; ...; T_{w-1}[a]) holds w·H numbers: 2,000 bytes for w = 5,
H = 100, float32.  Rows are computed when a token type is first seen and kept in a
cache of at most ``cache_bytes`` (64 MB by default: 33,554 token types for that shape);
when a new batch would overflow it, the most used half of the rows stays (counted by the
window slots that read them) and the rest is forgotten (all of it, if even that leaves too
little room).  An ensemble's W (ensemble.py) is block diagonal, K members side by side: its
rows are projected block by block, leaving the zeros out (the same numbers to float32
rounding: BLAS adds the remaining terms in its own order).  Running text
repeats its words (Zipf), so after the first few thousand lines nearly every token's
row is already there; a one-sentence call computes only that sentence's ~10 rows (a
few microseconds each), never the whole vocabulary (V·w·H·4 bytes: 100 MB for the
base model's 50k words, 800 MB for 400k).  The map from a token type to its row is a
dense int32 array of V·K entries (1.6 MB for V = 50k, K = 8 casing classes).
E itself, mapped read-only from params.npz (artifact.read_npz), is read only to compute rows, and
its pages are given back after every DROP_ROWS rows computed (drop_pages): a stream would otherwise keep
most of E in its memory (the merged default model's 68 MB E: ~50 MB of a 1M-token run).

The same number every time
--------------------------
Each row is computed on its own: a stack of (1, d + d_c) · (d + d_c, w·H) products, which
numpy's matmul hands to BLAS one row at a time (one product of many rows would not do:
OpenBLAS's result for a row of a matrix product depends on where the row sits among the
others; a one-row product depends on that row alone: tests/test_slots.py checks it, and it
gave the same bits with 1, 2 and 4 OpenBLAS threads; 2.1 µs a row against 4.3 for numpy's
einsum loops),
the w rows of a window are added in slot order, s = Σ_j h_j u_j is numpy's per-row
sum, and tanh / σ are elementwise: a token's p depends on its window alone, never
on the batch, the chunk, the cache's state or the process.  So tagging a file in
parts (`ner-window tag`) gives what tagging it whole gives, byte for byte.  Against
the matrix-product path (fast.predict_proba) the results agree to float32 rounding
(tests/test_slots.py: every window of the bundled test set).
"""

from __future__ import annotations

import mmap

import numpy as np

from .fast import scratch_buffer
from .model import ACTIVATIONS, Params, check_activation, sigmoid, softmax
from .vocab import BOS_ID, EOS_ID
from .windows import PAD, check_window_ids, check_window_shape

DEFAULT_CACHE_BYTES = 64 * 2**20
SMALL = 256  # tokens: a line this short is scored by one gather (_score_small), not in batches
BATCH = 2048  # windows per gather: two (BATCH, H) float32 scratch arrays, ~1.6 MB (1024: 7% slower, 8192: 30%)


PROJECT = 1024  # token types projected at once
DROP_ROWS = 256  # rows computed between two drop_pages of a mapped E: each fault maps 64 kB of it (~10 µs)


def _slot_matrix(W3: np.ndarray) -> np.ndarray:
    """W's slot blocks W_k (H, w, n) as one (n, w·H) matrix: [e; c] @ it = (W_0 x_k; ...; W_{w-1} x_k)."""
    H, w, n = W3.shape
    return np.ascontiguousarray(W3.transpose(2, 1, 0).reshape(n, w * H))


def one_row_at_a_time(x: np.ndarray, M: np.ndarray) -> np.ndarray:
    """x M for x (n, j), M (j, k) as n one-row products (n, k): row i depends on x[i] alone."""
    return np.matmul(x[:, None, :], M)[:, 0]


def mapped_pages(a: np.ndarray) -> mmap.mmap | None:
    """The read-only file mapping that array ``a`` views (artifact.read_npz maps E so), or None: an
    array in memory, a writeable one, or an OS without madvise.  Dropping its pages (drop_pages) costs
    only re-reading them from the page cache: nothing in a read-only mapping can have changed."""
    if a.flags.writeable or not hasattr(mmap, "MADV_DONTNEED"):
        return None
    base = a.base
    while base is not None and not isinstance(base, mmap.mmap):
        base = getattr(base, "base", None)
    return base


def drop_pages(pages: mmap.mmap) -> None:
    """Unmap a read-only file mapping's pages from this process (MADV_DONTNEED): they stop counting to
    its memory, stay in the OS's page cache, and are mapped again when read."""
    pages.madvise(mmap.MADV_DONTNEED)


def independent_blocks(W3: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The groups of hidden units that read disjoint input columns: W3 (H, w, d + d_c) -> [(hidden
    units, input columns)], a partition of both (connected components of W's nonzero pattern over
    all slots).  One group for a dense W; K groups for the merge of K members (ensemble.py)."""
    reads = (W3 != 0).any(axis=1)  # (H, d + d_c): hidden unit j reads column i in some slot
    H, n_in = reads.shape
    group = np.full(H, -1)
    blocks = []
    for j in range(H):
        if group[j] >= 0:
            continue
        units, cols = np.zeros(H, bool), np.zeros(n_in, bool)
        units[j] = True
        while True:  # grow: the columns the units read, then every unit reading one of them
            cols = reads[units].any(axis=0)
            grown = reads[:, cols].any(axis=1) | units
            if (grown == units).all():
                break
            units = grown
        group[units] = len(blocks)
        blocks.append((np.flatnonzero(units), np.flatnonzero(cols)))
    return blocks


class SlotScorer:
    """s for windows of a fixed model from cached slot projections (module docstring).

    params: Params (E (V, d), C (K, d_c) or None, W (H, w(d + d_c)), b, u, c);
    activation: a key of model.ACTIVATIONS; cache_bytes: the most the row cache holds; threads:
    how many threads score the batches of one call (rows are computed in the caller's thread).
    One scorer is for one thread of callers at a time (its cache changes as it scores).
    """

    def __init__(self, params: Params, activation: str, cache_bytes: int = DEFAULT_CACHE_BYTES, threads: int = 1):
        check_activation(activation)
        self.threads, self._pool = threads, None
        self.params, self.activation = params, activation
        self.w, self.H, self.m = params.window, params.hidden, params.radius
        self.K = 1 if params.C is None else params.C.shape[0]
        dt = params.dtype
        W3 = np.asarray(params.W).reshape(self.H, self.w, params.d + params.d_c)
        self.WT_slots = _slot_matrix(W3)
        # an ensemble's W (ensemble.py) is block diagonal: project each member's columns to its own rows only
        groups = independent_blocks(W3)
        self.blocks = [(h, x, _slot_matrix(W3[h][:, :, x])) for h, x in groups] if len(groups) > 1 else []
        self.U = params.u.reshape(-1, self.H)  # (n_out, H): u as a row for binary
        self.c = None if params.c is None else params.c.reshape(-1)
        self.capacity = max(64, int(cache_bytes) // (self.w * self.H * dt.itemsize))
        self.T = np.empty((self.capacity, self.w, self.H), dt)  # untouched pages cost no memory
        self.row_of = np.full(params.E.shape[0] * self.K, -1, np.int32)  # token type -> row of T, or -1
        self.keys = np.empty(self.capacity, np.int64)  # row -> token type, to empty the cache
        self.hits = np.zeros(self.capacity, np.int64)  # row -> windows slots that read it (for _evict)
        self.n_rows = 0
        self.refills = 0  # how often the cache was emptied (for the benchmark)
        self._slot = np.arange(self.w, dtype=np.int64)
        self._special = self.type_ids(np.array([BOS_ID, EOS_ID]), np.array([PAD, PAD]))  # <s>, </s> with pad casing
        self._windows: dict[int, np.ndarray] = {}  # _window_at's cache, n <= SMALL + 2m
        self._pages = mapped_pages(params.E)  # E mapped from params.npz: its pages are given back once read
        self._since_drop = 0  # rows computed since its pages were last given back

    # ------------------------------------------------------------------ rows of T

    def type_ids(self, word_ids: np.ndarray, casing_ids: np.ndarray | None) -> np.ndarray:
        """Token type a = word id · K + casing id (int64, word_ids' shape); casing ignored without C."""
        a = word_ids.astype(np.int64)
        if self.K > 1:
            a *= self.K
            a += casing_ids
        return a

    def _project(self, types: np.ndarray) -> np.ndarray:
        """T[a] for token types ``types`` (n,): (n, w, H), b added to the centre slot."""
        p = self.params
        word, cas = np.divmod(types, self.K)
        x = p.E[word] if p.C is None else np.concatenate([p.E[word], p.C[cas]], axis=1)  # (n, d + d_c)
        if not self.blocks:
            T = one_row_at_a_time(x, self.WT_slots).reshape(-1, self.w, self.H)
        else:  # the zeros between the blocks add nothing: leave them out (3x fewer products for 3 members)
            T = np.empty((len(types), self.w, self.H), x.dtype)
            for h, cols, WT in self.blocks:
                T[:, :, h] = one_row_at_a_time(x[:, cols], WT).reshape(len(types), self.w, -1)
        T[:, self.m] += p.b
        return T

    def rows(self, types: np.ndarray) -> np.ndarray:
        """The row of T for each token type (int32, types' shape), computing the missing ones.

        At most ``capacity`` distinct types per call (callers split larger batches).
        """
        r = self.row_of[types]
        if r.size and r.min() < 0:
            missing = np.unique(types[r < 0])
            if self.n_rows + len(missing) > self.capacity:
                self._evict()  # keep the most used half
                r = self.row_of[types]
                missing = np.unique(types[r < 0])
                if self.n_rows + len(missing) > self.capacity:
                    self._empty()
                    missing = np.unique(types)
            new = np.arange(self.n_rows, self.n_rows + len(missing), dtype=np.int32)
            for a in range(0, len(missing), PROJECT):  # in pieces: the temporaries stay a few MB
                piece = missing[a:a + PROJECT]
                self.T[new[a:a + PROJECT]] = self._project(piece)
                self._since_drop += len(piece)
                if self._pages is not None and self._since_drop >= DROP_ROWS:  # the rows are in T now:
                    drop_pages(self._pages)  # E's pages need not stay in memory
                    self._since_drop = 0
            self.row_of[missing] = new
            self.keys[new] = missing
            self.n_rows += len(missing)
            r = self.row_of[types]
        np.add.at(self.hits, r.ravel(), 1)
        return r

    def _evict(self) -> None:
        """Keep the most used half of the rows (hits since computed, ties to the older row), moved to
        the front in their order; the rest are forgotten.  Running text is Zipfian: its frequent
        types stay, where emptying the whole cache would compute them again after every refill."""
        n, half = self.n_rows, self.capacity // 2
        keep = np.sort(np.argsort(-self.hits[:n], kind="stable")[:half])
        gone = np.ones(n, bool)
        gone[keep] = False
        self.row_of[self.keys[:n][gone]] = -1
        for a in range(0, len(keep), PROJECT):  # keep[i] >= i: a piece never reads a row already overwritten
            at = keep[a:a + PROJECT]
            self.T[a:a + len(at)] = self.T[at]
            self.keys[a:a + len(at)] = self.keys[at]
        self.n_rows = len(keep)
        self.row_of[self.keys[:self.n_rows]] = np.arange(self.n_rows, dtype=np.int32)
        self.hits[:self.n_rows] = self.hits[keep] // 2  # older hits count half: the cache follows the text
        self.hits[self.n_rows:] = 0
        self.refills += 1

    def _empty(self) -> None:
        self.row_of[self.keys[: self.n_rows]] = -1
        self.n_rows = 0
        self.hits[:] = 0
        self.refills += 1

    # ------------------------------------------------------------------ scores

    def _scores_of_rows(self, R: np.ndarray, out: np.ndarray) -> None:
        """s into out (N, n_out) for windows whose slots hold rows R (N, w) of T, BATCH windows at a time.

        With ``threads`` > 1 the batches run in that many threads (T is only read here; numpy
        releases the GIL in take, add, tanh and einsum), each batch's numbers the same."""
        starts = range(0, len(R), BATCH)
        if self.threads > 1 and len(starts) > 1:
            if self._pool is None:
                from concurrent.futures import ThreadPoolExecutor  # lazy: a sentence needs no thread

                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="ner-window-slots")
            list(self._pool.map(lambda a: self._score_batch(R[a:a + BATCH], out[a:a + BATCH]), starts))
            return
        for start in starts:
            self._score_batch(R[start:start + BATCH], out[start:start + BATCH])

    def _score_batch(self, R: np.ndarray, out: np.ndarray) -> None:
        w, H, dt = self.w, self.H, self.T.dtype
        B = len(R)
        flat = self.T.reshape(-1, H)
        # rows of T are flat at r·w + k, one contiguous index column per slot; mode="clip" only spares
        # np.take a buffered copy (rows are in range)
        at = np.ascontiguousarray((R * w + self._slot).T)  # (w, B)
        # one (BATCH, H) buffer each, a line's last, shorter batch in its first B rows: a buffer per batch
        # size would keep up to 64 of them (for H = 300, ~100 MB)
        z, g = scratch_buffer("z", (BATCH, H), dt)[:B], scratch_buffer("g", (BATCH, H), dt)[:B]
        np.take(flat, at[0], axis=0, out=z, mode="clip")
        for k in range(1, w):
            z += np.take(flat, at[k], axis=0, out=g, mode="clip")  # z = Σ_k T_k[a_k] (b in the centre rows)
        self._output(z, out)

    def _output(self, z: np.ndarray, out: np.ndarray) -> None:
        """s into out (B, n_out) from z (B, H), which becomes h."""
        h = ACTIVATIONS[self.activation](z, out=z)  # h = f(z)
        for j, u_j in enumerate(self.U):  # s = uᵀh + c: numpy's own per-row loop (not BLAS: module docstring)
            np.einsum("bh,h->b", h, u_j, out=out[:, j])
            if self.c is not None:
                out[:, j] += self.c[j]

    def _score_small(self, seq: np.ndarray, out: np.ndarray) -> None:
        """_score_batch for the n = len(seq) - w + 1 windows of one short line, whose slot k of window i
        holds row seq[i + k]: one gather of the (n, w) rows and one sum over the slots, in slot order
        as _score_batch adds them (the same numbers, tests/test_slots.py), at a third of the calls."""
        n = len(seq) - self.w + 1
        at = seq[self._window_at(n)]  # (n, w) rows of T
        at *= self.w
        at += self._slot  # flat rows r·w + k
        z = np.add.reduce(np.take(self.T.reshape(-1, self.H), at, axis=0), axis=1)  # z = Σ_k T_k[a_k] (b: centre)
        self._output(z, out)

    def _window_at(self, n: int) -> np.ndarray:
        """(n, w) int32 i + k: where window i's slot k sits in a padded line (cached per n)."""
        at = self._windows.get(n)
        if at is None:
            at = self._windows[n] = np.arange(n, dtype=np.int32)[:, None] + self._slot.astype(np.int32)
        return at

    def scores_windows(self, ids: np.ndarray, casing: np.ndarray | None) -> np.ndarray:
        """s for (N, w) windows of word ids and casing ids, as fast.predict_scores: (N,) or (N, n_classes)."""
        p = self.params
        check_window_shape(ids, casing, self.w, p.C is not None)
        check_window_ids(ids, casing, p.E.shape[0], None if p.C is None else self.K)
        out = np.empty((len(ids), len(self.U)), self.T.dtype)
        step = max(1, self.capacity // self.w)  # distinct types per call <= capacity
        for start in range(0, len(ids), step):
            stop = start + step
            types = self.type_ids(ids[start:stop], None if casing is None else casing[start:stop])
            self._scores_of_rows(self.rows(types), out[start:stop])
        return out[:, 0] if p.task == "binary" else out

    def scores_lines(self, word_ids: np.ndarray, casing_ids: np.ndarray | None, lengths: np.ndarray) -> np.ndarray:
        """s for every token of whole lines: word_ids, casing_ids (N,) in line order, lengths (L,) tokens
        per line (sum N); each line padded with m <s> and m </s> (casing pad), as windows.make_windows."""
        p = self.params
        N, m = len(word_ids), self.m
        check_window_ids(word_ids[None, :], None if casing_ids is None else casing_ids[None, :], p.E.shape[0],
                         None if p.C is None else self.K)
        out = np.empty((N, len(self.U)), self.T.dtype)
        if N:
            line_end = np.cumsum(lengths)
            step = max(1, self.capacity - 2 - 2 * m)  # a piece's distinct types (+ <s>, </s>) fit in the cache
            for start in range(0, N, step):
                stop = min(N, start + step)
                self._score_piece(word_ids, casing_ids, line_end, start, stop, out[start:stop])
        return out[:, 0] if p.task == "binary" else out

    def _score_piece(self, word_ids, casing_ids, line_end, start, stop, out) -> None:
        """Tokens start..stop of scores_lines: their windows reach at most m tokens past either end,
        which are the same line's tokens or padding."""
        m = self.m
        lo, hi = max(0, start - m), min(len(word_ids), stop + m)
        types = self.type_ids(word_ids[lo:hi], None if casing_ids is None else casing_ids[lo:hi])
        rows = self.rows(np.concatenate([types, self._special]))
        r_tok, bos, eos = rows[:-2], rows[-2], rows[-1]
        if len(line_end) == 1:  # one line (a sentence, a request): its rows padded, window i = seq[i:i + w]
            seq = np.concatenate([np.full(m - (start - lo), bos, np.int32), r_tok,
                                  np.full(m - (hi - stop), eos, np.int32)])
            if stop - start <= SMALL:
                self._score_small(seq, out)
            else:
                self._scores_of_rows(np.lib.stride_tricks.sliding_window_view(seq, self.w), out)
            return
        pos = np.arange(start, stop)
        line = np.searchsorted(line_end, pos, side="right")  # line of each token
        first = np.where(line > 0, line_end[line - 1], 0)
        last = line_end[line] - 1
        R = np.empty((stop - start, self.w), np.int32)
        for k in range(-m, m + 1):  # slot k: the token k places away, or padding past the line's edges
            q = pos + k
            R[:, k + m] = np.where(q < first, bos, np.where(q > last, eos, r_tok[np.clip(q, lo, hi - 1) - lo]))
        self._scores_of_rows(R, out)

    def probabilities(self, s: np.ndarray) -> np.ndarray:
        """p from s: σ(s) binary (N,), softmax row-wise multiclass (N, n_classes)."""
        return sigmoid(s) if s.ndim == 1 else softmax(s)
