"""Configs: YAML files parsed with ``yaml.safe_load`` into typed dataclasses.

Every knob lives in one small YAML file (see ``configs/``), one section per
stage.  Unknown keys, wrong types and out-of-range values raise ConfigError
naming the key, the value and what is allowed; ``--set section.key=value``
overrides a value from the command line (the value is parsed as YAML, so
``--set train.lr=0.1`` gives a float and ``--set model.casing=false`` a bool).
The fully resolved config is saved with the model (``to_dict``).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .model import ACTIVATIONS, BINARY_LOSSES, MULTICLASS_LOSSES, TASKS
from .sentence import LOSS as SENTENCE_LOSS

OUTPUTS = ("window", "sentence")


def knob(default: Any, doc: str, **rules: Any) -> Any:
    """A config field: default, one-line doc, and rules (min, max, min_exclusive, choices)."""
    factory = (lambda: list(default)) if isinstance(default, list) else None
    if factory:
        return field(default_factory=factory, metadata={"doc": doc, **rules})
    return field(default=default, metadata={"doc": doc, **rules})


@dataclass
class DataConfig:
    train: str = knob("data/train.txt", "training file (CoNLL columns: token first, NER tag last)")
    dev: str | None = knob("data/dev.txt", "dev file: early stopping and threshold tuning")
    test: str | None = knob(None, "held-out file for `make eval` / scripts/evaluate.py")
    scheme: str = knob("iob2", "tag scheme of the files", choices=("iob1", "iob2", "io", "bioes", "auto"))
    location_types: list[str] = knob(["LOC"], "entity types that count as a location")
    strict: bool = knob(False, "reject tag sequences the scheme forbids (I- after O in iob2) instead of "
                        "reading them leniently as conlleval does")
    train_extra: list[str] = knob([], "more training files, read after data.train with data.train_extra_scheme "
                                  "(e.g. part of a second corpus)")
    train_extra_scheme: str = knob("iob2", "tag scheme of the data.train_extra files",
                                   choices=("iob1", "iob2", "io", "bioes", "auto"))
    clean_tokens: bool = knob(False, "tab-separated lines: remove whitespace inside a token and drop empty "
                              "tokens instead of rejecting the line (the Broad Twitter Corpus has 10)")


@dataclass
class EmbeddingsConfig:
    source: str = knob("glove-6b-50d", "where word vectors come from",
                       choices=("glove-6b-50d", "file", "word2vec", "random"))
    path: str | None = knob(None, "vector file for source: file (word2vec bin/text or GloVe text)")
    dim: int = knob(50, "vector size for source: random / word2vec", min=1)
    lowercase: bool = knob(True, "lowercase words before they enter the vocabulary")
    min_count: int = knob(1, "training words seen fewer times are left to <unk> (unless pretrained)", min=1)
    top_k: int = knob(100_000, "most frequent pretrained words added to the vocabulary", min=0)
    gazetteer_words: bool = knob(False, "also give every word of a gazetteer place name (model.gazetteer) "
                                 "its pretrained vector, beyond top_k")
    trainable: bool = knob(True, "fine-tune E through dJ/dx (false: frozen)")
    regularize: bool = knob(False, "L2 on the rows of E a batch uses")
    cache_dir: str = knob(".cache/word2vec", "where trained word2vec vectors are cached")
    extra_text: list[str] = knob([], "extra plain-text files for word2vec (one sentence per line)")
    w2v_window: int = knob(5, "word2vec context window", min=1)
    w2v_min_count: int = knob(1, "word2vec min count", min=1)
    w2v_epochs: int = knob(10, "word2vec epochs", min=1)
    w2v_sg: int = knob(1, "1 = skip-gram, 0 = CBOW", choices=(0, 1))
    w2v_negative: int = knob(5, "negative samples per positive (word2vec needs at least 1)", min=1)


@dataclass
class ModelConfig:
    task: str = knob("binary", "binary: location or not; multiclass: softmax over entity types",
                     choices=TASKS)
    radius: int = knob(2, "window radius m: 2m+1 words per window", min=0, max=10)
    hidden: int = knob(100, "hidden units H", min=1)
    activation: str = knob("tanh", "f in h = f(z)", choices=tuple(ACTIVATIONS))
    casing: bool = knob(True, "add casing-class vectors C to every window position")
    casing_dim: int = knob(4, "size d_c of a casing vector", min=1)
    gazetteer: str = knob("none", "place names as a feature (needs casing): geonames = compiled from GeoNames "
                          "at training time into the model directory", choices=("none", "geonames"))
    gazetteer_min_population: int = knob(15000, "cities in the GeoNames gazetteer have at least this many people",
                                         choices=(500, 1000, 5000, 15000))
    output_bias: bool = knob(True, "s = u.h + c (false: no c)")
    dtype: str = knob("float32", "parameter dtype", choices=("float32", "float64"))
    output: str = knob("window", "window: each token decided alone (p = sigmoid / softmax of s); sentence: IOB2 "
                       "tag scores + a transition matrix, trained by the sentence-level log-likelihood, "
                       "decoded by Viterbi", choices=OUTPUTS)


@dataclass
class TrainConfig:
    seed: int = knob(0, "seed for initialisation, shuffling and word dropout")
    ensemble: int = knob(1, "members trained (seeds ensemble*seed ... ensemble*seed + ensemble - 1) and merged into "
                         "one network whose score is their mean (ensemble.py); 1 = a single network", min=1, max=16)
    jobs: int = knob(1, "ensemble members trained at once, each in a process of its own; 1 = one after the "
                     "other in this process (the same model either way)", min=1, max=16)
    epochs: int = knob(10, "maximum epochs", min=1)
    batch_size: int = knob(64, "windows per SGD step", min=1)
    lr: float = knob(0.05, "learning rate", min=0, min_exclusive=True)
    lr_schedule: str = knob("constant", "constant | step (x lr_decay every lr_step epochs) | inv_t (lr/(1+lr_decay*t))",
                            choices=("constant", "step", "inv_t"))
    lr_decay: float = knob(0.5, "decay factor for the step and inv_t schedules", min=0)
    lr_step: int = knob(5, "epochs between decays (step schedule)", min=1)
    momentum: float = knob(0.0, "classical momentum on W, b, u, c, C (and A)", min=0, max=1, max_exclusive=True)
    l2: float = knob(1e-6, "L2 strength lambda on W and u (and E rows if embeddings.regularize)", min=0)
    loss: str = knob("bce", "bce or squared (binary window models); multiclass uses ce, model.output sentence sll",
                     choices=BINARY_LOSSES)
    pos_weight: float = knob(1.0, "weight of location (non-O) examples in the loss (window models)", min=0,
                             min_exclusive=True)
    word_dropout: float = knob(0.0, "probability of replacing a window word by <unk> while training",
                               min=0, max=1, max_exclusive=True)
    gazetteer_dropout: float = knob(0.0, "probability of hiding a window position's gazetteer tag while training "
                                    "(model.gazetteer): places the gazetteer lacks must still look like places",
                                    min=0, max=1, max_exclusive=True)
    case_lower: float = knob(0.0, "share of training sentences read lowercased each epoch (casing classes "
                             "recomputed; drawn per sentence per epoch)", min=0, max=1)
    case_upper: float = knob(0.0, "share of training sentences read uppercased each epoch (as case_lower)",
                             min=0, max=1)
    patience: int = knob(3, "stop after this many epochs without a better dev entity F1", min=1)
    threshold_rule: str = knob("tuned", "the binary decision threshold saved with the model: tuned (the highest dev "
                               "entity F1), smoothed (the highest dev entity F1 averaged over t +- 0.1), fixed "
                               "(train.threshold)", choices=("tuned", "smoothed", "fixed"))
    threshold: float = knob(0.5, "the threshold when threshold_rule is fixed", min=0, max=1)
    blas_threads: int = knob(1, "BLAS threads during SGD steps (0 = the library's default)", min=0)


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    embeddings: EmbeddingsConfig = field(default_factory=EmbeddingsConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def loss(self) -> str:
        """The loss the model is trained with: train.loss (binary), "ce" (multiclass: softmax + CE),
        "sll" (model.output sentence: the sentence-level log-likelihood, either task)."""
        if self.model.output == "sentence":
            return SENTENCE_LOSS
        return MULTICLASS_LOSSES[0] if self.model.task == "multiclass" else self.train.loss


SECTIONS = {f.name: f.type for f in dataclasses.fields(Config)}
_SECTION_TYPES = {"data": DataConfig, "embeddings": EmbeddingsConfig, "model": ModelConfig, "train": TrainConfig}


def _suggest(name: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(name, allowed, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_type(where: str, key: str, value: Any, hint: Any) -> Any:
    """Return ``value`` converted to ``hint`` (int -> float only), or raise ConfigError."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        return _check_type(where, key, value, args[0])
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"{where}: {key} = {value!r} must be a list of {item.__name__}")
        return [_check_type(where, f"{key}[{i}]", v, item) for i, v in enumerate(value)]
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str) and re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+", value):
        return float(value)  # YAML 1.1 reads 1e-3 and 1.0e6 as strings (it wants a dot and a signed exponent)
    if hint in (int, float) and isinstance(value, bool) or not isinstance(value, hint):
        raise ConfigError(f"{where}: {key} = {value!r} must be {hint.__name__}, not {type(value).__name__}")
    if hint is float and not math.isfinite(value):
        raise ConfigError(f"{where}: {key} = {value!r} must be a finite number")
    return value


def _check_rules(where: str, key: str, value: Any, rules: dict) -> None:
    if value is None:
        return
    if "choices" in rules and value not in rules["choices"]:
        allowed = ", ".join(str(c) for c in rules["choices"])
        raise ConfigError(f"{where}: {key} = {value!r} is not allowed; use one of: {allowed}")
    low, high = rules.get("min"), rules.get("max")
    if low is not None and (value < low or (rules.get("min_exclusive") and value == low)):
        op = ">" if rules.get("min_exclusive") else ">="
        raise ConfigError(f"{where}: {key} = {value!r} is out of range; it must be {op} {low}")
    if high is not None and (value > high or (rules.get("max_exclusive") and value == high)):
        op = "<" if rules.get("max_exclusive") else "<="
        raise ConfigError(f"{where}: {key} = {value!r} is out of range; it must be {op} {high}")


def from_dict(raw: Any, where: str = "config") -> Config:
    """Build and validate a Config from a parsed YAML mapping."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a YAML mapping of sections (data, embeddings, model, train), "
                          f"found {type(raw).__name__}")
    sections = {}
    for name, value in raw.items():
        if name not in _SECTION_TYPES:
            raise ConfigError(f"{where}: unknown section {name!r}{_suggest(str(name), list(_SECTION_TYPES))}; "
                              f"sections are {', '.join(_SECTION_TYPES)}")
        cls = _SECTION_TYPES[name]
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: section {name!r} must be a mapping of keys, found {type(value).__name__}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        hints = typing.get_type_hints(cls)
        kwargs = {}
        for key, v in value.items():
            full = f"{name}.{key}"
            if key not in fields:
                raise ConfigError(f"{where}: unknown key {full!r}{_suggest(str(key), list(fields))}; "
                                  f"keys in {name}: {', '.join(fields)}")
            v = _check_type(where, full, v, hints[key])
            _check_rules(where, full, v, dict(fields[key].metadata))
            kwargs[key] = v
        sections[name] = cls(**kwargs)
    return Config(**sections)


def apply_overrides(raw: dict, overrides: list[str], where: str = "--set") -> dict:
    """Apply ``section.key=value`` strings to a raw mapping (values parsed as YAML)."""
    import yaml

    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in (raw or {}).items()}
    for item in overrides:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise ConfigError(f"{where} {item!r}: expected section.key=value, e.g. train.lr=0.1")
        path, text = item.split("=", 1)
        section, key = path.split(".", 1)
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            value = text
        if section not in raw or raw[section] is None:
            raw[section] = {}
        if not isinstance(raw[section], dict):
            raise ConfigError(f"{where} {item!r}: section {section!r} is not a mapping in the config")
        raw[section][key] = value
    return raw


def _yaml_mapping_unique(text: str, where: str) -> Any:
    """yaml.safe_load of ``text``, except that a key given twice in one mapping is a ConfigError
    naming both lines (PyYAML would keep the last one without a word)."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        pass

    def construct_mapping(loader, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            try:
                first = seen.setdefault(key, line)
            except TypeError:  # an unhashable key: SafeLoader's own error follows
                continue
            if first != line:
                raise ConfigError(f"{where}:{line}: key {key!r} is given twice (first on line {first}); "
                                  f"keep one (YAML would silently use the last)")
        return yaml.SafeLoader.construct_mapping(loader, node, deep)

    UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    loader = UniqueKeyLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> Config:
    """Read a YAML config (or the defaults when ``path`` is None) and apply ``--set`` overrides.

    An error in the file names the file (and line); an error in an override names the ``--set``.
    """
    import yaml

    raw: Any = {}
    where = "config"
    if path is not None:
        p = Path(path)
        where = str(p)
        if not p.is_file():
            raise ConfigError(f"{p}: no such config file; see configs/ for examples (configs/base.yaml)")
        try:
            raw = _yaml_mapping_unique(p.read_text(encoding="utf-8"), where)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            line = f":{mark.line + 1}" if mark else ""
            raise ConfigError(f"{p}{line}: not valid YAML ({getattr(e, 'problem', e)})") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{p}: not UTF-8 text; save the config as UTF-8 YAML") from None
        if raw is None:
            raise ConfigError(f"{p}: is empty; a config names its sections (data, embeddings, model, train): "
                              f"start from configs/base.yaml (the built-in defaults differ from it)")
        if not isinstance(raw, dict):
            raise ConfigError(f"{p}: must be a YAML mapping of sections (data, embeddings, model, train), "
                              f"found {type(raw).__name__}")
        from_dict(raw, where)  # the file's own mistakes, named as the file's
    for item in overrides or []:
        from_dict(apply_overrides({}, [item]), f"--set {item}")  # each override's, named as the --set
    if overrides:
        raw = apply_overrides(raw or {}, overrides)
    return from_dict(raw, where)


def describe() -> list[tuple[str, Any, str]]:
    """(section.key, default, doc) for every knob: used to check that configs document every key."""
    out = []
    for name, cls in _SECTION_TYPES.items():
        for f in dataclasses.fields(cls):
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            out.append((f"{name}.{f.name}", default, f.metadata.get("doc", "")))
    return out
