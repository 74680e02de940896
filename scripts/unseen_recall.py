"""Recall of the place names a model never saw in training, on a labelled file (issue 15).

    python scripts/unseen_recall.py MODEL_DIR [MODEL_DIR ...] --data FILE [--scheme iob1] [--train FILE]

An entity is unseen when none of its tokens (lowercased) occurs in the model's training file
(its config's data.train, or --train).  Prints, per model, the share of the file's unseen LOC
entities found exactly (scripts/ablate.py's unseen-word slice) and the entity F1 on the whole file,
then the mean over the models.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
from pathlib import Path

try:
    from ner_window import metrics
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from ner_window import metrics
from ner_window.artifact import load_model
from ner_window.conll import read_conll
from ner_window.decision import is_location, y_location
from ner_window.fast import predict_proba
from ner_window.windows import labelled_data

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("ablate", ROOT / "scripts" / "ablate.py")
ablate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ablate)


def unseen_recall(model_dir: str, data: str, scheme: str | None, train: str | None) -> dict:
    model = load_model(model_dir)
    cfg = model.config
    seen = ablate.training_words(train or cfg.data.train, cfg.data.scheme)
    sentences = read_conll(data, scheme or cfg.data.scheme)
    d = labelled_data(sentences, model.vocab, model.radius, model.classes, cfg.data.location_types, model.gazetteer)
    w = d.windows
    p = predict_proba(model.params, w.ids, w.casing, model.activation)
    is_loc = is_location(p, model.threshold, model.classes)
    y_loc = y_location(w.y, model.classes)
    gold = metrics.spans_of_type(d.spans, "LOC")
    out = ablate.unseen_slice(d.tokens, gold, is_loc, y_loc, seen)
    out["entity_f1"] = metrics.location_scores(is_loc, y_loc, w.sentence, gold)["entity"]["f1"]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--data", required=True)
    ap.add_argument("--scheme", default=None)
    ap.add_argument("--train", default=None, help="the training file whose words count as seen [the model's]")
    args = ap.parse_args(argv)
    rows = []
    for m in args.models:
        r = unseen_recall(m, args.data, args.scheme, args.train)
        rows.append(r)
        print(f"{m}: unseen LOC entities found {r['entity_found']}/{r['entity_support']} "
              f"(recall {r['entity_recall']:.3f}); entity F1 on the file {r['entity_f1']:.3f}")
    print(f"mean: unseen recall {statistics.mean(r['entity_recall'] for r in rows):.3f}, "
          f"entity F1 {statistics.mean(r['entity_f1'] for r in rows):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
