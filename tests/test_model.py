"""The window classifier's reference path (model.py), checked the way the lecture builds it.

First worked examples you can redo by hand (the lecture's numbers through the package's
own forward and backward), then the pieces (losses, L2, sparse dE, shapes, dtypes, the
error signals backward returns, against finite differences), then the parameters.  The
fast path against this reference path is tests/test_fast.py; the gradient check itself
is tests/test_gradcheck.py.
"""

import numpy as np
import pytest

from ner_window.errors import ConfigError, ModelError
from ner_window.model import (
    COSTS,
    Params,
    backward,
    densify_rows,
    forward,
    gather,
    init_params,
    l2_penalty,
    loss_and_delta_s,
    scatter_rows,
    sigmoid,
)

ACTS = ("sigmoid", "tanh", "relu")


def small_model(task="binary", *, casing=True, output_bias=True, dtype=np.float64, seed=0, V=12, d=4, radius=1, H=7):
    rng = np.random.default_rng(seed)
    params = init_params(
        V, d, radius, H, n_casing=5 if casing else 0, d_c=3 if casing else 0,
        n_classes=1 if task == "binary" else 4, output_bias=output_bias, rng=rng, dtype=dtype,
    )
    params.b[:] = rng.uniform(-0.3, 0.3, H)
    if params.c is not None:
        params.c[...] = rng.uniform(-0.3, 0.3, params.c.shape)
    B, w = 6, 2 * radius + 1
    ids = rng.integers(0, V, size=(B, w))
    ids[0, 0] = ids[0, -1] = ids[2, 1] = 3  # a repeated word, in one window and across windows
    cas = rng.integers(0, 5, size=(B, w)) if casing else None
    y = rng.integers(0, 2 if task == "binary" else 4, size=B)
    y[0], y[1] = 1, 0
    return params, ids, cas, y


def reference_grads(params, ids, cas, y, *, activation, loss, pos_weight=1.0, lam=0.0, train_E=True,
                    regularize_E=False):
    s, cache = forward(params, gather(params, ids, cas), activation)
    J_data, delta_s = loss_and_delta_s(s, y, loss, pos_weight)
    grads = backward(params, cache, delta_s, ids, cas, train_E=train_E, lam=lam, regularize_E=regularize_E)
    J = J_data + l2_penalty(params, lam, ids.reshape(-1) if regularize_E and train_E else None)
    return J, grads


# --- worked examples ---------------------------------------------------------


def one_window_model(W, b, u, c, x):
    """A model whose one window (radius 0, one word, no casing) is the vector x: E = [x]."""
    W, u = np.asarray(W, float), np.asarray(u, float)
    params = Params(E=np.asarray([x], float), C=None, W=np.asfortranarray(W), b=np.asarray(b, float), u=u,
                    c=None if c is None else np.asarray(c, float))
    return params, np.array([[0]])


def test_add_gate_distributes_and_multiply_gate_swaps():
    # f(x, y, z) = (x + y) z at x = -2, y = 5, z = -4: q = x + y is the hidden unit (W = [1, 1],
    # relu, which is the identity at q = 3 > 0) and the output weight u is z.
    params, ids = one_window_model(W=[[1.0, 1.0]], b=[0.0], u=[-4.0], c=None, x=[-2.0, 5.0])
    s, cache = forward(params, gather(params, ids), "relu")
    assert cache.z[0, 0] == 3.0 and s[0] == -12.0
    grads = backward(params, cache, np.array([1.0]), ids, None, train_E=True, lam=0.0, regularize_E=False)
    assert grads.du.tolist() == [3.0]  # ∂f/∂z = q: the multiply gate swaps its inputs
    assert grads.dX.tolist() == [[-4.0, -4.0]]  # ∂f/∂x = ∂f/∂y = z: the add gate distributes


def test_sigmoid_neuron_worked_example():
    # f = σ(w0 x0 + w1 x1 + w2) with w = (2, -3, -3), x = (-1, -2): a window model with u = 1
    params, ids = one_window_model(W=[[2.0, -3.0]], b=[-3.0], u=[1.0], c=None, x=[-1.0, -2.0])
    s, cache = forward(params, gather(params, ids), "sigmoid")
    assert cache.z[0, 0] == 1.0
    assert s[0] == pytest.approx(0.7311, abs=1e-4)
    grads = backward(params, cache, np.array([1.0]), ids, None, train_E=True, lam=0.0, regularize_E=False)
    assert grads.delta[0, 0] == pytest.approx(0.197, abs=5e-4)  # ∂f/∂z = σ(z)(1 - σ(z))
    np.testing.assert_allclose([grads.dW[0, 0], grads.dW[0, 1], grads.db[0]], [-0.20, -0.39, 0.20], atol=0.005)
    np.testing.assert_allclose(grads.dX[0], [0.39, -0.59], atol=0.005)
    exact = 1 / (1 + np.exp(-1.0)) * (1 - 1 / (1 + np.exp(-1.0)))
    np.testing.assert_allclose(grads.dW[0], exact * np.array([-1.0, -2.0]), rtol=1e-15)


def test_error_backpropagated_through_W_transpose():
    # Output errors (0.8, 0.5) reach the hidden units through Uᵀ; U[j, i] is the weight from
    # hidden unit i to output j.  (Multiclass output layer, δs = the errors.)
    e = np.array([[0.8, 0.5]])
    U = np.array([[2.0, 3.0], [1.0, 4.0]])
    dh = {}
    for name, weights in (("split", U / U.sum(axis=1, keepdims=True)), ("plain", U)):
        params, ids = one_window_model(W=np.eye(2), b=[0.5, 0.5], u=weights, c=[0.0, 0.0], x=[1.0, 1.0])
        _, cache = forward(params, gather(params, ids), "relu")
        dh[name] = backward(params, cache, e, ids, None, train_E=False, lam=0.0, regularize_E=False).dh[0]
    # split each output's error in proportion to its incoming weights ...
    np.testing.assert_allclose(dh["split"], [0.42, 0.88])
    # ... or the plain Uᵀe of backprop: no normalisation, the same direction
    np.testing.assert_allclose(dh["plain"], [2.1, 4.4])
    cosine = dh["plain"] @ dh["split"] / np.linalg.norm(dh["plain"]) / np.linalg.norm(dh["split"])
    assert cosine == pytest.approx(1.0)


# --- losses ----------------------------------------------------------------------


def test_binary_deltas_match_the_lecture_formulas():
    s = np.array([-1.5, 0.2, 2.0])
    y = np.array([0, 1, 1])
    p = sigmoid(s)
    _, d_bce = loss_and_delta_s(s, y, "bce")
    np.testing.assert_allclose(d_bce, (p - y) / 3)
    _, d_sq = loss_and_delta_s(s, y, "squared")
    np.testing.assert_allclose(d_sq, 2 * (p - y) * p * (1 - p) / 3)
    J_sq, _ = loss_and_delta_s(s, y, "squared")
    assert J_sq == pytest.approx(np.mean((p - y) ** 2))


def test_cross_entropy_is_computed_from_s_without_rounding_p():
    # σ(40) rounds to 1.0 in float64, so -log(1 - p) would be inf; softplus(s) - y s is exact.
    s = np.array([40.0, -40.0, 800.0])
    J, delta_s = loss_and_delta_s(s, np.array([0, 1, 0]), "bce")
    assert J == pytest.approx((40.0 + 40.0 + 800.0) / 3)
    assert np.all(np.isfinite(delta_s))
    s32 = np.array([100.0, -100.0], dtype=np.float32)
    J32, d32 = loss_and_delta_s(s32, np.array([0, 1]), "bce")
    assert J32 == pytest.approx(100.0) and d32.dtype == np.float32
    s_mc = np.array([[1000.0, 0.0, -1000.0]])
    J_mc, d_mc = loss_and_delta_s(s_mc, np.array([2]), "ce")
    assert J_mc == pytest.approx(2000.0) and np.all(np.isfinite(d_mc))


def test_pos_weight_gives_a_weighted_mean():
    s = np.array([0.3, -0.2, 1.1, -2.0])
    y = np.array([1, 0, 0, 1])
    ell = COSTS["bce"].fn(s, sigmoid(s), y.astype(float))
    omega = np.array([5.0, 1.0, 1.0, 5.0])
    J, delta_s = loss_and_delta_s(s, y, "bce", pos_weight=5.0)
    assert J == pytest.approx((omega @ ell) / omega.sum())
    np.testing.assert_allclose(delta_s, omega * (sigmoid(s) - y) / omega.sum())
    # multiclass: every non-O example (class != 0) is weighted
    s_mc = np.array([[0.1, 0.2, 0.3], [0.5, -0.5, 0.0]])
    J_mc, _ = loss_and_delta_s(s_mc, np.array([0, 2]), "ce", pos_weight=3.0)
    lse = np.log(np.exp(s_mc).sum(axis=1))
    assert J_mc == pytest.approx((1 * (lse[0] - 0.1) + 3 * (lse[1] - 0.0)) / 4)


def test_loss_must_fit_the_task():
    with pytest.raises(ConfigError, match="loss"):
        loss_and_delta_s(np.zeros(3), np.zeros(3, int), "ce")
    with pytest.raises(ConfigError, match="loss"):
        loss_and_delta_s(np.zeros((3, 4)), np.zeros(3, int), "bce")
    with pytest.raises(ConfigError, match="activation"):
        forward(small_model()[0], np.zeros((2, 27)), "softsign")


def test_l2_penalty_counts_each_used_row_of_E_once_and_no_biases():
    params, ids, cas, y = small_model()
    lam = 0.3
    rows = np.array([3, 3, 5])
    expected = lam / 2 * ((params.W**2).sum() + (params.u**2).sum() + (params.E[[3, 5]] ** 2).sum())
    assert l2_penalty(params, lam, rows) == pytest.approx(expected)
    params.b += 10.0
    params.c += 10.0
    assert l2_penalty(params, lam, rows) == pytest.approx(expected)
    assert l2_penalty(params, 0.0, rows) == 0.0


# --- gradients: shapes, sparsity, dtypes ------------------------------------------


@pytest.mark.parametrize("task", ["binary", "multiclass"])
@pytest.mark.parametrize("casing", [True, False])
@pytest.mark.parametrize("output_bias", [True, False])
def test_every_gradient_has_its_parameters_shape(task, casing, output_bias):
    params, ids, cas, y = small_model(task, casing=casing, output_bias=output_bias)
    loss = "bce" if task == "binary" else "ce"
    _, grads = reference_grads(params, ids, cas, y, activation="tanh", loss=loss, lam=0.1, regularize_E=True)
    dense = grads.dense(params)
    assert set(dense) == set(params.to_dict())
    for name, g in dense.items():
        assert g.shape == getattr(params, name).shape, name
        assert g.dtype == params.dtype
    assert grads.dE_values.shape == (len(grads.dE_rows), params.d)
    assert (grads.dc is None) == (not output_bias) and (grads.dC is None) == (not casing)


def test_frozen_E_has_no_dE():
    params, ids, cas, y = small_model()
    _, grads = reference_grads(params, ids, cas, y, activation="relu", loss="bce", train_E=False)
    assert grads.dE_rows is None and grads.dE_values is None
    assert grads.dC is not None  # casing vectors are always trained


def test_sparse_dE_equals_dense_scatter_with_repeated_words():
    params, ids, cas, y = small_model(casing=False)
    s, cache = forward(params, gather(params, ids, None), "tanh")
    _, delta_s = loss_and_delta_s(s, y, "bce")
    grads = backward(params, cache, delta_s, ids, None, train_E=True, lam=0.0, regularize_E=False)
    # the dense version, written as the plainest loop: ∂J/∂x (B, w*d) = Δ W, one slice per token
    delta = (delta_s[:, None] * params.u) * (1 - cache.h**2)
    dX = delta @ params.W
    dense = np.zeros_like(params.E)
    for i in range(ids.shape[0]):
        for j in range(ids.shape[1]):
            dense[ids[i, j]] += dX[i, j * params.d:(j + 1) * params.d]
    assert list(grads.dE_rows) == sorted(set(ids.reshape(-1).tolist()))
    sparse = densify_rows(grads.dE_rows, grads.dE_values, params.E.shape[0])
    np.testing.assert_allclose(sparse, dense, rtol=1e-12, atol=1e-15)
    # word 3 (twice in window 0, again in window 2) gets the sum of all its slices
    uses = [(i, j) for i in range(ids.shape[0]) for j in range(ids.shape[1]) if ids[i, j] == 3]
    assert len(uses) >= 3
    np.testing.assert_allclose(dense[3], sum(dX[i, j * 4:(j + 1) * 4] for i, j in uses), rtol=1e-12)


def _centred_differences(J, a, eps=1e-6):
    """∂J/∂a for every entry of the array a, by centred differences (a is restored)."""
    g = np.zeros_like(a)
    for ix in np.ndindex(a.shape):
        old = a[ix]
        a[ix] = old + eps
        up = J(a)
        a[ix] = old - eps
        down = J(a)
        a[ix] = old
        g[ix] = (up - down) / (2 * eps)
    return g


@pytest.mark.parametrize("task", ["binary", "multiclass"])
@pytest.mark.parametrize("activation", ACTS)
def test_backward_returns_dh_delta_and_dX_as_finite_differences_give_them(task, activation):
    """Grads.dh = ∂J/∂h, Grads.delta = ∂J/∂z and Grads.dX = ∂J/∂X, each against centred
    differences of J written out here from h, z or X onward (numpy, not model.py)."""
    params, ids, cas, y = small_model(task)
    W, b, u, c = params.W, params.b, params.u, params.c
    f = {"sigmoid": lambda z: 1 / (1 + np.exp(-z)), "tanh": np.tanh, "relu": lambda z: np.maximum(z, 0)}[activation]

    def J_from_h(h):
        s = (h @ u if task == "binary" else h @ u.T) + c
        if task == "binary":  # mean cross-entropy, ℓ = log(1 + e^s) - y s
            return np.mean(np.log1p(np.exp(s)) - y * s)
        return np.mean(np.log(np.exp(s).sum(axis=1)) - s[np.arange(len(y)), y])  # ℓ = logsumexp(s) - s_y

    def J_from_z(z):
        return J_from_h(f(z))

    def J_from_X(X):
        return J_from_z(X @ W.T + b)

    X = gather(params, ids, cas)
    s, cache = forward(params, X, activation)
    _, delta_s = loss_and_delta_s(s, y, "bce" if task == "binary" else "ce")
    grads = backward(params, cache, delta_s, ids, cas, train_E=True, lam=0.0, regularize_E=False)
    np.testing.assert_allclose(grads.dh, _centred_differences(J_from_h, cache.h.copy()), rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(grads.delta, _centred_differences(J_from_z, cache.z.copy()), rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(grads.dX, _centred_differences(J_from_X, X.copy()), rtol=1e-6, atol=1e-10)
    assert grads.delta.shape == cache.z.shape and grads.dX.shape == X.shape


def test_scatter_rows_sums_repeats():
    rows, values = scatter_rows(np.array([4, 1, 4, 4]), np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]]))
    assert rows.tolist() == [1, 4]
    assert values.tolist() == [[3.0, 4.0], [13.0, 16.0]]


# --- parameters -----------------------------------------------------------------------


def test_init_params_glorot_and_seeded():
    a = init_params(100, 50, 2, 100, rng=np.random.default_rng(7))
    b = init_params(100, 50, 2, 100, rng=np.random.default_rng(7))
    for name, arr in a.to_dict().items():
        np.testing.assert_array_equal(arr, b.to_dict()[name])
        assert arr.dtype == np.float32
    limit = np.sqrt(6 / (250 + 100))
    assert np.abs(a.W).max() <= limit and np.abs(a.W).max() > 0.9 * limit
    assert a.W.shape == (100, 250) and a.u.shape == (100,) and a.c.shape == ()
    assert not a.b.any() and a.C is None and a.task == "binary" and a.radius == 2


def test_init_params_pretrained_E_is_copied_and_cast():
    E = np.arange(12.0).reshape(4, 3)
    params = init_params(4, 3, 1, 5, n_casing=8, d_c=2, n_classes=5, rng=np.random.default_rng(0), E=E)
    assert params.E.dtype == np.float32 and params.E is not E
    np.testing.assert_array_equal(params.E, E)
    params.E[0, 0] = 99.0
    assert E[0, 0] == 0.0
    assert params.W.shape == (5, 3 * (3 + 2)) and params.u.shape == (5, 5) and params.c.shape == (5,)
    assert params.n_classes == 5 and params.task == "multiclass" and params.window == 3
    with pytest.raises(ConfigError, match="pretrained"):
        init_params(5, 3, 1, 5, rng=np.random.default_rng(0), E=E)
    with pytest.raises(ConfigError, match="n_casing"):
        init_params(5, 3, 1, 5, n_casing=8, rng=np.random.default_rng(0))


@pytest.mark.parametrize("task,output_bias", [("binary", True), ("multiclass", False)])
def test_params_round_trip_through_a_dict_of_arrays(tmp_path, task, output_bias):
    params, _, _, _ = small_model(task, output_bias=output_bias)
    np.savez(tmp_path / "params.npz", **params.to_dict())
    with np.load(tmp_path / "params.npz") as arrays:
        loaded = Params.from_dict(arrays)
    for name in ("E", "C", "W", "b", "u", "c"):
        a, b = getattr(params, name), getattr(loaded, name)
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_array_equal(a, b)


def test_from_dict_names_the_bad_array():
    arrays = small_model()[0].to_dict()
    with pytest.raises(ModelError, match=r"\bb has shape \(3,\), expected \(7,\)"):
        Params.from_dict({**arrays, "b": np.zeros(3)}, source="model/params.npz")
    with pytest.raises(ModelError, match="missing"):
        Params.from_dict({k: v for k, v in arrays.items() if k != "W"})
    with pytest.raises(ModelError, match="dtype"):
        Params.from_dict({**arrays, "u": arrays["u"].astype(np.float32)})
