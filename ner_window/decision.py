"""Stage: the one rule that turns p into a label ("is this token a location?").

    binary model      (p (N,) = P(location)):         LOC where p >= threshold, else O
    multiclass model  (p (N, n_classes), softmax):    the argmax class
    sentence model    (tag scores + transitions):     the Viterbi path's class (sentence.decode; it
                      decides whole sentences, so its p, the marginals, are shown beside it, not thresholded)

Every place that decides -- the tagger, evaluate, training's dev scores, the run
reports, explain, scripts/ablate.py -- calls decide() or is_location(), so a
change of rule is made here once.  Imports numpy only: tagging uses it.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

LOCATION = "LOC"
BINARY_CLASSES = ("O", LOCATION)


def decide(p: np.ndarray, threshold: float, classes: Sequence[str] = BINARY_CLASSES) -> np.ndarray:
    """(N,) int class index per window: binary 1 (= LOC) where p >= threshold, else 0;
    multiclass the argmax of each row of p (threshold unused)."""
    p = np.asarray(p)
    if p.ndim == 1:
        return (p >= threshold).astype(np.int32)
    return np.argmax(p, axis=1).astype(np.int32)


def location_index(classes: Sequence[str]) -> int | None:
    """The index of "LOC" in ``classes``, or None for a model without a location class."""
    return list(classes).index(LOCATION) if LOCATION in classes else None


def is_location(p: np.ndarray, threshold: float, classes: Sequence[str] = BINARY_CLASSES) -> np.ndarray:
    """(N,) bool: decide() says LOC (all False for a model without a location class)."""
    loc = location_index(classes)
    labels = decide(p, threshold, classes)
    return labels == loc if loc is not None else np.zeros(labels.shape, dtype=bool)


def is_location_class(labels: np.ndarray, classes: Sequence[str] = BINARY_CLASSES) -> np.ndarray:
    """(N,) bool: class indices already decided (a sentence model's path, sentence.class_of) are LOC."""
    loc = location_index(classes)
    labels = np.asarray(labels)
    return labels == loc if loc is not None else np.zeros(labels.shape, dtype=bool)


def p_location(p: np.ndarray, classes: Sequence[str] = BINARY_CLASSES) -> np.ndarray:
    """(N,) P(location): p itself for a binary model, the LOC column of a multiclass p (0 without one)."""
    p = np.asarray(p)
    if p.ndim == 1:
        return p
    loc = location_index(classes)
    return p[:, loc] if loc is not None else np.zeros(len(p), dtype=p.dtype)


def y_location(y: np.ndarray, classes: Sequence[str] = BINARY_CLASSES) -> np.ndarray:
    """(N,) int32 1 where the gold label ``y`` (class indices) is LOC, else 0."""
    loc = location_index(classes)
    return (np.asarray(y) == loc).astype(np.int32) if loc is not None else np.zeros(len(y), dtype=np.int32)
