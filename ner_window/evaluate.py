"""Stage 10: score a saved model on a labelled file (``ner-window evaluate``).

Both location scores, always, labelled as such:

* token level: each token is one decision (LOC or not); P/R/F1 by scikit-learn;
* entity level: predicted spans are runs of consecutive tokens predicted as
  location; a span counts only if it equals a gold span decoded as conlleval does.

Which gold types are locations is the model's ``data.location_types`` (what it was trained
with) unless ``location_types`` says otherwise: ``["location"]`` for WNUT-style files,
``["GPE", "LOC", "FAC"]`` for OntoNotes-style ones.  A file with no gold entity of those
types gets a warning in the report (its scores would be 0 for want of anything to find).

A sentence-level model (model.output: sentence) decides by the Viterbi path of each sentence
(sentence.decode): its entities are its B- tags and the I- tags after them, and P(location)
is the marginal.  Every model gets the entity error breakdown (metrics.error_breakdown):
gold places missed (no prediction overlaps them), boundary errors (a prediction overlaps but
none equals them: "[Gulf] of [Mexico]") and spurious predictions (overlapping no gold place).

Multiclass models also get the conlleval table (P/R/F1 per type and overall).
``--predictions`` writes ``token gold pred`` lines (IOB2, blank line between
sentences) that the conlleval script accepts; its LOC F1 equals ours.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from . import metrics, reports
from .artifact import Model, load_model
from .conll import entity_spans, read_conll
from .decision import decide, is_location, is_location_class, p_location, y_location
from .errors import DataError, WriteError
from .fast import predict_proba, predict_scores
from .sentence import decode, decoded_spans, starts_of
from .windows import labelled_data


def predict_labels(model: Model, ids: np.ndarray, casing: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(class id per window, P(location) per window) for window ids and casing ids (N, 2m+1).

    The model's own decision (decision.decide): p >= its tuned threshold (binary), the argmax (multiclass).
    """
    p = predict_proba(model.params, ids, casing, model.activation)
    return decide(p, model.threshold, model.classes), p_location(p, model.classes)


def evaluate_file(model_or_path: Model | str | os.PathLike, path: str | os.PathLike, scheme: str | None = None,
                  predictions: str | os.PathLike | None = None, pr_curve: str | os.PathLike | None = None,
                  n_errors: int = 0, strict: bool = False, location_types: Sequence[str] | None = None,
                  threshold: float | None = None) -> dict:
    """The evaluation report of a model on a labelled CoNLL file (JSON-safe dict).

    location_types: the gold entity types that count as a location [the model's data.location_types].
    threshold: P(location) at which a binary model tags LOC [the model's, tuned on dev].
    """
    for option, out in (("--predictions", predictions), ("--pr-curve", pr_curve)):
        # checked before any work, so a bad second path never leaves the first file half-done behind
        parent = Path(out).parent if out else None
        if out and (not parent.is_dir() or Path(out).is_dir()):
            why = ("it is a directory" if Path(out).is_dir() else
                   f"{parent} is a file, not a directory" if parent.exists() else f"{parent} does not exist")
            raise DataError(f"{option} {out}: cannot write there ({why}); give a file path in an existing directory")
        in_place = out and Path(out).exists() and not Path(out).is_file()  # /dev/stdout, a FIFO: written in place
        if out and not in_place and not os.access(parent, os.W_OK):
            raise DataError(f"{option} {out}: cannot write there (no permission to write in {parent}); "
                            f"give a file path in a directory you can write to")
    location_types = _check_location_types(location_types)
    model = model_or_path if isinstance(model_or_path, Model) else load_model(model_or_path)
    cfg = model.config
    threshold = _check_threshold(model, threshold)
    sentences = read_conll(path, scheme or cfg.data.scheme, strict=strict)
    classes = model.classes
    location_types = list(cfg.data.location_types if location_types is None else location_types)
    data = labelled_data(sentences, model.vocab, model.radius, classes, location_types, model.gazetteer)
    p, pred, is_loc, pred_spans = _decisions(model, data, threshold)
    y_loc = y_location(data.windows.y, classes)
    gold_loc = metrics.spans_of_type(data.spans, "LOC")
    pred_loc = metrics.spans_of_type(pred_spans, "LOC")
    loc = metrics.location_scores(is_loc, y_loc, data.windows.sentence, gold_loc, pred_spans=pred_loc)
    report = {
        "model": str(model.path),
        "data": str(path),
        "task": model.task,
        "output": model.output,
        "loc": {"token": loc["token"], "entity": loc["entity"],
                "breakdown": metrics.error_breakdown(gold_loc, pred_loc)},
        "threshold": threshold if model.output == "window" and model.task == "binary" else None,  # else no threshold
        "location_types": location_types,
        "sentences": len(sentences),
        "tokens": int(len(data.windows)),
        "warnings": _no_location_warning(path, sentences, location_types, gold_loc),
    }
    if model.task == "multiclass":
        report["per_type"] = metrics.conlleval_table(data.spans, pred_spans)
    if n_errors:
        report["errors"] = reports.model_errors(data.tokens, p, y_loc, model.radius, threshold, classes,
                                                k=n_errors, is_loc=is_loc if model.output == "sentence" else None)
    try:  # the report is complete: a file that cannot be written does not lose it (WriteError.report)
        if predictions:
            _write_predictions(predictions, model, sentences, data.spans, pred_spans)
        if pr_curve:
            binary = model.task == "binary" and model.output == "window"
            decision = {**loc, "rule": "Viterbi path"} if model.output == "sentence" else loc
            reports.pr_curve_files(p_location(p, classes), y_loc, gold_loc, data.windows.sentence, pr_curve,
                                   title=f"model {model.path} on {path}",
                                   threshold=threshold if binary else None, decision=None if binary else decision)
    except WriteError as e:
        e.report = report
        raise
    return report


def _write_predictions(path, model: Model, sentences, gold_spans, pred_spans) -> None:
    """``token gold pred`` lines for conlleval: IOB2, the model's classes (binary: LOC)."""
    gold_tags, pred_tags = [], []
    keep = model.classes[1:] if model.task == "multiclass" else ["LOC"]
    for sent, gold, predicted in zip(sentences, gold_spans, pred_spans):
        gold_tags.append(_iob2(gold, len(sent.tokens), keep))
        pred_tags.append(_iob2(predicted, len(sent.tokens), keep))
    metrics.write_conlleval(path, [s.tokens for s in sentences], gold_tags, pred_tags)


def _check_threshold(model: Model, threshold: float | None) -> float:
    """The threshold to decide with: the model's, or ``threshold`` (binary models, 0 to 1)."""
    if threshold is None:
        return model.threshold
    if model.output == "sentence":
        raise DataError(f"--threshold applies to binary models (window output); {model.path} is a sentence-level "
                        f"model and tags each sentence's Viterbi path (drop --threshold)")
    if model.task != "binary":
        raise DataError(f"--threshold applies to binary models; {model.path} is {model.task} and tags the "
                        f"argmax class (drop --threshold)")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0:
        raise DataError(f"threshold {threshold!r} must be a number from 0 to 1 (P(location) at which a token "
                        f"is tagged LOC)")
    return float(threshold)


def _check_location_types(location_types: Sequence[str] | None) -> list[str] | None:
    """The types as a list; DataError for an empty list or an empty name."""
    if location_types is None:
        return None
    types = [t.strip() for t in location_types]
    if not types or not all(types):
        raise DataError(f"--location-types {','.join(location_types)!r}: give one or more entity types separated "
                        f"by commas, e.g. --location-types LOC or --location-types GPE,LOC,FAC")
    return types


def _no_location_warning(path, sentences, location_types: list[str], gold_loc) -> list[str]:
    """[a warning] when the file has no gold entity of the location types, else []."""
    if any(gold_loc):
        return []
    found = sorted({t for s in sentences for t, _, _ in entity_spans(s.tags)})
    has = f"its entity types are {', '.join(found)}" if found else "it has no entities at all"
    return [f"{path}: no gold entity of type {', '.join(location_types)}, so every location score is 0; "
            f"{has}: say which are locations with --location-types TYPE[,TYPE]"]


def _decisions(model: Model, data, threshold: float | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, list]:
    """(p, class id per token, is-LOC per token, typed entity spans per sentence) of the model's own
    decision: decision.decide (window models) or the Viterbi path (sentence models, p the marginals)."""
    classes, w = model.classes, data.windows
    if model.output == "sentence":
        starts = starts_of([len(s.tokens) for s in data.sentences])
        decoded = decode(predict_scores(model.params, w.ids, w.casing, model.activation), model.params.A, starts)
        return (decoded.p, decoded.classes, is_location_class(decoded.classes, classes),
                decoded_spans(decoded.tags, starts, classes))
    p = predict_proba(model.params, w.ids, w.casing, model.activation)
    pred = decide(p, threshold, classes)
    return p, pred, is_location(p, threshold, classes), _typed_pred_spans(pred, w.sentence, len(data.sentences),
                                                                                 classes)


def _typed_pred_spans(pred: np.ndarray, sentence: np.ndarray, n_sentences: int, classes: list[str]):
    """Predicted (type, start, end) spans per sentence: runs of one predicted class."""
    offsets = metrics.sentence_offsets(sentence, n_sentences)
    out = []
    for a, b in zip(offsets[:-1], offsets[1:]):
        spans, k = [], a
        while k < b:
            c = pred[k]
            j = k
            while j + 1 < b and pred[j + 1] == c:
                j += 1
            if c != 0:
                spans.append((classes[c], int(k - a), int(j + 1 - a)))
            k = j + 1
        out.append(spans)
    return out


def _iob2(spans, n: int, keep: list[str]) -> list[str]:
    tags = ["O"] * n
    for t, a, b in spans:
        if t in keep:
            tags[a] = f"B-{t}"
            for i in range(a + 1, b):
                tags[i] = f"I-{t}"
    return tags


def format_report(report: dict) -> str:
    """The text form of an evaluation report."""
    decides = ("sentence-level, Viterbi" if report.get("output") == "sentence"
               else "argmax" if report["threshold"] is None else f"threshold {report['threshold']:.3f}")
    lines = [f"{report['data']}: {report['sentences']:,} sentences, {report['tokens']:,} tokens; "
             f"model {report['model']} ({report['task']}, {decides}); "
             f"locations: {', '.join(report['location_types'])}",
             metrics.format_prf("token-level", report["loc"]["token"], "tokens"),
             metrics.format_prf("entity-level", report["loc"]["entity"], "entities"),
             metrics.format_breakdown(report["loc"]["breakdown"])]
    if "per_type" in report:
        lines += ["", metrics.format_conlleval(report["per_type"])]
    if "errors" in report:
        lines += ["", metrics.format_error_listing(report["errors"]).rstrip()]
    return "\n".join(lines)
