"""`evaluate --location-types`: which gold types are locations, and a warning when a file has none.

The model here calls every token a location (u = 0, c = +10: p = σ(10) ≈ 1 for every window),
so each sentence is one predicted span from its first token to its last, and the expected
counts follow from the gold tags by hand.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ner_window.artifact import save_model
from ner_window.cli import cli
from ner_window.config import load_config
from ner_window.evaluate import evaluate_file
from ner_window.model import init_params
from ner_window.vocab import build_vocab
from ner_window.windows import CASING_CLASSES

ROOT = Path(__file__).resolve().parent.parent

# WNUT-style types.  Everything predicted LOC, so the predicted spans are (0,1), (0,2), (0,1):
#   "Oslo"          gold location (0,1)  -> TP
#   "to Oslo"       gold location (1,2)  -> predicted (0,2): FP, and the gold one is missed: FN
#   "Bob"           gold person          -> predicted (0,1): FP
# with location as the location type: TP 1, FP 2, FN 1 -> P 1/3, R 1/2, F1 2PR/(P+R) = 0.4
WNUT = "Oslo B-location\n\nto O\nOslo B-location\n\nBob B-person\n"
# OntoNotes-style: GPE and FAC are places, ORG is not; whole-sentence spans again:
#   "Oslo" GPE (0,1) TP;  "Brooklyn Bridge" FAC (0,2) TP;  "the UN" ORG: predicted (0,2) FP
ONTONOTES = "Oslo B-GPE\n\nBrooklyn B-FAC\nBridge I-FAC\n\nthe O\nUN B-ORG\n"


@pytest.fixture(scope="module")
def all_loc_model(tmp_path_factory):
    cfg = load_config(ROOT / "configs" / "tiny.yaml", ["model.hidden=4", "embeddings.source=random",
                                                       "embeddings.dim=4"])
    vocab = build_vocab([["Oslo", "to", "Bob"]])
    params = init_params(len(vocab), 4, cfg.model.radius, 4, n_casing=len(CASING_CLASSES), d_c=2,
                         rng=np.random.default_rng(0))
    params.u[:] = 0.0
    params.c[...] = 10.0
    path = tmp_path_factory.mktemp("models") / "all-loc"
    save_model(path, params, vocab, {"config": cfg.to_dict(), "classes": ["O", "LOC"], "threshold": 0.5})
    return path


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_wnut_style_types_counted_as_worked_out(all_loc_model, tmp_path):
    report = evaluate_file(all_loc_model, write(tmp_path, "wnut.txt", WNUT), scheme="iob2",
                           location_types=["location"])
    entity = report["loc"]["entity"]
    assert entity["support"] == 2
    assert entity["precision"] == pytest.approx(1 / 3)
    assert entity["recall"] == pytest.approx(1 / 2)
    assert entity["f1"] == pytest.approx(0.4)
    assert report["location_types"] == ["location"] and report["warnings"] == []


def test_ontonotes_style_several_types(all_loc_model, tmp_path):
    r = CliRunner().invoke(cli, ["evaluate", "--model", str(all_loc_model), "--data",
                                 str(write(tmp_path, "onto.txt", ONTONOTES)), "--scheme", "iob2",
                                 "--location-types", "GPE,LOC,FAC", "--format", "json"])
    assert r.exit_code == 0, r.output
    entity = json.loads(r.stdout)["loc"]["entity"]
    assert entity["support"] == 2  # Oslo (GPE) and Brooklyn Bridge (FAC); the UN is ORG
    assert entity["precision"] == pytest.approx(2 / 3) and entity["recall"] == pytest.approx(1.0)
    assert r.stderr == ""


def test_no_gold_location_warns_and_names_the_types(all_loc_model, tmp_path):
    # the model was trained with [LOC]; this file has none: a warning, the scores, exit 0
    f = write(tmp_path, "wnut.txt", WNUT)
    r = CliRunner().invoke(cli, ["evaluate", "--model", str(all_loc_model), "--data", str(f), "--scheme", "iob2"])
    assert r.exit_code == 0, r.output
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ner-window: warning: "), r.stderr
    for part in (str(f), "no gold entity of type LOC", "location, person", "--location-types"):
        assert part in lines[0], (part, lines[0])
    assert "locations: LOC" in r.stdout


def test_types_given_but_absent_also_warn(all_loc_model, tmp_path):
    report = evaluate_file(all_loc_model, write(tmp_path, "onto.txt", ONTONOTES), scheme="iob2",
                           location_types=["location"])
    assert report["loc"]["entity"]["support"] == 0
    assert len(report["warnings"]) == 1 and "FAC, GPE, ORG" in report["warnings"][0]


@pytest.mark.parametrize("value", [",", "LOC,", " "])
def test_empty_type_is_a_user_error(all_loc_model, tmp_path, value):
    r = CliRunner().invoke(cli, ["evaluate", "--model", str(all_loc_model), "--data",
                                 str(write(tmp_path, "wnut.txt", WNUT)), "--location-types", value])
    assert r.exit_code == 2, r.output
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ner-window: error: --location-types"), r.stderr
    assert "GPE,LOC,FAC" in lines[0] and "Traceback" not in r.output


def test_evaluate_threshold_changes_the_decision(all_loc_model, tmp_path):
    # every p is σ(10) = 0.9999546: at threshold 1.0 nothing is a location, at 0.99 everything is
    f = write(tmp_path, "wnut.txt", WNUT)
    none = evaluate_file(all_loc_model, f, scheme="iob2", location_types=["location"], threshold=1.0)
    assert none["threshold"] == 1.0
    assert none["loc"]["entity"]["precision"] == 0.0 and none["loc"]["entity"]["recall"] == 0.0
    r = CliRunner().invoke(cli, ["evaluate", "--model", str(all_loc_model), "--data", str(f), "--scheme", "iob2",
                                 "--location-types", "location", "--threshold", "0.99", "--format", "json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["threshold"] == 0.99 and report["loc"]["entity"]["f1"] == pytest.approx(0.4)


def test_evaluate_threshold_on_a_multiclass_model_is_a_user_error(tmp_path):
    cfg = load_config(ROOT / "configs" / "tiny.yaml", ["model.hidden=4", "embeddings.source=random",
                                                       "embeddings.dim=4", "model.task=multiclass"])
    vocab = build_vocab([["Oslo"]])
    params = init_params(len(vocab), 4, cfg.model.radius, 4, n_casing=len(CASING_CLASSES), d_c=2, n_classes=3,
                         rng=np.random.default_rng(0))
    save_model(tmp_path / "mc", params, vocab, {"config": cfg.to_dict(), "classes": ["O", "LOC", "PER"],
                                                "threshold": 0.5})
    r = CliRunner().invoke(cli, ["evaluate", "--model", str(tmp_path / "mc"), "--data",
                                 str(write(tmp_path, "wnut.txt", WNUT)), "--threshold", "0.3"])
    assert r.exit_code == 2 and len(r.stderr.splitlines()) == 1, r.output
    assert "--threshold applies to binary models" in r.stderr and "Traceback" not in r.output
