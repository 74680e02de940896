"""Configs: typed, validated, every key documented, overridable with --set."""

import re
from pathlib import Path

import pytest
import yaml

from ner_window.config import Config, describe, load_config
from ner_window.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


def write(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text, encoding="utf-8")
    return p


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_load_and_comment_every_key(path):
    cfg = load_config(path)
    assert isinstance(cfg, Config)
    lines = path.read_text().splitlines()
    keys = [ln for ln in lines if re.match(r"^\s+\w+:", ln)]
    assert keys, path
    for ln in keys:
        assert "#" in ln, f"{path.name}: key without a comment: {ln.strip()}"
    # every knob of the dataclasses appears in every shipped config
    raw = yaml.safe_load(path.read_text())
    for full, _, _ in describe():
        section, key = full.split(".")
        assert key in raw[section], f"{path.name} does not set {full}"


def test_overrides_are_parsed_as_yaml():
    cfg = load_config(None, ["train.lr=0.2", "model.casing=false", "data.location_types=[GPE, LOC]"])
    assert cfg.train.lr == 0.2 and cfg.model.casing is False and cfg.data.location_types == ["GPE", "LOC"]


def test_int_is_accepted_for_float():
    assert load_config(None, ["train.lr=1"]).train.lr == 1.0


@pytest.mark.parametrize("text, match", [
    ("train:\n  lrr: 0.1\n", r"unknown key 'train.lrr' \(did you mean 'lr'\?\)"),
    ("trian:\n  lr: 0.1\n", r"unknown section 'trian' \(did you mean 'train'\?\)"),
    ("train:\n  lr: fast\n", r"train.lr = 'fast' must be float"),
    ("train:\n  lr: 0\n", r"train.lr = 0.0 is out of range; it must be > 0"),
    ("train:\n  lr: -0.1\n", r"train.lr = -0.1 is out of range"),
    ("train:\n  batch_size: 0\n", r"train.batch_size = 0 is out of range; it must be >= 1"),
    ("train:\n  ensemble: 0\n", r"train.ensemble = 0 is out of range; it must be >= 1"),
    ("train:\n  ensemble: 17\n", r"train.ensemble = 17 is out of range; it must be <= 16"),
    ("train:\n  epochs: true\n", r"train.epochs = True must be int, not bool"),
    ("model:\n  radius: -1\n", r"model.radius = -1 is out of range; it must be >= 0"),
    ("model:\n  activation: softplus\n", r"model.activation = 'softplus' is not allowed; use one of: sigmoid"),
    ("- a\n- b\n", r"must be a YAML mapping of sections"),
    ("train: 3\n", r"section 'train' must be a mapping"),
    ("train:\n  lr: [0.1\n", r"c.yaml:\d+: not valid YAML"),
    ("data:\n  location_types: LOC\n", r"data.location_types = 'LOC' must be a list of str"),
])
def test_bad_configs_name_the_key_and_what_is_allowed(tmp_path, text, match):
    with pytest.raises(ConfigError, match=match):
        load_config(write(tmp_path, text))


def test_bad_override_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="expected section.key=value"):
        load_config(None, ["lr=0.1"])
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "nope.yaml")


def test_resolved_config_round_trips_through_dict():
    from ner_window.config import from_dict

    cfg = load_config(ROOT / "configs" / "base.yaml", ["train.seed=7"])
    assert from_dict(cfg.to_dict()) == cfg
