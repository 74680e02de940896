"""Which boundaries a model's wrong LOC spans disagree on, on the Broad Twitter Corpus (issue 15).

    python scripts/btc_boundaries.py MODEL_DIR [--btc DIR] [--examples N]

The model tags the cleaned BTC (all six files, as scripts/robustness.py reads them) through
``ner_window.evaluate.evaluate_file`` (its ``--predictions`` file); every predicted LOC span that is
not exactly a gold LOC span is put in one row by the gold entity it overlaps (the first one, in
token order) and how:

    no gold entity                      overlaps nothing
    PER / ORG: same span                exactly a gold person / organisation
    ORG: place inside an organisation   gold ORG is longer and has an organisation word after the
                                        first token (Airlines, Police, Council, Times, United, ...)
    LOC: gold joins "place , region"    the gold LOC holds a comma (Las Vegas , NV)
    LOC: gold takes a split-off "."     the gold LOC holds a "." token the prediction lacks (St . / U . S .)
    LOC: gold starts with the/to/at     the gold LOC starts with a determiner or preposition
    LOC: gold starts with a direction   East / Western / Central ... the prediction lacks
    LOC: gold ends in a facility noun   Station, Hospital, Street, river, airport ... the prediction lacks
    ... : other                         any other overlap

Prints a markdown table (count per row and a few examples).  Nothing is written into the project.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

try:
    from ner_window.conll import entity_spans, read_conll
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from ner_window.conll import entity_spans, read_conll
from ner_window.evaluate import evaluate_file
from ner_window.errors import NerWindowError

ROOT = Path(__file__).resolve().parent.parent
ORG_WORDS = frozenset("airlines airways air police council times news post herald weekly university school "
                      "college club fc united city town rovers".split())
FACILITY_WORDS = frozenset("street st rd road avenue blvd station hospital centre center hall house university "
                           "library gallery park arena airport club room bay sea river border region coast hills "
                           "glacier interchange bypass zoo church court farm flats hotel embassy parliament "
                           "district".split())
DIRECTION_WORDS = frozenset("east west north south eastern western northern southern central nth rural".split())
DETERMINERS = frozenset("the to at".split())


def boundary_kind(pred: list[str], gold: list[str], gold_type: str | None) -> str:
    """The row of one predicted LOC span (its tokens) against the gold entity it overlaps (None: nothing).

    >>> boundary_kind(["Malaysia"], ["Malaysia", "Airlines"], "ORG")
    'ORG: place inside an organisation'
    >>> boundary_kind(["Aldgate"], ["Aldgate", "."], "LOC")
    'LOC: gold takes a split-off "."'
    """
    if gold_type is None:
        return "no gold entity"
    if pred == gold:
        return f"{gold_type}: same span"
    low = [w.lower().lstrip("#") for w in gold]
    if gold_type == "ORG" and len(gold) > len(pred) and ORG_WORDS & set(low[1:]):
        return "ORG: place inside an organisation"
    if gold_type != "LOC":
        return f"{gold_type}: other"
    if "," in gold:
        return 'LOC: gold joins "place , region"'
    if "." in gold and "." not in pred:
        return 'LOC: gold takes a split-off "."'
    if low[0] in DETERMINERS:
        return "LOC: gold starts with the/to/at"
    if low[0] in DIRECTION_WORDS and pred[0].lower() not in DIRECTION_WORDS:
        return "LOC: gold starts with a direction"
    if low[-1] in FACILITY_WORDS and pred[-1].lower() != low[-1]:
        return "LOC: gold ends in a facility noun"
    return "LOC: other"


def wrong_spans(tokens, gold_tags, pred_tags) -> list[tuple[str, str, str]]:
    """(row, predicted text, gold text) for every predicted LOC span of one sentence that is not a gold LOC.

    >>> wrong_spans("at Malaysia Airlines in Paris".split(), ["O", "B-ORG", "I-ORG", "O", "B-LOC"],
    ...             ["O", "B-LOC", "O", "O", "B-LOC"])
    [('ORG: place inside an organisation', 'Malaysia', 'Malaysia Airlines')]
    """
    gold = entity_spans(gold_tags)
    out = []
    for typ, a, b in entity_spans(pred_tags):
        if typ != "LOC" or ("LOC", a, b) in gold:
            continue
        hit = next(((t, c, d) for t, c, d in gold if c < b and a < d), None)
        gold_tokens = list(tokens[hit[1]:hit[2]]) if hit else []
        out.append((boundary_kind(list(tokens[a:b]), gold_tokens, hit[0] if hit else None),
                    " ".join(tokens[a:b]), " ".join(gold_tokens)))
    return out


def table(rows: list[tuple[str, str, str]], examples: int) -> str:
    counts, seen = Counter(r[0] for r in rows), defaultdict(list)
    for kind, pred, gold in rows:
        if len(seen[kind]) < examples:
            seen[kind].append(f"`{pred}`" + (f" / gold `{gold}`" if gold and gold != pred else ""))
    out = [f"| predicted LOC span that is not a gold LOC ({len(rows):,}) | count | examples |", "|---|---:|---|"]
    out += [f"| {kind} | {n:,} | {'; '.join(seen[kind])} |" for kind, n in sorted(counts.items())]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("--btc", default=str(ROOT.parent / "shared" / "data" / "btc"))
    ap.add_argument("--examples", type=int, default=3)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT / "scripts"))
    from robustness import cleaned_btc

    try:
        with tempfile.TemporaryDirectory() as tmp:
            path, _ = cleaned_btc(Path(args.btc), Path(tmp) / "btc.conll")
            evaluate_file(args.model, path, scheme="iob2", predictions=Path(tmp) / "pred.txt")
            gold = read_conll(path, "iob2")
            pred = read_conll(Path(tmp) / "pred.txt", "iob2")  # token gold pred: the last column
    except NerWindowError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    rows = [r for g, p in zip(gold, pred) for r in wrong_spans(g.tokens, g.tags, p.tags)]
    print(table(rows, args.examples))
    return 0


if __name__ == "__main__":
    sys.exit(main())
