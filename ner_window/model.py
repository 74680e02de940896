"""The window classifier of CS224N lecture 3, with backpropagation written by hand.

The reference path: each equation below is one line of code, in the lecture's names.
fast.py runs the same lines fused for training and tagging (its docstring maps each
fused line to the line here it computes); optim.py turns gradients into updates.
Shapes: B windows in a batch, w = 2m+1 tokens a window (m = radius), word vectors of
size d, casing vectors of size d_c, D = w(d + d_c), H hidden units, V words, K casing classes.

The model, for one window (binary task: is the centre word a location?)
-----------------------------------------------------------------------
    x = [e(w-m); c(w-m); ...; e(w+m); c(w+m)]   (D,)   gather()   (the c(.) only with casing vectors C)
    z = W x + b                                 (H,)   forward()
    h = f(z)                                    (H,)   forward(), ACTIVATIONS[f]
    s = uᵀh + c                                 ()     forward()
    p = σ(s)                                    ()     probabilities()
    J = ℓ(s, y) + L2 penalty                           loss_and_delta_s() (COSTS[loss].fn), l2_penalty()

Multiclass changes only the output layer: U (n_classes, H) (stored as ``u``),
c (n_classes,), s = U h + c, p = softmax(s), ℓ = -log p_y.

Backward, step by step (shape convention: a gradient has its parameter's shape)
------------------------------------------------------------------------------
Step 1, J -> s.  δs = ∂J/∂s.                    loss_and_delta_s(), COSTS[loss].delta
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
Step 2, s -> u, c, h.  s = uᵀh + c is linear in each of them:            backward()
    ∂J/∂u = δs h,   ∂J/∂c = δs,   ∂J/∂h = u δs.   (multiclass: ∂J/∂U = δs hᵀ, ∂J/∂h = Uᵀδs)
Step 3, h -> z.  h = f(z) elementwise, so its Jacobian is diagonal:      backward(), DERIVATIVES[f]
    δ = ∂J/∂z = (u δs) ∘ f'(z)      -- the error signal, computed ONCE and reused in step 4.
    f' is written with h = f(z), which the forward pass already has:
    σ'(z) = h(1 - h),   tanh'(z) = 1 - h²,   relu'(z) = [h > 0].
Step 4, z -> W, b, x.  z_j = Σ_k W_jk x_k + b_j, so:                     backward()
    ∂J/∂W_jk = δ_j x_k, i.e. ∂J/∂W = δ xᵀ (H, D);   ∂J/∂b = δ (H,);
    ∂J/∂x_k = Σ_j W_jk δ_j, i.e. ∂J/∂x = Wᵀ δ (D,).
Step 5, x -> E, C.  x is a copy of rows of E (and of C), so each d-slice of ∂J/∂x is
    ADDED to the row it was copied from.  Added, not assigned: a word used twice, in one
    window or in two, affects J through both copies, and the chain rule sums over them.
    Only the rows the batch used get a gradient, so dE is sparse: (rows, values).
    scatter_rows().

The minibatch.  Rows are examples: X (B, D) stacks the xᵢᵀ.  Transposing z = W x + b
gives, for all rows at once, Z = X Wᵀ + b (B, H) [`z` in the code]; then h = f(Z) (B, H),
s = h u + c (B,), and the error signals stack the same way: Δ = (δs uᵀ) ∘ f'(Z) (B, H)
[`delta`], row i = δᵢᵀ.  J sums over examples, so gradients sum over examples:
    ∂J/∂W = Σᵢ δᵢ xᵢᵀ = Δᵀ X      (H, B)(B, D) = (H, D): one matrix product, no loop
    ∂J/∂b = Σᵢ δᵢ = Δᵀ 1           (the column sums of Δ)
    ∂J/∂u = Σᵢ δsᵢ hᵢ = hᵀ δs,     ∂J/∂c = Σᵢ δsᵢ
    ∂J/∂X = Δ W                    (B, H)(H, D) = (B, D), row i = (Wᵀ δᵢ)ᵀ

L2.  J = J_data + λ/2 (‖W‖² + ‖u‖² [+ Σ_{r∈R} ‖E_r‖²]) adds λW, λu [and λE_r] to the
gradients.  Not regularised: the biases b, c (a bias multiplies no input, so shrinking it
does not make the function smoother) and the casing vectors C (not in the issue's
penalty; each of their K ≈ 8 rows is seen in nearly every batch).  When word vectors are
regularised, R is the set of DISTINCT rows of E the batch uses: the penalty changes from
batch to batch, but the update stays sparse (a penalty over all V rows would move every
row of E at every step).                                                     l2_penalty()
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, NamedTuple

import numpy as np

from ner_window.errors import ConfigError, ModelError
from ner_window.windows import check_window_ids, check_window_shape

TASKS = ("binary", "multiclass")
PARAM_NAMES = ("E", "C", "W", "b", "u", "c", "A")


# --- Activations f and derivatives f', in tables (as scikit-learn's neural_network/_base.py) ---
# Each takes an optional ``out``: the fast path computes h over z, and f'(z) into scratch.


def sigmoid(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """σ(z) = 1 / (1 + exp(-z)), elementwise.  For z ≲ -88 (float32) exp(-z) overflows to
    inf and 1/(1+inf) = 0 is exactly the right limit, so the warning is silenced."""
    out = np.negative(z, out=out)
    with np.errstate(over="ignore"):
        np.exp(out, out=out)
    out += 1.0
    return np.reciprocal(out, out=out)


def sigmoid_derivative(h: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """σ'(z) = h(1 - h), from h = σ(z)."""
    out = np.subtract(1.0, h, out=out)
    out *= h
    return out


def tanh_derivative(h: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """tanh'(z) = 1 - h², from h = tanh(z)."""
    out = np.multiply(h, h, out=out)
    return np.subtract(1.0, out, out=out)


def relu_derivative(h: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """relu'(z) = [z > 0] = [h > 0] (relu'(0) is taken as 0), as 0.0 / 1.0 in h's dtype."""
    return (h > 0).astype(h.dtype) if out is None else np.greater(h, 0.0, out=out)


# f(z, out=None) -> h and f'(h, out=None) -> f'(z): (B, H) -> (B, H)
ACTIVATIONS: dict[str, Callable[..., np.ndarray]] = {
    "sigmoid": sigmoid,
    "tanh": lambda z, out=None: np.tanh(z, out=out),
    "relu": lambda z, out=None: np.maximum(z, 0.0, out=out),
}
DERIVATIVES: dict[str, Callable[..., np.ndarray]] = {
    "sigmoid": sigmoid_derivative,
    "tanh": tanh_derivative,
    "relu": relu_derivative,
}


def check_activation(activation: str) -> None:
    """Raise ConfigError unless ``activation`` is a key of ACTIVATIONS."""
    if activation not in ACTIVATIONS:
        raise ConfigError(f"unknown activation {activation!r} (config key 'activation'): "
                          f"use one of {', '.join(ACTIVATIONS)}")


# --- Output probabilities and costs (Nielsen network2 style: a cost owns fn and delta) ---------


def softmax(s: np.ndarray) -> np.ndarray:
    """p = softmax(s) row-wise, (B, n_classes) -> (B, n_classes).  Subtracting each row's
    max first leaves p unchanged (it cancels in the ratio) and keeps exp from overflowing."""
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


class Cost(NamedTuple):
    """One loss of one task: ``fn(s, p, y)`` -> per-example ℓ_i (B,); ``delta(s, p, y)`` -> ∂ℓ_i/∂s_i;
    y is float 0/1 (B,) for the binary costs and a one-hot (B, n_classes) for "ce"."""

    task: str
    fn: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
    delta: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


COSTS: dict[str, Cost] = {
    # ℓ = softplus(s) - y s, from s (see module docstring, step 1); δs = p - y
    "bce": Cost("binary", fn=lambda s, p, y: np.logaddexp(0.0, s) - y * s, delta=lambda s, p, y: p - y),
    # ℓ = (p - y)²; δs = 2(p - y) · p(1 - p)
    "squared": Cost("binary", fn=lambda s, p, y: (p - y) ** 2, delta=lambda s, p, y: 2.0 * (p - y) * p * (1.0 - p)),
    # ℓ = logsumexp(s) - s_y; δs = p - y (one-hot) -- softmax and CE simplify together
    "ce": Cost("multiclass", fn=lambda s, p, y: _logsumexp(s) - (s * y).sum(axis=1), delta=lambda s, p, y: p - y),
}
LOSSES: dict[str, tuple[str, ...]] = {task: tuple(k for k, c in COSTS.items() if c.task == task) for task in TASKS}
BINARY_LOSSES, MULTICLASS_LOSSES = LOSSES["binary"], LOSSES["multiclass"]


def check_loss(loss: str, task: str) -> None:
    """Raise ConfigError unless ``loss`` is a loss of ``task``."""
    if loss not in LOSSES[task]:
        raise ConfigError(f"loss {loss!r} does not fit the {task} task (config key 'loss'): "
                          f"use one of {', '.join(LOSSES[task])}")


def loss_and_delta_s(s: np.ndarray, y: np.ndarray, loss: str = "bce", pos_weight: float = 1.0) -> tuple[float, np.ndarray]:
    """The data loss and δs = ∂J_data/∂s for a batch (step 1 of the derivation).

    s: (B,) binary or (B, n_classes) multiclass scores; y: (B,) int labels, 0/1 or class indices.
    Returns J_data = Σ ω_i ℓ_i / Σ ω_i (a python float) and δs, shaped like s.
    """
    task = "binary" if s.ndim == 1 else "multiclass"
    check_loss(loss, task)
    cost = COSTS[loss]
    p = probabilities(s)
    target = y.astype(s.dtype) if task == "binary" else np.eye(s.shape[1], dtype=s.dtype)[y]  # y one-hot
    ell = cost.fn(s, p, target)  # (B,)
    delta_s = cost.delta(s, p, target)
    if pos_weight == 1.0:
        total = s.shape[0]
        J_data = float(ell.sum()) / total
    else:
        omega = np.where(y != 0, pos_weight, 1.0).astype(s.dtype, copy=False)  # ωᵢ: pos_weight if yᵢ != 0
        total = float(omega.sum())
        J_data = float(omega @ ell) / total
        delta_s *= omega if task == "binary" else omega[:, None]
    delta_s /= total  # the mean: ∂/∂s_i of (1/Σω) Σ ω_j ℓ_j
    return J_data, delta_s


# --- Parameters --------------------------------------------------------------------------------


@dataclass(kw_only=True, eq=False)
class Params:
    """All trainable arrays, one dtype (float32 or float64).

    E (V, d) word vectors; C (K, d_c) casing vectors or None; W (H, D), D = w(d + d_c);
    b (H,); u (H,) binary or (n_classes, H) multiclass ("U"); c () binary,
    (n_classes,) multiclass, or None (no output bias); A (n_classes + 1, n_classes) the tag
    transitions of a sentence-level model (sentence.py: n_classes = T tags), None for a window model.

    W is stored column-major (init_params and from_dict make it so): the same (H, D) matrix
    to every line of code, but both training products Z = X Wᵀ and ΔW = Δᵀ X then run as
    OpenBLAS's fastest batch-64 kernels (X Wᵀ, W row-major: 45 µs instead of 36).
    """

    E: np.ndarray
    C: np.ndarray | None
    W: np.ndarray
    b: np.ndarray
    u: np.ndarray
    c: np.ndarray | None
    A: np.ndarray | None = None

    dtype = property(lambda self: self.W.dtype)
    d = property(lambda self: self.E.shape[1])
    d_c = property(lambda self: 0 if self.C is None else self.C.shape[1])
    window = property(lambda self: self.W.shape[1] // (self.d + self.d_c), doc="w = 2m + 1 tokens per window")
    radius = property(lambda self: (self.window - 1) // 2)
    hidden = property(lambda self: self.W.shape[0])
    n_classes = property(lambda self: 1 if self.u.ndim == 1 else self.u.shape[0], doc="1 for the binary task")
    task = property(lambda self: "binary" if self.u.ndim == 1 else "multiclass", doc="of a window model")
    output = property(lambda self: "window" if self.A is None else "sentence")

    def to_dict(self) -> dict[str, np.ndarray]:
        """{"E", "C", "W", "b", "u", "c", "A"} -> arrays (absent parameters left out), e.g. for np.savez."""
        return {name: getattr(self, name) for name in PARAM_NAMES if getattr(self, name) is not None}

    @classmethod
    def from_dict(cls, arrays: Mapping[str, np.ndarray], source: str = "parameters",
                  sizes: Mapping[str, int] | None = None) -> Params:
        """Build Params from a mapping such as ``np.load("params.npz")``; checks every shape
        (check_shapes, with ``sizes``).  Raises ModelError naming ``source`` and the array."""
        missing = [k for k in ("E", "W", "b", "u") if k not in arrays]
        if missing:
            raise ModelError(f"{source}: missing array(s) {', '.join(missing)}; the model directory is "
                             "incomplete, save it again")
        unknown = sorted(set(arrays) - set(PARAM_NAMES))
        if unknown:
            raise ModelError(f"{source}: unknown array(s) {', '.join(unknown)}; expected only {', '.join(PARAM_NAMES)}")
        # np.require keeps a 0-d c as shape (); np.ascontiguousarray would make it (1,)
        got = {k: np.require(arrays[k], requirements="C") for k in PARAM_NAMES if k in arrays}
        dtype = got["W"].dtype
        for name, a in got.items():
            if a.dtype != dtype or a.dtype not in (np.float32, np.float64):
                raise ModelError(f"{source}: array {name!r} has dtype {a.dtype}, expected {dtype} "
                                 "(float32 or float64) like W")
        W = np.asfortranarray(got["W"])  # column-major, as init_params makes it (see Params)
        params = cls(E=got["E"], C=got.get("C"), W=W, b=got["b"], u=got["u"], c=got.get("c"), A=got.get("A"))
        check_shapes(params, source, sizes)
        return params

    def copy(self) -> Params:
        """A deep copy (the fast path updates in place)."""
        return Params(**{k: None if a is None else a.copy(order="K") for k, a in vars(self).items()})

    def astype(self, dtype) -> Params:
        """A copy with every array cast to ``dtype``."""
        return Params(**{k: None if a is None else a.astype(dtype) for k, a in vars(self).items()})


def check_shapes(p: Params, source: str, sizes: Mapping[str, int] | None = None) -> None:
    """The one shape check: every array of ``p`` against the others and against ``sizes`` (all
    optional: V words, radius, hidden, n_classes (1 = binary), K casing classes -- what a
    saved vocabulary and config say the arrays must be)."""
    given = dict(sizes or {})

    def bad(name: str, expected) -> ModelError:
        got = getattr(p, name).shape
        if not given:
            return ModelError(f"{source}: {name} has shape {got}, expected {expected}")
        what = ", ".join(f"{k} {v}" for k, v in given.items())
        return ModelError(f"{source}: {name} has shape {got} but the vocabulary and config ({what}) need "
                          f"{expected}; the files do not belong together, retrain the model")

    if p.E.ndim != 2:
        raise bad("E", "(V, d)")
    if p.C is not None and p.C.ndim != 2:
        raise bad("C", "(K, d_c)")
    d, d_c = p.d, p.d_c
    if p.W.ndim != 2 or p.W.shape[1] % (d + d_c) or p.window % 2 == 0:
        raise bad("W", f"(H, w*(d + d_c)) with odd w, d + d_c = {d + d_c}")
    V, H, w = given.get("V", p.E.shape[0]), given.get("hidden", p.hidden), 2 * given.get("radius", p.radius) + 1
    n = given.get("n_classes", p.n_classes)
    expected = {"E": (V, d), "W": (H, w * (d + d_c)), "b": (H,), "u": (H,) if n == 1 else (n, H),
                "C": (given.get("K", 0 if p.C is None else p.C.shape[0]), d_c), "c": () if n == 1 else (n,), "A": (n + 1, n)}
    for name, shape in expected.items():
        a = getattr(p, name)
        if a is not None and a.shape != shape:
            raise bad(name, shape)
    if p.u.ndim == 2 and p.u.shape[0] < 2:
        raise bad("u", f"({H},) binary or (n_classes >= 2, {H}) multiclass")


def glorot_uniform(rng: np.random.Generator, fan_out: int, fan_in: int, dtype) -> np.ndarray:
    """(fan_out, fan_in) ~ U(-a, a), a = sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010): the
    variance a²/3 = 2/(fan_in + fan_out) keeps activations and gradients of similar scale both ways."""
    a = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-a, a, size=(fan_out, fan_in)).astype(dtype)


def init_params(n_words: int, d: int, radius: int, hidden: int, *, n_casing: int = 0, d_c: int = 0,
                n_classes: int = 1, output_bias: bool = True, rng: np.random.Generator, dtype=np.float32,
                E: np.ndarray | None = None) -> Params:
    """Fresh parameters: Glorot-uniform W, u (and E, C unless given), zero biases.

    n_classes=1 is the binary task (u (H,), c (), sigmoid); n_classes >= 2 is multiclass
    (U (n_classes, H), c (n_classes,), softmax).  E given = pretrained vectors (n_words, d),
    copied and cast to ``dtype``.  A random E or C is a lookup layer whose input is one-hot
    (one active unit), so its Glorot range uses fan_in = 1: a = sqrt(6 / (1 + d)), ≈ 0.34
    for d = 50, similar in scale to GloVe components.
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ConfigError(f"dtype {dtype} is not supported (config key 'dtype'): use float32 or float64")
    if (n_casing > 0) != (d_c > 0):
        raise ConfigError(f"casing vectors need both n_casing and d_c > 0 (got n_casing={n_casing}, d_c={d_c}): "
                          "set both or neither")
    D = (2 * radius + 1) * (d + d_c)
    if E is None:
        E = (rng.uniform(-1.0, 1.0, (n_words, d)) * np.sqrt(6.0 / (1 + d))).astype(dtype)
    else:
        E = np.array(E, dtype=dtype, order="C", copy=True)
        if E.shape != (n_words, d):
            raise ConfigError(f"pretrained vectors have shape {E.shape}, expected (n_words, d) = ({n_words}, {d}): "
                              "check the embeddings dim")
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


# --- Reference path: gather -> forward -> loss_and_delta_s -> backward -------------------------


def gather(params: Params, ids: np.ndarray, casing: np.ndarray | None = None) -> np.ndarray:
    """X (B, D): row i is x for window i, [e(w-m); c(w-m); ...; e(w+m); c(w+m)].
    ids, casing: (B, w) int word / casing ids (casing ignored when the model has no C)."""
    check_window_shape(ids, casing, params.window, params.C is not None)
    check_window_ids(ids, casing, params.E.shape[0], None if params.C is None else params.C.shape[0])
    B, w = ids.shape
    if params.C is None:
        return params.E[ids].reshape(B, w * params.d)
    # position-major: each token's word vector is followed by its casing vector
    return np.concatenate([params.E[ids], params.C[casing]], axis=2).reshape(B, -1)


class Cache(NamedTuple):
    """What forward computed and backward needs: X (B, D), z and h (B, H), the activation's name."""

    X: np.ndarray
    z: np.ndarray
    h: np.ndarray
    activation: str


def forward(params: Params, X: np.ndarray, activation: str) -> tuple[np.ndarray, Cache]:
    """The network up to the scores: s (B,) binary or (B, n_classes) multiclass, and the cache.
    X: (B, D) from gather().  No loss here: loss_and_delta_s (or any other output loss)
    turns s into J and δs, and backward takes that δs."""
    check_activation(activation)
    W, b, u = params.W, params.b, params.u
    c = 0.0 if params.c is None else params.c  # no output bias: c = 0
    z = X @ W.T + b  # z = W x + b                                   (B, H), row i = zᵢᵀ
    h = ACTIVATIONS[activation](z)  # h = f(z)                       (B, H)
    if u.ndim == 1:
        s = h @ u + c  # s = uᵀh + c                                 (B,)
    else:
        s = h @ u.T + c  # s = U h + c                               (B, n_classes)
    return s, Cache(X=X, z=z, h=h, activation=activation)


@dataclass(kw_only=True, eq=False)
class Grads:
    """∂J/∂θ for every parameter, each with its parameter's shape (None where not applicable),
    and the error signals on the way: delta = δ = ∂J/∂z (B, H), dh = ∂J/∂h (B, H) and
    dX = ∂J/∂X (B, D), row i the ∂J/∂x of window i before it is scattered into E and C.
    dE is sparse: row dE_values[k] (d,) belongs to row dE_rows[k] of E (others: 0).
    """

    dW: np.ndarray
    db: np.ndarray
    du: np.ndarray
    dc: np.ndarray | None
    dC: np.ndarray | None
    dE_rows: np.ndarray | None
    dE_values: np.ndarray | None
    delta: np.ndarray
    dh: np.ndarray
    dX: np.ndarray

    def dense(self, params: Params) -> dict[str, np.ndarray]:
        """Gradients by parameter name ("E", "C", "W", "b", "u", "c"), dE densified to E's shape."""
        out = {k: g for k, g in (("W", self.dW), ("b", self.db), ("u", self.du), ("c", self.dc), ("C", self.dC))
               if g is not None}
        if self.dE_rows is not None:
            out["E"] = densify_rows(self.dE_rows, self.dE_values, params.E.shape[0])
        return out


def backward(params: Params, cache: Cache, delta_s: np.ndarray, ids: np.ndarray, casing: np.ndarray | None, *,
             train_E: bool, lam: float, regularize_E: bool) -> Grads:
    """Steps 2-5 of the derivation plus L2: every ∂J/∂θ from δs.

    delta_s: shaped like s, (B,) binary or (B, n_classes), e.g. from loss_and_delta_s.
    ids, casing: (B, w).  dE is computed only when train_E; dC whenever the model has
    casing vectors.  With lam > 0, adds λW, λu and (regularize_E) λE_r for the distinct rows r used.
    """
    X, z, h, activation = cache
    W, u = params.W, params.u
    if u.ndim == 1:  # binary: u (H,), δs (B,)
        dh = np.outer(delta_s, u)  # ∂J/∂h = u δs                    (B, H), row i = δsᵢ uᵀ
        du = h.T @ delta_s  # ∂J/∂u = Σᵢ δsᵢ hᵢ = hᵀ δs              (H,)
    else:  # multiclass: U (n_classes, H), δs (B, n_classes)
        dh = delta_s @ u  # ∂J/∂h = Uᵀ δs                            (B, H), row i = (Uᵀ δsᵢ)ᵀ
        du = delta_s.T @ h  # ∂J/∂U = Σᵢ δsᵢ hᵢᵀ                     (n_classes, H)
    dc = None if params.c is None else delta_s.sum(axis=0)  # ∂J/∂c = Σᵢ δsᵢ
    delta = dh * DERIVATIVES[activation](h)  # δ = ∂J/∂z = (u δs) ∘ f'(z)   (B, H)
    dW = delta.T @ X  # ∂J/∂W = Δᵀ X                                 (H, D)
    db = delta.sum(0)  # ∂J/∂b = Δᵀ 1                                (H,)
    dX = delta @ W  # ∂J/∂X = Δ W                                    (B, D), row i = (Wᵀ δᵢ)ᵀ
    if lam:
        dW += lam * W  # ∂/∂W of λ/2 ‖W‖²
        du += lam * u
    # step 5: scatter each token's slice of ∂J/∂x back into the row of E (and C) it came from
    B, d = X.shape[0], params.d
    dX3 = dX.reshape(B, params.window, d + params.d_c)  # (B, w, d + d_c): per token
    dC = dE_rows = dE_values = None
    if train_E:
        dE_rows, dE_values = scatter_rows(ids.reshape(-1), dX3[:, :, :d].reshape(-1, d))
        if lam and regularize_E:
            dE_values += lam * params.E[dE_rows]  # penalty over the distinct rows used
    if params.C is not None:
        rows_C, values_C = scatter_rows(casing.reshape(-1), dX3[:, :, d:].reshape(-1, params.d_c))
        dC = densify_rows(rows_C, values_C, params.C.shape[0])  # C is small: dense
    return Grads(dW=dW, db=db, du=du, dc=dc, dC=dC, dE_rows=dE_rows, dE_values=dE_values, delta=delta, dh=dh, dX=dX)


def scatter_rows(ids: np.ndarray, dx_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Step 5: add each gradient row to the id it came from; repeated ids are summed.
    ids: (n,) int; dx_rows: (n, k), row j is ∂J/∂(copy j of row ids[j]).
    Returns rows (r,) the distinct ids, sorted, and values (r, k) their summed gradients."""
    rows, inverse = np.unique(ids, return_inverse=True)
    values = np.zeros((rows.shape[0], dx_rows.shape[1]), dtype=dx_rows.dtype)
    np.add.at(values, inverse, dx_rows)  # unbuffered: values[inverse[j]] += dx_rows[j] for every j
    return rows, values


def densify_rows(rows: np.ndarray, values: np.ndarray, n_rows: int) -> np.ndarray:
    """Sparse (rows (r,), values (r, k)) -> dense (n_rows, k), zero where no row is given."""
    dense = np.zeros((n_rows, values.shape[1]), dtype=values.dtype)
    np.add.at(dense, rows, values)
    return dense


def l2_penalty(params: Params, lam: float, rows_E: np.ndarray | None = None) -> float:
    """λ/2 (‖W‖² + ‖u‖² + Σ_{r ∈ rows_E} ‖E_r‖²), a python float.  rows_E: the E rows a batch
    uses (repeats are counted once), or None when word vectors are not regularised.  Biases and
    C are never in the penalty."""
    if not lam:
        return 0.0
    total = squared_norm(params.W) + squared_norm(params.u)
    if rows_E is not None:
        total += squared_norm(params.E[np.unique(rows_E)])
    return 0.5 * lam * total


def squared_norm(a: np.ndarray) -> float:
    """‖a‖² (sum of squares of all entries) as a python float."""
    flat = a.reshape(-1)
    return float(flat @ flat)
