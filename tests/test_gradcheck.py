"""The gradient check: hand-written gradients against centred differences.

Every activation × loss, with and without casing vectors, output bias and
trainable E; multiclass; a word repeated inside one window.  Then the check's
own behaviour: it must FAIL when backward is wrong, and report as a table.
"""

import json

import numpy as np
import pytest

from ner_window import gradcheck, model
from ner_window.errors import ConfigError
from ner_window.gradcheck import (
    THRESHOLD,
    check_gradients,
    format_text,
    make_check_case,
    numerical_gradient,
    relative_error,
    run_gradcheck,
)


def test_centred_difference_on_the_lecture_example():
    # f(x, y, z) = (x + y) z at (-2, 5, -4): gradient (-4, -4, 3)
    v = np.array([-2.0, 5.0, -4.0])
    grad = numerical_gradient(lambda: (v[0] + v[1]) * v[2], v, [(0,), (1,), (2,)])
    np.testing.assert_allclose(grad, [-4.0, -4.0, 3.0], rtol=1e-12)
    assert v.tolist() == [-2.0, 5.0, -4.0]  # restored


def test_relative_error_definition():
    assert relative_error(np.array(1.0), np.array(1.0 + 2e-6)) == pytest.approx(1e-6, rel=1e-3)
    assert relative_error(np.array(0.0), np.array(0.0)) == 0.0


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
@pytest.mark.parametrize("loss", ["bce", "squared"])
@pytest.mark.parametrize("casing", [True, False])
@pytest.mark.parametrize("output_bias", [True, False])
@pytest.mark.parametrize("train_E", [True, False])
def test_binary_gradients(activation, loss, casing, output_bias, train_E):
    params, ids, cas, y = make_check_case("binary", seed=1, casing=casing, output_bias=output_bias)
    errors = check_gradients(params, ids, cas, y, activation=activation, loss=loss, train_E=train_E)
    optional = {"c": output_bias, "C": casing, "E": train_E}
    expected = {"W", "b", "u"} | {name for name, present in optional.items() if present}
    assert set(errors) == expected
    assert max(errors.values()) < THRESHOLD, errors


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
@pytest.mark.parametrize("casing", [True, False])
def test_multiclass_gradients(activation, casing):
    params, ids, cas, y = make_check_case("multiclass", seed=2, casing=casing)
    errors = check_gradients(params, ids, cas, y, activation=activation, loss="ce")
    assert max(errors.values()) < THRESHOLD, errors


def test_gradients_without_l2_or_pos_weight():
    params, ids, cas, y = make_check_case("binary", seed=3)
    errors = check_gradients(params, ids, cas, y, activation="tanh", loss="bce", pos_weight=1.0, lam=0.0)
    assert max(errors.values()) < THRESHOLD, errors


def test_the_check_batch_repeats_a_word_within_and_across_windows():
    _, ids, _, _ = make_check_case("binary", seed=0)
    assert any(len(set(window)) < len(window) for window in ids.tolist())
    counts = np.bincount(ids.reshape(-1))
    assert counts.max() >= 3


def test_a_word_twice_in_a_single_window_only():
    # one window, the same word at both edges: its gradient is the sum of two slices
    params, _, _, _ = make_check_case("binary", seed=4, casing=False)
    ids = np.array([[2, 6, 2]])
    rng = np.random.default_rng(0)
    for _ in range(100):  # keep |z| away from relu's kink, as make_check_case does
        z = model.gather(params, ids) @ params.W.T + params.b
        if np.abs(z).min() > gradcheck.Z_MARGIN:
            break
        params.b[:] = rng.uniform(-0.5, 0.5, params.b.shape)
    for activation in ("sigmoid", "tanh", "relu"):
        errors = check_gradients(params, ids, None, np.array([1]), activation=activation, loss="bce")
        assert errors["E"] < THRESHOLD, errors


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_run_gradcheck_passes_and_covers_every_combination(task):
    result = run_gradcheck(task=task)
    assert result["passed"] is True
    losses = ("bce", "squared") if task == "binary" else ("ce",)
    combos = {(r["activation"], r["loss"]) for r in result["results"]}
    assert combos == {(a, l) for a in ("sigmoid", "tanh", "relu") for l in losses}
    assert {r["param"] for r in result["results"]} == {"W", "b", "u", "c", "C", "E"}
    json.dumps(result)  # plain data, for --format json


def test_run_gradcheck_subset_and_bad_names():
    result = run_gradcheck(activations=("relu",), losses=("squared",))
    assert {(r["activation"], r["loss"]) for r in result["results"]} == {("relu", "squared")}
    with pytest.raises(ConfigError, match="activation"):
        run_gradcheck(activations=("softsign",))
    with pytest.raises(ConfigError, match="loss"):
        run_gradcheck(losses=("hinge",))
    with pytest.raises(ConfigError, match="task"):
        run_gradcheck(task="ternary")


def test_the_check_fails_when_a_derivative_is_wrong(monkeypatch):
    # tanh'(z) written as 1 - h instead of 1 - h²
    def wrong(h, out=None):
        return 1 - h

    monkeypatch.setitem(model.DERIVATIVES, "tanh", wrong)
    result = run_gradcheck(activations=("tanh",), losses=("bce",))
    assert result["passed"] is False
    assert "FAILED" in format_text(result)


def test_the_check_fails_when_repeated_words_overwrite_instead_of_add(monkeypatch):
    def scatter_last_wins(ids, dx_rows):
        rows = np.unique(ids)
        values = np.zeros((rows.size, dx_rows.shape[1]), dx_rows.dtype)
        values[np.searchsorted(rows, ids)] = dx_rows  # assignment: a repeat replaces, not adds
        return rows, values

    monkeypatch.setattr(model, "scatter_rows", scatter_last_wins)
    result = run_gradcheck(activations=("sigmoid",), losses=("bce",))
    failed = {r["param"] for r in result["results"] if r["max_rel_error"] > THRESHOLD}
    assert "E" in failed and not result["passed"]


def test_the_check_fails_when_the_l2_term_of_E_is_missing(monkeypatch):
    original = model.backward

    def no_l2_on_E(params, cache, delta_s, ids, casing, *, train_E, lam, regularize_E):
        return original(params, cache, delta_s, ids, casing, train_E=train_E, lam=lam, regularize_E=False)

    monkeypatch.setattr(gradcheck, "backward", no_l2_on_E)
    result = run_gradcheck(activations=("relu",), losses=("squared",))
    failed = {r["param"] for r in result["results"] if r["max_rel_error"] > THRESHOLD}
    assert failed == {"E"}


def test_format_text_is_one_row_per_activation_loss_param():
    result = run_gradcheck(activations=("sigmoid",), losses=("bce", "squared"))
    text = format_text(result)
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["activation", "loss", "param"]
    assert len(lines) == 1 + len(result["results"]) + 1
    assert lines[1].split()[:3] == ["sigmoid", "bce", "W"]
    assert lines[-1].startswith("PASSED")


# --- the sentence-level model (output="sentence") -------------------------------------------------


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_run_gradcheck_of_the_sentence_model_passes_for_every_activation(task):
    result = run_gradcheck(task=task, output="sentence")
    assert result["passed"] is True
    combos = {(r["activation"], r["loss"]) for r in result["results"]}
    assert combos == {(a, "sll") for a in ("sigmoid", "tanh", "relu")}
    assert {r["param"] for r in result["results"]} == {"W", "b", "u", "c", "C", "E", "A"}
    json.dumps(result)


def test_the_sentence_check_case_has_sentences_of_1_2_and_7_tokens_with_repeated_words():
    params, ids, _, tags, starts = gradcheck.make_sentence_check_case("binary")
    assert np.diff(starts).tolist() == [1, 2, 7]
    assert any(len(set(window)) < len(window) for window in ids.tolist())
    assert all(4 in ids[a:b] for a, b in zip(starts[:-1], starts[1:]))  # word 4 in every sentence
    assert np.isneginf(params.A).sum() == 2  # I-LOC after O and at the start: constants, not checked
    from ner_window import sentence

    assert sentence.tag_spans(tags[3:], sentence.tag_set(["O", "LOC"])) == [("LOC", 0, 2), ("LOC", 3, 4),
                                                                              ("LOC", 4, 7)]


def test_the_sentence_check_fails_when_the_start_row_is_forgotten(monkeypatch):
    from ner_window import sentence

    original = sentence.loss_and_delta_s

    def no_start_row(S, A, y, starts):
        J, delta_s, dA = original(S, A, y, starts)
        dA = dA.copy()
        dA[-1] = 0.0  # as if the pair (start, y_0) had no gradient
        return J, delta_s, dA

    monkeypatch.setattr(sentence, "loss_and_delta_s", no_start_row)
    result = run_gradcheck(activations=("tanh",), output="sentence")
    failed = {r["param"] for r in result["results"] if r["max_rel_error"] > THRESHOLD}
    assert failed == {"A"} and not result["passed"]


def test_gradcheck_cli_sentence_output(tmp_path):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "ner_window.cli", "gradcheck", "--output", "sentence",
                          "--activation", "relu", "--format", "json"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["passed"] and {r["param"] for r in result["results"]} >= {"A", "E"}
    bad = subprocess.run([sys.executable, "-m", "ner_window.cli", "gradcheck", "--output", "crf"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "Invalid value for '--output'" in bad.stderr
    with pytest.raises(ConfigError, match="unknown output 'crf'"):
        run_gradcheck(output="crf")
