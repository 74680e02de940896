"""Stage 8: save and load a trained model as plain data (never pickle).

A model directory holds

    params.npz   the arrays E, W, b, u and, when present, C and c (loaded with allow_pickle=False)
    meta.json    format version, package version, resolved config, vocabulary,
                 classes, decision threshold, dev metrics, training-data hash

It is written to a temporary sibling directory and renamed into place, so a
crash never leaves half a model.  Loading checks the format version and that
every array's shape agrees with the vocabulary and the config, and says what
is wrong.  Nothing in a model directory is executed, and no path stored in it
is opened.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import __version__
from .errors import ModelError
from .model import Params
from .vocab import Vocab
from .windows import CASING_CLASSES

FORMAT_VERSION = 1
PARAMS_FILE = "params.npz"
META_FILE = "meta.json"
MODEL_SUBDIR = "model"  # a run directory keeps its model here


@dataclass
class Model:
    """A loaded model: parameters, vocabulary and everything needed to tag."""

    params: Params
    vocab: Vocab
    meta: dict
    path: Path

    @property
    def config(self) -> dict:
        return self.meta["config"]

    @property
    def radius(self) -> int:
        return int(self.config["model"]["radius"])

    @property
    def activation(self) -> str:
        return self.config["model"]["activation"]

    @property
    def classes(self) -> list[str]:
        return list(self.meta["classes"])

    @property
    def task(self) -> str:
        return self.config["model"]["task"]

    @property
    def threshold(self) -> float:
        return float(self.meta.get("threshold", 0.5))


def write_dir_atomic(target: Path, write) -> None:
    """Call ``write(tmp_dir)`` then move ``tmp_dir`` to ``target``, replacing it only once complete."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        write(tmp)
        if target.exists():
            os.replace(target, old)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def save_model(path: str | os.PathLike, params: Params, vocab: Vocab, meta: dict) -> Path:
    """Write ``params`` and ``meta`` (plus vocabulary and versions) to the model directory ``path``."""
    full = {
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "casing_classes": list(CASING_CLASSES),
        **meta,
        "vocab": vocab.to_list(),
    }

    def write(tmp: Path) -> None:
        arrays = {k: v for k, v in params.to_dict().items() if v is not None}
        with open(tmp / PARAMS_FILE, "wb") as f:
            np.savez(f, **arrays)
        (tmp / META_FILE).write_text(json.dumps(full, indent=1, sort_keys=False), encoding="utf-8")

    write_dir_atomic(Path(path), write)
    return Path(path)


def resolve_model_dir(path: str | os.PathLike) -> Path:
    """A model directory, or a run directory holding one in ``model/``."""
    p = Path(path)
    if (p / MODEL_SUBDIR / META_FILE).exists() or ((p / MODEL_SUBDIR).is_dir() and not (p / META_FILE).exists()):
        return p / MODEL_SUBDIR
    return p


def load_model(path: str | os.PathLike) -> Model:
    """Load and check a model directory; ModelError says what is wrong and how to fix it."""
    p = resolve_model_dir(path)
    if not p.exists():
        raise ModelError(f"{p}: no model here; train one with `make train` or pass --model DIR "
                         f"(or set NER_WINDOW_MODEL)")
    if not p.is_dir():
        raise ModelError(f"{p}: is a file; --model takes a model directory (holding {META_FILE} and {PARAMS_FILE})")
    meta_path, params_path = p / META_FILE, p / PARAMS_FILE
    if not meta_path.is_file():
        raise ModelError(f"{meta_path}: missing; {p} is not a complete model directory (retrain, or pass the "
                         f"directory that `ner-window train` wrote)")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelError(f"{meta_path}: not valid JSON ({e}); the model directory is damaged, retrain it") from None
    if not isinstance(meta, dict):
        raise ModelError(f"{meta_path}: must hold a JSON object; the model directory is damaged, retrain it")
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ModelError(f"{meta_path}: no integer format_version; the model directory is damaged, retrain it")
    if version > FORMAT_VERSION:
        raise ModelError(f"{meta_path}: format version {version} is newer than this ner-window "
                         f"({__version__}, format {FORMAT_VERSION}); upgrade ner-window to load it")
    for key in ("config", "vocab", "classes"):
        if key not in meta:
            raise ModelError(f"{meta_path}: has no {key!r}; the model directory is damaged, retrain it")
    _check_meta(meta, meta_path)
    if not params_path.is_file():
        raise ModelError(f"{params_path}: missing; the model directory is incomplete, retrain it")
    try:
        with np.load(params_path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, ValueError, EOFError, OSError, KeyError, AttributeError, TypeError) as e:
        raise ModelError(f"{params_path}: cannot be read ({type(e).__name__}: {e}); the file is truncated or "
                         f"damaged, retrain the model") from None
    try:
        vocab = Vocab.from_list(meta["vocab"])
    except Exception as e:  # noqa: BLE001 - any malformed vocabulary is the same user-facing problem
        raise ModelError(f"{meta_path}: vocabulary is malformed ({e}); retrain the model") from None
    params = _params_from_arrays(arrays, meta, len(vocab), params_path)
    return Model(params=params, vocab=vocab, meta=meta, path=p)


def _check_meta(meta: dict, meta_path: Path) -> None:
    """The meta.json fields that tagging and evaluation read, so a damaged one is a ModelError, not a crash."""
    classes, threshold, config = meta["classes"], meta.get("threshold", 0.5), meta["config"]
    data = config.get("data") if isinstance(config, dict) else None
    problem = None
    if not (isinstance(classes, list) and len(classes) >= 2 and all(isinstance(c, str) for c in classes)):
        problem = f"classes = {classes!r} must be a list of class names such as ['O', 'LOC']"
    elif isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0:
        problem = f"threshold = {threshold!r} must be a number in [0, 1]"
    elif not (isinstance(data, dict) and isinstance(data.get("scheme"), str)
              and isinstance(data.get("location_types"), list)
              and all(isinstance(t, str) for t in data["location_types"])):
        problem = "config.data must hold a scheme and a list of location_types"
    if problem:
        raise ModelError(f"{meta_path}: {problem}; the model directory is damaged, retrain it")


def _params_from_arrays(arrays: dict, meta: dict, n_words: int, where: Path) -> Params:
    """Check every shape against the vocabulary and config, then build Params."""
    try:
        mcfg = meta["config"]["model"]
        m, hidden = int(mcfg["radius"]), int(mcfg["hidden"])
        n_classes = len(meta["classes"]) if mcfg["task"] == "multiclass" else 1
    except (KeyError, TypeError, ValueError) as e:
        raise ModelError(f"{where.parent / META_FILE}: config is incomplete ({e}); retrain the model") from None
    for name in ("E", "W", "b", "u"):
        if name not in arrays:
            raise ModelError(f"{where}: array {name!r} is missing; retrain the model")
    E = arrays["E"]
    d = E.shape[1] if E.ndim == 2 else -1
    d_c = arrays["C"].shape[1] if "C" in arrays and arrays["C"].ndim == 2 else 0
    expected = {
        "E": (n_words, d),
        "W": (hidden, (2 * m + 1) * (d + d_c)),
        "b": (hidden,),
        "u": (hidden,) if n_classes == 1 else (n_classes, hidden),
    }
    if "C" in arrays:
        expected["C"] = (len(CASING_CLASSES), d_c)
    if "c" in arrays:
        expected["c"] = () if n_classes == 1 else (n_classes,)
    for name, shape in expected.items():
        if arrays[name].shape != shape:
            raise ModelError(f"{where}: {name} has shape {arrays[name].shape} but the vocabulary ({n_words} words) "
                             f"and config (radius {m}, hidden {hidden}) need {shape}; the files do not belong "
                             f"together, retrain the model")
        if not np.issubdtype(arrays[name].dtype, np.floating):
            raise ModelError(f"{where}: {name} has dtype {arrays[name].dtype}, expected float; retrain the model")
    return Params.from_dict(arrays)
