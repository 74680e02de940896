"""LOC entity F1 of the spaCy component on raw text, beside `ner-window evaluate` on the same file (issue 20).

    python scripts/spacy_f1.py MODEL_DIR [--data data/test.txt] [--scheme iob2] [--format text|json]

Each sentence of the labelled file is written back as text the way people write
it (no space before , . ; : ! ? ) 's n't, none inside quotes), tokenised by
``spacy.blank("en")`` and tagged by the ``ner_window`` component.  Its LOC
entities are matched with the gold LOC spans by character offsets: a prediction
counts when it starts and ends where a gold span does, as in conlleval.  Printed
beside ``evaluate_file``'s LOC entity scores (the file's own tokens), for the
component with ``align_tokens`` true (its default) and false.

A bad model directory or data file is reported on one line on stderr, exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

try:
    from ner_window.conll import entity_spans, read_conll
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from ner_window.conll import entity_spans, read_conll
from ner_window.errors import NerWindowError
from ner_window.evaluate import evaluate_file
from ner_window.metrics import prf

NO_SPACE_BEFORE = {",", ".", ";", ":", "!", "?", ")", "]", "%", "n't", "N'T"} | {
    a + c for a in ("'", "\u2019") for c in ("s", "S", "re", "ve", "ll", "d", "m")}
NO_SPACE_AFTER = {"(", "["}


def detokenize(tokens: list[str]) -> tuple[str, list[tuple[int, int]]]:
    """The text of a tokenised sentence and each token's (start, end) in it.

    ["museums", "in", "Paris", ",", '"', "France", '"', "."] -> 'museums in Paris, "France".'
    """
    text, offsets, in_quote, after_open = "", [], False, False
    for token in tokens:
        closing = token == '"' and in_quote
        glued = not text or token in NO_SPACE_BEFORE or closing or after_open or text[-1] in NO_SPACE_AFTER
        text += "" if glued else " "
        offsets.append((len(text), len(text) + len(token)))
        text += token
        after_open = token == '"' and not in_quote
        in_quote ^= token == '"'
    return text, offsets


def gold_location_spans(path: str, scheme: str, location_types: list[str]) -> list[tuple[str, set, list[str]]]:
    """(text, {(start, end) of each gold location}, the file's tokens) per sentence of a labelled file."""
    out = []
    for sentence in read_conll(path, scheme):
        text, offsets = detokenize(list(sentence.tokens))
        spans = {(offsets[a][0], offsets[b - 1][1]) for t, a, b in entity_spans(sentence.tags) if t in location_types}
        out.append((text, spans, list(sentence.tokens)))
    return out


def spacy_location_scores(model_dir: str, gold: list[tuple[str, set, list[str]]], align_tokens: bool = True,
                          batch_size: int = 256) -> dict:
    """LOC entity P/R/F1 of spacy.blank("en") + ner_window on the texts of ``gold``, matched by offsets."""
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("ner_window", config={"model": str(model_dir), "align_tokens": align_tokens})
    n_correct = n_predicted = n_gold = n_differ = 0
    for doc, (_, spans, tokens) in zip(nlp.pipe([text for text, _, _ in gold], batch_size=batch_size), gold):
        n_differ += [t.text for t in doc if not t.is_space] != tokens
        predicted = {(e.start_char, e.end_char) for e in doc.ents if e.label_ == "LOC"}
        n_correct += len(predicted & spans)
        n_predicted += len(predicted)
        n_gold += len(spans)
    return {**prf(n_correct, n_predicted, n_gold), "sentences_tokenised_differently": n_differ}


def compare(model_dir: str, data: str, scheme: str, location_types: list[str]) -> dict:
    gold = gold_location_spans(data, scheme, location_types)
    return {
        "model": str(model_dir), "data": str(data), "sentences": len(gold),
        "evaluate": evaluate_file(model_dir, data, scheme=scheme)["loc"]["entity"],
        "spacy": spacy_location_scores(model_dir, gold, align_tokens=True),
        "spacy_align_tokens_false": spacy_location_scores(model_dir, gold, align_tokens=False),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--data", default="data/test.txt")
    parser.add_argument("--scheme", default="iob2", help="tag scheme of --data (CoNLL-2003: iob1)")
    parser.add_argument("--location-types", nargs="+", default=["LOC"])
    parser.add_argument("--format", choices=["text", "json"], default="text")
    args = parser.parse_args(argv)
    try:
        result = compare(args.model, args.data, args.scheme, args.location_types)
    except NerWindowError as e:
        print(f"spacy_f1.py: error: {e}", file=sys.stderr)
        return 2
    if args.format == "json":
        print(json.dumps(result, indent=1))
        return 0
    print(f"{result['data']}: {result['sentences']:,} sentences, {result['spacy']['sentences_tokenised_differently']:,} "
          f"of them tokenised differently by spaCy; model {result['model']}")
    for name, key in (("ner-window evaluate (file tokens)", "evaluate"), ("spaCy tokens, align_tokens=true", "spacy"),
                      ("spaCy tokens, align_tokens=false", "spacy_align_tokens_false")):
        s = result[key]
        print(f"  {name:<36} LOC entity P {s['precision']:.4f}  R {s['recall']:.4f}  F1 {s['f1']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
