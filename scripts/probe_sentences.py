"""The sentences of issue 15 that a new user tried, tagged by each model (what `ner-window predict` prints).

    python scripts/probe_sentences.py MODEL_DIR [MODEL_DIR ...] [--json OUT]

Each sentence is tagged with the model's own threshold; after it, P(location) of the words the
sentence is about (the places, and the names that are not places).  Use it to see what a gazetteer
or case augmentation changes on the cases the issue names: lowercase and ALL CAPS places, names GloVe
lacks, and names that are also places (Paris Hilton, Jordan the player, Liverpool the club).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

try:
    from ner_window.tagger import Tagger, format_tagged
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from ner_window.tagger import Tagger, format_tagged

# (sentence, the words whose P(location) is printed)
SENTENCES = [
    ("i live in new york city", ["new", "york", "city"]),
    ("just landed in tokyo", ["tokyo"]),
    ("BREAKING: MASSIVE EARTHQUAKE HITS SOUTHERN TURKEY", ["EARTHQUAKE", "TURKEY"]),
    ("Paris Hilton arrived in Paris", ["Paris"]),
    ("London, Paris, Berlin", ["London", "Paris", "Berlin"]),
    ("Jordan scored 31 points as Chicago beat Boston", ["Jordan", "Chicago", "Boston"]),
    ("King Abdullah of Jordan met the prime minister in Amman", ["Jordan", "Amman"]),
    ("Liverpool beat Chelsea 2-1 at Anfield", ["Liverpool", "Chelsea", "Anfield"]),
    ("the ferry from Liverpool to Dublin was cancelled", ["Liverpool", "Dublin"]),
    ("Georgia Mills won the Washington marathon", ["Georgia", "Washington"]),
    ("we hiked from Mestia to Ushguli in Svaneti", ["Mestia", "Ushguli", "Svaneti"]),
    ("flights to ouagadougou and bamako are delayed", ["ouagadougou", "bamako"]),
    ("hoy hace calor en madrid y no hay agua", ["hoy", "y", "madrid"]),
    ("Reading beat Swindon 3-0 ; I was reading in Reading", ["Reading"]),
]


def probe(tagger: Tagger) -> list[dict]:
    out = []
    for text, words in SENTENCES:
        tagged = tagger.tag(text)
        p = {}
        for word in words:
            p[word] = [round(t.p, 3) for t in tagged.tokens if t.text == word]
        out.append({"text": text, "tagged": format_tagged(tagged), "p": p})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--json", help="write every model's results to this file")
    args = ap.parse_args(argv)
    results = {m: probe(Tagger.load(m)) for m in args.models}
    for i, (text, _) in enumerate(SENTENCES):
        print(text)
        for m, rows in results.items():
            ps = "  ".join(f"{w} {'/'.join(f'{v:.2f}' for v in vs)}" for w, vs in rows[i]["p"].items())
            print(f"  {m}: {rows[i]['tagged']}    [p: {ps}]")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
