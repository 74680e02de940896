"""Stage 7: train the window classifier by minibatch SGD, one readable loop.

    for each epoch:
        shuffle the training windows (a generator seeded by (seed, epoch))
        for each minibatch: optional word dropout -> model.train_step (forward, backward, update)
        score dev: loss, token and entity LOC P/R/F1, tuned threshold
        keep the best epoch's parameters (dev LOC entity F1); stop after `patience` bad epochs
        write metrics.csv, the best model, and a checkpoint

Everything random is derived from ``train.seed``: the shuffle and the word
dropout of epoch e come from generators seeded by ``(seed, e)``, so a run
resumed from a checkpoint (even one written mid-epoch by SIGINT/SIGTERM) ends
with parameters byte-identical to an uninterrupted run.

A run directory holds: ``model/`` (the best model, see artifact.py),
``checkpoint/`` (current and best parameters, momentum, loop state),
``metrics.csv``, ``learning_curve.png``, ``pr_curve.csv``/``.png``, ``errors.txt``.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import math
import os
import shutil
import signal
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from . import metrics
from .artifact import MODEL_SUBDIR, save_model, write_dir_atomic
from .config import Config, from_dict
from .conll import read_conll
from .embeddings import coverage, prepare_embeddings
from .errors import ConfigError, NerWindowError, TrainingError
from .model import Params, init_params, make_velocity, predict_proba, train_step
from .vocab import UNK, Vocab
from .windows import CASING_CLASSES, LabelledData, labelled_data

DEFAULT_RUNS = Path("runs")
LATEST = DEFAULT_RUNS / "latest"
CHECKPOINT = "checkpoint"
METRIC_COLUMNS = [
    "epoch", "lr", "train_loss", "dev_loss", "threshold",
    "token_precision", "token_recall", "token_f1", "entity_precision", "entity_recall", "entity_f1", "seconds",
]


class Interrupted(NerWindowError):
    """Training stopped by SIGINT/SIGTERM after writing a checkpoint."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + signum


@dataclass
class LoopState:
    """Where the training loop is: enough, with the parameters, to resume exactly."""

    epoch: int = 0  # the epoch being run (0-based)
    batch: int = 0  # the next minibatch of that epoch
    step: int = 0  # SGD steps taken so far
    best_f1: float = -1.0
    best_epoch: int = -1
    bad_epochs: int = 0
    threshold: float = 0.5
    loss_sum: float = 0.0  # running train loss of the current epoch
    loss_count: int = 0
    epoch_seconds: float = 0.0  # seconds spent in the current epoch before an interruption
    dropout_state: dict | None = None  # word-dropout generator mid-epoch
    history: list[dict] = field(default_factory=list)
    done: bool = False


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
    from .conll import entity_spans

    types = {("LOC" if t in cfg.data.location_types else t) for s in sentences for t, _, _ in entity_spans(s.tags)}
    return ["O"] + sorted(types)


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _check_data_paths(cfg: Config) -> None:
    for key in ("train", "dev"):
        path = getattr(cfg.data, key)
        if path is not None and not Path(path).is_file():
            what = "is a directory" if Path(path).is_dir() else "does not exist"
            raise ConfigError(f"config: data.{key} = {path!r} {what}; point it at a CoNLL file "
                              f"(e.g. --set data.{key}=path/to/file.txt)")


# --- scoring ------------------------------------------------------------------------


def dev_scores(p: np.ndarray, data: LabelledData, classes: list[str], loss: str,
               threshold: float | None = None) -> dict:
    """Dev loss and LOC token/entity P/R/F1; binary thresholds are tuned on ``data`` unless given."""
    y = data.windows.y
    gold = metrics.spans_of_type(data.spans, "LOC")
    if p.ndim == 1:
        pc = np.clip(p.astype(np.float64), 1e-12, 1 - 1e-12)
        dev_loss = float(np.mean((pc - y) ** 2) if loss == "squared" else
                         -np.mean(y * np.log(pc) + (1 - y) * np.log1p(-pc)))
        if threshold is None:
            threshold, _ = metrics.best_threshold(p, y, gold, data.windows.sentence)
        is_loc = p >= threshold
    else:
        pc = np.clip(p[np.arange(len(y)), y].astype(np.float64), 1e-12, 1.0)
        dev_loss = float(-np.mean(np.log(pc)))
        is_loc = np.argmax(p, axis=1) == classes.index("LOC") if "LOC" in classes else np.zeros(len(y), bool)
        threshold = 0.5
    y_loc = y if p.ndim == 1 else (y == classes.index("LOC")).astype(np.int32)
    report = metrics.evaluate_location(is_loc.astype(np.float32), y_loc, data.windows.sentence, gold, 0.5)
    return {"dev_loss": dev_loss, "threshold": float(threshold), "token": report["token"], "entity": report["entity"]}


# --- checkpoints ----------------------------------------------------------------------


def _save_arrays(path: Path, arrays: dict) -> None:
    with open(path, "wb") as f:
        np.savez(f, **{k: v for k, v in arrays.items() if v is not None})


def _load_arrays(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def write_checkpoint(run_dir: Path, cfg: Config, vocab: Vocab, params: Params, best: Params,
                     velocity: dict | None, state: LoopState, extra: dict) -> None:
    """Write ``run_dir/checkpoint`` atomically: a crash keeps the previous checkpoint whole."""

    def write(tmp: Path) -> None:
        _save_arrays(tmp / "params.npz", params.to_dict())
        _save_arrays(tmp / "best.npz", best.to_dict())
        if velocity:
            _save_arrays(tmp / "velocity.npz", velocity)
        state_dict = {k: v for k, v in state.__dict__.items()}
        (tmp / "state.json").write_text(json.dumps(
            {"config": cfg.to_dict(), "state": state_dict, "vocab": vocab.to_list(), "extra": extra}
        ), encoding="utf-8")

    write_dir_atomic(run_dir / CHECKPOINT, write)


def read_checkpoint(run_dir: Path):
    """(config, state document, params, best params, velocity) from ``run_dir/checkpoint``."""
    ck = Path(run_dir) / CHECKPOINT
    if not ck.exists():
        # write_dir_atomic swaps directories with two renames; a hard kill between them leaves
        # the previous, complete checkpoint as .checkpoint.old-PID: resume from that one
        stale = sorted(Path(run_dir).glob(f".{CHECKPOINT}.old-*"), key=lambda p: p.stat().st_mtime)
        if stale and (stale[-1] / "state.json").is_file():
            ck = stale[-1]
    if not (ck / "state.json").is_file():
        raise ConfigError(f"{run_dir}: no checkpoint to resume from ({ck / 'state.json'} is missing); "
                          f"start a new run with --config")
    try:
        doc = json.loads((ck / "state.json").read_text(encoding="utf-8"))
        params = Params.from_dict(_load_arrays(ck / "params.npz"))
        best = Params.from_dict(_load_arrays(ck / "best.npz"))
        velocity = _load_arrays(ck / "velocity.npz") if (ck / "velocity.npz").exists() else None
        LoopState(**doc["state"]), Vocab.from_list(doc["vocab"]), doc["extra"]  # all there, as train() needs them
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as e:
        raise ConfigError(f"{ck}: checkpoint is damaged ({type(e).__name__}: {e}); start a new run") from None
    return from_dict(doc["config"], f"{ck}/state.json"), doc, params, best, velocity


# --- output files ---------------------------------------------------------------------


def write_metrics_csv(run_dir: Path, history: list[dict]) -> None:
    tmp = run_dir / ".metrics.csv.tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=METRIC_COLUMNS, extrasaction="ignore")
        w.writeheader()
        w.writerows(history)
    os.replace(tmp, run_dir / "metrics.csv")


def plot_learning_curve(run_dir: Path, history: list[dict]) -> Path | None:
    """learning_curve.png (train/dev loss and dev F1 per epoch) when matplotlib is installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    ep = [r["epoch"] for r in history]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6))
    a1.plot(ep, [r["train_loss"] for r in history], "o-", label="train loss")
    if history and history[0].get("dev_loss") is not None:
        a1.plot(ep, [r["dev_loss"] for r in history], "o-", label="dev loss")
    a1.set_xlabel("epoch"), a1.set_ylabel("loss"), a1.legend()
    for key, label in (("entity_f1", "dev LOC entity F1"), ("token_f1", "dev LOC token F1")):
        if history and history[0].get(key) is not None:
            a2.plot(ep, [r[key] for r in history], "o-", label=label)
    a2.set_xlabel("epoch"), a2.set_ylabel("F1"), a2.legend()
    fig.tight_layout()
    out = run_dir / "learning_curve.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def point_latest(run_dir: Path) -> None:
    """Make runs/latest point at ``run_dir`` (the default model of `ner-window predict`).

    Only runs trained into ./runs/ move it: a run written elsewhere with --out leaves the
    working directory alone (predict it with --model DIR).
    """
    try:
        if DEFAULT_RUNS.resolve() not in run_dir.resolve().parents:
            return
        LATEST.parent.mkdir(parents=True, exist_ok=True)
        if LATEST.resolve() == run_dir.resolve():
            return
        tmp = LATEST.with_name(f".latest.tmp-{os.getpid()}")
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        os.symlink(os.path.relpath(run_dir.resolve(), LATEST.parent.resolve()), tmp)
        if LATEST.is_dir() and not LATEST.is_symlink():
            return  # a real directory named latest: never delete a user's files
        os.replace(tmp, LATEST)
    except OSError:
        pass


# --- the loop --------------------------------------------------------------------------


@contextlib.contextmanager
def blas_threads_limited(n: int):
    """Cap BLAS threads (n = 0: leave the library's default)."""
    if n <= 0:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=n, user_api="blas"):
        yield


class _Progress:
    """A progress line with windows/s and running loss on a terminal; silent otherwise."""

    def __init__(self, total: int, epoch: int, stream=sys.stderr):
        self.total, self.epoch, self.stream = total, epoch, stream
        self.tty = hasattr(stream, "isatty") and stream.isatty()
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
    best_epoch: int
    best_entity_f1: float
    history: list[dict]
    seconds: float


def train(cfg: Config | None = None, out_dir: str | Path | None = None, resume: str | Path | None = None,
          log: Callable[[str], None] = print, config_name: str = "run") -> TrainResult:
    """Train a model from ``cfg`` into ``out_dir`` (default ``runs/<config name>``), or resume a run."""
    t_start = time.perf_counter()
    ck_doc = None
    created = False  # this call made run_dir: a failure before the first checkpoint removes it again
    if resume is not None:
        run_dir = Path(resume)
        cfg, ck_doc, params, best, velocity = read_checkpoint(run_dir)
        vocab = Vocab.from_list(ck_doc["vocab"])
        state = LoopState(**ck_doc["state"])
        extra = ck_doc["extra"]
        if state.done:
            log(f"{run_dir}: training already finished (best epoch {state.best_epoch + 1}); nothing to resume")
            return TrainResult(run_dir, state.best_epoch, state.best_f1, state.history, 0.0)
        log(f"resuming {run_dir} at epoch {state.epoch + 1}, batch {state.batch}")
    else:
        assert cfg is not None
        run_dir = Path(out_dir) if out_dir is not None else DEFAULT_RUNS / config_name
    _check_data_paths(cfg)
    t, mc = cfg.train, cfg.model
    dtype = np.dtype(mc.dtype)

    train_sents = read_conll(cfg.data.train, cfg.data.scheme, strict=cfg.data.strict)
    dev_sents = read_conll(cfg.data.dev, cfg.data.scheme, strict=cfg.data.strict) if cfg.data.dev else None
    n_train_tokens = sum(len(s.tokens) for s in train_sents)
    if t.batch_size > n_train_tokens:
        raise ConfigError(f"config: train.batch_size = {t.batch_size} is larger than the training data "
                          f"({n_train_tokens} tokens in {cfg.data.train}); use a batch size <= {n_train_tokens}")
    classes = classes_for(cfg, train_sents)
    train_tokens = [list(s.tokens) for s in train_sents]

    if ck_doc is None:
        prep = prepare_embeddings(cfg.embeddings, train_tokens, t.seed, dtype=dtype)
        vocab = prep.vocab
        rng = np.random.default_rng([t.seed, 1_000_003])
        params = init_params(
            len(vocab), prep.E.shape[1], mc.radius, mc.hidden,
            n_casing=len(CASING_CLASSES) if mc.casing else 0, d_c=mc.casing_dim if mc.casing else 0,
            n_classes=1 if mc.task == "binary" else len(classes), output_bias=mc.output_bias,
            rng=rng, dtype=dtype, E=prep.E,
        )
        best = params.copy()
        velocity = make_velocity(params) if t.momentum > 0 else None
        state = LoopState()
        extra = {
            "embeddings": prep.info,
            "coverage": {"train": coverage(train_tokens, prep.kv, cfg.embeddings.lowercase)
                         if prep.kv is not None else None,
                         "dev": coverage([list(s.tokens) for s in dev_sents], prep.kv, cfg.embeddings.lowercase)
                         if (prep.kv is not None and dev_sents) else None},
            "train_sha256": file_sha256(cfg.data.train),
            "classes": classes,
        }
        created = not run_dir.exists()
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"--out {run_dir}: cannot create the run directory ({e.strerror}); "
                              f"give a directory path you can write to") from None
        (run_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1), encoding="utf-8")
        cov = extra["coverage"]
        log(f"vocabulary {len(vocab):,} words ({prep.info.get('source')}, d={prep.E.shape[1]}); "
            + (f"pretrained coverage: train tokens {cov['train']['tokens']:.1%} types {cov['train']['types']:.1%}"
               if cov["train"] else "no pretrained vectors")
            + (f", dev tokens {cov['dev']['tokens']:.1%} types {cov['dev']['types']:.1%}" if cov["dev"] else ""))
        # the pretrained KeyedVectors and prep.E (init_params copied it into params.E) are not
        # needed any more: with all 400k GloVe words they hold ~250 MB through the whole run
        del prep

    train_data = labelled_data(train_sents, vocab, mc.radius, classes, cfg.data.location_types)
    dev_data = labelled_data(dev_sents, vocab, mc.radius, classes, cfg.data.location_types) if dev_sents else None
    unk = vocab.lookup(UNK)
    W = train_data.windows
    n = len(W)
    n_batches = math.ceil(n / t.batch_size)
    loss_kind = "ce" if mc.task == "multiclass" else t.loss
    log(f"training on {n:,} windows ({len(train_sents):,} sentences), dev {len(dev_data.windows) if dev_data else 0:,}"
        f" windows; {mc.task}, radius {mc.radius}, hidden {mc.hidden}, {mc.activation}, "
        f"{'fine-tuned' if cfg.embeddings.trainable else 'frozen'} vectors -> {run_dir}")

    stop: dict = {"signum": None}

    def on_signal(signum, frame):  # noqa: ARG001
        stop["signum"] = signum

    handlers = {}
    in_main = hasattr(signal, "SIGTERM") and __import__("threading").current_thread() is __import__("threading").main_thread()
    if in_main:
        for sig in (signal.SIGINT, signal.SIGTERM):
            handlers[sig] = signal.signal(sig, on_signal)

    def model_meta(threshold: float, dev: dict | None, epoch: int) -> dict:
        return {
            "config": cfg.to_dict(), "classes": classes, "threshold": threshold,
            "dev_metrics": dev, "best_epoch": epoch + 1, "train_data_sha256": extra["train_sha256"],
            "coverage": extra["coverage"], "embeddings": extra["embeddings"],
        }

    try:
        while state.epoch < t.epochs:
            epoch = state.epoch
            lr = lr_at(cfg, epoch)
            order = np.random.default_rng([t.seed, epoch]).permutation(n)
            drop_rng = np.random.default_rng([t.seed, epoch, 1])
            if state.dropout_state is not None:
                drop_rng.bit_generator.state = state.dropout_state
                state.dropout_state = None
            progress = _Progress(n, epoch + 1)
            t_epoch = time.perf_counter()
            # fewer BLAS threads for the small SGD products (released again for dev scoring); a numeric
            # blow-up is reported by the finiteness check below, not as numpy warnings
            with blas_threads_limited(t.blas_threads), np.errstate(over="ignore", invalid="ignore"):
                for k in range(state.batch, n_batches):
                    idx = order[k * t.batch_size:(k + 1) * t.batch_size]
                    ids = W.ids[idx]
                    if t.word_dropout > 0:
                        # word dropout: the model must learn from context and casing, not only the word's identity
                        ids[drop_rng.random(ids.shape) < t.word_dropout] = unk
                    loss = train_step(
                        params, ids, W.casing[idx], W.y[idx], lr=lr, activation=mc.activation, loss=loss_kind,
                        pos_weight=t.pos_weight, lam=t.l2, train_E=cfg.embeddings.trainable,
                        regularize_E=cfg.embeddings.regularize, momentum=t.momentum, velocity=velocity,
                    )
                    if not math.isfinite(loss) or not _all_finite(params):
                        ck = run_dir / CHECKPOINT
                        kept = (f"the last good checkpoint in {ck} was kept" if (ck / "state.json").is_file()
                                else "no checkpoint had been written yet")
                        what = f"loss became {loss}" if not math.isfinite(loss) else "a gradient became NaN or infinite"
                        raise TrainingError(
                            f"{what} at epoch {epoch + 1}, step {state.step + 1} (train.lr = {lr:g}); training stopped "
                            f"and {kept}; lower the learning rate (e.g. --set train.lr={lr / 10:g})"
                        )
                    state.step += 1
                    state.batch = k + 1
                    state.loss_sum += loss
                    state.loss_count += 1
                    progress.update(min((k + 1) * t.batch_size, n), state.loss_sum / state.loss_count)
                    if stop["signum"] is not None:
                        progress.close()
                        state.dropout_state = drop_rng.bit_generator.state
                        state.epoch_seconds += time.perf_counter() - t_epoch
                        write_checkpoint(run_dir, cfg, vocab, params, best, velocity, state, extra)
                        name = signal.Signals(stop["signum"]).name
                        raise Interrupted(f"{name}: checkpoint written to {run_dir / CHECKPOINT} at epoch {epoch + 1}, "
                                          f"step {state.step}; continue with: ner-window train --resume {run_dir}",
                                          stop["signum"])
            progress.close()
            seconds = state.epoch_seconds + time.perf_counter() - t_epoch
            row = {"epoch": epoch + 1, "lr": lr, "train_loss": state.loss_sum / max(state.loss_count, 1),
                   "seconds": round(seconds, 3)}
            if dev_data is not None:
                p = predict_proba(params, dev_data.windows.ids, dev_data.windows.casing, mc.activation)
                scores = dev_scores(p, dev_data, classes, loss_kind)
                row.update({"dev_loss": scores["dev_loss"], "threshold": scores["threshold"],
                            **{f"token_{k}": scores["token"][k] for k in ("precision", "recall", "f1")},
                            **{f"entity_{k}": scores["entity"][k] for k in ("precision", "recall", "f1")}})
                improved = scores["entity"]["f1"] > state.best_f1
            else:
                scores, improved = None, True
            state.history.append(row)
            if improved:
                state.best_f1 = scores["entity"]["f1"] if scores else 0.0
                state.best_epoch, state.bad_epochs = epoch, 0
                state.threshold = scores["threshold"] if scores else 0.5
                best = params.copy()
                save_model(run_dir / MODEL_SUBDIR, best, vocab, model_meta(state.threshold, scores, epoch))
            else:
                state.bad_epochs += 1
            log(_epoch_line(row, improved))
            state.epoch, state.batch = epoch + 1, 0
            state.loss_sum, state.loss_count, state.epoch_seconds = 0.0, 0, 0.0
            if dev_data is not None and state.bad_epochs >= t.patience:
                log(f"early stop: no better dev LOC entity F1 for {t.patience} epochs")
                state.epoch = t.epochs
            state.done = state.epoch >= t.epochs
            write_metrics_csv(run_dir, state.history)
            write_checkpoint(run_dir, cfg, vocab, params, best, velocity, state, extra)
    except Exception as e:
        if created and not isinstance(e, Interrupted) and not (run_dir / CHECKPOINT).exists():
            shutil.rmtree(run_dir, ignore_errors=True)  # no half run directory: nothing in it can be resumed
        raise
    finally:
        for sig, h in handlers.items():
            signal.signal(sig, h)

    plot_learning_curve(run_dir, state.history)
    if dev_data is not None:
        _write_dev_reports(run_dir, best, dev_data, mc.activation, classes, state.threshold, mc.radius)
    point_latest(run_dir)
    secs = time.perf_counter() - t_start
    log(f"best epoch {state.best_epoch + 1}: dev LOC entity F1 {state.best_f1:.4f} "
        f"(threshold {state.threshold:.3f}); model in {run_dir / MODEL_SUBDIR} [{secs:.1f} s]")
    return TrainResult(run_dir, state.best_epoch, state.best_f1, state.history, secs)


def _all_finite(params: Params) -> bool:
    """False when a NaN/Inf reached the parameters in the last step (a bad gradient shows up here at once).

    Every gradient is a product with the error signal (δs, then Δ): a NaN/Inf in Δ reaches W
    through ΔᵀX, b through Δᵀ1 and u through Hᵀδs, and NaN/Inf survive a sum.  So three sums
    (~5 µs) stand in for an isfinite() pass over every array and the E rows the batch moved,
    which cost ~13% of a frozen-vector step.
    """
    return math.isfinite(float(params.W.sum()) + float(params.b.sum()) + float(params.u.sum()))


def _epoch_line(row: dict, improved: bool) -> str:
    s = f"epoch {row['epoch']:>3}  lr {row['lr']:.4g}  train loss {row['train_loss']:.4f}"
    if "dev_loss" in row:
        s += (f"  dev loss {row['dev_loss']:.4f}  LOC token P/R/F1 {row['token_precision']:.3f}/"
              f"{row['token_recall']:.3f}/{row['token_f1']:.3f}  entity P/R/F1 {row['entity_precision']:.3f}/"
              f"{row['entity_recall']:.3f}/{row['entity_f1']:.3f}  t={row['threshold']:.2f}")
    return s + f"  {row['seconds']:.1f}s" + ("  *" if improved else "")


def _write_dev_reports(run_dir: Path, best: Params, dev: LabelledData, activation: str, classes: list[str],
                       threshold: float, radius: int) -> None:
    """PR curve over thresholds and the most confident errors of the best model on dev."""
    p = predict_proba(best, dev.windows.ids, dev.windows.casing, activation)
    decision = {"threshold": threshold}
    if p.ndim == 2:  # multiclass: the model tags LOC where LOC is the argmax
        loc = classes.index("LOC") if "LOC" in classes else -1
        decision = {"is_loc": np.argmax(p, axis=1) == loc}
        p = p[:, loc] if loc >= 0 else np.zeros(len(p))
    y_loc = dev.windows.y if len(classes) == 2 else (dev.windows.y == classes.index("LOC")).astype(np.int32)
    table = metrics.pr_curve(p, y_loc, metrics.spans_of_type(dev.spans, "LOC"), dev.windows.sentence)
    metrics.write_pr_curve(table, run_dir / "pr_curve.csv", run_dir / "pr_curve.png")
    errs = metrics.error_listing(dev.tokens, p, y_loc, radius, k=15, **decision)
    (run_dir / "errors.txt").write_text(metrics.format_error_listing(errs), encoding="utf-8")
