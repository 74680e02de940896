"""A saved model's config comes back as the typed Config: defaults for keys it predates, and a
one-line user error (exit 2) naming meta.json for a value no config allows."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from ner_window.artifact import load_model, save_model
from ner_window.cli import cli
from ner_window.config import Config
from ner_window.model import init_params
from ner_window.vocab import Vocab
from ner_window.windows import CASING_CLASSES

WORDS = ["<unk>", "<s>", "</s>", "rain", "in", "oslo"]


def saved(tmp_path, model_config: dict):
    params = init_params(len(WORDS), 4, 1, 5, n_casing=len(CASING_CLASSES), d_c=2, rng=np.random.default_rng(0))
    meta = {"config": {"data": {"scheme": "iob2", "location_types": ["LOC"]}, "model": model_config},
            "classes": ["O", "LOC"], "threshold": 0.5}
    return save_model(tmp_path / "model", params, Vocab(WORDS), meta)


def test_an_old_config_gets_the_defaults_of_the_keys_it_lacks(tmp_path):
    # no embeddings or train section, and no model.output_bias / dtype: a model saved before those existed
    model = load_model(saved(tmp_path, {"task": "binary", "radius": 1, "hidden": 5, "activation": "relu"}))
    assert isinstance(model.config, Config)
    assert model.config.model.activation == "relu" and model.activation == "relu" and model.radius == 1
    assert model.config.train.loss == Config().train.loss and model.config.model.output_bias is True
    assert model.config.loss == "bce" and model.task == "binary"


def test_a_saved_config_value_no_config_allows_is_one_line_exit_2(tmp_path):
    path = saved(tmp_path, {"task": "binary", "radius": 1, "hidden": 5, "activation": "relu"})
    meta = json.loads((path / "meta.json").read_text())
    meta["config"]["model"]["activation"] = "softsign"
    (path / "meta.json").write_text(json.dumps(meta))
    r = CliRunner().invoke(cli, ["predict", "--model", str(path), "rain in Oslo"])
    assert r.exit_code == 2 and "Traceback" not in r.output
    line = r.output.strip()
    assert len(line.splitlines()) == 1
    assert "meta.json" in line and "model.activation = 'softsign'" in line and "retrain" in line


def test_params_are_read_as_np_load_reads_them_without_its_extra_copy(tmp_path):
    import zipfile

    import pytest

    from ner_window.artifact import read_npz

    path = saved(tmp_path, {"task": "binary", "radius": 1, "hidden": 5}) / "params.npz"
    with np.load(path, allow_pickle=False) as npz:
        want = {k: npz[k] for k in npz.files}
    got = read_npz(path)
    assert sorted(got) == sorted(want)
    for k in want:  # W column-major and the 0-d c included
        assert got[k].dtype == want[k].dtype and got[k].shape == want[k].shape and np.array_equal(got[k], want[k])
        assert got[k].flags.f_contiguous == want[k].flags.f_contiguous
    compressed = tmp_path / "compressed.npz"
    np.savez_compressed(compressed, **want)
    assert all(np.array_equal(read_npz(compressed)[k], want[k]) for k in want)  # np.load reads those
    raw = path.read_bytes()
    cut = tmp_path / "cut.npz"
    cut.write_bytes(raw[: len(raw) - 200])  # the central directory is gone
    with pytest.raises(zipfile.BadZipFile):
        read_npz(cut)
    objects = tmp_path / "objects.npz"
    np.savez(objects, E=np.array([{"x": 1}], dtype=object))
    with pytest.raises(ValueError, match="Python objects"):
        read_npz(objects)


def test_large_arrays_are_mapped_read_only(tmp_path, monkeypatch):
    import ner_window.artifact as A

    path = saved(tmp_path, {"task": "binary", "radius": 1, "hidden": 5}) / "params.npz"
    before = path.read_bytes()
    with np.load(path, allow_pickle=False) as npz:
        want = {k: npz[k] for k in npz.files}
    monkeypatch.setattr(A, "MAP_BYTES", 0)  # every member mapped, as E is in a real model
    got = A.read_npz(path)
    assert all(np.array_equal(got[k], want[k]) and got[k].shape == want[k].shape for k in want)
    assert type(got["E"]) is np.ndarray and not got["E"].flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        got["E"][:] = 7.0  # the model file can never change under a reader
    from ner_window.slots import drop_pages, mapped_pages

    pages = mapped_pages(got["E"])
    assert pages is not None and mapped_pages(want["E"]) is None and mapped_pages(got["E"].copy()) is None
    drop_pages(pages)  # given back: read again from the file when needed
    assert np.array_equal(got["E"], want["E"]) and path.read_bytes() == before
