"""pipeline.py: tokenize -> ids -> score -> write over chunks of lines writes, line for line, what
format_tagged(Tagger.tag(line)) writes -- the per-line path, with its Python objects, is the reference.

Checked on the bundled corpus (raw source texts and tokenised sentences), on random text made
of the tokenizer's hard cases, in every chunk size, through textio's pieces (a long line), and
through `ner-window predict`.  The tables it writes numbers from are checked against Python's
own repr and the tokenizer's own separator class.
"""

import itertools
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from ner_window.artifact import save_model
from ner_window.cli import cli
from ner_window.model import init_params
from ner_window.pipeline import _DECIMALS, LinePipeline, _NOT_SPACE, _p_strings, line_chunks, separator_table
from ner_window.tagger import Tagger, format_tagged
from ner_window.textio import read_pieces
from ner_window.tokenize import _SEPARATOR
from ner_window.vocab import SPECIALS, Vocab
from ner_window.windows import CASING_CLASSES

ROOT = Path(__file__).resolve().parents[1]
FORMATS = ("text", "conll", "jsonl")
TRICKY_LINES = ["", "   ", "'s at the start", "\t's after a tab", "1. Ordinal at the start", "see No. 5 and M. Waugh",
                "x\x00's", "\u200bParis\u2060Rome\ufeffLima", "Zürich's 北京 emoji 👍🏽 #tokyo @jenny_k www.x.org/a.",
                "didn't go to the U.S.-led talks in Washington, D.C. on 1996-08-22.", "PARIS , FRANCE 3-1 +0.05",
                "a\rlone carriage return", "ends with a period.", "e.g. Mr. Smith of Calif. in Jan."]


def corpus_lines() -> list[str]:
    lines = []
    for path in sorted((ROOT / "data" / "source").glob("*.txt")):
        lines += path.read_text(encoding="utf-8").split("\n")
    for block in (ROOT / "data" / "test.txt").read_text(encoding="utf-8").split("\n\n"):  # tokenised sentences
        tokens = [ln.split()[0] for ln in block.splitlines() if ln.strip()]
        lines.append(" ".join(tokens))
    return lines + TRICKY_LINES


def reference(tagger: Tagger, lines, fmt: str) -> str:
    return "".join(format_tagged(t, fmt) + "\n" for t in tagger.tag_lines(iter(lines)))


@pytest.fixture(scope="module")
def random_model(tmp_path_factory):
    """Random parameters over the corpus's words, 5 classes: labels of every kind, spans everywhere."""
    words = sorted({ln.split()[0].lower() for ln in (ROOT / "data" / "dev.txt").read_text(encoding="utf-8").splitlines()
                    if ln.strip()})
    vocab = Vocab([*SPECIALS, *words])
    params = init_params(len(vocab), 6, 2, 5, n_casing=len(CASING_CLASSES), d_c=3, n_classes=5,
                         rng=np.random.default_rng(0))
    meta = {"config": {"data": {"scheme": "iob2", "location_types": ["LOC"]}, "train": {"loss": "bce"},
                       "model": {"task": "multiclass", "radius": 2, "hidden": 5, "activation": "tanh"}},
            "classes": ["O", "LOC", "MISC", "ORG", "PER"], "threshold": 0.5}
    path = tmp_path_factory.mktemp("random") / "model"
    save_model(path, params, vocab, meta)
    return path


@pytest.fixture(scope="module")
def random_sentence_model(tmp_path_factory):
    """A random sentence-level model (binary: O, B-LOC, I-LOC tag scores and transitions) with a
    gazetteer of the corpus's place names: Viterbi paths, adjacent B- tags and gazetteer tags."""
    from ner_window.gazetteer import Gazetteer
    from ner_window.sentence import init_transitions
    from ner_window.windows import n_features

    words = sorted({ln.split()[0].lower() for ln in (ROOT / "data" / "dev.txt").read_text(encoding="utf-8").splitlines()
                    if ln.strip()})
    vocab = Vocab([*SPECIALS, *words])
    rng = np.random.default_rng(1)
    params = init_params(len(vocab), 6, 2, 5, n_casing=n_features(True), d_c=3, n_classes=3, rng=rng)
    params.A = init_transitions(3, np.dtype(np.float32))
    params.A[np.isfinite(params.A)] = rng.normal(0, 1, np.isfinite(params.A).sum())  # B-LOC -> B-LOC scores too
    meta = {"config": {"data": {"scheme": "iob2", "location_types": ["LOC"]},
                       "model": {"task": "binary", "radius": 2, "hidden": 5, "activation": "tanh", "casing_dim": 3,
                                 "output": "sentence", "gazetteer": "geonames"}},
            "classes": ["O", "LOC"], "output": "sentence", "tags": ["O", "B-LOC", "I-LOC"]}
    gazetteer = Gazetteer.from_names([["paris"], ["new", "york"], ["rio", "de", "janeiro"], ["london"], ["tokyo"]])
    path = tmp_path_factory.mktemp("random-sentence") / "model"
    save_model(path, params, vocab, meta, gazetteer)
    return path


@pytest.fixture(scope="module")
def random_plain_model(tmp_path_factory):
    """A random binary model without casing vectors (model.casing: false): word ids alone."""
    words = sorted({ln.split()[0].lower() for ln in (ROOT / "data" / "dev.txt").read_text(encoding="utf-8").splitlines()
                    if ln.strip()})
    vocab = Vocab([*SPECIALS, *words])
    params = init_params(len(vocab), 6, 2, 5, n_casing=0, d_c=0, n_classes=1, rng=np.random.default_rng(2))
    meta = {"config": {"data": {"scheme": "iob2", "location_types": ["LOC"]}, "train": {"loss": "bce"},
                       "model": {"task": "binary", "radius": 2, "hidden": 5, "activation": "tanh", "casing": False}},
            "classes": ["O", "LOC"], "threshold": 0.5}
    path = tmp_path_factory.mktemp("random-plain") / "model"
    save_model(path, params, vocab, meta)
    return path


@pytest.fixture(scope="module", params=["trained", "random", "sentence+gazetteer", "no casing"])
def tagger(request, tiny_model_dir, random_model, random_sentence_model, random_plain_model):
    return Tagger.load({"trained": tiny_model_dir, "random": random_model, "sentence+gazetteer": random_sentence_model,
                        "no casing": random_plain_model}[request.param])


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_bundled_corpus_is_written_as_the_per_line_path_writes_it(tagger, fmt):
    lines = corpus_lines()
    got = "".join(LinePipeline(tagger, fmt).tag_chunk(chunk) for chunk in line_chunks(iter(lines), 4096))
    expected = reference(tagger, lines, fmt)
    assert got == expected
    assert len(lines) > 15_000 and ("]LOC" in got if fmt == "text" else True)


TRICKY = list("aAzZéßİı'’ʼ.,:;/-‐‑&$+@#_019 \t\r\x00\x1f\x7f\x85\u00a0\u200b\u200c\u200d\u2060\ufeff\ufe0f"
              "\u0301\u0915\u093e\u0964()\"!?") + [
    "http://", "www.", "n't", "'s", "U.S.", "Mr.", "No.", "1. ", "US$", "\U0001F1EB\U0001F1F7",
    "\U0001F44D\U0001F3FD", "e.g.", "M. W", "Paris", "paris", "PARIS", "北京", "\u3000"]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.sampled_from(TRICKY), max_size=12).map("".join), min_size=1, max_size=8),
       st.sampled_from(FORMATS), st.integers(1, 60))
def test_random_hard_lines_in_any_chunk_size(tiny_model_dir, lines, fmt, max_chars):
    tagger = Tagger.load(tiny_model_dir)
    written = []
    LinePipeline(tagger, fmt).run(iter(lines), written.append, max_chars=max_chars, overlap=max_chars % 2 == 0)
    assert "".join(written) == reference(tagger, lines, fmt)


def test_every_probability_is_written_as_json_dumps_writes_it():
    """All 10⁶ + 1 values of round(p, 6): the decimal tables give repr(q / 10⁶)."""
    q = np.arange(1_000_001)
    head, tail, whole, small = _DECIMALS
    hi, lo = np.divmod(np.minimum(q, 999_999), 1000)
    got = np.where(lo > 0, head[hi] + tail[lo], whole[hi])
    got[q < 100], got[q == 1_000_000] = small[q[q < 100]], "1.0"
    assert got.tolist() == [repr(int(v) / 1e6) for v in q]
    p = np.array([0.0, 1.0, 0.5, 0.1234564, 0.1234566, 4.9e-7, 5.1e-7, 0.0000994, 0.99999951], np.float32)
    assert _p_strings(p) == [repr(round(float(v), 6)) for v in p]


def test_the_separator_table_is_the_tokenizers_separator_class():
    separator = re.compile(f"[{_SEPARATOR}]")
    expected = np.array([bool(separator.match(chr(c))) for c in range(65536)])
    np.testing.assert_array_equal(separator_table(), expected)
    assert not any(separator.match(chr(c)) for c in range(65536, 0x110000, 97))
    assert set(_NOT_SPACE) == {chr(c) for c in range(65536) if expected[c] and not chr(c).isspace()}


def test_a_line_too_long_for_one_piece_is_written_as_if_whole(tiny_model_dir, tmp_path):
    tagger = Tagger.load(tiny_model_dir)
    lines = ["museums in Paris are amazing", "a long line: " + "I live in Paris , near Rome . " * 40,
             "", "the end in Lima"]
    path = tmp_path / "long.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    for fmt in FORMATS:
        written = []
        counts = LinePipeline(tagger, fmt).run_pieces(read_pieces(path, max_chars=100), written.append)
        assert "".join(written) == reference(tagger, lines, fmt)
        assert counts.lines == 4


def test_it_pulls_lines_only_as_it_needs_them(tiny_model_dir):
    pulled = []

    def lines():  # endless
        for i in itertools.count():
            pulled.append(i)
            yield "museums in Paris are amazing\n"

    class Enough(Exception):
        pass

    def write(text):
        raise Enough

    with pytest.raises(Enough):
        LinePipeline(Tagger.load(tiny_model_dir), "text").run(lines(), write, max_chars=3000)
    assert len(pulled) <= 3 * 3000 // 29 + 2  # the chunk written, the one scored meanwhile, the one being read


@pytest.mark.parametrize("fmt", FORMATS)
def test_predict_file_writes_what_the_per_line_path_writes(tiny_model_dir, tmp_path, fmt):
    lines = corpus_lines()[:3000]
    path = tmp_path / "in.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["predict", "--model", str(tiny_model_dir), "--file", str(path),
                                      "--format", fmt])
    assert result.exit_code == 0, result.output
    assert result.output == reference(Tagger.load(tiny_model_dir), lines, fmt)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", " ", "\n", "\r", "\r\n", "é", "Paris ", "\t", "x" * 30]), max_size=60)
       .map("".join), st.integers(2, 40), st.integers(1, 50))
def test_read_blocks_gives_read_pieces_lines(text, max_chars, block_bytes):
    """textio.read_blocks: the same lines and pieces as read_pieces, whole lines grouped in lists."""
    import io

    from ner_window import textio
    from ner_window.textio import Piece, read_blocks

    old, textio.BLOCK_BYTES = textio.BLOCK_BYTES, block_bytes
    try:
        data = text.encode("utf-8")
        flat = []
        for item in read_blocks(io.BytesIO(data), max_chars=max_chars):
            flat += [Piece(t, 0, True) for t in item] if isinstance(item, list) else [item]
        assert flat == list(read_pieces(io.BytesIO(data), max_chars=max_chars))
    finally:
        textio.BLOCK_BYTES = old


def test_read_blocks_names_the_line_of_a_bad_byte_as_read_pieces_does(tmp_path):
    from ner_window.errors import DataError
    from ner_window.textio import read_blocks

    path = tmp_path / "bad.txt"
    path.write_bytes(b"Paris\n" * 5 + b"caf\xe9\n")
    messages = []
    for reader in (read_blocks, read_pieces):
        with pytest.raises(DataError) as e:
            list(reader(path))
        messages.append(str(e.value))
    assert messages[0] == messages[1] and "(line 6)" in messages[0]
