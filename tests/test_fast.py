"""The fast path (fast.py, optim.py) against the reference path (model.py).

train_step's update must be θ − lr ∂J/∂θ with the reference backward's gradients (and
the momentum and sparse-E rules of optim.py), both with the numba kernels and with the
numpy lines (the kernels_backend fixture); predict_proba / predict_scores must be the
reference forward, chunked; then behaviour: training on a separable problem.
"""

import numpy as np
import pytest

from ner_window.errors import ModelError
from ner_window.fast import predict_proba, predict_scores, train_step
from ner_window.model import forward, gather, init_params, l2_penalty, loss_and_delta_s, probabilities
from ner_window.optim import make_velocity
from test_model import ACTS, reference_grads, small_model


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
    step = train_step(updated, ids, cas, y, lr=0.1, **kw)
    rtol, atol = (1e-12, 1e-14) if dtype == np.float64 else (1e-5, 1e-6)
    assert step.J == pytest.approx(J, rel=rtol)
    J_data, _ = loss_and_delta_s(forward(params, gather(params, ids, cas), activation)[0], y, loss, 3.0)
    assert step.J_data == pytest.approx(J_data, rel=rtol)  # the data loss alone, without the L2 term
    assert step.J - step.J_data == pytest.approx(
        l2_penalty(params, 0.05, ids.reshape(-1)), rel=1e-4 if dtype == np.float32 else 1e-10)
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
    J, _ = train_step(params, ids, cas, y, lr=0.1, activation="relu", loss="squared", lam=1e-3, train_E=True,
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


@pytest.mark.parametrize("task", ["binary", "multiclass"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_probabilities_of_predict_scores_are_predict_proba_bit_for_bit(task, dtype):
    """Training scores dev with predict_scores (for the data loss) and tunes its threshold on
    probabilities(s): that p must be exactly the tagger's predict_proba, chunks and threads included."""
    params = small_model(task, dtype=dtype, V=300, d=8, radius=2, H=16)[0]
    rng = np.random.default_rng(6)
    ids, cas = rng.integers(0, 300, size=(5000, 5)), rng.integers(0, 5, size=(5000, 5))
    for batch_size, threads in ((4096, None), (333, 2), (5000, 1)):
        p = predict_proba(params, ids, cas, "tanh", batch_size=batch_size, threads=threads)
        s = predict_scores(params, ids, cas, "tanh", batch_size=batch_size, threads=threads)
        assert s.shape == p.shape and s.dtype == p.dtype == dtype
        np.testing.assert_array_equal(probabilities(s), p)
    np.testing.assert_allclose(s, forward(params, gather(params, ids, cas), "tanh")[0], rtol=1e-4 if dtype == np.float32
                               else 1e-12, atol=1e-5 if dtype == np.float32 else 1e-12)


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


def test_two_class_softmax_is_a_multiclass_model():
    # e.g. a corpus whose only entity type is LOC: classes O, LOC
    params = init_params(6, 3, 1, 4, n_classes=2, rng=np.random.default_rng(0), dtype=np.float64)
    assert params.task == "multiclass" and params.u.shape == (2, 4) and params.c.shape == (2,)
    ids, y = np.array([[1, 2, 3], [3, 3, 0]]), np.array([1, 0])
    J, _ = train_step(params, ids, None, y, lr=0.1, activation="tanh", loss="ce", train_E=True)
    assert np.isfinite(J)
    np.testing.assert_allclose(predict_proba(params, ids, None, "tanh").sum(axis=1), 1.0)


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
                                momentum=0.5, velocity=velocity).J
        losses.append(total / 10)
    p = predict_proba(params, ids, None, activation)
    predicted = (p > 0.5).astype(int) if task == "binary" else p.argmax(axis=1)
    assert losses[-1] < 0.2 * losses[0]
    assert (predicted == y).mean() == 1.0
