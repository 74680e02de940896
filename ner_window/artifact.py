"""Stage 8: save and load a trained model as plain data (never pickle).

A model directory holds

    params.npz      the arrays E, W, b, u and, when present, C, c and A (loaded with allow_pickle=False)
    meta.json       format version, package version, resolved config, vocabulary,
                    classes, decision threshold, dev metrics, training-data hash
    gazetteer.json  the place names, for a model trained with model.gazetteer (gazetteer.py)

A sentence-level model (config model.output: sentence, sentence.py) is format 2: params.npz
also holds A, the (T+1, T) tag-transition matrix (row T the start, −∞ where IOB2 forbids a
pair), u and c score its T IOB2 tags, and meta.json says "output": "sentence", lists the
"tags" and describes the "decoding" (Viterbi; no threshold).  A window model is format 1, as
before, so models saved by older versions load unchanged.

It is written to a temporary sibling directory and renamed into place
(files.write_dir_atomic), so a crash never leaves half a model.  Loading checks the
format version and that every array's shape agrees with the vocabulary and the
config (model.check_shapes), and says what is wrong.  The saved config is read back
into the typed config.Config (a model saved before a key existed gets its default).
Nothing in a model directory is executed, and no path stored in it is opened.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from . import __version__
from .config import Config, from_dict
from .errors import ConfigError, ModelError
from .files import write_dir_atomic
from .gazetteer import Gazetteer
from .model import Params
from .sentence import n_tags, tag_set
from .vocab import Vocab
from .windows import CASING_CLASSES, n_features

FORMAT_VERSION = 2  # 2: sentence-level models (A in params.npz); window models are still written as 1
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
    gazetteer: Gazetteer | None = None  # for a model trained with model.gazetteer

    @cached_property
    def config(self) -> Config:
        """The training config, typed (config.from_dict of meta.json's "config")."""
        return config_of(self.meta, Path(self.path) / META_FILE)

    @property
    def radius(self) -> int:
        return self.config.model.radius

    @property
    def activation(self) -> str:
        return self.config.model.activation

    @property
    def classes(self) -> list[str]:
        return list(self.meta["classes"])

    @property
    def task(self) -> str:
        return self.config.model.task

    @property
    def threshold(self) -> float:
        return float(self.meta.get("threshold", 0.5))

    @property
    def output(self) -> str:
        """"window" (each token decided alone) or "sentence" (tag scores + transitions, Viterbi)."""
        return self.config.model.output

    @property
    def tags(self) -> list[str]:
        """A sentence model's IOB2 tags, the order of its tag scores (sentence.tag_set)."""
        return tag_set(self.classes)


def config_of(meta: dict, meta_path: Path) -> Config:
    """meta["config"] as a Config; ModelError naming meta.json if it is not a valid config."""
    try:
        return from_dict(meta["config"], f"{meta_path} (config)")
    except ConfigError as e:
        raise ModelError(f"{e}; the model directory is damaged or from another version, retrain it") from None


def save_model(path: str | os.PathLike, params: Params, vocab: Vocab, meta: dict,
               gazetteer: Gazetteer | None = None) -> Path:
    """Write ``params`` and ``meta`` (plus vocabulary and versions, and the gazetteer) to the model directory ``path``."""
    full = {
        "format_version": 1 if params.A is None else 2,
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
        if gazetteer is not None:
            gazetteer.save(tmp)

    write_dir_atomic(Path(path), write)
    return Path(path)


def resolve_model_dir(path: str | os.PathLike) -> Path:
    """A model directory, or a run directory holding one in ``model/``."""
    p = Path(path)
    if (p / MODEL_SUBDIR / META_FILE).exists() or ((p / MODEL_SUBDIR).is_dir() and not (p / META_FILE).exists()):
        return p / MODEL_SUBDIR
    return p


MAP_BYTES = 4 * 2**20  # arrays this large are memory-mapped (read-only) rather than read


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a .npz as np.savez writes it (members stored, not compressed), each read straight
    from the file into its array, or, from MAP_BYTES up (E), mapped read-only: only the pages of the
    rows in use are read, processes tagging with one model share them, and a reader done with the
    rows can give the pages back (slots.mapped_pages).  Writing to such an array is an error: copy it
    first.  np.load(allow_pickle=False) gives the same arrays, but also computes each member's CRC-32
    and copies it once more: ~40 ms of a cold start for a 70 MB model.
    A truncated file, a member that is not a plain array or any other layout is an error (or, when
    compressed, is read by np.load)."""
    arrays = {}
    with zipfile.ZipFile(path) as zf, open(path, "rb") as f:
        members = zf.infolist()
        if any(m.compress_type != zipfile.ZIP_STORED for m in members):
            with np.load(path, allow_pickle=False) as npz:
                return {k: npz[k] for k in npz.files}
        for m in members:
            f.seek(m.header_offset)
            local = f.read(30)
            if len(local) < 30 or local[:4] != b"PK\x03\x04" or not m.filename.endswith(".npy"):
                raise zipfile.BadZipFile(f"member {m.filename!r} is not a stored .npy array")
            name_len, extra_len = int.from_bytes(local[26:28], "little"), int.from_bytes(local[28:30], "little")
            f.seek(m.header_offset + 30 + name_len + extra_len)  # the member's data: its .npy header, then the array
            version = np.lib.format.read_magic(f)
            shape, fortran, dtype = (np.lib.format.read_array_header_1_0(f) if version == (1, 0)
                                     else np.lib.format.read_array_header_2_0(f))
            if dtype.hasobject:
                raise ValueError(f"member {m.filename!r} holds Python objects, which are never loaded")
            order, nbytes = "F" if fortran else "C", int(np.prod(shape)) * dtype.itemsize
            if nbytes >= MAP_BYTES:  # E: mapped, so only the pages of the rows a text uses are read
                if f.tell() + nbytes > os.fstat(f.fileno()).st_size:
                    raise EOFError(f"member {m.filename!r} ends early")
                a = np.memmap(f, dtype, mode="r", offset=f.tell(), shape=shape, order=order).view(np.ndarray)
            else:
                a = np.empty(shape, dtype, order=order)
                if f.readinto(memoryview(a.reshape(-1, order="A")).cast("B")) != a.nbytes:
                    raise EOFError(f"member {m.filename!r} ends early")
            arrays[m.filename[:-4]] = a
    return arrays


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
    if version < 1:
        raise ModelError(f"{meta_path}: format version {version} is not one ner-window writes (1 to "
                         f"{FORMAT_VERSION}); the model directory is damaged, retrain it")
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
        arrays = read_npz(params_path)
    except (zipfile.BadZipFile, ValueError, EOFError, OSError, KeyError, AttributeError, TypeError) as e:
        raise ModelError(f"{params_path}: cannot be read ({type(e).__name__}: {e}); the file is truncated or "
                         f"damaged, retrain the model") from None
    try:
        vocab = Vocab.from_list(meta["vocab"])
    except Exception as e:  # noqa: BLE001 - any malformed vocabulary is the same user-facing problem
        raise ModelError(f"{meta_path}: vocabulary is malformed ({e}); retrain the model") from None
    cfg = config_of(meta, meta_path)
    gazetteer = Gazetteer.load(p) if cfg.model.gazetteer != "none" else None
    n_classes = len(meta["classes"]) if cfg.model.task == "multiclass" else 1
    if cfg.model.output == "sentence":
        n_classes = n_tags(len(meta["classes"]))  # the tag scores, and A (T+1, T)
    if ("A" in arrays) != (cfg.model.output == "sentence"):
        raise ModelError(f"{params_path}: " + ("has no transition matrix A, but meta.json says model.output: sentence"
                                               if "A" not in arrays else "has a transition matrix A, but meta.json "
                                               "says model.output: window") + "; the files do not belong together, "
                         "retrain the model")
    sizes = {"V": len(vocab), "radius": cfg.model.radius, "hidden": cfg.model.hidden * cfg.train.ensemble,
             "n_classes": n_classes,  # an ensemble's members side by side: ensemble.merge
             "K": n_features(gazetteer is not None)}
    params = Params.from_dict(arrays, str(params_path), sizes)
    model = Model(params=params, vocab=vocab, meta=meta, path=p, gazetteer=gazetteer)
    model.config = cfg  # cached_property: set once, read by every property above
    return model


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
