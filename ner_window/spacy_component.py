"""Stage 12: ner-window as a spaCy pipeline component (the ``spacy`` extra).

    >>> import spacy                                                              # doctest: +SKIP
    >>> nlp = spacy.blank("en")
    >>> nlp.add_pipe("ner_window", config={"model": "runs/latest"})
    >>> doc = nlp("museums in Paris are amazing")
    >>> doc.ents, doc.ents[0].label_, doc.ents[0]._.p_location
    ((Paris,), 'LOC', 0.99...)

The factory is registered through the ``spacy_factories`` entry point in
pyproject.toml, so installing ner-window is enough: spaCy imports this module
when it builds a pipeline.  The component reads the doc's tokens and writes
``doc.ents``; it never changes the tokens.  Its config:

* ``model``: a model or run directory [$NER_WINDOW_MODEL, else runs/latest].
* ``threshold``: P(location) at which a binary model tags LOC [the model's, tuned
  on dev]; a multiclass model takes the argmax class.
* ``overwrite_ents``: entities already on the doc are treated as spaCy's entity
  ruler treats them: false (default) drops a new entity that overlaps one, true
  removes the existing entities a new one overlaps.
* ``align_tokens``: the model was trained on CoNLL-2003 tokens, and spaCy cuts
  some text finer ("1997-05-12" -> 1997 | - | 05 | - | 12, "Paris-based" ->
  Paris | - | based).  With true (default) tokens that touch are scored as one
  word where ner-window's tokeniser keeps them together, and every piece gets that
  word's label and p, so each window looks like those the model learned from;
  where spaCy's tokens are the coarser ones ("U.S.'s" -> U.S. | 's) they are used
  as they are.  With false every spaCy token is one word.

The words of each sentence (``doc.sents`` when a component before this one set
sentence starts, else the whole doc), whitespace tokens left out, become windows
as in ``Tagger``; ``nlp.pipe(texts, batch_size=N)`` scores the windows of N docs
in one call.  P(location) is stored per token: ``doc._.p_location`` (a list,
None for whitespace tokens), ``token._.p_location``, and ``span._.p_location``,
the mean over the span's tokens, for any span (also entities set by others).
A saved pipeline (``nlp.to_disk``) refers to the model by the path in its config.
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator, Optional

from spacy.language import Language
from spacy.tokens import Doc, Span, Token
from spacy.util import minibatch

from .errors import ConfigError
from .tagger import Tagger
from .tokenize import token_spans

EXTENSION = "p_location"


def _token_p(token: Token) -> Optional[float]:
    p = token.doc._.get(EXTENSION)
    return None if p is None else p[token.i]


def _span_p(span: Span) -> Optional[float]:
    """The mean P(location) of the span's scored tokens (None if it has none)."""
    p = span.doc._.get(EXTENSION)
    values = [] if p is None else [v for v in p[span.start:span.end] if v is not None]
    return sum(values) / len(values) if values else None


def _register_extensions() -> None:
    if not Doc.has_extension(EXTENSION):
        Doc.set_extension(EXTENSION, default=None)
    if not Token.has_extension(EXTENSION):
        Token.set_extension(EXTENSION, getter=_token_p)
    if not Span.has_extension(EXTENSION):
        Span.set_extension(EXTENSION, getter=_span_p)


@Language.factory(
    "ner_window",
    assigns=["doc.ents", "token.ent_iob", "token.ent_type", f"doc._.{EXTENSION}"],
    default_config={"model": None, "threshold": None, "overwrite_ents": False, "align_tokens": True,
                    "scorer": {"@scorers": "spacy.ner_scorer.v1"}},
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
)
def make_ner_window(nlp: Language, name: str, model: Optional[str], threshold: Optional[float],
                    overwrite_ents: bool, align_tokens: bool, scorer: Optional[Callable]) -> "NerWindowComponent":
    """The component; the config keys are explained in the module docstring."""
    tagger = Tagger.load(model, threshold)
    if threshold is not None and not tagger.binary:
        raise ConfigError(f"ner_window component: threshold applies to binary models (window output); "
                          f"{tagger.rule} (leave threshold null)")
    return NerWindowComponent(tagger, name, overwrite_ents=overwrite_ents, align_tokens=align_tokens, scorer=scorer)


class NerWindowComponent:
    """Writes ``doc.ents`` and P(location) from a ner-window ``Tagger``; holds no other state."""

    def __init__(self, tagger: Tagger, name: str = "ner_window", overwrite_ents: bool = False,
                 align_tokens: bool = True, scorer: Optional[Callable] = None):
        _register_extensions()
        self.tagger = tagger
        self.name = name
        self.overwrite_ents = overwrite_ents
        self.align_tokens = align_tokens
        self.scorer = scorer

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(c for c in self.tagger.classes if c != "O")

    def __call__(self, doc: Doc) -> Doc:
        self.set_annotations([doc])
        return doc

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128) -> Iterator[Doc]:
        """``nlp.pipe(texts, batch_size=N)`` calls this with N (default ``nlp.batch_size``)."""
        for docs in minibatch(stream, size=batch_size):
            self.set_annotations(docs)
            yield from docs

    def set_annotations(self, docs: list[Doc]) -> None:
        """Tag every sentence of ``docs`` with one ``label_tokens_and_begins`` call, then write each doc."""
        sequences = [(doc, _units(words, bounds) if self.align_tokens else [[t] for t in words])
                     for doc in docs for bounds in [_boundaries(doc)] for words in _sequences(doc)]
        labelled, begins = self.tagger.label_tokens_and_begins([["".join(t.text for t in unit) for unit in units]
                                                                for _, units in sequences])
        found: dict[int, list[Span]] = {id(doc): [] for doc in docs}
        p_of: dict[int, list] = {id(doc): [None] * len(doc) for doc in docs}
        for k, ((doc, units), (labels, p)) in enumerate(zip(sequences, labelled)):
            for unit, p_unit in zip(units, p):
                for token in unit:
                    p_of[id(doc)][token.i] = p_unit
            found[id(doc)] += _runs(doc, units, labels, None if begins is None else begins[k])
        for doc in docs:
            doc._.set(EXTENSION, p_of[id(doc)])
            doc.ents = _merge(list(doc.ents), found[id(doc)], self.overwrite_ents)

    def score(self, examples, **kwargs) -> dict:
        """spaCy's NER scores (ents_p, ents_r, ents_f, per type) for ``nlp.evaluate``."""
        return self.scorer(examples, **kwargs) if self.scorer else {}


def _sequences(doc: Doc) -> list[list[Token]]:
    """The token sequences that become windows: each sentence (or the doc), without whitespace tokens."""
    parts = doc.sents if doc.has_annotation("SENT_START") else [doc]
    return [[t for t in part if not t.is_space] for part in parts]


def _boundaries(doc: Doc) -> set[int]:
    """The character offsets where ner-window's tokens of the whole text begin or end.

    Read off the whole text, not each chunk of touching spaCy tokens alone: some rules look past a
    chunk ("1. Kenya" keeps "1." whole only at the start of a line and before a space).
    """
    return {b for _, start, end in token_spans(doc.text) for b in (start, end)}


def _units(words: list[Token], ours: set[int]) -> list[list[Token]]:
    """Group words into the units the model scores: spaCy's tokens, joined where they touch and
    ner-window's tokeniser keeps them together ("1997-05-12", "Paris-based"); never split.

    ours: _boundaries(doc) of the words' doc.
    """
    units: list[list[Token]] = []
    for t in words:
        touching = units and units[-1][-1].idx + len(units[-1][-1]) == t.idx
        if touching and t.idx not in ours:
            units[-1].append(t)
        else:
            units.append([t])
    return units


def _runs(doc: Doc, units: list[list[Token]], labels: list[str], begins: list[bool] | None = None) -> list[Span]:
    """Runs of consecutive units with one label other than O, as spans (whitespace between them included);
    with ``begins`` (a sentence-level model's B- tags) a unit that begins an entity starts a new span."""
    spans, i = [], 0
    while i < len(units):
        j = i
        while j + 1 < len(units) and labels[j + 1] == labels[i] and not (begins and begins[j + 1]):
            j += 1
        if labels[i] != "O":
            spans.append(Span(doc, units[i][0].i, units[j][-1].i + 1, label=labels[i]))
        i = j + 1
    return spans


def _merge(existing: list[Span], new: list[Span], overwrite: bool) -> list[Span]:
    """The entity ruler's rule: keep the existing entities and drop the new ones that overlap them, or
    (overwrite) keep the new ones and drop the existing ones they overlap."""

    def overlaps(a: Span, others: list[Span]) -> bool:
        return any(a.start < b.end and b.start < a.end for b in others)

    if overwrite:
        return sorted([e for e in existing if not overlaps(e, new)] + new, key=lambda s: s.start)
    return sorted(existing + [n for n in new if not overlaps(n, existing)], key=lambda s: s.start)
