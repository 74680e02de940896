"""List every string the bundled corpus annotates in more than one way, so that each is a decision.

    python scripts/corpus_consistency.py            # the table of ambiguous strings, with where they occur
    python scripts/corpus_consistency.py --check    # exit 1 if one is not recorded in data/decisions.tsv

A string is the casefolded token sequence of an entity ("Paris", "paris" and
"PARIS" are one string).  It is *ambiguous* when the annotated source
(data/source/*.txt) gives it two or more readings: two entity types (Liverpool
the city LOC, Liverpool the club ORG), or an entity type and O (Reading the town
LOC, "reading" the verb O: the same tokens outside every entity).

Every ambiguous string must be a decision, not an accident: data/decisions.tsv
records each one as ``string<TAB>readings<TAB>why``, readings sorted and joined by
"/" (``reading<TAB>LOC/O/ORG<TAB>the town, the verb, the club``).  ``--check``
fails on an ambiguous string that is not recorded there, and on a record whose
readings no longer match the corpus (so the file stays true).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from build_corpus import parse_line  # noqa: E402

DECISIONS = ROOT / "data" / "decisions.tsv"
MAX_LEN = 8  # longest entity (in tokens) looked for among the O tokens


def read_sentences(paths: list[Path]) -> list[tuple[str, list[tuple[str, str]]]]:
    """(file:line, [(token, IOB2 tag)]) for every sentence of the annotated source."""
    out = []
    for path in paths:
        for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            line = raw.strip()
            if line and not line.startswith(("#", "===")):
                name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
                out.append((f"{name}:{n}", parse_line(line, f"{path}:{n}")))
    return out


def entities(pairs: list[tuple[str, str]]) -> list[tuple[str, int, int]]:
    """(type, start, end) of the IOB2 entities of one sentence."""
    spans, start = [], None
    for i, (_, tag) in enumerate(pairs + [("", "O")]):
        if start is not None and not tag.startswith("I-"):
            spans.append((pairs[start][1][2:], start, i))
            start = None
        if tag.startswith("B-"):
            start = i
    return spans


def readings(sentences) -> tuple[dict[tuple, Counter], dict[tuple, dict[str, str]]]:
    """{string: Counter(reading -> count)} and one example place per (string, reading)."""
    seen: dict[tuple, Counter] = defaultdict(Counter)
    where: dict[tuple, dict[str, str]] = defaultdict(dict)
    for place, pairs in sentences:
        for etype, a, b in entities(pairs):
            key = tuple(t.casefold() for t, _ in pairs[a:b])
            seen[key][etype] += 1
            where[key].setdefault(etype, place)
    for place, pairs in sentences:
        words = [t.casefold() for t, _ in pairs]
        outside = [tag == "O" for _, tag in pairs]
        for a in range(len(pairs)):
            for b in range(a + 1, min(len(pairs), a + MAX_LEN) + 1):
                if not outside[b - 1]:
                    break
                key = tuple(words[a:b])
                if key in seen:
                    seen[key]["O"] += 1
                    where[key].setdefault("O", place)
    return seen, where


def ambiguous(seen: dict[tuple, Counter]) -> dict[str, Counter]:
    """The strings with two or more readings, as text."""
    return {" ".join(k): c for k, c in seen.items() if len(c) > 1}


def read_decisions(path: Path) -> dict[str, tuple[str, str]]:
    """{string: (readings, why)} from data/decisions.tsv (comment lines start with #)."""
    out = {}
    if not path.is_file():
        return out
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) != 3 or not all(c.strip() for c in cols):
            raise SystemExit(f"{path}:{n}: expected string<TAB>readings<TAB>why, found {line!r}")
        out[cols[0]] = (cols[1], cols[2])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="fail on an ambiguity data/decisions.tsv does not record")
    ap.add_argument("--source", default=str(ROOT / "data" / "source"), help="folder of annotated source files")
    ap.add_argument("--decisions", default=str(DECISIONS))
    args = ap.parse_args(argv)
    seen, where = readings(read_sentences(sorted(Path(args.source).glob("*.txt"))))
    found = ambiguous(seen)
    decisions = read_decisions(Path(args.decisions))
    problems = []
    for text, counts in sorted(found.items()):
        key = tuple(text.split())
        rd = "/".join(sorted(counts))
        shown = ", ".join(f"{r} {counts[r]} ({where[key][r]})" for r in sorted(counts))
        recorded = decisions.get(text)
        status = "" if recorded and recorded[0] == rd else ("  <- not in decisions" if not recorded else
                                                            f"  <- decisions say {recorded[0]}")
        if status:
            problems.append(text)
        if not args.check or status:
            print(f"{text!r}: {shown}{status}")
    stale = sorted(set(decisions) - set(found))
    for text in stale:
        print(f"{text!r}: recorded in {args.decisions} but no longer ambiguous in the corpus")
    print(f"{len(found)} ambiguous string(s); {len(problems)} not recorded as decisions; {len(stale)} stale record(s)")
    return 1 if args.check and (problems or stale) else 0


if __name__ == "__main__":
    sys.exit(main())
