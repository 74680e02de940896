"""Build the bundled corpus (data/{train,dev,test}.txt) from its annotated source.

The source (data/source/*.txt) is written by hand for this project: one
sentence per line, tokens separated by single spaces (CoNLL-2003 tokenisation:
punctuation split off, "U.S." kept whole, possessive 's split), entities marked
inline as ``[New York|LOC]``.  A line ``=== title`` starts a document; lines
starting with ``#`` are comments.

Each document goes to train, dev or test by a hash of its file name and title
(14 : 3 : 3 of every 20 hash values), so a document's split never changes when
other documents or files are added, and every genre lands in every split.  Output is
two-column CoNLL (``token TAG``) in IOB2, a ``-DOCSTART- O`` line before each
document, a blank line after each sentence.

    python scripts/build_corpus.py            # rebuild data/*.txt
    python scripts/build_corpus.py --check    # validate the source, print counts, write nothing

``--check`` also tokenises each sentence again with ner-window's own tokeniser
(the one ``predict`` uses) and reports every line whose tokens differ, so the
corpus teaches the model the tokens it will see at prediction time.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from collections import Counter
from pathlib import Path

TYPES = ("PER", "LOC", "ORG", "MISC")
ENTITY = re.compile(r"\[([^\[\]|]+)\|([A-Z]+)\]")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from ner_window.tokenize import token_spans  # noqa: E402
# 20 documents -> 14 train, 3 dev, 3 test
SPLIT_PATTERN = ["train"] * 7 + ["dev", "train", "test"] + ["train"] * 4 + ["dev", "train", "test", "dev", "train", "test"]


def split_of(key: str) -> str:
    """train / dev / test for a document key ("file.txt:title" + "#k" for its k-th repeat): stable under additions."""
    h = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big")
    return SPLIT_PATTERN[h % len(SPLIT_PATTERN)]


def parse_line(line: str, where: str) -> list[tuple[str, str]]:
    """One annotated source line -> [(token, IOB2 tag)]."""
    pairs: list[tuple[str, str]] = []
    pos = 0
    for m in ENTITY.finditer(line):
        pairs += [(t, "O") for t in line[pos:m.start()].split()]
        words, etype = m.group(1).split(), m.group(2)
        if etype not in TYPES:
            raise SystemExit(f"{where}: unknown entity type {etype!r}; use one of {', '.join(TYPES)}")
        if not words:
            raise SystemExit(f"{where}: empty entity")
        pairs += [(w, ("B-" if i == 0 else "I-") + etype) for i, w in enumerate(words)]
        pos = m.end()
    pairs += [(t, "O") for t in line[pos:].split()]
    for tok, _ in pairs:
        if any(ch in tok for ch in "[]|"):
            raise SystemExit(f"{where}: stray bracket or bar in token {tok!r} (entity markup is [words|TYPE])")
    return pairs


def tokenisation_problem(pairs: list[tuple[str, str]]) -> str | None:
    """None when ner-window's tokeniser splits the sentence's text into exactly its tokens, else a description."""
    tokens = [tok for tok, _ in pairs]
    again = [w for w, _, _ in token_spans(" ".join(tokens))]
    if again == tokens:
        return None
    k = next((i for i, (a, b) in enumerate(zip(tokens, again)) if a != b), min(len(tokens), len(again)))
    return f"token {k + 1}: the source has {tokens[k:k + 3]}, the tokeniser gives {again[k:k + 3]}"


def read_source(paths: list[Path], problems: list[str] | None = None,
                keys: list[str] | None = None) -> list[list[list[tuple[str, str]]]]:
    """All documents: a document is a list of sentences, a sentence a list of (token, tag).

    problems: when given, a tokenisation mismatch of each line is appended to it (see --check).
    keys: when given, each document's key for split_of() is appended to it (documents with no
    sentence are dropped from both).
    """
    docs: list[list[list[tuple[str, str]]]] = []
    doc_keys: list[str] = []
    seen: Counter = Counter()
    for path in paths:
        for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("==="):
                docs.append([])
                key = f"{path.name}:{line[3:].strip()}"
                seen[key] += 1
                doc_keys.append(key if seen[key] == 1 else f"{key}#{seen[key]}")
                continue
            if not docs:
                raise SystemExit(f"{path}:{n}: a sentence before the first '=== title' document line")
            docs[-1].append(parse_line(line, f"{path}:{n}"))
            if problems is not None and (problem := tokenisation_problem(docs[-1][-1])):
                problems.append(f"{path.relative_to(ROOT)}:{n}: {problem}")
    if keys is not None:
        keys += [k for k, d in zip(doc_keys, docs) if d]
    return [d for d in docs if d]


def counts(docs) -> dict:
    c = Counter()
    for doc in docs:
        c["documents"] += 1
        for sent in doc:
            c["sentences"] += 1
            c["tokens"] += len(sent)
            for _, tag in sent:
                if tag.startswith("B-"):
                    c["ent_" + tag[2:]] += 1
    return dict(c)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="validate and count only")
    ap.add_argument("--out", default=str(ROOT / "data"), help="where to write train/dev/test.txt [data/]")
    args = ap.parse_args()
    paths = sorted((ROOT / "data" / "source").glob("*.txt"))
    problems: list[str] = []
    keys: list[str] = []
    docs = read_source(paths, problems if args.check else None, keys)
    splits: dict[str, list] = {"train": [], "dev": [], "test": []}
    for key, doc in zip(keys, docs):
        splits[split_of(key)].append(doc)
    print(f"all: {counts(docs)}")
    for name, part in splits.items():
        print(f"{name}: {counts(part)}")
    if args.check:
        for path in paths:
            print(f"{path.relative_to(ROOT)}: {counts(read_source([path]))}")
        for problem in problems:
            print(problem)
        print(f"{len(problems)} line(s) tokenised differently by ner-window's tokeniser")
        return 1 if problems else 0
    for name, part in splits.items():
        lines = []
        for doc in part:
            lines += ["-DOCSTART- O", ""]
            for sent in doc:
                lines += [f"{tok} {tag}" for tok, tag in sent] + [""]
        (Path(args.out) / f"{name}.txt").write_text("\n".join(lines), encoding="utf-8")
    print("wrote", ", ".join(str(Path(args.out) / f"{n}.txt") for n in splits))


if __name__ == "__main__":
    sys.exit(main())
