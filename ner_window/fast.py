"""The fast path: model.py's equations fused for training (train_step) and tagging (predict_proba).

The maths is model.py's; only the arrangement differs.  Each fused line below and
the model.py line it computes (minibatch form, rows are windows):

    fast.py (train_step)                                 model.py
    X = _gather_into(...) / kern.gather_rows             gather:    X = [E[ids]; C[casing]] per token
    np.matmul(X, Wᵀ, out=z); z += b                      forward:   z = X @ W.T + b
    ACTIVATIONS[f](z, out=z)          (h over z)         forward:   h = ACTIVATIONS[f](z)
    _scores_into: s = h Uᵀ + c        (U = u as (n, H))  forward:   s = h @ u + c
    loss_and_delta_s(s, y, loss)                         loss_and_delta_s
    step_s = −lr δs                   (see below)
    delta = step_s U; delta *= f'(z)                     backward:  dh = np.outer(delta_s, u); delta = dh * f'(z)
    step_b = Σ_rows delta                                backward:  db = delta.sum(0)
    step_u = step_sᵀ h                                   backward:  du = h.T @ delta_s
    step_c = Σ_rows step_s                               backward:  dc = delta_s.sum(axis=0)
    dX = delta W      (E trained; else W's casing cols)  backward:  dX = delta @ W
    delta.T @ X -> optim.sgd_step(W, ...)                backward:  dW = delta.T @ X   (+ λW: in sgd_step)
    _scatter_into(C / E, casing / ids, dX)               backward:  scatter_rows (step 5)
    optim.shrink_rows                                    backward:  dE_values += lam * E[dE_rows]

kern.binary_head / kern.softmax_head (kernels.py) run the lines from s to step_c as one
compiled loop each, and kern.add_bias the "+= b".  predict_proba runs gather ->
forward -> probabilities in chunks; predict_scores stops at s.

sentence_train_step (a sentence-level model, sentence.py) is the same table with one line
swapped: instead of loss_and_delta_s, the tag scores s (N, T) of a batch of whole sentences
go through sentence.loss_and_delta_s, by kern.sll_batch (compiled) or sentence.sll_batch
(numpy), which give step_s = −lr δs and the step of A; the lines after it are train_step's
(_hidden_steps, _update).

Why it is fast: scratch buffers reused across calls (no allocation per batch),
gathering with np.take(out=), activations and derivatives into those buffers with
f' taken from h, no ∂J/∂X at all when E is frozen (only the casing columns when there
are casing vectors), δs scaled by −lr once so that every product below it is already
the SGD step (every gradient is linear in δs), a flat np.add.at for the sparse E
update, and W stored column-major (see model.Params).  Python floats (never np.float64
scalars) multiply float32 arrays, so nothing is upcast to float64.  What is left after
the products is per-call overhead of ~30 small numpy calls; kernels.py (numba) removes
most of it: 134 -> 97 µs a frozen-E step, 198 -> 147 fine-tuned (batch 64, d = 50,
H = 100, float32, one BLAS thread, BENCHMARKS.md).  This module is the only importer
of kernels.py, and imports it on the first train_step: tagging never loads numba.

BLAS threads.  For training they are the caller's choice.  Measured on 2 idle cores
(float32, d=50, H=100, radius 2, batch 64): OpenBLAS's default 2 threads train ~10%
faster than 1, but when other processes keep the cores busy its spinning worker threads
collapse (30-50k windows/s instead of ~400k); `threadpoolctl.threadpool_limits(1, "blas")`
around training avoids that (train.py does, see train.blas_threads).  Inference uses the
cores its own way: predict_proba runs independent chunks in threads, each with one BLAS thread.
"""

from __future__ import annotations

import copy
import importlib
import os
import threading
import warnings
from functools import lru_cache
from typing import Callable, NamedTuple

import numpy as np

from .model import (ACTIVATIONS, DERIVATIVES, Params, check_activation, check_loss, loss_and_delta_s, sigmoid,
                    softmax, squared_norm)
from .optim import add_rows_at, shrink_rows, sgd_step
from .sentence import sll_batch
from .windows import check_window_ids, check_window_shape

_scratch = threading.local()


def scratch_buffer(name: str, shape: tuple, dtype: np.dtype) -> np.ndarray:
    """A scratch array for (name, shape, dtype), reused across calls in this thread.

    Contents are garbage on return.  The few shapes a run uses (full and last
    batch) stay cached; the cache is dropped if it ever grows past 64 entries.
    """
    cache = _scratch.__dict__.setdefault("buffers", {})
    key = (name, shape, dtype)
    a = cache.get(key)
    if a is None:
        if len(cache) >= 64:
            cache.clear()
        a = cache[key] = np.empty(shape, dtype)
    return a


class _TrainBuffers:
    """Scratch arrays for one train_step batch shape (see _train_buffers)."""

    def __init__(self, B: int, D: int, H: int, n_out: int, dtype: np.dtype, order: str):
        self.X = np.empty((B, D), dtype)  # gathered windows
        self.z = np.empty((B, H), dtype)  # z, then h in place
        self.s = np.empty((B, n_out), dtype)
        self.delta = np.empty((B, H), dtype)
        self.work = np.empty((B, H), dtype)  # f'(z)
        self.dX = np.empty((B, D), dtype)
        self.dW = np.empty((H, D), dtype, order=order)  # W's layout, so that W += ΔW is a plain add
        # compiled path: −lr δs, and the steps of b, u (U), c
        self.t = np.empty(B if n_out == 1 else (B, n_out), dtype)
        self.step_b = np.empty(H, dtype)
        self.step_u = np.empty(H if n_out == 1 else (n_out, H), dtype)
        self.step_c = np.empty(n_out, dtype)
        self.no_bias = np.zeros(n_out, dtype)  # c for a model without an output bias

    def first(self, n: int) -> "_TrainBuffers":
        """The same scratch with its per-row arrays cut to their first n rows (contiguous views)."""
        view = copy.copy(self)
        for name in ("X", "z", "s", "delta", "work", "dX", "t"):
            setattr(view, name, getattr(self, name)[:n])
        return view


def _train_buffers(params: Params, B: int) -> _TrainBuffers:
    """The train_step scratch arrays for this batch size and model shape, reused across calls in this thread."""
    order = "F" if params.W.flags.f_contiguous else "C"
    key = (B, params.W.shape, params.n_classes, params.dtype, order)
    cache = _scratch.__dict__.setdefault("train", {})
    bufs = cache.get(key)
    if bufs is None:
        if len(cache) >= 8:
            cache.clear()
        H, D = params.W.shape
        bufs = cache[key] = _TrainBuffers(B, D, H, params.n_classes, params.dtype, order)
    return bufs


@lru_cache(maxsize=64)
def _casing_columns(w: int, d: int, d_c: int) -> np.ndarray:
    """(w*d_c,) intp: the columns of X (and W) that hold casing vectors (cached, read-only)."""
    a = (np.arange(w)[:, None] * (d + d_c) + d + np.arange(d_c)).reshape(-1)
    a.flags.writeable = False
    return a


def _output_layer(params: Params) -> tuple[np.ndarray, np.ndarray | None]:
    """The output layer as a matrix: U (n_out, H) and c (n_out,) or None; n_out = 1 for binary (views)."""
    U = params.u.reshape(-1, params.hidden)
    c = None if params.c is None else params.c.reshape(-1)
    return U, c


def _check_ids(params: Params, ids: np.ndarray, casing: np.ndarray | None) -> None:
    check_window_ids(ids, casing, params.E.shape[0], None if params.C is None else params.C.shape[0])


def _gather_into(params: Params, ids: np.ndarray, casing: np.ndarray | None, X: np.ndarray) -> np.ndarray:
    """gather() into the preallocated X (B, D), for ids already range-checked (_check_ids).

    np.take's mode="clip" never clips such ids; it only spares np.take the buffered copy
    that its default mode="raise" makes (and "raise" would let −1 through anyway).
    """
    B, w = ids.shape
    d = params.d
    if params.C is None:
        np.take(params.E, ids.reshape(-1), axis=0, out=X.reshape(B * w, d), mode="clip")
    else:
        # np.take into the strided column slices of X is slow (measured 870 µs for 4096
        # windows); taking into contiguous scratch and copying the slices takes 490 µs
        d_c, dt = params.d_c, params.dtype
        e, c = scratch_buffer("gather_e", (B, w, d), dt), scratch_buffer("gather_c", (B, w, d_c), dt)
        np.take(params.E, ids, axis=0, out=e, mode="clip")
        np.take(params.C, casing, axis=0, out=c, mode="clip")
        X3 = X.reshape(B, w, d + d_c)
        X3[:, :, :d] = e
        X3[:, :, d:] = c
    return X


def _hidden_into(X: np.ndarray, WT: np.ndarray, b: np.ndarray, activation: str, z: np.ndarray) -> np.ndarray:
    """h = f(X Wᵀ + b) into the preallocated z (B, H), which becomes h.  WT: Wᵀ (D, H)."""
    np.matmul(X, WT, out=z)
    z += b
    return ACTIVATIONS[activation](z, out=z)


def _scores_into(h: np.ndarray, U: np.ndarray, c: np.ndarray | None, s: np.ndarray) -> np.ndarray:
    """s = h Uᵀ + c into the preallocated s (B, n_out)."""
    np.matmul(h, U.T, out=s)
    if c is not None:
        s += c
    return s


_kernels_module = None  # ner_window.kernels, imported on the first train_step (numba takes ~0.15 s)


def _fast_kernels():
    """ner_window.kernels when its compiled loops are usable (numba installed, not turned off), else None."""
    global _kernels_module
    if _kernels_module is None:
        try:
            kernels = importlib.import_module("ner_window.kernels")
        except Exception as error:  # numba installed but unusable, e.g. no writable cache directory
            warnings.warn(
                f"ner-window: the compiled training kernels are unavailable ({type(error).__name__}: {error}); "
                "training runs the numpy path (the same maths, ~1.3x slower). Point NUMBA_CACHE_DIR at a writable "
                "directory, or set NER_WINDOW_KERNELS=numpy to choose the numpy path quietly.",
                RuntimeWarning,
                stacklevel=3,
            )
            _kernels_module = False
        else:
            _kernels_module = kernels
    return _kernels_module if _kernels_module and _kernels_module.available() else None


def _gather_compiled(kern, params: Params, ids: np.ndarray, casing: np.ndarray | None, X: np.ndarray) -> np.ndarray:
    """_gather_into() by the compiled loop (kern = ner_window.kernels), which also checks every id."""
    stride = params.d + params.d_c
    bad = kern.gather_rows(params.E, ids, X, 0, stride)
    if bad < 0 and params.C is not None:
        bad = kern.gather_rows(params.C, casing, X, params.d, stride)
    if bad >= 0:
        _check_ids(params, ids, casing)  # raises the ModelError that names the cause
    return X


def _scatter_into(kern, table: np.ndarray, ids: np.ndarray, dX: np.ndarray, offset: int, stride: int) -> None:
    """Step 5: table[ids[i, t]] += dX[i, t*stride + offset : ... + k], repeats summed.

    table (n, k) E or C; ids (B, w); dX (B, w*stride) C-contiguous, e.g. −lr ∂J/∂X with
    stride d + d_c.  kern: ner_window.kernels (compiled loop), or None for optim.add_rows_at.
    """
    if kern is not None:
        kern.scatter_add_rows(table, ids, dX, offset, stride)
    else:
        B, w = ids.shape
        add_rows_at(table, ids.reshape(-1), dX.reshape(B * w, stride)[:, offset : offset + table.shape[1]])


def _forward_into(kern, params: Params, ids, casing, activation: str, buf: _TrainBuffers):
    """gather and forward up to h, into buf: (X (B, D), h (B, H) in buf.z)."""
    if kern is None:
        _check_ids(params, ids, casing)  # _gather_into trusts the ids
        X = _gather_into(params, ids, casing, buf.X)
        return X, _hidden_into(X, params.W.T, params.b, activation, buf.z)
    X = _gather_compiled(kern, params, ids, casing, buf.X)
    h = np.matmul(X, params.W.T, out=buf.z)
    kern.add_bias(h, params.b)
    return X, ACTIVATIONS[activation](h, out=h)


def _output_backward(kern, params: Params, h, y, loss: str, activation: str, pos_weight: float, lr: float,
                     buf: _TrainBuffers):
    """Steps 1-3 and the output layer's gradients, scaled by −lr: (J_data, step_b, step_u, step_c).

    δ (scaled by −lr) is left in buf.delta.  Every gradient is linear in δs, so scaling
    δs by −lr once makes each product after it the SGD step −lr ∂J_data/∂θ.
    """
    U, c = _output_layer(params)
    B, n_out = h.shape[0], params.n_classes
    delta = buf.delta
    if kern is not None and n_out == 1:
        J_data, step_c = kern.binary_head(
            h, params.u, 0.0 if c is None else float(params.c), y, float(pos_weight), lr,
            kern.LOSS_CODES[loss], kern.ACTIVATION_CODES[activation], buf.t, delta, buf.step_b, buf.step_u,
        )
        return J_data, buf.step_b, buf.step_u, step_c
    if kern is not None:  # multiclass: softmax + cross-entropy
        J_data = kern.softmax_head(
            h, U, buf.no_bias if c is None else c, y, float(pos_weight), lr,
            kern.ACTIVATION_CODES[activation], buf.t, delta, buf.step_b, buf.step_u, buf.step_c,
        )
        return J_data, buf.step_b, buf.step_u, buf.step_c
    s = _scores_into(h, U, c, buf.s)
    J_data, delta_s = loss_and_delta_s(s[:, 0] if n_out == 1 else s, y, loss, pos_weight)
    return (J_data, *_hidden_steps(params, h, delta_s.reshape(B, n_out) * -lr, activation, buf))


def _hidden_steps(params: Params, h: np.ndarray, step_s: np.ndarray, activation: str, buf: _TrainBuffers):
    """Steps 2-3 from step_s = −lr δs (B, n_out): (step_b, step_u, step_c); δ (scaled by −lr) into buf.delta."""
    U, c = _output_layer(params)
    delta = buf.delta
    if step_s.shape[1] == 1:
        np.multiply(step_s, U, out=delta)  # the outer product (B,1)(1,H): no BLAS call needed
    else:
        np.matmul(step_s, U, out=delta)
    delta *= DERIVATIVES[activation](h, out=buf.work)
    step_b = np.add.reduce(delta, axis=0)
    step_u = (step_s.T @ h).reshape(params.u.shape)
    step_c = None if c is None else step_s.sum(axis=0).reshape(params.c.shape)
    return step_b, step_u, step_c


class StepLoss(NamedTuple):
    """What a training step measured, at the parameters before its update: the objective
    J = J_data + L2 penalty (what backward differentiates) and the data loss J_data alone."""

    J: float
    J_data: float


def train_step(params: Params, ids: np.ndarray, casing: np.ndarray | None, y: np.ndarray, *, lr: float,
               activation: str, loss: str, pos_weight: float = 1.0, lam: float = 0.0, train_E: bool = False,
               regularize_E: bool = False, momentum: float = 0.0,
               velocity: dict[str, np.ndarray] | None = None) -> StepLoss:
    """One SGD step on a batch, in place; returns StepLoss(J, J_data) before the update.

    ids, casing: (B, w) int (casing may be None without casing vectors); y: (B,) int.
    The maths of gather -> forward -> loss_and_delta_s -> backward -> θ ← θ − lr ∂J/∂θ,
    fused (the table in the module docstring).  momentum > 0 needs velocity =
    optim.make_velocity(params), updated in place; rows of E always get plain sparse SGD
    (see make_velocity).  Only E rows used by the batch change.
    """
    check_activation(activation)
    check_loss(loss, params.task)
    if momentum and velocity is None:
        raise ValueError("momentum > 0 needs velocity=make_velocity(params)")
    check_window_shape(ids, casing, params.window, params.C is not None)
    kern = _fast_kernels()  # ner_window.kernels, or None
    lr, lam, momentum = float(lr), float(lam), float(momentum)
    buf = _train_buffers(params, ids.shape[0])
    X, h = _forward_into(kern, params, ids, casing, activation, buf)
    J_data, step_b, step_u, step_c = _output_backward(kern, params, h, y, loss, activation, pos_weight, lr, buf)
    return _update(kern, params, X, ids, casing, J_data, (step_b, step_u, step_c), lr=lr, lam=lam, train_E=train_E,
                   regularize_E=regularize_E, momentum=momentum, velocity=velocity, buf=buf)


def sentence_train_step(params: Params, ids: np.ndarray, casing: np.ndarray | None, tags: np.ndarray,
                        starts: np.ndarray, *, lr: float, activation: str, lam: float = 0.0, train_E: bool = False,
                        regularize_E: bool = False, momentum: float = 0.0,
                        velocity: dict[str, np.ndarray] | None = None) -> StepLoss:
    """One SGD step on a batch of whole sentences (a sentence-level model: params.A), in place.

    ids, casing: (N, w) the windows of the batch's N tokens, sentence after sentence; tags (N,)
    the gold IOB2 tag ids; starts (B+1,) the first row of each sentence, then N.  The maths of
    gather -> forward (S = h Uᵀ + c, the tag scores of all N tokens in one product) ->
    sentence.loss_and_delta_s -> backward -> θ ← θ − lr ∂J/∂θ; A by plain SGD or momentum, no L2
    (kernels.sll_batch runs the recursions compiled, else sentence.sll_batch).  Returns
    StepLoss(J, J_data) before the update, J_data the mean per token.
    """
    check_activation(activation)
    if params.A is None:
        raise ValueError("sentence_train_step needs a sentence-level model (params.A); train_step trains window models")
    if momentum and velocity is None:
        raise ValueError("momentum > 0 needs velocity=make_velocity(params)")
    check_window_shape(ids, casing, params.window, params.C is not None)
    kern = _fast_kernels()
    lr, lam, momentum = float(lr), float(lam), float(momentum)
    N = ids.shape[0]
    # a batch of whole sentences has a different N every step: scratch for N rounded up to 64
    # rows, cut to N, keeps the buffers cached (one per size would be reallocated every step)
    buf = _train_buffers(params, -(-N // 64) * 64).first(N)
    X, h = _forward_into(kern, params, ids, casing, activation, buf)
    S = _scores_into(h, *_output_layer(params), buf.s)  # (N, T)
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    if kern is not None:
        step_A = np.empty_like(params.A)
        J_data = kern.sll_batch(S, params.A, np.ascontiguousarray(tags, dtype=np.int64), starts, -lr / N, buf.t,
                                step_A)
        step_s = buf.t
    else:
        J_data, delta_s, dA = sll_batch(S, params.A, tags, starts)
        step_s, step_A = delta_s * -lr, dA * -lr
    steps = _hidden_steps(params, h, step_s, activation, buf)
    sgd_step(params.A, step_A, 0.0, momentum, (velocity or {}).get("A") if momentum else None)
    return _update(kern, params, X, ids, casing, J_data, steps, lr=lr, lam=lam, train_E=train_E,
                   regularize_E=regularize_E, momentum=momentum, velocity=velocity, buf=buf)


def _update(kern, params: Params, X, ids, casing, J_data: float, steps, *, lr: float, lam: float, train_E: bool,
            regularize_E: bool, momentum: float, velocity, buf: _TrainBuffers) -> StepLoss:
    """Steps 4-5 from δ (scaled by −lr, in buf.delta) and the output layer's steps (step_b, step_u,
    step_c): ∂J/∂X, then every parameter's update.  Returns StepLoss at the parameters before it."""
    step_b, step_u, step_c = steps
    w, d, d_c, W = ids.shape[1], params.d, params.d_c, params.W
    delta = buf.delta
    # step 4, ∂J/∂X = Δ W, BEFORE W changes, and only the columns that will be used
    if train_E:
        dX = np.matmul(delta, W, out=buf.dX)  # (B, D): token t of window i at columns t(d + d_c) ...
        casing_cols = (dX, d, d + d_c)
    elif d_c:
        # frozen E: just the casing columns, Δ (W's casing columns)
        casing_cols = (delta @ np.take(W, _casing_columns(w, d, d_c), axis=1), 0, d_c)
    J = J_data + (0.5 * lam * (squared_norm(W) + squared_norm(params.u)) if lam else 0.0)  # before the update
    # step 4: −lr ∂J/∂W = Δᵀ X; then every dense parameter takes its step
    vel = velocity if momentum else {}
    sgd_step(W, np.matmul(delta.T, X, out=buf.dW), lr * lam, momentum, vel.get("W"))
    sgd_step(params.b, step_b, 0.0, momentum, vel.get("b"))
    sgd_step(params.u, step_u, lr * lam, momentum, vel.get("u"))
    if params.c is not None:
        sgd_step(params.c, step_c, 0.0, momentum, vel.get("c"))
    # step 5: scatter the rows of ∂J/∂X into C (dense: K is tiny) and E (sparse)
    if d_c:
        dC = np.zeros_like(params.C)
        _scatter_into(kern, dC, casing, *casing_cols)
        sgd_step(params.C, dC, 0.0, momentum, vel.get("C"))
    if train_E:
        if lam and regularize_E:
            J += 0.5 * lam * shrink_rows(params.E, ids, lr, lam)
        _scatter_into(kern, params.E, ids, dX, 0, d + d_c)
    return StepLoss(J, J_data)


def _forward_chunks(params: Params, ids: np.ndarray, casing: np.ndarray | None, activation: str, batch_size: int,
                    threads: int | None, write: Callable[[np.ndarray, int, int], None]) -> None:
    """forward() in chunks of batch_size through reused buffers; write(s_chunk (B, n_out), start, stop).

    The chunks are independent, so up to ``threads`` of them (default: one per CPU, at
    most 4) run at once, each in its own Python thread with its own buffers: numpy
    releases the GIL inside np.take, the matrix product and the ufuncs.  BLAS meanwhile
    keeps to one thread per product.  Two chunks on two cores beat OpenBLAS splitting
    each product in two (2 idle cores, batch 4096: ~2.0M windows/s against ~1.6M), and
    when another process holds a core they lose that core's share only, where
    OpenBLAS's spinning threads run 3x slower or worse.
    """
    check_activation(activation)
    check_window_shape(ids, casing, params.window, params.C is not None)
    _check_ids(params, ids, casing)
    N, dt = ids.shape[0], params.dtype
    H, D, n_out = params.hidden, params.W.shape[1], params.n_classes
    U, c = _output_layer(params)
    # X @ Wᵀ with Wᵀ contiguous runs ~1.5× faster than with the transposed view (OpenBLAS, measured)
    WT = np.ascontiguousarray(params.W.T)

    def forward_chunk(start: int) -> None:
        stop = min(N, start + batch_size)
        B = stop - start
        cas = None if casing is None else casing[start:stop]
        X = _gather_into(params, ids[start:stop], cas, scratch_buffer("pX", (B, D), dt))
        h = _hidden_into(X, WT, params.b, activation, scratch_buffer("pz", (B, H), dt))
        write(_scores_into(h, U, c, scratch_buffer("ps", (B, n_out), dt)), start, stop)

    starts = range(0, N, batch_size)
    threads = min(len(starts), min(4, os.cpu_count() or 1) if threads is None else threads)
    one_blas_thread = _one_blas_thread() if threads > 1 else None
    if one_blas_thread is None:
        for start in starts:
            forward_chunk(start)
        return
    from concurrent.futures import ThreadPoolExecutor  # lazy: a sentence needs no threads

    with one_blas_thread, ThreadPoolExecutor(threads) as pool:
        list(pool.map(forward_chunk, starts))  # list(): re-raises a chunk's exception here


def predict_proba(params: Params, ids: np.ndarray, casing: np.ndarray | None, activation: str,
                  batch_size: int = 4096, threads: int | None = None) -> np.ndarray:
    """p for every window: (N,) P(positive) binary, (N, n_classes) multiclass; params' dtype.

    ids, casing: (N, w) int.  gather -> forward -> probabilities, in chunks (see
    _forward_chunks for batch_size and threads); no loss, no cache.
    """
    n_out = params.n_classes
    p = np.empty((ids.shape[0],) if n_out == 1 else (ids.shape[0], n_out), dtype=params.dtype)

    def write(s: np.ndarray, start: int, stop: int) -> None:
        if n_out == 1:
            sigmoid(s[:, 0], out=p[start:stop])
        else:
            p[start:stop] = softmax(s)

    _forward_chunks(params, ids, casing, activation, batch_size, threads, write)
    return p


def predict_scores(params: Params, ids: np.ndarray, casing: np.ndarray | None, activation: str,
                   batch_size: int = 4096, threads: int | None = None) -> np.ndarray:
    """s for every window, as predict_proba computes it before p: (N,) binary, (N, n_classes) multiclass.

    model.probabilities(s) is predict_proba's p, bit for bit; model.loss_and_delta_s(s, y)
    is the data loss training reports.
    """
    n_out = params.n_classes
    s = np.empty((ids.shape[0],) if n_out == 1 else (ids.shape[0], n_out), dtype=params.dtype)

    def write(chunk: np.ndarray, start: int, stop: int) -> None:
        s[start:stop] = chunk[:, 0] if n_out == 1 else chunk

    _forward_chunks(params, ids, casing, activation, batch_size, threads, write)
    return s


def _one_blas_thread():
    """A context that holds BLAS to one thread (threadpoolctl), or None without threadpoolctl."""
    try:
        from threadpoolctl import threadpool_limits  # comes with scikit-learn
    except ImportError:
        return None
    return threadpool_limits(limits=1, user_api="blas")
