"""ONNX export (issue 20): the graph gives the project's own p, and the vocabulary file builds its inputs.

A worked example first (a one-unit network whose p is computed by hand), then
the round trip on every window of the bundled test set for trained binary and
multiclass models and for random models of every other shape (activation, no
casing vectors, no output bias, float64): onnxruntime against predict_proba,
max |Δp| <= 1e-5.  Sentence-level models: tag scores against predict_scores
(max |ΔS| <= 1e-5), the transition matrix as saved, and a Viterbi written here
from the exported files alone giving the Tagger's tags.  Then the vocabulary file: its tokeniser pattern, lookup chain
and casing rules, as the README writes them, against ner-window's own; the
README's onnxruntime example as written; the CLI and its errors.
"""

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from click.testing import CliRunner

import ner_window
from ner_window.artifact import load_model, save_model
from ner_window.cli import cli
from ner_window.conll import read_conll
from ner_window.errors import ConfigError, DataError, MissingExtraError, ModelError
from ner_window.export import export_model, spec_path
from ner_window.model import Params, init_params
from ner_window.fast import predict_proba, predict_scores  # the project's own scoring
from ner_window.tagger import Tagger
from ner_window.tokenize import token_spans
from ner_window.train import train

from conftest import conll_counts
from ner_window.vocab import SPECIALS, Vocab
from ner_window.windows import CASING_CLASSES, casing_class, make_windows

ROOT = Path(__file__).resolve().parent.parent
TEST = ROOT / "data" / "test.txt"
TOL = 1e-5


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_config):
    """Tiny binary and multiclass models trained on the bundled corpus."""
    root = tmp_path_factory.mktemp("export")
    train(tiny_config(), out_dir=root / "binary", log=lambda s: None)
    train(tiny_config("model.task=multiclass"), out_dir=root / "multiclass", log=lambda s: None)
    return root


@pytest.fixture(scope="module")
def test_sentences():
    return [list(s.tokens) for s in read_conll(TEST, "iob2")]


def onnx_p(path: Path, ids: np.ndarray, casing: np.ndarray | None, outputs=("p",)) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path))
    feeds = {"ids": ids.astype(np.int64)}
    if casing is not None:
        feeds["casing"] = casing.astype(np.int64)
    return session.run(list(outputs), feeds)


# --- the worked example ---------------------------------------------------------------


def test_worked_example_one_hidden_unit(tmp_path):
    """m = 1, d = 1, H = 1, no casing: E = [0, 0, 0, 1, 2]ᵀ, W = [1, -1, 0.5], b = 0.25, u = 2, c = -1.

    Window (<s>, w3, w4) = ids (1, 3, 4): x = (0, 1, 2), z = 0 - 1 + 1 + 0.25 = 0.25,
    h = tanh(0.25) = 0.244919, s = 2h - 1 = -0.510163, p = σ(s) = 1 / (1 + e^0.510163) = 0.375155.
    Window (w4, w3, </s>) = ids (4, 3, 2): x = (2, 1, 0), z = 2 - 1 + 0 + 0.25 = 1.25,
    h = tanh(1.25) = 0.848284, s = 0.696567, p = 1 / (1 + e^-0.696567) = 0.667426.
    """
    params = Params(E=np.array([[0.0], [0.0], [0.0], [1.0], [2.0]]), C=None, W=np.array([[1.0, -1.0, 0.5]]),
                    b=np.array([0.25]), u=np.array([2.0]), c=np.array(-1.0))
    meta = {"config": {"data": {"scheme": "iob2", "location_types": ["LOC"]},
                       "model": {"task": "binary", "radius": 1, "hidden": 1, "activation": "tanh"}},
            "classes": ["O", "LOC"], "threshold": 0.5}
    save_model(tmp_path / "model", params, Vocab([*SPECIALS, "a", "b"]), meta)
    export_model(tmp_path / "model", tmp_path / "m.onnx")
    (p,) = onnx_p(tmp_path / "m.onnx", np.array([[1, 3, 4], [4, 3, 2]]), None)
    by_hand = [1 / (1 + math.exp(-(2 * math.tanh(z) - 1))) for z in (0.25, 1.25)]
    np.testing.assert_allclose(by_hand, [0.375155, 0.667426], atol=1e-6)
    np.testing.assert_allclose(p, by_hand, atol=1e-12)
    assert p.dtype == np.float64  # the model's dtype is kept


# --- the round trip on every window of the bundled test set -----------------------------


def test_binary_model_round_trip(runs, test_sentences, tmp_path):
    model = load_model(runs / "binary")
    export_model(model, tmp_path / "model.onnx")
    w = make_windows(test_sentences, model.vocab, model.radius)
    (p,) = onnx_p(tmp_path / "model.onnx", w.ids, w.casing)
    expected = predict_proba(model.params, w.ids, w.casing, model.activation)
    assert p.shape == expected.shape == (conll_counts(TEST)[1],)
    assert np.abs(p - expected).max() <= TOL
    # and so the decisions are the model's, up to windows within 1e-5 of the threshold
    close = np.abs(expected - model.threshold) <= TOL
    assert ((p >= model.threshold) == (expected >= model.threshold))[~close].all()


def test_multiclass_model_round_trip(runs, test_sentences, tmp_path):
    model = load_model(runs / "multiclass")
    assert model.classes == ["O", "LOC", "MISC", "ORG", "PER"]
    export_model(model, tmp_path / "model.onnx")
    w = make_windows(test_sentences, model.vocab, model.radius)
    p, probs = onnx_p(tmp_path / "model.onnx", w.ids, w.casing, outputs=("p", "probs"))
    expected = predict_proba(model.params, w.ids, w.casing, model.activation)
    assert probs.shape == expected.shape == (conll_counts(TEST)[1], 5)
    assert np.abs(probs - expected).max() <= TOL
    assert np.abs(p - expected[:, 1]).max() <= TOL  # p is P(location) = probs[:, LOC]
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("activation, casing, output_bias, dtype, n_classes", [
    ("sigmoid", True, True, np.float32, 1),
    ("relu", True, False, np.float32, 1),
    ("tanh", False, True, np.float32, 1),
    ("relu", False, False, np.float32, 4),
    ("tanh", True, True, np.float64, 1),
    ("sigmoid", True, True, np.float64, 5),
])
def test_every_shape_of_model_round_trips(tmp_path, test_sentences, activation, casing, output_bias, dtype,
                                          n_classes):
    vocab = Vocab([*SPECIALS, *sorted({t.lower() for s in test_sentences for t in s})[:300]])
    rng = np.random.default_rng(3)
    params = init_params(len(vocab), 7, 1, 9, n_casing=len(CASING_CLASSES) if casing else 0, d_c=3 if casing else 0,
                         n_classes=n_classes, output_bias=output_bias, dtype=dtype, rng=rng)
    params.W *= 4  # large enough that relu units switch off and σ saturates somewhere
    classes = ["O", "LOC"] if n_classes == 1 else ["O", "LOC", "MISC", "ORG", "PER"][:n_classes]
    if n_classes == 4:
        classes = ["O", "MISC", "LOC", "PER"]  # LOC need not be class 1
    meta = {"config": {"data": {"scheme": "iob2", "location_types": ["LOC"]},
                       "model": {"task": "binary" if n_classes == 1 else "multiclass", "radius": 1, "hidden": 9,
                                 "activation": activation}},
            "classes": classes, "threshold": 0.5}
    save_model(tmp_path / "model", params, vocab, meta)
    model = load_model(tmp_path / "model")
    export_model(model, tmp_path / "model.onnx")
    w = make_windows(test_sentences, vocab, 1)
    cas = w.casing if casing else None
    session = ort.InferenceSession(str(tmp_path / "model.onnx"))
    assert [i.name for i in session.get_inputs()] == (["ids", "casing"] if casing else ["ids"])
    (p,) = onnx_p(tmp_path / "model.onnx", w.ids, cas)
    expected = predict_proba(model.params, w.ids, cas, activation)
    if n_classes > 1:
        expected = expected[:, classes.index("LOC")]
    assert p.dtype == dtype
    assert np.abs(p - expected).max() <= TOL


def test_empty_input_gives_empty_output(runs, tmp_path):
    export_model(runs / "binary", tmp_path / "model.onnx")
    (p,) = onnx_p(tmp_path / "model.onnx", np.zeros((0, 5), np.int64), np.zeros((0, 5), np.int64))
    assert p.shape == (0,)


def test_the_file_is_a_checked_onnx_model_with_its_metadata(runs, tmp_path):
    written = export_model(runs / "binary", tmp_path / "tagger.onnx")
    assert written == [tmp_path / "tagger.onnx", tmp_path / "tagger.vocab.json"]
    proto = onnx.load(str(tmp_path / "tagger.onnx"))
    onnx.checker.check_model(proto)
    ops = [n.op_type for n in proto.graph.node]
    assert ops == ["Gather", "Gather", "Concat", "Flatten", "MatMul", "Add", "Tanh", "MatMul", "Add", "Sigmoid",
                   "Squeeze"]
    meta = {p.key: p.value for p in proto.metadata_props}
    model = load_model(runs / "binary")
    assert meta["ner_window.spec"] == "tagger.vocab.json"
    assert float(meta["ner_window.threshold"]) == model.threshold
    assert json.loads(meta["ner_window.classes"]) == ["O", "LOC"]
    umask = os.umask(0)
    os.umask(umask)
    for path in written:  # the permissions of a plain open(), not those of the temporary file (0600)
        assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask


# --- a sentence-level model: tag scores and transitions, decoded from the exported files ------------


@pytest.fixture(scope="module")
def sentence_runs(tmp_path_factory, tiny_config):
    """Tiny sentence-level models (model.output: sentence): binary (3 tags), and multiclass (9 tags) with the
    GeoNames gazetteer folded into its casing ids (C has 3 x 8 rows)."""
    root = tmp_path_factory.mktemp("export-sentence")
    for task, gazetteer in (("binary", "none"), ("multiclass", "geonames")):
        train(tiny_config("model.output=sentence", f"model.task={task}", f"model.gazetteer={gazetteer}",
                          "train.epochs=2"), out_dir=root / task, log=lambda s: None, point_latest=False)
    return root


def viterbi_from_the_spec(S: np.ndarray, A: np.ndarray) -> list[int]:
    """spec["decision"], line by line, for one sentence: S (n, T) tag scores, A (T+1, T) row T the start."""
    T = S.shape[1]
    v, back = A[T] + S[0], []
    for k in range(1, len(S)):
        cand = v[:, None] + A[:T]  # cand[i, j] = v_(k-1)(i) + A[i, j]
        back.append(cand.argmax(axis=0))
        v = S[k] + cand.max(axis=0)
    path = [int(v.argmax())]
    for b in reversed(back):
        path.append(int(b[path[-1]]))
    return path[::-1]


def test_viterbi_from_the_spec_on_a_worked_example():
    """Two tokens, tags (O, B, I), S = [[1, 0, 0], [0, 0, 2]], A = 0 but I after O or at the start = -inf.

    Paths by hand: O O = 1, O B = 1, B I = 0 + 2 = 2, B B = 0, B O = 0, (O I, I *: -inf).  Best: B I.
    """
    A = np.array([[0, 0, -np.inf], [0, 0, 0], [0, 0, 0], [0, 0, -np.inf]])
    assert viterbi_from_the_spec(np.array([[1.0, 0, 0], [0, 0, 2]]), A) == [1, 2]
    assert viterbi_from_the_spec(np.array([[1.0, 0, 0], [0, 0, 0.5]]), A) == [0, 0]  # O O 1 > B I 0.5


@pytest.mark.parametrize("task, tags", [
    ("binary", ["O", "B-LOC", "I-LOC"]),
    ("multiclass", ["O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER"]),
])
def test_sentence_model_round_trip(sentence_runs, test_sentences, tmp_path, task, tags):
    """tag_scores = the project's own s on every window of the test set, and transitions = params.npz's A."""
    model = load_model(sentence_runs / task)
    assert model.output == "sentence" and model.tags == tags
    export_model(model, tmp_path / "model.onnx")
    w = make_windows(test_sentences, model.vocab, model.radius, gazetteer=model.gazetteer)
    assert (w.casing.max() >= len(CASING_CLASSES)) == (task == "multiclass")  # the gazetteer tags are in the ids
    session = ort.InferenceSession(str(tmp_path / "model.onnx"))
    assert [o.name for o in session.get_outputs()] == ["tag_scores", "transitions"]
    S, A = session.run(["tag_scores", "transitions"], {"ids": w.ids.astype(np.int64),
                                                       "casing": w.casing.astype(np.int64)})
    expected = predict_scores(model.params, w.ids, w.casing, model.activation)
    assert S.shape == expected.shape == (conll_counts(TEST)[1], len(tags))
    assert np.abs(S - expected).max() <= TOL
    assert A.shape == (len(tags) + 1, len(tags)) and np.array_equal(A, model.params.A)  # -inf entries included
    assert np.isneginf(A[0, 2]) and np.isneginf(A[len(tags), 2]) and np.isfinite(A[1, 2])  # no I-LOC after O


@pytest.mark.parametrize("task, some_tags", [("binary", {"B-LOC", "I-LOC"}), ("multiclass", {"B-LOC", "I-LOC", "B-PER"})])
def test_sentence_model_decodes_from_the_exported_files_alone(sentence_runs, test_sentences, tmp_path, task,
                                                              some_tags):
    """onnxruntime's scores + the spec's A, tags and rule give the Tagger's tags on every test sentence."""
    export_model(sentence_runs / task, tmp_path / "model.onnx")
    spec = json.loads(spec_path(tmp_path / "model.onnx").read_text(encoding="utf-8"))
    assert spec["output"] == "sentence" and spec["threshold"] is None and "Viterbi" in spec["decision"]
    A = np.array([[-np.inf if a is None else a for a in row] for row in spec["transitions"]])
    session = ort.InferenceSession(str(tmp_path / "model.onnx"))
    (graph_A,) = session.run(["transitions"], {"ids": np.zeros((0, 5), np.int64), "casing": np.zeros((0, 5), np.int64)})
    assert np.array_equal(A.astype(graph_A.dtype), graph_A)  # the JSON's A is the graph's, null = -inf
    model = load_model(sentence_runs / task)
    w = make_windows(test_sentences, model.vocab, spec["radius"], gazetteer=model.gazetteer)
    (S,) = session.run(["tag_scores"], {"ids": w.ids.astype(np.int64), "casing": w.casing.astype(np.int64)})
    ours, start = [], 0
    for sent in test_sentences:
        ours.append([spec["tags"][y] for y in viterbi_from_the_spec(S[start:start + len(sent)], A)])
        start += len(sent)
    labelled, begins = Tagger(model).label_tokens_and_begins(test_sentences)
    theirs = [["O" if lab == "O" else ("B-" if b else "I-") + lab for lab, b in zip(labels, flags)]
              for (labels, _), flags in zip(labelled, begins)]
    assert ours == theirs
    assert some_tags <= {t for tags in ours for t in tags}  # the paths are not all O: the decoding is exercised


def test_a_sentence_model_file_says_what_its_outputs_are(sentence_runs, tmp_path):
    export_model(sentence_runs / "binary", tmp_path / "model.onnx")
    proto = onnx.load(str(tmp_path / "model.onnx"))
    onnx.checker.check_model(proto)
    docs = {o.name: o.doc_string for o in proto.graph.output}
    assert "O, B-LOC, I-LOC" in docs["tag_scores"] and "row T: the start" in docs["transitions"]
    assert [n.op_type for n in proto.graph.node][-2:] == ["Identity", "Identity"]  # no softmax or sigmoid
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["ner_window.output"] == "sentence" and json.loads(meta["ner_window.tags"]) == ["O", "B-LOC", "I-LOC"]
    assert "ner_window.threshold" not in meta
    spec = json.loads((tmp_path / "model.vocab.json").read_text(encoding="utf-8"))
    assert set(spec["outputs"]) == {"tag_scores", "transitions"} and "B-c tag starts" in spec["entities"]
    assert "null is -inf" in spec["transitions_null"] and [row[2] for row in spec["transitions"]][::3] == [None, None]


# --- the vocabulary file builds the ids as ner-window does ---------------------------------


def readme_example() -> str:
    """The README's onnxruntime example, exactly as written there."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    found = [b for b in blocks if "onnxruntime as ort" in b]
    assert len(found) == 1, "the README has one onnxruntime example"
    return found[0]


@pytest.fixture(scope="module")
def readme_rules(runs, tmp_path_factory):
    """The README example's lookup() and casing() and its spec, run up to the tagging lines."""
    where = tmp_path_factory.mktemp("readme-rules")
    export_model(runs / "binary", where / "model.onnx")
    code = readme_example().split("session, m =")[0]
    namespace = {}
    cwd = os.getcwd()
    os.chdir(where)
    try:
        exec(compile(code, "README.md", "exec"), namespace)
    finally:
        os.chdir(cwd)
    return namespace


TRICKY = ["Paris", "paris", "PARIS", "McDonald", "1996", "1996-08-22", "3:15", ",", "...", "U.S.", "e.g.", "A", "I",
          "#Tokyo", "#tokyo", "@paris", "#", "@", "#1996", "İstanbul", "Zürich", "ZÜRICH", "北京", "١٩٩٦", "²", "Ⅻ",
          "O'Brien", "n't", "'s", "DC-10", "iPhone", "x", "ǅ", "Ǆ", "\U0001F44D", "<s>", "<unk>"]


def test_readme_lookup_and_casing_are_ner_windows(runs, readme_rules, test_sentences):
    vocab = load_model(runs / "binary").vocab
    words = TRICKY + [t for s in test_sentences for t in s] + vocab.words[3:200]
    for word in words:
        assert readme_rules["lookup"](word) == vocab.lookup(word), word
        assert readme_rules["casing"](word) == casing_class(word), word


def test_the_spec_tokenizer_pattern_gives_ner_windows_tokens(readme_rules):
    pattern = re.compile(readme_rules["spec"]["tokenizer"]["pattern"])
    texts = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "data" / "source").glob("*.txt"))]
    texts += ["Germany's exports didn't fall in the U.S. on 1996-08-22.", "see http://x.org. #NYC2024 @jenny_k",
              "1. Michael Johnson (U.S.)\n2. M. Waugh", "US$ 5 +0.05 .500 S&P 1,200 3-1 \u200bZürich\U0001F44D\U0001F3FD"]
    for text in texts:
        assert [(m.group(), m.start(), m.end()) for m in pattern.finditer(text)] == token_spans(text)


def test_the_spec_states_the_window_layout(runs, readme_rules):
    spec = readme_rules["spec"]
    model = load_model(runs / "binary")
    assert spec["words"] == model.vocab.words
    assert (spec["unk_id"], spec["bos_id"], spec["eos_id"]) == (0, 1, 2) == tuple(map(model.vocab.lookup, SPECIALS))
    assert spec["casing_classes"] == list(CASING_CLASSES) and spec["pad_casing_id"] == 0
    assert spec["radius"] == model.radius and spec["window"] == 2 * model.radius + 1
    assert spec["threshold"] == model.threshold and spec["task"] == "binary"
    assert [rule[1] for rule in spec["casing_rules"]] == ["digit", "punct", "lower", "title", "upper", "title",
                                                          "mixed", "other"]


def run_readme_example(where: Path) -> subprocess.CompletedProcess:
    code = readme_example() + "import sys\nprint(sorted(m for m in sys.modules if m.startswith('ner_window')))\n"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONSTARTUP"}
    return subprocess.run([sys.executable, "-c", code], cwd=where, capture_output=True, text=True, timeout=120,
                          env=env)


def test_readme_example_runs_as_written_without_ner_window(base_run, tmp_path):
    """Exported from the base model, the README example prints ['Paris'], as ner-window's tagger does."""
    export_model(base_run, tmp_path / "model.onnx")
    out = run_readme_example(tmp_path)
    assert out.returncode == 0, out.stderr
    printed, modules = out.stdout.strip().splitlines()
    tagged = Tagger.load(base_run).tag("museums in Paris are amazing")
    assert printed == repr([s.text for s in tagged.spans]) == "['Paris']"
    assert modules == "[]"  # onnxruntime, numpy, json and re alone


def test_readme_example_p_equals_the_taggers(runs, tmp_path):
    """The README's lines on another text give the Tagger's p for every token."""
    export_model(runs / "binary", tmp_path / "model.onnx")
    text = "Flights from #Tokyo to ZÜRICH resumed on 1996-08-22, the U.S. carrier's 3rd route."
    code = readme_example().replace('text = "museums in Paris are amazing"', f"text = {text!r}")
    code = code.replace("print([t for t, p_t", "print(json.dumps([float(x) for x in p]))\n#")
    (tmp_path / "go.py").write_text(code, encoding="utf-8")
    out = subprocess.run([sys.executable, "go.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    p = json.loads(out.stdout)
    tagged = Tagger.load(runs / "binary").tag(text)
    assert len(p) == len(tagged.tokens) == 16  # Flights from #Tokyo to ZÜRICH resumed on 1996-08-22 , the U.S. carrier 's 3rd route .
    np.testing.assert_allclose(p, [t.p for t in tagged.tokens], atol=2e-6)  # the Tagger rounds to 6 places


# --- the command line and its errors ------------------------------------------------------


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def assert_one_line_error(r, *named):
    assert r.exit_code == 2, (r.exit_code, r.output, r.exception)
    assert isinstance(r.exception, SystemExit), r.exception
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ner-window: error: "), r.stderr
    for name in named:
        assert name in lines[0], (name, lines[0])


def test_cli_export_writes_both_files(runs, tmp_path):
    r = run("export", "--model", runs / "binary", "--format", "onnx", "--out", tmp_path / "model.onnx")
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines() == [f"wrote {tmp_path / 'model.onnx'}", f"wrote {tmp_path / 'model.vocab.json'}"]
    assert spec_path(tmp_path / "model.onnx").is_file()
    ort.InferenceSession(str(tmp_path / "model.onnx"))


def test_cli_export_reads_the_default_model(runs, tmp_path, monkeypatch):
    monkeypatch.setenv("NER_WINDOW_MODEL", str(runs / "multiclass"))
    r = run("export", "--out", tmp_path / "m.onnx")
    assert r.exit_code == 0, r.output
    assert [o.name for o in ort.InferenceSession(str(tmp_path / "m.onnx")).get_outputs()] == ["p", "probs"]


def test_unknown_format_is_one_line(runs, tmp_path):
    r = run("export", "--model", runs / "binary", "--format", "tflite", "--out", tmp_path / "m.onnx")
    assert_one_line_error(r, "'tflite'", "--format onnx")
    assert not list(tmp_path.iterdir())
    with pytest.raises(ConfigError):
        export_model(runs / "binary", tmp_path / "m.onnx", fmt="ONNX")


def test_missing_extra_is_one_line(runs, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` now fails, as without the extra
    monkeypatch.delitem(sys.modules, "ner_window.onnx_graph", raising=False)  # as in a fresh interpreter
    monkeypatch.delattr(ner_window, "onnx_graph", raising=False)
    r = run("export", "--model", runs / "binary", "--out", tmp_path / "m.onnx")
    assert_one_line_error(r, "onnx", "pip install 'ner-window[onnx]'")
    assert not list(tmp_path.iterdir())
    with pytest.raises(MissingExtraError):
        export_model(runs / "binary", tmp_path / "m.onnx")


def test_a_directory_that_is_not_a_model_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    r = run("export", "--model", tmp_path / "empty", "--out", tmp_path / "m.onnx")
    assert_one_line_error(r, str(tmp_path / "empty"), "meta.json")
    r = run("export", "--model", tmp_path / "nothing-here", "--out", tmp_path / "m.onnx")
    assert_one_line_error(r, "nothing-here", "no model here")
    assert not (tmp_path / "m.onnx").exists()


def test_an_out_path_that_cannot_be_written_is_one_line(runs, tmp_path):
    r = run("export", "--model", runs / "binary", "--out", tmp_path / "no" / "such" / "m.onnx")
    assert_one_line_error(r, "--out", "existing directory")
    r = run("export", "--model", runs / "binary", "--out", tmp_path)
    assert_one_line_error(r, "--out", "it is a directory")
    with pytest.raises(DataError):
        export_model(runs / "binary", tmp_path)


def test_a_multiclass_model_without_loc_is_one_line(tmp_path):
    params = init_params(len(SPECIALS) + 1, 4, 1, 3, n_classes=3, rng=np.random.default_rng(0))
    meta = {"config": {"data": {"scheme": "iob2", "location_types": ["GPE"]},
                       "model": {"task": "multiclass", "radius": 1, "hidden": 3, "activation": "tanh"}},
            "classes": ["O", "ORG", "PER"], "threshold": 0.5}
    save_model(tmp_path / "model", params, Vocab([*SPECIALS, "x"]), meta)
    r = run("export", "--model", tmp_path / "model", "--out", tmp_path / "m.onnx")
    assert_one_line_error(r, "no LOC", str(tmp_path / "model"))
    with pytest.raises(ModelError):
        export_model(tmp_path / "model", tmp_path / "m.onnx")
