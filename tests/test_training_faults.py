"""Training faults, reproducibility and safety.

* a loss or gradient that becomes NaN/Inf stops training within that step, says to lower the
  learning rate, and keeps the last good checkpoint (or, before the first one, leaves nothing);
* SIGINT / SIGTERM write a checkpoint and exit cleanly; ``--resume`` then ends with parameters
  byte-identical to an uninterrupted run with the same seed;
* the same config and seed give byte-identical parameters and identical metrics in fresh processes;
* no pickle anywhere: every np.load has allow_pickle=False, YAML only through safe_load, and
  loading a model opens nothing outside its directory.

The real trainings run as subprocesses of the console entry point, all started at once
(they spend most of their time loading GloVe), each in its own working directory so that
``runs/latest`` never touches the repository.
"""

import ast
import csv
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import ner_window
from ner_window.cli import cli
from ner_window.errors import TrainingError

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = Path(ner_window.__file__).parent
NER_WINDOW = [sys.executable, "-m", "ner_window.cli"]
# fresh processes with their own (random) string-hash seeds: nothing may depend on it
ENV = {k: v for k, v in os.environ.items() if k not in ("NER_WINDOW_DEBUG", "PYTHONHASHSEED")}
SMALL = ["--set", f"data.train={ROOT / 'data' / 'train.txt'}", "--set", f"data.dev={ROOT / 'data' / 'dev.txt'}",
         "--set", "train.epochs=6", "--set", "train.patience=10", "--set", "train.batch_size=16"]
RANDOM = ["--set", "embeddings.source=random", "--set", "embeddings.dim=8"]
NAN_IN_EPOCH_2 = ["--set", "train.lr_schedule=step", "--set", "train.lr_step=1", "--set", "train.lr_decay=1e7"]
SIGNALS = {"INT": signal.SIGINT, "TERM": signal.SIGTERM}


def _train(cwd: Path, *args: str) -> subprocess.Popen:
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([*NER_WINDOW, "train", *args], cwd=cwd, env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _done(p: subprocess.Popen) -> dict:
    out, err = p.communicate(timeout=120)
    return {"rc": p.returncode, "stdout": out, "stderr": err}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every training of this module: run dirs and (exit code, stdout, stderr) of each process."""
    base = tmp_path_factory.mktemp("faults")
    config = ["--config", str(ROOT / "configs" / "tiny.yaml"), *SMALL]
    procs = {
        "A": _train(base / "A", *config, "--out", "run"),
        "B": _train(base / "B", *config, "--out", "run"),  # same config and seed, another process
        "INT": _train(base / "INT", *config, "--out", "run"),
        "TERM": _train(base / "TERM", *config, "--out", "run"),
        # the blow-ups do not need GloVe: random vectors keep them cheap
        "NAN2": _train(base / "NAN2", *config, *RANDOM, *NAN_IN_EPOCH_2, "--out", "run"),
        "NAN1": _train(base / "NAN1", *config, *RANDOM, "--set", "train.lr=1e6", "--out", "run"),
    }
    # interrupt each as soon as its first checkpoint (end of epoch 1) exists: mid-run, usually mid-epoch
    pending = dict(SIGNALS)
    deadline = time.monotonic() + 90
    while pending and time.monotonic() < deadline:
        for name, sig in list(pending.items()):
            if (base / name / "run" / "checkpoint" / "state.json").exists() or procs[name].poll() is not None:
                procs[name].send_signal(sig)
                del pending[name]
        time.sleep(0.005)
    results = {name: _done(p) for name, p in procs.items()}
    for name in SIGNALS:  # the checkpoint the signal wrote, before --resume replaces it
        state = base / name / "run" / "checkpoint" / "state.json"
        results[name]["state"] = json.loads(state.read_text())["state"] if state.exists() else None
    resumed = {name: _train(base / name, "--resume", "run") for name in SIGNALS}
    for name, p in resumed.items():
        results[f"{name}-resumed"] = _done(p)
    return {"dir": {name: base / name / "run" for name in procs}, **results}


def arrays(npz: Path) -> dict:
    with np.load(npz, allow_pickle=False) as f:
        return {k: (f[k].dtype.str, f[k].shape, f[k].tobytes()) for k in f.files}


def metrics_rows(run_dir: Path) -> list[dict]:
    with open(run_dir / "metrics.csv", newline="") as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


def one_error_line(result: dict) -> str:
    lines = result["stderr"].splitlines()
    assert len(lines) == 1 and "Traceback" not in result["stderr"], result["stderr"]
    return lines[0]


# --- reproducibility ----------------------------------------------------------------------------


def test_same_config_and_seed_give_byte_identical_parameters_and_metrics_in_fresh_processes(runs):
    a, b = runs["dir"]["A"], runs["dir"]["B"]
    assert runs["A"]["rc"] == 0 and runs["B"]["rc"] == 0, (runs["A"]["stderr"], runs["B"]["stderr"])
    assert len(metrics_rows(a)) == 6
    for f in ("model/params.npz", "checkpoint/params.npz", "checkpoint/best.npz", "checkpoint/velocity.npz"):
        assert arrays(a / f) == arrays(b / f), f
    assert metrics_rows(a) == metrics_rows(b)
    meta_a, meta_b = (json.loads((d / "model" / "meta.json").read_text()) for d in (a, b))
    for meta in (meta_a, meta_b):  # how long loading took is the only thing allowed to differ
        meta["embeddings"] = {k: v for k, v in meta["embeddings"].items() if not k.endswith("seconds")}
    assert meta_a == meta_b
    assert (a / "pr_curve.csv").read_text() == (b / "pr_curve.csv").read_text()


# --- SIGINT / SIGTERM and --resume ------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SIGNALS))
def test_signal_writes_a_checkpoint_and_resume_ends_byte_identical_to_an_uninterrupted_run(runs, name):
    sig = SIGNALS[name]
    run_dir, r = runs["dir"][name], runs[name]
    assert r["rc"] == 128 + sig, (r["rc"], r["stderr"])  # 130 for SIGINT, 143 for SIGTERM
    line = one_error_line(r)
    assert f"SIG{name}: checkpoint written to" in line and f"ner-window train --resume {Path('run')}" in line
    assert not list(run_dir.glob(".*tmp*")) and not list(run_dir.glob(".*old*"))  # the write was atomic
    state = r["state"]
    assert state and not state["done"] and state["epoch"] >= 1 and state["batch"] >= 1, state  # stopped mid-epoch
    assert f"at epoch {state['epoch'] + 1}, step {state['step']};" in line
    resumed = runs[f"{name}-resumed"]
    assert resumed["rc"] == 0, resumed["stderr"]
    assert "resuming run at epoch" in resumed["stdout"]
    a = runs["dir"]["A"]
    for f in ("model/params.npz", "checkpoint/params.npz", "checkpoint/velocity.npz"):
        assert arrays(run_dir / f) == arrays(a / f), f
    assert metrics_rows(run_dir) == metrics_rows(a)
    state = json.loads((run_dir / "checkpoint" / "state.json").read_text())["state"]
    assert state["done"] and state["epoch"] == 6


def test_resume_of_a_finished_run_does_nothing_and_bad_resumes_are_user_errors(runs, tmp_path):
    r = CliRunner().invoke(cli, ["train", "--resume", str(runs["dir"]["A"])])
    assert r.exit_code == 0 and "nothing to resume" in r.output
    r = CliRunner().invoke(cli, ["train", "--resume", str(tmp_path / "nope")])
    assert r.exit_code == 2 and "state.json" in r.stderr and "--config" in r.stderr
    damaged = tmp_path / "damaged"
    shutil.copytree(runs["dir"]["A"], damaged)
    raw = (damaged / "checkpoint" / "params.npz").read_bytes()
    (damaged / "checkpoint" / "params.npz").write_bytes(raw[: len(raw) // 2])
    r = CliRunner().invoke(cli, ["train", "--resume", str(damaged)])
    assert r.exit_code == 2 and isinstance(r.exception, SystemExit), (r.output, r.exception)
    assert len(r.stderr.splitlines()) == 1 and "checkpoint is damaged" in r.stderr
    r = CliRunner().invoke(cli, ["train", "--resume", str(damaged), "--set", "train.lr=0.1"])
    assert r.exit_code == 2 and "drop --config/--set" in r.stderr


# --- NaN / Inf ----------------------------------------------------------------------------------------


def test_nan_in_a_later_epoch_stops_with_advice_and_keeps_the_last_good_checkpoint(runs):
    run_dir, r = runs["dir"]["NAN2"], runs["NAN2"]
    assert r["rc"] == 2
    line = one_error_line(r)
    assert "at epoch 2" in line and "train.lr" in line and "lower the learning rate" in line
    assert f"the last good checkpoint in {Path('run') / 'checkpoint'} was kept" in line
    # the checkpoint is the one written after epoch 1: whole, finite, and resumable
    doc = json.loads((run_dir / "checkpoint" / "state.json").read_text())
    assert (doc["state"]["epoch"], doc["state"]["batch"], doc["state"]["done"]) == (1, 0, False)
    for f in ("params.npz", "best.npz", "velocity.npz"):
        with np.load(run_dir / "checkpoint" / f, allow_pickle=False) as npz:
            assert all(np.isfinite(npz[k]).all() for k in npz.files), f
    # and the best model so far still loads and scores
    r = CliRunner().invoke(cli, ["evaluate", "--model", str(run_dir), "--data", str(ROOT / "data" / "dev.txt")])
    assert r.exit_code == 0, r.output
    assert len(metrics_rows(run_dir)) == 1


def test_nan_in_the_first_epoch_leaves_no_half_run_directory(runs):
    r = runs["NAN1"]
    assert r["rc"] == 2
    line = one_error_line(r)
    assert "at epoch 1" in line and "no checkpoint had been written yet" in line and "--set train.lr=" in line
    assert not runs["dir"]["NAN1"].exists()


def test_a_nan_gradient_stops_training_within_that_step(tmp_path, monkeypatch):
    """The loss of step k is computed before its update, so a NaN *gradient* at step k would
    show in the loss only at step k+1: the trainer checks the parameters after every step."""
    import ner_window.train as tr
    from ner_window.config import load_config

    real_step, calls = tr.train_step, []

    def step_with_nan_gradient(params, *args, **kwargs):
        loss = real_step(params, *args, **kwargs)
        calls.append(loss)
        if len(calls) == 3:
            params.W[0, 0] = np.nan  # as if dW had been NaN: the loss returned is still finite
        return loss

    monkeypatch.setattr(tr, "train_step", step_with_nan_gradient)
    monkeypatch.chdir(tmp_path)
    cfg = load_config(ROOT / "configs" / "tiny.yaml", [*SMALL[1::2], *RANDOM[1::2]])
    with pytest.raises(TrainingError, match=r"a gradient became NaN or infinite at epoch 1, step 3 .*lower the "
                                            r"learning rate"):
        tr.train(cfg, out_dir=tmp_path / "run", log=lambda s: None)
    assert len(calls) == 3 and all(math.isfinite(x.J) for x in calls)
    assert not (tmp_path / "run").exists() and not (tmp_path / "runs").exists()


# --- safety: no pickle, safe YAML, nothing in a model directory is executed or followed -----------------


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            owner = f.value.id if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) else ""
            yield node, owner, name


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_no_pickle_and_only_safe_yaml_in_the_package(path):
    source = path.read_text(encoding="utf-8")
    for bad in ("allow_pickle=True", "yaml.load(", "yaml.unsafe_load", "yaml.full_load", "UnsafeLoader",
                "import pickle", "from pickle", "cPickle", "import dill", "import joblib", "import shelve",
                "import marshal", "read_pickle", "to_pickle"):
        assert bad not in source, f"{path.name}: {bad}"
    for node, owner, name in _calls(ast.parse(source)):
        where = f"{path.name}:{node.lineno}"
        if owner in ("np", "numpy") and name == "load":
            kw = {k.arg: k.value for k in node.keywords}
            assert isinstance(kw.get("allow_pickle"), ast.Constant) and kw["allow_pickle"].value is False, where
        if owner == "yaml":
            assert name in ("safe_load", "safe_dump", "dump") or not name.startswith("load"), where
        assert not (owner == "" and name in ("eval", "exec", "compile")), where
        if owner == "" and name == "__import__":  # a fixed module name is fine; a name from data is not
            assert all(isinstance(a, ast.Constant) for a in node.args), where
        assert not (owner == "KeyedVectors" and name == "load"), where  # gensim's .load is a pickle


def test_loading_and_using_a_model_opens_only_files_inside_its_directory(runs, tmp_path):
    from ner_window.tagger import Tagger

    model = tmp_path / "model"
    shutil.copytree(runs["dir"]["A"] / "model", model)
    meta = json.loads((model / "meta.json").read_text())
    # paths a hostile or foreign model might carry: none of them may be opened
    meta["config"]["data"].update(train="/etc/passwd", dev="../../secret.txt")
    meta["config"]["embeddings"].update(source="file", path="/etc/shadow", cache_dir="/")
    (model / "meta.json").write_text(json.dumps(meta))
    opened, unpickled = [], []

    def hook(event, args):
        if not active:
            return
        if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
            opened.append(Path(os.fsdecode(args[0])).resolve())
        if event == "pickle.find_class":
            unpickled.append(args)

    active = False
    sys.addaudithook(hook)  # audit hooks cannot be removed; this one is inert outside the block
    active = True
    try:
        tagger = Tagger.load(model)
        tagged = tagger.tag("Flights from Paris to Rome")
    finally:
        active = False
    assert [t.text for t in tagged.tokens] == ["Flights", "from", "Paris", "to", "Rome"]
    data_files = [p for p in opened if p.suffix not in (".py", ".pyc", ".so") and "site-packages" not in str(p)
                  and "__pycache__" not in str(p)]
    assert data_files and all(p.is_relative_to(model.resolve()) for p in data_files), data_files
    assert not unpickled
