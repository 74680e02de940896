"""How good is the location classifier?  Token-level and entity-level scores.

The window classifier answers one question per token: p = P(this token is
part of a LOCATION).  Two scores judge the answers, and both are always
reported, labelled, side by side:

* token level -- each token is one binary decision (predicted: p >= t);
  precision, recall and F1 of the positive class, computed by scikit-learn.
* entity level -- what conlleval reports: a predicted location is a run of
  consecutive tokens with p >= t inside one sentence, and it counts only if
  it matches a gold span exactly, both ends.  "New York City" tagged as
  "New York" scores 2/3 of its tokens but zero entities.

Spans are (start, end) token positions inside a sentence, end exclusive, and
are always given per sentence: ``spans[s]`` lists the spans of sentence s.
Flat arrays (p, y, sentence_index) run over the tokens of all sentences in
order, as ``windows.make_windows`` lays them out.

Every score dict has the keys "precision", "recall", "f1" and "support"
(the number of gold positives: tokens or entities).  Dividing by zero gives
0.0, silently.

This module imports only numpy (and the package's decision and files modules) at the
top; scikit-learn is imported inside the function that uses it.  The pictures of
these scores are drawn by reports.py.
"""

from __future__ import annotations

import csv
import io
import os
from collections import Counter
from typing import Sequence

import numpy as np

from .decision import is_location
from .files import write_bytes_atomic

Span = tuple[int, int]              # (start, end_exclusive) inside a sentence
TypedSpan = tuple[str, int, int]    # (type, start, end_exclusive), as conll.entity_spans returns

# Sentence-edge padding words shown in error listings (the same strings as vocab.BOS / vocab.EOS).
BOS, EOS = "<s>", "</s>"

# Thresholds tried by best_threshold / pr_curve unless told otherwise:
# 0.010, 0.015, ..., 0.990 -- round numbers, so a chosen threshold reads well in a config.
DEFAULT_GRID = np.round(np.arange(0.01, 0.99 + 1e-9, 0.005), 3)

PR_COLUMNS = ("threshold", "token_precision", "token_recall", "token_f1",
              "entity_precision", "entity_recall", "entity_f1")


# --------------------------------------------------------------------------- scores

def prf(n_correct: int, n_predicted: int, n_gold: int) -> dict:
    """Precision, recall, F1 from counts; 0.0 wherever a denominator is 0.

    F1 = 2PR/(P+R) = 2·correct/(predicted + gold), the second form needs no
    special case when P = R = 0.
    """
    precision = n_correct / n_predicted if n_predicted else 0.0
    recall = n_correct / n_gold if n_gold else 0.0
    f1 = 2 * n_correct / (n_predicted + n_gold) if n_predicted + n_gold else 0.0
    return {"precision": float(precision), "recall": float(recall), "f1": float(f1),
            "support": int(n_gold)}


def token_prf(y_true: Sequence[int], y_pred: Sequence[int]) -> dict:
    """Token-level precision/recall/F1 of the positive class (LOC = 1).

    y_true, y_pred: (N,) 0/1 (or bool).  support = number of gold LOC tokens.
    """
    y_true = np.asarray(y_true).astype(np.int64).ravel()
    y_pred = np.asarray(y_pred).astype(np.int64).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"token_prf: {y_true.shape[0]} gold labels but {y_pred.shape[0]} predictions")
    if y_true.size == 0:
        return prf(0, 0, 0)
    from sklearn.metrics import precision_recall_fscore_support  # lazy: keep sklearn off the predict path

    # labels=[0, 1] keeps sklearn from complaining when a batch has no positives at
    # all; zero_division=0.0 is the convention above and silences the warning.
    precision, recall, f1, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=[0, 1], pos_label=1, average="binary", zero_division=0.0)
    return {"precision": float(precision), "recall": float(recall), "f1": float(f1),
            "support": int(y_true.sum())}


def predicted_spans(pred: Sequence[bool | int]) -> list[Span]:
    """Runs of consecutive tokens predicted as location, in one sentence.

    pred: (n,) truthy = location.   [0, 1, 1, 0, 1] -> [(1, 3), (4, 5)]
    """
    on = np.concatenate([[False], np.asarray(pred, dtype=bool).ravel(), [False]])
    # A run starts where on goes 0 -> 1 and ends where it goes 1 -> 0.
    edges = np.flatnonzero(on[1:] != on[:-1])
    return [(int(a), int(b)) for a, b in zip(edges[0::2], edges[1::2])]


def sentence_offsets(sentence_index: Sequence[int], n_sentences: int | None = None) -> np.ndarray:
    """(S + 1,) offsets: the tokens of sentence s are flat positions offsets[s]:offsets[s + 1].

    sentence_index: (N,) non-decreasing sentence id of every token (Windows.sentence).
    A sentence id that never occurs is an empty sentence.
    """
    sentence_index = np.asarray(sentence_index, dtype=np.int64).ravel()
    if sentence_index.size and (sentence_index[0] < 0 or np.any(np.diff(sentence_index) < 0)):
        raise ValueError("sentence_index must be non-negative and non-decreasing (tokens in sentence order)")
    if n_sentences is None:
        n_sentences = int(sentence_index[-1]) + 1 if sentence_index.size else 0
    elif sentence_index.size and sentence_index[-1] >= n_sentences:
        raise ValueError(f"sentence_index refers to sentence {sentence_index[-1]} "
                         f"but only {n_sentences} sentences were given")
    return np.searchsorted(sentence_index, np.arange(n_sentences + 1), side="left")


def predicted_spans_per_sentence(pred: Sequence[bool | int], sentence_index: Sequence[int],
                                 n_sentences: int | None = None) -> list[list[Span]]:
    """predicted_spans for every sentence of a flat prediction vector (runs never cross sentences)."""
    pred = np.asarray(pred, dtype=bool).ravel()
    offsets = sentence_offsets(sentence_index, n_sentences)
    if offsets[-1] != pred.size:
        raise ValueError(f"sentence_index has {offsets[-1]} tokens but pred has {pred.size}")
    return [predicted_spans(pred[a:b]) for a, b in zip(offsets[:-1], offsets[1:])]


def spans_of_type(spans_per_sentence: Sequence[Sequence[TypedSpan]], type: str = "LOC") -> list[list[Span]]:
    """Keep the spans of one entity type, dropping the type: [("LOC", 0, 2)] -> [(0, 2)]."""
    return [[(a, b) for t, a, b in spans if t == type] for spans in spans_per_sentence]


def entity_prf(gold_spans_per_sentence: Sequence[Sequence[tuple]],
               pred_spans_per_sentence: Sequence[Sequence[tuple]]) -> dict:
    """Entity-level precision/recall/F1: a predicted span counts only if it equals a gold span.

    Spans are compared as whole tuples, so (start, end) and (type, start, end)
    both work, as long as gold and predicted use the same form.
    support = number of gold entities.
    """
    if len(gold_spans_per_sentence) != len(pred_spans_per_sentence):
        raise ValueError(f"entity_prf: {len(gold_spans_per_sentence)} gold sentences "
                         f"but {len(pred_spans_per_sentence)} predicted")
    n_correct = n_predicted = n_gold = 0
    for gold, pred in zip(gold_spans_per_sentence, pred_spans_per_sentence):
        gold, pred = set(map(tuple, gold)), set(map(tuple, pred))
        n_correct += len(gold & pred)
        n_predicted += len(pred)
        n_gold += len(gold)
    return prf(n_correct, n_predicted, n_gold)


def evaluate_location(p: Sequence[float], y: Sequence[int], sentence_index: Sequence[int],
                      gold_spans: Sequence[Sequence[Span]] | None = None,
                      threshold: float = 0.5) -> dict:
    """Both scores at one threshold: {"threshold": t, "token": {...}, "entity": {...}}.

    p, y, sentence_index: (N,) flat over all tokens.  gold_spans[s]: the gold
    LOC spans of sentence s, as decoded from the tags (two adjacent locations
    "B-LOC B-LOC" are two spans).  When None, the runs of y are used, which
    merges adjacent locations -- pass the decoded spans when you have them.
    """
    p, y = _check_p_y(p, y)
    return {"threshold": float(threshold), **location_scores(is_location(p, threshold), y, sentence_index, gold_spans)}


def location_scores(is_loc: Sequence[bool], y: Sequence[int], sentence_index: Sequence[int],
                    gold_spans: Sequence[Sequence[Span]] | None = None,
                    pred_spans: Sequence[Sequence[Span]] | None = None) -> dict:
    """Both scores of given decisions: {"token": {...}, "entity": {...}}.

    is_loc: (N,) bool, the model's decision per token (decision.is_location); pred_spans: the
    predicted spans per sentence when they are not the runs of is_loc (a sentence-level model's
    decoded entities, where two adjacent places stay two); the rest as for evaluate_location.
    """
    pred, y = np.asarray(is_loc, dtype=bool).ravel(), np.asarray(y).astype(np.int64).ravel()
    if pred.shape != y.shape:
        raise ValueError(f"{pred.shape[0]} decisions but {y.shape[0]} labels")
    offsets, gold_spans = _layout(pred, y, gold_spans, sentence_index)
    if pred_spans is None:
        pred_spans = [predicted_spans(pred[a:b]) for a, b in zip(offsets[:-1], offsets[1:])]
    return {"token": token_prf(y, pred), "entity": entity_prf(gold_spans, pred_spans)}


def error_breakdown(gold_spans_per_sentence: Sequence[Sequence[Span]],
                    pred_spans_per_sentence: Sequence[Sequence[Span]]) -> dict:
    """What kind of entity errors: counts over all sentences of spans (start, end).

    correct    predicted spans equal to a gold span
    missed     gold spans that no predicted span overlaps
    boundary   gold spans that a predicted span overlaps but none equals ("[Gulf] of [Mexico]")
    spurious   predicted spans that overlap no gold span
    boundary_predicted  predicted spans that overlap a gold span without equalling one
    So the gold spans not found are missed + boundary, and the wrong predictions are
    spurious + boundary_predicted (entity_prf's n_gold − correct and n_predicted − correct).
    """
    counts = dict.fromkeys(("correct", "missed", "boundary", "spurious", "boundary_predicted"), 0)

    def overlaps(a: Span, spans: set) -> bool:
        return any(a[0] < b[1] and b[0] < a[1] for b in spans)

    for gold, pred in zip(gold_spans_per_sentence, pred_spans_per_sentence, strict=True):
        gold, pred = set(map(tuple, gold)), set(map(tuple, pred))
        exact = gold & pred
        counts["correct"] += len(exact)
        for g in gold - exact:
            counts["boundary" if overlaps(g, pred) else "missed"] += 1
        for q in pred - exact:
            counts["boundary_predicted" if overlaps(q, gold) else "spurious"] += 1
    return counts


def format_breakdown(counts: dict) -> str:
    """One line: 'entity errors  LOC  missed 12  boundary 9 (14 predicted spans)  spurious 20  (correct 300)'."""
    return (f"{'entity errors':<13} LOC  missed {counts['missed']}  boundary {counts['boundary']} "
            f"({counts['boundary_predicted']} predicted spans)  spurious {counts['spurious']}  "
            f"(correct {counts['correct']})")


def format_prf(label: str, scores: dict, unit: str) -> str:
    """One labelled line: 'token-level  LOC  P 0.8500  R 0.8000  F1 0.8242  (120 gold tokens)'."""
    return (f"{label:<13} LOC  P {scores['precision']:.4f}  R {scores['recall']:.4f}  "
            f"F1 {scores['f1']:.4f}  ({scores['support']} gold {unit})")


def format_location_report(report: dict) -> str:
    """The two lines of evaluate_location, token level first."""
    return "\n".join([f"threshold {report['threshold']:g}",
                      format_prf("token-level", report["token"], "tokens"),
                      format_prf("entity-level", report["entity"], "entities")])


# ------------------------------------------------------------- threshold tuning

def _check_p_y(p, y) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(p, dtype=np.float64).ravel()
    y = np.asarray(y).astype(np.int64).ravel()
    if p.shape != y.shape:
        raise ValueError(f"{p.shape[0]} probabilities but {y.shape[0]} labels")
    if not np.all(np.isfinite(p)):
        raise ValueError("p contains NaN or infinity")
    return p, y


def _layout(p: np.ndarray, y: np.ndarray, gold_spans, sentence_index):
    """Sentence offsets, and the gold spans (the runs of y when none are given)."""
    offsets = sentence_offsets(sentence_index, None if gold_spans is None else len(gold_spans))
    if offsets[-1] != p.size:
        raise ValueError(f"sentence_index has {offsets[-1]} tokens but p has {p.size}")
    if gold_spans is None:
        gold_spans = [predicted_spans(y[a:b]) for a, b in zip(offsets[:-1], offsets[1:])]
    return offsets, gold_spans


def _grid(p: np.ndarray, grid) -> np.ndarray:
    if grid is None:
        return DEFAULT_GRID.copy()
    if isinstance(grid, str):
        if grid != "exact":
            raise ValueError(f"grid must be None, 'exact' or an array of thresholds, not {grid!r}")
        # Every outcome that any threshold can produce is produced by some t in
        # unique(p): predictions only change when t passes one of the p values.
        return np.unique(p) if p.size else np.array([0.5])
    return np.asarray(grid, dtype=np.float64).ravel()


def _count_in_intervals(lo: np.ndarray, hi: np.ndarray, t: np.ndarray) -> np.ndarray:
    """For every threshold t: how many i have lo[i] < t <= hi[i].

    When lo < hi, [lo < t <= hi] = [hi >= t] - [lo >= t], and "how many of a
    sorted array are >= t" is one searchsorted -- O((n + T) log n) for all T.
    """
    keep = lo < hi
    lo, hi = np.sort(lo[keep]), np.sort(hi[keep])
    n = hi.size
    return (n - np.searchsorted(hi, t, side="left")) - (n - np.searchsorted(lo, t, side="left"))


def _entity_counts(p: np.ndarray, offsets: np.ndarray, gold_spans: Sequence[Sequence[Span]],
                   t: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """(n_correct[T], n_predicted[T], n_gold) of entity-level scoring at every threshold in t.

    With neighbours outside the sentence counting as -inf:
      token i starts a predicted span at t   iff  p[i-1] < t <= p[i]
      gold span [a, b) is predicted exactly  iff  max(p[a-1], p[b]) < t <= min(p[a:b])
    so both counts are "how many intervals (lo, hi] contain t".
    """
    n = p.size
    is_start = np.zeros(n, dtype=bool)
    is_start[offsets[:-1][offsets[:-1] < offsets[1:]]] = True   # first token of each non-empty sentence
    p_left = np.where(is_start, -np.inf, np.concatenate([[-np.inf], p[:-1]]))
    n_predicted = _count_in_intervals(p_left, p, t)

    a = np.array([offsets[s] + span[-2] for s, spans in enumerate(gold_spans) for span in spans], dtype=np.int64)
    b = np.array([offsets[s] + span[-1] for s, spans in enumerate(gold_spans) for span in spans], dtype=np.int64)
    first = np.repeat(offsets[:-1], [len(spans) for spans in gold_spans]).astype(np.int64)
    last = np.repeat(offsets[1:], [len(spans) for spans in gold_spans]).astype(np.int64)
    if np.any(a < first) or np.any(b > last) or np.any(a >= b):
        raise ValueError("a gold span is empty or lies outside its sentence")
    if a.size == 0:
        return np.zeros(t.size, dtype=np.int64), n_predicted, 0
    # min(p[a:b]) for every span at once: reduceat over the boundaries a0, b0, a1, b1, ...
    # reads p[a:b] at the even slots (a sentinel makes b == n a valid index).
    bounds = np.stack([a, b], axis=1).ravel()
    span_min = np.minimum.reduceat(np.append(p, np.inf), bounds)[0::2]
    padded = np.concatenate([[-np.inf], p, [-np.inf]])
    outside_left = np.where(a > first, padded[a], -np.inf)       # padded[a] == p[a - 1]
    outside_right = np.where(b < last, padded[b + 1], -np.inf)    # padded[b + 1] == p[b]
    n_correct = _count_in_intervals(np.maximum(outside_left, outside_right), span_min, t)
    return n_correct, n_predicted, int(a.size)


def _token_counts(p: np.ndarray, y: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """(n_correct[T], n_predicted[T], n_gold) of token-level scoring at every threshold in t."""
    p_sorted, p_pos_sorted = np.sort(p), np.sort(p[y == 1])
    n_predicted = p.size - np.searchsorted(p_sorted, t, side="left")          # #{p >= t}
    n_correct = p_pos_sorted.size - np.searchsorted(p_pos_sorted, t, side="left")  # #{p >= t, y = 1}
    return n_correct, n_predicted, int(p_pos_sorted.size)


def _f_arrays(n_correct: np.ndarray, n_predicted: np.ndarray, n_gold: int):
    """prf on arrays of counts: (precision[T], recall[T], f1[T]), 0 where undefined."""
    n_correct, n_predicted = n_correct.astype(np.float64), n_predicted.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(n_predicted > 0, n_correct / n_predicted, 0.0)
        recall = n_correct / n_gold if n_gold else np.zeros_like(n_correct)
        f1 = np.where(n_predicted + n_gold > 0, 2 * n_correct / (n_predicted + n_gold), 0.0)
    return precision, recall, f1


def pr_curve(p: Sequence[float], y_token: Sequence[int], gold_spans: Sequence[Sequence[Span]] | None,
             sentence_index: Sequence[int], grid=None) -> dict[str, np.ndarray]:
    """Token and entity precision/recall/F1 at every threshold of a grid, in one pass.

    p, y_token, sentence_index: (N,).  gold_spans[s]: gold LOC spans of sentence s,
    (start, end) or (type, start, end) -- LOC only, see spans_of_type (None: runs of y_token).  grid: None (DEFAULT_GRID, 0.01..0.99 step 0.005),
    "exact" (every distinct p) or an array of thresholds.
    Returns {column: (T,) array} with the columns PR_COLUMNS.
    """
    p, y = _check_p_y(p, y_token)
    offsets, gold_spans = _layout(p, y, gold_spans, sentence_index)
    t = _grid(p, grid)
    token = _f_arrays(*_token_counts(p, y, t))
    entity = _f_arrays(*_entity_counts(p, offsets, gold_spans, t))
    return dict(zip(PR_COLUMNS, (t, *token, *entity)))


def best_threshold(p: Sequence[float], y_token: Sequence[int], gold_spans: Sequence[Sequence[Span]] | None,
                   sentence_index: Sequence[int], grid=None) -> tuple[float, float]:
    """The threshold with the highest ENTITY F1 on this (dev) data: (t, entity_f1).

    Ties go to the higher token F1, then to the threshold nearest 0.5.
    Arguments as for pr_curve.
    """
    table = pr_curve(p, y_token, gold_spans, sentence_index, grid)
    t = table["threshold"]
    # lexsort sorts by the last key first.
    best = np.lexsort((np.abs(t - 0.5), -table["token_f1"], -table["entity_f1"]))[0]
    return float(t[best]), float(table["entity_f1"][best])


def smoothed_threshold(p: Sequence[float], y_token: Sequence[int], gold_spans: Sequence[Sequence[Span]] | None,
                       sentence_index: Sequence[int], half_width: float = 0.1) -> tuple[float, float]:
    """The threshold whose entity F1, averaged over the grid thresholds within ± half_width, is
    highest: (t, entity F1 at t).  Entity F1 is flat near its maximum, so its argmax moves with
    every ripple (from one epoch to the next); the middle of the plateau does not.
    Arguments as for pr_curve (on DEFAULT_GRID)."""
    table = pr_curve(p, y_token, gold_spans, sentence_index)
    t, f1 = table["threshold"], table["entity_f1"]
    near = np.abs(t[:, None] - t[None, :]) <= half_width + 1e-9  # (T, T): which thresholds average into each
    mean = (near * f1[None, :]).sum(axis=1) / near.sum(axis=1)
    best = int(np.argmax(mean))
    return float(t[best]), float(f1[best])


# ------------------------------------------------------------------ file output

def write_pr_curve(table: dict, path_csv: str | os.PathLike) -> str:
    """Write a pr_curve table as CSV, one row per threshold (reports.plot_pr_curve draws it)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(PR_COLUMNS)
    for row in zip(*(table[c] for c in PR_COLUMNS)):
        writer.writerow([f"{float(v):.10g}" for v in row])
    write_bytes_atomic(path_csv, out.getvalue().encode("utf-8"))
    return os.fspath(path_csv)


# ------------------------------------------------------------- multiclass, conlleval

def conlleval_table(gold_spans: Sequence[Sequence[TypedSpan]], pred_spans: Sequence[Sequence[TypedSpan]]) -> dict:
    """conlleval's phrase scores from typed spans (type, start, end), per sentence.

    Returns {"overall": scores, "per_type": {TYPE: scores}} where scores has
    "precision", "recall", "f1", "support" (gold phrases), "predicted"
    (found phrases) and "correct".  A phrase is correct when type, start and end all match.
    """
    if len(gold_spans) != len(pred_spans):
        raise ValueError(f"conlleval_table: {len(gold_spans)} gold sentences but {len(pred_spans)} predicted")
    n_gold, n_predicted, n_correct = Counter(), Counter(), Counter()
    for gold, pred in zip(gold_spans, pred_spans):
        gold, pred = set(map(tuple, gold)), set(map(tuple, pred))
        if any(len(span) != 3 for span in gold | pred):
            raise ValueError("conlleval_table needs typed spans (type, start, end)")
        n_gold.update(span[0] for span in gold)
        n_predicted.update(span[0] for span in pred)
        n_correct.update(span[0] for span in gold & pred)

    def scores(c: int, f: int, g: int) -> dict:
        return {**prf(c, f, g), "predicted": int(f), "correct": int(c)}

    per_type = {t: scores(n_correct[t], n_predicted[t], n_gold[t]) for t in sorted(n_gold | n_predicted)}
    overall = scores(sum(n_correct.values()), sum(n_predicted.values()), sum(n_gold.values()))
    return {"overall": overall, "per_type": per_type}


def format_conlleval(table: dict, n_tokens: int | None = None, n_correct_tags: int | None = None) -> str:
    """conlleval's text report for a conlleval_table (percentages, FB1 = F1 x 100).

    The accuracy field is printed when n_tokens and n_correct_tags are given.
    """
    o = table["overall"]
    head = f"processed {n_tokens} tokens with " if n_tokens is not None else ""
    lines = [f"{head}{o['support']} phrases; found: {o['predicted']} phrases; correct: {o['correct']}."]
    accuracy = ""
    if n_tokens and n_correct_tags is not None:
        accuracy = f"accuracy: {100 * n_correct_tags / n_tokens:6.2f}%; "
    lines.append(f"{accuracy}precision: {100 * o['precision']:6.2f}%; recall: {100 * o['recall']:6.2f}%; "
                 f"FB1: {100 * o['f1']:6.2f}")
    for t, s in table["per_type"].items():
        lines.append(f"{t:>17}: precision: {100 * s['precision']:6.2f}%; recall: {100 * s['recall']:6.2f}%; "
                     f"FB1: {100 * s['f1']:6.2f}  {s['predicted']}")
    return "\n".join(lines) + "\n"


def spans_to_iob2(spans: Sequence[tuple], n: int, type: str = "LOC") -> list[str]:
    """Tags for one sentence of n tokens: B-TYPE on the first token of a span, I-TYPE after, O elsewhere.

    spans: (start, end) with the given type, or (type, start, end).
    [(0, 2), (2, 3)], n=4 -> ["B-LOC", "I-LOC", "B-LOC", "O"]
    """
    tags = ["O"] * n
    for span in spans:
        span_type, a, b = (type, *span) if len(span) == 2 else span
        if not 0 <= a < b <= n:
            raise ValueError(f"span {tuple(span)} does not fit a sentence of {n} tokens")
        if any(tag != "O" for tag in tags[a:b]):
            raise ValueError(f"span {tuple(span)} overlaps another span")
        tags[a:b] = [f"B-{span_type}"] + [f"I-{span_type}"] * (b - a - 1)
    return tags


def write_conlleval(path: str | os.PathLike, sentences_tokens: Sequence[Sequence[str]],
                    gold_tags_iob2: Sequence[Sequence[str]], pred_tags_iob2: Sequence[Sequence[str]]) -> None:
    """Write the file conlleval.pl reads: "token gold pred" per line, a blank line after each sentence.

    No -DOCSTART- lines.  Written atomically (temporary file + rename).
    """
    if not len(sentences_tokens) == len(gold_tags_iob2) == len(pred_tags_iob2):
        raise ValueError("write_conlleval: tokens, gold tags and predicted tags differ in number of sentences")
    lines = []
    for s, (tokens, gold, pred) in enumerate(zip(sentences_tokens, gold_tags_iob2, pred_tags_iob2)):
        if not len(tokens) == len(gold) == len(pred):
            raise ValueError(f"write_conlleval: sentence {s} has {len(tokens)} tokens, "
                             f"{len(gold)} gold tags and {len(pred)} predicted tags")
        if not tokens:
            continue
        for token, g, p in zip(tokens, gold, pred):
            # conlleval splits lines on whitespace: a field with a space in it would shift the columns.
            if any(not field or field.split() != [field] for field in (token, g, p)):
                raise ValueError(f"write_conlleval: sentence {s} has an empty field or one containing "
                                 f"whitespace: {token!r} {g!r} {p!r}")
            lines.append(f"{token} {g} {p}\n")
        lines.append("\n")
    write_bytes_atomic(path, "".join(lines).encode("utf-8"))


# ------------------------------------------------------------------ error analysis

def error_listing(tokens_per_sentence: Sequence[Sequence[str]], p: Sequence[float], y: Sequence[int],
                  windows_radius: int, k: int = 10, threshold: float = 0.5,
                  is_loc: Sequence[bool] | None = None, rule: str = "argmax = LOC") -> dict:
    """The k most confident mistakes of each kind, with the window the model saw.

    tokens_per_sentence: the sentences; p, y: (N,) flat over their tokens in order.
    The model's decision is p >= threshold (binary), or ``is_loc`` (N,) bool when
    given (multiclass: the argmax is LOC, which P(LOC) >= 0.5 does not decide; ``rule`` names it).
    false positives: y = 0 and decided LOC, highest p first;
    false negatives: y = 1 and not decided LOC, lowest p first.
    Each mistake is {"sentence", "position", "word", "window" (2m+1 words,
    <s> / </s> past the sentence edges), "p", "y"}; the listing's "rule" names the decision.
    """
    p, y = _check_p_y(p, y)
    lengths = [len(tokens) for tokens in tokens_per_sentence]
    if sum(lengths) != p.size:
        raise ValueError(f"error_listing: the sentences have {sum(lengths)} tokens but p has {p.size} values")
    if is_loc is None:
        decided, rule = is_location(p, threshold), f"p >= {threshold:g}"
    else:
        decided = np.asarray(is_loc, dtype=bool)
        if decided.shape != p.shape:
            raise ValueError(f"error_listing: is_loc has shape {decided.shape}, p has {p.shape}")
    sentence = np.repeat(np.arange(len(lengths)), lengths)
    position = np.arange(p.size) - np.repeat(np.cumsum([0, *lengths[:-1]]), lengths).astype(np.int64)
    m = windows_radius

    def mistake(i: int) -> dict:
        tokens, j = tokens_per_sentence[sentence[i]], int(position[i])
        padded = [BOS] * m + list(tokens) + [EOS] * m
        return {"sentence": int(sentence[i]), "position": j, "word": tokens[j],
                "window": padded[j:j + 2 * m + 1], "p": float(p[i]), "y": int(y[i])}

    false_pos = np.flatnonzero((y == 0) & decided)
    false_neg = np.flatnonzero((y == 1) & ~decided)
    # stable sorts: among equal p the earlier token comes first
    k = max(int(k), 0)
    false_pos = false_pos[np.argsort(-p[false_pos], kind="stable")][:k]
    false_neg = false_neg[np.argsort(p[false_neg], kind="stable")][:k]
    return {"threshold": None if is_loc is not None else float(threshold), "rule": rule, "radius": int(m),
            "false_positives": [mistake(i) for i in false_pos],
            "false_negatives": [mistake(i) for i in false_neg]}


def format_error_listing(listing: dict) -> str:
    """Readable text for error_listing; the centre word of each window is in [brackets].

    Sentences and tokens are numbered from 0, as everywhere in ner-window (explain's
    token_index and --index, the JSON of evaluate --errors).
    """
    m, rule = listing["radius"], listing["rule"]
    out = ["(sentences and tokens numbered from 0)"]
    for key, title in (("false_positives", f"false positives (tagged LOC: {rule}; gold not LOC), most confident first"),
                       ("false_negatives", f"false negatives (not tagged LOC; gold LOC), least confident first")):
        out.append(f"{title}:")
        if not listing[key]:
            out.append("  (none)")
        for e in listing[key]:
            words = list(e["window"])
            words[m] = f"[{words[m]}]"
            out.append(f"  p={e['p']:.3f}  sentence {e['sentence']}, token {e['position']}:  {' '.join(words)}")
    return "\n".join(out) + "\n"
