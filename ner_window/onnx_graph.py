"""The window classifier as an ONNX graph, built with the onnx package's helpers (no PyTorch).

The graph is the forward pass of model.py, one ONNX node per line of the lecture:

    inputs   ids (N, w) int64, casing (N, w) int64 (only when the model has casing vectors C)
    x        = [e(w-m); c(w-m); ...; e(w+m); c(w+m)]   Gather E, Gather C, Concat(axis=2), Flatten   (N, D)
    z        = X Wᵀ + b                                 MatMul, Add                                   (N, H)
    h        = f(z)                                     Tanh | Sigmoid | Relu                          (N, H)
    s        = h Uᵀ + c                                 MatMul, Add                                   (N, n_out)
    ---- output head (one per task) ----
    binary:      p = σ(s)                               Sigmoid, Squeeze                              (N,)
    multiclass:  probs = softmax(s),  p = probs[:, LOC] Softmax(axis=1), Gather(axis=1)            (N, n), (N,)
    sentence:    tag_scores = s,  transitions = A       Identity, Identity (A a constant)            (N, T), (T+1, T)

``window_scores`` builds everything up to s and ``HEADS[head]`` the rest (``head`` is the
task, or "sentence" for a sentence-level model).  A sentence-level model's decision needs the
whole sentence (Viterbi over the tag scores and A, sentence.py), so its graph stops at the
scores and hands out A as a second, constant output; the decoding is the caller's.  Only
export.py imports this module, and only when an export is asked for: it needs the ``onnx`` extra.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .model import Params

OPSET = 17  # Softmax(axis) and Squeeze(axes as an input) as used below; onnxruntime >= 1.14 runs it
IR_VERSION = 8  # the IR of opset 17, so older runtimes load the file too
ACTIVATION_OPS = {"tanh": "Tanh", "sigmoid": "Sigmoid", "relu": "Relu"}  # model.ACTIVATIONS, as ONNX ops


class Graph(NamedTuple):
    """What the builders add to: the float element type, nodes, constant tensors, inputs, outputs."""

    elem: int  # TensorProto.FLOAT or DOUBLE: the dtype of the parameters
    nodes: list
    initializers: list
    inputs: list
    outputs: list

    def constant(self, name: str, array: np.ndarray) -> str:
        # np.array(order="C"), not np.ascontiguousarray: that makes a 0-d index 1-d, and Gather would keep the axis
        self.initializers.append(numpy_helper.from_array(np.array(array, order="C"), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attrs) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output


def window_scores(g: Graph, params: Params, activation: str) -> str:
    """Add the inputs and the layers up to the scores s (N, n_out); returns the name of s."""
    w = params.window
    g.inputs.append(helper.make_tensor_value_info("ids", TensorProto.INT64, ["N", w]))
    e = g.node("Gather", [g.constant("E", params.E), "ids"], "e", axis=0)  # (N, w, d)
    if params.C is not None:
        g.inputs.append(helper.make_tensor_value_info("casing", TensorProto.INT64, ["N", w]))
        c_rows = g.node("Gather", [g.constant("C", params.C), "casing"], "c_rows", axis=0)  # (N, w, d_c)
        e = g.node("Concat", [e, c_rows], "x_positions", axis=2)  # each token's e then its c, as gather()
    X = g.node("Flatten", [e], "X", axis=1)  # (N, D), row i = x_iᵀ
    z = g.node("Add", [g.node("MatMul", [X, g.constant("W_T", params.W.T)], "XW_T"), g.constant("b", params.b)], "z")
    h = g.node(ACTIVATION_OPS[activation], [z], "h")
    U = params.u.reshape(-1, params.hidden)  # (n_out, H); n_out = 1 for binary
    s = g.node("MatMul", [h, g.constant("U_T", U.T)], "hU_T")
    if params.c is not None:
        s = g.node("Add", [s, g.constant("c", params.c.reshape(-1))], "s")
    return s


def binary_head(g: Graph, s: str, params: Params, classes: list[str]) -> None:
    """p = σ(s), (N, 1) -> (N,)."""
    p1 = g.node("Sigmoid", [s], "p_column")
    g.node("Squeeze", [p1, g.constant("axis_1", np.array([1], dtype=np.int64))], "p")
    g.outputs.append(helper.make_tensor_value_info("p", g.elem, ["N"]))


def multiclass_head(g: Graph, s: str, params: Params, classes: list[str]) -> None:
    """probs = softmax(s) (N, n_classes) and p = probs[:, LOC] (N,)."""
    probs = g.node("Softmax", [s], "probs", axis=1)
    g.node("Gather", [probs, g.constant("loc_index", np.array(classes.index("LOC"), dtype=np.int64))], "p", axis=1)
    g.outputs.append(helper.make_tensor_value_info("p", g.elem, ["N"]))
    g.outputs.append(helper.make_tensor_value_info("probs", g.elem, ["N", len(classes)]))


def sentence_head(g: Graph, s: str, params: Params, tags: list[str]) -> None:
    """tag_scores = s (N, T), S[k, t] = f(t | k) of sentence.py, and transitions = A (T+1, T), row T the start.

    A is a constant (an initializer behind an Identity, since a graph output is a node's output):
    the same matrix for every input, -inf where IOB2 forbids the pair, as params.npz holds it.
    """
    T = len(tags)
    g.node("Identity", [s], "tag_scores")
    g.node("Identity", [g.constant("A", params.A)], "transitions")
    g.outputs.append(helper.make_tensor_value_info(
        "tag_scores", g.elem, ["N", T], doc_string=f"S[k, t]: the score of tag t ({', '.join(tags)}) for window k"))
    g.outputs.append(helper.make_tensor_value_info(
        "transitions", g.elem, [T + 1, T], doc_string="A[i, j]: tag i followed by tag j; row T: the start; "
                                                      "-inf: a pair IOB2 forbids"))


HEADS: dict[str, Callable[[Graph, str, Params, list[str]], None]] = {
    "binary": binary_head, "multiclass": multiclass_head, "sentence": sentence_head}


def build(params: Params, activation: str, head: str, labels: list[str],
          metadata: dict[str, str]) -> onnx.ModelProto:
    """The checked ONNX model of ``params``: window_scores, then HEADS[head] ("binary", "multiclass" or
    "sentence"); ``labels``: the classes, or a sentence model's tags."""
    g = Graph(helper.np_dtype_to_tensor_dtype(params.dtype), [], [], [], [])
    s = window_scores(g, params, activation)
    HEADS[head](g, s, params, labels)
    graph = helper.make_graph(g.nodes, "ner_window", g.inputs, g.outputs, initializer=g.initializers)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION,
                              producer_name="ner-window")
    helper.set_model_props(proto, metadata)
    onnx.checker.check_model(proto)
    return proto
