"""Bad input gives one clear line and exit code 2; unusual but valid input just works.

Every case goes through the command line (click's CliRunner, and a real subprocess for a
few) and checks: exit code 2, exactly one line on stderr that names the file / line / key,
no traceback, and no output file left behind.  Text to tag, however odd, is tagged with
exit code 0.
"""

import codecs
import json
import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ner_window.artifact import META_FILE, PARAMS_FILE, save_model
from ner_window.cli import cli
from ner_window.config import load_config
from ner_window.conll import read_conll
from ner_window.model import init_params
from ner_window.vocab import build_vocab
from ner_window.windows import CASING_CLASSES

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "configs" / "tiny.yaml"
TRAIN = ROOT / "data" / "train.txt"
DEV = ROOT / "data" / "dev.txt"
GOOD = "Paris NNP B-LOC\nis VBZ O\nbig JJ O\n\nRome NNP B-LOC\n"


def run(*args, input=None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=input)


def assert_user_error(r, *named):
    """Exit 2, one line on stderr naming every string in ``named``, no traceback."""
    assert r.exit_code == 2, (r.exit_code, r.output, r.exception)
    assert isinstance(r.exception, SystemExit), r.exception  # not an unexpected exception caught by the runner
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("ner-window: error: "), lines[0]
    assert "Traceback" not in r.output
    for name in named:
        assert name in lines[0], (name, lines[0])
    return lines[0]


def write(path: Path, content) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A small (untrained) model written by the real artifact writer: enough to tag and evaluate."""
    cfg = load_config(TINY, ["model.hidden=8", "embeddings.source=random", "embeddings.dim=8"])
    vocab = build_vocab([s.tokens for s in read_conll(TRAIN, "iob2")])
    params = init_params(len(vocab), 8, cfg.model.radius, 8, n_casing=len(CASING_CLASSES), d_c=4,
                         rng=np.random.default_rng(0))
    path = tmp_path_factory.mktemp("models") / "good"
    save_model(path, params, vocab, {"config": cfg.to_dict(), "classes": ["O", "LOC"], "threshold": 0.5})
    return path


@pytest.fixture
def broken_model(model_dir, tmp_path):
    """A fresh copy of the good model, to be damaged by the test."""
    dst = tmp_path / "model"
    dst.mkdir()
    for f in model_dir.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


# --- data files ---------------------------------------------------------------------------------

BAD_DATA = {
    "empty": (b"", "holds no tokens"),
    "only_blank_lines_and_docstart": ("\n\n-DOCSTART- -X- O\n\n", "holds no tokens"),
    "truncated_mid_line": ("Paris NNP B-LOC\nis VBZ O\nRo", ":3: expected a token and its NER tag"),
    "truncated_mid_tag": ("Paris NNP B-LOC\nis VBZ O\nRome NNP B-", ":3: unknown tag 'B-'"),
    "binary": (bytes(range(256)) * 8, "binary"),
    "latin1": ("Paris NNP B-LOC\ncafé NN O\n".encode("latin-1"), ":2: byte 0xe9 is not valid UTF-8"),
    "utf16_with_bom": (GOOD.encode("utf-16"), "UTF-16"),
    "utf16_without_bom": (GOOD.encode("utf-16-le"), "UTF-16"),
    "wrong_column_count": ("Paris NNP B-LOC\nis O\n", ":2: has 2 columns but line 1 has 3"),
    "token_with_a_space_in_a_tab_file": ("Paris\tB-LOC\nNew York\tB-LOC\n", ":2: has 3 columns but line 1 has 2"),
    "unknown_tag": ("Paris NNP B-LOC\nis VBZ LOCATION\n", ":2: unknown tag 'LOCATION'"),
    "prefix_not_in_scheme": ("Paris NNP S-LOC\n", ":1: unknown tag 'S-LOC' for scheme iob2"),
    "one_mb_line": ("Paris NNP B-LOC\n" + "x" * 1_000_000 + " NN O\n", ":2: line is 1,000,005 characters long"),
}


@pytest.mark.parametrize("case", sorted(BAD_DATA))
def test_bad_data_file_in_data_stats(tmp_path, case):
    content, message = BAD_DATA[case]
    f = write(tmp_path / "bad.txt", content)
    assert_user_error(run("data", "stats", "--scheme", "iob2", f), "bad.txt", message)


@pytest.mark.parametrize("case", sorted(BAD_DATA))
def test_bad_data_file_in_evaluate_leaves_no_predictions_file(tmp_path, model_dir, case):
    content, message = BAD_DATA[case]
    f = write(tmp_path / "bad.txt", content)
    out = tmp_path / "pred.txt"
    r = run("evaluate", "--model", model_dir, "--data", f, "--predictions", out, "--pr-curve", tmp_path / "pr.csv")
    assert_user_error(r, "bad.txt", message)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.txt"]  # no predictions, no PR curve, no temp files


@pytest.mark.parametrize("case", ["latin1", "wrong_column_count", "empty", "one_mb_line"])
def test_bad_data_file_in_train_leaves_no_run_directory(tmp_path, case):
    content, message = BAD_DATA[case]
    f = write(tmp_path / "bad.txt", content)
    r = run("train", "--config", TINY, "--out", tmp_path / "run", "--set", f"data.train={f}",
            "--set", "data.scheme=iob2")
    assert_user_error(r, "bad.txt", message)
    assert not (tmp_path / "run").exists()


def test_missing_file_and_directory_name_the_path(tmp_path, model_dir):
    assert_user_error(run("data", "stats", tmp_path / "nope.txt"), "nope.txt", "no such file")
    assert_user_error(run("data", "stats", tmp_path), str(tmp_path), "is a directory")
    out = tmp_path / "pred.txt"
    assert_user_error(run("evaluate", "--model", model_dir, "--data", tmp_path / "nope.txt", "--predictions", out),
                      "nope.txt", "no such file")
    assert not out.exists()
    # through train the data path is a config key, so the message names the key
    for key in ("train", "dev"):
        r = run("train", "--config", TINY, "--out", tmp_path / "run", "--set", f"data.{key}={tmp_path / 'nope.txt'}")
        assert_user_error(r, f"data.{key}", "nope.txt", "does not exist")
        r = run("train", "--config", TINY, "--out", tmp_path / "run", "--set", f"data.{key}={tmp_path}")
        assert_user_error(r, f"data.{key}", "is a directory")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("name, raw", [
    ("crlf", b"Paris NNP B-LOC\r\nis VBZ O\r\nbig JJ O\r\n\r\nRome NNP B-LOC\r\n"),
    ("bom", b"\xef\xbb\xbf" + GOOD.encode()),
    ("no_final_newline", GOOD.rstrip("\n").encode()),
    ("trailing_spaces", GOOD.replace("\n", "  \n").encode()),
    ("mixed_tabs_and_spaces", b"Paris\tNNP B-LOC\nis \t VBZ\tO\nbig JJ\t\tO\n \t\nRome NNP\tB-LOC"),
    ("all_of_them", b"\xef\xbb\xbfParis\tNNP B-LOC \r\nis VBZ O\t\r\nbig JJ O\r\n\r\nRome NNP B-LOC  "),
])
def test_unusual_but_valid_files_are_read_correctly(tmp_path, name, raw):
    f = write(tmp_path / f"{name}.txt", raw)
    r = run("data", "stats", "--scheme", "iob2", "--format", "json", f)
    assert r.exit_code == 0, r.output
    stats = json.loads(r.stdout)["files"][0]
    assert (stats["sentences"], stats["tokens"], stats["entities"]) == (2, 4, {"LOC": 2})
    sents = read_conll(f, "iob2")
    assert [s.tokens for s in sents] == [("Paris", "is", "big"), ("Rome",)]
    assert [s.tags for s in sents] == [("B-LOC", "O", "O"), ("B-LOC",)]


# --strict: a sequence the scheme forbids is read leniently (as conlleval does) unless asked

FORBIDDEN = [
    ("iob2", "The DT O\nParis NNP I-LOC\n", "I-LOC"),  # I- must follow B- or I- of its type
    ("bioes", "The DT O\nParis NNP E-LOC\n", "E-LOC"),  # E- must close a B-
    ("iob1", "The DT O\nParis NNP B-LOC\n", "B-LOC"),  # iob1 B- only between two entities of one type
]


@pytest.mark.parametrize("scheme, text, tag", FORBIDDEN)
def test_forbidden_sequence_is_lenient_by_default_and_rejected_with_its_line_under_strict(tmp_path, model_dir,
                                                                                          scheme, text, tag):
    f = write(tmp_path / "seq.txt", text)
    r = run("data", "stats", "--scheme", scheme, "--format", "json", f)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["files"][0]["entities"] == {"LOC": 1}  # decoded as conlleval does
    line = assert_user_error(run("data", "stats", "--scheme", scheme, "--strict", f), "seq.txt:2:", tag, "--strict")
    assert "not allowed" in line

    out = tmp_path / "pred.txt"
    r = run("evaluate", "--model", model_dir, "--data", f, "--scheme", scheme, "--predictions", out)
    assert r.exit_code == 0, r.output
    out.unlink()
    r = run("evaluate", "--model", model_dir, "--data", f, "--scheme", scheme, "--strict", "--predictions", out)
    assert_user_error(r, "seq.txt:2:", tag)
    assert not out.exists()


def test_strict_config_key_is_passed_to_the_reader_by_train(tmp_path):
    f = write(tmp_path / "seq.txt", "The DT O\nParis NNP I-LOC\n")
    r = run("train", "--config", TINY, "--out", tmp_path / "run", "--set", f"data.train={f}",
            "--set", "data.strict=true", "--set", "train.batch_size=1")
    assert_user_error(r, "seq.txt:2:", "I-LOC")
    assert not (tmp_path / "run").exists()
    assert load_config(TINY).data.strict is False  # lenient by default


# --- configs ---------------------------------------------------------------------------------------

BAD_CONFIGS = {
    "unknown_key": ("train:\n  lrr: 0.1\n", ["c.yaml", "train.lrr", "did you mean 'lr'"]),
    "unknown_section": ("trian:\n  lr: 0.1\n", ["c.yaml", "trian"]),
    "wrong_type": ("train:\n  lr: fast\n", ["c.yaml", "train.lr", "must be float"]),
    "wrong_type_bool_for_int": ("train:\n  epochs: yes\n", ["train.epochs", "must be int"]),
    "zero_learning_rate": ("train:\n  lr: 0\n", ["train.lr", "must be > 0"]),
    "negative_learning_rate": ("train:\n  lr: -0.5\n", ["train.lr", "must be > 0"]),
    "negative_radius": ("model:\n  radius: -1\n", ["model.radius", "must be >= 0"]),
    "nan_learning_rate": ("train:\n  lr: .nan\n", ["train.lr", "must be a finite number"]),
    "infinite_l2": ("train:\n  l2: .inf\n", ["train.l2", "must be a finite number"]),
    "not_a_mapping": ("- data\n- train\n", ["c.yaml", "must be a YAML mapping"]),
    "a_scalar": ("just text\n", ["c.yaml", "must be a YAML mapping"]),
    "section_not_a_mapping": ("train: 3\n", ["c.yaml", "section 'train' must be a mapping"]),
    "not_yaml": ("train:\n  lr: [0.1\n", ["c.yaml:", "not valid YAML"]),
    "not_utf8": (b"train:\n  seed: \xff\n", ["c.yaml", "UTF-8"]),
    "python_object_tag": ("train: !!python/object/apply:os.system [echo hi]\n", ["c.yaml", "not valid YAML"]),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_file(tmp_path, case):
    text, named = BAD_CONFIGS[case]
    c = write(tmp_path / "c.yaml", text)
    assert_user_error(run("train", "--config", c, "--out", tmp_path / "run"), *named)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("overrides, named", [
    (["train.batch_size=1000000"], ["train.batch_size", "larger than the training data"]),
    (["data.train=null"], ["data.train", "must be str"]),
    (["embeddings.source=file"], ["embeddings.path", "required"]),
    (["embeddings.source=file", "embeddings.path=/nonexistent/vectors.txt"], ["embeddings.path", "vectors.txt",
                                                                              "no such file"]),
    (["train.lr=-1"], ["train.lr"]),
    (["model.radius=-2"], ["model.radius"]),
    (["nosection.key=1"], ["nosection"]),
    (["lr=0.1"], ["lr=0.1", "section.key=value"]),
])
def test_bad_config_values_through_set(tmp_path, overrides, named):
    args = [a for o in overrides for a in ("--set", o)]
    assert_user_error(run("train", "--config", TINY, "--out", tmp_path / "run", *args), *named)
    assert not (tmp_path / "run").exists()


def test_run_directory_that_cannot_be_created(tmp_path):
    f = write(tmp_path / "a_file", "x")
    r = run("train", "--config", TINY, "--out", f / "run", "--set", "embeddings.source=random",
            "--set", "embeddings.dim=8")
    assert_user_error(r, "--out", "a_file", "cannot create the run directory")


def test_e_notation_is_a_number_although_yaml_1_1_reads_it_as_text(tmp_path):
    # PyYAML (YAML 1.1) turns 1e-3 and 1.0e6 into strings; a learning rate is still a number
    c = write(tmp_path / "c.yaml", "train:\n  lr: 1e-3\n  l2: 1.0e6\n")
    cfg = load_config(c, ["train.pos_weight=2E+1"])
    assert (cfg.train.lr, cfg.train.l2, cfg.train.pos_weight) == (1e-3, 1e6, 20.0)
    assert_user_error(run("train", "--config", c, "--set", "train.lr=1e"), "train.lr", "must be float")


def test_missing_config_file(tmp_path):
    assert_user_error(run("train", "--config", tmp_path / "nope.yaml"), "nope.yaml", "no such config file")
    assert_user_error(run("train"), "--config")


# --- model directories -----------------------------------------------------------------------------


def _damage(model: Path, case: str) -> str:
    """Damage ``model`` as ``case`` says; return the file the message must name."""
    meta = json.loads((model / META_FILE).read_text())
    if case == "missing_npz":
        (model / PARAMS_FILE).unlink()
        return PARAMS_FILE
    if case == "truncated_npz":
        raw = (model / PARAMS_FILE).read_bytes()
        (model / PARAMS_FILE).write_bytes(raw[: len(raw) // 2])
        return PARAMS_FILE
    if case == "npz_not_a_zip":
        (model / PARAMS_FILE).write_text("hello")
        return PARAMS_FILE
    if case == "npz_with_pickled_object":
        arrays = dict(np.load(model / PARAMS_FILE))
        arrays["W"] = np.array([{"a": 1}], dtype=object)
        with open(model / PARAMS_FILE, "wb") as f:
            np.savez(f, **arrays)
        return PARAMS_FILE
    if case == "npz_is_a_npy":
        with open(model / PARAMS_FILE, "wb") as f:
            np.save(f, np.zeros(3))
        return PARAMS_FILE
    if case == "meta_not_json":
        (model / META_FILE).write_text("{ this is not json")
        return META_FILE
    if case == "meta_missing":
        (model / META_FILE).unlink()
        return META_FILE
    if case == "meta_a_list":
        (model / META_FILE).write_text("[1, 2]")
        return META_FILE
    if case == "future_format_version":
        meta["format_version"] = 99
    elif case == "format_version_0":
        meta["format_version"] = 0
    elif case == "vocabulary_longer_than_E":
        meta["vocab"].append("zzzunseen")
    elif case == "hidden_disagrees_with_W":
        meta["config"]["model"]["hidden"] = 9
    elif case == "radius_disagrees_with_W":
        meta["config"]["model"]["radius"] = 3
    elif case == "vocabulary_not_strings":
        meta["vocab"] = [1, 2, 3]
    elif case == "threshold_not_a_number":
        meta["threshold"] = "high"
    elif case == "classes_not_a_list":
        meta["classes"] = "OLOC"
    elif case == "location_types_missing":
        del meta["config"]["data"]["location_types"]
    (model / META_FILE).write_text(json.dumps(meta))
    in_meta = ("future_format_version", "format_version_0", "vocabulary_not_strings", "threshold_not_a_number",
               "classes_not_a_list", "location_types_missing")
    return META_FILE if case in in_meta else PARAMS_FILE


MODEL_CASES = {
    "missing_npz": "missing", "truncated_npz": "cannot be read", "npz_not_a_zip": "cannot be read",
    "npz_with_pickled_object": "cannot be read", "meta_not_json": "not valid JSON", "meta_missing": "missing",
    "meta_a_list": "JSON object", "future_format_version": "format version 99 is newer",
    "format_version_0": "format version 0 is not one ner-window writes",
    "vocabulary_longer_than_E": "E has shape", "hidden_disagrees_with_W": "has shape",
    "radius_disagrees_with_W": "W has shape", "vocabulary_not_strings": "vocabulary",
    "npz_is_a_npy": "cannot be read", "threshold_not_a_number": "threshold = 'high' must be a number",
    "classes_not_a_list": "classes", "location_types_missing": "location_types",
}


@pytest.mark.parametrize("case", sorted(MODEL_CASES))
def test_damaged_model_directory(tmp_path, broken_model, case):
    named = _damage(broken_model, case)
    assert_user_error(run("predict", "--model", broken_model, "Paris is nice"), named, MODEL_CASES[case])
    out = tmp_path / "pred.txt"
    r = run("evaluate", "--model", broken_model, "--data", DEV, "--predictions", out)
    assert_user_error(r, named, MODEL_CASES[case])
    assert not out.exists()


def test_missing_model_directory(tmp_path):
    assert_user_error(run("predict", "--model", tmp_path / "nope", "Paris"), "nope", "no model here")
    assert_user_error(run("evaluate", "--model", tmp_path / "nope", "--data", DEV), "nope", "no model here")
    f = write(tmp_path / "file", "x")
    assert_user_error(run("predict", "--model", f, "Paris"), "file", "is a file")


def test_paths_stored_in_a_model_are_never_opened(tmp_path, broken_model):
    # a model from another machine: its config names files that do not exist here
    meta = json.loads((broken_model / META_FILE).read_text())
    meta["config"]["data"].update(train="/nonexistent/train.txt", dev="../../../etc/passwd", test=None)
    meta["config"]["embeddings"].update(source="file", path="/nonexistent/vectors.bin")
    (broken_model / META_FILE).write_text(json.dumps(meta))
    r = run("predict", "--model", broken_model, "--format", "json", "Paris is nice")
    assert r.exit_code == 0, r.output
    r = run("evaluate", "--model", broken_model, "--data", DEV, "--format", "json")
    assert r.exit_code == 0, r.output


def test_unwritable_output_paths_fail_before_anything_is_written(tmp_path, model_dir):
    out = tmp_path / "pred.txt"
    r = run("evaluate", "--model", model_dir, "--data", DEV, "--predictions", out,
            "--pr-curve", tmp_path / "no_such_dir" / "pr.csv")
    assert_user_error(r, "--pr-curve", "no_such_dir")
    assert not out.exists()
    r = run("evaluate", "--model", model_dir, "--data", DEV, "--predictions", tmp_path)
    assert r.exit_code == 2  # click refuses a directory for a file option


# --- text to tag ------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "", "   ", "\t \u3000 \u200b",
    "Rendez-vous à Zürich 🇨🇭 puis 👍🏽 à Paris 👨‍👩‍👧 !",
    "北京 Москва القاهرة मुंबई 東京都 Αθήνα תל־אביב",
    "Paris\x00is\x07 in\x1b[31m France\x7f\x85\u2028end",
])
def test_odd_text_is_tagged_with_exit_code_0(model_dir, text):
    r = run("predict", "--model", model_dir, "--format", "json", text)
    assert r.exit_code == 0, (r.output, r.exception)
    doc = json.loads(r.stdout)
    assert doc["text"] == text
    for tok in doc["tokens"]:
        assert text[tok["start"]:tok["end"]] == tok["text"] and tok["text"].strip()
        assert not any(ch in tok["text"] for ch in "\x00\x07\x1b\x7f\x85")  # control characters separate tokens


def test_file_of_odd_lines_gives_one_output_per_line(tmp_path, model_dir):
    f = write(tmp_path / "in.txt", "\n   \n\u00e9t\u00e9 \u00e0 Paris\r\n\U0001F600\nRome\x07Milan\x1b[0m".encode())
    r = run("predict", "--model", model_dir, "--file", f, "--format", "jsonl")
    assert r.exit_code == 0, (r.output, r.exception)
    docs = [json.loads(line) for line in r.stdout.splitlines()]
    assert [d["text"] for d in docs] == ["", "   ", "\u00e9t\u00e9 \u00e0 Paris", "\U0001F600", "Rome\x07Milan\x1b[0m"]
    assert docs[0]["tokens"] == [] and docs[1]["tokens"] == []
    assert [t["text"] for t in docs[4]["tokens"]][:2] == ["Rome", "Milan"]
    r = run("predict", "--model", model_dir, input="")  # empty stdin: nothing to tag, not an error
    assert r.exit_code == 0 and r.stdout == ""


# text that is not UTF-8 is refused with its byte offset, never tagged as mangled text
NOT_UTF8 = {
    "latin1": ("Z\u00fcrich is nice\n".encode("latin-1"), "byte 0xfc at byte offset 1 (line 1) is not valid UTF-8"),
    "utf16_without_bom": ("Paris\n".encode("utf-16-le"), "a NUL character at byte offset 1 (line 1)"),
    "binary": (bytes(range(256)) * 4, "a NUL character at byte offset 0 (line 1): this is binary data"),
    "late_latin1": (b"Paris\n" * 1000 + b"caf\xe9\n", "byte 0xe9 at byte offset 6,003 (line 1,001)"),
}


@pytest.mark.parametrize("case", sorted(NOT_UTF8))
def test_text_that_is_not_utf8_is_refused_with_its_offset(tmp_path, model_dir, case):
    raw, message = NOT_UTF8[case]
    f = write(tmp_path / "in.txt", raw)
    line = assert_user_error(run("predict", "--model", model_dir, "--file", f), "in.txt", message)
    assert "--encoding" in line
    line = assert_user_error(run("predict", "--model", model_dir, "--format", "jsonl", input=raw), "stdin", message)


@pytest.mark.parametrize("raw, encoding", [
    ("Z\u00fcrich is nice\n".encode("latin-1"), "latin-1"),
    ("Z\u00fcrich is nice\n".encode("utf-16-le"), "utf-16-le"),
    (codecs.BOM_UTF16_LE + "Z\u00fcrich is nice\n".encode("utf-16-le"), None),
    (codecs.BOM_UTF16_BE + "Z\u00fcrich is nice\n".encode("utf-16-be"), None),
    (codecs.BOM_UTF8 + "Z\u00fcrich is nice\n".encode(), None),
])
def test_a_byte_order_mark_or_encoding_gives_the_text_and_its_offsets(tmp_path, model_dir, raw, encoding):
    f = write(tmp_path / "in.txt", raw)
    args = ["--encoding", encoding] if encoding else []
    r = run("predict", "--model", model_dir, "--file", f, "--format", "jsonl", *args)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["text"] == "Z\u00fcrich is nice"  # no mark in the text: offsets start at the first letter
    assert [(t["text"], t["start"]) for t in doc["tokens"]] == [("Z\u00fcrich", 0), ("is", 7), ("nice", 10)]


def test_predict_cli_edges(tmp_path, model_dir):
    f = write(tmp_path / "in.txt", "museums in Paris\nRome\n")
    assert_user_error(run("predict", "--model", model_dir, "--file", f, "Paris"), "TEXT or --file, not both")
    assert_user_error(run("predict", "--model", model_dir, "--encoding", "latin-1", "Paris"), "--encoding")
    assert_user_error(run("predict", "--model", model_dir, "--file", f, "--encoding", "klingon"),
                      "--encoding klingon: unknown encoding")
    # --format json is one JSON document: an object for TEXT, an array for a file (one object a line)
    r = run("predict", "--model", model_dir, "--format", "json", "--file", f)
    assert r.exit_code == 0 and [d["text"] for d in json.loads(r.stdout)] == ["museums in Paris", "Rome"]
    r = run("predict", "--model", model_dir, "--format", "json", input="")
    assert r.exit_code == 0 and json.loads(r.stdout) == []
    r = run("predict", "--model", model_dir, "--format", "json", "museums in Paris")
    assert r.exit_code == 0 and json.loads(r.stdout)["text"] == "museums in Paris"


def test_a_100000_word_line_is_tagged_in_bounded_memory_and_time(tmp_path, model_dir):
    words = ("museums in Paris are amazing , said Ms. Smith of the U.S. on 1996-08-22 . " * 7000).split()[:100_000]
    f = write(tmp_path / "long.txt", " ".join(words) + "\n")
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        r = run("predict", "--model", model_dir, "--file", f, "--format", "conll")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    seconds = time.perf_counter() - t0
    assert r.exit_code == 0, (r.output[-500:], r.exception)
    assert len(r.stdout.splitlines()) == 100_000 + 1  # one line per token, a blank line after the text
    # ~100 MB is ~1 kB per word: everything the tagger keeps per word fits in well under that
    assert peak < 150e6, f"peak {peak / 1e6:.0f} MB"
    assert seconds < 30


# --- a real process: the console script, its exit code and its stderr ------------------------------


@pytest.mark.parametrize("args, named", [
    (["data", "stats", "{tmp}/bad.txt"], "bad.txt:2: has 2 columns"),
    (["train", "--config", "{tmp}/c.yaml"], "train.lrr"),
    (["predict", "--model", "{tmp}/nope", "Paris"], "no model here"),
])
def test_console_script_prints_one_line_and_no_traceback(tmp_path, args, named):
    write(tmp_path / "bad.txt", "Paris NNP B-LOC\nis O\n")
    write(tmp_path / "c.yaml", "train:\n  lrr: 1\n")
    argv = [sys.executable, "-m", "ner_window.cli", *(a.format(tmp=tmp_path) for a in args)]
    env = {k: v for k, v in os.environ.items() if k != "NER_WINDOW_DEBUG"}
    p = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)
    assert p.returncode == 2, p.stderr
    assert p.stderr.count("\n") == 1 and named in p.stderr and "Traceback" not in p.stderr
    # --debug shows the traceback
    p = subprocess.run(argv[:3] + ["--debug"] + argv[3:], capture_output=True, text=True, cwd=tmp_path, env=env,
                       timeout=60)
    assert p.returncode != 0 and "Traceback" in p.stderr
