"""Shared test helpers: the tiny config, with its data paths made absolute."""

from pathlib import Path

import pytest

from ner_window.config import load_config

ROOT = Path(__file__).resolve().parent.parent


def conll_counts(path) -> tuple[int, int, int]:
    """(sentences, tokens, LOC entities) of an IOB2 CoNLL file, counted here from its lines with no
    project code, so tests can check the reader and the taggers against it."""
    blocks = Path(path).read_text(encoding="utf-8").split("\n\n")
    lines = [[ln for ln in b.split("\n") if ln.strip() and not ln.startswith("-DOCSTART-")] for b in blocks]
    n_loc = sum(ln.split()[-1] == "B-LOC" for b in lines for ln in b)
    return sum(1 for b in lines if b), sum(len(b) for b in lines), n_loc


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
    """configs/base.yaml trained once per session, for 10 epochs (~20 s; its dev F1 is within a point of the
    full run's by then): a model good enough that its scores mean something."""
    from ner_window.train import train

    cfg = load_config(ROOT / "configs" / "base.yaml", ["train.epochs=10"])
    for key in ("train", "dev", "test"):
        setattr(cfg.data, key, str(ROOT / getattr(cfg.data, key)))
    out = tmp_path_factory.mktemp("base") / "run"
    train(cfg, out_dir=out, log=lambda s: None)
    return out


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """configs/tiny.yaml trained once per session (a few seconds): a real binary model for the
    server's tests.  On the lecture's sentence it tags "Paris", and only "Paris", as LOC."""
    from ner_window.train import train

    out = tmp_path_factory.mktemp("tiny-model") / "run"
    train(make_tiny_config(), out_dir=out, log=lambda s: None)
    return out
