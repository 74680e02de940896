"""How much the tuned decision threshold swings, and what other rules would give (issue 15).

    python scripts/threshold_study.py RUN_DIR [RUN_DIR ...] [--conll-dev FILE] [--btc DIR] [--test FILE]
                                      [--out PREFIX]

For every run (e.g. one config, seeds 0-2):

* the swing: the threshold training tuned on dev at each epoch (metrics.csv), over the
  epochs from best-4 to best+4, and at the best epoch across runs;
* three rules for the best model's threshold, each scored on dev and on scripts/robustness.py's
  views (LOC entity F1, ``evaluate_file(..., threshold=t)``):

      tuned     the dev threshold with the highest entity F1 (what training saves)
      smoothed  the threshold with the highest entity F1 averaged over t ± 0.1 on dev: the middle
                of the plateau, not its highest ripple
      fixed     0.5, the p at which a model trained with cross-entropy calls a token more likely a
                location than not

Prints a Markdown table (mean over runs, and the thresholds each rule chose).
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

try:
    from ner_window import metrics
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from ner_window import metrics
from ner_window.artifact import load_model
from ner_window.conll import read_conll
from ner_window.decision import p_location, y_location
from ner_window.evaluate import evaluate_file
from ner_window.fast import predict_proba
from ner_window.windows import labelled_data

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("robustness", ROOT / "scripts" / "robustness.py")
robustness = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(robustness)
def rules(model, dev_path: str) -> dict[str, float]:
    cfg = model.config
    data = labelled_data(read_conll(dev_path, cfg.data.scheme), model.vocab, model.radius, model.classes,
                         cfg.data.location_types, model.gazetteer)
    p = p_location(predict_proba(model.params, data.windows.ids, data.windows.casing, model.activation),
                   model.classes)
    args = (p, y_location(data.windows.y, model.classes), metrics.spans_of_type(data.spans, "LOC"),
            data.windows.sentence)
    return {"tuned": metrics.best_threshold(*args)[0], "smoothed": metrics.smoothed_threshold(*args)[0], "fixed": 0.5}


def epoch_thresholds(run_dir: Path) -> tuple[list[float], int]:
    rows = list(csv.DictReader((run_dir / "metrics.csv").open(encoding="utf-8")))
    f1 = [float(r["entity_f1"]) for r in rows]
    best = int(np.argmax(f1))
    return [float(r["threshold"]) for r in rows], best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--conll-dev", default=str(ROOT.parent / "shared" / "data" / "conll2003" / "dev.txt"))
    ap.add_argument("--btc", default=str(ROOT.parent / "shared" / "data" / "btc"))
    ap.add_argument("--test", default="", help="own held-out file ('' to skip)")
    ap.add_argument("--out", help="write PREFIX.json")
    args = ap.parse_args(argv)
    per_run = []
    with tempfile.TemporaryDirectory(prefix="ner-window-threshold-") as tmp:
        files, _ = robustness.view_files(args, Path(tmp))
        for run in args.runs:
            run_dir = Path(run)
            model = load_model(run_dir)
            dev = model.config.data.dev
            files_here = {"dev": (Path(dev), None), **files}
            thresholds, best = epoch_thresholds(run_dir)
            around = thresholds[max(0, best - 4):best + 5]
            chosen = rules(model, dev)
            scores = {rule: {view: evaluate_file(model, path, scheme=scheme, threshold=t)["loc"]["entity"]["f1"]
                             for view, (path, scheme) in files_here.items()} for rule, t in chosen.items()}
            per_run.append({"run": run, "best_epoch": best + 1, "epoch_thresholds_around_best": around,
                            "thresholds": chosen, "f1": scores})
    views = list(per_run[0]["f1"]["tuned"])
    print(f"| rule | thresholds | {' | '.join(views)} |")
    print("|---|---|" + "---:|" * len(views))
    for rule in ("tuned", "smoothed", "fixed"):
        ts = ", ".join(f"{r['thresholds'][rule]:.2f}" for r in per_run)
        cells = [f"{statistics.mean(r['f1'][rule][v] for r in per_run):.3f}" for v in views]
        print(f"| {rule} | {ts} | {' | '.join(cells)} |")
    for r in per_run:
        around = r["epoch_thresholds_around_best"]
        print(f"{r['run']}: best epoch {r['best_epoch']}, tuned thresholds of epochs best-4..best+4: "
              f"{', '.join(f'{t:.2f}' for t in around)} (range {max(around) - min(around):.2f})")
    if args.out:
        Path(args.out).with_suffix(".json").write_text(json.dumps(per_run, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
