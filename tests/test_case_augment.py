"""Case augmentation (train.case_lower / train.case_upper): a share of the training sentences
is read lowercased or uppercased each epoch, with its casing classes recomputed."""

import numpy as np
import pytest

from ner_window import train as train_module
from ner_window.config import load_config
from ner_window.errors import ConfigError
from ner_window.vocab import Vocab
from ner_window.windows import LOWER, MIXED, PAD, PUNCT, TITLE, UPPER, make_windows, recased_windows

VOCAB = Vocab(["<unk>", "<s>", "</s>", "paris", "is", "big", "mcdonald"])


def test_recased_windows_worked_example():
    sents = [["Paris", "is", "BIG"], ["McDonald", "."]]
    w = make_windows(sents, VOCAB, 1)
    ids, casing = recased_windows(sents, VOCAB, 1, w)
    assert ids.shape == casing.shape == (3, 5, 3)
    # the centre column (position 1 of each radius-1 window), token by token
    assert casing[0, :, 1].tolist() == [TITLE, LOWER, UPPER, MIXED, PUNCT]  # as written
    assert casing[1, :, 1].tolist() == [LOWER, LOWER, LOWER, LOWER, PUNCT]  # lowercased
    assert casing[2, :, 1].tolist() == [UPPER, UPPER, UPPER, UPPER, PUNCT]  # uppercased
    # a whole window is recased, the pads stay pads; the lowercased vocabulary gives the same rows
    assert casing[2, 0].tolist() == [PAD, UPPER, UPPER]
    assert (ids == w.ids[None]).all()
    assert ids[0, 0].tolist() == [1, 3, 4]  # <s> paris is


def test_case_variants_shares_and_determinism():
    cfg = load_config(None, ["train.case_lower=0.2", "train.case_upper=0.1", "train.seed=3"])
    n = 20_000
    sentence = np.repeat(np.arange(n), 2)  # two windows a sentence: both get their sentence's reading
    v = train_module.case_variants(cfg, n, sentence, epoch=0)
    assert (v[0::2] == v[1::2]).all()
    share = np.bincount(v[0::2], minlength=3) / n
    # binomial s.d. sqrt(0.2 * 0.8 / 20000) = 0.0028: 4 s.d. either side
    assert share[1] == pytest.approx(0.2, abs=0.012) and share[2] == pytest.approx(0.1, abs=0.009)
    assert (train_module.case_variants(cfg, n, sentence, epoch=0) == v).all()  # a resumed epoch redraws the same
    assert (train_module.case_variants(cfg, n, sentence, epoch=1) != v).any()  # another epoch, other sentences
    off = load_config(None)
    assert train_module.case_variants(off, n, sentence, epoch=0) is None


def casing_seen(monkeypatch, tiny_config, tmp_path, *sets):
    """Train 1 epoch of configs/tiny.yaml with ``sets``; the set of centre casing classes train_step saw."""
    seen = set()
    real = train_module.train_step

    def recording(params, ids, casing, y, **kw):
        seen.update(np.unique(casing[:, casing.shape[1] // 2]).tolist())
        return real(params, ids, casing, y, **kw)

    monkeypatch.setattr(train_module, "train_step", recording)
    train_module.train(tiny_config("train.epochs=1", *sets), out_dir=tmp_path / "run", log=lambda s: None,
                       point_latest=False)
    return seen


def test_training_reads_the_recased_sentences(monkeypatch, tiny_config, tmp_path):
    assert {LOWER, TITLE, UPPER} <= casing_seen(monkeypatch, tiny_config, tmp_path / "a")
    lowered = casing_seen(monkeypatch, tiny_config, tmp_path / "b", "train.case_lower=1.0")
    assert LOWER in lowered and not lowered & {TITLE, UPPER, MIXED}  # no capital letter left anywhere
    raised = casing_seen(monkeypatch, tiny_config, tmp_path / "c", "train.case_upper=1.0")
    assert UPPER in raised and not raised & {LOWER, MIXED}  # TITLE stays: a lone capital ("A", "I")


def test_shares_over_one_are_a_config_error(tiny_config, tmp_path):
    with pytest.raises(ConfigError, match=r"case_lower \+ train.case_upper = 1.2 is more than 1"):
        train_module.train(tiny_config("train.case_lower=0.6", "train.case_upper=0.6"), out_dir=tmp_path / "r",
                           log=lambda s: None, point_latest=False)
    assert not (tmp_path / "r").exists()
