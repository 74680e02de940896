"""The threshold rules of train.threshold_rule: tuned (the highest dev entity F1), smoothed (the
highest entity F1 averaged over t ± 0.1) and fixed."""

import csv

import numpy as np
import pytest

from ner_window.metrics import best_threshold, smoothed_threshold

# One token a sentence, so an entity is a token.  Positives 6 at p = 0.502 and 4 at 0.9,
# negatives 5 at 0.497 and 3 at 0.15.  Entity F1 = 2TP / (2TP + FP + FN) on the grid
# 0.01, 0.015, ..., 0.99:
#   t <= 0.15          TP 10, FP 8        20/28 = 0.714
#   0.155 .. 0.495     TP 10, FP 5        20/25 = 0.800
#   0.5                TP 10, FP 0        1.0            a one-point spike
#   0.505 .. 0.9       TP 4, FN 6         8/14  = 0.571
#   > 0.9              TP 0               0
# Averaged over t ± 0.1: at 0.395 the window 0.295 .. 0.495 is all 0.8 (mean 0.8); at 0.40 it
# takes in the spike: (40 * 0.8 + 1.0) / 41 = 0.8049; at 0.405 also one 0.571: (39 * 0.8 + 1.0 +
# 0.571) / 41 = 0.7993; further right the 0.571s weigh more.  So smoothed = 0.40 (F1 0.8 there).
P = np.array([0.502] * 6 + [0.9] * 4 + [0.497] * 5 + [0.15] * 3)
Y = np.array([1] * 10 + [0] * 8)
SENTENCE = np.arange(len(P))


def test_tuned_takes_the_spike_smoothed_the_plateau():
    t, f1 = best_threshold(P, Y, None, SENTENCE)
    assert t == pytest.approx(0.5) and f1 == pytest.approx(1.0)
    t, f1 = smoothed_threshold(P, Y, None, SENTENCE)
    assert t == pytest.approx(0.40) and f1 == pytest.approx(0.8)


@pytest.mark.parametrize("rule, check", [
    ("fixed", lambda ts: set(ts) == {0.3}),
    ("smoothed", lambda ts: all(0.0 < t < 1.0 for t in ts)),
])
def test_training_saves_the_rules_threshold(tiny_config, tmp_path, rule, check):
    from ner_window.artifact import load_model
    from ner_window.train import train

    run = tmp_path / rule
    result = train(tiny_config("train.epochs=2", f"train.threshold_rule={rule}", "train.threshold=0.3"),
                   out_dir=run, log=lambda s: None, point_latest=False)
    thresholds = [float(r["threshold"]) for r in csv.DictReader((run / "metrics.csv").open())]
    assert check(thresholds), thresholds
    assert load_model(run).threshold == pytest.approx(thresholds[result.best_epoch])
