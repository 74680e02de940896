"""Stage 10: score a saved model on a labelled file (``ner-window evaluate``).

Both location scores, always, labelled as such:

* token level: each token is one decision (LOC or not); P/R/F1 by scikit-learn;
* entity level: predicted spans are runs of consecutive tokens predicted as
  location; a span counts only if it equals a gold span decoded as conlleval does.

Multiclass models also get the conlleval table (P/R/F1 per type and overall).
``--predictions`` writes ``token gold pred`` lines (IOB2, blank line between
sentences) that the conlleval script accepts; its LOC F1 equals ours.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from . import metrics, reports
from .artifact import Model, load_model
from .conll import read_conll
from .decision import decide, is_location, p_location, y_location
from .errors import DataError, WriteError
from .fast import predict_proba
from .windows import labelled_data


def predict_labels(model: Model, ids: np.ndarray, casing: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(class id per window, P(location) per window) for window ids and casing ids (N, 2m+1).

    The model's own decision (decision.decide): p >= its tuned threshold (binary), the argmax (multiclass).
    """
    p = predict_proba(model.params, ids, casing, model.activation)
    return decide(p, model.threshold, model.classes), p_location(p, model.classes)


def evaluate_file(model_or_path: Model | str | os.PathLike, path: str | os.PathLike, scheme: str | None = None,
                  predictions: str | os.PathLike | None = None, pr_curve: str | os.PathLike | None = None,
                  n_errors: int = 0, strict: bool = False) -> dict:
    """The evaluation report of a model on a labelled CoNLL file (JSON-safe dict)."""
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
    model = model_or_path if isinstance(model_or_path, Model) else load_model(model_or_path)
    cfg = model.config
    sentences = read_conll(path, scheme or cfg.data.scheme, strict=strict)
    classes = model.classes
    data = labelled_data(sentences, model.vocab, model.radius, classes, cfg.data.location_types)
    p = predict_proba(model.params, data.windows.ids, data.windows.casing, model.activation)
    pred = decide(p, model.threshold, classes)
    y_loc = y_location(data.windows.y, classes)
    is_loc = is_location(p, model.threshold, classes)
    gold_loc = metrics.spans_of_type(data.spans, "LOC")
    loc = metrics.location_scores(is_loc, y_loc, data.windows.sentence, gold_loc)
    report = {
        "model": str(model.path),
        "data": str(path),
        "task": model.task,
        "loc": {"token": loc["token"], "entity": loc["entity"]},
        "threshold": model.threshold if model.task == "binary" else None,  # multiclass: the argmax decides
        "sentences": len(sentences),
        "tokens": int(len(data.windows)),
    }
    pred_spans = _typed_pred_spans(pred, data.windows.sentence, len(sentences), classes)
    if model.task == "multiclass":
        report["per_type"] = metrics.conlleval_table(data.spans, pred_spans)
    if n_errors:
        report["errors"] = reports.model_errors(data.tokens, p, y_loc, model.radius, model.threshold, classes,
                                                k=n_errors)
    try:  # the report is complete: a file that cannot be written does not lose it (WriteError.report)
        if predictions:
            _write_predictions(predictions, model, sentences, data.spans, pred_spans)
        if pr_curve:
            binary = model.task == "binary"
            reports.pr_curve_files(p_location(p, classes), y_loc, gold_loc, data.windows.sentence, pr_curve,
                                   title=f"model {model.path} on {path}",
                                   threshold=model.threshold if binary else None, decision=None if binary else loc)
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
    rule = "argmax" if report["threshold"] is None else f"threshold {report['threshold']:.3f}"
    lines = [f"{report['data']}: {report['sentences']:,} sentences, {report['tokens']:,} tokens; "
             f"model {report['model']} ({report['task']}, {rule})",
             metrics.format_prf("token-level", report["loc"]["token"], "tokens"),
             metrics.format_prf("entity-level", report["loc"]["entity"], "entities")]
    if "per_type" in report:
        lines += ["", metrics.format_conlleval(report["per_type"])]
    if "errors" in report:
        lines += ["", metrics.format_error_listing(report["errors"]).rstrip()]
    return "\n".join(lines)
