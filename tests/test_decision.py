"""decision.py: the one rule that turns p into a label, on examples you can check by eye."""

import numpy as np

from ner_window.decision import decide, is_location, p_location, y_location

CLASSES = ["O", "LOC", "MISC", "PER"]


def test_binary_decides_loc_where_p_reaches_the_threshold():
    p = np.array([0.1, 0.3, 0.30001, 0.9])
    assert decide(p, 0.3).tolist() == [0, 1, 1, 1]  # p >= t: the threshold itself is LOC
    assert decide(p, 0.5, ["O", "LOC"]).tolist() == [0, 0, 0, 1]
    assert is_location(p, 0.5).tolist() == [False, False, False, True]
    assert p_location(p).tolist() == p.tolist()


def test_multiclass_takes_the_argmax_whatever_the_threshold():
    p = np.array([[0.5, 0.3, 0.1, 0.1],     # O
                  [0.2, 0.4, 0.35, 0.05],   # LOC, although P(LOC) < 0.5
                  [0.1, 0.45, 0.0, 0.45]])  # a tie: the first of them, LOC
    for threshold in (0.0, 0.5, 1.0):
        assert decide(p, threshold, CLASSES).tolist() == [0, 1, 1]
    assert is_location(p, 0.5, CLASSES).tolist() == [False, True, True]
    assert p_location(p, CLASSES).tolist() == [0.3, 0.4, 0.45]


def test_a_model_without_a_location_class_never_says_loc():
    p = np.array([[0.2, 0.8], [0.9, 0.1]])
    assert is_location(p, 0.5, ["O", "PER"]).tolist() == [False, False]
    assert p_location(p, ["O", "PER"]).tolist() == [0.0, 0.0]
    assert y_location(np.array([1, 0]), ["O", "PER"]).tolist() == [0, 0]
    assert y_location(np.array([1, 0, 2]), CLASSES).tolist() == [1, 0, 0]
