"""The compiled loops of ner_window/kernels.py against their numpy twins in fast.py / model.py.

Each kernel is a piece of train_step written as plain loops; here each one gets the
numpy lines it replaces on the same inputs (repeated words, casing columns, float32
and float64, every activation and binary loss, example weights).  train_step as a
whole runs both ways against the reference path in test_fast.py (kernels_backend).
"""

import numpy as np
import pytest

from ner_window import fast, model
from ner_window.errors import ModelError
from ner_window.fast import train_step
from ner_window.model import DERIVATIVES, init_params, loss_and_delta_s
from ner_window.optim import make_velocity

kernels = pytest.importorskip("ner_window.kernels")
if kernels.njit is None:
    pytest.skip("numba is not installed (the 'fast' extra)", allow_module_level=True)

DTYPES = (np.float32, np.float64)


def tol(dtype):
    return dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gather_rows_fills_word_and_casing_columns_like_np_take(dtype):
    params = init_params(30, 4, 2, 6, n_casing=5, d_c=3, rng=np.random.default_rng(0), dtype=dtype)
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 30, (7, 5)).astype(np.int32)
    ids[0, 0] = ids[3, 4] = 29  # a repeated word
    cas = rng.integers(0, 5, (7, 5))
    X = np.full((7, 5 * 7), np.nan, dtype)
    assert fast._gather_compiled(kernels, params, ids, cas, X) is X
    np.testing.assert_array_equal(X, model.gather(params, ids, cas))


def test_gather_rows_reports_the_first_bad_id_and_train_step_names_it(kernels_backend):
    table = np.arange(12.0).reshape(4, 3)
    X = np.zeros((2, 6))
    assert kernels.gather_rows(table, np.array([[0, 3], [1, 2]]), X, 0, 3) == -1
    assert kernels.gather_rows(table, np.array([[0, 3], [4, 2]]), X, 0, 3) == 2
    assert kernels.gather_rows(table, np.array([[0, -1], [1, 2]]), X, 0, 3) == 1
    params = init_params(12, 4, 1, 5, rng=np.random.default_rng(0), dtype=np.float64)
    with pytest.raises(ModelError, match=r"word ids must lie in \[0, 12\)"):
        train_step(params, np.array([[0, 1, 12]]), None, np.array([1]), lr=0.1, activation="tanh", loss="bce")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("offset,stride,k", [(0, 4, 4), (0, 7, 4), (4, 7, 3), (0, 3, 3)])
def test_scatter_add_rows_sums_repeats_like_np_add_at(dtype, offset, stride, k):
    rng = np.random.default_rng(2)
    ids = rng.integers(0, 6, (9, 5))
    ids[0, :] = 2  # one word five times in a window, and again elsewhere
    dX = rng.standard_normal((9, 5 * stride)).astype(dtype)
    table = rng.standard_normal((6, k)).astype(dtype)
    want, numpy_twin = table.copy(), table.copy()
    np.add.at(want, ids.reshape(-1), dX.reshape(45, stride)[:, offset:offset + k])
    kernels.scatter_add_rows(table, ids, dX, offset, stride)
    np.testing.assert_allclose(table, want, **tol(dtype))
    fast._scatter_into(None, numpy_twin, ids, dX, offset, stride)  # train_step's numpy path
    np.testing.assert_allclose(numpy_twin, want, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_add_bias_adds_b_to_every_row(dtype):
    z = np.arange(12, dtype=dtype).reshape(3, 4)
    b = np.array([1.0, -2.0, 0.5, 0.0], dtype)
    want = z + b
    kernels.add_bias(z, b)
    np.testing.assert_array_equal(z, want)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
@pytest.mark.parametrize("loss", ["bce", "squared"])
@pytest.mark.parametrize("pos_weight", [1.0, 3.0])
@pytest.mark.parametrize("c", [0.7, None])
def test_binary_head_equals_the_numpy_lines_it_replaces(dtype, activation, loss, pos_weight, c):
    rng = np.random.default_rng(3)
    B, H, lr = 9, 6, 0.3
    z = rng.standard_normal((B, H)).astype(dtype) * 2
    h = model.ACTIVATIONS[activation](z)
    u = rng.standard_normal(H).astype(dtype)
    y = rng.integers(0, 2, B)
    y[0], y[1] = 1, 0
    # numpy: s = h u + c, loss_and_delta_s, δ = (−lr δs) u ∘ f'(z), steps for b, u, c
    s = h @ u + (0.0 if c is None else dtype(c))
    J_want, delta_s = loss_and_delta_s(s.astype(dtype), y, loss, pos_weight)
    step_s = -lr * delta_s
    delta_want = np.outer(step_s, u) * DERIVATIVES[activation](h)
    t, delta = np.empty(B, dtype), np.empty((B, H), dtype)
    gb, gu = np.empty(H, dtype), np.empty(H, dtype)
    J, gc = kernels.binary_head(h, u, 0.0 if c is None else float(dtype(c)), y, pos_weight, lr,
                                kernels.LOSS_CODES[loss], kernels.ACTIVATION_CODES[activation], t, delta, gb, gu)
    assert J == pytest.approx(J_want, rel=1e-5 if dtype == np.float32 else 1e-12)
    for got, want in [(t, step_s), (delta, delta_want), (gb, delta_want.sum(0)), (gu, h.T @ step_s)]:
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want, **tol(dtype))
    assert gc == pytest.approx(step_s.sum(), rel=1e-5 if dtype == np.float32 else 1e-12, abs=1e-7)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
@pytest.mark.parametrize("pos_weight", [1.0, 3.0])
@pytest.mark.parametrize("with_c", [True, False])
def test_softmax_head_equals_the_numpy_lines_it_replaces(dtype, activation, pos_weight, with_c):
    rng = np.random.default_rng(5)
    B, H, n, lr = 9, 6, 4, 0.3
    h = model.ACTIVATIONS[activation](rng.standard_normal((B, H)).astype(dtype) * 2)
    U = rng.standard_normal((n, H)).astype(dtype)
    c = rng.standard_normal(n).astype(dtype) if with_c else np.zeros(n, dtype)
    y = rng.integers(0, n, B)
    y[0], y[1] = 0, 3
    # numpy: s = h Uᵀ + c, loss_and_delta_s("ce"), Δ = (−lr δs U) ∘ f'(z), steps for b, U, c
    J_want, delta_s = loss_and_delta_s(h @ U.T + c, y, "ce", pos_weight)
    step_s = -lr * delta_s
    delta_want = (step_s @ U) * DERIVATIVES[activation](h)
    T, delta = np.empty((B, n), dtype), np.empty((B, H), dtype)
    gb, gU, gc = np.empty(H, dtype), np.empty((n, H), dtype), np.empty(n, dtype)
    J = kernels.softmax_head(h, U, c, y, pos_weight, lr, kernels.ACTIVATION_CODES[activation], T, delta, gb, gU, gc)
    assert J == pytest.approx(J_want, rel=1e-5 if dtype == np.float32 else 1e-12)
    for got, want in [(T, step_s), (delta, delta_want), (gb, delta_want.sum(0)), (gU, step_s.T @ h),
                      (gc, step_s.sum(0))]:
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want, **tol(dtype))


def test_binary_head_is_stable_for_large_scores_and_lets_nan_through():
    B, H = 2, 3
    h = np.ones((B, H))
    t, delta, gb, gu = np.empty(B), np.empty((B, H)), np.empty(H), np.empty(H)
    y = np.array([0, 1])
    codes = (kernels.LOSS_CODES["bce"], kernels.ACTIVATION_CODES["tanh"])
    # s = ±300: σ and softplus without overflow; J = (300 + 0) / 2 (the wrong, confident example)
    J, _ = kernels.binary_head(h, np.full(H, 100.0), 0.0, y, 1.0, 0.1, *codes, t, delta, gb, gu)
    assert J == pytest.approx(150.0)
    assert np.isfinite(t).all() and np.isfinite(delta).all()
    # a NaN weight must reach J (the trainer stops on it), not be optimised away
    J, _ = kernels.binary_head(h, np.array([1.0, np.nan, 0.0]), 0.0, y, 1.0, 0.1, *codes, t, delta, gb, gu)
    assert np.isnan(J)


def test_train_step_both_ways_gives_the_same_run(monkeypatch):
    """Fifty steps with fine-tuned E, casing, momentum and L2, once per backend: same parameters."""
    rng = np.random.default_rng(4)
    ids = rng.integers(0, 40, (50, 16, 5))
    cas = rng.integers(0, 4, (50, 16, 5))
    y = (rng.random((50, 16)) < 0.3).astype(int)
    runs = {}
    for enabled in (False, True):
        monkeypatch.setattr(kernels, "ENABLED", enabled)
        params = init_params(40, 8, 2, 12, n_casing=4, d_c=2, rng=np.random.default_rng(0), dtype=np.float64)
        velocity = make_velocity(params)
        for i in range(50):
            train_step(params, ids[i], cas[i], y[i], lr=0.2, activation="tanh", loss="bce", pos_weight=2.0,
                       lam=1e-3, train_E=True, regularize_E=True, momentum=0.9, velocity=velocity)
        runs[enabled] = params
    for name in ("E", "C", "W", "b", "u", "c"):
        np.testing.assert_allclose(getattr(runs[True], name), getattr(runs[False], name), rtol=1e-9, atol=1e-12,
                                   err_msg=name)


def test_unusable_kernels_fall_back_to_numpy_with_one_warning(monkeypatch):
    """numba present but its kernels failing to load (say, no writable cache directory): the step
    warns, names the way out, and trains exactly as the numpy path does."""
    import sys

    params = init_params(20, 4, 1, 5, rng=np.random.default_rng(0), dtype=np.float64)
    rng = np.random.default_rng(1)
    ids, y = rng.integers(0, 20, (8, 3)), rng.integers(0, 2, 8)
    want = params.copy()
    monkeypatch.setattr(kernels, "ENABLED", False)
    train_step(want, ids, None, y, lr=0.1, activation="tanh", loss="bce", train_E=True)
    monkeypatch.setattr(kernels, "ENABLED", True)
    monkeypatch.setattr(fast, "_kernels_module", None)
    monkeypatch.setitem(sys.modules, "ner_window.kernels", None)  # the import now fails
    with pytest.warns(RuntimeWarning, match="NUMBA_CACHE_DIR"):
        train_step(params, ids, None, y, lr=0.1, activation="tanh", loss="bce", train_E=True)
    for name in ("E", "W", "b", "u", "c"):
        np.testing.assert_array_equal(getattr(params, name), getattr(want, name), err_msg=name)
    assert fast._fast_kernels() is None  # decided once: no second warning, no second import


def test_the_kernels_codes_name_the_models_activations_and_binary_losses():
    """The compiled loops branch on integer codes; their names are model.py's tables."""
    assert set(kernels.ACTIVATION_CODES) == set(model.ACTIVATIONS)
    assert set(kernels.LOSS_CODES) == set(model.BINARY_LOSSES)
    assert len(set(kernels.ACTIVATION_CODES.values())) == len(kernels.ACTIVATION_CODES)
