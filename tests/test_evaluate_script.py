"""scripts/evaluate.py: models × held-out files -> one Markdown and JSON table (issue 5).

Run as a user would (a subprocess with this Python) on tiny models trained once
for the module; every number in the table must be the one evaluate_file gives.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ner_window.evaluate import evaluate_file
from ner_window.train import train

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "evaluate.py"
DEV = ROOT / "data" / "dev.txt"
TEST = ROOT / "data" / "test.txt"


@pytest.fixture(scope="module")
def models(tmp_path_factory, tiny_config):
    root = tmp_path_factory.mktemp("evaluate-script")
    train(tiny_config("train.epochs=2"), out_dir=root / "binary", log=lambda s: None)
    train(tiny_config("train.epochs=1", "model.task=multiclass"), out_dir=root / "multiclass", log=lambda s: None)
    return root / "binary", root / "multiclass"


def run(*args, cwd=ROOT):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


def table_rows(markdown: str) -> list[list[str]]:
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines]


def test_one_row_per_model_and_file_in_markdown_and_json(models, tmp_path):
    binary, multiclass = models
    prefix = tmp_path / "results"
    out = run(binary, multiclass, "--data", DEV, "--data", TEST, "--out", prefix)
    assert out.returncode == 0, out.stderr
    md = (tmp_path / "results.md").read_text()
    assert out.stdout == md  # the printed table is the written one
    rows = table_rows(md)
    assert rows[0] == ["model", "data", "token P", "token R", "token F1", "entity P", "entity R", "entity F1",
                       "support (tokens)", "support (entities)", "threshold"]
    assert set(rows[1][2:]) == {"---:"}
    body = rows[2:]
    assert [(r[0], r[1]) for r in body] == [(f"`{m}`", f"`{d}`") for m in models for d in (DEV, TEST)]

    data = json.loads((tmp_path / "results.json").read_text())
    assert data["columns"] == rows[0]
    assert len(data["rows"]) == 4
    for row, cells in zip(data["rows"], body):
        report = evaluate_file(row["model"], row["data"])
        assert row["token"] == report["loc"]["token"] and row["entity"] == report["loc"]["entity"]
        assert row["task"] == report["task"]
        t, e = report["loc"]["token"], report["loc"]["entity"]
        expected = [f"{t['precision']:.4f}", f"{t['recall']:.4f}", f"{t['f1']:.4f}",
                    f"{e['precision']:.4f}", f"{e['recall']:.4f}", f"{e['f1']:.4f}", str(t["support"]), str(e["support"])]
        assert cells[2:10] == expected
    binary_row, mc_row = data["rows"][0], data["rows"][2]
    assert body[0][10] == f"{binary_row['threshold']:.3f}" and 0 < binary_row["threshold"] < 1
    assert body[2][10] == "argmax" and mc_row["threshold"] is None
    assert set(mc_row["per_type"]["per_type"]) == {"LOC", "MISC", "ORG", "PER"} and "per_type" not in binary_row


def test_without_out_it_only_prints(models, tmp_path):
    out = run(models[0], "--data", DEV, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert len(table_rows(out.stdout)) == 3
    assert list(tmp_path.iterdir()) == []


def test_a_run_directory_and_its_model_directory_give_the_same_row(models):
    a, b = table_rows(run(models[0], models[0] / "model", "--data", DEV).stdout)[2:]
    assert a[0] != b[0] and a[2:] == b[2:]


@pytest.mark.parametrize("bad", ["model", "data", "conll", "out"])
def test_errors_are_one_line_on_stderr_and_exit_2(models, tmp_path, bad):
    not_conll = tmp_path / "plain.txt"
    not_conll.write_text("just some words\n")
    args = {
        "model": [tmp_path / "no-such-model", "--data", DEV],
        "data": [models[0], "--data", tmp_path / "no-such.txt"],
        "conll": [models[0], "--data", DEV, "--data", not_conll, "--out", tmp_path / "r"],
        "out": [models[0], "--data", DEV, "--out", tmp_path / "no-dir" / "r"],
    }[bad]
    out = run(*args)
    assert out.returncode == 2
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("evaluate.py: error: ") and "Traceback" not in out.stderr
    named = {"model": "no-such-model", "data": "no-such.txt", "conll": "plain.txt", "out": "no-dir"}[bad]
    assert named in lines[0]
    assert not (tmp_path / "r.md").exists()  # nothing is written when any evaluation fails


def test_data_is_required():
    out = run("runs/base")
    assert out.returncode == 2 and "--data" in out.stderr
