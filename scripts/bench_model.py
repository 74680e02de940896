"""Time the model's fast path: training steps and inference, in windows per second.

Synthetic data of the shape the project trains on: radius 2 (5-token windows),
d = 50 word vectors, no casing vectors, H = 100 hidden units, batch 64, 200k
windows whose word ids follow a Zipf-like law over a 20k vocabulary (so a batch
repeats words, as text does), ~4% positives.  Every timed step includes the
word-id gather; per epoch the windows are shuffled once and then sliced into
contiguous batches (what the trainer should do too).

    .venv/bin/python scripts/bench_model.py                 # the targets' configuration
    .venv/bin/python scripts/bench_model.py --dtype float64 --casing 4 --threads 1

Targets (2 cores, float32): tanh frozen-E training >= 400k windows/s, fine-tuned
E >= 300k windows/s, inference at batch 4096 >= 2M windows/s.  Each number is the
best of --repeat rounds (on a shared machine the best is the least disturbed).
BLAS threads matter: OpenBLAS's default (one per core) is fastest on an idle
machine but collapses when other processes load the cores; --threads 1 does not.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time

import numpy as np

from ner_window.fast import predict_proba, train_step
from ner_window.model import init_params
from ner_window.optim import make_velocity


def synthetic(n: int, vocab: int, window: int, n_casing: int, rng: np.random.Generator):
    """ids (n, window) int32 Zipf-like over `vocab`, casing ids, labels y (~4% ones)."""
    ranks = rng.zipf(1.2, size=(n, window))
    ids = (np.minimum(ranks, vocab) - 1).astype(np.int32)
    casing = rng.integers(0, max(n_casing, 1), size=(n, window)).astype(np.int32)
    y = (rng.random(n) < 0.04).astype(np.int32)
    return ids, casing, y


def train_epoch(params, ids, casing, y, *, batch, activation, train_E, momentum, velocity, seed) -> tuple[float, float]:
    """One epoch of train_step; (windows/s by the wall clock, windows/s by this process's CPU time)."""
    n = ids.shape[0]
    t0, c0 = time.perf_counter(), time.process_time()
    order = np.random.default_rng(seed).permutation(n)  # shuffle once per epoch, then contiguous slices
    ids_e, cas_e, y_e = ids[order], casing[order], y[order]
    for start in range(0, n, batch):
        stop = start + batch
        train_step(
            params, ids_e[start:stop], cas_e[start:stop], y_e[start:stop],
            lr=0.05, activation=activation, loss="bce", pos_weight=1.0, lam=1e-5,
            train_E=train_E, regularize_E=False, momentum=momentum, velocity=velocity,
        )
    return n / (time.perf_counter() - t0), n / (time.process_time() - c0)


def inference_pass(params, ids, casing, *, activation, batch) -> tuple[float, float]:
    """One predict_proba over all windows; (wall-clock windows/s, CPU-time windows/s)."""
    t0, c0 = time.perf_counter(), time.process_time()
    predict_proba(params, ids, casing, activation, batch_size=batch)
    return ids.shape[0] / (time.perf_counter() - t0), ids.shape[0] / (time.process_time() - c0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--windows", type=int, default=200_000)
    ap.add_argument("--vocab", type=int, default=20_000)
    ap.add_argument("--radius", type=int, default=2)
    ap.add_argument("--d", type=int, default=50)
    ap.add_argument("--casing", type=int, default=0, help="d_c, casing-vector size (0 = none; 8 classes)")
    ap.add_argument("--hidden", type=int, default=100)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--infer-batch", type=int, default=4096)
    ap.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    ap.add_argument("--repeat", type=int, default=3, help="rounds; each round times every configuration once")
    ap.add_argument("--momentum", type=float, default=0.0)
    ap.add_argument("--threads", type=int, default=None, help="limit BLAS threads (threadpoolctl); default: BLAS's own")
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    n_casing = 8 if args.casing else 0
    ids, casing, y = synthetic(args.windows, args.vocab, 2 * args.radius + 1, n_casing, rng)

    limit = contextlib.nullcontext()
    if args.threads:
        from threadpoolctl import threadpool_limits

        limit = threadpool_limits(args.threads, user_api="blas")
    print(
        f"{args.windows} windows, V={args.vocab}, radius={args.radius}, d={args.d}, d_c={args.casing}, "
        f"H={args.hidden}, batch={args.batch}, {args.dtype}, momentum={args.momentum}, "
        f"BLAS threads={args.threads or 'default'}, best of {args.repeat} rounds; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    print("CPU-time rate = windows / this process's CPU seconds; with --threads 1 it estimates an idle machine's rate")
    # one model per training configuration; the rounds interleave the configurations, so
    # a burst of load from another process spoils one round of each, not all rounds of one
    configs = [(train_E, activation) for train_E in (False, True) for activation in ("sigmoid", "tanh", "relu")]
    models = {}
    for config in configs:
        params = init_params(
            args.vocab, args.d, args.radius, args.hidden, n_casing=n_casing, d_c=args.casing,
            rng=np.random.default_rng(0), dtype=args.dtype,
        )
        models[config] = (params, make_velocity(params) if args.momentum else None)
    for train_E, activation in configs:  # untimed: the first step loads (or compiles) the numba kernels
        train_step(models[(train_E, activation)][0].copy(), ids[:args.batch], casing[:args.batch], y[:args.batch],
                   lr=0.05, activation=activation, loss="bce", train_E=train_E)
    best = {}
    with limit:
        for round_ in range(args.repeat):
            for train_E, activation in configs:
                params, velocity = models[(train_E, activation)]
                rates = train_epoch(
                    params, ids, casing, y, batch=args.batch, activation=activation, train_E=train_E,
                    momentum=args.momentum, velocity=velocity, seed=round_,
                )
                key = ("train", activation, train_E)
                best[key] = np.maximum(best.get(key, 0.0), rates)
            for activation in ("sigmoid", "tanh", "relu"):
                rates = inference_pass(models[(False, activation)][0], ids, casing, activation=activation,
                                       batch=args.infer_batch)
                key = ("infer", activation, None)
                best[key] = np.maximum(best.get(key, 0.0), rates)
    for (kind, activation, train_E), (rate, cpu_rate) in best.items():
        if kind == "train":
            label = "fine-tuned E" if train_E else "frozen E"
            print(f"train  {activation:<7}  {label:<12}  {rate / 1e3:6.0f}k windows/s"
                  f"   (CPU-time rate {cpu_rate / 1e3:4.0f}k)")
        else:
            print(f"infer  {activation:<7}  batch {args.infer_batch:<6}  {rate / 1e6:6.2f}M windows/s"
                  f"   (CPU-time rate {cpu_rate / 1e6:4.2f}M)")


if __name__ == "__main__":
    main()
