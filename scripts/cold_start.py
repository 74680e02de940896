"""Cold `ner-window predict` for several models, side by side (issue 15: a gazetteer must not slow it).

    python scripts/cold_start.py MODEL_DIR [MODEL_DIR ...] [--repeat 11] [--text "..."]

Each round starts one fresh `python -m ner_window.cli predict --model M TEXT` per model, in turn
(interleaved, so a change in the machine's load hits every model alike), and times it from spawn to
exit.  Prints the median, min and max per model, the ratio of each median to the first model's, and
the 1-minute load average before and after (the figure means something only on a quiet machine).

First it compiles the ner_window package to bytecode (``__pycache__``), as ``pip install`` does and
as the first run of an editable install does unless PYTHONDONTWRITEBYTECODE is set (it is on the
project's build machines): without bytecode every run compiles ner_window's modules again, ~75 ms
of the cold start that no installed copy pays.  ``--no-compile`` measures that case.
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import time


def one_run(model: str, text: str) -> float:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONSTARTUP"}
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "ner_window.cli", "predict", "--model", model, text],
                         capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"cold_start.py: predict with {model} failed: {out.stderr.strip()}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--repeat", type=int, default=11)
    ap.add_argument("--text", default="museums in Paris are amazing")
    ap.add_argument("--no-compile", action="store_true", help="do not compile ner_window to bytecode first")
    args = ap.parse_args(argv)
    if not args.no_compile:
        import ner_window

        compileall.compile_dir(os.path.dirname(ner_window.__file__), quiet=1)
    load_before = os.getloadavg()[0]
    for model in args.models:  # warm the page cache: the first read of a model is not what is measured
        one_run(model, args.text)
    times: dict[str, list[float]] = {m: [] for m in args.models}
    for _ in range(args.repeat):
        for model in args.models:
            times[model].append(one_run(model, args.text))
    load_after = os.getloadavg()[0]
    first = statistics.median(times[args.models[0]])
    for model, ts in times.items():
        med = statistics.median(ts)
        print(f"{model}: median {med:.3f} s (min {min(ts):.3f}, max {max(ts):.3f}, {len(ts)} runs), "
              f"{med / first:.2f}x the first")
    print(f"1-minute load average: {load_before:.2f} before, {load_after:.2f} after")
    return 0


if __name__ == "__main__":
    sys.exit(main())
