"""reports.py and what train() leaves in a run directory: honest loss columns, pictures that
mark what a reader looks for, and the loop's hooks (on_epoch, point_latest)."""

import csv
import math
import warnings

import numpy as np
import pytest

from ner_window import reports
from ner_window.artifact import load_model
from ner_window.conll import read_conll
from ner_window.fast import predict_proba
from ner_window.train import train
from ner_window.windows import labelled_data

pytest.importorskip("matplotlib")  # the plot extra; `make test` installs it


@pytest.fixture
def figures(monkeypatch):
    """The matplotlib Figures the report functions draw, instead of PNG files."""
    drawn = []
    monkeypatch.setattr(reports, "_save_png", lambda fig, path: drawn.append(fig) or path)
    return drawn


def labels(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


def vlines(ax) -> list[float]:
    """x of every vertical line (axvline) of an axes."""
    return [line.get_xdata()[0] for line in ax.get_lines() if len(set(line.get_xdata())) == 1
            and len(line.get_xdata()) == 2]


HISTORY = [{"epoch": e, "train_loss_with_l2": 1.0 / e + 0.01, "train_data_loss": 1.0 / e, "dev_data_loss": 0.6,
            "entity_f1": f, "token_f1": f + 0.05} for e, f in zip(range(1, 6), (0.5, 0.7, 0.8, 0.75, 0.7))]


def test_the_learning_curve_marks_the_best_epoch_and_the_early_stop(figures):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reports.plot_learning_curve("lc.png", HISTORY, best_epoch=2, stopped_early=4, title="runs/x")
    (fig,) = figures
    loss_ax, f1_ax = fig.axes
    assert labels(loss_ax) == ["train data loss", "dev data loss", "train J (data + L2)",
                               "best epoch 3 (saved)", "early stop after epoch 5"]
    assert labels(f1_ax)[-2:] == ["best epoch 3 (saved)", "early stop after epoch 5"]
    assert vlines(loss_ax) == vlines(f1_ax) == [3, 5]
    assert fig._suptitle.get_text() == "runs/x"


def test_without_dev_data_one_panel_and_no_matplotlib_warning(figures):
    history = [{k: r[k] for k in ("epoch", "train_loss_with_l2", "train_data_loss")} for r in HISTORY[:3]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "No artists with labels found to put in legend"
        reports.plot_learning_curve("lc.png", history, best_epoch=2)
    (fig,) = figures
    assert len(fig.axes) == 1
    assert labels(fig.axes[0]) == ["train data loss", "train J (data + L2)", "best epoch 3 (saved)"]


def test_the_pr_curve_marks_the_chosen_threshold_and_names_model_and_data(figures):
    table = {"threshold": np.array([0.1, 0.3, 0.5]), "token_precision": np.array([0.5, 0.7, 0.9]),
             "token_recall": np.array([0.9, 0.8, 0.4]), "token_f1": np.array([0.64, 0.75, 0.55]),
             "entity_precision": np.array([0.4, 0.6, 0.8]), "entity_recall": np.array([0.8, 0.7, 0.3]),
             "entity_f1": np.array([0.53, 0.65, 0.44])}
    reports.plot_pr_curve(table, "pr.png", title="model runs/x/model on data/dev.txt", threshold=0.3)
    (fig,) = figures
    pr_ax, f1_ax = fig.axes
    assert fig._suptitle.get_text() == "model runs/x/model on data/dev.txt"
    assert vlines(f1_ax) == [0.3] and "chosen threshold 0.300" in labels(f1_ax)
    marked = {line.get_label(): (line.get_xdata()[0], line.get_ydata()[0]) for line in pr_ax.get_lines()
              if line.get_marker() == "o"}
    assert marked == {"token at t = 0.300": (0.8, 0.7), "entity at t = 0.300": (0.7, 0.6)}


def test_metrics_csv_has_the_three_loss_columns_in_order(tmp_path):
    reports.write_metrics_csv(tmp_path, HISTORY[:2])
    with open(tmp_path / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[:5] == ["epoch", "lr", "train_loss_with_l2", "train_data_loss", "dev_data_loss"]
    assert float(rows[1]["train_data_loss"]) == 0.5


# --- what train() writes and calls -------------------------------------------------------------

RANDOM = ("embeddings.source=random", "embeddings.dim=8", "train.epochs=2")


def test_the_dev_data_loss_is_the_training_loss_with_pos_weight(tmp_path, tiny_config, monkeypatch):
    """metrics.csv's dev_data_loss is the weighted cross-entropy of the epoch's model on dev,
    computed here from p by the formula; the epochs seen by on_epoch are metrics.csv's rows."""
    monkeypatch.chdir(tmp_path)
    cfg = tiny_config(*RANDOM, "train.pos_weight=3", "train.epochs=1")
    seen = []
    result = train(cfg, out_dir=tmp_path / "runs" / "one", log=lambda s: None, point_latest=False,
                   on_epoch=lambda row, improved: seen.append((row, improved)))
    assert [(row["epoch"], improved) for row, improved in seen] == [(1, True)]
    assert [row for row, _ in seen] == result.history
    assert not (tmp_path / "runs" / "latest").exists()  # point_latest=False
    model = load_model(tmp_path / "runs" / "one")  # epoch 1 is the best: the saved model is the one scored
    dev = labelled_data(read_conll(cfg.data.dev, "iob2"), model.vocab, model.radius, model.classes, ["LOC"])
    p = predict_proba(model.params, dev.windows.ids, dev.windows.casing, model.activation).astype(np.float64)
    y = dev.windows.y
    omega = np.where(y == 1, 3.0, 1.0)
    expected = -np.sum(omega * (y * np.log(p) + (1 - y) * np.log1p(-p))) / omega.sum()
    with open(tmp_path / "runs" / "one" / "metrics.csv", newline="") as f:
        (row,) = csv.DictReader(f)
    assert float(row["dev_data_loss"]) == pytest.approx(expected, rel=1e-4)
    assert math.isfinite(float(row["train_data_loss"])) and float(row["train_loss_with_l2"]) > float(
        row["train_data_loss"])


def test_a_run_without_dev_data_draws_its_learning_curve_without_warnings(tmp_path, tiny_config, figures):
    cfg = tiny_config(*RANDOM)
    cfg.data.dev = None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = train(cfg, out_dir=tmp_path / "run", log=lambda s: None, point_latest=False)
    (fig,) = figures  # the learning curve only: no PR curve without dev data
    assert len(fig.axes) == 1 and result.best_epoch == 1
    assert not (tmp_path / "run" / "pr_curve.csv").exists() and (tmp_path / "run" / "metrics.csv").exists()
