"""Stage: what a training run leaves for a reader, beside the model and the checkpoint.

    metrics.csv          one row per epoch, the columns METRIC_COLUMNS:
                           train_loss_with_l2  the objective J = data loss + L2 penalty, mean over the
                                               epoch's minibatches (each at the parameters before its step)
                           train_data_loss     the data loss alone over the same minibatches
                           dev_data_loss       the data loss of the epoch's parameters on dev, by the same
                                               loss code as training (model.loss_and_delta_s, the same
                                               pos_weight), so it compares with train_data_loss
                           threshold, dev LOC token / entity P/R/F1, lr, seconds
    learning_curve.png   the losses (and dev F1) per epoch; marks the best epoch (the one saved)
                         and where early stopping ended the run
    pr_curve.csv / .png  the best model's LOC precision / recall over thresholds on dev; the
                         picture marks the chosen threshold and names the model and the data
    errors.txt           the best model's most confident mistakes on dev
    runs/latest          a link to the last run trained inside ./runs (point_latest)

Files are written through files.py; the pictures need matplotlib (the ``plot`` extra)
and are skipped without it.  matplotlib is imported only here, inside the functions.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from . import metrics
from .decision import is_location, p_location, y_location
from .files import write_bytes_atomic, write_text_atomic

DEFAULT_RUNS = Path("runs")
LATEST = DEFAULT_RUNS / "latest"
METRIC_COLUMNS = [
    "epoch", "lr", "train_loss_with_l2", "train_data_loss", "dev_data_loss", "threshold",
    "token_precision", "token_recall", "token_f1", "entity_precision", "entity_recall", "entity_f1", "seconds",
]


def write_metrics_csv(run_dir: Path, history: list[dict]) -> None:
    """metrics.csv: one row per epoch of ``history`` (the columns METRIC_COLUMNS)."""
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=METRIC_COLUMNS, extrasaction="ignore", lineterminator="\r\n")
    w.writeheader()
    w.writerows(history)
    write_text_atomic(Path(run_dir) / "metrics.csv", out.getvalue())


def _figure(width: float, height: float, n_panels: int):
    """A matplotlib Figure (no pyplot state, no GUI backend) and its axes, or None without matplotlib."""
    try:
        from matplotlib.figure import Figure  # lazy and optional
    except ImportError:
        return None
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(1, n_panels)
    return fig, (list(axes) if n_panels > 1 else [axes])


def _save_png(fig, path: Path) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    write_bytes_atomic(path, buffer.getvalue())
    return path


def plot_learning_curve(path: Path, history: list[dict], best_epoch: int, stopped_early: int = -1,
                        title: str = "") -> Path | None:
    """learning_curve.png: the three loss columns per epoch, and dev LOC F1 when there is dev data.

    best_epoch, stopped_early: 0-based epochs (the one saved; the one after which early
    stopping ended the run, -1 for none), marked by vertical lines.  None without matplotlib.
    """
    has_dev = bool(history) and history[0].get("dev_data_loss") is not None
    made = _figure(10 if has_dev else 5.5, 3.8, 2 if has_dev else 1)
    if made is None:
        return None
    fig, axes = made
    ep = [r["epoch"] for r in history]
    a1 = axes[0]
    a1.plot(ep, [r.get("train_data_loss") for r in history], "o-", label="train data loss")
    if has_dev:
        a1.plot(ep, [r["dev_data_loss"] for r in history], "o-", label="dev data loss")
    a1.plot(ep, [r.get("train_loss_with_l2") for r in history], ":", color="grey", label="train J (data + L2)")
    a1.set(xlabel="epoch", ylabel="loss (weighted mean per window)")
    if has_dev:
        a2 = axes[1]
        a2.plot(ep, [r["entity_f1"] for r in history], "o-", label="dev LOC entity F1")
        a2.plot(ep, [r["token_f1"] for r in history], "s--", label="dev LOC token F1")
        a2.set(xlabel="epoch", ylabel="F1")
    from matplotlib.ticker import MaxNLocator

    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
        if best_epoch >= 0:
            ax.axvline(best_epoch + 1, color="green", lw=1, ls="--", label=f"best epoch {best_epoch + 1} (saved)")
        if stopped_early >= 0:
            ax.axvline(stopped_early + 1, color="red", lw=1, ls=":", label=f"early stop after epoch {stopped_early + 1}")
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    return _save_png(fig, Path(path))


def plot_pr_curve(table: dict, path: Path, *, title: str, threshold: float | None = None,
                  decision: dict | None = None) -> Path | None:
    """pr_curve.png: LOC precision / recall (token and entity level) and F1 over the threshold t on p.

    threshold: the binary model's chosen t, marked on both panels.  decision: for a model
    that does not threshold p (multiclass: argmax), its own token / entity scores
    ({"token": {...}, "entity": {...}}, and "rule" when it is not the argmax), marked as one point
    each.  title names the model and the data.  None without matplotlib.
    """
    made = _figure(9.5, 3.8, 2)
    if made is None:
        return None
    fig, (ax_pr, ax_f1) = made
    t = np.asarray(table["threshold"], dtype=np.float64)
    for level, color in (("token", "C0"), ("entity", "C1")):
        ax_pr.plot(table[f"{level}_recall"], table[f"{level}_precision"], color=color, label=f"{level}-level")
        ax_f1.plot(t, table[f"{level}_f1"], color=color, label=f"{level}-level")
        if threshold is not None and t.size:
            i = int(np.argmin(np.abs(t - threshold)))
            ax_pr.plot(table[f"{level}_recall"][i], table[f"{level}_precision"][i], "o", color=color,
                       label=f"{level} at t = {threshold:.3f}")
        if decision is not None:
            ax_pr.plot(decision[level]["recall"], decision[level]["precision"], "D", color=color,
                       label=f"{level}, the model's {decision.get('rule', 'argmax')}")
    if threshold is not None:
        ax_f1.axvline(threshold, color="grey", ls="--", lw=1, label=f"chosen threshold {threshold:.3f}")
    ax_pr.set(xlabel="recall", ylabel="precision", title="LOC precision / recall", xlim=(0, 1), ylim=(0, 1.02))
    ax_f1.set(xlabel="threshold t (LOC when P(location) >= t)", ylabel="F1", title="LOC F1", xlim=(0, 1),
              ylim=(0, 1.02))
    ax_pr.legend(fontsize=7)
    ax_f1.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    return _save_png(fig, Path(path))


def pr_curve_files(p: np.ndarray, y_loc: np.ndarray, gold: list, sentence: np.ndarray, csv_path: Path, *,
                   title: str, threshold: float | None, decision: dict | None = None) -> None:
    """The PR table of P(location) ``p`` as CSV, and its picture next to it (same name, .png)."""
    table = metrics.pr_curve(p, y_loc, gold, sentence)
    metrics.write_pr_curve(table, csv_path)
    plot_pr_curve(table, Path(csv_path).with_suffix(".png"), title=title, threshold=threshold, decision=decision)


def write_dev_reports(run_dir: Path, p: np.ndarray, dev, classes: Sequence[str], threshold: float | None,
                      radius: int, title: str, decided: tuple | None = None) -> None:
    """pr_curve.csv/.png and errors.txt for the best model's p on dev (LabelledData ``dev``).

    decided: (is_loc (N,) bool, LOC spans per sentence) when the model's decision is not made from p
    (a sentence model: the Viterbi path; p its class marginals)."""
    y_loc = y_location(dev.windows.y, classes)
    gold = metrics.spans_of_type(dev.spans, "LOC")
    binary = p.ndim == 1 and decided is None
    is_loc, pred_spans = decided if decided is not None else (None if binary else is_location(p, threshold, classes),
                                                              None)
    decision = None if binary else metrics.location_scores(is_loc, y_loc, dev.windows.sentence, gold, pred_spans)
    if decided is not None:
        decision["rule"] = "Viterbi path"
    pr_curve_files(p_location(p, classes), y_loc, gold, dev.windows.sentence, Path(run_dir) / "pr_curve.csv",
                   title=title, threshold=threshold if binary else None, decision=decision)
    listing = model_errors(dev.tokens, p, y_loc, radius, threshold, classes, k=15, is_loc=is_loc)
    write_text_atomic(Path(run_dir) / "errors.txt", metrics.format_error_listing(listing))


def model_errors(tokens: list, p: np.ndarray, y_loc: np.ndarray, radius: int, threshold: float | None,
                 classes: Sequence[str], k: int, is_loc: np.ndarray | None = None) -> dict:
    """metrics.error_listing of the model's own decision (decision.decide): p >= threshold for a
    binary p (N,), the argmax for a multiclass p (N, n_classes), or ``is_loc`` when given (a
    sentence model's Viterbi path), listed by P(location)."""
    if p.ndim == 1 and is_loc is None:
        return metrics.error_listing(tokens, p, y_loc, radius, k=k, threshold=threshold)
    if is_loc is not None:
        return metrics.error_listing(tokens, p_location(p, classes), y_loc, radius, k=k, is_loc=is_loc,
                                     rule="Viterbi path = LOC")
    return metrics.error_listing(tokens, p_location(p, classes), y_loc, radius, k=k,
                                 is_loc=is_location(p, threshold, classes))


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
