"""The spaCy pipeline component (issue 20): registered by entry point, tags spaCy's tokens.

The issue's example as written, then what the component writes (entities, P(location)
on tokens and spans, displaCy), its settings (threshold, existing entities, token
alignment, sentences), batching in nlp.pipe, and the acceptance figure: LOC entity
F1 of spaCy-tokenised raw text within 0.01 of `ner-window evaluate` on the same file.
Expected values come from ner-window's own Tagger on hand-written token lists, not
from the component.
"""

import os
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import spacy
from spacy import displacy
from spacy.tokens import Doc
from spacy.training import Example

import ner_window.slots
from ner_window.errors import ConfigError, DataError, ModelError
from ner_window.evaluate import evaluate_file
from ner_window.spacy_component import NerWindowComponent
from ner_window.tagger import Tagger
from ner_window.tokenize import token_spans
from ner_window.train import train

from conftest import conll_counts

ROOT = Path(__file__).resolve().parent.parent
TEST = ROOT / "data" / "test.txt"
sys.path.insert(0, str(ROOT / "scripts"))
import spacy_f1  # noqa: E402  scripts/spacy_f1.py: detokenise, tag with spaCy, match by offsets


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_config):
    root = tmp_path_factory.mktemp("spacy")
    train(tiny_config(), out_dir=root / "binary", log=lambda s: None)
    train(tiny_config("model.task=multiclass"), out_dir=root / "multiclass", log=lambda s: None)
    return root


def pipeline(model, **config) -> spacy.Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("ner_window", config={"model": str(model), **config})
    return nlp


def p_by_hand(model, units: list[str], pieces: list[int]) -> list[float]:
    """P(location) of each spaCy token: the Tagger's p of the hand-written unit it belongs to
    (``pieces[k]`` = how many spaCy tokens unit k covers)."""
    ((_, p),) = Tagger.load(model).label_tokens([units])
    return [q for q, n in zip(p, pieces) for _ in range(n)]


# --- the issue's example ------------------------------------------------------------------


def test_the_factory_is_registered_by_entry_point():
    (ep,) = [ep for ep in entry_points(group="spacy_factories") if ep.name == "ner_window"]
    assert ep.value == "ner_window.spacy_component:make_ner_window"
    assert "ner_window" in spacy.blank("en").factory_names


def test_the_issue_example(base_run, tmp_path, monkeypatch):
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "latest").symlink_to(base_run)
    monkeypatch.chdir(tmp_path)
    nlp = spacy.blank("en")
    nlp.add_pipe("ner_window", config={"model": "runs/latest"})
    doc = nlp("museums in Paris are amazing")
    assert [e.text for e in doc.ents] == ["Paris"]
    assert doc.ents[0].label_ == "LOC"
    assert (doc.ents[0].start_char, doc.ents[0].end_char) == (11, 16)


def test_p_location_on_tokens_and_spans_is_the_taggers(base_run):
    doc = pipeline(base_run)("museums in Paris are amazing")
    tagged = Tagger.load(base_run).tag("museums in Paris are amazing")
    assert [t.text for t in doc] == [t.text for t in tagged.tokens]
    assert [t._.p_location for t in doc] == pytest.approx([t.p for t in tagged.tokens], abs=1e-6)
    assert doc._.p_location == [t._.p_location for t in doc]
    assert doc.ents[0]._.p_location == pytest.approx(tagged.tokens[2].p, abs=1e-6)
    assert doc[1:3]._.p_location == pytest.approx((tagged.tokens[1].p + tagged.tokens[2].p) / 2, abs=1e-6)


def test_displacy_renders_the_entities(base_run):
    html = displacy.render(pipeline(base_run)("museums in Paris are <amazing>"), style="ent")
    assert html.count("<mark") == 1
    mark = html[html.index("<mark"):html.index("</mark>")]
    assert "Paris" in mark and "LOC" in mark
    assert "&lt;amazing&gt;" in html  # the text around it, escaped


# --- tokens: spaCy's, whitespace, sentences ------------------------------------------------

TEXT = "The U.S.'s busiest port, Los Angeles, sent 1996-08-22 figures to a Paris-based firm."
SPACY_TOKENS = ["The", "U.S.", "'s", "busiest", "port", ",", "Los", "Angeles", ",", "sent",
                "1996", "-", "08", "-", "22", "figures", "to", "a", "Paris", "-", "based", "firm", "."]
# the CoNLL tokens the model learned from, as build_corpus writes them; "U.S.'s" as spaCy cuts it
CONLL_UNITS = ["The", "U.S.", "'s", "busiest", "port", ",", "Los", "Angeles", ",", "sent",
               "1996-08-22", "figures", "to", "a", "Paris-based", "firm", "."]
PIECES = [1] * 10 + [5] + [1] * 3 + [3] + [1] * 2


def test_the_tokenisations_differ():
    """The sentence the next tests use: spaCy and ner-window's tokeniser cut it differently."""
    assert [t.text for t in spacy.blank("en")(TEXT)] == SPACY_TOKENS
    ours = [w for w, _, _ in token_spans(TEXT)]
    assert ours != SPACY_TOKENS and ours[1:4] == ["U.S.", "'", "s"]  # ner-window splits "'s" here; spaCy does not


def test_spacys_tokens_are_tagged_as_the_model_would_tag_conll_tokens(base_run):
    doc = pipeline(base_run)(TEXT)
    assert [t.text for t in doc] == SPACY_TOKENS  # the tokens are not changed
    assert [t._.p_location for t in doc] == pytest.approx(p_by_hand(base_run, CONLL_UNITS, PIECES), abs=1e-6)
    # the entities are the runs of units the model tags LOC, as spaCy spans over their pieces
    ((labels, _),) = Tagger.load(base_run).label_tokens([CONLL_UNITS])
    starts = [sum(PIECES[:k]) for k in range(len(PIECES) + 1)]
    expected, k = [], 0
    while k < len(labels):
        if labels[k] == "LOC":
            j = k
            while j + 1 < len(labels) and labels[j + 1] == "LOC":
                j += 1
            expected.append((doc[starts[k]:starts[j + 1]].text, "LOC"))
            k = j + 1
        else:
            k += 1
    assert [(e.text, e.label_) for e in doc.ents] == expected
    assert ("U.S.", "LOC") in expected and ("Los Angeles", "LOC") in expected


def test_align_tokens_false_scores_every_spacy_token_as_a_word(base_run):
    doc = pipeline(base_run, align_tokens=False)(TEXT)
    assert [t._.p_location for t in doc] == pytest.approx(p_by_hand(base_run, SPACY_TOKENS, [1] * 23), abs=1e-6)


def test_whitespace_tokens_are_left_out_of_the_windows(base_run):
    nlp = pipeline(base_run)
    plain, spaced = nlp("museums in Paris are amazing"), nlp("museums  in Paris\n\nare amazing ")
    assert [t.text for t in spaced if t.is_space] == [" ", "\n\n"]
    assert [t._.p_location for t in spaced if not t.is_space] == [t._.p_location for t in plain]
    assert [t._.p_location for t in spaced if t.is_space] == [None, None]
    assert [e.text for e in spaced.ents] == ["Paris"]


def test_an_entity_spans_the_whitespace_inside_it(runs):
    """A run of LOC words with a whitespace token between them is one entity."""
    nlp = pipeline(runs / "binary", threshold=0.0)  # everything is a location
    doc = nlp("New  York")
    assert [t.text for t in doc] == ["New", " ", "York"]
    assert [e.text for e in doc.ents] == ["New  York"]


def test_windows_stop_at_sentence_edges_when_sentences_are_set(base_run):
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("ner_window", config={"model": str(base_run)})
    doc = nlp("I saw them. Paris is big.")
    assert [s.text for s in doc.sents] == ["I saw them.", "Paris is big."]
    tagger = Tagger.load(base_run)
    by_sentence = [p for _, ps in tagger.label_tokens([["I", "saw", "them", "."], ["Paris", "is", "big", "."]])
                   for p in ps]
    assert [t._.p_location for t in doc] == pytest.approx(by_sentence, abs=1e-6)
    ((_, whole),) = tagger.label_tokens([[t.text for t in doc]])
    assert doc[4]._.p_location != pytest.approx(whole[4], abs=1e-6)  # without the split Paris's window differs


# --- settings --------------------------------------------------------------------------------


def test_threshold(base_run):
    text = "museums in Paris are amazing"
    p_paris = pipeline(base_run)(text)[2]._.p_location
    assert [e.text for e in pipeline(base_run, threshold=p_paris)(text).ents] == ["Paris"]  # p >= threshold
    assert pipeline(base_run, threshold=min(1.0, p_paris + 1e-6))(text).ents == ()
    assert len(pipeline(base_run, threshold=0.0)(text).ents) == 1  # every token: one run


def test_existing_entities_are_kept_unless_overwrite_ents(base_run):
    def nlp_with_ruler(**config):
        nlp = spacy.blank("en")
        ruler = nlp.add_pipe("entity_ruler")
        ruler.add_patterns([{"label": "GPE", "pattern": "Paris"}, {"label": "FAC", "pattern": "museums"}])
        nlp.add_pipe("ner_window", config={"model": str(base_run), **config})
        return nlp

    text = "museums in Paris are amazing, said Ana in Rome"
    ruler = [(0, 7, "FAC"), (11, 16, "GPE")]
    ours = [(s.start, s.end, s.label) for s in Tagger.load(base_run).tag(text).spans]
    assert (11, 16, "LOC") in ours and (42, 46, "LOC") in ours  # Paris, Rome

    def overlap(a, spans):
        return any(a[0] < b[1] and b[0] < a[1] for b in spans)

    kept = nlp_with_ruler()(text)  # spaCy's convention: existing entities win, new ones fill the gaps
    assert [(e.start_char, e.end_char, e.label_) for e in kept.ents] == sorted(
        ruler + [a for a in ours if not overlap(a, ruler)])
    replaced = nlp_with_ruler(overwrite_ents=True)(text)
    assert [(e.start_char, e.end_char, e.label_) for e in replaced.ents] == sorted(
        ours + [a for a in ruler if not overlap(a, ours)])
    assert kept.ents[1]._.p_location == replaced.ents[1]._.p_location  # P(location) of any span


def test_a_multiclass_model_writes_every_type_as_the_tagger_does(runs):
    text = "Ana Lopez of Acme Corp flew from Madrid to Berlin on Monday ."
    doc = pipeline(runs / "multiclass")(text)
    tagged = Tagger.load(runs / "multiclass").tag(text)
    assert [t.text for t in doc] == [t.text for t in tagged.tokens]
    assert [(e.start_char, e.end_char, e.label_) for e in doc.ents] == [(s.start, s.end, s.label) for s in tagged.spans]
    assert nlp_labels(runs / "multiclass") == ("LOC", "MISC", "ORG", "PER")


def nlp_labels(model):
    return pipeline(model).get_pipe("ner_window").labels


def test_a_saved_pipeline_loads_with_its_model(runs, tmp_path):
    text = "museums in Paris are amazing"
    nlp = pipeline(runs / "binary", threshold=0.3)
    nlp.to_disk(tmp_path / "pipeline")
    again = spacy.load(tmp_path / "pipeline")
    assert again.get_pipe("ner_window").tagger.threshold == 0.3
    assert again(text)._.p_location == nlp(text)._.p_location


# --- nlp.pipe ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def test_texts():
    return [text for text, _, _ in spacy_f1.gold_location_spans(TEST, "iob2", ["LOC"])]


def test_pipe_scores_each_batch_in_one_call_and_changes_nothing(runs, test_texts, monkeypatch):
    nlp = pipeline(runs / "binary")
    one_by_one = [nlp(text) for text in test_texts]
    calls = []
    real = ner_window.slots.SlotScorer.scores_lines

    def counting(self, word_ids, casing_ids, lengths):
        calls.append(len(word_ids))
        return real(self, word_ids, casing_ids, lengths)

    monkeypatch.setattr(ner_window.slots.SlotScorer, "scores_lines", counting)
    piped = list(nlp.pipe(test_texts, batch_size=64))
    n_sentences, n_tokens, _ = conll_counts(TEST)
    assert len(test_texts) == n_sentences and len(calls) == -(-n_sentences // 64)  # one call per batch of 64 docs
    # one window per word: spaCy's finer tokens, aligned, are the file's own tokens, except where a
    # spaCy token is coarser than the file's and is never split ("seeding):" -> "seeding", the emoticon "):")
    coarser = sum(max(0, sum(t.idx <= a and b <= t.idx + len(t) for _, a, b in token_spans(d.text)) - 1)
                  for d in piped for t in d if not t.is_space)
    assert sum(len(d) for d in piped) > n_tokens and 0 <= coarser <= 5 and sum(calls) == n_tokens - coarser
    for a, b in zip(piped, one_by_one):  # a token's p depends on its window only, not on the batch (slots.py)
        assert a._.p_location == b._.p_location
    assert [[(e.start, e.end, e.label_) for e in d.ents] for d in piped] == \
           [[(e.start, e.end, e.label_) for e in d.ents] for d in one_by_one]
    calls.clear()
    nlp.batch_size = 100  # nlp.pipe's default, as for every spaCy component
    list(nlp.pipe(test_texts))
    assert len(calls) == -(-n_sentences // 100)


def test_pipe_on_empty_and_whitespace_docs(runs):
    docs = list(pipeline(runs / "binary").pipe(["", "   ", "Paris"]))
    assert [d.ents for d in docs[:2]] == [(), ()]
    assert docs[0]._.p_location == [] and docs[1]._.p_location == [None]
    assert len(docs[2]._.p_location) == 1


# --- the acceptance figure -------------------------------------------------------------------


def test_spacy_tokenised_f1_is_within_0_01_of_evaluate(base_run):
    """Raw text (scripts/spacy_f1.py detokenises each test sentence), spaCy's tokens, entities
    matched by character offsets, against evaluate_file on the file's own tokens."""
    gold = spacy_f1.gold_location_spans(TEST, "iob2", ["LOC"])
    spacy_scores = spacy_f1.spacy_location_scores(base_run, gold)
    ours = evaluate_file(base_run, TEST)["loc"]["entity"]
    assert spacy_scores["sentences_tokenised_differently"] >= 10  # the comparison is not on identical tokens
    assert spacy_scores["support"] == ours["support"] == conll_counts(TEST)[2]
    assert ours["f1"] > 0.8  # a model good enough for the comparison to mean something
    assert abs(spacy_scores["f1"] - ours["f1"]) <= 0.01, (spacy_scores, ours)
    # spaCy's own scorer (nlp.evaluate, through the component's score()) counts the same entities
    nlp = pipeline(base_run)
    examples = [Example.from_dict(nlp.make_doc(text), {"entities": [(a, b, "LOC") for a, b in sorted(spans)]})
                for text, spans, _ in gold]
    assert nlp.evaluate(examples)["ents_f"] == pytest.approx(spacy_scores["f1"], abs=1e-12)


def test_detokenize_offsets_point_at_the_tokens():
    text, offsets = spacy_f1.detokenize(["\"", "We", "won", ",", "\"", "he", "said", "(", "in", "Rome", ")", ".",
                                         "Germany", "'s", "exports", "did", "n't", "fall", "."])
    assert text == "\"We won,\" he said (in Rome). Germany's exports didn't fall."
    assert [text[a:b] for a, b in offsets][9] == "Rome"


def test_the_script_prints_the_comparison(base_run):
    import subprocess

    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "spacy_f1.py"), str(base_run), "--data", str(TEST)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert f"{conll_counts(TEST)[0]:,} sentences" in out.stdout and "align_tokens=false" in out.stdout
    bad = subprocess.run([sys.executable, str(ROOT / "scripts" / "spacy_f1.py"), str(ROOT / "no-model")],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "no-model" in bad.stderr


# --- errors ------------------------------------------------------------------------------------


def test_a_missing_model_is_a_model_error_naming_it(tmp_path):
    with pytest.raises(ModelError, match="nowhere"):
        pipeline(tmp_path / "nowhere")


def test_the_default_model_is_read_from_the_environment(runs, monkeypatch, tmp_path):
    monkeypatch.setenv("NER_WINDOW_MODEL", str(runs / "multiclass"))
    monkeypatch.chdir(tmp_path)
    nlp = spacy.blank("en")
    nlp.add_pipe("ner_window")
    assert nlp.get_pipe("ner_window").tagger.model.task == "multiclass"


def test_bad_settings_are_project_errors(runs):
    with pytest.raises(DataError, match="threshold 1.5"):
        pipeline(runs / "binary", threshold=1.5)
    with pytest.raises(ConfigError, match="threshold applies to binary models"):
        pipeline(runs / "multiclass", threshold=0.5)


def test_the_component_class_works_without_the_factory(runs):
    component = NerWindowComponent(Tagger.load(runs / "binary", threshold=0.0))
    doc = component(Doc(spacy.blank("en").vocab, words=["Paris", "is", "big"]))
    assert [e.text for e in doc.ents] == ["Paris is big"]
    assert os.fspath(component.tagger.model.path).endswith("model")
