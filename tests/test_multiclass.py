"""The multiclass task end to end: s = U h + c, p = softmax(s), δs = p - y (y one-hot).

Worked example first, then the gradient check from the command line, then a tiny
multiclass model trained on the bundled corpus: evaluation (the conlleval table
and the same LOC report as the binary task), prediction (every entity type is
marked) and explain (the reference path agrees with the tagger's fast path).
"""

import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ner_window.artifact import load_model
from ner_window.cli import cli
from ner_window.conll import entity_spans, read_conll
from ner_window.evaluate import evaluate_file
from ner_window.explain import explain
from ner_window.model import loss_and_delta_s, softmax
from ner_window.tagger import Tagged, TaggedToken, Tagger, format_tagged, spans_of
from ner_window.train import train

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "configs" / "tiny.yaml"
DEV = ROOT / "data" / "dev.txt"
TYPES = ["LOC", "MISC", "ORG", "PER"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_config):
    """A tiny multiclass model and, for comparing report shapes, a tiny binary one (same data, seed)."""
    root = tmp_path_factory.mktemp("multiclass")
    train(tiny_config("model.task=multiclass"), out_dir=root / "mc", log=lambda s: None)
    train(tiny_config("train.epochs=1"), out_dir=root / "bin", log=lambda s: None)
    return {"mc": root / "mc", "bin": root / "bin"}


@pytest.fixture(scope="module")
def dev_reports(runs):
    return {k: evaluate_file(v, DEV) for k, v in runs.items()}


# --- the worked example ------------------------------------------------------------------


def test_worked_example_delta_s_is_p_minus_one_hot():
    """p = (0.3, 0.2, 0.5), y = class 1: δs = p - y = (0.3, -0.8, 0.5), J = -log 0.2."""
    p = np.array([[0.3, 0.2, 0.5]])
    s = np.log(p)  # softmax(log p) = p, since p sums to 1
    np.testing.assert_allclose(softmax(s), p)
    J, delta_s = loss_and_delta_s(s, np.array([1]), "ce")
    np.testing.assert_allclose(delta_s, [[0.3, -0.8, 0.5]], atol=1e-12)
    assert J == pytest.approx(-np.log(0.2))
    assert delta_s.sum() == pytest.approx(0.0)  # p and y both sum to 1


def test_batch_delta_s_is_the_mean_over_windows():
    """With B windows J is the mean loss, so each row of δs is (p_i - y_i) / B."""
    p = np.array([[0.3, 0.2, 0.5], [0.1, 0.6, 0.3]])
    J, delta_s = loss_and_delta_s(np.log(p), np.array([1, 0]), "ce")
    np.testing.assert_allclose(delta_s, (p - np.eye(3)[[1, 0]]) / 2, atol=1e-12)
    assert J == pytest.approx(-(np.log(0.2) + np.log(0.1)) / 2)


def test_softmax_of_shifted_scores_is_unchanged():
    s = np.array([[1.0, 2.0, 3.0]])
    np.testing.assert_allclose(softmax(s + 1000.0), softmax(s))


# --- the gradient check -------------------------------------------------------------------


def test_cli_gradcheck_multiclass_passes():
    out = CliRunner().invoke(cli, ["gradcheck", "--task", "multiclass", "--format", "json"])
    assert out.exit_code == 0, out.output
    result = json.loads(out.output)
    assert result["passed"] is True
    assert {r["loss"] for r in result["results"]} == {"ce"}
    assert {"W", "b", "u", "c", "C", "E"} <= {r["param"] for r in result["results"]}
    assert max(r["max_rel_error"] for r in result["results"]) <= result["threshold"]


# --- a trained multiclass model -------------------------------------------------------------


def test_the_model_has_O_then_every_entity_type(runs):
    model = load_model(runs["mc"])
    assert model.task == "multiclass" and model.classes == ["O", *TYPES]
    assert model.params.u.shape == (5, model.params.hidden) and model.params.c.shape == (5,)


def test_evaluate_gives_the_conlleval_table(dev_reports):
    report = dev_reports["mc"]
    table = report["per_type"]
    assert set(table["per_type"]) == set(TYPES)
    gold = [entity_spans(s.tags) for s in read_conll(DEV, "iob2")]
    for t in TYPES:
        row = table["per_type"][t]
        assert {"precision", "recall", "f1", "support"} <= set(row)
        assert row["support"] == sum(1 for spans in gold for s in spans if s[0] == t)
    assert table["overall"]["support"] == sum(len(spans) for spans in gold)
    assert table["overall"]["f1"] > 0


def test_evaluate_loc_report_has_the_binary_shape(dev_reports):
    mc, binary = dev_reports["mc"], dev_reports["bin"]
    assert set(mc) - {"per_type"} == set(binary)
    for level in ("token", "entity"):
        assert set(mc["loc"][level]) == set(binary["loc"][level])
        assert mc["loc"][level]["support"] == binary["loc"][level]["support"]
    # the LOC entity score and the LOC row of the conlleval table count the same spans
    assert mc["loc"]["entity"]["f1"] == pytest.approx(mc["per_type"]["per_type"]["LOC"]["f1"])


def test_conlleval_predictions_file_has_every_type(runs, tmp_path):
    pred = tmp_path / "dev.pred"
    evaluate_file(runs["mc"], DEV, predictions=pred)
    tags = {line.split(" ")[2] for line in pred.read_text().splitlines() if line.strip()}
    assert {f"B-{t}" for t in TYPES} <= tags


def test_predict_marks_every_type(runs):
    tagger = Tagger.load(runs["mc"])
    sentences = [s.tokens for s in read_conll(DEV, "iob2")]
    predicted = {lab for labels, _ in tagger.label_tokens(sentences) for lab in labels}
    assert predicted == {"O", *TYPES}


def test_text_format_brackets_each_span_with_its_type():
    text = "Paris Hilton visited Paris"
    tokens = [TaggedToken("Paris", 0, 5, "PER", 0.9), TaggedToken("Hilton", 6, 12, "PER", 0.8),
              TaggedToken("visited", 13, 20, "O", 0.9), TaggedToken("Paris", 21, 26, "LOC", 0.7)]
    tagged = Tagged(text, tokens, spans_of(text, tokens))
    assert format_tagged(tagged, "text") == "[Paris Hilton]PER visited [Paris]LOC"
    assert format_tagged(tagged, "conll").split("\n")[:4] == ["Paris B-PER", "Hilton I-PER", "visited O", "Paris B-LOC"]


def test_cli_predict_with_a_multiclass_model(runs):
    text = "Flights from Tokyo to Sydney were cancelled by Qantas on Monday , John Smith said ."
    out = CliRunner().invoke(cli, ["predict", "--model", str(runs["mc"]), text])
    assert out.exit_code == 0, out.output
    line = out.output.strip()
    labels = re.findall(r"\[[^\]]+\]([A-Z]+)", line)
    assert labels and set(labels) <= set(TYPES)
    assert re.sub(r"\[([^\]]+)\][A-Z]+", r"\1", line) == text
    tagged = json.loads(CliRunner().invoke(cli, ["predict", "--model", str(runs["mc"]), "--format", "json", text]).output)
    assert {t["label"] for t in tagged["tokens"]} <= {"O", *TYPES}
    # p is P(LOC) for every token, whatever its label: the LOC tokens are those whose argmax is LOC
    assert all(0.0 <= t["p"] <= 1.0 for t in tagged["tokens"])
    assert all(t["p"] >= 0.2 for t in tagged["tokens"] if t["label"] == "LOC")


def test_explain_on_the_trained_model_agrees_with_the_tagger(runs):
    """explain uses the reference path (forward), the tagger the fast path (predict_proba)."""
    model = load_model(runs["mc"])
    text = "Flights from Tokyo to Sydney were cancelled"
    r = explain(model, text, "Tokyo")
    assert sum(r["forward"]["p"]) == pytest.approx(1.0, abs=1e-5)
    token = Tagger(model).tag(text).tokens[2]
    assert token.label == r["forward"]["prediction"]
    assert token.p == pytest.approx(r["forward"]["p"][1], abs=1e-5)  # P(LOC), class 1
    y = np.eye(5)[1]
    np.testing.assert_allclose(r["backward"]["delta_s"], np.array(r["forward"]["p"]) - y, atol=1e-6)


def test_errors_of_a_multiclass_model_are_its_argmax_mistakes(runs):
    """evaluate --errors lists the tokens the model got wrong by its own rule (argmax), not P(LOC) >= 0.5."""
    from ner_window.evaluate import predict_labels
    from ner_window.windows import labelled_data

    model = load_model(runs["mc"])
    report = evaluate_file(model, DEV, n_errors=100_000)
    data = labelled_data(read_conll(DEV, "iob2"), model.vocab, model.radius, model.classes, ["LOC"])
    pred, _ = predict_labels(model, data.windows.ids, data.windows.casing)
    loc = model.classes.index("LOC")
    y_loc, tagged = data.windows.y == loc, pred == loc
    errs = report["errors"]
    assert errs["rule"] == "argmax = LOC"
    assert len(errs["false_positives"]) == int((~y_loc & tagged).sum())
    assert len(errs["false_negatives"]) == int((y_loc & ~tagged).sum())
    # and they are the misses behind the same report's LOC token recall
    tok = report["loc"]["token"]
    assert len(errs["false_negatives"]) == round(tok["support"] * (1 - tok["recall"]))
