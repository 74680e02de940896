"""Reliability (issue 17): a failed write, a full disk, an old run or an odd file never costs a
traceback, a silent overwrite or garbage output.

Each case feeds the bad input through the command line (click's CliRunner, or a real process
where a signal, a file-size limit or /dev/full is involved) and checks the one-line message,
the exit code, and that nothing was lost or half-written: previous runs keep their bytes,
output files are whole or absent, no temporary file is left.  Trainings use random 8-dim
vectors and the dev file, so each takes about a second.
"""

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ner_window.artifact import save_model
from ner_window.cli import cli
from ner_window.conll import read_conll
from ner_window.model import init_params
from ner_window.train import classes_for, train
from ner_window.vocab import SPECIALS, Vocab, build_vocab
from ner_window.windows import CASING_CLASSES, OTHER_LOC, labelled_data

from conftest import make_tiny_config

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "configs" / "tiny.yaml"
DEV = ROOT / "data" / "dev.txt"
FAST = ["--config", str(TINY), "--set", "embeddings.source=random", "--set", "embeddings.dim=8",
        "--set", "train.epochs=1", "--set", f"data.train={DEV}", "--set", f"data.dev={DEV}"]
NER_WINDOW = [sys.executable, "-m", "ner_window"]
ENV = {k: v for k, v in os.environ.items() if k != "NER_WINDOW_DEBUG"}


def run(*args, input=None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=input)


def one_line_error(r, *named, code=2) -> str:
    """Exit ``code``, one line on stderr naming every string in ``named``, no traceback."""
    assert r.exit_code == code, (r.exit_code, r.output, r.exception)
    assert isinstance(r.exception, SystemExit), r.exception
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ner-window: error: "), r.stderr
    for name in named:
        assert name in lines[0], (name, lines[0])
    return lines[0]


def snapshot(directory: Path) -> dict:
    """Every file under ``directory`` and its bytes."""
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def hidden(directory: Path) -> list[str]:
    """Temporaries and leftovers of atomic writes: names starting with a dot, anywhere below."""
    return sorted(str(p) for p in directory.rglob(".*"))


def write_conll(path: Path, sentences: list[list[tuple[str, str]]]) -> Path:
    path.write_text("".join("".join(f"{w} {t}\n" for w, t in s) + "\n" for s in sentences), encoding="utf-8")
    return path


# --- train --out: an earlier run is never replaced without --overwrite ---------------------------------------


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "exp1"
    r = run("train", *FAST, "--out", out)
    assert r.exit_code == 0, r.output
    return out


def test_train_refuses_a_previous_run_and_leaves_it_byte_for_byte(first_run, tmp_path):
    before = snapshot(first_run)
    line = one_line_error(run("train", *FAST, "--set", "train.seed=1", "--out", first_run), str(first_run),
                          "holds a run already", "--overwrite", "--resume")
    assert "ner-window train --resume" in line
    assert snapshot(first_run) == before


def test_overwrite_replaces_the_run_and_keeps_the_users_other_files(first_run, tmp_path):
    run_dir = tmp_path / "exp1"
    run_dir.mkdir()
    for name, data in snapshot(first_run).items():
        (run_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (run_dir / name).write_bytes(data)
    (run_dir / "notes.txt").write_text("my notes")
    (run_dir / ".checkpoint.old-12345").mkdir()  # what a kill between the two renames leaves
    before = snapshot(run_dir)
    r = run("train", *FAST, "--set", "train.seed=1", "--out", run_dir, "--overwrite")
    assert r.exit_code == 0, r.output
    assert f"--overwrite: replacing the run in {run_dir}" in r.output
    after = snapshot(run_dir)
    assert after["notes.txt"] == b"my notes" and not hidden(run_dir)
    assert after["model/params.npz"] != before["model/params.npz"]  # seed 1 trained anew
    assert json.loads(after["config.json"])["train"]["seed"] == 1
    assert set(after) == set(before)


def test_a_directory_of_other_files_is_refused_even_with_overwrite(tmp_path):
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "chapter1.tex").write_text("\\section{Intro}")
    for extra in ([], ["--overwrite"]):
        one_line_error(run("train", *FAST, "--out", mine, *extra), str(mine), "is not empty", "chapter1.tex",
                       "holds no ner-window run")
    assert snapshot(mine) == {"chapter1.tex": b"\\section{Intro}"}
    (tmp_path / "empty").mkdir()
    assert run("train", *FAST, "--out", tmp_path / "empty").exit_code == 0  # an empty directory is fine


def test_the_default_out_numbers_new_runs_and_latest_moves_only_when_training_succeeds(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        assert run("train", *FAST).exit_code == 0
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["latest", "tiny", "tiny-2"]
    assert os.readlink(tmp_path / "runs" / "latest") == "tiny-2"
    # a training that fails (the loss blows up in its first step) moves nothing and leaves nothing
    r = run("train", *FAST, "--set", "train.lr=1e6")
    one_line_error(r, "lower the learning rate")
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["latest", "tiny", "tiny-2"]
    assert os.readlink(tmp_path / "runs" / "latest") == "tiny-2"


def test_a_signal_before_the_first_checkpoint_leaves_no_half_run(tmp_path, monkeypatch):
    import ner_window.train as train_module

    def interrupted(*args):
        raise KeyboardInterrupt  # as signals_raise raises SIGINT/SIGTERM before the loop's own handlers

    monkeypatch.setattr(train_module, "_train_epoch", interrupted)
    r = run("train", *FAST, "--out", tmp_path / "run")
    assert r.exit_code == 130 and r.stderr == "ner-window: interrupted by SIGINT\n"
    assert not (tmp_path / "run").exists()
    (tmp_path / "empty").mkdir()  # a directory that was there before stays, as it was
    assert run("train", *FAST, "--out", tmp_path / "empty").exit_code == 130
    assert list((tmp_path / "empty").iterdir()) == []


# --- degenerate training input ------------------------------------------------------------------------------------

NO_LOC = [[("Alice", "B-PER"), ("met", "O"), ("Bob", "B-PER")], [("IBM", "B-ORG"), ("grew", "O")]] * 40


@pytest.mark.parametrize("key", ["train", "dev"])
def test_a_file_without_any_location_is_refused_before_a_run_is_written(tmp_path, key):
    f = write_conll(tmp_path / "no_loc.txt", NO_LOC)
    r = run("train", *FAST, "--set", f"data.{key}={f}", "--set", "train.batch_size=8", "--out", tmp_path / "run")
    line = one_line_error(r, f"data.{key}", "no_loc.txt", "holds no entity of data.location_types ['LOC']",
                          "80 PER, 40 ORG")
    assert ("data.dev: null" in line) == (key == "dev")
    assert not (tmp_path / "run").exists()


def test_location_types_decide_what_a_location_is():
    """OntoNotes-style data with location_types [GPE]: GPE is the location, the data's own LOC type
    is another type (OTHER_LOC), in both tasks."""
    from ner_window.conll import Sentence

    sent = Sentence(("Paris", "Alps", "Bob"), ("B-GPE", "B-LOC", "B-PER"))
    vocab = Vocab([*SPECIALS, "paris", "alps", "bob"])
    binary = labelled_data([sent], vocab, 1, ["O", "LOC"], ["GPE"])
    assert binary.windows.y.tolist() == [1, 0, 0] and binary.spans == [[("LOC", 0, 1), (OTHER_LOC, 1, 2),
                                                                         ("PER", 2, 3)]]
    cfg = make_tiny_config("model.task=multiclass", "data.location_types=[GPE]")
    classes = classes_for(cfg, [sent])
    assert classes == ["O", "LOC", OTHER_LOC, "PER"]
    assert labelled_data([sent], vocab, 1, classes, ["GPE"]).windows.y.tolist() == [1, 2, 3]


def test_a_run_without_dev_data_says_what_it_saved_without_warnings(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = run("train", *FAST, "--set", "data.dev=null", "--set", "train.epochs=2", "--out", tmp_path / "run")
    assert r.exit_code == 0, r.output
    last = r.output.strip().splitlines()[-1]
    assert last.startswith("no dev data: the model is the last epoch's (2; threshold 0.5, not tuned); model in")
    assert "F1" not in last and not [str(w.message) for w in caught]
    assert (tmp_path / "run" / "learning_curve.png").is_file()


def test_resume_refuses_a_training_file_that_changed(tmp_path):
    data = tmp_path / "train.txt"
    data.write_bytes(DEV.read_bytes())

    class Stop(Exception):
        pass

    def stop_in_epoch_2(row, improved):
        if row["epoch"] == 2:
            raise Stop

    cfg = make_tiny_config("embeddings.source=random", "embeddings.dim=8", "train.epochs=3", f"data.train={data}")
    with pytest.raises(Stop):  # a run that stopped after its first epoch's checkpoint
        train(cfg, out_dir=tmp_path / "run", log=lambda s: None, point_latest=False, on_epoch=stop_in_epoch_2)
    data.write_bytes(DEV.read_bytes() + b"Paris NNP B-LOC\n\n")
    before = snapshot(tmp_path / "run")
    one_line_error(run("train", "--resume", tmp_path / "run"), "--resume", "data.train", "train.txt",
                   "is not the file this run was trained on", "restore that file")
    assert snapshot(tmp_path / "run") == before
    data.write_bytes(DEV.read_bytes())
    r = run("train", "--resume", tmp_path / "run")
    assert r.exit_code == 0 and "resuming" in r.output, r.output


# --- configs ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, named", [
    ("", ["c.yaml: is empty", "configs/base.yaml"]),
    ("# only a comment\n", ["c.yaml: is empty"]),
    ("train:\n  lr: 0.1\n  epochs: 3\n  lr: 0.5\n", ["c.yaml:4: key 'lr' is given twice (first on line 2)"]),
    ("train:\n  lr: 0.1\nmodel:\n  hidden: 5\ntrain:\n  epochs: 2\n", ["c.yaml:5: key 'train' is given twice"]),
])
def test_an_empty_config_and_a_key_given_twice_are_errors(tmp_path, text, named):
    c = tmp_path / "c.yaml"
    c.write_text(text)
    one_line_error(run("train", "--config", c, "--out", tmp_path / "run"), *named)
    assert not (tmp_path / "run").exists()


def test_a_bad_set_names_the_set_not_the_config_file(tmp_path):
    line = one_line_error(run("train", "--config", TINY, "--set", "train.lr=fast", "--out", tmp_path / "run"))
    assert line.startswith("ner-window: error: --set train.lr=fast: train.lr = 'fast' must be float")
    assert "tiny.yaml" not in line
    c = tmp_path / "c.yaml"
    c.write_text("train:\n  lr: fast\n")
    line = one_line_error(run("train", "--config", c, "--set", "train.epochs=2", "--out", tmp_path / "run"))
    assert line.startswith(f"ner-window: error: {c}: train.lr = 'fast'")  # the file's own mistake: the file


def test_a_relative_data_path_says_where_it_was_looked_for(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    one_line_error(run("train", "--config", TINY, "--out", tmp_path / "run"), "data.train = 'data/", "does not exist in",
                   str(tmp_path), "relative path is read from the directory you run in")


# --- the command line's edges -------------------------------------------------------------------------------------


@pytest.mark.parametrize("args, named", [
    (["gradcheck", "--seed", "-5"], ["--seed", "-5", "x>=0", "gradcheck --help"]),
    (["gradcheck", "--task", "multiclass", "--loss", "squared"], ["--loss squared", "drop --loss"]),
    (["evaluate", "--data", DEV, "--errors", "-1"], ["--errors", "-1"]),
    (["predict", "--format", "yaml", "x"], ["--format", "yaml"]),
])
def test_bad_options_are_one_line_exit_2(args, named):
    one_line_error(run(*args), *named)


def test_python_dash_m_runs_the_command_line():
    p = subprocess.run([*NER_WINDOW, "gradcheck", "--seed", "-5"], capture_output=True, text=True, env=ENV,
                       timeout=60)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "--seed" in p.stderr
    p = subprocess.run([*NER_WINDOW, "--version"], capture_output=True, text=True, env=ENV, timeout=60)
    assert p.returncode == 0 and "ner-window, version" in p.stdout


@pytest.fixture(scope="module")
def multiclass_model(tmp_path_factory):
    words = [*SPECIALS, *sorted({t.lower() for s in read_conll(DEV, "iob2") for t in s.tokens})[:500]]
    params = init_params(len(words), 6, 2, 5, n_casing=len(CASING_CLASSES), d_c=3, n_classes=5,
                         rng=np.random.default_rng(0))
    meta = {"config": {"data": {"scheme": "iob2", "location_types": ["LOC"]},
                       "model": {"task": "multiclass", "radius": 2, "hidden": 5, "activation": "tanh"}},
            "classes": ["O", "LOC", "MISC", "ORG", "PER"], "threshold": 0.5}
    path = tmp_path_factory.mktemp("mc") / "model"
    save_model(path, params, Vocab(words), meta)
    return path


def test_a_multiclass_model_reports_its_argmax_not_a_threshold(multiclass_model):
    r = run("evaluate", "--model", multiclass_model, "--data", DEV)
    assert r.exit_code == 0 and "(multiclass, argmax)" in r.stdout and "threshold" not in r.stdout.split("\n")[0]
    r = run("evaluate", "--model", multiclass_model, "--data", DEV, "--format", "json")
    assert json.loads(r.stdout)["threshold"] is None


# --- writes that fail ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    vocab = build_vocab([s.tokens for s in read_conll(DEV, "iob2")])
    params = init_params(len(vocab), 8, 2, 8, n_casing=len(CASING_CLASSES), d_c=4, rng=np.random.default_rng(0))
    cfg = make_tiny_config("model.hidden=8", "embeddings.source=random", "embeddings.dim=8")
    path = tmp_path_factory.mktemp("models") / "binary"
    save_model(path, params, vocab, {"config": cfg.to_dict(), "classes": ["O", "LOC"], "threshold": 0.5})
    return path


def test_evaluate_prints_its_scores_when_an_output_cannot_be_written(model_dir, tmp_path):
    r = run("evaluate", "--model", model_dir, "--data", DEV, "--predictions", "/dev/full", "--format", "json")
    one_line_error(r, "/dev/full: cannot write (No space left on device)", "the disk is full")
    assert json.loads(r.stdout)["loc"]["entity"]["f1"] >= 0  # the report came out whole before the error


def test_evaluate_to_a_path_under_a_file_fails_before_any_work(model_dir, tmp_path):
    (tmp_path / "a_file").write_text("keep")
    r = run("evaluate", "--model", model_dir, "--data", DEV, "--predictions", tmp_path / "pred.txt",
            "--pr-curve", tmp_path / "a_file" / "pr.csv")
    one_line_error(r, "--pr-curve", "a_file is a file, not a directory")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"] and r.stdout == ""


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only directory anyway (CAP_DAC_OVERRIDE); "
                                             "/dev/full and a path under a file cover failed writes as root")
def test_evaluate_into_a_read_only_directory(model_dir, tmp_path):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        r = run("evaluate", "--model", model_dir, "--data", DEV, "--pr-curve", out / "pr.csv")
        one_line_error(r, "--pr-curve", "no permission")
    finally:
        out.chmod(0o755)
    assert list(out.iterdir()) == []


def test_predict_to_dev_full_is_one_line_exit_2(model_dir, tmp_path):
    f = tmp_path / "in.txt"
    f.write_text("museums in Paris are amazing\n" * 5000)
    with open("/dev/full", "wb") as full:
        p = subprocess.run([*NER_WINDOW, "predict", "--model", str(model_dir), "--file", str(f)], stdout=full,
                           stderr=subprocess.PIPE, text=True, env=ENV, timeout=60)
    assert p.returncode == 2 and p.stderr == ("ner-window: error: stdout: cannot write (No space left on device) "
                                              "after 0 complete lines; the disk is full; free some space or write "
                                              "elsewhere\n")


def test_training_onto_a_full_disk_is_one_line_and_leaves_no_half_run(tmp_path):
    """A file-size limit (RLIMIT_FSIZE: no privilege needed) fails the first model write with EFBIG,
    as a full disk fails it with ENOSPC: one line, exit 2, and no run directory half written."""
    limit = "import resource, runpy, sys; resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, 50_000)); " \
            "sys.argv = ['ner-window', *sys.argv[1:]]; runpy.run_module('ner_window', run_name='__main__')"
    env = {**ENV, "NER_WINDOW_KERNELS": "numpy"}  # numba's on-disk cache is not this test's business
    p = subprocess.run([sys.executable, "-c", limit, "train", *FAST, "--out", str(tmp_path / "run")],
                       capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and "cannot write (File too large)" in lines[0] and "Traceback" not in p.stderr
    assert not (tmp_path / "run").exists()


# --- signals: SIGINT and SIGTERM stop cleanly ------------------------------------------------------------------------

SIGNALS = {"INT": signal.SIGINT, "TERM": signal.SIGTERM}


@pytest.mark.parametrize("name", sorted(SIGNALS))
def test_a_signal_during_predict_file_leaves_complete_lines_and_counts_them(model_dir, tmp_path, name):
    lines = [f"line {i} : museums in Paris are amazing , said Ms. Smith of New York" for i in range(200_000)]
    src = tmp_path / "in.txt"
    src.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.jsonl"
    with open(out, "wb") as f:
        p = subprocess.Popen([*NER_WINDOW, "predict", "--model", str(model_dir), "--file", str(src), "--format",
                              "jsonl"], stdout=f, stderr=subprocess.PIPE, text=True, env=ENV)
        deadline = time.monotonic() + 60
        while out.stat().st_size == 0 and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.01)  # the first lines are out: it is tagging
        p.send_signal(SIGNALS[name])
        _, err = p.communicate(timeout=60)
    assert p.returncode == 128 + SIGNALS[name], err
    written = out.read_text().splitlines(keepends=True)
    n = len(written)
    assert err == f"ner-window: interrupted by SIG{name}; {n:,} complete lines written to stdout\n"
    assert 0 < n < len(lines) and all(w.endswith("\n") for w in written)
    assert [json.loads(w)["text"] for w in written] == lines[:n]


def test_a_signal_while_predict_waits_for_stdin_stops_at_once(model_dir, tmp_path):
    """20,000 lines of 3 tokens: the first chunk (50,000 tokens) is tagged and written, the rest
    waits for more input on the open stdin, where the signal finds it."""
    out = tmp_path / "out.txt"
    with open(out, "wb") as f:
        p = subprocess.Popen([*NER_WINDOW, "predict", "--model", str(model_dir)], stdin=subprocess.PIPE, stdout=f,
                             stderr=subprocess.PIPE, text=True, env=ENV)
        p.stdin.write("museums in Paris\n" * 20_000)
        p.stdin.flush()
        deadline = time.monotonic() + 60
        while out.stat().st_size == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.5)  # the chunk is written; now it blocks reading stdin
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        err = p.stderr.read()
        p.wait(timeout=30)
        seconds = time.monotonic() - t0
    written = out.read_text()
    n = written.count("\n")
    assert p.returncode == 143 and err == f"ner-window: interrupted by SIGTERM; {n:,} complete lines written to stdout\n"
    assert 10_000 < n < 20_000 and written.endswith("\n") and seconds < 10


@pytest.mark.parametrize("name", sorted(SIGNALS))
def test_a_signal_during_evaluate_leaves_no_file_half_written(model_dir, tmp_path, name):
    """The data comes through a FIFO, so the signal is sent once evaluate has loaded the model and is
    reading (then scoring) the data: every output is then whole or absent, no temporary is left."""
    fifo = tmp_path / "data.txt"
    os.mkfifo(fifo)
    outs = tmp_path / "outs"
    outs.mkdir()
    p = subprocess.Popen([*NER_WINDOW, "evaluate", "--model", str(model_dir), "--data", str(fifo),
                          "--predictions", str(outs / "pred.txt"), "--pr-curve", str(outs / "pr.csv")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    with open(fifo, "wb") as f:  # opens once evaluate opens the FIFO to read it
        f.write(DEV.read_bytes() * 8)
    p.send_signal(SIGNALS[name])
    out, err = p.communicate(timeout=60)
    assert p.returncode == 128 + SIGNALS[name], err
    assert err == f"ner-window: interrupted by SIG{name}\n" and out == ""
    assert not hidden(outs)
    if (outs / "pred.txt").exists():  # the signal came after it was written: it is whole
        assert (outs / "pred.txt").read_text().count("\n\n") == 8 * len(read_conll(DEV, "iob2"))


# --- the memory benchmark runs (its figures are in BENCHMARKS.md) ---------------------------------------------------


def test_the_long_line_benchmark_prints_its_table(model_dir):
    p = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_long_line.py"), "--model", str(model_dir),
                        "--mb", "0.3", "--whole-mb", "0.05"], capture_output=True, text=True, env=ENV, timeout=120)
    assert p.returncode == 0, p.stderr
    rows = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    assert [(r["path"], r["format"], r["rc"]) for r in rows] == [
        ("predict --file (pieces)", "text", 0), ("predict --file (pieces)", "jsonl", 0),
        ("tag_lines, the line whole", "text", 0), ("tag_lines, the line whole", "jsonl", 0)]
    assert all(r["peak_mb"] > 10 for r in rows) and "| predict --file (pieces) | 0.3 MB | text |" in p.stdout
