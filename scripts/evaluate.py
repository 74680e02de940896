"""Evaluate saved models on held-out files and tabulate the results (issue 5).

    python scripts/evaluate.py MODEL_DIR [MODEL_DIR ...] --data FILE [--data FILE ...] [--out PREFIX]

Every model is scored on every file with ``ner_window.evaluate.evaluate_file``
(the same numbers as ``ner-window evaluate``).  One row per (model, file):
LOC token-level P/R/F1, LOC entity-level P/R/F1, their supports (gold LOC
tokens and entities) and the decision rule (the binary model's tuned
threshold, or argmax for multiclass models).  The Markdown table is printed;
with ``--out PREFIX`` it is also written to PREFIX.md, and the rows (with the
conlleval per-type table for multiclass models) to PREFIX.json.

A bad model directory or data file is reported on one line on stderr, exit
code 2, and nothing is written.

    python scripts/evaluate.py runs/base runs/exp1 --data data/test.txt --out results
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

try:
    from ner_window.artifact import load_model
    from ner_window.errors import DataError, NerWindowError, WriteError
    from ner_window.files import write_text_atomic
    from ner_window.evaluate import evaluate_file
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from ner_window.artifact import load_model
    from ner_window.errors import DataError, NerWindowError, WriteError
    from ner_window.files import write_text_atomic
    from ner_window.evaluate import evaluate_file

COLUMNS = ("model", "data", "token P", "token R", "token F1", "entity P", "entity R", "entity F1",
           "support (tokens)", "support (entities)", "threshold")


def evaluate_all(model_dirs: list[str], data_paths: list[str]) -> list[dict]:
    """One row per (model, file), models in the order given, then files.

    Each model is loaded once.  A row holds the names as given, the model's task
    and threshold, the LOC token and entity scores, and the sentence/token counts;
    multiclass rows also hold the conlleval per-type table.
    """
    rows = []
    for model_dir in model_dirs:
        model = load_model(model_dir)
        for data_path in data_paths:
            report = evaluate_file(model, data_path)
            row = {
                "model": model_dir,
                "data": data_path,
                "model_path": report["model"],
                "task": report["task"],
                "threshold": report["threshold"] if report["task"] == "binary" else None,
                "token": report["loc"]["token"],
                "entity": report["loc"]["entity"],
                "sentences": report["sentences"],
                "tokens": report["tokens"],
            }
            if "per_type" in report:
                row["per_type"] = report["per_type"]
            rows.append(row)
    return rows


def markdown_table(rows: list[dict]) -> str:
    """The rows as a Markdown table (scores to 4 decimals)."""
    def cells(r: dict) -> list[str]:
        t, e = r["token"], r["entity"]
        rule = "argmax" if r["threshold"] is None else f"{r['threshold']:.3f}"
        return [f"`{r['model']}`", f"`{r['data']}`",
                *(f"{t[k]:.4f}" for k in ("precision", "recall", "f1")),
                *(f"{e[k]:.4f}" for k in ("precision", "recall", "f1")),
                str(t["support"]), str(e["support"]), rule]

    lines = ["| " + " | ".join(COLUMNS) + " |",
             "|" + "|".join(["---"] * 2 + ["---:"] * (len(COLUMNS) - 2)) + "|"]
    lines += ["| " + " | ".join(cells(r)) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def write_outputs(prefix: str, rows: list[dict], table: str) -> tuple[Path, Path]:
    """PREFIX.md (the table) and PREFIX.json ({"columns", "rows"}); DataError if they cannot be written."""
    md, js = Path(prefix + ".md"), Path(prefix + ".json")
    try:  # through files.py: each file whole or not at all
        write_text_atomic(md, table)
        write_text_atomic(js, json.dumps({"columns": list(COLUMNS), "rows": rows}, indent=1) + "\n")
    except WriteError as e:
        raise DataError(f"--out {prefix}: {e}") from None
    return md, js


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Evaluate saved models on labelled CoNLL files: a Markdown and JSON table of LOC scores.")
    parser.add_argument("models", nargs="+", metavar="MODEL_DIR", help="model or run directories")
    parser.add_argument("--data", action="append", required=True, metavar="FILE",
                        help="labelled CoNLL file (repeat for several)")
    parser.add_argument("--out", metavar="PREFIX", help="also write PREFIX.md and PREFIX.json")
    args = parser.parse_args(argv)
    try:
        rows = evaluate_all(args.models, args.data)
        table = markdown_table(rows)
        if args.out:
            write_outputs(args.out, rows, table)
    except NerWindowError as e:
        print(f"evaluate.py: error: {e}", file=sys.stderr)
        return e.exit_code
    sys.stdout.write(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
