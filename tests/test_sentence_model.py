"""A sentence-level model (model.output: sentence) through the package: the fast training step
against the reference path, training and resuming, saving and loading, tagging with Viterbi,
evaluate's error breakdown, explain, and the errors a user can cause.

The reference maths itself is tests/test_sentence.py; the gradient check of the whole model is
tests/test_gradcheck.py (output="sentence").
"""

import itertools
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from ner_window import sentence as sn
from ner_window.artifact import load_model, save_model
from ner_window.errors import ConfigError, DataError, ModelError
from ner_window.evaluate import evaluate_file
from ner_window.explain import explain, format_text
from ner_window.fast import predict_scores, sentence_train_step
from ner_window.gradcheck import make_sentence_check_case
from ner_window.metrics import entity_prf, error_breakdown
from ner_window.model import backward, forward, gather, init_params, l2_penalty
from ner_window.optim import make_velocity
from ner_window.tagger import Tagger, format_tagged
from ner_window.train import train
from ner_window.vocab import SPECIALS, Vocab
from ner_window.windows import CASING_CLASSES

ACTS = ("sigmoid", "tanh", "relu")


# --- the fast step against the reference path ----------------------------------------------------


@pytest.mark.parametrize("task", ["binary", "multiclass"])
@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sentence_train_step_is_params_minus_lr_grad(task, activation, dtype, kernels_backend):
    params, ids, cas, tags, starts = make_sentence_check_case(task, seed=3)
    params = params.astype(dtype)
    lam, lr = 0.05, 0.1
    S, cache = forward(params, gather(params, ids, cas), activation)
    J_data, delta_s, dA = sn.loss_and_delta_s(S, params.A, tags, starts)
    grads = backward(params, cache, delta_s, ids, cas, train_E=True, lam=lam, regularize_E=True).dense(params)
    expected = {name: getattr(params, name) - lr * g for name, g in {**grads, "A": dA}.items()}
    updated = params.copy()
    step = sentence_train_step(updated, ids, cas, tags, starts, lr=lr, activation=activation, lam=lam, train_E=True,
                               regularize_E=True)
    rtol, atol = (1e-10, 1e-12) if dtype == np.float64 else (1e-4, 1e-5)
    assert step.J_data == pytest.approx(J_data, rel=rtol)
    assert step.J == pytest.approx(J_data + l2_penalty(params, lam, ids.reshape(-1)), rel=rtol)
    for name, want in expected.items():
        got = getattr(updated, name)
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=name)
    assert np.array_equal(np.isinf(updated.A), np.isinf(params.A))  # forbidden pairs stay −∞


def test_sentence_train_step_with_momentum_moves_A_by_its_velocity(kernels_backend):
    params, ids, cas, tags, starts = make_sentence_check_case("binary", seed=1)
    velocity = make_velocity(params)
    assert set(velocity) == {"W", "b", "u", "c", "C", "A"}
    before = params.copy()
    kw = dict(lr=0.1, activation="tanh", momentum=0.9, velocity=velocity)
    sentence_train_step(params, ids, cas, tags, starts, **kw)
    finite = np.isfinite(params.A)
    first = params.A[finite] - before.A[finite]
    sentence_train_step(params, ids, cas, tags, starts, **kw)
    np.testing.assert_allclose(velocity["A"][finite], params.A[finite] - before.A[finite] - first, atol=1e-12)
    assert np.all(velocity["A"][~finite] == 0) and np.all(np.isneginf(params.A[~finite]))


def test_a_window_model_is_refused_by_the_sentence_step():
    params, ids, cas, tags, starts = make_sentence_check_case()
    params.A = None
    with pytest.raises(ValueError, match="needs a sentence-level model"):
        sentence_train_step(params, ids, cas, tags, starts, lr=0.1, activation="tanh")


# --- training, saving, loading -------------------------------------------------------------------


@pytest.fixture(scope="module")
def sentence_run(tmp_path_factory, tiny_config):
    out = tmp_path_factory.mktemp("sentence") / "run"
    result = train(tiny_config("model.output=sentence", "train.epochs=2"), out_dir=out, log=lambda s: None,
                   point_latest=False)
    return out, result


def test_training_a_sentence_model_lowers_its_loss_and_saves_what_it_is(sentence_run):
    out, result = sentence_run
    rows = result.history
    assert rows[1]["train_data_loss"] < rows[0]["train_data_loss"]
    assert rows[0]["threshold"] is None and result.best_entity_f1 > 0.3
    meta = json.loads((out / "model" / "meta.json").read_text())
    assert meta["format_version"] == 2 and meta["output"] == "sentence"
    assert meta["tags"] == ["O", "B-LOC", "I-LOC"] and "threshold" not in meta and "Viterbi" in meta["decoding"]
    with np.load(out / "model" / "params.npz") as npz:
        A, u = npz["A"], npz["u"]
    assert A.shape == (4, 3) and u.shape[0] == 3
    assert np.isneginf(A[0, 2]) and np.isneginf(A[3, 2]) and np.isfinite(A[1, 2])  # no I-LOC after O or at start
    csv = (out / "metrics.csv").read_text().splitlines()
    assert len(csv) == 3 and ",," in csv[1]  # the threshold column is empty: Viterbi decides
    assert "Viterbi path = LOC" in (out / "errors.txt").read_text()


def test_the_saved_model_scores_dev_as_training_did(sentence_run, tiny_config):
    out, result = sentence_run
    report = evaluate_file(out, tiny_config().data.dev)
    assert report["output"] == "sentence" and report["threshold"] is None
    best = result.history[result.best_epoch]
    assert report["loc"]["entity"]["f1"] == pytest.approx(best["entity_f1"])
    assert report["loc"]["token"]["f1"] == pytest.approx(best["token_f1"])
    b, entity = report["loc"]["breakdown"], report["loc"]["entity"]
    assert b["correct"] + b["missed"] + b["boundary"] == entity["support"]


def test_a_sentence_run_interrupted_mid_epoch_resumes_byte_identical(tiny_config, tmp_path):
    import os
    import signal

    from ner_window.train import Interrupted

    cfg = tiny_config("model.output=sentence", "train.epochs=2")
    full = tmp_path / "full"
    train(cfg, out_dir=full, log=lambda s: None, point_latest=False)
    cut = tmp_path / "cut"
    # SIGINT at the end of epoch 1: the loop stops after the next batch, mid-epoch 2, with a checkpoint
    with pytest.raises(Interrupted, match=r"SIGINT: checkpoint written .* at epoch 2, step \d+"):
        train(cfg, out_dir=cut, log=lambda s: None, point_latest=False,
              on_epoch=lambda row, improved: os.kill(os.getpid(), signal.SIGINT) if row["epoch"] == 1 else None)
    state = json.loads((cut / "checkpoint" / "state.json").read_text())["state"]
    assert state["epoch"] == 1 and state["batch"] == 1
    train(resume=cut, log=lambda s: None, point_latest=False)
    for name in ("model/params.npz", "checkpoint/params.npz", "checkpoint/velocity.npz"):
        with np.load(full / name) as a, np.load(cut / name) as b:
            assert sorted(a.files) == sorted(b.files)
            for array in a.files:
                assert np.array_equal(a[array], b[array]), (name, array)


def test_pos_weight_is_a_window_setting(tiny_config, tmp_path):
    with pytest.raises(ConfigError, match=r"train.pos_weight = 2 weights windows.*set train.pos_weight to 1.0"):
        train(tiny_config("model.output=sentence", "train.pos_weight=2.0"), out_dir=tmp_path / "r", log=lambda s: None)


# --- a hand-made sentence model: decoding as the maths says ---------------------------------------

WORDS = [*SPECIALS, "we", "saw", "paris", "london", "and", "rome", "."]


def hand_model(tmp_path, A_rows, c):
    """W = 0, so every window's tag scores are exactly c: the decoding is A's and c's alone."""
    params = init_params(len(WORDS), 4, 1, 3, n_casing=len(CASING_CLASSES), d_c=2, n_classes=3,
                         rng=np.random.default_rng(0))
    params.W[...] = 0.0
    params.c[...] = c
    params.A = np.array(A_rows, dtype=np.float32)
    meta = {"config": {"data": {"scheme": "iob2", "location_types": ["LOC"]},
                       "model": {"task": "binary", "radius": 1, "hidden": 3, "activation": "tanh",
                                 "casing_dim": 2, "output": "sentence"}},
            "classes": ["O", "LOC"], "output": "sentence", "tags": ["O", "B-LOC", "I-LOC"]}
    save_model(tmp_path / "model", params, Vocab(WORDS), meta)
    return tmp_path / "model"


NEG = -np.inf


def test_adjacent_places_stay_two_spans(tmp_path):
    # B-LOC scores 2 at every token, O 0, I-LOC 1; B-LOC -> B-LOC is free, B-LOC -> I-LOC costs 5
    path = hand_model(tmp_path, [[0, 0, NEG], [0, 0, -5], [0, 0, 0], [0, 0, NEG]], [0.0, 2.0, 1.0])
    tagged = Tagger.load(path).tag("Paris London")
    assert [t.label for t in tagged.tokens] == ["LOC", "LOC"]
    assert [s.text for s in tagged.spans] == ["Paris", "London"]
    assert format_tagged(tagged, "conll") == "Paris B-LOC\nLondon B-LOC\n"
    assert format_tagged(tagged, "text") == "[Paris]LOC [London]LOC"


def test_p_is_the_marginal_of_the_sentence(tmp_path):
    A = [[0, 0, NEG], [0.5, -1, 2], [0, 0, 1], [0, 0.3, NEG]]
    c = [0.2, 0.1, -0.4]
    path = hand_model(tmp_path, A, c)
    tagged = Tagger.load(path).tag("paris and rome")
    # every token's tag scores are c: enumerate the 27 paths by hand
    A, n = np.array(A, dtype=np.float64), 3
    weights = {}
    for y in itertools.product(range(3), repeat=n):
        score = A[3, y[0]] + sum(A[y[k - 1], y[k]] for k in range(1, n)) + sum(c[t] for t in y)
        weights[y] = math.exp(score) if np.isfinite(score) else 0.0
    Z = sum(weights.values())
    for k, token in enumerate(tagged.tokens):
        p_loc = sum(w for y, w in weights.items() if y[k] > 0) / Z
        assert token.p == pytest.approx(p_loc, abs=1e-6)
    best = max(weights, key=weights.get)
    assert [t.label for t in tagged.tokens] == ["LOC" if t else "O" for t in best]


def test_the_threshold_does_not_apply_to_a_sentence_model(tmp_path):
    path = hand_model(tmp_path, [[0, 0, NEG], [0, 0, 0], [0, 0, 0], [0, 0, NEG]], [0.0, 1.0, 0.0])
    out = subprocess.run([sys.executable, "-m", "ner_window.cli", "predict", "--model", str(path), "--threshold",
                          "0.3", "paris"], capture_output=True, text=True)
    assert out.returncode == 2 and out.stdout == ""
    assert "threshold applies to binary models (window output)" in out.stderr
    assert "is a sentence-level model and tags each sentence's Viterbi path" in out.stderr
    assert "Traceback" not in out.stderr


def test_a_model_directory_whose_arrays_disagree_with_its_meta_is_refused(tmp_path):
    path = hand_model(tmp_path, [[0, 0, NEG], [0, 0, 0], [0, 0, 0], [0, 0, NEG]], [0.0, 1.0, 0.0])
    meta = json.loads((path / "meta.json").read_text())
    meta["config"]["model"]["output"] = "window"
    (path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="has a transition matrix A, but meta.json says model.output: window"):
        load_model(path)
    out = subprocess.run([sys.executable, "-m", "ner_window.cli", "predict", "--model", str(path), "paris"],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "ner-window: error:" in out.stderr and "Traceback" not in out.stderr


def test_a_sentence_model_without_its_transitions_is_refused(tmp_path):
    path = hand_model(tmp_path, [[0, 0, NEG], [0, 0, 0], [0, 0, 0], [0, 0, NEG]], [0.0, 1.0, 0.0])
    with np.load(path / "params.npz") as npz:
        arrays = {k: npz[k] for k in npz.files if k != "A"}
    np.savez(path / "params.npz", **arrays)
    with pytest.raises(ModelError, match="has no transition matrix A, but meta.json says model.output: sentence"):
        load_model(path)


def test_export_writes_a_sentence_models_tag_scores_and_transitions(tmp_path):
    """W = 0: every window's tag scores are c, and the second output is A as given (tests/test_export.py: trained)."""
    import onnxruntime as ort

    A = [[0, 0, NEG], [0.5, -1, 2], [0, 0, 1], [0, 0.3, NEG]]
    path = hand_model(tmp_path, A, [0.2, 0.1, -0.4])
    out = subprocess.run([sys.executable, "-m", "ner_window.cli", "export", "--model", str(path), "--out",
                          str(tmp_path / "m.onnx")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    ids = np.array([[1, 3, 5], [3, 5, 2]], np.int64)  # "we paris": <s> we paris, we paris </s>
    S, got_A = ort.InferenceSession(str(tmp_path / "m.onnx")).run(None, {"ids": ids, "casing": np.ones_like(ids)})
    np.testing.assert_allclose(S, [[0.2, 0.1, -0.4]] * 2, atol=1e-7)
    np.testing.assert_array_equal(got_A, np.array(A, dtype=np.float32))
    spec = json.loads((tmp_path / "m.vocab.json").read_text())
    assert spec["tags"] == ["O", "B-LOC", "I-LOC"]
    assert spec["transitions"] == [[0, 0, None], [0.5, -1, 2], [0, 0, 1], [0, pytest.approx(0.3), None]]


# --- explain ---------------------------------------------------------------------------------------


def test_explain_shows_the_sentence_level_numbers(tmp_path):
    A = [[0, 0, NEG], [0.5, -1, 2], [0, 0, 1], [0, 0.3, NEG]]
    path = hand_model(tmp_path, A, [0.2, 0.1, -0.4])
    model = load_model(path)
    result = explain(model, "we saw paris and rome", index=2, label="I-LOC")
    sen = result["sentence"]
    assert sen["tags"] == ["O", "B-LOC", "I-LOC"] and result["backward"]["label_name"] == "I-LOC"
    prev = sen["viterbi"][1]
    assert sen["incoming_from"].startswith(prev) and sen["incoming"] == [
        None if not np.isfinite(a) else pytest.approx(a) for a in A[["O", "B-LOC", "I-LOC"].index(prev)]]
    # δs of this token: its marginals minus the label's one-hot (sentence.py step 4)
    np.testing.assert_allclose(result["backward"]["delta_s"], np.array(sen["marginals"]) - [0, 0, 1], atol=1e-6)
    assert sum(sen["marginals"]) == pytest.approx(1.0, abs=1e-6)
    assert result["forward"]["prediction"] == sen["tag"] == sen["viterbi"][2]
    assert result["model"]["output"] == "sentence" and result["model"]["threshold"] is None
    text = format_text(result)
    assert "Sentence level" in text and "Viterbi path: we/" in text and "-inf" in text
    json.dumps(result, allow_nan=False)  # JSON-safe: no -Infinity


def test_explain_labels_of_a_sentence_model(tmp_path):
    path = hand_model(tmp_path, [[0, 0, NEG], [0, 0, 0], [0, 0, 0], [0, 0, NEG]], [0.0, 1.0, 0.0])
    model = load_model(path)
    assert explain(model, "paris", index=0, label="LOC")["backward"]["label_name"] == "B-LOC"
    assert explain(model, "paris", index=0)["backward"]["label_name"] == "B-LOC"  # default 1
    with pytest.raises(DataError, match=r"--label 'B-PER' is not a tag of this model; use one of 0 \(O\), "
                                        r"1 \(B-LOC\), 2 \(I-LOC\)"):
        explain(model, "paris", index=0, label="B-PER")
    out = subprocess.run([sys.executable, "-m", "ner_window.cli", "explain", "--model", str(path), "paris",
                          "--index", "0", "--label", "7"], capture_output=True, text=True)
    assert out.returncode == 2 and "--label 7 is out of range" in out.stderr and "Traceback" not in out.stderr


# --- the error breakdown, every model --------------------------------------------------------------


def test_error_breakdown_worked_example():
    gold = [[(0, 3), (5, 6)], [(1, 2)], []]  # "Gulf of Mexico" ... ; "Paris"; nothing
    pred = [[(0, 1), (2, 3), (8, 9)], [(1, 2)], [(0, 2)]]  # [Gulf] of [Mexico], a spurious one; Paris; spurious
    counts = error_breakdown(gold, pred)
    assert counts == {"correct": 1, "missed": 1, "boundary": 1, "spurious": 2, "boundary_predicted": 2}
    # the identities with the entity scores: not found = missed + boundary, wrong = spurious + boundary_predicted
    scores = entity_prf(gold, pred)
    assert scores["support"] - counts["correct"] == counts["missed"] + counts["boundary"] == 2
    assert counts["correct"] / scores["precision"] - counts["correct"] == counts["spurious"] + 2


def test_evaluate_prints_the_breakdown_for_a_window_model_too(tiny_model_dir, tiny_config):
    out = subprocess.run([sys.executable, "-m", "ner_window.cli", "evaluate", "--model", str(tiny_model_dir),
                          "--data", tiny_config().data.dev], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("entity errors")]
    assert len(line) == 1 and "missed" in line[0] and "boundary" in line[0] and "spurious" in line[0]


def test_predict_with_a_sentence_model_imports_no_heavy_module(tmp_path):
    path = hand_model(tmp_path, [[0, 0, NEG], [0, 0, 0], [0, 0, 0], [0, 0, NEG]], [0.0, 1.0, 0.0])
    code = ("import sys, json\nfrom ner_window.tagger import Tagger\n"
            f"Tagger.load({str(path)!r}).tag('we saw paris')\n"
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    from test_predict_path import HEAVY

    assert not set(json.loads(out.stdout)) & set(HEAVY)


def test_scores_for_tagging_are_the_training_path_s(sentence_run):
    out, _ = sentence_run
    model = load_model(out)
    params, ids, cas, tags, starts = make_sentence_check_case()
    rng = np.random.default_rng(0)
    ids = rng.integers(0, len(model.vocab), size=(10, 5))
    cas = rng.integers(0, len(CASING_CLASSES), size=(10, 5))
    S, _ = forward(model.params, gather(model.params, ids, cas), model.activation)
    np.testing.assert_allclose(predict_scores(model.params, ids, cas, model.activation), S, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("sets, message", [
    (["model.output=crf"], "model.output = 'crf' is not allowed; use one of: window, sentence"),
    (["model.output=sentence", "train.pos_weight=2"], "train.pos_weight = 2 weights windows; model.output: "
                                                       "sentence trains whole tag paths"),
])
def test_bad_sentence_settings_are_one_line_errors(tmp_path, sets, message):
    from conftest import ROOT

    args = [sys.executable, "-m", "ner_window.cli", "train", "--config", str(ROOT / "configs" / "tiny.yaml"),
            "--out", str(tmp_path / "run"), "--set", f"data.train={ROOT / 'data' / 'dev.txt'}",
            "--set", f"data.dev={ROOT / 'data' / 'test.txt'}"]
    for item in sets:
        args += ["--set", item]
    out = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert message in out.stderr and len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
    assert not (tmp_path / "run").exists()


def test_the_spacy_component_keeps_adjacent_places_of_a_sentence_model_apart(tmp_path):
    import spacy

    path = hand_model(tmp_path, [[0, 0, NEG], [0, 0, -5], [0, 0, 0], [0, 0, NEG]], [0.0, 2.0, 1.0])
    nlp = spacy.blank("en")
    nlp.add_pipe("ner_window", config={"model": str(path)})
    doc = nlp("Paris London")
    assert [(e.text, e.label_) for e in doc.ents] == [("Paris", "LOC"), ("London", "LOC")]
