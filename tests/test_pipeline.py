"""End to end on the tiny config: train -> save -> load -> predict -> evaluate, resume, conlleval output."""

import csv
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ner_window.artifact import load_model
from ner_window.cli import cli
from ner_window.conll import entity_spans
from ner_window.evaluate import evaluate_file
from ner_window.tagger import Tagger, format_tagged
from ner_window.train import train

from conftest import conll_counts

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "configs" / "tiny.yaml"

DEV_COUNTS = conll_counts(ROOT / "data" / "dev.txt")[:2]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, tiny_config):
    out = tmp_path_factory.mktemp("run") / "tiny"
    train(tiny_config(), out_dir=out, log=lambda s: None)
    return out


def test_run_directory_holds_model_metrics_checkpoint(run_dir):
    for name in ("model/params.npz", "model/meta.json", "metrics.csv", "checkpoint/state.json",
                 "pr_curve.csv", "errors.txt", "config.json"):
        assert (run_dir / name).exists(), name
    rows = list(csv.DictReader(open(run_dir / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    for key in ("train_loss_with_l2", "train_data_loss", "dev_data_loss", "token_f1", "entity_f1", "lr", "seconds"):
        assert rows[0][key] != ""
    # the loss falls; the L2 term is positive (l2 = 1e-5), so J is above the data loss alone
    assert float(rows[-1]["train_data_loss"]) < float(rows[0]["train_data_loss"])
    assert all(float(r["train_loss_with_l2"]) > float(r["train_data_loss"]) for r in rows)


def test_saved_meta_has_resolved_config_vocab_threshold_and_hash(run_dir):
    meta = json.loads((run_dir / "model" / "meta.json").read_text())
    assert meta["format_version"] == 1 and meta["config"]["model"]["hidden"] == 16
    assert meta["vocab"][:3] == ["<unk>", "<s>", "</s>"]
    assert 0.0 < meta["threshold"] < 1.0
    assert len(meta["train_data_sha256"]) == 64
    assert meta["dev_metrics"]["entity"]["f1"] > 0
    assert meta["coverage"]["train"]["tokens"] > 0.5


def test_the_saved_model_is_the_best_epoch(run_dir):
    rows = list(csv.DictReader(open(run_dir / "metrics.csv")))
    best = max(range(len(rows)), key=lambda i: float(rows[i]["entity_f1"]))
    meta = json.loads((run_dir / "model" / "meta.json").read_text())
    assert meta["best_epoch"] == best + 1
    assert meta["dev_metrics"]["entity"]["f1"] == pytest.approx(float(rows[best]["entity_f1"]))


def test_threshold_was_tuned_to_the_best_dev_entity_f1(run_dir):
    """pr_curve.csv is the saved model on dev at every threshold of the grid: the saved
    threshold is one of them, and no other gives a higher entity F1."""
    model = load_model(run_dir)
    table = {k: np.asarray(v) for k, v in _read_csv(run_dir / "pr_curve.csv").items()}
    at_saved = np.flatnonzero(np.isclose(table["threshold"], model.threshold, rtol=0, atol=1e-9))
    assert at_saved.size == 1
    assert table["entity_f1"][at_saved[0]] == pytest.approx(table["entity_f1"].max(), abs=1e-12)
    assert table["entity_f1"][at_saved[0]] == pytest.approx(model.meta["dev_metrics"]["entity"]["f1"], abs=1e-9)


def _read_csv(path):
    rows = list(csv.DictReader(open(path)))
    return {k: [float(r[k]) for r in rows] for k in rows[0]}


def test_load_predict_and_offsets(run_dir):
    tagger = Tagger.load(run_dir)
    tagged = tagger.tag("Flights from Tokyo to Sydney were cancelled on Monday .")
    assert [t.text for t in tagged.tokens][:3] == ["Flights", "from", "Tokyo"]
    for t in tagged.tokens:
        assert tagged.text[t.start:t.end] == t.text and 0.0 <= t.p <= 1.0
    for s in tagged.spans:
        assert tagged.text[s.start:s.end] == s.text and s.label == "LOC"
    text = format_tagged(tagged, "text")
    assert text.replace("[", "").replace("]LOC", "") == tagged.text


def test_evaluate_json_shape_and_conlleval_predictions(run_dir, tmp_path):
    pred = tmp_path / "dev.pred"
    report = evaluate_file(run_dir, ROOT / "data" / "dev.txt", predictions=pred)
    assert set(report["loc"]) == {"token", "entity", "breakdown"}
    for level in ("token", "entity"):
        assert set(report["loc"][level]) == {"precision", "recall", "f1", "support"}
    assert (report["sentences"], report["tokens"]) == DEV_COUNTS
    # conlleval-format output: the LOC entity F1 counted from the file equals ours
    lines = pred.read_text().split("\n")
    gold_tags, pred_tags, g, p = [], [], [], []
    for line in lines:
        if not line.strip():
            if g:
                gold_tags.append(g), pred_tags.append(p)
            g, p = [], []
            continue
        tok, gt, pt = line.split(" ")
        g.append(gt), p.append(pt)
    gold = [{s for s in entity_spans(t) if s[0] == "LOC"} for t in gold_tags]
    predicted = [{s for s in entity_spans(t) if s[0] == "LOC"} for t in pred_tags]
    correct = sum(len(a & b) for a, b in zip(gold, predicted))
    n_pred, n_gold = sum(map(len, predicted)), sum(map(len, gold))
    f1 = 2 * correct / (n_pred + n_gold) if n_pred + n_gold else 0.0
    assert f1 == pytest.approx(report["loc"]["entity"]["f1"])
    assert n_gold == report["loc"]["entity"]["support"]


def test_cli_predict_evaluate_and_model_env(run_dir, tmp_path):
    runner = CliRunner()
    r = runner.invoke(cli, ["predict", "--model", str(run_dir), "--format", "json", "rain", "in", "Oslo"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert [t["text"] for t in doc["tokens"]] == ["rain", "in", "Oslo"]
    r = runner.invoke(cli, ["predict", "--format", "conll", "rain in Oslo"], env={"NER_WINDOW_MODEL": str(run_dir)})
    assert r.exit_code == 0 and r.output.splitlines()[0].startswith("rain ")
    r = runner.invoke(cli, ["evaluate", "--model", str(run_dir), "--data", str(ROOT / "data" / "dev.txt"),
                            "--format", "json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["tokens"] == DEV_COUNTS[1]


def test_predict_file_jsonl_streams_one_object_per_line(run_dir, tmp_path):
    f = tmp_path / "in.txt"
    f.write_text("rain in Oslo\n\nflights to Rome\n", encoding="utf-8")
    r = CliRunner().invoke(cli, ["predict", "--model", str(run_dir), "--file", str(f), "--format", "jsonl"])
    assert r.exit_code == 0, r.output
    objs = [json.loads(line) for line in r.output.splitlines()]
    assert [o["text"] for o in objs] == ["rain in Oslo", "", "flights to Rome"]


def test_missing_model_is_a_clear_error(tmp_path):
    r = CliRunner().invoke(cli, ["predict", "--model", str(tmp_path / "nope"), "hello"])
    assert r.exit_code == 2 and "no model here" in r.output and "Traceback" not in r.output


def test_resume_after_finish_and_continue_with_more_epochs(run_dir, tmp_path):
    # a finished run resumes as a no-op
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    res = train(resume=copy, log=lambda s: None)
    assert res.history and len(res.history) == 3


def test_resume_mid_run_equals_uninterrupted(tmp_path, tiny_config):
    """Stop after epoch 1 (as a checkpoint would), resume, and compare with an uninterrupted run."""
    full = tmp_path / "full"
    train(tiny_config("train.epochs=2", "train.patience=5"), out_dir=full, log=lambda s: None)
    part = tmp_path / "part"
    train(tiny_config("train.epochs=1", "train.patience=5"), out_dir=part, log=lambda s: None)
    # pretend the run was configured for 2 epochs and stopped after the first
    state = json.loads((part / "checkpoint" / "state.json").read_text())
    state["config"]["train"]["epochs"] = 2
    state["state"]["done"] = False
    (part / "checkpoint" / "state.json").write_text(json.dumps(state))
    train(resume=part, log=lambda s: None)
    a = np.load(full / "checkpoint" / "params.npz")
    b = np.load(part / "checkpoint" / "params.npz")
    for k in a.files:
        assert a[k].tobytes() == b[k].tobytes(), k


def test_train_cli_errors_are_one_line(tmp_path):
    r = CliRunner().invoke(cli, ["train", "--config", str(TINY), "--set", "train.lr=-1"])
    assert r.exit_code == 2 and "train.lr" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(cli, ["train", "--config", str(TINY), "--set", "data.train=/nope.txt"])
    assert r.exit_code == 2 and "data.train" in r.output


def test_resume_survives_a_kill_between_the_two_checkpoint_renames(run_dir, tmp_path):
    # write_dir_atomic moves the old checkpoint aside, then the new one in; a hard kill between
    # the two renames leaves only .checkpoint.old-PID: resume must use that complete copy
    copy = tmp_path / "killed"
    shutil.copytree(run_dir, copy)
    os.replace(copy / "checkpoint", copy / ".checkpoint.old-12345")
    res = train(resume=copy, log=lambda s: None)
    assert len(res.history) == 3


def test_latest_follows_runs_in_runs_dir_only(tmp_path, monkeypatch, tiny_config):
    monkeypatch.chdir(tmp_path)
    train(tiny_config("train.epochs=1"), out_dir=tmp_path / "elsewhere", log=lambda s: None)
    assert not (tmp_path / "runs").exists()  # --out elsewhere leaves ./runs alone
    train(tiny_config("train.epochs=1"), out_dir=Path("runs") / "mine", log=lambda s: None)
    assert (tmp_path / "runs" / "latest").resolve() == (tmp_path / "runs" / "mine").resolve()
    assert Tagger.load().model.path.resolve().parent.name == "mine"  # predict's default finds it


def test_p_is_p_location_and_the_threshold_can_be_changed(run_dir):
    """Every token's p is P(location); a threshold re-marks the same p: LOC exactly where p >= t."""
    text = "Flights from Tokyo to Sydney were cancelled on Monday ."
    default = Tagger.load(run_dir).tag(text)
    assert all((t.label == "LOC") == (t.p >= load_model(run_dir).threshold) for t in default.tokens)
    for t in (0.0, 0.3, 0.9, 1.0):
        tagged = Tagger.load(run_dir, threshold=t).tag(text)
        assert [tok.p for tok in tagged.tokens] == [tok.p for tok in default.tokens]
        assert [tok.label for tok in tagged.tokens] == ["LOC" if tok.p >= t else "O" for tok in tagged.tokens]
    out = CliRunner().invoke(cli, ["predict", "--model", str(run_dir), "--threshold", "0", "--format", "json", text])
    assert out.exit_code == 0 and {t["label"] for t in json.loads(out.output)["tokens"]} == {"LOC"}
    bad = CliRunner().invoke(cli, ["predict", "--model", str(run_dir), "--threshold", "1.5", text])
    assert bad.exit_code == 2 and "1.5" in bad.output
