"""Training on more than one file (data.train_extra), and tab-separated files with awkward tokens
(data.clean_tokens): what the third config of issue 15 needs to read CoNLL-2003 and the Broad
Twitter Corpus together.  The expected counts are counted by hand from the small files written here."""

import json
import subprocess
import sys

import pytest

from ner_window.config import load_config
from ner_window.conll import read_conll
from ner_window.errors import ConfigError, DataError
from ner_window.train import train

from conftest import ROOT

# a BTC-style file: token<TAB>tag, IOB2, with the two kinds of awkward line BTC has
# (line 3: a token with a space inside; line 5: an empty token)
TSV = "@\tB-PER\ncolgo\tB-PER\nke s\tO\nin\tO\n\tO\nLeeds\tB-LOC\n\nrainy\tO\nLeeds\tB-LOC\n\n"
# a CoNLL-2003-style file: 4 columns, IOB1 (I- starts an entity)
IOB1 = "-DOCSTART- -X- -X- O\n\nRain NN B-NP O\nin IN B-PP O\nParis NNP B-NP I-LOC\n. . O O\n"


def test_awkward_tab_separated_lines_are_an_error_with_the_line_and_the_fix(tmp_path):
    p = tmp_path / "btc.conll"
    p.write_text(TSV, encoding="utf-8")
    with pytest.raises(DataError, match=r"btc\.conll:3: has 3 columns but line 1 has 2.*data\.clean_tokens: true"):
        read_conll(p, "iob2")
    p.write_text(TSV.replace("ke s", "kes"), encoding="utf-8")
    with pytest.raises(DataError, match=r"btc\.conll:5: expected a token .* found 1 column 'O'.*clean_tokens"):
        read_conll(p, "iob2")


def test_clean_tokens_removes_inner_whitespace_and_drops_empty_tokens(tmp_path):
    p = tmp_path / "btc.conll"
    p.write_text(TSV, encoding="utf-8")
    sents = read_conll(p, "iob2", clean_tokens=True)
    # by hand: 6 token lines in the first tweet, one of them empty (dropped), "ke s" -> "kes"
    assert [s.tokens for s in sents] == [("@", "colgo", "kes", "in", "Leeds"), ("rainy", "Leeds")]
    assert [s.tags for s in sents] == [("B-PER", "B-PER", "O", "O", "B-LOC"), ("O", "B-LOC")]


def test_clean_tokens_leaves_space_separated_files_alone(tmp_path):
    p = tmp_path / "conll.txt"
    p.write_text(IOB1, encoding="utf-8")
    assert read_conll(p, "iob1", clean_tokens=True) == read_conll(p, "iob1")


def _files(tmp_path):
    main, extra = tmp_path / "news.txt", tmp_path / "tweets.conll"
    main.write_text(IOB1 * 20, encoding="utf-8")   # 20 sentences of 4 tokens
    extra.write_text(TSV * 10, encoding="utf-8")   # 20 tweets: 10 x (5 + 2) tokens after cleaning
    return main, extra


def test_train_reads_data_train_then_every_extra_file_with_its_own_scheme(tmp_path):
    main, extra = _files(tmp_path)
    cfg = load_config(ROOT / "configs" / "tiny.yaml", [
        f"data.train={main}", f"data.dev={main}", "data.scheme=iob1", "data.clean_tokens=true",
        "embeddings.source=random", "embeddings.dim=8", "train.epochs=1", "train.batch_size=8"])
    cfg.data.train_extra = [str(extra)]  # read as IOB2, data.train_extra_scheme's default
    lines = []
    train(cfg, out_dir=tmp_path / "run", log=lines.append)
    # 20 x 4 news tokens + 10 x 7 tweet tokens; 20 + 20 sentences
    assert any("training on 150 windows (40 sentences)" in line for line in lines), lines
    saved = json.loads((tmp_path / "run" / "config.json").read_text(encoding="utf-8"))
    assert saved["data"]["train_extra"] == [str(extra)] and saved["data"]["clean_tokens"] is True


def test_a_missing_extra_file_is_a_config_error_naming_its_key(tmp_path):
    main, _ = _files(tmp_path)
    cfg = load_config(ROOT / "configs" / "tiny.yaml", [f"data.train={main}", "data.dev=null", "data.scheme=iob1"])
    cfg.data.train_extra = [str(tmp_path / "nope.conll")]
    with pytest.raises(ConfigError, match=r"data\.train_extra\[0\] = '.*nope\.conll' does not exist"):
        train(cfg, out_dir=tmp_path / "run", log=lambda s: None)


def test_cli_bad_extra_scheme_and_bad_extra_file_exit_2_with_one_line(tmp_path):
    main, extra = _files(tmp_path)
    base = [sys.executable, "-m", "ner_window.cli", "train", "--config", str(ROOT / "configs" / "tiny.yaml"),
            "--out", str(tmp_path / "run"), "--set", f"data.train={main}", "--set", "data.dev=null",
            "--set", "data.scheme=iob1", "--set", "embeddings.source=random", "--set", "embeddings.dim=8"]
    bad_scheme = subprocess.run([*base, "--set", "data.train_extra_scheme=iob3"], capture_output=True, text=True)
    assert bad_scheme.returncode == 2
    assert "data.train_extra_scheme = 'iob3' is not allowed; use one of: iob1, iob2" in bad_scheme.stderr
    assert "Traceback" not in bad_scheme.stderr
    # the tweets without data.clean_tokens: the reader's error, with the file, the line and the fix
    config = tmp_path / "extra.yaml"
    config.write_text(f"data:\n  train_extra: [{extra}]\n", encoding="utf-8")
    awkward = subprocess.run([*base[:4], "--config", str(config), *base[6:]], capture_output=True, text=True)
    assert awkward.returncode == 2, awkward.stderr
    assert "tweets.conll:3: has 3 columns" in awkward.stderr and "data.clean_tokens: true" in awkward.stderr
    assert "Traceback" not in awkward.stderr and len(awkward.stderr.strip().splitlines()) == 1
