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


@pytest.fixture(params=["numpy", "compiled"])
def kernels_backend(request, monkeypatch):
    """Run a test twice: train_step's small work as numpy calls, then as the compiled loops
    of ner_window/kernels.py (skipped when numba is not installed)."""
    from ner_window import kernels

    if request.param == "compiled" and kernels.njit is None:
        pytest.skip("numba is not installed (the 'fast' extra)")
    monkeypatch.setattr(kernels, "ENABLED", request.param == "compiled")
    return request.param


@pytest.fixture(scope="session")
def base_run(tmp_path_factory):
    """configs/base.yaml trained once per session (~10 s): a model good enough that its scores mean something."""
    from ner_window.train import train

    cfg = load_config(ROOT / "configs" / "base.yaml")
    for key in ("train", "dev", "test"):
        setattr(cfg.data, key, str(ROOT / getattr(cfg.data, key)))
    out = tmp_path_factory.mktemp("base") / "run"
    train(cfg, out_dir=out, log=lambda s: None)
    return out
