"""Variants of a config, each trained with several seeds and scored on text it never saw (issue 15).

    python scripts/robust_ablate.py --config configs/base.yaml --out DIR \\
        --variant as-is --variant "case-0.2=train.case_lower=0.2,train.case_upper=0.2" [--seeds 0 1 2]
        [--set SECTION.KEY=VALUE ...] [--conll-dev FILE] [--btc DIR] [--test FILE]

A variant is ``NAME`` (the config as it is) or ``NAME=KEY=VALUE,KEY=VALUE`` (``--set``
overrides of the config).  Each (variant, seed) is trained through the Python API into
``DIR/runs/<variant>/seed-<s>`` (a finished run whose config is unchanged is read back, so an
interrupted comparison continues where it stopped), then every model is scored by
scripts/robustness.py's views: CoNLL-2003 dev as is, lowercased, uppercased, the Broad Twitter
Corpus, and the config's own test file.  Also per run: the best epoch, the dev threshold it
chose, and the thresholds of the epochs around it (how much the tuned threshold swings).

Writes ``DIR/robust_ablate.json`` (every run's figures) and ``DIR/robust_ablate.md`` (one row per
variant: mean LOC entity F1 over the seeds on each view, with min-max).  Runs are sequential.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

try:
    from ner_window import train as train_module
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from ner_window import train as train_module
from ner_window.checkpoint import CHECKPOINT
from ner_window.config import from_dict, load_config
from ner_window.errors import NerWindowError

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("robustness", ROOT / "scripts" / "robustness.py")
robustness = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(robustness)


def parse_variant(text: str) -> tuple[str, list[str]]:
    """ "name=a.b=1,c.d=2" -> ("name", ["a.b=1", "c.d=2"]);  "name" -> ("name", [])."""
    name, _, rest = text.partition("=")
    return name, [item for item in rest.split(",") if item] if rest else []


def train_run(config: Path, name: str, overrides: list[str], seed: int, out: Path, log=print) -> dict:
    """Train one (variant, seed) into out/runs/<name>/seed-<seed>, or read back a finished one."""
    run_dir = out / "runs" / name / f"seed-{seed}"
    cfg = load_config(config, [*overrides, f"train.seed={seed}"])
    done = run_dir / "run.json"
    if done.is_file():
        previous = json.loads(done.read_text(encoding="utf-8"))
        if from_dict(previous["config"]) == cfg:  # keys added since then take their defaults
            return previous
    if run_dir.exists():
        shutil.rmtree(run_dir)
    result = train_module.train(cfg, out_dir=run_dir, point_latest=False,
                                log=lambda line: log(f"  [{name} seed {seed}] {line}"))
    h, b = result.history, result.best_epoch
    record = {"variant": name, "seed": seed, "overrides": overrides, "config": cfg.to_dict(),
              "best_epoch": b + 1, "epochs_run": len(h), "seconds": result.seconds,
              "dev_entity_f1": h[b].get("entity_f1"), "threshold": h[b].get("threshold"),
              "thresholds": [row.get("threshold") for row in h],
              "dev_entity_f1s": [row.get("entity_f1") for row in h]}
    shutil.rmtree(run_dir / CHECKPOINT, ignore_errors=True)
    done.write_text(json.dumps(record, indent=1), encoding="utf-8")
    return record


def score_runs(runs: list[dict], out: Path, files: dict) -> None:
    """Add each run's entity scores on every view (scripts/robustness.py) to the run's record."""
    for run in runs:
        run_dir = out / "runs" / run["variant"] / f"seed-{run['seed']}"
        if "views" not in run or set(run["views"]) != set(files):
            run["views"] = {view: scores[0] for view, scores in robustness.score([str(run_dir)], files).items()}
            (run_dir / "run.json").write_text(json.dumps(run, indent=1), encoding="utf-8")


def table(variants: dict[str, list[dict]], views: list[str]) -> str:
    head = ["variant", "seeds", *[robustness.TITLES[v] for v in views], "dev F1", "best epoch", "threshold"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for name, runs in variants.items():
        cells = [f"`{name}`", str(len(runs))]
        for view in views:
            f1 = [r["views"][view]["f1"] for r in runs]
            cells.append(f"**{statistics.mean(f1):.3f}** ({min(f1):.3f}–{max(f1):.3f})")
        cells.append(f"{statistics.mean(r['dev_entity_f1'] for r in runs):.3f}")
        cells.append(", ".join(str(r["best_epoch"]) for r in runs))
        cells.append(", ".join("Viterbi" if r["threshold"] is None else f"{r['threshold']:.2f}" for r in runs))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, required=True)
    ap.add_argument("--variant", action="append", required=True, help="NAME or NAME=KEY=VALUE,KEY=VALUE")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--set", dest="extra", action="append", default=[], help="override for every variant")
    ap.add_argument("--conll-dev", default=str(ROOT.parent / "shared" / "data" / "conll2003" / "dev.txt"))
    ap.add_argument("--btc", default=str(ROOT.parent / "shared" / "data" / "btc"))
    ap.add_argument("--test", default=None, help="own held-out file [the config's data.test; '' to skip]")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        variants: dict[str, list[dict]] = {}
        for text in args.variant:
            name, overrides = parse_variant(text)
            for seed in args.seeds:
                variants.setdefault(name, []).append(
                    train_run(args.config, name, [*args.extra, *overrides], seed, args.out))
        if args.test is None:
            args.test = load_config(args.config, args.extra).data.test or ""
        with tempfile.TemporaryDirectory(prefix="ner-window-robust-ablate-") as tmp:
            files, notes = robustness.view_files(args, Path(tmp))
            for runs in variants.values():
                score_runs(runs, args.out, files)
    except NerWindowError as e:
        print(f"robust_ablate.py: error: {e}", file=sys.stderr)
        return 2
    views = [v for v in robustness.VIEWS if v in files]
    md = table(variants, views)
    (args.out / "robust_ablate.md").write_text(md, encoding="utf-8")
    (args.out / "robust_ablate.json").write_text(json.dumps({"config": str(args.config), "extra": args.extra,
                                                             "notes": notes, "variants": variants}, indent=1),
                                                 encoding="utf-8")
    print(md, end="")
    for note in notes.values():
        print(f"note: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
