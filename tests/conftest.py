"""Shared test helpers: the tiny config, with its data paths made absolute."""

from pathlib import Path

import pytest

from ner_window.config import load_config

ROOT = Path(__file__).resolve().parent.parent


def make_tiny_config(*sets: str):
    """configs/tiny.yaml with ``section.key=value`` overrides; data paths resolved from the project root."""
    cfg = load_config(ROOT / "configs" / "tiny.yaml", list(sets))
    cfg.data.train = str(ROOT / cfg.data.train)
    cfg.data.dev = str(ROOT / cfg.data.dev)
    cfg.data.test = str(ROOT / cfg.data.test)
    return cfg


@pytest.fixture(scope="session")
def tiny_config():
    """The builder ``tiny_config("train.epochs=2", ...)`` -> Config."""
    return make_tiny_config
