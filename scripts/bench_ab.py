"""Another checkout's train_step and predict_proba against this one's, in ONE process, interleaved.

    git worktree add /tmp/before c643781        # or: mkdir /tmp/before && git archive c643781 | tar -x -C /tmp/before
    .venv/bin/python scripts/bench_ab.py /tmp/before                    # the numba kernels
    NER_WINDOW_KERNELS=numpy .venv/bin/python scripts/bench_ab.py /tmp/before

On a shared machine absolute times move by ±20% with the other processes' load, so two
checkouts timed one after the other cannot resolve a 3% difference.  Here the other
checkout's package is copied under another name (ner_window -> ner_window_ab) and loaded
beside this one; the two take turns every --steps steps (the order alternating from round
to round) on the same batches, so that a burst of load hits both alike, and the medians
over --rounds blocks are compared.  Before issue 14 the fast path lived in model.py,
after it in fast.py: both are found.

Synthetic data of the project's shape: radius 2, d = 50, casing vectors d_c = 4, H = 100,
batch 64, float32, momentum 0.9, L2 1e-5, tanh (--activation, --casing, --momentum, --l2
change them; scripts/benchmark.py's model is --casing 0 --momentum 0 --l2 0); Zipf-like
word ids over 20k words.  One
BLAS thread for training (as `ner-window train`); inference with predict_proba's defaults.
Tagging: Tagger.tag_lines over the bundled corpus's sentences (one a line), everything
`ner-window predict --file` does but printing, with one saved random model for both.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def load_other(checkout: Path, where: Path):
    """The other checkout's ner_window package, copied into ``where`` as ner_window_ab: (model, fast)."""
    target = where / "ner_window_ab"
    shutil.copytree(checkout / "ner_window", target, ignore=shutil.ignore_patterns("__pycache__"))
    for path in target.glob("*.py"):  # its absolute imports must find its own modules
        text = path.read_text(encoding="utf-8")
        path.write_text(re.sub(r"\bner_window\.", "ner_window_ab.", text), encoding="utf-8")
    sys.path.insert(0, str(where))
    model = importlib.import_module("ner_window_ab.model")
    fast = importlib.import_module("ner_window_ab.fast") if (target / "fast.py").exists() else model
    optim = importlib.import_module("ner_window_ab.optim") if (target / "optim.py").exists() else model
    return model, fast, optim, importlib.import_module("ner_window_ab.tagger")


def saved_model(where: Path, lines: list[str]) -> Path:
    """A random binary model (radius 2, d = 50, d_c = 4, H = 100) over the words of ``lines``, saved."""
    from ner_window.artifact import save_model
    from ner_window.model import init_params
    from ner_window.vocab import build_vocab
    from ner_window.windows import CASING_CLASSES

    vocab = build_vocab([line.split() for line in lines])
    params = init_params(len(vocab), 50, 2, 100, n_casing=len(CASING_CLASSES), d_c=4, rng=np.random.default_rng(1))
    meta = {"config": {"data": {"scheme": "iob2", "location_types": ["LOC"]},
                       "model": {"task": "binary", "radius": 2, "hidden": 100, "activation": "tanh"}},
            "classes": ["O", "LOC"], "threshold": 0.5}
    return save_model(where / "model", params, vocab, meta)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("other", type=Path, help="the other checkout (a directory holding ner_window/)")
    ap.add_argument("--rounds", type=int, default=300)
    ap.add_argument("--steps", type=int, default=50, help="training steps per timed block")
    ap.add_argument("--windows", type=int, default=64 * 400)
    ap.add_argument("--activation", default="tanh", choices=("sigmoid", "tanh", "relu"))
    ap.add_argument("--casing", type=int, default=4, help="d_c, the casing-vector size (0: none)")
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--l2", type=float, default=1e-5)
    args = ap.parse_args()

    sys.path.insert(0, str(ROOT))
    from threadpoolctl import threadpool_limits

    from ner_window import fast, model, optim, tagger
    from ner_window.conll import read_conll

    with tempfile.TemporaryDirectory() as tmp:
        other = load_other(args.other.resolve(), Path(tmp))
        sides = {"other": other, "this": (model, fast, optim, tagger)}
        lines = [" ".join(s.tokens) for s in read_conll(ROOT / "data" / "train.txt", "iob2")]
        model_dir = saved_model(Path(tmp), lines)
        taggers = {name: side[3].Tagger.load(model_dir) for name, side in sides.items()}
        n_tokens = sum(line.count(" ") + 1 for line in lines)
        rng = np.random.default_rng(0)
        V, B, N = 20_000, 64, args.windows
        ids = (np.minimum(rng.zipf(1.2, size=(N, 5)), V) - 1).astype(np.int32)
        cas = rng.integers(0, 8, size=(N, 5)).astype(np.int32)
        y = (rng.random(N) < 0.04).astype(np.int32)
        runs = {}
        for name, (m, _, o, _) in sides.items():
            for train_E in (False, True):
                p = m.init_params(V, 50, 2, 100, n_casing=8 if args.casing else 0, d_c=args.casing,
                                  rng=np.random.default_rng(0), dtype=np.float32)
                runs[(name, train_E)] = (p, o.make_velocity(p))

        def block(name: str, train_E: bool, start: int) -> float:
            step, (p, v) = sides[name][1].train_step, runs[(name, train_E)]
            t0 = time.perf_counter()
            for k in range(args.steps):
                a = (start + k) * B % (N - B)
                step(p, ids[a:a + B], cas[a:a + B] if args.casing else None, y[a:a + B], lr=0.05,
                     activation=args.activation, loss="bce", lam=args.l2, train_E=train_E, momentum=args.momentum,
                     velocity=v if args.momentum else None)
            return (time.perf_counter() - t0) / args.steps * 1e6

        n_infer = min(16384, N)

        def infer(name: str) -> float:
            t0 = time.perf_counter()
            sides[name][1].predict_proba(runs[(name, False)][0], ids[:n_infer], cas[:n_infer] if args.casing else None,
                                         args.activation)
            return (time.perf_counter() - t0) * 1e6

        times: dict[tuple[str, str], list[float]] = {}
        with threadpool_limits(1, "blas"):
            for name in sides:  # untimed: loads (or compiles) the numba kernels
                block(name, False, 0), block(name, True, 0)
        for r in range(args.rounds):
            order = list(sides) if r % 2 == 0 else list(sides)[::-1]
            with threadpool_limits(1, "blas"):
                for train_E in (False, True):
                    what = f"train step, {'fine-tuned' if train_E else 'frozen'} E"
                    for name in order:
                        times.setdefault((what, name), []).append(block(name, train_E, r * args.steps))
            for name in order:
                times.setdefault((f"predict_proba, {n_infer} windows", name), []).append(infer(name))
            for name in order:
                t0 = time.perf_counter()
                for _ in taggers[name].tag_lines(lines):
                    pass
                times.setdefault((f"tag_lines, {n_tokens} tokens", name), []).append((time.perf_counter() - t0) * 1e6)
    kernels = "numpy" if os.environ.get("NER_WINDOW_KERNELS", "").lower() == "numpy" else "numba if installed"
    print(f"{args.other} (other) against {ROOT} (this): {args.rounds} rounds, {args.steps}-step blocks, "
          f"{args.activation}, d_c = {args.casing}, momentum {args.momentum}, L2 {args.l2}, kernels {kernels}, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    for what in dict.fromkeys(w for w, _ in times):
        o, t = statistics.median(times[(what, "other")]), statistics.median(times[(what, "this")])
        print(f"{what:<30} other {o:9.1f} µs   this {t:9.1f} µs   this/other time {t / o:.3f}")


if __name__ == "__main__":
    main()
