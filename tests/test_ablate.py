"""scripts/ablate.py: the CoNLL-2003 ablation table (issue 6), on the bundled tiny data.

First the unseen-word slice on a worked example you can count by hand, then one
variant x one seed end to end through ablate(): every figure in the table must
be the best epoch's row of that run's metrics.csv.
"""

import csv
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from ner_window.config import load_config

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "configs" / "tiny.yaml"
TRAIN, DEV = ROOT / "data" / "train.txt", ROOT / "data" / "dev.txt"

_spec = importlib.util.spec_from_file_location("ablate", ROOT / "scripts" / "ablate.py")
ablate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ablate)


def test_unseen_slice_worked_example():
    # training saw "in" and "paris" (lowercased); dev has two sentences
    seen = {"in", "paris", "to"}
    tokens = [("in", "Paris", "and", "Oulu"),          # Paris seen, Oulu unseen
              ("to", "New", "Zealand", "to", "Kemi")]   # "New Zealand" wholly unseen, Kemi unseen
    gold = [[(1, 2), (3, 4)], [(1, 3), (4, 5)]]
    #                 in Paris and Oulu | to New Zealand to Kemi
    y = [0, 1, 0, 1, 0, 1, 1, 0, 1]
    pred = [0, 1, 1, 1, 0, 1, 0, 0, 1]  # Oulu merged with "and": wrong span; New without Zealand: wrong
    out = ablate.unseen_slice(tokens, gold, pred, y, seen)
    # unseen gold entities: Oulu, New Zealand, Kemi (Paris is seen); only Kemi is found exactly
    assert out["entity_support"] == 3 and out["entity_found"] == 1
    assert out["entity_recall"] == pytest.approx(1 / 3)
    # unseen tokens: and Oulu New Zealand Kemi -> y 0 1 1 1 1, pred 1 1 1 0 1: TP 3, FP 1, FN 1
    assert out["unseen_tokens"] == 5
    assert out["token"]["precision"] == pytest.approx(3 / 4)
    assert out["token"]["recall"] == pytest.approx(3 / 4)
    assert out["token"]["support"] == 4


def test_every_variant_is_a_valid_override_of_the_chosen_config():
    for name, (_, overrides) in ablate.VARIANTS.items():
        load_config(ablate.CONFIG, overrides)
    # the variant equal to the chosen config is not run twice
    names = ablate.default_variants()
    assert ablate.CHOSEN in names
    assert all(not ablate.is_noop(n) for n in names)
    assert len(names) < len(ablate.VARIANTS)


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    out = tmp_path_factory.mktemp("ablate")
    doc = ablate.ablate(str(TRAIN), str(DEV), out, seeds=[0], names=["no-casing"], config=TINY,
                        extra=["train.epochs=2"], log=lambda s: None)
    return out, doc


def test_table_holds_the_best_epoch_of_metrics_csv(result):
    out, doc = result
    rows = list(csv.DictReader(open(out / "runs" / "no-casing" / "seed-0" / "metrics.csv")))
    best = max(rows, key=lambda r: float(r["entity_f1"]))  # ties: the first, as the trainer keeps it
    run = doc["runs"]["no-casing"][0]
    assert run["best_epoch"] == int(best["epoch"])
    assert run["entity"]["f1"] == pytest.approx(float(best["entity_f1"]))
    assert run["token"]["f1"] == pytest.approx(float(best["token_f1"]))
    assert 0 < run["time_to_best"] <= run["time_total"] + 1
    # the variant really ran without casing vectors
    cfg = json.loads((out / "runs" / "no-casing" / "seed-0" / "config.json").read_text())
    assert cfg["model"]["casing"] is False and cfg["train"]["epochs"] == 2
    table = (out / "ablations.md").read_text()
    assert "| `no-casing` |" in table
    assert f"{100 * run['entity']['f1']:.1f} ± 0.0" in table
    saved = json.loads((out / "ablations.json").read_text())
    assert saved["summaries"]["no-casing"]["entity F1"]["mean"] == pytest.approx(run["entity"]["f1"])


def test_unseen_slice_of_a_run_is_a_subset_of_dev(result):
    _, doc = result
    unseen = doc["runs"]["no-casing"][0]["unseen"]
    seen = ablate.training_words(TRAIN, "iob2")
    dev_words = [t.lower() for line in DEV.read_text().splitlines() if line.strip() for t in line.split()[:1]]
    assert unseen["unseen_tokens"] == sum(w not in seen for w in dev_words if not w.startswith("-docstart-"))
    assert 0 < unseen["entity_support"] and 0.0 <= unseen["entity_recall"] <= 1.0
    # the <unk> stress test scores the same dev entities
    unk = doc["runs"]["no-casing"][0]["unk"]
    assert unk["unseen"]["entity_support"] == unseen["entity_support"] < unk["entity"]["support"]
    assert 0.0 <= unk["entity"]["f1"] <= 1.0


def test_a_finished_run_is_read_back_not_retrained(result, monkeypatch, tmp_path):
    import shutil

    out, doc = result

    def no_training(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr(ablate.train_module, "train", no_training)
    again = ablate.ablate(str(TRAIN), str(DEV), out, seeds=[0], names=["no-casing"], config=TINY,
                          extra=["train.epochs=2"], log=lambda s: None)
    assert again["summaries"] == doc["summaries"]
    # another config is not mistaken for the finished one (on a copy: this deletes the stale run)
    shutil.copytree(out, tmp_path / "copy")
    with pytest.raises(AssertionError, match="trained again"):
        ablate.ablate(str(TRAIN), str(DEV), tmp_path / "copy", seeds=[0], names=["no-casing"], config=TINY,
                      extra=["train.epochs=1"], log=lambda s: None)


def test_unk_unseen_withholds_the_rows_of_words_never_seen_in_training():
    from ner_window.vocab import Vocab

    vocab = Vocab(["<unk>", "<s>", "</s>", "in", "paris", "oulu", "0000", "1997"])
    seen = {"in", "paris", "1996"}  # "1996" makes its digit shape "0000" a training word too
    ids = np.array([[1, 3, 4, 5, 2], [3, 6, 7, 5, 0]], dtype=np.int32)
    out = ablate.unk_unseen(ids, vocab, seen)
    # oulu and 1997 were never in training -> <unk> (0); <s>, </s>, in, paris, 0000 stay
    assert out.tolist() == [[1, 3, 4, 0, 2], [3, 6, 0, 0, 0]]
    assert out.dtype == ids.dtype
