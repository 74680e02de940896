"""How well models carry over to text they never saw: news, tweets, lowercase, ALL CAPS (issue 15).

    python scripts/robustness.py MODEL_DIR [MODEL_DIR ...] [--conll-dev FILE] [--btc DIR]
                                 [--test FILE] [--out PREFIX]

Every model (e.g. the same config trained with seeds 0, 1, 2) is scored with
``ner_window.evaluate.evaluate_file`` -- the numbers of ``ner-window evaluate``,
LOC entity P/R/F1 with conlleval spans -- on each of these views:

    conll-dev          CoNLL-2003 dev (eng.testa) as distributed (IOB1)
    conll-dev-lower    the same file with every token lowercased
    conll-dev-upper    the same file with every token uppercased
    btc                the Broad Twitter Corpus, all six files as one (IOB2)
    test               a held-out file of the model's own corpus (default data/test.txt)

The table gives, per view, the mean over the models of entity P / R / F1 (and
the spread of F1: min-max).  The lowercased / uppercased copies and the cleaned
BTC are written to a temporary directory that is removed afterwards: nothing
from CoNLL-2003 is ever written into the project.

BTC has a handful of awkward lines (its README): 6 tokens that are empty or only
whitespace, and 4 with a space inside ("ke s").  They are all tagged O.  This
script drops the empty ones and removes the whitespace inside the others, and
says how many it changed; ``ner-window evaluate`` itself rejects such lines with
the file and line number, as it should for a user's file.

    python scripts/robustness.py runs/base-s0 runs/base-s1 runs/base-s2 --out results/robustness
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

try:
    from ner_window.artifact import load_model
    from ner_window.errors import NerWindowError
    from ner_window.evaluate import evaluate_file
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from ner_window.artifact import load_model
    from ner_window.errors import NerWindowError
    from ner_window.evaluate import evaluate_file

ROOT = Path(__file__).resolve().parent.parent
VIEWS = ("conll-dev", "conll-dev-lower", "conll-dev-upper", "btc", "test")
TITLES = {
    "conll-dev": "CoNLL-2003 dev (news)",
    "conll-dev-lower": "CoNLL-2003 dev, lowercased",
    "conll-dev-upper": "CoNLL-2003 dev, uppercased",
    "btc": "Broad Twitter Corpus, all six files",
    "test": "own held-out test",
}


def recased(src: Path, dst: Path, case: str) -> Path:
    """A copy of the CoNLL file ``src`` with the token column (first) of every token line re-cased."""
    change = str.lower if case == "lower" else str.upper
    out = []
    for line in src.read_text(encoding="utf-8").split("\n"):
        cols = line.split(" ")
        if line.strip() and not line.startswith("-DOCSTART-"):
            cols[0] = change(cols[0])
        out.append(" ".join(cols))
    dst.write_text("\n".join(out), encoding="utf-8")
    return dst


def cleaned_btc(btc_dir: Path, dst: Path) -> tuple[Path, int]:
    """All ``*.conll`` files of ``btc_dir`` as one tab-separated file; empty tokens dropped, inner spaces removed.

    Returns the path and how many token lines were changed or dropped.
    """
    files = sorted(btc_dir.glob("*.conll"))
    if not files:
        raise NerWindowError(f"--btc {btc_dir}: no *.conll files there; point it at the Broad Twitter Corpus")
    out, changed = [], 0
    for f in files:
        for line in f.read_text(encoding="utf-8").split("\n"):
            if not line.strip():
                out.append("")
                continue
            token, _, tag = line.rpartition("\t")
            clean = "".join(token.split())
            changed += clean != token.strip() or not clean
            if not clean:
                continue
            out.append(f"{clean}\t{tag.strip()}")
        out.append("")
    dst.write_text("\n".join(out) + "\n", encoding="utf-8")
    return dst, changed


def view_files(args, tmp: Path) -> tuple[dict[str, tuple[Path, str]], dict]:
    """{view: (file, scheme)} for the views whose source exists, and notes on what was prepared."""
    files, notes = {}, {}
    dev = Path(args.conll_dev)
    if dev.is_file():
        files["conll-dev"] = (dev, "iob1")
        files["conll-dev-lower"] = (recased(dev, tmp / "dev-lower.txt", "lower"), "iob1")
        files["conll-dev-upper"] = (recased(dev, tmp / "dev-upper.txt", "upper"), "iob1")
    else:
        notes["conll-dev"] = f"{dev} not found: CoNLL-2003 views skipped"
    btc = Path(args.btc)
    if btc.is_dir():
        path, changed = cleaned_btc(btc, tmp / "btc.conll")
        files["btc"] = (path, "iob2")
        notes["btc"] = f"{changed} awkward token line(s) cleaned"
    else:
        notes["btc"] = f"{btc} not found: BTC view skipped"
    if args.test:
        files["test"] = (Path(args.test), None)  # the model's own scheme
    return files, notes


def score(model_dirs: list[str], files: dict) -> dict:
    """{view: [entity score dict per model]} (each dict: precision, recall, f1, support)."""
    results: dict[str, list[dict]] = {view: [] for view in files}
    for model_dir in model_dirs:
        model = load_model(model_dir)
        for view, (path, scheme) in files.items():
            results[view].append(evaluate_file(model, path, scheme=scheme)["loc"]["entity"])
    return results


def summary_rows(results: dict) -> list[dict]:
    rows = []
    for view in VIEWS:
        if view not in results:
            continue
        runs = results[view]
        f1 = [r["f1"] for r in runs]
        rows.append({
            "view": view, "title": TITLES[view], "models": len(runs), "support": runs[0]["support"],
            "precision": statistics.mean(r["precision"] for r in runs),
            "recall": statistics.mean(r["recall"] for r in runs),
            "f1": statistics.mean(f1), "f1_min": min(f1), "f1_max": max(f1),
        })
    return rows


def markdown(rows: list[dict]) -> str:
    out = ["| text it never saw | LOC entities | P | R | **F1** (min–max) |", "|---|---:|---:|---:|---:|"]
    for r in rows:
        out.append(f"| {r['title']} | {r['support']:,} | {r['precision']:.3f} | {r['recall']:.3f} | "
                   f"**{r['f1']:.3f}** ({r['f1_min']:.3f}–{r['f1_max']:.3f}) |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="+", help="model or run directories (e.g. one per seed)")
    ap.add_argument("--conll-dev", default=str(ROOT.parent / "shared" / "data" / "conll2003" / "dev.txt"))
    ap.add_argument("--btc", default=str(ROOT.parent / "shared" / "data" / "btc"))
    ap.add_argument("--test", default=str(ROOT / "data" / "test.txt"), help="own held-out file ('' to skip)")
    ap.add_argument("--out", help="write PREFIX.md and PREFIX.json")
    args = ap.parse_args(argv)
    try:
        with tempfile.TemporaryDirectory(prefix="ner-window-robustness-") as tmp:
            files, notes = view_files(args, Path(tmp))
            results = score(args.models, files)
    except NerWindowError as e:
        print(f"robustness.py: error: {e}", file=sys.stderr)
        return 2
    rows = summary_rows(results)
    table = markdown(rows)
    print(table)
    for note in notes.values():
        print(f"note: {note}")
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".md").write_text(table + "\n", encoding="utf-8")
        doc = {"models": args.models, "rows": rows, "per_model": results, "notes": notes}
        out.with_suffix(".json").write_text(json.dumps(doc, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
