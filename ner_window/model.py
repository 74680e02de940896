"""The window classifier of CS224N lecture 3, with backpropagation written by hand.

Shapes use the lecture's names: B windows in a batch, window width w = 2m+1
(m = radius), word-vector size d, casing-vector size d_c, D = w(d + d_c),
H hidden units, V words, K casing classes.  Each step of the derivation below
names the function that implements it.

The model, for one window (binary task: is the centre word a location?)
-----------------------------------------------------------------------
    x = [e(w-m); c(w-m); ...; e(w+m); c(w+m)]   (D,)   gather()          (the c(.) only with casing vectors C)
    z = W x + b                                 (H,)   affine_forward()
    h = f(z)                                    (H,)   ACTIVATIONS[f]
    s = uᵀh + c                                 ()     affine_forward()  (the output layer is affine too)
    p = σ(s)                                    ()     probabilities()
    J = ℓ(s, y) + L2 penalty                           COSTS[loss].fn, loss_and_delta_s(), l2_penalty()

Multiclass changes only the output layer: U (n_classes, H) (stored as ``u``),
c (n_classes,), s = U h + c, p = softmax(s), ℓ = -log p_y.

Backward, step by step (shape convention: a gradient has its parameter's shape)
------------------------------------------------------------------------------
Step 1, J -> s.  δs = ∂J/∂s.                    COSTS[loss].delta, loss_and_delta_s()
    Cross-entropy.  ℓ = -y log p - (1-y) log(1-p).  With p = σ(s): log p = -log(1 + e^-s)
    and log(1-p) = -s - log(1 + e^-s), so ℓ = log(1 + e^-s) + (1-y)s = log(1 + e^s) - y s,
    i.e. ℓ = softplus(s) - y s.  It is computed in that form, from s (np.logaddexp(0, s)),
    never as the log of a p that rounding has made exactly 0 or 1.
    Since softplus'(s) = σ(s):  δs = p - y.
    Squared error.  ℓ = (p - y)² and dp/ds = σ'(s) = p(1-p), so δs = 2(p - y)·p(1-p).
    Softmax cross-entropy (multiclass).  ℓ = -log p_y = log Σ_k exp(s_k) - s_y, so
    ∂ℓ/∂s_k = exp(s_k) / Σ_j exp(s_j) - [k = y] = p_k - [k = y]:  δs = p - y, y one-hot.
    The batch.  J_data = Σᵢ ωᵢ ℓᵢ / Σᵢ ωᵢ, a weighted MEAN: ωᵢ = pos_weight for a
    positive example (binary: y = 1; multiclass: any class but 0 = O), else 1.  So
    δsᵢ = ωᵢ ∂ℓᵢ/∂sᵢ / Σⱼ ωⱼ (the plain mean, ∂ℓᵢ/∂sᵢ / B, when pos_weight = 1).
Step 2, s -> u, c, h.  s = uᵀh + c is linear in each of them:   affine_backward() (output layer)
    ∂J/∂u = δs h,   ∂J/∂c = δs,   ∂J/∂h = u δs.   (multiclass: ∂J/∂U = δs hᵀ, ∂J/∂h = Uᵀδs)
Step 3, h -> z.  h = f(z) elementwise, so its Jacobian is diagonal:   DERIVATIVES[f]
    δ = ∂J/∂z = (u δs) ∘ f'(z)      -- the error signal, computed ONCE and reused in step 4.
    f' is written with h = f(z), which the forward pass already has:
    σ'(z) = h(1 - h),   tanh'(z) = 1 - h²,   relu'(z) = [h > 0].
Step 4, z -> W, b, x.  z_j = Σ_k W_jk x_k + b_j, so:   affine_backward() (hidden layer)
    ∂J/∂W_jk = δ_j x_k, i.e. ∂J/∂W = δ xᵀ (H, D);   ∂J/∂b = δ (H,);
    ∂J/∂x_k = Σ_j W_jk δ_j, i.e. ∂J/∂x = Wᵀ δ (D,).
Step 5, x -> E, C.  x is a copy of rows of E (and of C), so each d-slice of ∂J/∂x is
    ADDED to the row it was copied from.  Added, not assigned: a word used twice, in one
    window or in two, affects J through both copies, and the chain rule sums over them.
    Only the rows the batch used get a gradient, so dE is sparse: (rows, values).
    scatter_rows() (reference), _scatter_into() (fast path).

The minibatch.  Rows are examples: X (B, D) stacks the xᵢᵀ.  Transposing z = W x + b
gives, for all rows at once, Z = X Wᵀ + b (B, H) [`z` in the code]; then h = f(Z) (B, H),
s = h u + c (B,), and the error signals stack the same way: Δ = (δs uᵀ) ∘ f'(Z) (B, H)
[`delta`], row i = δᵢᵀ.  J sums over examples, so gradients sum over examples:
    ∂J/∂W = Σᵢ δᵢ xᵢᵀ = Δᵀ X      (H, B)(B, D) = (H, D): one matrix product, no loop
    ∂J/∂b = Σᵢ δᵢ = Δᵀ 1           (the column sums of Δ)
    ∂J/∂u = Σᵢ δsᵢ hᵢ = hᵀ δs,     ∂J/∂c = Σᵢ δsᵢ
    ∂J/∂X = Δ W                    (B, H)(H, D) = (B, D), row i = (Wᵀ δᵢ)ᵀ     backward()

L2.  J = J_data + λ/2 (‖W‖² + ‖u‖² [+ Σ_{r∈R} ‖E_r‖²]) adds λW, λu [and λE_r] to the
gradients.  Not regularised: the biases b, c (a bias multiplies no input, so shrinking it
does not make the function smoother) and the casing vectors C (not in the issue's
penalty; each of their K ≈ 8 rows is seen in nearly every batch).  When word vectors are
regularised, R is the set of DISTINCT rows of E the batch uses: the penalty changes from
batch to batch, but the update stays sparse (a penalty over all V rows would move every
row of E at every step).                                                     l2_penalty()

Two implementations of the same maths live here.  The reference path -- gather(),
forward(), loss_and_delta_s(), backward() -- allocates freely and is what the gradient
check (gradcheck.py) verifies.  train_step() and predict_proba() are the FAST PATH: the
same equations fused, in preallocated buffers, updating parameters in place; the tests
check that they agree with the reference path.  With numba installed (the "fast" extra),
train_step runs its small non-matrix work -- gather, + b, the output layer (binary or
softmax) with its loss and δ, the E-row scatter -- as the compiled loops of kernels.py;
the numpy lines here are the same maths and run without numba.
"""

from __future__ import annotations

import importlib
import os
import threading
import warnings
from dataclasses import dataclass, fields
from typing import Callable, Mapping, NamedTuple

import numpy as np

from ner_window.errors import ConfigError, ModelError

TASKS = ("binary", "multiclass")
BINARY_LOSSES = ("bce", "squared")
MULTICLASS_LOSSES = ("ce",)
PARAM_NAMES = ("E", "C", "W", "b", "u", "c")


# ---------------------------------------------------------------------------
# Activations f and their derivatives f', in tables (as scikit-learn's
# neural_network/_base.py).  Both work IN PLACE: the forward pass overwrites z
# with h = f(z), and the derivative multiplies δ by f'(z) written via h.
# ---------------------------------------------------------------------------


def sigmoid(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """σ(z) = 1 / (1 + exp(-z)), elementwise; ``out=z`` computes it in place.

    For z ≲ -88 (float32) exp(-z) overflows to inf and 1/(1+inf) = 0 is exactly
    the right limit, so the overflow warning is silenced rather than avoided.
    """
    out = np.negative(z, out=out)
    with np.errstate(over="ignore"):
        np.exp(out, out=out)
    out += 1.0
    return np.reciprocal(out, out=out)


def inplace_sigmoid(z: np.ndarray) -> np.ndarray:
    """h = σ(z), overwriting z.  (B, H) -> (B, H), the same array."""
    return sigmoid(z, out=z)


def inplace_tanh(z: np.ndarray) -> np.ndarray:
    """h = tanh(z), overwriting z."""
    return np.tanh(z, out=z)


def inplace_relu(z: np.ndarray) -> np.ndarray:
    """h = max(z, 0), overwriting z."""
    return np.maximum(z, 0.0, out=z)


def inplace_sigmoid_derivative(h: np.ndarray, delta: np.ndarray, work: np.ndarray | None = None) -> np.ndarray:
    """delta *= σ'(z) = h(1 - h).  ``work`` (same shape) avoids an allocation."""
    work = np.subtract(1.0, h, out=work)
    work *= h
    delta *= work
    return delta


def inplace_tanh_derivative(h: np.ndarray, delta: np.ndarray, work: np.ndarray | None = None) -> np.ndarray:
    """delta *= tanh'(z) = 1 - h²."""
    work = np.multiply(h, h, out=work)
    np.subtract(1.0, work, out=work)
    delta *= work
    return delta


def inplace_relu_derivative(h: np.ndarray, delta: np.ndarray, work: np.ndarray | None = None) -> np.ndarray:
    """delta *= relu'(z) = [z > 0] = [h > 0].  (relu'(0) is taken as 0.)"""
    delta *= h > 0
    return delta


ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sigmoid": inplace_sigmoid,
    "tanh": inplace_tanh,
    "relu": inplace_relu,
}
DERIVATIVES: dict[str, Callable[..., np.ndarray]] = {
    "sigmoid": inplace_sigmoid_derivative,
    "tanh": inplace_tanh_derivative,
    "relu": inplace_relu_derivative,
}


def check_activation(activation: str) -> None:
    """Raise ConfigError unless ``activation`` is a key of ACTIVATIONS."""
    if activation not in ACTIVATIONS:
        raise ConfigError(
            f"unknown activation {activation!r} (config key 'activation'): use one of {', '.join(ACTIVATIONS)}"
        )


# ---------------------------------------------------------------------------
# Output probabilities and costs (Nielsen network2 style: a cost owns fn and delta)
# ---------------------------------------------------------------------------


def softmax(s: np.ndarray) -> np.ndarray:
    """p = softmax(s) row-wise, (B, n_classes) -> (B, n_classes).

    Subtracting each row's max first leaves p unchanged (it cancels in the
    ratio) and keeps exp from overflowing.
    """
    p = s - s.max(axis=1, keepdims=True)
    np.exp(p, out=p)
    p /= p.sum(axis=1, keepdims=True)
    return p


def probabilities(s: np.ndarray) -> np.ndarray:
    """p from scores: σ(s) for binary s (B,), softmax(s) for multiclass s (B, n_classes)."""
    return sigmoid(s) if s.ndim == 1 else softmax(s)


def _logsumexp(s: np.ndarray) -> np.ndarray:
    """log Σ_k exp(s_k) row-wise, (B, n) -> (B,), shifted by the row max for stability."""
    m = s.max(axis=1)
    return m + np.log(np.exp(s - m[:, None]).sum(axis=1))


def _one_hot(y: np.ndarray, n_classes: int, dtype) -> np.ndarray:
    """(B,) class indices -> (B, n_classes) rows of the identity."""
    Y = np.zeros((y.shape[0], n_classes), dtype=dtype)
    Y[np.arange(y.shape[0]), y] = 1.0
    return Y


class Cost(NamedTuple):
    """One loss: ``fn(s, p, y)`` -> per-example ℓ_i (B,); ``delta(s, p, y)`` -> ∂ℓ_i/∂s_i.

    y is float 0/1 (B,) for the binary costs and a one-hot (B, n_classes) for "ce".
    """

    fn: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
    delta: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


COSTS: dict[str, Cost] = {
    # ℓ = softplus(s) - y s, from s (see module docstring, step 1); δs = p - y
    "bce": Cost(fn=lambda s, p, y: np.logaddexp(0.0, s) - y * s, delta=lambda s, p, y: p - y),
    # ℓ = (p - y)²; δs = 2(p - y) · p(1 - p)
    "squared": Cost(fn=lambda s, p, y: (p - y) ** 2, delta=lambda s, p, y: 2.0 * (p - y) * p * (1.0 - p)),
    # ℓ = logsumexp(s) - s_y; δs = p - y (one-hot) -- softmax and CE simplify together
    "ce": Cost(fn=lambda s, p, y: _logsumexp(s) - (s * y).sum(axis=1), delta=lambda s, p, y: p - y),
}


def check_loss(loss: str, task: str) -> None:
    """Raise ConfigError unless ``loss`` is a loss of ``task``."""
    allowed = BINARY_LOSSES if task == "binary" else MULTICLASS_LOSSES
    if loss not in allowed:
        raise ConfigError(
            f"loss {loss!r} does not fit the {task} task (config key 'loss'): use one of {', '.join(allowed)}"
        )


def example_weights(y: np.ndarray, pos_weight: float, dtype) -> np.ndarray | None:
    """ω (B,): pos_weight for positive examples (label != 0), 1 otherwise; None when pos_weight == 1."""
    if pos_weight == 1.0:
        return None
    return np.where(y != 0, pos_weight, 1.0).astype(dtype, copy=False)


def loss_and_delta_s(
    s: np.ndarray, y: np.ndarray, loss: str = "bce", pos_weight: float = 1.0
) -> tuple[float, np.ndarray]:
    """The data loss and δs = ∂J_data/∂s for a batch (step 1 of the derivation).

    s: (B,) binary scores or (B, n_classes) multiclass scores.
    y: (B,) int labels, 0/1 or class indices.
    Returns J_data = Σ ω_i ℓ_i / Σ ω_i (a python float) and δs, shaped like s.
    """
    task = "binary" if s.ndim == 1 else "multiclass"
    check_loss(loss, task)
    cost = COSTS[loss]
    p = probabilities(s)
    target = y.astype(s.dtype) if task == "binary" else _one_hot(y, s.shape[1], s.dtype)
    ell = cost.fn(s, p, target)  # (B,)
    delta_s = cost.delta(s, p, target)
    omega = example_weights(y, pos_weight, s.dtype)
    if omega is None:
        total = s.shape[0]
        J_data = float(ell.sum()) / total
    else:
        total = float(omega.sum())
        J_data = float(omega @ ell) / total
        delta_s *= omega if task == "binary" else omega[:, None]
    delta_s /= total  # the mean: ∂/∂s_i of (1/Σω) Σ ω_j ℓ_j
    return J_data, delta_s


# ---------------------------------------------------------------------------
# Parameters
# ---------------------------------------------------------------------------


@dataclass(kw_only=True, eq=False)
class Params:
    """All trainable arrays, one dtype (float32 or float64).

    E (V, d) word vectors; C (K, d_c) casing vectors or None; W (H, D), D = w(d + d_c);
    b (H,); u (H,) binary or (n_classes, H) multiclass ("U"); c () binary,
    (n_classes,) multiclass, or None (no output bias).

    W is stored column-major (np.asfortranarray; init_params and from_dict make it so):
    the same (H, D) matrix to every line of code, but then both training products
    Z = X Wᵀ and ΔW = Δᵀ X run as OpenBLAS's fastest batch-64 kernels (X Wᵀ with W
    row-major took 45 µs instead of 36).  Any layout works; this one is faster.
    """

    E: np.ndarray
    C: np.ndarray | None
    W: np.ndarray
    b: np.ndarray
    u: np.ndarray
    c: np.ndarray | None

    @property
    def dtype(self) -> np.dtype:
        return self.W.dtype

    @property
    def d(self) -> int:
        return self.E.shape[1]

    @property
    def d_c(self) -> int:
        return 0 if self.C is None else self.C.shape[1]

    @property
    def window(self) -> int:
        """w = 2m + 1 tokens per window."""
        return self.W.shape[1] // (self.d + self.d_c)

    @property
    def radius(self) -> int:
        return (self.window - 1) // 2

    @property
    def hidden(self) -> int:
        return self.W.shape[0]

    @property
    def n_classes(self) -> int:
        """1 for the binary task, else the number of classes."""
        return 1 if self.u.ndim == 1 else self.u.shape[0]

    @property
    def task(self) -> str:
        return "binary" if self.u.ndim == 1 else "multiclass"

    def to_dict(self) -> dict[str, np.ndarray]:
        """{"E", "C", "W", "b", "u", "c"} -> arrays (absent parameters left out), e.g. for np.savez."""
        return {name: getattr(self, name) for name in PARAM_NAMES if getattr(self, name) is not None}

    @classmethod
    def from_dict(cls, arrays: Mapping[str, np.ndarray], source: str = "parameters") -> Params:
        """Build Params from a mapping such as ``np.load("params.npz")``; checks every shape.

        Raises ModelError naming ``source`` and the key when something does not fit.
        """
        missing = [k for k in ("E", "W", "b", "u") if k not in arrays]
        if missing:
            raise ModelError(
                f"{source}: missing array(s) {', '.join(missing)}; the model directory is incomplete, save it again"
            )
        unknown = sorted(set(arrays) - set(PARAM_NAMES))
        if unknown:
            raise ModelError(f"{source}: unknown array(s) {', '.join(unknown)}; expected only {', '.join(PARAM_NAMES)}")
        # np.require keeps a 0-d c as shape (); np.ascontiguousarray would make it (1,)
        got = {k: np.require(arrays[k], requirements="C") for k in PARAM_NAMES if k in arrays}
        dtype = got["W"].dtype
        for name, a in got.items():
            if a.dtype != dtype or a.dtype not in (np.float32, np.float64):
                raise ModelError(
                    f"{source}: array {name!r} has dtype {a.dtype}, expected {dtype} (float32 or float64) like W"
                )
        W = np.asfortranarray(got["W"])  # column-major, as init_params makes it (see Params)
        params = cls(E=got["E"], C=got.get("C"), W=W, b=got["b"], u=got["u"], c=got.get("c"))
        _check_shapes(params, source)
        return params

    def copy(self) -> Params:
        """A deep copy (train_step updates in place)."""
        return Params(**{name: None if a is None else a.copy(order="K") for name, a in self._arrays()})

    def astype(self, dtype) -> Params:
        """A copy with every array cast to ``dtype``."""
        return Params(**{name: None if a is None else a.astype(dtype) for name, a in self._arrays()})

    def _arrays(self):
        return ((f.name, getattr(self, f.name)) for f in fields(self))


def _check_shapes(p: Params, source: str) -> None:
    def bad(name: str, expected: str) -> ModelError:
        return ModelError(f"{source}: array {name!r} has shape {getattr(p, name).shape}, expected {expected}")

    if p.E.ndim != 2:
        raise bad("E", "(V, d)")
    if p.C is not None and p.C.ndim != 2:
        raise bad("C", "(K, d_c)")
    if p.W.ndim != 2 or p.W.shape[1] % (p.d + p.d_c) or p.window % 2 == 0:
        raise bad("W", f"(H, w*(d + d_c)) with odd w, d + d_c = {p.d + p.d_c}")
    H = p.hidden
    if p.b.shape != (H,):
        raise bad("b", f"({H},)")
    if p.u.shape != (H,) and not (p.u.ndim == 2 and p.u.shape[1] == H and p.u.shape[0] >= 2):
        raise bad("u", f"({H},) binary or (n_classes, {H}) multiclass")
    if p.c is not None and p.c.shape != p.u.shape[:-1]:
        raise bad("c", f"{p.u.shape[:-1]} to match u")


def glorot_uniform(rng: np.random.Generator, fan_out: int, fan_in: int, dtype) -> np.ndarray:
    """(fan_out, fan_in) ~ U(-a, a), a = sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010).

    The variance a²/3 = 2/(fan_in + fan_out) keeps activations and gradients of
    similar scale in both directions through the layer.
    """
    a = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-a, a, size=(fan_out, fan_in)).astype(dtype)


def init_params(
    n_words: int,
    d: int,
    radius: int,
    hidden: int,
    *,
    n_casing: int = 0,
    d_c: int = 0,
    n_classes: int = 1,
    output_bias: bool = True,
    rng: np.random.Generator,
    dtype=np.float32,
    E: np.ndarray | None = None,
) -> Params:
    """Fresh parameters: Glorot-uniform W, u (and E, C unless given), zero biases.

    n_classes=1 is the binary task (u (H,), c (), sigmoid); n_classes >= 2 is multiclass
    (U (n_classes, H), c (n_classes,), softmax).
    E given = pretrained vectors (n_words, d), copied and cast to ``dtype``.
    A random E or C is a lookup layer whose input is one-hot (one active unit), so
    its Glorot range uses fan_in = 1: a = sqrt(6 / (1 + d)), ≈ 0.34 for d = 50,
    similar in scale to GloVe components.
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ConfigError(f"dtype {dtype} is not supported (config key 'dtype'): use float32 or float64")
    sizes = {"n_words": n_words, "d": d, "radius": radius, "hidden": hidden, "n_classes": n_classes}
    for key, value in sizes.items():
        low = 0 if key == "radius" else 1
        if int(value) != value or value < low:
            raise ConfigError(f"config key {key!r} = {value!r} is out of range: use an integer >= {low}")
    if (n_casing > 0) != (d_c > 0):
        raise ConfigError(
            f"casing vectors need both n_casing and d_c > 0 (got n_casing={n_casing}, d_c={d_c}): set both or neither"
        )
    w = 2 * radius + 1
    D = w * (d + d_c)
    if E is None:
        E = (rng.uniform(-1.0, 1.0, (n_words, d)) * np.sqrt(6.0 / (1 + d))).astype(dtype)
    else:
        E = np.array(E, dtype=dtype, order="C", copy=True)
        if E.shape != (n_words, d):
            raise ConfigError(
                f"pretrained vectors have shape {E.shape}, expected (n_words, d) = ({n_words}, {d}): "
                "check the embeddings dim"
            )
    C = None
    if n_casing:
        C = (rng.uniform(-1.0, 1.0, (n_casing, d_c)) * np.sqrt(6.0 / (1 + d_c))).astype(dtype)
    W = np.asfortranarray(glorot_uniform(rng, hidden, D, dtype))  # column-major: see Params
    b = np.zeros(hidden, dtype)
    if n_classes == 1:
        u = glorot_uniform(rng, 1, hidden, dtype)[0]
        c = np.zeros((), dtype) if output_bias else None
    else:
        u = glorot_uniform(rng, n_classes, hidden, dtype)
        c = np.zeros(n_classes, dtype) if output_bias else None
    return Params(E=E, C=C, W=W, b=b, u=u, c=c)


# ---------------------------------------------------------------------------
# Reference path: gather -> forward -> loss_and_delta_s -> backward
# ---------------------------------------------------------------------------


def _check_batch(params: Params, ids: np.ndarray, casing: np.ndarray | None) -> None:
    for name, a in (("word", ids), ("casing", casing)):
        if a is not None and a.dtype.kind not in "iu":
            raise ModelError(
                f"{name} ids must be an integer array, got dtype {a.dtype}: build them with ner_window.windows"
            )
    if ids.ndim != 2 or ids.shape[1] != params.window:
        raise ModelError(
            f"the model expects windows of {params.window} tokens (radius {params.radius}), "
            f"got ids of shape {ids.shape}: build the windows with the radius the model was trained with"
        )
    if params.C is not None and (casing is None or casing.shape != ids.shape):
        got = None if casing is None else casing.shape
        raise ModelError(f"the model has casing vectors, so casing ids of shape {ids.shape} are needed (got {got})")


def gather(params: Params, ids: np.ndarray, casing: np.ndarray | None = None) -> np.ndarray:
    """X (B, D): row i is x for window i, [e(w-m); c(w-m); ...; e(w+m); c(w+m)].

    ids, casing: (B, w) int word / casing ids (casing ignored when the model has no C).
    """
    _check_batch(params, ids, casing)
    B, w = ids.shape
    if params.C is None:
        return np.take(params.E, ids, axis=0).reshape(B, w * params.d)
    # position-major: each token's word vector is followed by its casing vector
    return np.concatenate([params.E[ids], params.C[casing]], axis=2).reshape(B, -1)


def affine_forward(x: np.ndarray, W: np.ndarray, b: np.ndarray | None) -> tuple[np.ndarray, tuple]:
    """z = W x + b for every row x of x: Z = x Wᵀ + b.

    x: (B, D_in); W: (D_out, D_in); b: (D_out,) or None.
    Returns z (B, D_out) and cache (x, W) for affine_backward.
    """
    z = x @ W.T
    if b is not None:
        z += b
    return z, (x, W)


def affine_backward(
    delta: np.ndarray, cache: tuple, need_dx: bool = True
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Step 4 for any affine layer: from δ = ∂J/∂z (B, D_out) to (dx, dW, db).

    dx = δ W (B, D_in) (None unless need_dx);  dW = δᵀ x (D_out, D_in);  db = Σ_rows δ (D_out,).
    """
    x, W = cache
    dx = delta @ W if need_dx else None
    dW = delta.T @ x
    db = delta.sum(axis=0)
    return dx, dW, db


def _output_layer(params: Params) -> tuple[np.ndarray, np.ndarray | None]:
    """The output layer as a matrix: U (n_out, H) and c (n_out,) or None; n_out = 1 for binary (views)."""
    U = params.u.reshape(-1, params.hidden)
    c = None if params.c is None else params.c.reshape(-1)
    return U, c


class Cache(NamedTuple):
    """What backward needs from forward: X (B, D), h (B, H), and the activation name."""

    X: np.ndarray
    h: np.ndarray
    activation: str


def forward(params: Params, X: np.ndarray, activation: str) -> tuple[np.ndarray, Cache]:
    """Scores s for a batch: s (B,) binary or (B, n_classes) multiclass, and the cache.

    X: (B, D) from gather().
    """
    check_activation(activation)
    z, _ = affine_forward(X, params.W, params.b)  # z = W x + b        (B, H)
    h = ACTIVATIONS[activation](z)  # h = f(z), in place: f' is computed from h, z is not needed
    U, c = _output_layer(params)
    s, _ = affine_forward(h, U, c)  # s = uᵀh + c      (B, n_out)
    if params.task == "binary":
        s = s[:, 0]
    return s, Cache(X=X, h=h, activation=activation)


@dataclass(kw_only=True, eq=False)
class Grads:
    """∂J/∂θ for every parameter, each with its parameter's shape; None where not applicable.

    dE is sparse: the gradient row dE_values[k] (d,) belongs to row dE_rows[k] of E;
    rows absent from dE_rows have gradient 0.  densify_rows() makes it (V, d).
    """

    dW: np.ndarray
    db: np.ndarray
    du: np.ndarray
    dc: np.ndarray | None
    dC: np.ndarray | None
    dE_rows: np.ndarray | None
    dE_values: np.ndarray | None

    def dense(self, params: Params) -> dict[str, np.ndarray]:
        """Gradients by parameter name ("E", "C", "W", "b", "u", "c"), dE densified to E's shape."""
        out = {"W": self.dW, "b": self.db, "u": self.du}
        if self.dc is not None:
            out["c"] = self.dc
        if self.dC is not None:
            out["C"] = self.dC
        if self.dE_rows is not None:
            out["E"] = densify_rows(self.dE_rows, self.dE_values, params.E.shape[0])
        return out


def scatter_rows(ids: np.ndarray, dx_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Step 5: add each gradient row to the id it came from; repeated ids are summed.

    ids: (n,) int; dx_rows: (n, k), row j is ∂J/∂(copy j of row ids[j]).
    Returns rows (r,) the distinct ids, sorted, and values (r, k) their summed gradients.
    """
    rows, inverse = np.unique(ids, return_inverse=True)
    values = np.zeros((rows.shape[0], dx_rows.shape[1]), dtype=dx_rows.dtype)
    np.add.at(values, inverse, dx_rows)  # unbuffered: values[inverse[j]] += dx_rows[j] for every j
    return rows, values


_PAIR_DTYPE = {np.dtype(np.float32): np.dtype(np.complex64), np.dtype(np.float64): np.dtype(np.complex128)}


def _add_rows_at(A: np.ndarray, index: np.ndarray, rows: np.ndarray) -> None:
    """np.add.at(A, index, rows), fast: A[index[j]] += rows[j] for every j, repeats summed.

    np.add.at on a 2-D A costs ~0.4 µs per row (measured: 120 µs for 320 rows);
    the same call on flat element indices takes numpy's 1-D fast path (~20 µs).
    Element (i, k) of a C-contiguous (n, d) array is flat i*d + k.  (The fast path's
    scatter; the reference path keeps the plain np.add.at, and the tests compare them.)
    """
    if not A.flags.c_contiguous:
        raise ValueError("_add_rows_at needs a C-contiguous target (a reshape would copy and lose the update)")
    rows = np.ascontiguousarray(rows, dtype=A.dtype)
    if A.shape[1] % 2 == 0 and A.dtype in _PAIR_DTYPE:
        # Complex addition adds real and imaginary parts separately, so viewing each
        # pair of floats as one complex number gives the same sums with half as many
        # scalar updates for np.add.at (measured 18 µs instead of 27 µs for 320 × 50).
        A, rows = A.view(_PAIR_DTYPE[A.dtype]), rows.view(_PAIR_DTYPE[A.dtype])
    n, d = index.shape[0], A.shape[1]
    flat = np.repeat(index.astype(np.intp) * d, d)  # i*d, d times for each i ...
    flat += _tiled_arange(n, d)  # ... plus 0, 1, ..., d-1
    np.add.at(A.reshape(-1), flat, rows.reshape(-1))


def densify_rows(rows: np.ndarray, values: np.ndarray, n_rows: int) -> np.ndarray:
    """Sparse (rows (r,), values (r, k)) -> dense (n_rows, k), zero where no row is given."""
    dense = np.zeros((n_rows, values.shape[1]), dtype=values.dtype)
    np.add.at(dense, rows, values)
    return dense


def backward(
    params: Params,
    cache: Cache,
    delta_s: np.ndarray,
    ids: np.ndarray,
    casing: np.ndarray | None,
    *,
    train_E: bool,
    lam: float,
    regularize_E: bool,
) -> Grads:
    """Steps 2-5 of the derivation plus L2: every ∂J/∂θ from δs.

    delta_s: (B,) binary or (B, n_classes), from loss_and_delta_s.  ids, casing: (B, w).
    dE is computed only when train_E; dC whenever the model has casing vectors.
    With lam > 0, adds λW, λu and (regularize_E) λE_r for the distinct rows r used.
    """
    X, h, activation = cache
    B = X.shape[0]
    U, c = _output_layer(params)
    # step 2: ∂J/∂u = hᵀδs, ∂J/∂c = Σ δs, ∂J/∂h = δs uᵀ (a row per example)
    dh, dU, dc = affine_backward(delta_s.reshape(B, -1), (h, U))
    # step 3: δ = (u δs) ∘ f'(z), computed once (in place in dh)
    delta = DERIVATIVES[activation](h, dh)
    # step 4: ∂J/∂W = Δᵀ X, ∂J/∂b = Δᵀ1, ∂J/∂X = Δ W -- the last only if someone needs it:
    # E trained, or casing vectors (always trained).  Frozen E and no C: skip the product.
    need_dx = train_E or params.C is not None
    dX, dW, db = affine_backward(delta, (X, params.W), need_dx)
    du = dU.reshape(params.u.shape)
    dc = None if c is None else dc.reshape(params.c.shape)
    if lam:
        dW += lam * params.W  # ∂/∂W of λ/2‖W‖²
        du += lam * params.u
    # step 5: scatter ∂J/∂x back to the rows of E and C it was gathered from
    dC = dE_rows = dE_values = None
    if need_dx:
        d = params.d
        dX3 = dX.reshape(B, params.window, d + params.d_c)  # (B, w, d + d_c): per token
        if train_E:
            dE_rows, dE_values = scatter_rows(ids.reshape(-1), dX3[:, :, :d].reshape(-1, d))
            if lam and regularize_E:
                dE_values += lam * params.E[dE_rows]  # penalty over the distinct rows used
        if params.C is not None:
            rows_C, values_C = scatter_rows(casing.reshape(-1), dX3[:, :, d:].reshape(-1, params.d_c))
            dC = densify_rows(rows_C, values_C, params.C.shape[0])  # C is small: dense
    return Grads(dW=dW, db=db, du=du, dc=dc, dC=dC, dE_rows=dE_rows, dE_values=dE_values)


def l2_penalty(params: Params, lam: float, rows_E: np.ndarray | None = None) -> float:
    """λ/2 (‖W‖² + ‖u‖² + Σ_{r ∈ rows_E} ‖E_r‖²), a python float.

    rows_E: the E rows a batch uses (repeats are counted once), or None when word
    vectors are not regularised.  Biases and C are never in the penalty.
    """
    if not lam:
        return 0.0
    total = _sq(params.W) + _sq(params.u)
    if rows_E is not None:
        total += _sq(params.E[np.unique(rows_E)])
    return 0.5 * lam * total


def _sq(a: np.ndarray) -> float:
    """‖a‖² (sum of squares of all entries) as a python float."""
    flat = a.reshape(-1)
    return float(flat @ flat)


# ---------------------------------------------------------------------------
# Fast path.  The same equations as above, fused into one function for training
# and one for inference.  Speed comes from: scratch buffers reused across calls
# (no allocation per batch), gathering with np.take(out=), activations and
# derivatives in place with f' taken from h, no ∂J/∂X at all when E is frozen
# (only the casing columns when there are casing vectors), δs scaled by −lr once
# so that every product is already the SGD step, a flat np.add.at for the
# sparse E update, and W stored column-major (see Params).  Python floats (never
# np.float64 scalars) multiply float32 arrays, so nothing is upcast to float64.
# What is left after the products is per-call overhead of ~30 small numpy calls;
# kernels.py (numba) removes most of it: 134 -> 97 µs a frozen-E step, 198 -> 147
# fine-tuned (batch 64, d = 50, H = 100, float32, one BLAS thread, BENCHMARKS.md).
#
# BLAS threads.  For training they are the caller's choice.  Measured on 2 idle
# cores (float32, d=50, H=100, radius 2, batch 64): OpenBLAS's default 2 threads
# train ~10% faster than 1, but when other processes keep the cores busy its
# spinning worker threads collapse (30-50k windows/s instead of ~400k);
# `threadpoolctl.threadpool_limits(1, "blas")` around training avoids that (train.py
# does, see train.blas_threads).  Inference uses the cores its own way: predict_proba
# runs independent chunks in threads, each with one BLAS thread.
# ---------------------------------------------------------------------------

_scratch = threading.local()


def _buffer(name: str, shape: tuple, dtype: np.dtype) -> np.ndarray:
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


def _constant(name: str, key: tuple, build: Callable[[], np.ndarray]) -> np.ndarray:
    """build() for (name, key), cached in this thread and made read-only (64 entries a name at most)."""
    cache = _scratch.__dict__.setdefault(name, {})
    a = cache.get(key)
    if a is None:
        if len(cache) >= 64:
            cache.clear()
        a = cache[key] = build()
        a.flags.writeable = False
    return a


def _casing_columns(w: int, d: int, d_c: int) -> np.ndarray:
    """(w*d_c,) intp: the columns of X (and W) that hold casing vectors (cached, read-only)."""
    return _constant("casing_columns", (w, d, d_c),
                     lambda: (np.arange(w)[:, None] * (d + d_c) + d + np.arange(d_c)).reshape(-1))


def _tiled_arange(n: int, d: int) -> np.ndarray:
    """(n*d,) intp: 0, 1, ..., d-1 repeated n times (cached, read-only)."""
    return _constant("aranges", (n, d), lambda: np.tile(np.arange(d, dtype=np.intp), n))


def _gather_into(params: Params, ids: np.ndarray, casing: np.ndarray | None, X: np.ndarray) -> np.ndarray:
    """gather() into the preallocated X (B, D), for ids already range-checked (_check_ids_range).

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
        e, c = _buffer("gather_e", (B, w, d), dt), _buffer("gather_c", (B, w, d_c), dt)
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
    return ACTIVATIONS[activation](z)


def _scores_into(h: np.ndarray, U: np.ndarray, c: np.ndarray | None, s: np.ndarray) -> np.ndarray:
    """s = h Uᵀ + c into the preallocated s (B, n_out)."""
    np.matmul(h, U.T, out=s)
    if c is not None:
        s += c
    return s


def _check_ids_range(params: Params, ids: np.ndarray, casing: np.ndarray | None) -> None:
    """ModelError if an id is outside E (or a casing id outside C)."""
    checks = [("word", ids, params.E.shape[0])]
    if params.C is not None:
        checks.append(("casing", casing, params.C.shape[0]))
    for name, a, n in checks:
        if a.size and (a.min() < 0 or a.max() >= n):
            raise ModelError(
                f"{name} ids must lie in [0, {n}) but range over [{a.min()}, {a.max()}]: "
                "the windows were built with another vocabulary"
            )


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
        _check_ids_range(params, ids, casing)  # raises the ModelError that names the cause
    return X


def make_velocity(params: Params) -> dict[str, np.ndarray]:
    """Zero momentum buffers for W, b, u, c, C (those present), keyed by parameter name.

    E has none: E gets plain sparse SGD, because a velocity for E would be a dense
    (V, d) array that keeps moving every row it ever touched at every later step
    (v decays but is not 0) -- a V-row update per step instead of a ≤ B·w-row one.
    """
    names = [name for name in ("W", "b", "u", "c", "C") if getattr(params, name) is not None]
    return {name: np.zeros_like(getattr(params, name)) for name in names}


def _apply_step(theta: np.ndarray, step: np.ndarray, lr_lam: float, momentum: float, v: np.ndarray | None) -> None:
    """Update theta in place, given step = −lr ∂J_data/∂θ and lr_lam = lr·λ (0 for no L2).

    plain SGD:           θ ← θ − lr (∂J_data/∂θ + λθ)  =  (1 − lr λ) θ + step
    classical momentum:  v ← μ v − lr (∂J_data/∂θ + λθ) =  μ v + step − lr λ θ;   θ ← θ + v
    """
    if v is None:
        if lr_lam:
            theta *= 1.0 - lr_lam
        theta += step
    else:
        v *= momentum
        v += step
        if lr_lam:
            v -= lr_lam * theta
        theta += v


def _shrink_rows(E: np.ndarray, ids: np.ndarray, lr: float, lam_E: float) -> float:
    """The L2 part of E's sparse step: E_r ← (1 − lr λ) E_r once per DISTINCT row r in ids.

    The penalty is over the distinct rows a batch uses, so a row used twice shrinks
    once.  Returns Σ_r ‖E_r‖² before the update (for J).  ids: (B, w) int.
    """
    rows = np.unique(ids)
    E_rows = E[rows]
    sq = _sq(E_rows)
    E[rows] = E_rows * (1.0 - lr * lam_E)
    return sq


def _scatter_into(kern, table: np.ndarray, ids: np.ndarray, dX: np.ndarray, offset: int, stride: int) -> None:
    """Step 5: table[ids[i, t]] += dX[i, t*stride + offset : ... + k], repeats summed.

    table (n, k) E or C; ids (B, w); dX (B, w*stride) C-contiguous, e.g. −lr ∂J/∂X with
    stride d + d_c.  kern: ner_window.kernels (compiled loop), or None for numpy's flat np.add.at.
    """
    if kern is not None:
        kern.scatter_add_rows(table, ids, dX, offset, stride)
    else:
        B, w = ids.shape
        _add_rows_at(table, ids.reshape(-1), dX.reshape(B * w, stride)[:, offset : offset + table.shape[1]])


def train_step(
    params: Params,
    ids: np.ndarray,
    casing: np.ndarray | None,
    y: np.ndarray,
    *,
    lr: float,
    activation: str,
    loss: str,
    pos_weight: float = 1.0,
    lam: float = 0.0,
    train_E: bool = False,
    regularize_E: bool = False,
    momentum: float = 0.0,
    velocity: dict[str, np.ndarray] | None = None,
) -> float:
    """One SGD step on a batch, in place.  Returns the batch objective J = J_data + L2
    penalty, evaluated at the parameters BEFORE the update (what backward differentiates).

    ids, casing: (B, w) int (casing may be None without casing vectors); y: (B,) int.
    The maths of gather -> forward -> loss_and_delta_s -> backward -> θ ← θ − lr ∂J/∂θ,
    fused.  momentum > 0 needs velocity = make_velocity(params), updated in place; rows
    of E always get plain sparse SGD (see make_velocity).  Only E rows used by the
    batch change.  With numba installed, the small work between the BLAS products runs
    as compiled loops (kernels.py); the numpy lines below are the same maths.
    """
    check_activation(activation)
    check_loss(loss, params.task)
    if momentum and velocity is None:
        raise ValueError("momentum > 0 needs velocity=make_velocity(params)")
    _check_batch(params, ids, casing)
    kern = _fast_kernels()  # ner_window.kernels, or None
    lr, lam, momentum = float(lr), float(lam), float(momentum)
    B, w = ids.shape
    W = params.W
    H, D = W.shape
    n_out, d, d_c = params.n_classes, params.d, params.d_c
    U, c = _output_layer(params)
    buf = _train_buffers(params, B)

    # forward (gather, forward): X, then z -> h in place
    if kern is None:
        _check_ids_range(params, ids, casing)  # _gather_into trusts the ids
        X = _gather_into(params, ids, casing, buf.X)
        h = _hidden_into(X, W.T, params.b, activation, buf.z)
    else:
        X = _gather_compiled(kern, params, ids, casing, buf.X)
        h = np.matmul(X, W.T, out=buf.z)
        kern.add_bias(h, params.b)
        ACTIVATIONS[activation](h)

    # steps 1-3: J_data and δs; δ = (u δs) ∘ f'(z).  Every gradient below is linear in
    # δs, so scaling δs by −lr once makes each product below the SGD step −lr ∂J_data/∂θ.
    delta = buf.delta
    if kern is not None and n_out == 1:
        J_data, step_c = kern.binary_head(
            h, params.u, 0.0 if c is None else float(params.c), y, float(pos_weight), lr,
            kern.LOSS_CODES[loss], kern.ACTIVATION_CODES[activation],
            buf.t, delta, buf.step_b, buf.step_u,
        )
        step_b, step_u = buf.step_b, buf.step_u
    elif kern is not None:  # multiclass: softmax + cross-entropy
        J_data = kern.softmax_head(
            h, U, buf.no_bias if c is None else c, y, float(pos_weight), lr,
            kern.ACTIVATION_CODES[activation], buf.t, delta, buf.step_b, buf.step_u, buf.step_c,
        )
        step_b, step_u, step_c = buf.step_b, buf.step_u, buf.step_c
    else:
        s = _scores_into(h, U, c, buf.s)
        J_data, delta_s = loss_and_delta_s(s[:, 0] if n_out == 1 else s, y, loss, pos_weight)
        step_s = delta_s.reshape(B, n_out) * -lr
        if n_out == 1:
            np.multiply(step_s, U, out=delta)  # the outer product (B,1)(1,H): no BLAS call needed
        else:
            np.matmul(step_s, U, out=delta)
        DERIVATIVES[activation](h, delta, buf.work)
        # steps 2 and 4: −lr times ∂J/∂b = Δᵀ1, ∂J/∂u = hᵀ δs, ∂J/∂c = Σ δs
        step_b = np.add.reduce(delta, axis=0)
        step_u = (step_s.T @ h).reshape(params.u.shape)
        step_c = None if c is None else step_s.sum(axis=0).reshape(params.c.shape)

    # step 4, ∂J/∂X = Δ W, BEFORE W changes, and only the columns that will be used
    if train_E:
        dX = np.matmul(delta, W, out=buf.dX)  # (B, D): token t of window i at columns t(d + d_c) ...
        casing_cols = (dX, d, d + d_c)
    elif d_c:
        # frozen E: just the casing columns, Δ (W's casing columns)
        casing_cols = (delta @ np.take(W, _casing_columns(w, d, d_c), axis=1), 0, d_c)

    J = J_data + (0.5 * lam * (_sq(W) + _sq(U)) if lam else 0.0)  # penalty before the update

    # step 4: −lr ∂J/∂W = Δᵀ X; then every dense parameter takes its step
    vel = velocity if momentum else {}
    _apply_step(W, np.matmul(delta.T, X, out=buf.dW), lr * lam, momentum, vel.get("W"))
    _apply_step(params.b, step_b, 0.0, momentum, vel.get("b"))
    _apply_step(params.u, step_u, lr * lam, momentum, vel.get("u"))
    if c is not None:
        _apply_step(params.c, step_c, 0.0, momentum, vel.get("c"))

    # step 5: scatter the rows of ∂J/∂X into C (dense: K is tiny) and E (sparse)
    if d_c:
        dC = np.zeros_like(params.C)
        _scatter_into(kern, dC, casing, *casing_cols)
        _apply_step(params.C, dC, 0.0, momentum, vel.get("C"))
    if train_E:
        if lam and regularize_E:
            J += 0.5 * lam * _shrink_rows(params.E, ids, lr, lam)
        _scatter_into(kern, params.E, ids, dX, 0, d + d_c)
    return J


def predict_proba(
    params: Params,
    ids: np.ndarray,
    casing: np.ndarray | None,
    activation: str,
    batch_size: int = 4096,
    threads: int | None = None,
) -> np.ndarray:
    """p for every window: (N,) P(positive) binary, (N, n_classes) multiclass; params' dtype.

    ids, casing: (N, w) int.  forward() in chunks of batch_size through reused
    buffers; no loss, no cache.  The chunks are independent, so up to ``threads`` of
    them (default: one per CPU, at most 4) run at once, each in its own Python thread
    with its own buffers: numpy releases the GIL inside np.take, the matrix product
    and the ufuncs.  BLAS meanwhile keeps to one thread per product.  Two chunks on
    two cores beat OpenBLAS splitting each product in two (2 idle cores, batch 4096:
    ~2.0M windows/s against ~1.6M), and when another process holds a core they lose
    that core's share only, where OpenBLAS's spinning threads run 3x slower or worse.
    """
    check_activation(activation)
    _check_batch(params, ids, casing)
    _check_ids_range(params, ids, casing)
    N = ids.shape[0]
    dt = params.dtype
    H, D, n_out = params.hidden, params.W.shape[1], params.n_classes
    U, c = _output_layer(params)
    # X @ Wᵀ with Wᵀ contiguous runs ~1.5× faster than with the transposed view (OpenBLAS, measured)
    WT = np.ascontiguousarray(params.W.T)
    p = np.empty((N,) if n_out == 1 else (N, n_out), dtype=dt)

    def forward_chunk(start: int) -> None:
        stop = min(N, start + batch_size)
        B = stop - start
        cas = None if casing is None else casing[start:stop]
        X = _gather_into(params, ids[start:stop], cas, _buffer("pX", (B, D), dt))
        h = _hidden_into(X, WT, params.b, activation, _buffer("pz", (B, H), dt))
        s = _scores_into(h, U, c, _buffer("ps", (B, n_out), dt))
        if n_out == 1:
            sigmoid(s[:, 0], out=p[start:stop])
        else:
            p[start:stop] = softmax(s)

    starts = range(0, N, batch_size)
    threads = min(len(starts), min(4, os.cpu_count() or 1) if threads is None else threads)
    one_blas_thread = _one_blas_thread() if threads > 1 else None
    if one_blas_thread is None:
        for start in starts:
            forward_chunk(start)
        return p
    from concurrent.futures import ThreadPoolExecutor  # lazy: a sentence needs no threads

    with one_blas_thread, ThreadPoolExecutor(threads) as pool:
        list(pool.map(forward_chunk, starts))  # list(): re-raises a chunk's exception here
    return p


def _one_blas_thread():
    """A context that holds BLAS to one thread (threadpoolctl), or None without threadpoolctl."""
    try:
        from threadpoolctl import threadpool_limits  # comes with scikit-learn
    except ImportError:
        return None
    return threadpool_limits(limits=1, user_api="blas")
