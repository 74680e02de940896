"""scripts/robust_ablate.py and scripts/threshold_study.py end to end on configs/tiny.yaml (the views
that need CoNLL-2003 or the Broad Twitter Corpus are skipped when those files are absent)."""

import csv
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


robust_ablate, threshold_study = load("robust_ablate"), load("threshold_study")


def test_parse_variant():
    assert robust_ablate.parse_variant("as-is") == ("as-is", [])
    assert robust_ablate.parse_variant("c=train.case_lower=0.2,model.gazetteer=geonames") == (
        "c", ["train.case_lower=0.2", "model.gazetteer=geonames"])


@pytest.fixture(scope="module")
def comparison(tmp_path_factory, tiny_config):
    out = tmp_path_factory.mktemp("robust")
    config = out / "tiny.yaml"  # tiny.yaml with absolute data paths, so the runs do not depend on the cwd
    cfg = tiny_config()
    text = (ROOT / "configs" / "tiny.yaml").read_text(encoding="utf-8")
    for key in ("train", "dev", "test"):
        rel = {"train": "data/dev.txt", "dev": "data/test.txt", "test": "data/train.txt"}[key]
        text = text.replace(f"  {key}: {rel}", f"  {key}: {getattr(cfg.data, key)}")
    config.write_text(text, encoding="utf-8")
    argv = ["--config", str(config), "--out", str(out), "--seeds", "0", "--variant", "one=train.epochs=1",
            "--variant", "two=train.epochs=2,train.case_lower=0.5", "--conll-dev", str(out / "absent.txt"),
            "--btc", str(out / "absent"), "--test", str(ROOT / "data" / "dev.txt")]
    assert robust_ablate.main(argv) == 0
    return out, argv


def test_every_variant_is_trained_and_scored(comparison):
    out, _ = comparison
    doc = json.loads((out / "robust_ablate.json").read_text(encoding="utf-8"))
    assert list(doc["variants"]) == ["one", "two"]
    two = doc["variants"]["two"][0]
    assert two["config"]["train"]["case_lower"] == 0.5 and two["epochs_run"] == 2
    rows = list(csv.DictReader((out / "runs" / "two" / "seed-0" / "metrics.csv").open()))
    assert two["dev_entity_f1"] == pytest.approx(float(rows[two["best_epoch"] - 1]["entity_f1"]))
    assert set(two["views"]) == {"test"}  # CoNLL-2003 and BTC absent here
    md = (out / "robust_ablate.md").read_text(encoding="utf-8")
    assert "| `one` | 1 |" in md and "own held-out test" in md


def test_a_finished_run_is_read_back_not_trained_again(comparison):
    out, argv = comparison
    model = out / "runs" / "one" / "seed-0" / "model" / "params.npz"
    before = model.stat().st_mtime_ns
    assert robust_ablate.main(argv) == 0
    assert model.stat().st_mtime_ns == before


def test_threshold_study_scores_every_rule(comparison, capsys):
    out, _ = comparison
    run = out / "runs" / "two" / "seed-0"
    assert threshold_study.main([str(run), "--conll-dev", str(out / "absent.txt"), "--btc", str(out / "absent"),
                                 "--out", str(out / "thr")]) == 0
    doc = json.loads((out / "thr.json").read_text(encoding="utf-8"))[0]
    assert set(doc["thresholds"]) == {"tuned", "smoothed", "fixed"} and doc["thresholds"]["fixed"] == 0.5
    # the tuned rule is what training saved
    from ner_window.artifact import load_model

    assert doc["thresholds"]["tuned"] == pytest.approx(load_model(run).threshold)
    assert "| tuned |" in capsys.readouterr().out
