"""Reading CoNLL files and decoding spans exactly as conlleval does."""

import json

import pytest
from click.testing import CliRunner

from ner_window.cli import cli
from ner_window.conll import (
    Sentence,
    detect_scheme,
    entity_spans,
    file_stats,
    read_conll,
    scheme_violation,
    token_types,
    write_conll,
)
from ner_window.errors import DataError


def write(tmp_path, text, name="f.txt", mode="w"):
    p = tmp_path / name
    if mode == "wb":
        p.write_bytes(text)
    else:
        p.write_text(text, encoding="utf-8")
    return p


# --- decoding: one worked example per scheme ------------------------------------


def test_iob1_i_starts_entity_and_b_separates_adjacent_same_type():
    # CoNLL-2003: "I-" starts an entity; "B-" only between two adjacent LOC entities
    tags = ["I-LOC", "I-LOC", "B-LOC", "O", "I-PER"]
    assert entity_spans(tags) == [("LOC", 0, 2), ("LOC", 2, 3), ("PER", 4, 5)]


def test_iob2_b_starts_every_entity():
    assert entity_spans(["B-LOC", "I-LOC", "B-LOC", "O", "B-ORG", "I-ORG"]) == [
        ("LOC", 0, 2), ("LOC", 2, 3), ("ORG", 4, 6)]


def test_iob2_i_after_o_starts_an_entity_as_conlleval_does():
    assert entity_spans(["O", "I-LOC", "I-LOC", "O"]) == [("LOC", 1, 3)]


def test_type_change_ends_an_entity():
    assert entity_spans(["I-LOC", "I-ORG"]) == [("LOC", 0, 1), ("ORG", 1, 2)]


def test_io_scheme_merges_adjacent_same_type():
    assert entity_spans(["I-LOC", "I-LOC", "O", "I-PER"]) == [("LOC", 0, 2), ("PER", 3, 4)]


def test_bioes():
    tags = ["S-LOC", "S-LOC", "B-PER", "E-PER", "B-LOC", "I-LOC", "E-LOC", "O"]
    assert entity_spans(tags) == [("LOC", 0, 1), ("LOC", 1, 2), ("PER", 2, 4), ("LOC", 4, 7)]


def test_entity_at_sentence_end_and_token_types():
    assert entity_spans(["O", "B-LOC"]) == [("LOC", 1, 2)]
    assert token_types(["O", "B-LOC", "I-LOC"]) == [None, "LOC", "LOC"]


def test_scheme_violations_for_strict_mode():
    assert scheme_violation(["O", "I-LOC"], "iob2") == 1
    assert scheme_violation(["B-LOC", "I-LOC"], "iob2") is None
    assert scheme_violation(["O", "B-LOC"], "iob1") == 1
    assert scheme_violation(["I-LOC", "B-LOC"], "iob1") is None
    assert scheme_violation(["O", "E-LOC"], "bioes") == 1
    assert scheme_violation(["B-LOC", "O"], "bioes") == 1
    assert scheme_violation(["B-LOC", "E-LOC", "S-PER"], "bioes") is None


def test_detect_scheme():
    assert detect_scheme([Sentence(("a", "b"), ("I-LOC", "O"))]) == "iob1"
    assert detect_scheme([Sentence(("a", "b"), ("B-LOC", "O"))]) == "iob2"
    assert detect_scheme([Sentence(("a",), ("S-LOC",))]) == "bioes"


# --- reading ---------------------------------------------------------------------


CONLL = """-DOCSTART- -X- O O

EU NNP I-NP I-ORG
rejects VBZ I-VP O
German JJ I-NP I-MISC
call NN I-NP O
. . O O

Peter NNP I-NP I-PER
Blackburn NNP I-NP I-PER

-DOCSTART- -X- O O

BRUSSELS NNP I-NP I-LOC
1996-08-22 CD I-NP O
"""


def test_reads_four_columns_token_first_tag_last(tmp_path):
    sents = read_conll(write(tmp_path, CONLL), "iob1")
    assert [s.tokens for s in sents] == [("EU", "rejects", "German", "call", "."), ("Peter", "Blackburn"),
                                         ("BRUSSELS", "1996-08-22")]
    assert sents[0].tags[0] == "I-ORG" and sents[0].line == 3
    assert [s.doc for s in sents] == [0, 0, 1]


@pytest.mark.parametrize("ncols", [2, 3, 4, 6])
def test_any_number_of_columns(tmp_path, ncols):
    mid = " x" * (ncols - 2)
    sents = read_conll(write(tmp_path, f"Paris{mid} B-LOC\nis{mid} O\n"), "iob2")
    assert sents[0].tokens == ("Paris", "is") and sents[0].tags == ("B-LOC", "O")


def test_tabs_spaces_and_tab_only_separator_line(tmp_path):
    text = "Paris\tNNP\tB-LOC\nis  VBZ \t O\n\t\nRome NNP B-LOC\n"
    sents = read_conll(write(tmp_path, text), "iob2")
    assert [s.tokens for s in sents] == [("Paris", "is"), ("Rome",)]


def test_docstart_at_end_of_document_is_a_marker_not_a_token(tmp_path):
    text = "Paris B-LOC\n-DOCSTART- O\nRome B-LOC\n\n-DOCSTART- O\n"
    sents = read_conll(write(tmp_path, text), "iob2")
    assert [s.tokens for s in sents] == [("Paris",), ("Rome",)]
    assert all("-DOCSTART-" not in s.tokens for s in sents)


def test_crlf_bom_no_final_newline_trailing_spaces(tmp_path):
    raw = "\ufeffParis B-LOC  \r\nis O\r\n\r\nRome B-LOC".encode("utf-8")
    sents = read_conll(write(tmp_path, raw, mode="wb"), "iob2")
    assert [s.tokens for s in sents] == [("Paris", "is"), ("Rome",)]
    assert sents[0].tags == ("B-LOC", "O")


def test_write_then_read_round_trips(tmp_path):
    sents = [Sentence(("Paris", "is", "big"), ("B-LOC", "O", "O"), 1, 0), Sentence(("Rome",), ("B-LOC",), 5, 0)]
    p = tmp_path / "out.txt"
    write_conll(p, sents)
    assert [(s.tokens, s.tags) for s in read_conll(p, "iob2")] == [(s.tokens, s.tags) for s in sents]


# --- errors name the file, the line and what was expected ---------------------------------


@pytest.mark.parametrize(
    "content, mode, match",
    [
        ("Paris NNP B-LOC\nis O\n", "w", r"f\.txt:2: has 2 columns but line 1 has 3"),
        ("Paris\n", "w", r"f\.txt:1: expected a token and its NER tag"),
        ("Paris B-LOC\nis LOCATION\n", "w", r"f\.txt:2: unknown tag 'LOCATION'"),
        ("Paris S-LOC\n", "w", r"f\.txt:1: unknown tag 'S-LOC' for scheme iob2"),
        (b"Paris B-LOC\ncaf\xe9 O\n", "wb", r"f\.txt:2: byte 0xe9 is not valid UTF-8"),
        ("Paris B-LOC\n".encode("utf-16"), "wb", r"UTF-16"),
        (b"\x00\x01\x02binary", "wb", r"binary"),
        ("", "w", r"holds no tokens"),
        ("\n\n-DOCSTART- O\n\n", "w", r"holds no tokens"),
        ("x" * 200_000 + " O\n", "w", r"f\.txt:1: line is 200,002 characters long"),
    ],
)
def test_bad_files_raise_data_error(tmp_path, content, mode, match):
    with pytest.raises(DataError, match=match):
        read_conll(write(tmp_path, content, mode=mode), "iob2")


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_conll(tmp_path / "nope.txt")
    with pytest.raises(DataError, match="is a directory"):
        read_conll(tmp_path)


def test_strict_rejects_forbidden_sequence_with_line_number(tmp_path):
    p = write(tmp_path, "The O\nParis I-LOC\n")
    assert read_conll(p, "iob2")[0].tags == ("O", "I-LOC")  # lenient, as conlleval
    with pytest.raises(DataError, match=r"f\.txt:2: tag 'I-LOC' is not allowed here in scheme iob2"):
        read_conll(p, "iob2", strict=True)


# --- stats and the CLI -----------------------------------------------------------------------


def test_file_stats(tmp_path):
    s = file_stats(write(tmp_path, CONLL), "iob1")
    assert s["documents"] == 2 and s["sentences"] == 3 and s["tokens"] == 9
    assert s["entities"] == {"LOC": 1, "MISC": 1, "ORG": 1, "PER": 1}
    assert s["entity_tokens"] == {"LOC": 1, "MISC": 1, "ORG": 1, "PER": 2}


def test_data_stats_cli_json_and_error_exit_code(tmp_path):
    p = write(tmp_path, CONLL)
    r = CliRunner().invoke(cli, ["data", "stats", str(p), "--format", "json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["files"][0]["tokens"] == 9 and doc["files"][0]["entities"]["PER"] == 1
    bad = write(tmp_path, "Paris NNP B-LOC\nis O\n", name="bad.txt")
    r = CliRunner().invoke(cli, ["data", "stats", str(bad)])
    assert r.exit_code == 2
    assert "bad.txt:2" in r.output and "Traceback" not in r.output
