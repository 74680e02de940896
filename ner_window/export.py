"""Stage 11: export a saved model for other runtimes (``ner-window export``).

    >>> export_model("runs/latest", "model.onnx")                   # doctest: +SKIP
    [PosixPath('model.onnx'), PosixPath('model.vocab.json')]

Two files are written side by side:

* ``model.onnx``: the forward pass as an ONNX graph (onnx_graph.py).  Inputs: the window
  ids ``ids`` (N, 2m+1) and, when the model has casing vectors, the casing ids ``casing``
  (N, 2m+1), both int64.  Outputs: ``p`` (N,) P(location) for every task, and for a
  multiclass model also ``probs`` (N, n_classes), the softmax over ``classes``.  A
  sentence-level model (model.output: sentence) outputs ``tag_scores`` (N, T), s = U h + c
  for the T IOB2 ``tags``, and ``transitions`` (T+1, T), its constant matrix A (row T the
  start, -inf where IOB2 forbids the pair): the decision is a Viterbi path per sentence.
* ``model.vocab.json``: everything another runtime needs to build those ids from text
  exactly as ner-window does (``runtime_spec``): the tokeniser's pattern, the words in
  row order, the lookup chain, the casing classes, the window layout and the decision
  rule; for a sentence-level model also its ``tags``, A again as ``transitions`` (JSON has
  no -inf: null stands for it) and the Viterbi recursion.  The README shows tagging with
  onnxruntime and this file alone.

The graph builder needs the ``onnx`` extra; it is imported only when an export runs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from . import __version__
from .artifact import Model, load_model
from .errors import ConfigError, DataError, MissingExtraError, ModelError
from .files import write_bytes_atomic
from .tokenize import _TOKEN
from .vocab import BOS_ID, EOS_ID, UNK_ID
from .windows import CASING_CLASSES, PAD

FORMATS = ("onnx",)
SPEC_FORMAT_VERSION = 1

LOOKUP_CHAIN = [
    "exact: the token as it is",
    "lowercase: the token lowercased (Python str.lower, the full Unicode lowercase mapping)",
    "digits: the lowercased token with every decimal digit (Unicode general category Nd) replaced by '0'",
    "hashtag / mention: when the token is longer than one character and starts with '#' or '@', "
    "the whole chain again for the token without that first character",
    "unknown: unk_id",
]
# windows.casing_class, in the order it tries the rules; the first rule that holds gives the class.
# The str methods are Python's (Unicode properties: isdigit = Numeric_Type Digit or Decimal,
# isalnum = a letter or a number, islower/isupper = has a cased character and every cased
# character is lower / upper case, istitle = cased runs start upper case and go on lower case).
CASING_RULES = [
    ["digit", "any character c has c.isdigit()"],
    ["punct", "no character c has c.isalnum()"],
    ["lower", "token.islower()"],
    ["title", "token.isupper() and exactly one character is alphabetic (c.isalpha()): 'A', 'I'"],
    ["upper", "token.isupper()"],
    ["title", "token.istitle() or (token[0].isupper() and token[1:].islower())"],
    ["mixed", "any character c has c.isupper()"],
    ["other", "otherwise (letters without case: CJK, Arabic, ...)"],
]


def spec_path(out: str | os.PathLike) -> Path:
    """Where the vocabulary / normalisation file of ``out`` goes: model.onnx -> model.vocab.json."""
    return Path(out).with_suffix(".vocab.json")


def export_model(model_or_path: Model | str | os.PathLike, out: str | os.PathLike, fmt: str = "onnx") -> list[Path]:
    """Write ``out`` (the ONNX graph) and ``spec_path(out)``; returns both paths."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}: use --format {' or '.join(FORMATS)}")
    out = Path(out)
    if out.is_dir() or not out.parent.is_dir():
        raise DataError(f"--out {out}: cannot write there (it is a directory, or its directory does not exist); "
                        f"give a file path such as model.onnx in an existing directory")
    model = model_or_path if isinstance(model_or_path, Model) else load_model(model_or_path)
    sentence = model.output == "sentence"
    if not sentence and model.task == "multiclass" and "LOC" not in model.classes:
        raise ModelError(f"{model.path}: the classes {model.classes} have no LOC, so there is no P(location) "
                         f"to export; train with LOC among data.location_types")
    onnx_graph = _onnx_graph()
    spec = runtime_spec(model, out.name)
    metadata = {"ner_window.version": __version__, "ner_window.spec": spec_path(out).name,
                "ner_window.task": model.task, "ner_window.classes": json.dumps(model.classes),
                "ner_window.radius": str(model.radius), "ner_window.output": model.output,
                **({"ner_window.tags": json.dumps(model.tags)} if sentence
                   else {"ner_window.threshold": repr(model.threshold)})}
    proto = onnx_graph.build(model.params, model.activation, "sentence" if sentence else model.task,
                             model.tags if sentence else model.classes, metadata)
    write_bytes_atomic(out, proto.SerializeToString())
    write_bytes_atomic(spec_path(out), json.dumps(spec, ensure_ascii=False, indent=1).encode("utf-8"))
    return [out, spec_path(out)]


def _onnx_graph():
    """The onnx_graph module, or MissingExtraError when the onnx package is not installed."""
    try:
        from . import onnx_graph
    except ImportError as e:
        if (e.name or "").split(".")[0] != "onnx":
            raise
        raise MissingExtraError("ONNX export needs the onnx package: pip install 'ner-window[onnx]' "
                                "(make installs it into .venv)") from None
    return onnx_graph


def runtime_spec(model: Model, onnx_file: str) -> dict:
    """The JSON-safe description of how to turn text into the graph's inputs and its outputs into tags."""
    m, w = model.radius, 2 * model.radius + 1
    has_casing = model.params.C is not None
    inputs = {"ids": f"int64 (N, {w}): window ids, row i = the ids of tokens i-{m} .. i+{m} of a sentence"}
    if has_casing:
        inputs["casing"] = f"int64 (N, {w}): the casing class ids of the same positions"
    if model.output == "sentence":
        head = _sentence_spec(model)
    else:
        outputs = {"p": "float (N,): P(location) of each window's centre token"}
        if model.task == "multiclass":
            outputs["probs"] = f"float (N, {len(model.classes)}): softmax over classes"
        head = {"threshold": model.threshold, "outputs": outputs,
                "decision": (f"binary: a token is LOC when p >= threshold ({model.threshold})"
                             if model.task == "binary" else "multiclass: a token gets classes[argmax(probs)]"),
                "entities": "runs of consecutive tokens with the same label other than O"}
    return {
        "format": "ner-window runtime spec", "format_version": SPEC_FORMAT_VERSION,
        "ner_window_version": __version__, "model": onnx_file,
        "task": model.task, "output": model.output, "classes": model.classes, **head,
        "radius": m, "window": w, "inputs": inputs,
        "tokenizer": {
            "pattern": _TOKEN.pattern, "syntax": "Python re (no flags); \\w, \\d and \\s are Unicode classes",
            "rule": "the tokens of a text are the successive matches of pattern (Python: re.finditer); "
                    "one line of text is one sentence",
        },
        "lookup": LOOKUP_CHAIN, "unk_id": UNK_ID, "bos_id": BOS_ID, "eos_id": EOS_ID,
        "windows": f"a sentence of n tokens: ids = [bos_id] * {m} + [id of each token] + [eos_id] * {m}, "
                   f"casing = [pad] * {m} + [class of each token] + [pad] * {m}; window i = ids[i : i + {w}], "
                   f"casing[i : i + {w}]",
        "casing_classes": list(CASING_CLASSES), "pad_casing_id": PAD, "casing_used": has_casing,
        "casing_rules": [[CASING_CLASSES.index(name), name, rule] for name, rule in CASING_RULES],
        "words": model.vocab.to_list(),
        **({"gazetteer": _gazetteer_spec(model)} if model.gazetteer is not None else {}),
    }


def _sentence_spec(model: Model) -> dict:
    """A sentence-level model's outputs, its tags, A as JSON (null = -inf) and the decoding (sentence.viterbi)."""
    tags, A = model.tags, model.params.A
    T = len(tags)
    return {
        "threshold": None,
        "outputs": {"tag_scores": f"float (N, {T}): S[k, t], the score of tags[t] for window k (s = U h + c, "
                                  f"no softmax)",
                    "transitions": f"float ({T + 1}, {T}), the same for every input: A[i, j], the score of tags[i] "
                                   f"followed by tags[j]; row {T}: the start of a sentence; -inf: a pair IOB2 "
                                   f"forbids (I-c after anything but B-c or I-c)"},
        "tags": tags,
        "transitions": [[None if a == -np.inf else float(a) for a in row] for row in A],
        "transitions_null": "null is -inf (JSON has no infinity): a pair that no path may take",
        "decision": "Viterbi, per sentence (one line of text; its n windows in order): S = tag_scores (n, T), "
                    "A = transitions (T+1, T); v_0(j) = A[T, j] + S[0, j]; v_k(j) = S[k, j] + max_i (v_(k-1)(i) "
                    "+ A[i, j]), b_k(j) = the argmax i (the first on a tie); y_(n-1) = argmax_j v_(n-1)(j), "
                    "y_(k-1) = b_k(y_k); token k gets tags[y_k]",
        "entities": "a B-c tag starts an entity of class c, the I-c tags right after it continue it "
                    "(B-LOC B-LOC is two entities)",
    }


def _gazetteer_spec(model: Model) -> dict:
    """How a model trained with a gazetteer builds its casing input (gazetteer.py, windows.make_windows)."""
    K = len(CASING_CLASSES)
    return {
        "rule": "key of a token = its lowercase form without a leading '#'; in each sentence, left to right, "
                "the longest run of keys that is one of names (keys joined by one space) gets tag 1 on its first "
                "token and 2 on the others, the run is skipped, and every other token gets 0",
        "casing_id": f"casing class id + {K} * tag (pad positions stay {PAD})",
        "tags": ["outside", "begins", "continues"], "info": model.gazetteer.info,
        "names": sorted(model.gazetteer.names),
    }
