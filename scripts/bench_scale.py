"""Tagging corpora of any size (issue 19): scoring, `predict --file` and `tag --workers`, side by side.

    .venv/bin/python scripts/bench_scale.py --model runs/base                 # all three, ~10 min
    .venv/bin/python scripts/bench_scale.py --model runs/base --only scoring --format json
    .venv/bin/python scripts/bench_scale.py --model runs/base --quick         # small sizes: a smoke test

scoring   windows/s of one model over the same windows: slot projections (slots.SlotScorer,
          rows computed beforehand, as in a stream after its first lines) against the matrix
          product (fast.predict_proba, batch 4096) and PyTorch (the same weights, nn.Embedding +
          nn.Linear, no_grad, batch 4096; when torch is installed: `make bench` installs it),
          each with 1 and 2 threads, taking turns; medians of --repeat runs.  With numba (the `fast`
          extra), also a compiled loop over the slot path's rows (compiled_scorer: what compiled
          per-window code would give, which the package's predict path does not have).
predict   `ner-window predict --file` on a 10M-token file (and a 1M-token one: the same peak RSS),
          text and jsonl, to /dev/null; this checkout against another one (--before, e.g. main
          unpacked with `git archive main | tar -x -C /tmp/before`), taking turns.  Wall-clock
          from spawn to exit (start-up included), peak RSS of the process (wait4).
tag       `ner-window tag --workers 1` and `--workers 2` on a 20M-token corpus (4 files), jsonl,
          taking turns; the tagging phase (the CLI's own clock: first task to last part, after the
          cluster has started) and the whole command; the workers' peak RSS from the manifest.

The corpora are the bundled corpus's sentences (data/*.txt, tokens joined by spaces, one
sentence a line), shuffled and repeated, written to --workdir (/tmp/ner-window-bench) once.
The load average is printed before and after each section: the cores are shared, and a ratio
means something only when the machine was quiet (1-minute load under ~0.7).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ner_window.artifact import load_model  # noqa: E402
from ner_window.fast import predict_proba  # noqa: E402
from ner_window.slots import SlotScorer  # noqa: E402
from ner_window.windows import make_windows  # noqa: E402


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


# ------------------------------------------------------------------ corpora


def sentences() -> list[str]:
    out = []
    for name in ("train.txt", "dev.txt", "test.txt"):
        for block in (ROOT / "data" / name).read_text(encoding="utf-8").split("\n\n"):
            tokens = [ln.split()[0] for ln in block.splitlines() if ln.strip() and not ln.startswith("-DOCSTART-")]
            if tokens:
                out.append(" ".join(tokens))
    return out


def corpus(path: Path, n_tokens: int, seed: int = 0) -> Path:
    """``n_tokens`` tokens of shuffled bundled sentences at ``path`` (kept: made once)."""
    if path.exists():
        return path
    sents, rng, total = sentences(), random.Random(seed), 0
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as out:
        while total < n_tokens:
            rng.shuffle(sents)
            for s in sents:
                out.write(s + "\n")
                total += s.count(" ") + 1
                if total >= n_tokens:
                    break
    tmp.rename(path)
    return path


# ------------------------------------------------------------------ scoring


def torch_scorer(model, threads: int):
    try:
        import torch
    except ImportError:
        return None
    p = model.params
    torch.set_num_threads(threads)
    E, C = torch.from_numpy(p.E), torch.from_numpy(p.C)
    W, b = torch.from_numpy(np.ascontiguousarray(p.W)), torch.from_numpy(p.b)
    u, c = torch.from_numpy(p.u.reshape(-1, p.hidden)), torch.from_numpy(np.atleast_1d(p.c))

    def score(ids, cas, batch=4096):
        out = []
        with torch.no_grad():
            for a in range(0, len(ids), batch):
                i, k = torch.from_numpy(ids[a:a + batch]), torch.from_numpy(cas[a:a + batch])
                x = torch.cat([E[i], C[k]], dim=2).reshape(len(i), -1)  # [e; c] per slot, as model.gather
                out.append(torch.sigmoid(torch.tanh(x @ W.T + b) @ u.T + c))
        return torch.cat(out)

    return score


# Eigen's float tanh (generic_fast_tanh_float): x·P(x²)/Q(x²) on x clamped to ±7.905, a few ulp from tanh;
# written out so that the compiler vectorises it, which a call to libm's tanhf would prevent
_TANH_P = (-2.76076847742355e-16, 2.00018790482477e-13, -8.60467152213735e-11, 5.12229709037114e-08,
           1.48572235717979e-05, 6.37261928875436e-04, 4.89352455891786e-03)
_TANH_Q = (1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03, 4.89352518554385e-03)


def compiled_scorer(scorer: SlotScorer):
    """What compiled per-window code would give (issue 19's open design question; never in the package):
    one numba loop over the rows the slot path gathers, z = Σ_k T_k[a_k] (b in the centre rows), tanh,
    s = uᵀh + c, fused per window.  None without numba, or for a model other than binary with tanh."""
    try:
        from numba import njit
    except ImportError:
        return None
    if scorer.activation != "tanh" or len(scorer.U) != 1:
        return None
    p0, p1, p2, p3, p4, p5, p6 = (np.float32(v) for v in _TANH_P)
    q0, q1, q2, q3 = (np.float32(v) for v in _TANH_Q)
    clamp = np.float32(7.90531110763549805)

    @njit(fastmath=True)
    def kernel(T, R, u, c, out):
        N, w = R.shape
        H = T.shape[1]
        z = np.empty(H, np.float32)
        for i in range(N):
            r0 = R[i, 0] * w
            for j in range(H):
                z[j] = T[r0, j]
            for k in range(1, w):
                r = R[i, k] * w + k
                for j in range(H):
                    z[j] += T[r, j]
            s = np.float32(0.0)
            for j in range(H):
                x = min(max(z[j], -clamp), clamp)
                x2 = x * x
                num = ((((((p0 * x2 + p1) * x2 + p2) * x2 + p3) * x2 + p4) * x2 + p5) * x2 + p6) * x
                den = ((q0 * x2 + q1) * x2 + q2) * x2 + q3
                s += num / den * u[j]
            out[i] = s + c

    T, u = scorer.T.reshape(-1, scorer.H), np.ascontiguousarray(scorer.U[0])
    c = np.float32(0.0 if scorer.c is None else scorer.c[0])

    def score(ids, cas):
        R = scorer.rows(scorer.type_ids(ids, cas))  # the cache holds every row already (bench_scoring)
        out = np.empty(len(R), np.float32)
        kernel(T, R, u, c, out)
        return out

    return score


def bench_scoring(args) -> dict:
    model = load_model(args.model)
    # E in memory, as training leaves it: load_model maps it from params.npz in 4 kB pages, and the matrix
    # product, which gathers E's rows for every window, runs ~1.5x slower from the mapping (TLB misses on
    # random rows; the slot path reads E only to compute new rows). Both paths read the same copy.
    model.params = dataclasses.replace(model.params, E=np.array(model.params.E))
    lines = corpus(Path(args.workdir) / "scoring.txt", args.scoring_windows).read_text(encoding="utf-8").split("\n")
    w = make_windows([ln.split() for ln in lines if ln], model.vocab, model.radius)
    ids, cas, act = w.ids, w.casing, model.activation
    N = len(ids)
    runs = {}
    slot = {t: SlotScorer(model.params, act, threads=t) for t in (1, 2)}
    t0 = time.perf_counter()
    slot[1].scores_windows(ids, cas)
    cold = time.perf_counter() - t0
    slot[2].scores_windows(ids, cas)
    impls = {"slots, 1 thread": lambda: slot[1].probabilities(slot[1].scores_windows(ids, cas)),
             "slots, 2 threads": lambda: slot[2].probabilities(slot[2].scores_windows(ids, cas)),
             "matrix product (predict_proba), 1 thread": lambda: predict_proba(model.params, ids, cas, act, 4096, 1),
             "matrix product (predict_proba), 2 threads": lambda: predict_proba(model.params, ids, cas, act, 4096, 2)}
    compiled, compiled_error = compiled_scorer(slot[1]), None
    if compiled is not None:  # compiled once here, and checked against the slot path's s
        compiled_error = float(np.abs(compiled(ids, cas) - slot[1].scores_windows(ids, cas)).max())
        impls["compiled slot loop (numba; not in the package)"] = lambda: compiled(ids, cas)
    for t in (1, 2):
        score = torch_scorer(model, t)
        if score is not None:
            impls[f"PyTorch, {t} thread{'s' * (t > 1)}"] = (lambda score=score, t=t: (_torch_threads(t), score(ids, cas)))
    print(load(), file=sys.stderr)
    for _ in range(args.repeat):
        for name, fn in impls.items():
            t0 = time.perf_counter()
            fn()
            runs.setdefault(name, []).append(N / (time.perf_counter() - t0))
    print(load(), file=sys.stderr)
    return {"windows": N, "rows": slot[1].n_rows, "cold_first_pass_windows_per_s": N / cold,
            "compiled_max_abs_ds": compiled_error,
            "windows_per_s": {k: statistics.median(v) for k, v in runs.items()},
            "min_max": {k: [min(v), max(v)] for k, v in runs.items()},
            "torch": "torch" in sys.modules}


def _torch_threads(t: int) -> None:
    import torch

    torch.set_num_threads(t)


# ------------------------------------------------------------------ predict --file


def launcher(checkout: Path | None) -> list[str]:
    """A Python command that runs ``checkout``'s ner-window CLI (this one's when None)."""
    if checkout is None:
        return [sys.executable, "-c", "from ner_window.cli import main; main()"]
    code = ("import sys; sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f).lower()]; "
            f"sys.path.insert(0, {str(checkout)!r}); from ner_window.cli import main; main()")
    return [sys.executable, "-c", code]


def timed(cmd: list[str]) -> tuple[float, float, str]:
    """(seconds, peak RSS MB, stdout) of ``cmd``, from spawn to exit; stdout to /dev/null unless it is `tag`."""
    t0 = time.perf_counter()
    keep = "tag" in cmd
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE if keep else subprocess.DEVNULL, stderr=subprocess.PIPE,
                            cwd=ROOT)
    out, err = proc.communicate()  # reaps the child: its rusage is then in RUSAGE_CHILDREN, not wait4's
    seconds = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd[3:])}: exit {proc.returncode}\n{err.decode('utf-8', 'replace')}")
    return seconds, 0.0, (out or b"").decode("utf-8")


def timed_rss(cmd: list[str]) -> tuple[float, float]:
    """(seconds, peak RSS MB) of ``cmd`` to /dev/null, from spawn to exit.  The peak is GNU time's
    (/usr/bin/time -f %M): a forked child's own rusage would count the pages of this process too."""
    t0 = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          cwd=ROOT)
    seconds = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd[3:])}: exit {proc.returncode}\n{proc.stderr.decode()}")
    return seconds, int(proc.stderr.decode().strip().splitlines()[-1]) / 1024


def bench_predict(args) -> dict:
    files = {"1M": corpus(Path(args.workdir) / "c1m.txt", args.predict_tokens // 10),
             "10M": corpus(Path(args.workdir) / "c10m.txt", args.predict_tokens)}
    n_tokens = {k: sum(ln.count(" ") + 1 for ln in open(f, encoding="utf-8") if ln.strip()) for k, f in files.items()}
    sides = {"this checkout": None}
    if args.before:
        sides["before"] = Path(args.before)
    results: dict = {}
    print(load(), file=sys.stderr)
    for _ in range(args.repeat):
        for fmt in ("text", "jsonl"):
            for side, checkout in sides.items():
                for size, path in files.items():
                    if size == "1M" and side != "this checkout":
                        continue
                    cmd = launcher(checkout) + ["predict", "--model", args.model, "--file", str(path), "--format", fmt]
                    seconds, rss = timed_rss(cmd)
                    results.setdefault(f"{side}, {fmt}, {size}", []).append((n_tokens[size] / seconds, rss))
    print(load(), file=sys.stderr)
    return {"tokens": n_tokens, "tokens_per_s": {k: statistics.median(t for t, _ in v) for k, v in results.items()},
            "min_max": {k: [min(t for t, _ in v), max(t for t, _ in v)] for k, v in results.items()},
            "peak_rss_mb": {k: max(r for _, r in v) for k, v in results.items()}}


# ------------------------------------------------------------------ tag --workers


def bench_tag(args) -> dict:
    per_file = args.tag_tokens // 4
    files = [corpus(Path(args.workdir) / f"tag{i}.txt", per_file, seed=i + 1) for i in range(4)]
    out = Path(args.workdir) / "tag-out"
    runs: dict = {}
    print(load(), file=sys.stderr)
    for _ in range(args.repeat):
        for workers in (1, 2):
            shutil.rmtree(out, ignore_errors=True)
            cmd = launcher(None) + ["tag", *map(str, files), "--out", str(out), "--model", args.model,
                                    "--workers", str(workers), "--partition-mb", str(args.partition_mb)]
            seconds, _, said = timed(cmd)
            manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
            phase = float(re.search(r"tokens: ([0-9.]+) s", said).group(1))  # the CLI's clock: the tagging
            runs.setdefault(workers, []).append({"wall": seconds, "phase": phase, "tokens": manifest["tokens"],
                                                 "rss": max(r["worker_peak_rss_mb"] for r in manifest["parts"]),
                                                 "parts": len(manifest["parts"])})
    print(load(), file=sys.stderr)
    summary = {}
    for workers, rs in runs.items():
        summary[f"--workers {workers}"] = {
            "tokens": rs[0]["tokens"], "parts": rs[0]["parts"],
            "tagging_tokens_per_s": statistics.median(r["tokens"] / r["phase"] for r in rs),
            "wall_tokens_per_s": statistics.median(r["tokens"] / r["wall"] for r in rs),
            "tagging_s": [round(r["phase"], 2) for r in rs], "wall_s": [round(r["wall"], 2) for r in rs],
            "worker_peak_rss_mb": max(r["rss"] for r in rs)}
    one, two = summary["--workers 1"], summary["--workers 2"]
    summary["ratio, tagging phase (2 workers / 1)"] = two["tagging_tokens_per_s"] / one["tagging_tokens_per_s"]
    summary["ratio, whole command (2 workers / 1)"] = two["wall_tokens_per_s"] / one["wall_tokens_per_s"]
    return summary


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="runs/base")
    ap.add_argument("--only", choices=("scoring", "predict", "tag"), action="append")
    ap.add_argument("--before", help="another checkout of ner-window for `predict` (e.g. main, git archive'd)")
    ap.add_argument("--workdir", default="/tmp/ner-window-bench")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--scoring-windows", type=int, default=1_000_000)
    ap.add_argument("--predict-tokens", type=int, default=10_000_000)
    ap.add_argument("--tag-tokens", type=int, default=20_000_000)
    ap.add_argument("--partition-mb", type=float, default=8.0)
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke test, not a measurement")
    ap.add_argument("--format", choices=("text", "json"), default="text")
    args = ap.parse_args(argv)
    if args.quick:
        args.scoring_windows, args.predict_tokens, args.tag_tokens, args.repeat = 20_000, 100_000, 200_000, 1
        args.partition_mb, args.workdir = 0.2, args.workdir + "-quick"
    res = {}
    for section, fn in (("scoring", bench_scoring), ("predict", bench_predict), ("tag", bench_tag)):
        if not args.only or section in args.only:
            res[section] = fn(args)
    if args.format == "json":
        print(json.dumps(res, indent=1))
        return
    for section, r in res.items():
        print(f"\n## {section}")
        for key in ("windows_per_s", "tokens_per_s"):
            for name, v in r.get(key, {}).items():
                extra = f"  peak RSS {r['peak_rss_mb'][name]:.0f} MB" if "peak_rss_mb" in r else ""
                print(f"{name:<48} {v / 1e3:>9,.0f}k/s  (min-max {r['min_max'][name][0] / 1e3:,.0f}k-"
                      f"{r['min_max'][name][1] / 1e3:,.0f}k){extra}")
        if r.get("compiled_max_abs_ds") is not None:
            print(f"compiled loop against the slot path: max |Δs| {r['compiled_max_abs_ds']:.2g}")
        if section == "tag":
            for name, v in r.items():
                print(f"{name:<30} {v if not isinstance(v, float) else f'{v:.2f}'}")


if __name__ == "__main__":
    main()
