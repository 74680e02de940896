"""Stage: train the window classifier by minibatch SGD, one readable loop.

    for each epoch:
        shuffle the training windows (a generator seeded by (seed, epoch))
        optional case augmentation: a share of the sentences read lowercased / uppercased
        for each minibatch: optional word dropout -> fast.train_step (forward, backward, update)
        score dev: data loss, token and entity LOC P/R/F1, tuned threshold
        keep the best epoch's parameters (dev LOC entity F1); stop after `patience` bad epochs
        write metrics.csv, the best model, and a checkpoint

Everything random is derived from ``train.seed``: the shuffle, the word dropout and
the case augmentation of epoch e come from generators seeded by ``(seed, e)``, so a run resumed from a
checkpoint (even one written mid-epoch by SIGINT/SIGTERM) ends with parameters
byte-identical to an uninterrupted run.

A sentence-level model (model.output: sentence) runs the same loop over minibatches of whole
sentences (_batches: shuffled sentences, at least batch_size tokens a batch) with
fast.sentence_train_step, and is scored on dev by its Viterbi path (sentence_dev_scores).

This module is the loop; what it writes lives beside it: ``model/`` (artifact.py),
``checkpoint/`` (checkpoint.py), ``metrics.csv``, ``learning_curve.png``,
``pr_curve.csv``/``.png``, ``errors.txt`` and the ``runs/latest`` link (reports.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import itertools
import json
import math
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from . import errors, metrics, reports, sentence
from .artifact import MODEL_SUBDIR, load_model, save_model
from .checkpoint import CHECKPOINT, LoopState, has_checkpoint, read_checkpoint, write_checkpoint
from .config import Config, from_dict
from .conll import entity_spans, read_conll
from .decision import is_location, is_location_class, y_location
from .embeddings import coverage, prepare_embeddings
from .ensemble import member_seeds, merge
from .errors import ConfigError, NerWindowError, TrainingError
from .fast import StepLoss, predict_proba, predict_scores, sentence_train_step, train_step
from .files import Signalled, signal_handlers, write_text_atomic
from .gazetteer import FILE as GAZETTEER_FILE, Gazetteer, compile_geonames
from .model import Params, init_params, loss_and_delta_s, probabilities
from .optim import make_velocity
from .vocab import UNK, Vocab
from .windows import CASING_CLASSES, LabelledData, entity_class, labelled_data, n_features, recased_windows

DEFAULT_RUNS = reports.DEFAULT_RUNS
MEMBERS = "members"  # an ensemble's run directory keeps its members' runs here (train.ensemble > 1)


class Interrupted(NerWindowError):
    """Training stopped by SIGINT/SIGTERM after writing a checkpoint."""

    def __init__(self, what: str, signum: int, resume: Path, advice: str = "continue with"):
        super().__init__(f"{what}; {advice}: ner-window train --resume {resume}")
        self.what = what  # what happened, without the advice (an ensemble gives its own)
        self.exit_code = 128 + signum


def lr_at(cfg: Config, epoch: int) -> float:
    """The learning rate of an epoch under the configured schedule."""
    t = cfg.train
    if t.lr_schedule == "step":
        return t.lr * t.lr_decay ** (epoch // t.lr_step)
    if t.lr_schedule == "inv_t":
        return t.lr / (1.0 + t.lr_decay * epoch)
    return t.lr


def classes_for(cfg: Config, sentences) -> list[str]:
    """("O", "LOC") for the binary task; "O" then every entity type of the training data for multiclass."""
    if cfg.model.task == "binary":
        return ["O", "LOC"]
    types = {entity_class(t, cfg.data.location_types) for s in sentences for t, _, _ in entity_spans(s.tags)}
    return ["O"] + sorted(types)


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _check_data_paths(cfg: Config) -> None:
    keys = [("train", cfg.data.train), ("dev", cfg.data.dev),
            *((f"train_extra[{i}]", path) for i, path in enumerate(cfg.data.train_extra))]
    for key, path in keys:
        if path is not None and not Path(path).is_file():
            what = "is a directory" if Path(path).is_dir() else "does not exist"
            if what == "does not exist" and not Path(path).is_absolute():
                what += f" in {Path.cwd()} (a relative path is read from the directory you run in)"
            raise ConfigError(f"config: data.{key} = {path!r} {what}; point it at a CoNLL file "
                              f"(e.g. --set data.{key}=path/to/file.txt)")


def _check_locations(cfg: Config, key: str, sentences) -> None:
    """ConfigError when the data.train or data.dev file holds no entity of data.location_types:
    training would have nothing to learn, and dev no F1 to choose the best epoch and the threshold by."""
    types = Counter(t for s in sentences for t, _, _ in entity_spans(s.tags))
    if any(t in cfg.data.location_types for t in types):
        return
    found = ", ".join(f"{n:,} {t}" for t, n in types.most_common(5)) or "no entity of any type"
    why = ("the model would have nothing to learn" if key == "train" else
           "its LOC F1 would be 0 every epoch, so neither the best epoch nor the threshold can be chosen")
    raise ConfigError(f"config: data.{key} = {getattr(cfg.data, key)!r} holds no entity of data.location_types "
                      f"{cfg.data.location_types} (it has {found}); {why}: set data.location_types or "
                      f"data.scheme to match the file" + ("" if key == "train" else ", or data.dev: null"))


def _check_same_data(ck, run_dir: Path) -> None:
    """ConfigError when a file the checkpoint was trained on has changed since (its sha256 is stored):
    the resumed run would not be the run it continues."""
    cfg = ck.config
    extra = ck.extra.get("train_extra_sha256") or []
    files = [("train", cfg.data.train, ck.extra.get("train_sha256")), ("dev", cfg.data.dev, ck.extra.get("dev_sha256")),
             *((f"train_extra[{i}]", path, sha) for i, (path, sha) in enumerate(zip(cfg.data.train_extra, extra)))]
    for key, path, stored in files:
        if stored is None or path is None or not Path(path).is_file():
            continue  # a missing file is _check_data_paths' error
        if file_sha256(path) != stored:
            raise ConfigError(f"--resume {run_dir}: data.{key} = {path!r} is not the file this run was trained on "
                              f"(its sha256 differs from the checkpoint's {stored[:12]}...); restore that file, "
                              f"or start a new run with --config")


def dev_scores(s: np.ndarray, data: LabelledData, classes: list[str], loss: str, pos_weight: float = 1.0,
               threshold: float | None = None, smoothed: bool = False) -> dict:
    """The dev data loss and LOC token/entity P/R/F1 of scores ``s`` (fast.predict_scores).

    The data loss is training's own (model.loss_and_delta_s, the same pos_weight), without
    the L2 term.  A binary threshold is tuned on ``data`` unless given (metrics.best_threshold,
    or metrics.smoothed_threshold when ``smoothed``).
    """
    y, gold = data.windows.y, metrics.spans_of_type(data.spans, "LOC")
    dev_data_loss, _ = loss_and_delta_s(s, y, loss, pos_weight)
    p = probabilities(s)
    if p.ndim == 1 and threshold is None:
        tune = metrics.smoothed_threshold if smoothed else metrics.best_threshold
        threshold, _ = tune(p, y, gold, data.windows.sentence)
    threshold = 0.5 if p.ndim == 2 else threshold  # multiclass decides by the argmax
    report = metrics.location_scores(is_location(p, threshold, classes), y_location(y, classes),
                                     data.windows.sentence, gold)
    return {"dev_data_loss": dev_data_loss, "threshold": float(threshold), **report}


def sentence_dev_scores(S: np.ndarray, data: LabelledData, classes: list[str], A: np.ndarray) -> dict:
    """dev_scores of a sentence-level model's tag scores S (N, T): the data loss is the mean SLL per
    token (sentence.sll_batch), the decision the Viterbi path and its entities (sentence.decode)."""
    starts = sentence.starts_of([len(s.tokens) for s in data.sentences])
    decoded = sentence.decode(S, A, starts)
    dev_data_loss, _, _ = sentence.sll_batch(S, A, sentence.iob2_tag_ids(data.spans, np.diff(starts), classes), starts)
    pred = metrics.spans_of_type(sentence.decoded_spans(decoded.tags, starts, classes), "LOC")
    report = metrics.location_scores(is_location_class(decoded.classes, classes), y_location(data.windows.y, classes),
                                     data.windows.sentence, metrics.spans_of_type(data.spans, "LOC"), pred_spans=pred)
    return {"dev_data_loss": dev_data_loss, "threshold": None, **report}


@contextlib.contextmanager
def blas_threads_limited(n: int):
    """Cap BLAS threads (n = 0: leave the library's default)."""
    if n <= 0:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=n, user_api="blas"):
        yield


_SHOW_PROGRESS = True  # False in an ensemble member's process (member_main)


class _Progress:
    """A progress line with windows/s and running loss on a terminal; silent otherwise."""

    def __init__(self, total: int, epoch: int, stream=sys.stderr):
        self.total, self.epoch, self.stream = total, epoch, stream
        self.tty = _SHOW_PROGRESS and hasattr(stream, "isatty") and stream.isatty()
        self.t0 = time.perf_counter()
        self.last = 0.0

    def update(self, done: int, loss: float) -> None:
        if not self.tty:
            return
        now = time.perf_counter()
        if now - self.last < 0.2 and done < self.total:
            return
        self.last = now
        frac = done / max(self.total, 1)
        bar = "#" * int(30 * frac)
        wps = done / max(now - self.t0, 1e-9)
        self.stream.write(f"\repoch {self.epoch:>3} [{bar:<30}] {frac:5.1%} {wps:,.0f} windows/s loss {loss:.4f}")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\r" + " " * 100 + "\r")
            self.stream.flush()


@dataclass
class TrainResult:
    run_dir: Path
    best_epoch: int  # 0-based
    best_entity_f1: float
    history: list[dict]  # the rows of metrics.csv
    seconds: float


@dataclass
class _Run:
    """Everything the loop works on (what a checkpoint saves, plus the data)."""

    cfg: Config
    run_dir: Path
    vocab: Vocab
    params: Params
    best: Params
    velocity: dict | None
    state: LoopState
    extra: dict
    classes: list[str]
    train_data: LabelledData
    dev_data: LabelledData | None
    recased: tuple[np.ndarray, np.ndarray] | None  # (ids, casing) (3, N, 2m+1) for case augmentation, or None
    gazetteer: Gazetteer | None
    created: bool = False  # this call made run_dir: a failure before the first checkpoint removes it again
    tags: np.ndarray | None = None  # a sentence-level model's gold IOB2 tag ids of the training tokens (N,)
    starts: np.ndarray | None = None  # ... and the first token of each training sentence (S+1,)

    def checkpoint(self) -> None:
        write_checkpoint(self.run_dir, self.cfg, self.vocab, self.params, self.best, self.velocity, self.state,
                         self.extra)


# what a run directory holds (train, artifact, checkpoint, reports write them): --overwrite removes these
RUN_ENTRIES = (MODEL_SUBDIR, CHECKPOINT, MEMBERS, "config.json", "metrics.csv", "learning_curve.png", "pr_curve.csv",
               "pr_curve.png", "errors.txt")


def is_run(directory: Path) -> bool:
    """True when ``directory`` holds a ner-window run (a checkpoint, a model, or what a killed write left),
    or what a run killed outright (SIGKILL, out of memory) before its first checkpoint left: its config.json
    (and gazetteer.json), nothing else."""
    d = Path(directory)
    return ((d / CHECKPOINT / "state.json").is_file() or (d / MODEL_SUBDIR / "meta.json").is_file()
            or any(d.glob(f".{CHECKPOINT}.*")) or (d / "config.json").is_file() and (d / "metrics.csv").is_file()
            or is_ensemble_run(d) or _killed_before_first_checkpoint(d))


def _killed_before_first_checkpoint(d: Path) -> bool:
    """``d`` holds what a run writes before its first checkpoint and nothing else: nothing to resume."""
    return (d / "config.json").is_file() and {p.name for p in d.iterdir()} <= {"config.json", GAZETTEER_FILE}


def choose_run_dir(out_dir: str | Path | None, config_name: str, overwrite: bool = False) -> Path:
    """The run directory of a new training.

    ``out_dir`` given: that directory, when it is new or empty; a previous run there only with
    ``overwrite`` (its files are replaced once training starts writing); a directory holding
    anything else never (ConfigError).  No ``out_dir``: runs/<config name>, or when that holds
    something already the first free runs/<config name>-2, -3, ... (nothing is ever replaced).
    """
    if out_dir is None:
        base = DEFAULT_RUNS / config_name
        for n in itertools.count(1):
            run_dir = base if n == 1 else base.with_name(f"{base.name}-{n}")
            if not run_dir.exists() or (run_dir.is_dir() and not any(run_dir.iterdir())):
                return run_dir
    run_dir = Path(out_dir)
    if not run_dir.exists():
        return run_dir
    if not run_dir.is_dir():
        raise ConfigError(f"--out {run_dir}: is a file; give a directory for the run (a new one)")
    entries = sorted(p.name for p in run_dir.iterdir())
    if not entries:
        return run_dir
    if not is_run(run_dir):
        shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
        raise ConfigError(f"--out {run_dir}: is not empty ({shown}) and holds no ner-window run; give a new or "
                          f"empty directory (a run never mixes into other files, even with --overwrite)")
    if not overwrite and _killed_before_first_checkpoint(run_dir):
        raise ConfigError(f"--out {run_dir}: holds a run that was stopped before its first checkpoint (nothing to "
                          f"resume); give --overwrite to start it again, or another --out")
    if not overwrite:
        raise ConfigError(f"--out {run_dir}: holds a run already; give --overwrite to replace it, "
                          f"`ner-window train --resume {run_dir}` to continue it, or another --out")
    return run_dir


def _clear_run(run_dir: Path) -> None:
    """Remove a previous run's entries (and the leftovers of its atomic writes) before a new one is written."""
    for name in RUN_ENTRIES:
        path = run_dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
    for name in RUN_ENTRIES:  # .model.tmp-PID, .checkpoint.old-PID, .metrics.csv.PID-TID-N.tmp ...
        for leftover in run_dir.glob(f".{name}.*"):
            shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() else leftover.unlink(missing_ok=True)


def train(cfg: Config | None = None, out_dir: str | Path | None = None, resume: str | Path | None = None,
          log: Callable[[str], None] = print, config_name: str = "run", *, point_latest: bool = True,
          on_epoch: Callable[[dict, bool], None] | None = None, overwrite: bool = False) -> TrainResult:
    """Train a model from ``cfg`` into ``out_dir`` (see choose_run_dir), or resume a run.

    point_latest: make runs/latest point at the run when it ends inside ./runs (reports.point_latest);
    it moves only when training ends well.
    on_epoch(row, improved): called once an epoch is scored (and saved, if it is the best so far)
    with its metrics.csv row; ``improved`` says whether it is the new best.
    overwrite: replace a previous run in ``out_dir`` (never a directory of other files).
    """
    if resume is not None and is_ensemble_run(Path(resume)):
        return _train_ensemble(ensemble_config(Path(resume)), Path(resume), log, True, point_latest, on_epoch)
    if resume is None and cfg is not None and cfg.train.ensemble > 1:
        run_dir = choose_run_dir(out_dir, config_name, overwrite)
        return _train_ensemble(cfg, run_dir, log, False, point_latest, on_epoch)
    t_start = time.perf_counter()
    ck = None
    if resume is not None:
        run_dir, ck = Path(resume), read_checkpoint(Path(resume))
        if ck.state.done:
            log(f"{run_dir}: training already finished (best epoch {ck.state.best_epoch + 1}); nothing to resume")
            return TrainResult(run_dir, ck.state.best_epoch, ck.state.best_f1, ck.state.history, 0.0)
        _check_same_data(ck, run_dir)
        log(f"resuming {run_dir} at epoch {ck.state.epoch + 1}, batch {ck.state.batch}")
        cfg = ck.config
    elif cfg is None:
        raise ConfigError("train: give a config, or resume= a run directory")
    else:
        run_dir = choose_run_dir(out_dir, config_name, overwrite)
    run = _prepare(cfg, run_dir, ck, log)  # reads the data, builds the parameters; writes nothing
    try:
        if ck is None:
            _make_run_dir(run, log)  # from here on the directory is this run's
        with _signals_caught() as stop:
            while run.state.epoch < cfg.train.epochs:
                _train_epoch(run, stop, log)
                _end_epoch(run, log, on_epoch)
    except BaseException:  # an error, or a signal before the loop's handlers: no half run is left
        if ck is None and not (run.run_dir / CHECKPOINT).exists():
            _discard(run)  # nothing in it could be resumed
        raise
    _write_reports(run)
    if point_latest:
        reports.point_latest(run.run_dir)
    secs = time.perf_counter() - t_start
    state = run.state
    log(_final_line(run) + f"; model in {run.run_dir / MODEL_SUBDIR} [{secs:.1f} s]")
    return TrainResult(run.run_dir, state.best_epoch, state.best_f1, state.history, secs)


def is_ensemble_run(run_dir: Path) -> bool:
    """True when ``run_dir`` is the run of an ensemble (train.ensemble > 1): config.json and members/."""
    return (run_dir / MEMBERS).is_dir() and (run_dir / "config.json").is_file()


def ensemble_config(run_dir: Path) -> Config:
    """The config an ensemble run was started with (its config.json)."""
    path = run_dir / "config.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path}: cannot be read ({e}); the run directory is damaged, start a new run") from None
    return from_dict(raw, str(path))


def _train_ensemble(cfg: Config, run_dir: Path, log, resumed: bool, point_latest: bool, on_epoch) -> TrainResult:
    """train.ensemble = K members, each a run of its own in run_dir/members/seed-N (ensemble.member_seeds),
    trained one after the other (train.jobs = 1) or train.jobs at a time in processes of their own
    (_train_members_at_once), then merged into the one model in run_dir/model (ensemble.merge).
    Resuming continues the member that was stopped, trains the ones not begun and merges."""
    t_start = time.perf_counter()
    if resumed:
        log(f"resuming the ensemble in {run_dir}")
    else:
        _make_ensemble_dir(cfg, run_dir, log)
    seeds = member_seeds(cfg.train.seed, cfg.train.ensemble)
    if cfg.train.jobs > 1:  # in processes of their own, then read back as the loop below reads finished members
        _train_members_at_once(cfg, run_dir, seeds, min(cfg.train.jobs, len(seeds)), log, on_epoch)
    members = []
    for seed in seeds:
        member_dir = run_dir / MEMBERS / f"seed-{seed}"
        try:
            if cfg.train.jobs == 1:
                _train_member(cfg, run_dir, seed, log, on_epoch)
            members.append(load_model(member_dir / MODEL_SUBDIR))
        except Interrupted as e:
            raise Interrupted(e.what, e.exit_code - 128, run_dir, advice="the ensemble continues with") from None
        except KeyboardInterrupt as e:  # a signal outside the member's loop: it resumes from its checkpoint, if any
            signum = getattr(e, "signum", signal.SIGINT)
            raise Interrupted(f"{signal.Signals(signum).name} at member seed {seed}", signum, run_dir,
                              advice="the ensemble continues with") from None
    best_f1 = _save_ensemble(cfg, run_dir, members, log)
    if point_latest:
        reports.point_latest(run_dir)
    secs = time.perf_counter() - t_start
    scored = f"dev LOC entity F1 {best_f1:.4f}" if cfg.data.dev else "no dev data (threshold 0.5, not tuned)"
    log(f"ensemble of {len(members)}: {scored}; model in {run_dir / MODEL_SUBDIR} [{secs:.1f} s]")
    return TrainResult(run_dir, -1, best_f1, [], secs)


def _prefixed(log, prefix: str, line: str) -> None:
    log(prefix + line)


def _train_member(cfg: Config, run_dir: Path, seed: int, log, on_epoch) -> None:
    """Train the member of ``seed`` in run_dir/members/seed-N, or resume it from its checkpoint (a finished
    member's resume says so and returns)."""
    member_dir = run_dir / MEMBERS / f"seed-{seed}"
    member_log = functools.partial(_prefixed, log, f"[member seed {seed}] ")
    if has_checkpoint(member_dir):
        train(resume=member_dir, log=member_log, point_latest=False, on_epoch=on_epoch)
    else:
        member_cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=seed, ensemble=1, jobs=1))
        train(member_cfg, out_dir=member_dir, log=member_log, point_latest=False, on_epoch=on_epoch, overwrite=True)


def _train_members_at_once(cfg: Config, run_dir: Path, seeds: list[int], jobs: int, log, on_epoch) -> None:
    """Train (or resume) the members of ``seeds``, ``jobs`` at a time, each in a Python process of its own
    (member_main, reading run_dir/config.json) that reports its log lines and epochs as JSON lines.  A
    member's numbers do not depend on where it is trained, so the model is the one train.jobs = 1 gives.

    SIGINT / SIGTERM here are passed on, once, to every running member (each in a process group of its
    own, so a terminal's Ctrl-C reaches it only this way), which writes its checkpoint and stops; no new
    member starts, and Interrupted says how to resume.  A member's error stops new members too and is
    raised once the running ones have finished."""
    messages: queue.Queue = queue.Queue()
    waiting, running, ready, failed = list(seeds), {}, set(), []
    stop: dict = {"signum": None}

    def on_signal(signum, frame):  # noqa: ARG001
        if stop["signum"] is None:
            log(f"{signal.Signals(signum).name}: the running members write their checkpoints and stop")
        stop["signum"] = signum
        for seed in ready & set(running):
            _kill(running[seed], signum)

    with signal_handlers(on_signal):
        while running or (waiting and stop["signum"] is None and not failed):
            while waiting and len(running) < jobs and stop["signum"] is None and not failed:
                seed = waiting.pop(0)
                running[seed] = _start_member(run_dir, seed, messages, on_epoch is not None)
            seed, report = messages.get()
            kind = report["kind"]
            if kind == "log":
                log(report["line"])
            elif kind == "epoch":
                on_epoch(report["row"], report["improved"])
            elif kind == "ready":
                ready.add(seed)
                if stop["signum"] is not None:  # it was starting when the signal came
                    _kill(running[seed], stop["signum"])
            elif kind == "done":
                stop["signum"] = stop["signum"] or report.get("signum")  # a signal sent to it alone: the others finish
                if report.get("error"):
                    failed.append(_member_error(report["error"]))
            elif kind == "end":  # its output closed: the process has ended, with or without "done"
                code = running.pop(seed).wait()
                if not report["done"] and (stop["signum"] is None or seed in ready):
                    failed.append(TrainingError(
                        f"{run_dir / MEMBERS / f'seed-{seed}'}: the member's process ended with exit code {code} "
                        f"before it finished (killed, or out of memory?); ner-window train --resume {run_dir} "
                        f"continues the ensemble"))
    if failed:
        raise failed[0]
    if stop["signum"] is not None:
        raise Interrupted(signal.Signals(stop["signum"]).name, stop["signum"], run_dir,
                          advice="checkpoints written; the ensemble continues with")


def _start_member(run_dir: Path, seed: int, messages: queue.Queue, epochs: bool) -> subprocess.Popen:
    """The process training the member of ``seed``; a thread puts (seed, report) on ``messages`` for each
    JSON line it writes, then (seed, {"kind": "end", "done": ...}) when its output closes."""
    root = str(Path(__file__).resolve().parent.parent)  # this ner_window, installed or not
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p))
    code = "import sys; from ner_window.train import member_main; sys.exit(member_main(sys.argv[1:]))"
    process = subprocess.Popen([sys.executable, "-c", code, str(run_dir), str(seed), "1" if epochs else "0"],
                               stdout=subprocess.PIPE, env=env, process_group=0)

    def read() -> None:
        done = False
        try:
            for line in process.stdout:
                try:
                    report = json.loads(line)
                except ValueError:
                    report = None
                if not isinstance(report, dict) or "kind" not in report:  # not a report: shown as it is
                    report = {"kind": "log", "line": f"[member seed {seed}] {line.decode('utf-8', 'replace').rstrip()}"}
                done = done or report["kind"] == "done"
                messages.put((seed, report))
        finally:  # whatever happened, the parent learns that this member's process has ended
            messages.put((seed, {"kind": "end", "done": done}))

    threading.Thread(target=read, name=f"ner-window member seed {seed}", daemon=True).start()
    return process


def _kill(process: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signum)


def _member_error(error: dict) -> Exception:
    """The exception a member's process reported ({"type", "message"}): the same class for the package's
    own errors, TrainingError naming the type for anything else."""
    cls = getattr(errors, error["type"], None)
    if isinstance(cls, type) and issubclass(cls, NerWindowError):
        return cls(error["message"])
    return TrainingError(error["message"])


def member_main(argv: list[str]) -> int:
    """A member's process (_start_member): ``RUN_DIR SEED EPOCHS``; trains or resumes the member of SEED of the
    ensemble in RUN_DIR and writes its reports as JSON lines to stdout, the last one {"kind": "done", ...}
    with the signal that stopped it or the error it met."""
    run_dir, seed, epochs = Path(argv[0]), int(argv[1]), argv[2] == "1"
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")  # the reports; anything else printed goes to stderr,
    os.dup2(2, 1)  # from Python or from a library's C code
    global _SHOW_PROGRESS
    _SHOW_PROGRESS = False  # the parent prints the members' lines; a progress bar each would tangle them

    def report(kind: str, **fields) -> None:
        out.write(json.dumps({"kind": kind, **fields}, default=float) + "\n")
        out.flush()

    def on_signal(signum, frame):  # noqa: ARG001  (train's own handlers take over inside its loop)
        raise Signalled(signum)

    done: dict = {}
    with signal_handlers(on_signal):
        try:
            report("ready")
            on_epoch = (lambda row, improved: report("epoch", row=row, improved=improved)) if epochs else None
            _train_member(ensemble_config(run_dir), run_dir, seed, lambda line: report("log", line=line), on_epoch)
        except Interrupted as e:  # its checkpoint is written
            done["signum"] = e.exit_code - 128
        except KeyboardInterrupt as e:  # training had not begun: the resume starts it
            done["signum"] = getattr(e, "signum", signal.SIGINT)
        except NerWindowError as e:
            done["error"] = {"type": type(e).__name__, "message": str(e)}
        except Exception as e:  # noqa: BLE001  (a bug or MemoryError: named, with the run to resume)
            done["error"] = {"type": type(e).__name__, "message": f"member seed {seed} stopped with "
                             f"{type(e).__name__}: {e}; ner-window train --resume {run_dir} continues the ensemble"}
    report("done", **done)
    return 0


def _make_ensemble_dir(cfg: Config, run_dir: Path, log) -> None:
    """Create an ensemble's run directory (or clear the previous run in it, under --overwrite) with config.json."""
    _create_run_dir(run_dir, log, inside=MEMBERS)
    write_text_atomic(run_dir / "config.json", json.dumps(cfg.to_dict(), indent=1))


def _create_run_dir(run_dir: Path, log, inside: str | None = None) -> bool:
    """Clear the previous run in ``run_dir`` (choose_run_dir let it through: --overwrite), then create it
    (and its subdirectory ``inside``); returns whether this call created ``run_dir``."""
    if run_dir.exists() and is_run(run_dir):
        log(f"--overwrite: replacing the run in {run_dir}")
        _clear_run(run_dir)
    created = not run_dir.exists()
    try:
        (run_dir / inside if inside else run_dir).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"--out {run_dir}: cannot create the run directory ({e.strerror}); "
                          f"give a directory path you can write to") from None
    return created


def _save_ensemble(cfg: Config, run_dir: Path, members: list, log) -> float:
    """Merge the members' models, score the merged one on dev (its threshold by the config's rule), save it
    with its dev reports; returns its dev LOC entity F1 (0.0 without dev data)."""
    first = members[0]
    if any(m.meta["vocab"] != first.meta["vocab"] or m.meta["classes"] != first.meta["classes"]
           or (m.gazetteer is not None and m.gazetteer.names != first.gazetteer.names) for m in members):
        raise TrainingError(f"{run_dir / MEMBERS}: the members' vocabularies, classes or gazetteers differ; "
                            f"their data changed between them: start the run again with --overwrite")
    params, dev_data, scores = merge([m.params for m in members]), None, None
    if cfg.data.dev:
        d = cfg.data
        dev_sents = read_conll(d.dev, d.scheme, strict=d.strict, clean_tokens=d.clean_tokens)
        dev_data = labelled_data(dev_sents, first.vocab, cfg.model.radius, first.classes, d.location_types,
                                 first.gazetteer)
        scores = _score_dev(cfg, params, dev_data, first.classes)
    threshold = scores["threshold"] if scores else 0.5
    meta = {k: v for k, v in first.meta.items() if k not in ("format_version", "package_version", "vocab")}
    meta.update(config=cfg.to_dict(), dev_metrics=scores, best_epoch=None,
                **({"threshold": threshold} if params.A is None else {}),
                ensemble=[{"seed": m.config.train.seed, "best_epoch": m.meta["best_epoch"],
                           "dev_entity_f1": (m.meta["dev_metrics"] or {}).get("entity", {}).get("f1")}
                          for m in members])
    save_model(run_dir / MODEL_SUBDIR, params, first.vocab, meta, first.gazetteer)
    for m in meta["ensemble"]:
        f1 = "no dev data" if m["dev_entity_f1"] is None else f"dev LOC entity F1 {m['dev_entity_f1']:.4f}"
        log(f"member seed {m['seed']}: best epoch {m['best_epoch']}, {f1}")
    if dev_data is not None:
        _write_dev_reports(cfg, run_dir, params, dev_data, first.classes, threshold)
    return scores["entity"]["f1"] if scores else 0.0


def _final_line(run: _Run) -> str:
    """What was saved: the best epoch and its dev F1 and decision rule; without dev, the last epoch."""
    state = run.state
    if run.dev_data is None:
        rule = _decision_text(run.cfg, 0.5, "threshold ").replace("0.500", "0.5, not tuned")
        return f"no dev data: the model is the last epoch's ({state.best_epoch + 1}; {rule})"
    return (f"best epoch {state.best_epoch + 1}: dev LOC entity F1 {state.best_f1:.4f} "
            f"({_decision_text(run.cfg, state.threshold, 'threshold ')})")


def _prepare(cfg: Config, run_dir: Path, ck, log: Callable[[str], None]) -> _Run:
    """Read the data and build the parameters: fresh ones, or the checkpoint's ``ck``."""
    _check_data_paths(cfg)
    t, mc = cfg.train, cfg.model
    d = cfg.data
    train_sents = read_conll(d.train, d.scheme, strict=d.strict, clean_tokens=d.clean_tokens)
    for path in d.train_extra:  # one list of sentences: the loop and the vocabulary see them as one corpus
        train_sents += read_conll(path, d.train_extra_scheme, strict=d.strict, clean_tokens=d.clean_tokens)
    dev_sents = read_conll(d.dev, d.scheme, strict=d.strict, clean_tokens=d.clean_tokens) if d.dev else None
    _check_locations(cfg, "train", train_sents)
    if dev_sents is not None:
        _check_locations(cfg, "dev", dev_sents)
    n_train_tokens = sum(len(s.tokens) for s in train_sents)
    if t.batch_size > n_train_tokens:
        raise ConfigError(f"config: train.batch_size = {t.batch_size} is larger than the training data "
                          f"({n_train_tokens} tokens in {cfg.data.train}); use a batch size <= {n_train_tokens}")
    if t.case_lower + t.case_upper > 1:
        raise ConfigError(f"config: train.case_lower + train.case_upper = {t.case_lower + t.case_upper:g} is "
                          f"more than 1 (they are shares of the sentences); lower one of them")
    if mc.gazetteer != "none" and not mc.casing:
        raise ConfigError(f"config: model.gazetteer = {mc.gazetteer} is a feature of the casing vectors; "
                          f"set model.casing: true (or model.gazetteer: none)")
    classes = classes_for(cfg, train_sents)
    gazetteer = _gazetteer(cfg, run_dir, train_sents, ck is not None, log)
    if mc.output == "sentence" and t.pos_weight != 1.0:
        raise ConfigError(f"config: train.pos_weight = {t.pos_weight:g} weights windows; model.output: sentence "
                          "trains whole tag paths by their likelihood: set train.pos_weight to 1.0")
    if ck is None:
        vocab, params, extra = _start(cfg, train_sents, dev_sents, classes, gazetteer, log)
        best, velocity, state = params.copy(), make_velocity(params) if t.momentum > 0 else None, LoopState()
    else:
        vocab, params, best, velocity, state, extra = ck.vocab, ck.params, ck.best, ck.velocity, ck.state, ck.extra
    types = cfg.data.location_types
    train_data = labelled_data(train_sents, vocab, mc.radius, classes, types, gazetteer)
    dev_data = labelled_data(dev_sents, vocab, mc.radius, classes, types, gazetteer) if dev_sents else None
    recased = (recased_windows(train_data.tokens, vocab, mc.radius, train_data.windows, gazetteer)
               if t.case_lower + t.case_upper > 0 else None)
    log(f"training on {len(train_data.windows):,} windows ({len(train_sents):,} sentences), dev "
        f"{len(dev_data.windows) if dev_data else 0:,} windows; {mc.task}, radius {mc.radius}, hidden {mc.hidden}, "
        f"{mc.activation}, {'fine-tuned' if cfg.embeddings.trainable else 'frozen'} vectors -> {run_dir}")
    run = _Run(cfg, run_dir, vocab, params, best, velocity, state, extra, classes, train_data, dev_data, recased,
               gazetteer)
    if mc.output == "sentence":
        run.starts = sentence.starts_of([len(s.tokens) for s in train_sents])
        run.tags = sentence.iob2_tag_ids(train_data.spans, np.diff(run.starts), classes)
    return run


def _gazetteer(cfg: Config, run_dir: Path, train_sents, resumed: bool, log) -> Gazetteer | None:
    """The run's gazetteer: compiled for a new run (without the names the training data reads
    otherwise), read back from the run directory when resuming; None without one."""
    mc = cfg.model
    if mc.gazetteer == "none":
        return None
    if resumed:
        return Gazetteer.load(run_dir)
    gazetteer = compile_geonames(mc.gazetteer_min_population, train_sents, cfg.data.location_types)
    log(f"gazetteer: {len(gazetteer):,} place names ({gazetteer.info['source']}, cities of "
        f"{mc.gazetteer_min_population:,}+; {gazetteer.info['dropped_by_training_data']:,} dropped: the training "
        f"data reads them otherwise)")
    return gazetteer


def _start(cfg: Config, train_sents, dev_sents, classes: list[str], gazetteer: Gazetteer | None, log):
    """A new run: vocabulary and vectors, fresh parameters.

    Returns (vocab, params, extra); extra holds the run's fixed facts for meta.json.
    """
    t, mc = cfg.train, cfg.model
    train_tokens = [list(s.tokens) for s in train_sents]
    place_words = (sorted({w for name in gazetteer.names for w in name.split(" ")})
                   if gazetteer is not None and cfg.embeddings.gazetteer_words else ())
    prep = prepare_embeddings(cfg.embeddings, train_tokens, t.seed, dtype=np.dtype(mc.dtype), extra_words=place_words)
    rng = np.random.default_rng([t.seed, 1_000_003])
    params = init_params(
        len(prep.vocab), prep.E.shape[1], mc.radius, mc.hidden,
        n_casing=n_features(gazetteer is not None) if mc.casing else 0, d_c=mc.casing_dim if mc.casing else 0,
        n_classes=_n_outputs(cfg, classes), output_bias=mc.output_bias, rng=rng, dtype=np.dtype(mc.dtype), E=prep.E,
    )
    if mc.output == "sentence":  # tag scores for the IOB2 tags, and their transitions
        params.A = sentence.init_transitions(params.n_classes, np.dtype(mc.dtype))
    lowercase, kv = cfg.embeddings.lowercase, prep.kv
    cov = {"train": coverage(train_tokens, kv, lowercase) if kv is not None else None,
           "dev": coverage([list(s.tokens) for s in dev_sents], kv, lowercase) if (kv is not None and dev_sents)
           else None}
    extra = {"embeddings": prep.info, "coverage": cov, "train_sha256": file_sha256(cfg.data.train),
             "train_extra_sha256": [file_sha256(path) for path in cfg.data.train_extra],
             "dev_sha256": file_sha256(cfg.data.dev) if cfg.data.dev else None, "classes": classes}
    log(f"vocabulary {len(prep.vocab):,} words ({prep.info.get('source')}, d={prep.E.shape[1]}); "
        + (f"pretrained coverage: train tokens {cov['train']['tokens']:.1%} types {cov['train']['types']:.1%}"
           if cov["train"] else "no pretrained vectors")
        + (f", dev tokens {cov['dev']['tokens']:.1%} types {cov['dev']['types']:.1%}" if cov["dev"] else ""))
    # the pretrained KeyedVectors and prep.E (init_params copied it into params.E) are not needed any
    # more: with all 400k GloVe words they hold ~250 MB through the whole run (the caller keeps none)
    return prep.vocab, params, extra


def _make_run_dir(run: _Run, log) -> None:
    """Create the run directory (or, under --overwrite, clear the previous run in it) and write config.json."""
    run_dir = run.run_dir
    run.created = _create_run_dir(run_dir, log)
    write_text_atomic(run_dir / "config.json", json.dumps(run.cfg.to_dict(), indent=1))
    if run.gazetteer is not None:
        run.gazetteer.save(run_dir)  # --resume reads it back


def _discard(run: _Run) -> None:
    """Remove what a run that never reached its first checkpoint wrote (never other files)."""
    if run.created:
        shutil.rmtree(run.run_dir, ignore_errors=True)
    elif run.run_dir.is_dir():
        with contextlib.suppress(OSError):
            _clear_run(run.run_dir)


def _n_outputs(cfg: Config, classes: list[str]) -> int:
    """Scores per token: 1 (binary window model), the classes (multiclass), the IOB2 tags (sentence model)."""
    if cfg.model.output == "sentence":
        return sentence.n_tags(len(classes))
    return 1 if cfg.model.task == "binary" else len(classes)


@contextlib.contextmanager
def _signals_caught():
    """SIGINT / SIGTERM set stop["signum"] instead of killing the run (main thread only)."""
    stop: dict = {"signum": None}

    def on_signal(signum, frame):  # noqa: ARG001
        stop["signum"] = signum

    with signal_handlers(on_signal):
        yield stop


def case_variants(cfg: Config, n_sentences: int, sentence: np.ndarray, epoch: int) -> np.ndarray | None:
    """(N,) how each training window's sentence is read in ``epoch``: 0 as written, 1 lowercased,
    2 uppercased (windows.RECASINGS); None without case augmentation.

    GloVe is lowercased, so capitalisation reaches the model only through the casing classes,
    and it leans on them; text whose casing carries no signal (tweets, headlines) teaches it
    to use the words and the context too.  Drawn per sentence from a generator seeded by
    (seed, epoch, 2): a resumed epoch draws the same.
    """
    t = cfg.train
    if t.case_lower + t.case_upper == 0:
        return None
    r = np.random.default_rng([t.seed, epoch, 2]).random(n_sentences)
    per_sentence = np.where(r < t.case_lower, 1, np.where(r < t.case_lower + t.case_upper, 2, 0))
    return per_sentence[sentence]


def _train_epoch(run: _Run, stop: dict, log) -> None:
    """The minibatches of epoch state.epoch, from state.batch on; writes a checkpoint if a signal arrives."""
    cfg, state = run.cfg, run.state
    t, W = cfg.train, run.train_data.windows
    epoch, n = state.epoch, len(W)
    lr, unk = lr_at(cfg, epoch), run.vocab.lookup(UNK)
    batch, n_batches = _batches(run, np.random.default_rng([t.seed, epoch]))
    drop_rng = np.random.default_rng([t.seed, epoch, 1])
    variant = case_variants(cfg, len(run.train_data.sentences), W.sentence, epoch)
    if state.dropout_state is not None:
        drop_rng.bit_generator.state = state.dropout_state
        state.dropout_state = None
    progress = _Progress(n, epoch + 1)
    t_epoch = time.perf_counter()
    # fewer BLAS threads for the small SGD products (released again for dev scoring); a numeric
    # blow-up is reported by the finiteness check below, not as numpy warnings
    with blas_threads_limited(t.blas_threads), np.errstate(over="ignore", invalid="ignore"):
        done = min(state.batch * t.batch_size, n)
        for k in range(state.batch, n_batches):
            idx, starts = batch(k)
            if variant is None:
                ids, casing = W.ids[idx], W.casing[idx]
            else:  # each window as its sentence is read this epoch
                ids, casing = run.recased[0][variant[idx], idx], run.recased[1][variant[idx], idx]
            if t.word_dropout > 0:
                # word dropout: the model must learn from context and casing, not only the word's identity
                ids[drop_rng.random(ids.shape) < t.word_dropout] = unk
            if t.gazetteer_dropout > 0 and run.gazetteer is not None:
                # gazetteer dropout: a place the gazetteer lacks reads "outside"; hide the tag of some that have it
                casing[drop_rng.random(casing.shape) < t.gazetteer_dropout] %= len(CASING_CLASSES)
            loss = _step(run, idx, ids, casing, starts, lr)
            _check_finite(run, loss.J, lr)
            state.step += 1
            state.batch = k + 1
            state.loss_sum += loss.J
            state.data_loss_sum += loss.J_data
            state.loss_count += 1
            done += len(idx)
            progress.update(done, state.loss_sum / state.loss_count)
            if stop["signum"] is not None:
                progress.close()
                state.dropout_state = drop_rng.bit_generator.state
                state.epoch_seconds += time.perf_counter() - t_epoch
                run.checkpoint()
                name = signal.Signals(stop["signum"]).name
                raise Interrupted(f"{name}: checkpoint written to {run.run_dir / CHECKPOINT} at epoch {epoch + 1}, "
                                  f"step {state.step}", stop["signum"], run.run_dir)
    progress.close()
    state.epoch_seconds += time.perf_counter() - t_epoch


def _batches(run: _Run, rng: np.random.Generator):
    """(batch(k) -> (rows, starts), number of batches) for one epoch, shuffled by ``rng``.

    Window model: batch_size windows at a time (starts None).  Sentence model: whole sentences
    in shuffled order, added to a batch until it holds at least batch_size tokens (so a batch is
    about as much work as the window model's); starts (B+1,) are the batch's sentence offsets.
    """
    bs = run.cfg.train.batch_size
    if run.starts is None:
        order = rng.permutation(len(run.train_data.windows))
        return (lambda k: (order[k * bs:(k + 1) * bs], None)), math.ceil(len(order) / bs)
    lengths = np.diff(run.starts)
    order = rng.permutation(len(lengths))
    ends = np.cumsum(lengths[order])  # tokens up to and including each shuffled sentence
    cuts, mark = [0], 0
    for i, e in enumerate(ends):
        if e - mark >= bs:
            cuts.append(i + 1)
            mark = e
    if cuts[-1] != len(order):
        cuts.append(len(order))
    offsets = np.concatenate([[0], ends])

    def batch(k: int):
        sents = order[cuts[k]:cuts[k + 1]]
        rows = np.concatenate([np.arange(run.starts[s], run.starts[s + 1]) for s in sents])
        return rows, offsets[cuts[k]:cuts[k + 1] + 1] - offsets[cuts[k]]

    return batch, len(cuts) - 1


def _step(run: _Run, idx: np.ndarray, ids: np.ndarray, casing: np.ndarray, starts: np.ndarray | None,
          lr: float) -> StepLoss:
    """One SGD step on the windows ``idx`` (ids and casing as read this epoch: case augmentation, word
    and gazetteer dropout applied): fast.train_step, or for a
    sentence model (starts given) fast.sentence_train_step on the batch's whole sentences."""
    cfg, t, W = run.cfg, run.cfg.train, run.train_data.windows
    common = dict(lr=lr, activation=cfg.model.activation, lam=t.l2, train_E=cfg.embeddings.trainable,
                  regularize_E=cfg.embeddings.regularize, momentum=t.momentum, velocity=run.velocity)
    if starts is None:
        return train_step(run.params, ids, casing, W.y[idx], loss=cfg.loss, pos_weight=t.pos_weight, **common)
    return sentence_train_step(run.params, ids, casing, run.tags[idx], starts, **common)


def _check_finite(run: _Run, J: float, lr: float) -> None:
    """TrainingError when the step's loss, or a parameter it changed, is NaN or infinite.

    Every gradient is a product with the error signal (δs, then Δ): a NaN/Inf in Δ reaches W
    through ΔᵀX, b through Δᵀ1 and u through Hᵀδs, and NaN/Inf survive a sum.  So three sums
    (~5 µs) stand in for an isfinite() pass over every array and the E rows the batch moved,
    which cost ~13% of a frozen-vector step.
    """
    p = run.params
    if math.isfinite(J) and math.isfinite(float(p.W.sum()) + float(p.b.sum()) + float(p.u.sum())):
        return
    kept = (f"the last good checkpoint in {run.run_dir / CHECKPOINT} was kept" if has_checkpoint(run.run_dir)
            else "no checkpoint had been written yet")
    what = f"loss became {J}" if not math.isfinite(J) else "a gradient became NaN or infinite"
    raise TrainingError(f"{what} at epoch {run.state.epoch + 1}, step {run.state.step + 1} (train.lr = {lr:g}); "
                        f"training stopped and {kept}; lower the learning rate (e.g. --set train.lr={lr / 10:g})")


def _end_epoch(run: _Run, log, on_epoch) -> None:
    """Score dev, keep the best parameters, decide on early stopping, write metrics.csv and a checkpoint."""
    cfg, state, t = run.cfg, run.state, run.cfg.train
    epoch, count = state.epoch, max(state.loss_count, 1)
    row = {"epoch": epoch + 1, "lr": lr_at(cfg, epoch), "train_loss_with_l2": state.loss_sum / count,
           "train_data_loss": state.data_loss_sum / count, "seconds": round(state.epoch_seconds, 3)}
    scores, improved = None, True
    if run.dev_data is not None:
        scores = _score_dev(cfg, run.params, run.dev_data, run.classes)
        binary = cfg.model.task == "binary"  # multiclass decides by the argmax: no threshold in the row
        row.update({"dev_data_loss": scores["dev_data_loss"], "threshold": scores["threshold"] if binary else None,
                    **{f"token_{k}": scores["token"][k] for k in ("precision", "recall", "f1")},
                    **{f"entity_{k}": scores["entity"][k] for k in ("precision", "recall", "f1")}})
        improved = scores["entity"]["f1"] > state.best_f1
    state.history.append(row)
    if improved:
        state.best_f1 = scores["entity"]["f1"] if scores else 0.0
        state.best_epoch, state.bad_epochs = epoch, 0
        state.threshold = scores["threshold"] if scores else 0.5
        run.best = run.params.copy()
        save_model(run.run_dir / MODEL_SUBDIR, run.best, run.vocab, _model_meta(run, scores), run.gazetteer)
    else:
        state.bad_epochs += 1
    log(_epoch_line(run.cfg, row, improved))
    if on_epoch is not None:
        on_epoch(row, improved)
    state.epoch, state.batch = epoch + 1, 0
    state.loss_sum, state.data_loss_sum, state.loss_count, state.epoch_seconds = 0.0, 0.0, 0, 0.0
    if run.dev_data is not None and state.bad_epochs >= t.patience:
        log(f"early stop: no better dev LOC entity F1 for {t.patience} epochs")
        state.epoch, state.stopped_early = t.epochs, epoch
    state.done = state.epoch >= t.epochs
    reports.write_metrics_csv(run.run_dir, state.history)
    run.checkpoint()


def _score_dev(cfg: Config, params: Params, dev_data: LabelledData, classes: list[str]) -> dict:
    """Dev data loss, token and entity P/R/F1 of ``params``, decided by the config's threshold rule
    (a window model) or by Viterbi (a sentence model)."""
    t, w = cfg.train, dev_data.windows
    s = predict_scores(params, w.ids, w.casing, cfg.model.activation)
    if params.A is not None:
        return sentence_dev_scores(s, dev_data, classes, params.A)
    return dev_scores(s, dev_data, classes, cfg.loss, t.pos_weight,
                      threshold=t.threshold if t.threshold_rule == "fixed" else None,
                      smoothed=t.threshold_rule == "smoothed")


def _model_meta(run: _Run, dev: dict | None) -> dict:
    """meta.json's run facts for the best model (artifact.save_model adds vocabulary and versions)."""
    extra = run.extra
    decision = ({"threshold": run.state.threshold} if run.params.A is None else
                {"output": "sentence", "tags": sentence.tag_set(run.classes), "decoding": sentence.DECODING})
    return {"config": run.cfg.to_dict(), "classes": run.classes, **decision,
            "dev_metrics": dev, "best_epoch": run.state.best_epoch + 1, "train_data_sha256": extra["train_sha256"],
            "coverage": extra["coverage"], "embeddings": extra["embeddings"]}


def _decision_text(cfg: Config, threshold: float | None, prefix: str, digits: int = 3) -> str:
    """How the model decides: Viterbi (a sentence model), the argmax (multiclass) or its threshold."""
    if cfg.model.output == "sentence":
        return "Viterbi"
    return "argmax" if cfg.model.task != "binary" or threshold is None else f"{prefix}{threshold:.{digits}f}"


def _epoch_line(cfg: Config, row: dict, improved: bool) -> str:
    s = (f"epoch {row['epoch']:>3}  lr {row['lr']:.4g}  train J (with L2) {row['train_loss_with_l2']:.4f}"
         f"  data loss {row['train_data_loss']:.4f}")
    if "dev_data_loss" in row:
        s += (f"  dev data loss {row['dev_data_loss']:.4f}  LOC token P/R/F1 {row['token_precision']:.3f}/"
              f"{row['token_recall']:.3f}/{row['token_f1']:.3f}  entity P/R/F1 {row['entity_precision']:.3f}/"
              f"{row['entity_recall']:.3f}/{row['entity_f1']:.3f}  "
              + _decision_text(cfg, row.get("threshold"), "t=", 2))
    return s + f"  {row['seconds']:.1f}s" + ("  *" if improved else "")


def _write_reports(run: _Run) -> None:
    """The learning curve, and for a run with dev data the best model's PR curve and errors."""
    cfg, state = run.cfg, run.state
    dev = f", dev {cfg.data.dev}" if cfg.data.dev else ""
    reports.plot_learning_curve(run.run_dir / "learning_curve.png", state.history, state.best_epoch,
                                state.stopped_early, title=f"{run.run_dir}: train {cfg.data.train}{dev}")
    if run.dev_data is not None:
        _write_dev_reports(cfg, run.run_dir, run.best, run.dev_data, run.classes, state.threshold)


def _write_dev_reports(cfg: Config, run_dir: Path, best: Params, dev_data: LabelledData, classes: list[str],
                       threshold: float) -> None:
    """The saved model's PR curve and errors on dev (reports.write_dev_reports)."""
    w, decided = dev_data.windows, None
    if best.A is None:
        p = predict_proba(best, w.ids, w.casing, cfg.model.activation)
    else:  # the class marginals beside the Viterbi path's decisions and entities
        starts = sentence.starts_of([len(s.tokens) for s in dev_data.sentences])
        decoded = sentence.decode(predict_scores(best, w.ids, w.casing, cfg.model.activation), best.A, starts)
        p, decided = decoded.p, (is_location_class(decoded.classes, classes), metrics.spans_of_type(
            sentence.decoded_spans(decoded.tags, starts, classes), "LOC"))
    reports.write_dev_reports(run_dir, p, dev_data, classes, threshold, cfg.model.radius,
                              title=f"model {run_dir / MODEL_SUBDIR} on {cfg.data.dev}", decided=decided)
