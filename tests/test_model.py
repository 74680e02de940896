"""The window classifier, checked the way the lecture builds it.

First worked examples you can redo by hand (the package's own affine / sigmoid /
softmax code on the lecture's numbers), then the pieces (losses, L2, sparse dE,
shapes, dtypes), then the fast path against the reference path, then behaviour:
training on a separable problem.  The gradient check itself is in test_gradcheck.py.
"""

import numpy as np
import pytest

from ner_window.errors import ConfigError, ModelError
from ner_window.model import (
    ACTIVATIONS,
    COSTS,
    DERIVATIVES,
    Params,
    affine_backward,
    affine_forward,
    backward,
    densify_rows,
    forward,
    gather,
    init_params,
    l2_penalty,
    loss_and_delta_s,
    make_velocity,
    predict_proba,
    probabilities,
    scatter_rows,
    sigmoid,
    train_step,
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


def test_add_gate_distributes_and_multiply_gate_swaps():
    # f(x, y, z) = (x + y) z at x = -2, y = 5, z = -4.  q = x + y is an affine gate with weights (1, 1).
    x, y, z = -2.0, 5.0, -4.0
    q, cache = affine_forward(np.array([[x, y]]), np.array([[1.0, 1.0]]), None)
    f = q[0, 0] * z
    assert q[0, 0] == 3.0 and f == -12.0
    df_dq, df_dz = z, q[0, 0]  # the multiply gate swaps its inputs
    dxy, _, _ = affine_backward(np.array([[df_dq]]), cache)  # the add gate distributes
    assert dxy.tolist() == [[-4.0, -4.0]]
    assert df_dz == 3.0


def test_sigmoid_neuron_worked_example():
    # f = σ(w0 x0 + w1 x1 + w2) with w = (2, -3, -3), x = (-1, -2)
    x = np.array([[-1.0, -2.0]])
    W, b = np.array([[2.0, -3.0]]), np.array([-3.0])
    z, cache = affine_forward(x, W, b)
    assert z[0, 0] == 1.0
    h = ACTIVATIONS["sigmoid"](z)
    assert h[0, 0] == pytest.approx(0.7311, abs=1e-4)
    delta = DERIVATIVES["sigmoid"](h, np.ones_like(h))  # ∂f/∂z = σ(z)(1 - σ(z)) ≈ 0.197
    dx, dW, db = affine_backward(delta, cache)
    np.testing.assert_allclose([dW[0, 0], dW[0, 1], db[0]], [-0.20, -0.39, 0.20], atol=0.005)
    np.testing.assert_allclose(dx[0], [0.39, -0.59], atol=0.005)
    exact = 1 / (1 + np.exp(-1.0)) * (1 - 1 / (1 + np.exp(-1.0)))
    np.testing.assert_allclose(dW[0], exact * x[0], rtol=1e-15)


def test_error_backpropagated_through_W_transpose():
    # Output errors (0.8, 0.5); W[j, i] is the weight from hidden unit i to output j.
    e = np.array([[0.8, 0.5]])
    W = np.array([[2.0, 3.0], [1.0, 4.0]])
    # split each output's error in proportion to its incoming weights
    split, _, _ = affine_backward(e, (np.zeros((1, 2)), W / W.sum(axis=1, keepdims=True)))
    np.testing.assert_allclose(split[0], [0.42, 0.88])
    # the plain Wᵀe of backprop: no normalisation, the same direction
    plain, _, _ = affine_backward(e, (np.zeros((1, 2)), W))
    np.testing.assert_allclose(plain[0], [2.1, 4.4])
    cosine = plain[0] @ split[0] / np.linalg.norm(plain[0]) / np.linalg.norm(split[0])
    assert cosine == pytest.approx(1.0)


def test_softmax_worked_example_delta_is_p_minus_y():
    p = np.array([[0.3, 0.2, 0.5]])
    s = np.log(p)  # softmax(log p) = p
    np.testing.assert_allclose(probabilities(s), p)
    J, delta_s = loss_and_delta_s(s, np.array([1]), "ce")
    np.testing.assert_allclose(delta_s[0], [0.3, -0.8, 0.5])
    assert J == pytest.approx(-np.log(0.2))


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


def test_scatter_rows_sums_repeats():
    rows, values = scatter_rows(np.array([4, 1, 4, 4]), np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]]))
    assert rows.tolist() == [1, 4]
    assert values.tolist() == [[3.0, 4.0], [13.0, 16.0]]


@pytest.mark.parametrize("task", ["binary", "multiclass"])
@pytest.mark.parametrize("activation", ACTS)
def test_float32_forward_agrees_with_float64(task, activation):
    p64, ids, cas, y = small_model(task, radius=2, d=50 if task == "binary" else 10, H=100, V=30)
    p32 = p64.astype(np.float32)
    s64, _ = forward(p64, gather(p64, ids, cas), activation)
    s32, _ = forward(p32, gather(p32, ids, cas), activation)
    assert s32.dtype == np.float32
    np.testing.assert_allclose(probabilities(s32), probabilities(s64), atol=1e-5)
    np.testing.assert_allclose(predict_proba(p32, ids, cas, activation), probabilities(s64), atol=1e-5)


# --- the fast path against the reference path --------------------------------------


def _expected_sgd(params, grads, lr):
    dense = grads.dense(params)
    return {name: getattr(params, name) - lr * g for name, g in dense.items()}


@pytest.mark.parametrize("task,loss", [("binary", "bce"), ("binary", "squared"), ("multiclass", "ce")])
@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("casing", [True, False])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_train_step_update_equals_params_minus_lr_grad(task, loss, activation, casing, dtype, kernels_backend):
    params, ids, cas, y = small_model(task, casing=casing, dtype=dtype)
    kw = dict(activation=activation, loss=loss, pos_weight=3.0, lam=0.05, train_E=True, regularize_E=True)
    J, grads = reference_grads(params, ids, cas, y, **kw)
    expected = _expected_sgd(params, grads, 0.1)
    updated = params.copy()
    J_step = train_step(updated, ids, cas, y, lr=0.1, **kw)
    rtol, atol = (1e-12, 1e-14) if dtype == np.float64 else (1e-5, 1e-6)
    assert J_step == pytest.approx(J, rel=rtol)
    for name, want in expected.items():
        assert getattr(updated, name).dtype == dtype
        np.testing.assert_allclose(getattr(updated, name), want, rtol=rtol, atol=atol, err_msg=name)


def test_train_step_with_frozen_E_leaves_E_alone_and_casing_still_learns(kernels_backend):
    params, ids, cas, y = small_model()
    kw = dict(activation="tanh", loss="bce", lam=0.01, train_E=False, regularize_E=True)
    _, grads = reference_grads(params, ids, cas, y, **kw)
    updated = params.copy()
    train_step(updated, ids, cas, y, lr=0.5, **kw)
    np.testing.assert_array_equal(updated.E, params.E)
    np.testing.assert_allclose(updated.C, params.C - 0.5 * grads.dC, rtol=1e-12)
    np.testing.assert_allclose(updated.W, params.W - 0.5 * grads.dW, rtol=1e-12)


def test_fine_tuning_changes_only_the_rows_of_E_the_batch_used(kernels_backend):
    params, ids, cas, y = small_model()
    updated = params.copy()
    train_step(updated, ids, cas, y, lr=0.5, activation="sigmoid", loss="bce", lam=0.1, train_E=True, regularize_E=True)
    changed = np.flatnonzero(np.any(updated.E != params.E, axis=1))
    assert set(changed) == set(ids.reshape(-1).tolist())


@pytest.mark.parametrize("task,loss", [("binary", "bce"), ("multiclass", "ce")])
def test_train_step_with_classical_momentum(task, loss, kernels_backend):
    params, ids, cas, y = small_model(task)
    lr, mu = 0.2, 0.9
    kw = dict(activation="tanh", loss=loss, pos_weight=2.0, lam=0.02, train_E=True, regularize_E=False)
    # two steps by hand: v ← μv − lr g, θ ← θ + v; E plain SGD
    theta = params.copy()
    v = {name: 0.0 for name in ("W", "b", "u", "c", "C")}
    for _ in range(2):
        _, grads = reference_grads(theta, ids, cas, y, **kw)
        dense = grads.dense(theta)
        for name in v:
            v[name] = mu * v[name] - lr * dense[name]
            setattr(theta, name, getattr(theta, name) + v[name])
        theta.E = theta.E - lr * dense["E"]
    fast = params.copy()
    velocity = make_velocity(fast)
    assert set(velocity) == {"W", "b", "u", "c", "C"}
    for _ in range(2):
        train_step(fast, ids, cas, y, lr=lr, momentum=mu, velocity=velocity, **kw)
    for name in ("E", "C", "W", "b", "u", "c"):
        np.testing.assert_allclose(getattr(fast, name), getattr(theta, name), rtol=1e-11, atol=1e-14, err_msg=name)
    np.testing.assert_allclose(velocity["W"], v["W"], rtol=1e-11)


def test_momentum_needs_a_velocity():
    params, ids, cas, y = small_model()
    with pytest.raises(ValueError, match="make_velocity"):
        train_step(params, ids, cas, y, lr=0.1, activation="tanh", loss="bce", momentum=0.9)


def test_float32_training_stays_float32(kernels_backend):
    params, ids, cas, y = small_model(dtype=np.float32)
    velocity = make_velocity(params)
    J = train_step(params, ids, cas, y, lr=0.1, activation="relu", loss="squared", lam=1e-3, train_E=True,
                   regularize_E=True, momentum=0.5, velocity=velocity, pos_weight=4.0)
    assert np.isfinite(J)
    for name, a in params.to_dict().items():
        assert a.dtype == np.float32, name
    assert all(v.dtype == np.float32 for v in velocity.values())


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_predict_proba_equals_the_reference_forward_in_chunks(task):
    params, _, _, _ = small_model(task)
    rng = np.random.default_rng(5)
    ids = rng.integers(0, 12, size=(1000, 3))
    cas = rng.integers(0, 5, size=(1000, 3))
    s, _ = forward(params, gather(params, ids, cas), "relu")
    p = predict_proba(params, ids, cas, "relu", batch_size=128)  # 1000 = 7 full chunks + 104
    assert p.shape == ((1000,) if task == "binary" else (1000, 4))
    np.testing.assert_allclose(p, probabilities(s), rtol=1e-12)
    if task == "multiclass":
        np.testing.assert_allclose(p.sum(axis=1), 1.0)


def test_bad_ids_are_a_model_error():
    params, ids, cas, y = small_model()
    with pytest.raises(ModelError, match="radius"):
        predict_proba(params, np.zeros((4, 5), int), np.zeros((4, 5), int), "tanh")
    with pytest.raises(ModelError, match="vocabulary"):
        predict_proba(params, np.full((4, 3), 12), np.zeros((4, 3), int), "tanh")
    with pytest.raises(ModelError, match="casing"):
        gather(params, ids, None)
    with pytest.raises(ModelError, match="integer"):
        gather(params, ids.astype(float), cas)


def test_train_step_names_bad_ids(kernels_backend):
    params, ids, cas, y = small_model()
    kw = dict(lr=0.1, activation="tanh", loss="bce", train_E=True)
    for bad_ids, bad_cas, match in [(ids.astype(float), cas, "word ids must be an integer array"),
                                    (ids, cas.astype(float), "casing ids must be an integer array"),
                                    (np.where(ids == 3, 12, ids), cas, r"word ids must lie in \[0, 12\)"),
                                    (ids, np.where(cas == 1, -1, cas), r"casing ids must lie in \[0, 5\)")]:
        before = params.copy()
        with pytest.raises(ModelError, match=match):
            train_step(params, bad_ids, bad_cas, y, **kw)
        for name in ("E", "C", "W", "b", "u", "c"):  # nothing was updated
            np.testing.assert_array_equal(getattr(params, name), getattr(before, name), err_msg=name)


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


def test_two_class_softmax_is_a_multiclass_model():
    # e.g. a corpus whose only entity type is LOC: classes O, LOC
    params = init_params(6, 3, 1, 4, n_classes=2, rng=np.random.default_rng(0), dtype=np.float64)
    assert params.task == "multiclass" and params.u.shape == (2, 4) and params.c.shape == (2,)
    ids, y = np.array([[1, 2, 3], [3, 3, 0]]), np.array([1, 0])
    J = train_step(params, ids, None, y, lr=0.1, activation="tanh", loss="ce", train_E=True)
    assert np.isfinite(J)
    np.testing.assert_allclose(predict_proba(params, ids, None, "tanh").sum(axis=1), 1.0)


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
    with pytest.raises(ModelError, match="'b'"):
        Params.from_dict({**arrays, "b": np.zeros(3)}, source="model/params.npz")
    with pytest.raises(ModelError, match="missing"):
        Params.from_dict({k: v for k, v in arrays.items() if k != "W"})
    with pytest.raises(ModelError, match="dtype"):
        Params.from_dict({**arrays, "u": arrays["u"].astype(np.float32)})


# --- behaviour ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "task,loss,activation", [("binary", "bce", "tanh"), ("binary", "squared", "sigmoid"), ("multiclass", "ce", "relu")]
)
def test_training_on_a_separable_problem_reaches_full_training_accuracy(task, loss, activation):
    # The label is a function of the centre word: words 0-4 are "locations" (binary),
    # or the class is centre word mod 4 (multiclass).
    rng = np.random.default_rng(0)
    V, n = 20, 240
    ids = rng.integers(0, V, size=(n, 3))
    y = (ids[:, 1] < 5).astype(int) if task == "binary" else ids[:, 1] % 4
    params = init_params(V, 8, 1, 16, n_classes=1 if task == "binary" else 4, rng=rng, dtype=np.float64)
    velocity = make_velocity(params)
    losses = []
    for epoch in range(60):
        order = rng.permutation(n)
        total = 0.0
        for start in range(0, n, 24):
            batch = order[start:start + 24]
            total += train_step(params, ids[batch], None, y[batch], lr=0.3, activation=activation, loss=loss,
                                pos_weight=1.0, lam=1e-4, train_E=True, regularize_E=True,
                                momentum=0.5, velocity=velocity)
        losses.append(total / 10)
    p = predict_proba(params, ids, None, activation)
    predicted = (p > 0.5).astype(int) if task == "binary" else p.argmax(axis=1)
    assert losses[-1] < 0.2 * losses[0]
    assert (predicted == y).mean() == 1.0
