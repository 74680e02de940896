"""How fast ner-window trains and predicts, side by side with PyTorch, scikit-learn and a per-example loop.

    .venv/bin/python scripts/benchmark.py                                       # synthetic data, CoNLL-2003 shape
    .venv/bin/python scripts/benchmark.py --data ../shared/data/conll2003/train.txt
    .venv/bin/python scripts/benchmark.py --format json                         # figures to track
    .venv/bin/python scripts/benchmark.py --quick                               # tiny sizes, a smoke test
    .venv/bin/python scripts/benchmark.py --profile                             # + where an epoch's time goes

Every implementation computes the same model, the lecture's window classifier with
frozen or fine-tuned word vectors and no casing vectors (d_c = 0):

    x = [e(w-2); ...; e(w+2)]  (5d,)     gathered from E by word id inside the timed loop
    z = W x + b,  h = f(z),  s = uᵀh + c,  p = σ(s),  J = mean binary cross-entropy
    plain minibatch SGD (no momentum, no L2), one epoch, windows shuffled once per epoch

    ner-window      fast.train_step / fast.predict_proba (the package's fast path)
    torch           nn.Embedding + nn.Linear + nn.Linear, autograd, BCEWithLogitsLoss, optim.SGD;
                    tensors built before timing, no DataLoader; frozen (Embedding frozen),
                    sparse (Embedding(sparse=True): row gradients) and dense (a V×d gradient per step)
    sklearn         MLPClassifier(solver="sgd") on the materialised (N, 5d) features: no gather,
                    no embedding gradient (so it is compared with frozen vectors)
    per-example     the same equations in numpy, one window at a time (frozen vectors)

All start from the same initial W, b, u, c (and E) except scikit-learn, which draws its own.
Timings are medians (and min-max) over --repeat runs; within a run the implementations
take turns, so a slow moment of the shared machine hits them alike.  Ratios are
ner-window's median windows/s divided by the other's.

Threads.  ner-window trains with one BLAS thread, as `ner-window train` does
(train.blas_threads = 1: batch-64 products are too small to split across cores, and
OpenBLAS's spinning threads collapse when another process holds a core), and predicts
as predict_proba does by default (chunks of --infer-batch windows in parallel threads,
one BLAS thread each).  scikit-learn and the per-example loop get one BLAS thread too
(their best here).  PyTorch runs with torch.set_num_threads(2) (the issue's setting)
and, with the default --torch-threads 2,1, also with one thread, so that both are
shown.  The machine's own GEMM rate is measured in the same run with 2 and 1 threads.
When another process holds a core, torch's two threads can fall to ~2k windows/s, so
a torch training epoch stops after --time-limit seconds (30) and its rate is taken
over the part done; the output says so.

Nothing is written to disk.  Torch is optional (`make bench` installs it); without it the
torch rows are skipped with a note.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import os
import platform
import pstats
import statistics
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ner_window.fast import predict_proba, train_step  # noqa: E402
from ner_window.model import init_params  # noqa: E402
from ner_window.train import blas_threads_limited  # noqa: E402

CONLL_TRAIN_WINDOWS = 203_621  # tokens (= windows) in CoNLL-2003 eng.train


@dataclass
class Data:
    ids: np.ndarray  # (N, w) int32 word ids
    y: np.ndarray  # (N,) int32 labels, 1 = location
    source: str


# --------------------------------------------------------------------------- data


def synthetic_data(n: int, vocab: int, radius: int, rng: np.random.Generator) -> Data:
    """n windows whose word ids follow a Zipf law over `vocab` words (a batch repeats words,
    as text does); ~4% positives, like LOC tokens in CoNLL-2003."""
    ranks = rng.zipf(1.2, size=(n, 2 * radius + 1))
    ids = (np.minimum(ranks, vocab) - 1).astype(np.int32)
    y = (rng.random(n) < 0.04).astype(np.int32)
    return Data(ids, y, f"synthetic ({n:,} windows, Zipf ids over {vocab:,} words)")


def conll_data(path: str, radius: int, vocab_rows: int) -> tuple[Data, int]:
    """Windows of a CoNLL-2003 file through the package's own pipeline; returns (data, V).

    The vocabulary is the file's (lowercased) words; E gets max(vocab_rows, that) rows,
    standing for the pretrained words a real vocabulary adds (configs/conll2003.yaml keeps all 400k).
    """
    from ner_window.conll import read_conll
    from ner_window.vocab import build_vocab
    from ner_window.windows import labelled_data

    sentences = read_conll(path, "iob1")
    vocab = build_vocab([s.tokens for s in sentences])
    data = labelled_data(sentences, vocab, radius, ["O", "LOC"], ["LOC"])
    w = data.windows
    return Data(w.ids, w.y, f"{path} ({len(w):,} windows, {len(vocab):,} words)"), max(vocab_rows, len(vocab))


# --------------------------------------------------------------------------- ner-window


def blas_threads(n: int):
    """BLAS limited to n threads, or nothing if threadpoolctl is missing."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        return contextlib.nullcontext()
    return threadpool_limits(n, user_api="blas")


def nw_train_epoch(params, data: Data, *, batch: int, lr: float, activation: str, train_E: bool, seed: int) -> float:
    """Seconds for one epoch of fast.train_step (shuffle once, then contiguous batches)."""
    n = data.ids.shape[0]
    t0 = time.perf_counter()
    order = np.random.default_rng(seed).permutation(n)
    ids, y = data.ids[order], data.y[order]
    for start in range(0, n, batch):
        stop = start + batch
        train_step(params, ids[start:stop], None, y[start:stop], lr=lr, activation=activation, loss="bce",
                   train_E=train_E)
    return time.perf_counter() - t0


def nw_infer(params, data: Data, *, activation: str, batch: int) -> float:
    t0 = time.perf_counter()
    predict_proba(params, data.ids, None, activation, batch_size=batch)
    return time.perf_counter() - t0


# --------------------------------------------------------------------------- PyTorch


def torch_model(torch, params, activation: str, mode: str):
    """The same network in PyTorch, initialised from ``params``.  mode: frozen | sparse | dense."""
    nn = torch.nn
    H, D = params.W.shape

    class WindowClassifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding.from_pretrained(torch.from_numpy(params.E.copy()), freeze=mode == "frozen",
                                                      sparse=mode == "sparse")
            self.hidden = nn.Linear(D, H)
            self.out = nn.Linear(H, 1)
            with torch.no_grad():
                self.hidden.weight.copy_(torch.from_numpy(params.W))
                self.hidden.bias.copy_(torch.from_numpy(params.b))
                self.out.weight.copy_(torch.from_numpy(params.u[None, :]))
                self.out.bias.fill_(float(params.c))
            self.f = torch.tanh if activation == "tanh" else torch.sigmoid if activation == "sigmoid" else torch.relu

        def forward(self, ids):  # ids (B, w) int64 -> scores s (B,)
            x = self.embed(ids).reshape(ids.shape[0], -1)
            return self.out(self.f(self.hidden(x))).squeeze(1)

    return WindowClassifier()


def torch_train_epoch(torch, model, ids, y, *, batch: int, lr: float, seed: int,
                      time_limit: float) -> tuple[int, float]:
    """(windows, seconds) for one epoch: forward, BCEWithLogitsLoss, backward, optim.SGD step
    per batch.  Past time_limit seconds the epoch stops early (torch's two threads can fall
    to ~2k windows/s when another process holds a core: a full epoch would take minutes)."""
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    n = ids.shape[0]
    g = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    order = torch.randperm(n, generator=g)
    ids_e, y_e = ids[order], y[order]
    for start in range(0, n, batch):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(ids_e[start:start + batch]), y_e[start:start + batch])
        loss.backward()
        opt.step()
        if time_limit and time.perf_counter() - t0 > time_limit:
            return min(n, start + batch), time.perf_counter() - t0
    return n, time.perf_counter() - t0


def torch_infer(torch, model, ids, *, batch: int) -> float:
    p = torch.empty(ids.shape[0])
    t0 = time.perf_counter()
    with torch.inference_mode():
        for start in range(0, ids.shape[0], batch):
            p[start:start + batch] = torch.sigmoid(model(ids[start:start + batch]))
    return time.perf_counter() - t0


# --------------------------------------------------------------------------- scikit-learn, per-example


def sklearn_epoch(X: np.ndarray, y: np.ndarray, *, hidden: int, batch: int, lr: float, activation: str,
                  seed: int) -> float:
    """Seconds for one epoch of MLPClassifier(solver="sgd").partial_fit on materialised features."""
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(hidden_layer_sizes=(hidden,), activation="logistic" if activation == "sigmoid" else activation,
                        solver="sgd", batch_size=batch, learning_rate_init=lr, momentum=0.0,
                        nesterovs_momentum=False, alpha=0.0, shuffle=True, random_state=seed)
    t0 = time.perf_counter()
    clf.partial_fit(X, y, classes=np.array([0, 1]))
    seconds = time.perf_counter() - t0
    if clf.coefs_[0].dtype != X.dtype:  # scikit-learn keeps float32 input in float32 (checked, not assumed)
        raise RuntimeError(f"MLPClassifier trained in {clf.coefs_[0].dtype}, not {X.dtype}")
    return seconds


def per_example_epoch(params, data: Data, *, n: int, lr: float, activation: str) -> float:
    """Seconds for n windows of SGD one window at a time: the lecture's equations, literally."""
    E, W, b, u = params.E, params.W, params.b, params.u
    c = float(params.c)
    f = np.tanh if activation == "tanh" else (lambda z: 1.0 / (1.0 + np.exp(-z)))
    ids, y = data.ids[:n], data.y[:n].astype(W.dtype)
    t0 = time.perf_counter()
    for i in range(n):
        x = E[ids[i]].reshape(-1)  # (5d,)
        h = f(W @ x + b)  # (H,)
        p = 1.0 / (1.0 + np.exp(-(u @ h + c)))
        delta_s = p - y[i]
        delta = (u * delta_s) * ((1.0 - h * h) if activation == "tanh" else h * (1.0 - h))
        u -= (lr * delta_s) * h
        c -= lr * delta_s
        W -= lr * np.outer(delta, x)
        b -= lr * delta
    return time.perf_counter() - t0


# --------------------------------------------------------------------------- the machine


def gemm_gflops(threads: int, size: int) -> float:
    """float32 (size x size) @ (size x size) GFLOP/s with `threads` BLAS threads, best of 2."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((size, size), dtype=np.float32)
    B = rng.standard_normal((size, size), dtype=np.float32)
    C = np.empty_like(A)
    with blas_threads(threads):
        np.matmul(A, B, out=C)
        best = min(_seconds(lambda: np.matmul(A, B, out=C)) for _ in range(2))
    return 2 * size**3 / best / 1e9


def step_gemm_gflops(threads: int, batch: int, D: int, H: int, reps: int) -> float:
    """GFLOP/s of the three products of one training step: X Wᵀ, Δᵀ X, Δ W (batch rows)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((batch, D), dtype=np.float32)
    W = rng.standard_normal((H, D), dtype=np.float32)
    delta = rng.standard_normal((batch, H), dtype=np.float32)
    Z, dW, dX = np.empty((batch, H), np.float32), np.empty((H, D), np.float32), np.empty((batch, D), np.float32)

    def three():
        for _ in range(reps):
            np.matmul(X, W.T, out=Z)
            np.matmul(delta.T, X, out=dW)
            np.matmul(delta, W, out=dX)

    with blas_threads(threads):
        three()
        best = min(_seconds(three) for _ in range(3))
    return 3 * 2 * batch * D * H * reps / best / 1e9


def _seconds(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def kernels_info() -> str:
    """How train_step runs its small work here: "numba <version>" (ner_window/kernels.py) or "numpy"."""
    from ner_window import kernels

    if not kernels.available():
        return "numpy"
    import numba

    return f"numba {numba.__version__}"


def machine_info() -> dict:
    info = {"cpus": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__,
            "platform": platform.platform(), "kernels": kernels_info()}
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "?")
    except OSError:
        pass
    try:
        from threadpoolctl import threadpool_info

        # numpy's own BLAS (scipy, loaded by scikit-learn, may bring a second OpenBLAS)
        blas = sorted((i for i in threadpool_info() if i.get("user_api") == "blas"),
                      key=lambda i: "numpy" not in i.get("filepath", ""))
        if blas:
            b = blas[0]
            info["blas"] = f"{b.get('internal_api')} {b.get('version')} ({b.get('architecture')} kernels)"
    except ImportError:  # pragma: no cover
        pass
    try:
        import sklearn

        info["sklearn"] = sklearn.__version__
    except ImportError:  # pragma: no cover
        pass
    return info


# --------------------------------------------------------------------------- the run


def flops_per_window(D: int, H: int, train_E: bool | None) -> int:
    """Multiply-adds x 2 of the matrix products per window: forward Wx and uᵀh (2DH + 2H);
    training adds ∂J/∂W = δxᵀ and ∂J/∂u = δs h (2DH + 2H), and ∂J/∂x = Wᵀδ (2DH) when E
    is fine-tuned.  train_E=None means inference."""
    forward = 2 * D * H + 2 * H
    if train_E is None:
        return forward
    return 2 * forward + (2 * D * H if train_E else 0)


def run(args) -> dict:
    rng = np.random.default_rng(args.seed)
    radius, d, H = 2, args.d, args.hidden
    if args.data:
        data, V = conll_data(args.data, radius, args.vocab)
    else:
        data, V = synthetic_data(args.windows, args.vocab, radius, rng), args.vocab
    N, D = data.ids.shape[0], (2 * radius + 1) * d
    params0 = init_params(V, d, radius, H, rng=np.random.default_rng(args.seed), dtype=np.float32)
    acts = args.activations
    act0 = acts[0]
    notes: list[str] = []

    # workloads: name -> (kind, callable returning seconds or (windows done, seconds), windows timed)
    work: dict[str, tuple[str, object, int]] = {}
    state: dict[str, object] = {}

    for act in acts:
        for train_E in (False, True):
            key = "ner_window" + ("" if act == act0 else f"_{act}") + ("_finetuned" if train_E else "")
            state[key] = params0.copy()
            # untimed: the first step loads (or, on a fresh clone, compiles) the numba kernels
            train_step(params0.copy(), data.ids[:args.batch], None, data.y[:args.batch], lr=args.lr, activation=act,
                       loss="bce", train_E=train_E)

            def fn(key=key, act=act, train_E=train_E):
                with blas_threads_limited(args.nw_blas_threads):  # what train() does with train.blas_threads
                    return nw_train_epoch(state[key], data, batch=args.batch, lr=args.lr, activation=act,
                                          train_E=train_E, seed=args.seed)

            work[key] = ("train", fn, N)

    torch = None
    if "torch" not in args.skip:
        try:
            import torch  # noqa: F811
        except ImportError:
            notes.append("torch is not installed: the PyTorch rows are skipped (`make bench` installs torch==2.13.0)")
    if torch is not None:
        ids_t = torch.from_numpy(data.ids.astype(np.int64))
        y_t = torch.from_numpy(data.y.astype(np.float32))
        for threads in args.torch_threads:
            suffix = "" if threads == args.torch_threads[0] else f"_{threads}thread"
            for mode in ("frozen", "sparse", "dense"):
                key = "torch" + ("" if mode == "frozen" else f"_{mode}") + suffix
                state[key] = torch_model(torch, params0, act0, mode)

                def fn(key=key, threads=threads):
                    torch.set_num_threads(threads)
                    return torch_train_epoch(torch, state[key], ids_t, y_t, batch=args.batch, lr=args.lr,
                                             seed=args.seed, time_limit=args.time_limit)

                work[key] = ("train", fn, N)

    if "sklearn" not in args.skip:
        X32 = params0.E[data.ids].reshape(N, D)  # materialised features: scikit-learn needs them
        X64 = X32.astype(np.float64)
        for key, X in (("sklearn", X32), ("sklearn_float64", X64)):
            def fn(X=X):
                with warnings.catch_warnings(), blas_threads(1):
                    warnings.simplefilter("ignore")
                    return sklearn_epoch(X, data.y, hidden=H, batch=args.batch, lr=args.lr, activation=act0,
                                         seed=args.seed)

            work[key] = ("train", fn, N)

    if "loop" not in args.skip:
        n_loop = min(N, args.loop_windows)
        state["per_example"] = params0.copy()

        def fn():
            with blas_threads(1):
                return per_example_epoch(state["per_example"], data, n=n_loop, lr=args.lr, activation=act0)

        work["per_example"] = ("train", fn, n_loop)

    for act in acts:
        key = "ner_window" + ("" if act == act0 else f"_{act}")

        def fn(act=act):  # predict_proba picks its own threads (chunks in parallel, one BLAS thread each)
            return nw_infer(params0, data, activation=act, batch=args.infer_batch)

        work["infer:" + key] = ("infer", fn, N)
    if torch is not None:
        for threads in args.torch_threads:
            key = "torch" + ("" if threads == args.torch_threads[0] else f"_{threads}thread")
            model = torch_model(torch, params0, act0, "frozen")

            def fn(model=model, threads=threads):
                torch.set_num_threads(threads)
                return torch_infer(torch, model, ids_t, batch=args.infer_batch)

            work["infer:" + key] = ("infer", fn, N)

    rates: dict[str, list[float]] = {k: [] for k in work}
    gemm = {"gemm_gflops": [], "gemm_gflops_1thread": [], "step_gemm_gflops": [], "step_gemm_gflops_1thread": []}
    partial: dict[str, int] = {}  # runs stopped by --time-limit, per workload
    load_before = os.getloadavg()
    for r in range(args.repeat):
        gemm["gemm_gflops"].append(gemm_gflops(2, args.gemm_size))
        gemm["gemm_gflops_1thread"].append(gemm_gflops(1, args.gemm_size))
        gemm["step_gemm_gflops"].append(step_gemm_gflops(2, args.batch, D, H, args.gemm_reps))
        gemm["step_gemm_gflops_1thread"].append(step_gemm_gflops(1, args.batch, D, H, args.gemm_reps))
        for key, (_, fn, n) in work.items():
            out = fn()  # seconds, or (windows, seconds) for a run that may stop early
            done, seconds = out if isinstance(out, tuple) else (n, out)
            if done < n:
                partial[key.split(":", 1)[-1]] = partial.get(key.split(":", 1)[-1], 0) + 1
            rates[key].append(done / seconds)
            if args.verbose:
                print(f"run {r + 1}: {key:<28} {rates[key][-1]:>12,.0f} windows/s", file=sys.stderr)
    load_after = os.getloadavg()

    def section(kind: str) -> dict[str, list[float]]:
        return {k.split(":", 1)[-1]: v for k, v in rates.items() if work[k][0] == kind}

    train_runs, infer_runs = section("train"), section("infer")
    med = lambda runs: {k: statistics.median(v) for k, v in runs.items()}  # noqa: E731
    train, infer = med(train_runs), med(infer_runs)
    for key in ("torch", "torch_sparse", "torch_dense", "sklearn", "sklearn_float64", "per_example"):
        train.setdefault(key, None)
    infer.setdefault("torch", None)

    def partner(key: str) -> str:
        """The ner-window figure a baseline is compared with: same activation, same trained parameters."""
        return "ner_window_finetuned" if ("sparse" in key or "dense" in key) else "ner_window"

    ratios = {"train": {k: train[partner(k)] / v for k, v in train.items() if v and not k.startswith("ner_window")},
              "infer": {k: infer["ner_window"] / v for k, v in infer.items() if v and not k.startswith("ner_window")}}
    gemm_med = {k: statistics.median(v) for k, v in gemm.items()}
    achieved = {
        "train": train["ner_window"] * flops_per_window(D, H, False) / 1e9,
        "train_finetuned": train["ner_window_finetuned"] * flops_per_window(D, H, True) / 1e9,
        "infer": infer["ner_window"] * flops_per_window(D, H, None) / 1e9,
    }
    # the products alone at the rate one BLAS thread reaches on the step's own shapes: the
    # windows/s a step made of nothing else would reach (gather, activations, updates free)
    one = gemm_med["step_gemm_gflops_1thread"] * 1e9
    ceiling = {"train": one / flops_per_window(D, H, False), "train_finetuned": one / flops_per_window(D, H, True)}
    result = {
        "train": train,
        "infer": infer,
        "ratios": ratios,
        **gemm_med,
        "ner_window_gflops": achieved,
        "blas_ceiling": ceiling,
        "runs": {"train": train_runs, "infer": infer_runs, "gemm": gemm},
        "config": {"data": data.source, "windows": N, "vocab_rows": V, "radius": radius, "d": d, "d_c": 0,
                   "hidden": H, "dtype": "float32", "batch": args.batch, "infer_batch": args.infer_batch,
                   "lr": args.lr, "activations": acts, "repeat": args.repeat,
                   "per_example_windows": min(N, args.loop_windows), "torch_threads": args.torch_threads,
                   "gemm_size": args.gemm_size},
        "machine": {**machine_info(), "torch": None if torch is None else torch.__version__,
                    "load_average_before": load_before, "load_average_after": load_after},
        "partial_runs": partial,
        "notes": notes + [f"{k}: {v} of {args.repeat} runs stopped after --time-limit {args.time_limit:g} s "
                          f"(windows/s over the part done)" for k, v in partial.items()],
    }
    if args.profile:
        result["profile"] = {f"{act0}_{'finetuned' if te else 'frozen'}": profile_epoch(params0, data, args, act0, te)
                             for te in (False, True)}
    return result


def _call_lines(fast) -> set[int]:
    """The lines of fast.train_step that call _forward_into / _output_backward (profiled on their own)."""
    import inspect

    lines, first = inspect.getsourcelines(fast.train_step)
    return {first + i for i, line in enumerate(lines) if "_forward_into(" in line or "_output_backward(" in line}


def profile_epoch(params0, data: Data, args, activation: str, train_E: bool) -> dict:
    """Where one ner-window epoch's time goes: a line profile of fast.train_step and the two
    helpers it runs (_forward_into, _output_backward) when line_profiler is installed
    (`pip install line_profiler`), else cProfile's functions.

    Returns {"tool", "steps", "rows": [{"what", "us_per_step", "share"}]}, the largest first.
    The profiler's own overhead (~0.1-1 µs a line) inflates the cheap lines a little.
    """
    from ner_window import fast

    params = params0.copy()
    run = lambda: nw_train_epoch(params, data, batch=args.batch, lr=args.lr, activation=activation,  # noqa: E731
                                 train_E=train_E, seed=args.seed)
    steps = -(-data.ids.shape[0] // args.batch)
    try:
        from line_profiler import LineProfiler
    except ImportError:
        LineProfiler = None
    with blas_threads_limited(args.nw_blas_threads):
        if LineProfiler is not None:
            lp = LineProfiler(fast.train_step, fast._forward_into, fast._output_backward)
            lp.runcall(run)
            # the helpers' lines are also inside train_step's calls to them: keep only their own lines
            timings = [t for (_, _, name), v in lp.get_stats().timings.items() for t in v
                       if name != "train_step" or t[0] not in _call_lines(fast)]
            unit = lp.get_stats().unit
            import linecache

            source = fast.train_step.__code__.co_filename
            total = sum(t for _, _, t in timings)
            rows = [{"what": f"fast.py:{ln}  {linecache.getline(source, ln).strip()[:70]}",
                     "us_per_step": t * unit / steps * 1e6, "share": t / total} for ln, _, t in timings]
            tool = "line_profiler (fast.train_step and its helpers)"
        else:
            prof = cProfile.Profile()
            prof.runcall(run)
            stats = pstats.Stats(prof).stats
            total = sum(v[2] for v in stats.values())
            rows = [{"what": f"{Path(k[0]).name}:{k[1]}({k[2]})", "us_per_step": v[2] / steps * 1e6,
                     "share": v[2] / total} for k, v in stats.items()]
            tool = "cProfile (own time per function)"
    rows = [r for r in sorted(rows, key=lambda r: -r["share"]) if r["share"] >= 0.01]
    return {"tool": tool, "steps": steps, "rows": [{k: (round(v, 4) if isinstance(v, float) else v)
                                                    for k, v in r.items()} for r in rows]}


# --------------------------------------------------------------------------- output


def _fmt_rate(v: float | None) -> str:
    if v is None:
        return "skipped"
    return f"{v / 1e6:.2f}M" if v >= 1e6 else f"{v / 1e3:.0f}k"


def format_text(res: dict) -> str:
    cfg, m = res["config"], res["machine"]
    lines = [
        f"ner-window benchmark: {cfg['data']}",
        f"radius {cfg['radius']}, d {cfg['d']}, d_c {cfg['d_c']}, H {cfg['hidden']}, {cfg['dtype']}, "
        f"batch {cfg['batch']}, "
        f"lr {cfg['lr']}, plain SGD, one epoch, gather included; E has {cfg['vocab_rows']:,} rows; "
        f"median [min-max] of {cfg['repeat']} interleaved runs",
        f"machine: {m.get('cpus')} CPUs ({m.get('cpu', '?')}), numpy {m['numpy']} / {m.get('blas', '?')}, "
        f"torch {m.get('torch')}, scikit-learn {m.get('sklearn')}, train_step kernels: {m.get('kernels')}; "
        f"load average {m['load_average_before'][0]:.2f} before, {m['load_average_after'][0]:.2f} after",
        "",
        f"{'training (windows/s)':<34}{'median':>9}  {'min-max':<17}{'ner-window x':>13}",
    ]
    act0 = cfg["activations"][0]
    labels = {
        "ner_window": f"ner-window {act0}, frozen E",
        "ner_window_finetuned": f"ner-window {act0}, fine-tuned E",
        "torch": f"torch {act0}, frozen",
        "torch_sparse": f"torch {act0}, sparse E grad",
        "torch_dense": f"torch {act0}, dense E grad",
        "sklearn": "sklearn MLP float32",
        "sklearn_float64": "sklearn MLP float64",
        "per_example": "per-example numpy loop",
    }

    def label(key: str) -> str:
        base, threads = key, cfg["torch_threads"][0] if key.startswith("torch") else None
        if key.endswith("thread"):  # torch_sparse_1thread -> torch_sparse, 1
            base, _, n = key.rpartition("_")
            threads = int(n[: -len("thread")])
        if base in labels:
            text = labels[base]
        else:  # ner_window_sigmoid[_finetuned]
            act = base.split("_")[2]
            text = f"ner-window {act}, " + ("fine-tuned E" if base.endswith("finetuned") else "frozen E")
        return text if threads is None else f"{text} ({threads} thr)"

    def rows(kind: str):
        out = []
        for key, runs in res["runs"][kind].items():
            med = res[kind][key]
            ratio = res["ratios"][kind].get(key)
            out.append(f"{label(key):<34}{_fmt_rate(med):>9}  {_fmt_rate(min(runs)) + '-' + _fmt_rate(max(runs)):<17}"
                       f"{'' if ratio is None else f'{ratio:.2f}':>13}")
        return out

    lines += rows("train")
    infer_title = f"inference, batch {cfg['infer_batch']}"
    lines += ["", f"{infer_title:<34}{'median':>9}  {'min-max':<17}{'ner-window x':>13}"]
    lines += rows("infer")
    g = res["ner_window_gflops"]
    lines += [
        "",
        f"GEMM float32 {cfg['gemm_size']}^3: {res['gemm_gflops']:.0f} GFLOP/s (2 threads), "
        f"{res['gemm_gflops_1thread']:.0f} (1 thread); the three batch-{cfg['batch']} products of a step: "
        f"{res['step_gemm_gflops']:.0f} (2 threads), {res['step_gemm_gflops_1thread']:.0f} (1 thread)",
        f"ner-window achieved: {g['train']:.1f} GFLOP/s training (frozen), {g['train_finetuned']:.1f} (fine-tuned), "
        f"{g['infer']:.1f} inference (matrix products only)",
        f"products-only ceiling (1 BLAS thread, the step's shapes, nothing else in the step): "
        f"{_fmt_rate(res['blas_ceiling']['train'])} windows/s frozen, "
        f"{_fmt_rate(res['blas_ceiling']['train_finetuned'])} fine-tuned; ner-window reaches "
        f"{res['train']['ner_window'] / res['blas_ceiling']['train']:.0%} and "
        f"{res['train']['ner_window_finetuned'] / res['blas_ceiling']['train_finetuned']:.0%} of it",
        "ratios: ner-window's median / the row's median (fine-tuned ner-window for sparse/dense torch rows)",
    ]
    for note in res["notes"]:
        lines.append(f"note: {note}")
    for name, prof in res.get("profile", {}).items():
        lines += ["", f"profile of one ner-window epoch ({name}, {prof['steps']} steps), {prof['tool']}:"]
        lines += [f"  {r['share']:6.1%}  {r['us_per_step']:6.1f} µs/step  {r['what']}" for r in prof["rows"]]
    return "\n".join(lines)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", help="CoNLL file to build the windows from (else synthetic data of the same shape)")
    ap.add_argument("--windows", type=int, default=CONLL_TRAIN_WINDOWS, help="synthetic windows [%(default)s]")
    ap.add_argument("--vocab", type=int, default=100_000, help="rows of E [%(default)s]; with --data, the file's words are the first rows")
    ap.add_argument("--d", type=int, default=50)
    ap.add_argument("--hidden", type=int, default=100)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--infer-batch", type=int, default=4096)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--activations", default="tanh,sigmoid",
                    help="ner-window activations; the first is also the baselines' [%(default)s]")
    ap.add_argument("--nw-blas-threads", type=int, default=1,
                    help="BLAS threads for ner-window's training steps, as train.blas_threads [%(default)s]")
    ap.add_argument("--torch-threads", default="2,1",
                    help="torch.set_num_threads values; the first is 'torch' [%(default)s]")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--time-limit", type=float, default=30.0,
                    help="seconds after which a torch training epoch stops early, 0 = never [%(default)s]")
    ap.add_argument("--loop-windows", type=int, default=20_000, help="windows timed in the per-example loop")
    ap.add_argument("--gemm-size", type=int, default=2048)
    ap.add_argument("--gemm-reps", type=int, default=300)
    ap.add_argument("--skip", default="", help="comma list of torch, sklearn, loop")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test of the script, not a measurement")
    ap.add_argument("--profile", action="store_true", help="add a cProfile of one ner-window epoch")
    ap.add_argument("--format", choices=("text", "json"), default="text")
    ap.add_argument("--verbose", "-v", action="store_true", help="print each run on stderr")
    args = ap.parse_args(argv)
    args.activations = [a for a in args.activations.split(",") if a]
    args.torch_threads = [int(t) for t in args.torch_threads.split(",") if t]
    args.skip = {s for s in args.skip.split(",") if s}
    if args.quick:
        args.windows, args.vocab, args.loop_windows = 3000, 2000, 200
        args.gemm_size, args.gemm_reps, args.infer_batch = 256, 20, 1024
    if args.repeat < 1:
        ap.error("--repeat must be >= 1")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    res = run(args)
    print(json.dumps(res, indent=1) if args.format == "json" else format_text(res))


if __name__ == "__main__":
    main()
