"""Window model against sentence-level model (issue 16), side by side: an epoch of training, and tagging.

    .venv/bin/python scripts/bench_sentence.py --train ../shared/data/conll2003/train.txt \\
        --dev ../shared/data/conll2003/dev.txt [--rounds 5] [--tag-models runs/base runs/base-sentence]

Training.  configs/conll2003.yaml (or --config) twice, with model.output window and sentence,
both prepared by the trainer itself (train._prepare: the same data, vocabulary and GloVe rows,
the same fresh parameters of each kind), then epochs taken in turns (window, sentence,
window, ...) through train._train_epoch, the loop `ner-window train` runs: shuffling, batching,
word dropout, the SGD steps and their checks.  Each epoch is timed as metrics.csv's "seconds"
(the loop only: no dev scoring, no checkpoint).  Medians over --rounds, and their ratio: the
issue's target is a sentence epoch at most 2x a window epoch.  With NER_WINDOW_KERNELS=numpy
both run their numpy paths.

Tagging (--tag-models WINDOW SENTENCE, two model or run directories, and --tag-file, a text
file, one sentence per line): `ner-window predict --model M --file F > /dev/null`, the
two models in turns, wall-clock tokens/s (start-up included) over --tag-rounds runs each.

Load matters on the shared machine: the script prints the 1-minute load average before and
after; a ratio measured side by side survives load better than either number alone.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ner_window import train as train_module  # noqa: E402
from ner_window.config import load_config  # noqa: E402


def prepare(config: Path, output: str, train: str, dev: str, run_dir: Path):
    """A trainer's _Run for ``config`` with model.output = ``output`` (data, vocabulary, fresh parameters)."""
    cfg = load_config(config, [f"model.output={output}", f"data.train={train}", f"data.dev={dev}", "data.test=null"])
    return train_module._prepare(cfg, run_dir, None, lambda s: None)


def epoch_seconds(run) -> float:
    """One epoch of the trainer's loop on ``run``; its seconds as metrics.csv records them."""
    state = run.state
    state.batch, state.epoch_seconds = 0, 0.0
    with train_module._signals_caught() as stop:
        train_module._train_epoch(run, stop, lambda s: None)
    seconds = state.epoch_seconds
    state.epoch = min(state.epoch + 1, run.cfg.train.epochs - 1)  # the next epoch's shuffle and lr
    state.loss_sum = state.data_loss_sum = 0.0
    state.loss_count = 0
    return seconds


def time_training(args) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        runs = {name: prepare(args.config, name, args.train, args.dev, Path(tmp) / name)
                for name in ("window", "sentence")}
        for run in runs.values():  # untimed: loads (or compiles) the numba kernels, warms the caches
            run.state.epoch = 0
            epoch_seconds(run)
        times = {name: [] for name in runs}
        for _ in range(args.rounds):
            for name, run in runs.items():
                times[name].append(epoch_seconds(run))
        n = len(runs["window"].train_data.windows)
    med = {name: statistics.median(t) for name, t in times.items()}
    return {"tokens": n, "seconds": times, "median": med, "ratio": med["sentence"] / med["window"]}


def time_tagging(args) -> dict:
    tokens = sum(len(line.split()) for line in open(args.tag_file, encoding="utf-8"))
    cli = [sys.executable, "-m", "ner_window.cli", "predict", "--file", str(args.tag_file)]
    times = {str(m): [] for m in args.tag_models}
    for _ in range(args.tag_rounds):
        for model in args.tag_models:
            t0 = time.perf_counter()
            subprocess.run([*cli, "--model", str(model)], stdout=subprocess.DEVNULL, check=True, cwd=ROOT)
            times[str(model)].append(time.perf_counter() - t0)
    return {"tokens": tokens, "seconds": times,
            "tokens_per_s": {m: tokens / statistics.median(t) for m, t in times.items()}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "conll2003.yaml")
    ap.add_argument("--train", required=True)
    ap.add_argument("--dev", required=True)
    ap.add_argument("--rounds", type=int, default=5, help="timed epochs of each model, in turns")
    ap.add_argument("--tag-models", nargs=2, metavar=("WINDOW", "SENTENCE"), help="two model/run directories")
    ap.add_argument("--tag-file", type=Path, help="text to tag, one sentence per line")
    ap.add_argument("--tag-rounds", type=int, default=3)
    ap.add_argument("--skip-training", action="store_true")
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} before; kernels "
          f"{'off (numpy path)' if os.environ.get('NER_WINDOW_KERNELS', '').lower() == 'numpy' else 'on'}")
    if not args.skip_training:
        t = time_training(args)
        print(f"training epoch, {t['tokens']:,} tokens, {args.rounds} rounds in turns:")
        for name in ("window", "sentence"):
            secs = ", ".join(f"{s:.2f}" for s in t["seconds"][name])
            print(f"  {name:<8} median {t['median'][name]:.2f} s  ({secs})")
        print(f"  sentence / window = {t['ratio']:.2f}")
    if args.tag_models and args.tag_file:
        t = time_tagging(args)
        print(f"predict --file, {t['tokens']:,} tokens, {args.tag_rounds} runs each in turns:")
        for model, rate in t["tokens_per_s"].items():
            secs = ", ".join(f"{s:.1f}" for s in t["seconds"][model])
            print(f"  {model}: median {rate / 1e3:.0f}k tokens/s  ({secs} s)")
    print(f"load average {os.getloadavg()[0]:.2f} after")
    return 0


if __name__ == "__main__":
    sys.exit(main())
