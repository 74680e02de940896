"""scripts/btc_boundaries.py: which boundary a wrong LOC span disagrees on.  The sentences are written
here, shaped like the Broad Twitter Corpus's conventions; the expected rows follow from the rules in
the script's docstring, read off by hand.  End to end on a small BTC-style directory and the tiny model."""

import doctest
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("btc_boundaries", ROOT / "scripts" / "btc_boundaries.py")
btc_boundaries = importlib.util.module_from_spec(spec)
spec.loader.exec_module(btc_boundaries)


def test_doctests():
    assert doctest.testmod(btc_boundaries).failed == 0


@pytest.mark.parametrize("text, gold, pred, row", [
    # BTC joins a place and its state; the model (CoNLL-2003 guidelines) tags two places
    ("in Las Vegas , NV", "O B-LOC I-LOC I-LOC I-LOC", "O B-LOC I-LOC O B-LOC", 'LOC: gold joins "place , region"'),
    # BTC's tokeniser split "St." and kept the "." in the name
    ("Aldgate .", "B-LOC I-LOC", "B-LOC O", 'LOC: gold takes a split-off "."'),
    ("in Eastern Ukraine", "O B-LOC I-LOC", "O O B-LOC", "LOC: gold starts with a direction"),
    ("been to Griffins", "O B-LOC I-LOC", "O O B-LOC", "LOC: gold starts with the/to/at"),
    ("at Nottingham Railway Station", "O B-LOC I-LOC I-LOC", "O B-LOC O O", "LOC: gold ends in a facility noun"),
    ("near Hatton Garden", "O B-LOC I-LOC", "O O B-LOC", "LOC: other"),
    ("Hamilton Police said", "B-ORG I-ORG O", "B-LOC O O", "ORG: place inside an organisation"),
    ("Come on Liverpool", "O O B-ORG", "O O B-LOC", "ORG: same span"),
    ("Arndale fish market", "B-ORG I-ORG I-ORG", "B-LOC O O", "ORG: other"),
    ("President Obama spoke", "B-PER I-PER O", "O B-LOC O", "PER: other"),
    ("Obama spoke", "B-PER O", "B-LOC O", "PER: same span"),
    ("yay lol", "O O", "B-LOC O", "no gold entity"),
])
def test_each_row_on_a_worked_example(text, gold, pred, row):
    assert {r[0] for r in btc_boundaries.wrong_spans(text.split(), gold.split(), pred.split())} == {row}


def test_two_pieces_of_one_gold_name_are_two_rows():
    rows = btc_boundaries.wrong_spans("at St . Petersburg".split(), "O B-LOC I-LOC I-LOC".split(), "O B-LOC O B-LOC".split())
    assert rows == [('LOC: gold takes a split-off "."', "St", "St . Petersburg"),
                    ('LOC: gold takes a split-off "."', "Petersburg", "St . Petersburg")]


def test_a_correct_span_and_a_span_of_another_type_are_not_counted():
    tokens = "Leeds and Malaysia Airlines".split()
    gold = ["B-LOC", "O", "B-ORG", "I-ORG"]
    assert btc_boundaries.wrong_spans(tokens, gold, ["B-LOC", "O", "B-ORG", "I-ORG"]) == []


def test_table_counts_rows_and_shows_examples():
    rows = [("no gold entity", "yay", ""), ("no gold entity", "lol", ""), ("ORG: same span", "Liverpool", "Liverpool")]
    out = btc_boundaries.table(rows, examples=1).splitlines()
    assert out[0].startswith("| predicted LOC span that is not a gold LOC (3) |")
    assert out[2:] == ["| ORG: same span | 1 | `Liverpool` |", "| no gold entity | 2 | `yay` |"]


def test_end_to_end_on_a_btc_style_directory(tmp_path, tiny_model_dir, capsys):
    btc = tmp_path / "btc"
    btc.mkdir()
    (btc / "x.conll").write_text("flights\tO\nto\tO\nParis\tB-LOC\n\nMalaysia\tB-ORG\nAirlines\tI-ORG\n\n",
                                 encoding="utf-8")
    assert btc_boundaries.main([str(tiny_model_dir), "--btc", str(btc)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| predicted LOC span that is not a gold LOC (")


def test_a_directory_without_btc_files_is_one_line_and_exit_2(tmp_path, tiny_model_dir, capsys):
    assert btc_boundaries.main([str(tiny_model_dir), "--btc", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no *.conll files there" in err and len(err.strip().splitlines()) == 1
