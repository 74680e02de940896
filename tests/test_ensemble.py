"""train.ensemble: K members merged into one network whose score is the mean of theirs (ensemble.py).

* a worked example by hand: two one-word "windows" with H = 1, where the merged network's
  arithmetic can be followed line by line;
* the merge is exact for every kind of model (binary, multiclass, sentence-level, no casing,
  no output bias): s' = mean of the members' s, to float64 rounding;
* a real training: the members are the runs a single-model config would train with their
  seeds, the saved model loads, scores the mean of theirs and tags; a run stopped by SIGINT
  in its second member resumes to byte-identical parameters.
"""

import json
import os
import signal

import numpy as np
import pytest

from ner_window import model as M
from ner_window.artifact import load_model
from ner_window.ensemble import member_seeds, merge
from ner_window.errors import TrainingError
from ner_window.fast import predict_scores
from ner_window.sentence import n_tags, path_score
from ner_window.tagger import Tagger
from ner_window.train import Interrupted, train


def test_worked_example_two_members_one_hidden_unit_each():
    # window of one token (m = 0), d = 1, no casing, H = 1: member k scores s_k = u_k tanh(W_k e + b_k) + c_k
    one = M.Params(E=np.array([[1.0], [2.0]]), C=None, W=np.array([[0.5]]), b=np.array([0.0]),
                   u=np.array([2.0]), c=np.array(1.0))
    two = M.Params(E=np.array([[-1.0], [0.5]]), C=None, W=np.array([[1.0]]), b=np.array([0.25]),
                   u=np.array([-1.0]), c=np.array(-3.0))
    m = merge([one, two])
    assert m.E.tolist() == [[1.0, -1.0], [2.0, 0.5]]  # E' = [E_1 | E_2]
    assert m.W.tolist() == [[0.5, 0.0], [0.0, 1.0]]  # block diagonal
    assert m.b.tolist() == [0.0, 0.25] and m.u.tolist() == [1.0, -0.5] and float(m.c) == -1.0  # u' = u/K, c' = mean
    # word 1: member one 2·tanh(0.5·2) + 1 = 2.5232, member two -tanh(0.5 + 0.25) - 3 = -3.6351; mean -0.5560
    s, _ = M.forward(m, M.gather(m, np.array([[1]]), None), "tanh")
    assert s[0] == pytest.approx((2 * np.tanh(1.0) + 1 + -np.tanh(0.75) - 3) / 2, abs=1e-12)
    assert s[0] == pytest.approx(-0.5560, abs=1e-4)


def _members(rng, K, *, n_classes=1, casing=True, bias=True, sentence=False):
    out = []
    for _ in range(K):
        p = M.init_params(30, 6, 2, 5, n_casing=8 if casing else 0, d_c=3 if casing else 0,
                          n_classes=n_tags(2) if sentence else n_classes, output_bias=bias, rng=rng,
                          dtype=np.float64)
        p.b[:] = rng.normal(size=p.b.shape)
        if p.c is not None:
            p.c[...] = rng.normal(size=p.c.shape)
        if sentence:
            p.A = rng.normal(size=(p.n_classes + 1, p.n_classes))
        out.append(p)
    return out


@pytest.mark.parametrize("kind", ["binary", "multiclass", "sentence", "no casing", "no output bias"])
@pytest.mark.parametrize("K", [1, 2, 4])
def test_the_merged_score_is_the_mean_of_the_members_scores(kind, K):
    rng = np.random.default_rng(K)
    members = _members(rng, K, n_classes=4 if kind == "multiclass" else 1, casing=kind != "no casing",
                       bias=kind != "no output bias", sentence=kind == "sentence")
    m = merge(members)
    assert m.hidden == 5 * K and m.d == 6 * K and m.window == 5
    ids = rng.integers(0, 30, size=(200, 5)).astype(np.int32)
    casing = None if kind == "no casing" else rng.integers(0, 8, size=(200, 5)).astype(np.int32)
    s = predict_scores(m, ids, casing, "tanh")
    mean = np.mean([predict_scores(p, ids, casing, "tanh") for p in members], axis=0)
    np.testing.assert_allclose(s, mean, rtol=0, atol=1e-12)
    if kind == "sentence":  # a tag path's score is the mean of the members' path scores
        tags = rng.integers(0, m.n_classes, size=12)
        got = path_score(s[:12], m.A, tags)
        want = np.mean([path_score(predict_scores(p, ids[:12], casing[:12], "tanh"), p.A, tags) for p in members])
        assert got == pytest.approx(want, abs=1e-12)


def test_members_of_different_shapes_are_refused():
    rng = np.random.default_rng(0)
    a, = _members(rng, 1)
    b = M.init_params(30, 6, 2, 7, n_casing=8, d_c=3, rng=rng, dtype=np.float64)
    with pytest.raises(TrainingError, match="trained from one config"):
        merge([a, b])


def test_member_seeds_never_overlap_between_ensemble_seeds():
    assert member_seeds(0, 3) == [0, 1, 2] and member_seeds(1, 3) == [3, 4, 5] and member_seeds(7, 1) == [7]


RANDOM_SMALL = ("embeddings.source=random", "embeddings.dim=8", "train.epochs=3", "train.patience=5")


@pytest.fixture(scope="module")
def ensemble_runs(tmp_path_factory, request):
    from conftest import make_tiny_config

    root = tmp_path_factory.mktemp("ensemble")
    cfg = make_tiny_config(*RANDOM_SMALL, "train.ensemble=2", "train.seed=1")
    train(cfg, out_dir=root / "whole", log=lambda s: None, point_latest=False)
    single = make_tiny_config(*RANDOM_SMALL, "train.seed=3")  # the ensemble's second member, trained alone
    train(single, out_dir=root / "single", log=lambda s: None, point_latest=False)
    calls = []

    def stop_in_second_member(row, improved):  # SIGINT after the second member's first epoch
        calls.append(row["epoch"])
        if len(calls) == 4:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(Interrupted) as stopped:
        train(cfg, out_dir=root / "stopped", log=lambda s: None, point_latest=False, on_epoch=stop_in_second_member)
    lines = []
    train(resume=root / "stopped", log=lines.append, point_latest=False)
    return {"root": root, "cfg": cfg, "stopped": stopped.value, "resume_log": lines}


def test_an_ensemble_run_trains_its_members_and_saves_their_mean(ensemble_runs):
    root, cfg = ensemble_runs["root"], ensemble_runs["cfg"]
    run = root / "whole"
    assert sorted(p.name for p in (run / "members").iterdir()) == ["seed-2", "seed-3"]
    assert (run / "errors.txt").is_file() and (run / "pr_curve.csv").is_file()
    merged = load_model(run / "model")
    members = [load_model(run / "members" / s / "model") for s in ("seed-2", "seed-3")]
    assert merged.params.hidden == 2 * cfg.model.hidden and merged.config.train.ensemble == 2
    assert [m["seed"] for m in merged.meta["ensemble"]] == [2, 3]
    # a member is exactly the run a single-model config trains with its seed
    single = load_model(root / "single" / "model")
    for name in ("E", "C", "W", "b", "u", "c"):
        assert np.array_equal(getattr(members[1].params, name), getattr(single.params, name)), name
    rng = np.random.default_rng(0)
    ids = rng.integers(0, len(merged.vocab), size=(500, 5)).astype(np.int32)
    casing = rng.integers(0, 8, size=(500, 5)).astype(np.int32)
    s = predict_scores(merged.params, ids, casing, "tanh")
    mean = np.mean([predict_scores(m.params, ids, casing, "tanh") for m in members], axis=0)
    np.testing.assert_allclose(s, mean, rtol=0, atol=2e-6)  # float32
    f1 = merged.meta["dev_metrics"]["entity"]["f1"]
    # tiny.yaml tunes the threshold: the merged model's own, on dev, not a member's
    assert 0 < f1 <= 1 and merged.meta["threshold"] == merged.meta["dev_metrics"]["threshold"]
    tagged = Tagger(merged).tag("museums in Paris are amazing")
    assert [t.text for t in tagged.tokens] == ["museums", "in", "Paris", "are", "amazing"]
    assert all(0.0 <= t.p <= 1.0 for t in tagged.tokens)


def test_a_stopped_ensemble_resumes_to_the_same_model(ensemble_runs):
    root = ensemble_runs["root"]
    message = str(ensemble_runs["stopped"])
    assert message.startswith("SIGINT: checkpoint written to") and "seed-3" in message
    assert message.endswith(f"the ensemble continues with: ner-window train --resume {root / 'stopped'}")
    assert ensemble_runs["stopped"].exit_code == 130
    log = "\n".join(ensemble_runs["resume_log"])
    assert "resuming the ensemble" in log and "nothing to resume" in log  # member seed 2 was finished
    a, b = (np.load(root / r / "model" / "params.npz") for r in ("whole", "stopped"))
    assert sorted(a.files) == sorted(b.files)
    for name in a.files:
        assert np.array_equal(a[name], b[name]), name
    ma, mb = (json.loads((root / r / "model" / "meta.json").read_text()) for r in ("whole", "stopped"))
    assert ma["dev_metrics"] == mb["dev_metrics"] and ma["ensemble"] == mb["ensemble"]


def test_ctrl_c_outside_a_members_loop_still_says_how_to_resume(tmp_path, monkeypatch):
    from conftest import make_tiny_config
    import ner_window.train as T

    cfg = make_tiny_config(*RANDOM_SMALL, "train.ensemble=2", "train.epochs=1")
    real = T.load_model
    monkeypatch.setattr(T, "load_model", lambda path: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(Interrupted) as stopped:
        train(cfg, out_dir=tmp_path / "run", log=lambda s: None, point_latest=False)
    assert str(stopped.value) == (f"SIGINT at member seed 0; the ensemble continues with: ner-window train "
                                  f"--resume {tmp_path / 'run'}") and stopped.value.exit_code == 130
    monkeypatch.setattr(T, "load_model", real)
    train(resume=tmp_path / "run", log=lambda s: None, point_latest=False)  # member 0 finished: merged after member 1
    assert load_model(tmp_path / "run" / "model").params.hidden == 2 * cfg.model.hidden


def test_an_ensemble_without_dev_data_keeps_the_threshold_at_one_half(tmp_path):
    from conftest import make_tiny_config

    cfg = make_tiny_config(*RANDOM_SMALL, "train.ensemble=2", "train.epochs=1")
    cfg.data.dev = None
    lines = []
    train(cfg, out_dir=tmp_path / "run", log=lines.append, point_latest=False)
    model = load_model(tmp_path / "run" / "model")
    assert model.meta["threshold"] == 0.5 and model.meta["dev_metrics"] is None
    assert lines[-1].startswith("ensemble of 2: no dev data (threshold 0.5, not tuned); model in")
    assert "member seed 1: best epoch 1, no dev data" in lines


def test_a_damaged_ensemble_run_is_a_one_line_error(ensemble_runs, tmp_path):
    import shutil

    from click.testing import CliRunner

    from ner_window.cli import cli

    run = tmp_path / "run"
    shutil.copytree(ensemble_runs["root"] / "whole", run)
    (run / "config.json").write_text("{not json", encoding="utf-8")
    r = CliRunner().invoke(cli, ["train", "--resume", str(run)])
    assert r.exit_code == 2 and len(r.stderr.splitlines()) == 1
    assert f"{run / 'config.json'}: cannot be read" in r.stderr and "start a new run" in r.stderr
    shutil.copy(ensemble_runs["root"] / "whole" / "config.json", run / "config.json")
    meta_path = run / "members" / "seed-3" / "model" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["classes"] = ["O", "GPE"]  # a member whose data changed since the others were trained
    meta_path.write_text(json.dumps(meta))
    r = CliRunner().invoke(cli, ["train", "--resume", str(run)])
    assert r.exit_code == 2 and "the members' vocabularies, classes or gazetteers differ" in r.stderr
    assert "--overwrite" in r.stderr.splitlines()[-1]


# ---------------------------------------------------------------- members trained at once (train.jobs)


def test_members_trained_at_once_are_the_members_trained_one_after_the_other(ensemble_runs):
    """train.jobs = 2: each member in a process of its own; its log lines and epochs come back to the
    caller, and the merged model is byte for byte the one of train.jobs = 1."""
    from conftest import make_tiny_config

    root = ensemble_runs["root"]
    cfg = make_tiny_config(*RANDOM_SMALL, "train.ensemble=2", "train.seed=1", "train.jobs=2")
    lines, epochs = [], []
    train(cfg, out_dir=root / "at-once", log=lines.append, point_latest=False,
          on_epoch=lambda row, improved: epochs.append((row["epoch"], improved)))
    a, b = (np.load(root / r / "model" / "params.npz") for r in ("whole", "at-once"))
    assert sorted(a.files) == sorted(b.files) and all(np.array_equal(a[k], b[k]) for k in a.files)
    for seed in (2, 3):
        assert any(line.startswith(f"[member seed {seed}] epoch   3") for line in lines)
        a, b = (np.load(root / r / "members" / f"seed-{seed}" / "model" / "params.npz") for r in ("whole", "at-once"))
        assert all(np.array_equal(a[k], b[k]) for k in a.files)
    assert sorted(e for e, _ in epochs) == [1, 1, 2, 2, 3, 3] and all(isinstance(i, bool) for _, i in epochs)
    assert lines[-1].startswith("ensemble of 2: dev LOC entity F1")


def _member_pids(parent: int) -> list[int]:
    """Processes whose parent is ``parent`` and which train an ensemble member (train.member_main)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
                cmdline = open(f"/proc/{entry}/cmdline", "rb").read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent and b"member_main" in cmdline:
                pids.append(int(entry))
    return pids


def _start_cli_training(run, *sets):
    import subprocess
    import sys

    from conftest import ROOT

    args = [sys.executable, "-m", "ner_window.cli", "train", "--config", "configs/tiny.yaml", "--out", str(run)]
    for s in sets:
        args += ["--set", s]
    return subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


LONGER = (*RANDOM_SMALL[:2], "train.epochs=12", "train.patience=12", "train.ensemble=2", "train.seed=1")


@pytest.fixture(scope="module")
def uninterrupted_longer(tmp_path_factory):
    from conftest import make_tiny_config

    run = tmp_path_factory.mktemp("longer") / "run"
    train(make_tiny_config(*LONGER), out_dir=run, log=lambda s: None, point_latest=False)
    return np.load(run / "model" / "params.npz")


@pytest.mark.parametrize("how", ["SIGTERM to the command", "SIGKILL to a member"])
def test_members_trained_at_once_stop_cleanly_and_resume_to_the_same_model(tmp_path, uninterrupted_longer, how):
    """SIGTERM to `ner-window train`: both running members write their checkpoints and the command says
    how to resume (exit 143).  A member's process killed outright: the other finishes, the command names
    the member and the resume (exit 2).  Either way `train --resume` ends with the uninterrupted model."""
    import subprocess
    import sys

    from conftest import ROOT

    run = tmp_path / "run"
    proc = _start_cli_training(run, *LONGER, "train.jobs=2")
    for line in proc.stdout:  # the first epoch of a member: both are training
        if line.startswith("[member seed") and " epoch " in line:
            break
    if how == "SIGTERM to the command":
        proc.send_signal(signal.SIGTERM)
    else:
        os.kill(sorted(_member_pids(proc.pid))[0], signal.SIGKILL)
    out, err = proc.communicate(timeout=120)
    if how == "SIGTERM to the command":
        assert proc.returncode == 143, err
        assert err.strip() == f"ner-window: SIGTERM; checkpoints written; the ensemble continues with: " \
                              f"ner-window train --resume {run}"
        assert "SIGTERM: the running members write their checkpoints and stop" in out
        for s in (2, 3):  # both stopped mid-way, not run to their end
            member = run / "members" / f"seed-{s}"
            assert (member / "checkpoint").exists() and not (member / "errors.txt").exists()
    else:
        assert proc.returncode == 2, err
        assert "the member's process ended with exit code -9 before it finished" in err
        assert f"ner-window train --resume {run} continues the ensemble" in err and len(err.splitlines()) == 1
    assert not (run / "model").exists()
    resumed = subprocess.run([sys.executable, "-m", "ner_window.cli", "train", "--resume", str(run)], cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    got = np.load(run / "model" / "params.npz")
    assert all(np.array_equal(got[k], uninterrupted_longer[k]) for k in uninterrupted_longer.files)


def test_a_member_killed_before_its_first_checkpoint_starts_again_on_resume(ensemble_runs, tmp_path):
    """A member's process killed outright in its first epoch leaves only its config.json: `--resume`
    starts that member again (it used to refuse the directory as "not a run"), to the same model."""
    import shutil

    from ner_window.train import choose_run_dir

    run = tmp_path / "run"
    shutil.copytree(ensemble_runs["root"] / "whole", run)
    shutil.rmtree(run / "model")
    member = run / "members" / "seed-3"
    for entry in member.iterdir():
        if entry.name != "config.json":
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    assert choose_run_dir(member, "x", overwrite=True) == member  # what a killed run leaves can be replaced
    with pytest.raises(Exception, match="stopped before its first checkpoint .nothing to resume.; give --overwrite"):
        choose_run_dir(member, "x")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "config.json").write_text("{}")
    (tmp_path / "mine" / "notes.txt").write_text("a user's file")
    with pytest.raises(Exception, match="holds no ner-window run"):  # anything else there: never touched
        choose_run_dir(tmp_path / "mine", "x", overwrite=True)
    train(resume=run, log=lambda s: None, point_latest=False)
    a, b = (np.load(r / "model" / "params.npz") for r in (ensemble_runs["root"] / "whole", run))
    assert all(np.array_equal(a[k], b[k]) for k in a.files)
