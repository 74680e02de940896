"""Ablations of the CoNLL-2003 window classifier on dev (issue 6).

    python scripts/ablate.py --train PATH --dev PATH [--seeds 0 1 2] [--only NAME ...] --out DIR

Every variant is the chosen config (``configs/conll2003.yaml``) with a few
``--set`` overrides, trained through the Python API (``load_config`` +
``train``), once per seed.  For each run the best dev epoch's figures come from
the TrainResult (the same row as in metrics.csv):

* dev LOC entity and token precision / recall / F1 at the threshold tuned on dev (a
  sentence-level model, ``model.output: sentence``: of its Viterbi path);
* the entity error breakdown of the best model on dev (metrics.error_breakdown): gold places
  missed, boundary errors (overlapped but not equalled) and spurious predictions, as counts;
* the median seconds of an epoch's SGD steps (metrics.csv "seconds"; the machine is shared,
  so compare runs made side by side);
* time to the best epoch: wall-clock seconds from the call to ``train`` to the
  moment that epoch was scored and saved (loading GloVe, building windows,
  training and dev scoring included);
* the **unseen-word slice**: dev words whose lowercased form never occurs in the
  training file.  Entity level: the recall of the dev LOC entities none of
  whose tokens occur in training (the model can only find them from context,
  casing and the pretrained vector).  Token level: LOC precision / recall / F1
  over the unseen tokens only;
* the **<unk> stress test**: dev scored again with every word unseen in training
  read as ``<unk>`` (its pretrained row withheld), as in text far from the
  training data where most names have no vector: dev LOC entity F1, and the
  unseen-entity recall, from casing and context alone.

Writes, in DIR: ``runs/<variant>/seed-<s>/`` (each run; ``result.json`` there
lets an interrupted ablation continue where it stopped), ``ablations.json``
(every run and the mean / s.d. over seeds), ``ablations.md`` (the Markdown
table of BENCHMARKS.md) and ``learning_curves.png`` (dev F1 and losses per
epoch of the chosen config, one line per seed).

Runs are sequential: one training process at a time.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np

try:
    from ner_window import metrics
    from ner_window import train as train_module
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from ner_window import metrics
    from ner_window import train as train_module
from ner_window.artifact import load_model
from ner_window.checkpoint import CHECKPOINT
from ner_window.conll import read_conll
from ner_window.config import load_config
from ner_window.decision import is_location as decide_location, is_location_class, y_location
from ner_window.errors import NerWindowError
from ner_window.fast import predict_proba, predict_scores
from ner_window.sentence import decode, decoded_spans, starts_of
from ner_window.vocab import SPECIALS, UNK_ID, Vocab, normalise_digits
from ner_window.windows import labelled_data

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "conll2003.yaml"
CHOSEN = "chosen"

# name -> (what changes, --set overrides of the chosen config).  One knob at a time.
VARIANTS: dict[str, tuple[str, list[str]]] = {
    CHOSEN: ("configs/conll2003.yaml as it is", []),
    "provisional": ("the provisional config: constant lr, l2 1e-5 (not on E), top_k 100k, patience 4",
                    ["train.lr_schedule=constant", "train.l2=1e-5", "embeddings.regularize=false",
                     "embeddings.top_k=100000", "train.epochs=20", "train.patience=4"]),
    "constant-lr": ("constant learning rate (no inv_t decay)", ["train.lr_schedule=constant"]),
    "l2-1e-5": ("l2 1e-5, not on E", ["train.l2=1e-5", "embeddings.regularize=false"]),
    "top-k-100k": ("only the 100k most frequent GloVe words (rarer words -> <unk>)", ["embeddings.top_k=100000"]),
    "random-init": ("random E instead of GloVe (training words only)", ["embeddings.source=random"]),
    "frozen": ("GloVe frozen (E not trained)", ["embeddings.trainable=false"]),
    "fine-tuned": ("GloVe fine-tuned through dJ/dx", ["embeddings.trainable=true"]),
    "frozen-no-word-dropout": ("GloVe frozen and word dropout 0",
                               ["embeddings.trainable=false", "train.word_dropout=0"]),
    "no-casing": ("no casing vectors C", ["model.casing=false"]),
    "no-word-dropout": ("word dropout 0", ["train.word_dropout=0"]),
    "word-dropout-0.05": ("word dropout 0.05", ["train.word_dropout=0.05"]),
    "word-dropout-0.1": ("word dropout 0.1", ["train.word_dropout=0.1"]),
    "word-dropout-0.3": ("word dropout 0.3", ["train.word_dropout=0.3"]),
    "radius-1": ("radius 1 (3-word windows)", ["model.radius=1"]),
    "radius-2": ("radius 2 (5-word windows)", ["model.radius=2"]),
    "radius-3": ("radius 3 (7-word windows)", ["model.radius=3"]),
    "sigmoid": ("f = sigmoid", ["model.activation=sigmoid"]),
    "tanh": ("f = tanh", ["model.activation=tanh"]),
    "relu": ("f = relu", ["model.activation=relu"]),
    "squared-loss": ("squared error (p - y)^2 instead of cross-entropy", ["train.loss=squared"]),
    "hidden-100": ("H = 100", ["model.hidden=100"]),
    "hidden-300": ("H = 300", ["model.hidden=300"]),
    "multiclass": ("5-class softmax (O, LOC, MISC, ORG, PER), LOC scored", ["model.task=multiclass"]),
    "window": ("window output: each token decided alone (p = σ(s), tuned threshold)", ["model.output=window"]),
    "sentence": ("sentence-level output: IOB2 tag scores + transitions, SLL, Viterbi (issue 16)",
                 ["model.output=sentence"]),
}


def variant_overrides(name: str) -> list[str]:
    if name not in VARIANTS:
        raise SystemExit(f"ablate.py: unknown variant {name!r}; known: {', '.join(VARIANTS)}")
    return VARIANTS[name][1]


def is_noop(name: str, config: Path = CONFIG) -> bool:
    """True when a variant's overrides leave the chosen config unchanged (it would duplicate `chosen`)."""
    if name == CHOSEN:
        return False
    return load_config(config, variant_overrides(name)) == load_config(config)


# --- the unseen-word slice --------------------------------------------------------


def training_words(train_path: str | Path, scheme: str) -> set[str]:
    """Every lowercased token of the training file."""
    return {token.lower() for s in read_conll(train_path, scheme) for token in s.tokens}


def unseen_slice(tokens: list[tuple[str, ...]], gold_spans: list[list[tuple[int, int]]], is_loc: np.ndarray,
                 y_loc: np.ndarray, seen: set[str], pred_spans: list | None = None) -> dict:
    """LOC scores restricted to words never seen in training.

    tokens[s]     : the tokens of sentence s;  gold_spans[s]: its gold LOC spans (start, end)
    is_loc, y_loc : (N,) predicted / gold LOC per token, flat over the sentences
    seen          : lowercased training words
    pred_spans[s] : the predicted LOC spans of sentence s (default: the runs of is_loc)

    entity: gold entities none of whose tokens are in ``seen``; recall = the share
            predicted exactly (the same span, nothing more, nothing less).
    token : LOC P/R/F1 over the tokens not in ``seen`` (support = gold LOC tokens there).
    """
    unseen = np.array([t.lower() not in seen for sent in tokens for t in sent], dtype=bool)
    is_loc = np.asarray(is_loc, dtype=bool)
    offsets = np.cumsum([0] + [len(sent) for sent in tokens])
    n_gold = n_found = 0
    for s, spans in enumerate(gold_spans):
        a0 = offsets[s]
        pred = set(metrics.predicted_spans(is_loc[a0:offsets[s + 1]]) if pred_spans is None else pred_spans[s])
        for a, b in spans:
            if unseen[a0 + a:a0 + b].all():
                n_gold += 1
                n_found += (a, b) in pred
    token = metrics.token_prf(np.asarray(y_loc)[unseen], is_loc[unseen])
    return {"entity_recall": n_found / n_gold if n_gold else 0.0, "entity_support": n_gold,
            "entity_found": n_found, "token": token, "unseen_tokens": int(unseen.sum())}


def unk_unseen(ids: np.ndarray, vocab: Vocab, seen: set[str]) -> np.ndarray:
    """Window ids (N, 2m+1) with every word that never occurs in training read as <unk>.

    Such a word's row of E is a pretrained vector the classifier never saw a label
    for; in text far from the training data (another decade, social media) most
    names have no such row at all.  Replacing the rows by <unk> asks how well the
    model does from casing and context alone, which is what word dropout trains.
    <s> and </s> are kept.
    """
    keys = seen | {normalise_digits(w) for w in seen}  # lookup may land on a word's digit shape
    known = np.fromiter((w in keys or w in SPECIALS for w in vocab.words), dtype=bool, count=len(vocab))
    return np.where(known[ids], ids, UNK_ID).astype(ids.dtype)


def decisions(model, ids: np.ndarray, casing: np.ndarray, data) -> tuple[np.ndarray, list]:
    """(is_loc (N,) bool, predicted LOC spans per sentence): the model's own decision per window
    (decision.is_location: tuned threshold, or argmax; a sentence model: its Viterbi path)."""
    if model.output == "sentence":
        starts = starts_of([len(s) for s in data.tokens])
        decoded = decode(predict_scores(model.params, ids, casing, model.activation), model.params.A, starts)
        spans = metrics.spans_of_type(decoded_spans(decoded.tags, starts, model.classes), "LOC")
        return is_location_class(decoded.classes, model.classes), spans
    is_loc = decide_location(predict_proba(model.params, ids, casing, model.activation), model.threshold,
                             model.classes)
    return is_loc, metrics.predicted_spans_per_sentence(is_loc, data.windows.sentence, len(data.sentences))


def model_slices(run_dir: Path, dev_path: str | Path, seen: set[str]) -> dict:
    """The best model of ``run_dir`` on dev: the unseen-word slice, the <unk> stress test, the errors.

    unseen    : unseen_slice of the model's predictions
    unk       : dev LOC entity and token scores when every word unseen in training is read as
                <unk> (unk_unseen), with the unseen-word slice of those predictions
    breakdown : metrics.error_breakdown of the model's LOC entities (missed, boundary, spurious)
    """
    model = load_model(run_dir)
    cfg = model.config
    sentences = read_conll(dev_path, cfg.data.scheme)
    data = labelled_data(sentences, model.vocab, model.radius, model.classes, cfg.data.location_types,
                         model.gazetteer)
    w = data.windows
    y_loc = y_location(w.y, model.classes)
    gold = metrics.spans_of_type(data.spans, "LOC")
    is_loc, pred = decisions(model, w.ids, w.casing, data)
    out = {"unseen": unseen_slice(data.tokens, gold, is_loc, y_loc, seen, pred),
           "breakdown": metrics.error_breakdown(gold, pred)}
    is_loc, pred = decisions(model, unk_unseen(w.ids, model.vocab, seen), w.casing, data)
    report = metrics.location_scores(is_loc, y_loc, w.sentence, gold, pred_spans=pred)
    out["unk"] = {"entity": report["entity"], "token": report["token"],
                  "unseen": unseen_slice(data.tokens, gold, is_loc, y_loc, seen, pred)}
    return out


# --- one run ----------------------------------------------------------------------


def run_one(name: str, seed: int, train_path: str, dev_path: str, out: Path, seen: set[str],
            config: Path = CONFIG, extra: list[str] = (), keep_model: bool = False, log=print) -> dict:
    """Train variant ``name`` with ``seed``; its best-epoch dev figures and unseen-word slice (a dict).

    A finished run (``result.json`` present) is read back instead of trained again.
    """
    run_dir = out / "runs" / name / f"seed-{seed}"
    done = run_dir / "result.json"
    # extra first: a variant's own overrides win over an exploration's --set
    overrides = [*extra, *variant_overrides(name), f"train.seed={seed}",
                 f"data.train={train_path}", f"data.dev={dev_path}", "data.test=null"]
    cfg = load_config(config, overrides)
    if done.is_file():
        previous = json.loads(done.read_text(encoding="utf-8"))
        if previous.get("config") == cfg.to_dict():
            return previous
    if run_dir.exists():
        shutil.rmtree(run_dir)  # unfinished, or trained with another config: start it again
    stamps: list[float] = []  # when each epoch was scored on dev (and saved, if best)
    t0 = time.perf_counter()
    # an ablation of 50 runs must not move runs/latest (the user's default model for `predict`)
    result = train_module.train(cfg, out_dir=run_dir, log=lambda line: log(f"  [{name} seed {seed}] {line}"),
                                point_latest=False, on_epoch=lambda row, improved: stamps.append(time.perf_counter()))
    best = result.history[result.best_epoch]
    record_ = {
        "variant": name, "seed": seed, "overrides": [*extra, *variant_overrides(name)], "config": cfg.to_dict(),
        "best_epoch": result.best_epoch + 1, "epochs_run": len(result.history),
        "time_to_best": stamps[result.best_epoch] - t0, "time_total": result.seconds,
        "entity": {k: best[f"entity_{k}"] for k in ("precision", "recall", "f1")},
        "token": {k: best[f"token_{k}"] for k in ("precision", "recall", "f1")},
        "threshold": best["threshold"],
        **model_slices(run_dir, dev_path, seen),
        "history": result.history,
    }
    shutil.rmtree(run_dir / CHECKPOINT, ignore_errors=True)  # ~3 copies of E per run
    if not keep_model:
        shutil.rmtree(run_dir / "model", ignore_errors=True)
    done.write_text(json.dumps(record_, indent=1), encoding="utf-8")
    return record_


# --- tables -----------------------------------------------------------------------

FIELDS = {
    "entity P": ("entity", "precision"), "entity R": ("entity", "recall"), "entity F1": ("entity", "f1"),
    "token P": ("token", "precision"), "token R": ("token", "recall"), "token F1": ("token", "f1"),
}


def _get(run: dict, column: str) -> float:
    if column in FIELDS:
        a, b = FIELDS[column]
        return run[a][b]
    if column == "unseen entity R":
        return run["unseen"]["entity_recall"]
    if column == "unseen token F1":
        return run["unseen"]["token"]["f1"]
    if column == "<unk> entity F1":
        return run["unk"]["entity"]["f1"]
    if column == "<unk> unseen entity R":
        return run["unk"]["unseen"]["entity_recall"]
    if column in BREAKDOWN:
        return run["breakdown"][BREAKDOWN[column]]
    if column == "best epoch":
        return run["best_epoch"]
    if column == "time to best (s)":
        return run["time_to_best"]
    if column == "epoch (s)":  # the median SGD time of one epoch (metrics.csv "seconds")
        return statistics.median(row["seconds"] for row in run["history"])
    raise KeyError(column)


BREAKDOWN = {"missed": "missed", "boundary": "boundary", "spurious": "spurious"}  # dev LOC entity errors (counts)
COLUMNS = [*FIELDS, "unseen entity R", "unseen token F1", "<unk> entity F1", "<unk> unseen entity R",
           *BREAKDOWN, "best epoch", "epoch (s)", "time to best (s)"]


def summarise(runs: list[dict]) -> dict:
    """Mean, s.d. (ddof=1; 0 for one seed), min and max over seeds of every column."""
    out = {}
    for column in COLUMNS:
        values = [_get(r, column) for r in runs]
        out[column] = {"mean": statistics.fmean(values),
                       "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
                       "min": min(values), "max": max(values), "values": values}
    return out


def markdown_table(summaries: dict[str, dict], n_seeds: dict[str, int]) -> str:
    """One row per variant: mean ± s.d. over seeds (F1s as percentages, times in seconds)."""
    head = ["variant", "change", "seeds", *COLUMNS]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|"]
    for name, summary in summaries.items():
        cells = [f"`{name}`", VARIANTS[name][0], str(n_seeds[name])]
        for column in COLUMNS:
            m, sd = summary[column]["mean"], summary[column]["sd"]
            if column == "best epoch":
                cells.append(f"{m:.1f}")
            elif column == "time to best (s)" or column in BREAKDOWN:
                cells.append(f"{m:.0f} ± {sd:.0f}")
            elif column == "epoch (s)":
                cells.append(f"{m:.2f}")
            else:
                cells.append(f"{100 * m:.1f} ± {100 * sd:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_learning_curves(runs: list[dict], path: Path) -> Path | None:
    """Dev LOC entity/token F1 and train/dev loss per epoch, one line per seed (None without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    for i, run in enumerate(runs):
        h = run["history"]
        ep = [r["epoch"] for r in h]
        color = f"C{i}"
        a1.plot(ep, [r["entity_f1"] for r in h], "o-", color=color, label=f"seed {run['seed']} entity F1")
        a1.plot(ep, [r["token_f1"] for r in h], "s--", color=color, alpha=0.6, label=f"seed {run['seed']} token F1")
        a1.axvline(run["best_epoch"], color=color, lw=0.8, ls=":")
        a2.plot(ep, [r["train_data_loss"] for r in h], "o-", color=color, label=f"seed {run['seed']} train data loss")
        a2.plot(ep, [r["dev_data_loss"] for r in h], "s--", color=color, alpha=0.6,
                label=f"seed {run['seed']} dev data loss")
    a1.set_xlabel("epoch"), a1.set_ylabel("dev LOC F1"), a1.legend(fontsize=7), a1.grid(alpha=0.3)
    a2.set_yscale("log"), a2.set_xlabel("epoch"), a2.set_ylabel("loss"), a2.legend(fontsize=7), a2.grid(alpha=0.3)
    fig.suptitle("configs/conll2003.yaml on CoNLL-2003 dev (dotted: best epoch)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --- main -------------------------------------------------------------------------


def default_variants(config: Path = CONFIG) -> list[str]:
    """Every variant except those identical to the chosen config (e.g. `tanh` when f is tanh)."""
    return [name for name in VARIANTS if not is_noop(name, config)]


def ablate(train_path: str, dev_path: str, out: Path, seeds: list[int], names: list[str],
           config: Path = CONFIG, extra: list[str] = (), log=print) -> dict:
    """Run every (variant, seed), sequentially; write ablations.json/.md and learning_curves.png into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    scheme = load_config(config).data.scheme
    seen = training_words(train_path, scheme)
    runs: dict[str, list[dict]] = {}
    for name in names:
        for seed in seeds:
            run = run_one(name, seed, train_path, dev_path, out, seen, config, extra,
                          keep_model=(name == CHOSEN), log=log)
            runs.setdefault(name, []).append(run)
            log(f"{name} seed {seed}: entity F1 {run['entity']['f1']:.4f} token F1 {run['token']['f1']:.4f} "
                f"unseen entity R {run['unseen']['entity_recall']:.3f} "
                f"best epoch {run['best_epoch']} at {run['time_to_best']:.0f} s")
    summaries = {name: summarise(r) for name, r in runs.items()}
    doc = {"config": str(config), "train": str(train_path), "dev": str(dev_path), "seeds": seeds,
           "extra_overrides": list(extra), "summaries": summaries,
           "runs": {name: [{k: v for k, v in r.items() if k not in ("history", "config")} for r in rs]
                    for name, rs in runs.items()}}
    (out / "ablations.json").write_text(json.dumps(doc, indent=1), encoding="utf-8")
    table = markdown_table(summaries, {name: len(r) for name, r in runs.items()})
    (out / "ablations.md").write_text(table, encoding="utf-8")
    if CHOSEN in runs:
        plot_learning_curves(runs[CHOSEN], out / "learning_curves.png")
    return doc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", required=True, help="training file (CoNLL-2003 train.txt)")
    parser.add_argument("--dev", required=True, help="dev file (CoNLL-2003 dev.txt / eng.testa)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--only", nargs="+", metavar="NAME", help=f"variants to run (default: all that differ "
                        f"from the chosen config); known: {', '.join(VARIANTS)}")
    parser.add_argument("--config", type=Path, default=CONFIG, help="the chosen config (default %(default)s)")
    parser.add_argument("--set", dest="extra", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="extra override for every variant (exploration; the table notes none)")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    args = parser.parse_args(argv)
    try:
        names = args.only or default_variants(args.config)
        for name in names:
            variant_overrides(name)
        doc = ablate(args.train, args.dev, args.out, args.seeds, names, args.config, args.extra)
    except NerWindowError as e:
        print(f"ablate.py: {e}", file=sys.stderr)
        return 2
    print((args.out / "ablations.md").read_text(encoding="utf-8"), end="")
    print(f"wrote {args.out / 'ablations.json'}, {args.out / 'ablations.md'}"
          + (f", {args.out / 'learning_curves.png'}" if CHOSEN in doc["runs"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
