"""Peak memory of `ner-window predict --file` on one huge line (issue 17), against the whole-line path.

    python scripts/bench_long_line.py [--model runs/latest] [--mb 50] [--whole-mb 5]

Writes a file holding one line of ``--mb`` MB of running text (no newline until the end),
runs ``ner-window predict --file F --format text`` and ``--format jsonl`` on it in fresh
processes, output to /dev/null, and prints each run's peak RSS (the kernel's ru_maxrss of
the child) and seconds.  For comparison it runs the path that tags a line whole
(Tagger.tag_lines + format_tagged, what predict did before issue 17) on a ``--whole-mb``
line, since a 50 MB line that way needs several GB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SENTENCE = "museums in Paris are amazing , said Ms. Smith of the U.S. on 1996-08-22 in New York City . "
WHOLE = """
import sys
from ner_window.tagger import Tagger, format_tagged
tagger = Tagger.load(sys.argv[1])
with open(sys.argv[2], encoding="utf-8") as f, open(sys.argv[3], "w", encoding="utf-8") as out:
    for tagged in tagger.tag_lines(f):
        out.write(format_tagged(tagged, sys.argv[4]) + "\\n")
"""


def one_line_file(directory: Path, megabytes: float) -> Path:
    path = directory / f"line_{megabytes:g}MB.txt"
    n = int(megabytes * 1e6) // len(SENTENCE)
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(n // 1000):
            f.write(SENTENCE * 1000)
        f.write(SENTENCE * (n % 1000) + "\n")
    return path


def peak_of(argv: list[str]) -> dict:
    """Run ``argv`` in a fresh process (a fresh one per run, so ru_maxrss is this run's alone)."""
    code = ("import resource, subprocess, sys, time\n"
            "t0 = time.perf_counter()\n"
            "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
            "secs = time.perf_counter() - t0\n"
            "print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, secs)\n")
    out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, check=True)
    rc, kb, secs = out.stdout.split()
    return {"rc": int(rc), "peak_mb": int(kb) / 1024, "seconds": float(secs)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="runs/latest")
    ap.add_argument("--mb", type=float, default=50)
    ap.add_argument("--whole-mb", type=float, default=5)
    args = ap.parse_args()
    cli = [sys.executable, "-m", "ner_window"]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        big, small = one_line_file(Path(tmp), args.mb), one_line_file(Path(tmp), args.whole_mb)
        for fmt in ("text", "jsonl"):
            r = peak_of([*cli, "predict", "--model", args.model, "--file", str(big), "--format", fmt])
            results.append({"path": "predict --file (pieces)", "MB": args.mb, "format": fmt, **r})
            print(json.dumps(results[-1]), flush=True)
        for fmt in ("text", "jsonl"):
            r = peak_of([sys.executable, "-c", WHOLE, args.model, str(small), os.devnull, fmt])
            results.append({"path": "tag_lines, the line whole", "MB": args.whole_mb, "format": fmt, **r})
            print(json.dumps(results[-1]), flush=True)
    print("\n| path | line | format | peak RSS | seconds |\n|---|---:|---|---:|---:|")
    for r in results:
        print(f"| {r['path']} | {r['MB']:g} MB | {r['format']} | {r['peak_mb']:.0f} MB | {r['seconds']:.1f} |")


if __name__ == "__main__":
    main()
