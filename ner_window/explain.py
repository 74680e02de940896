"""Stage: explain one prediction -- the forward and backward pass on one word's window.

    ner-window explain "museums in Paris are amazing" --word Paris [--label 1] [--format json]
    ner-window explain "museums in Paris are amazing" --index 2          (tokens numbered from 0)

prints the lecture's worked example for a trained model and a real window:

    forward    the window words and their vector norms, x, z = Wx + b, h = f(z), s, p
    backward   δs = ∂J/∂s for the given label, then each node of the graph as
               "upstream × local = downstream":
                   s = uᵀh + c   δs  × ∂s/∂h = u        = ∂J/∂h = u δs
                   h = f(z)      ∂J/∂h ∘ f'(z) (via h)  = δ = ∂J/∂z
                   z = Wx + b    δ   × ∂z/∂x = W        = ∂J/∂x = Wᵀδ,  ∂J/∂W = δxᵀ,  ∂J/∂b = δ
               and ∂J/∂x cut into one slice per window word
    saliency   ‖∂s/∂x_i‖ per window position, and the change in p when that
               word is replaced by <unk> (its casing class is kept, as word
               dropout does in training); the summary ranks the centre word's
               neighbours (the centre word itself is shown, not ranked)

No maths is implemented here.  Every number comes from model.py's reference path:
gather, forward -> (s, Cache(X, z, h)), probabilities, loss_and_delta_s, and
backward -> Grads, which carries ∂J/∂h, δ and ∂J/∂X besides the parameter
gradients.  This module picks the window, arranges the numbers and prints them.
J is this one window's data loss (no L2 term), the loss the model was trained with
("ce" for multiclass models).  The label decision is decision.decide's.

Labels (``label``, ``--label``).  Binary models: 1 = location (the default) or
0.  Multiclass models: an index into the model's classes, which are "O"
followed by the entity types in alphabetical order, so the default 1 is the
first entity class (LOC for CoNLL-2003); a class name ("PER") works too.  For
multiclass models the saliency is that of the label's class: ∂s_k/∂x and p_k.

A sentence-level model (model.output: sentence) has one score per IOB2 tag; its label is a
tag (an index into O, B-LOC, I-LOC, ... or a tag name; a class name such as LOC means its B-
tag), the default 1 being B-LOC.  Its backward pass starts from this token's row of ∂J/∂S,
δs = P(y_i = t | sentence) − [t = label] (sentence.py step 4), the same for every gold path
that tags the token with the label; and the result gains a "sentence" part: the token's tag
scores, the transition scores into its tags (from the previous token's Viterbi tag, or the
start) and out of them (to the next token's), its marginals, and the Viterbi path with its
entities.  The saliency's "p" is then the label's marginal, recomputed for the whole sentence
with the word replaced by <unk> (it sits in several windows).  All of it is sentence.py's
reference path (log_alpha, log_beta, marginals, viterbi) on model.forward's tag scores.

The word is matched against the tokens of ``tokenize.tokenize(text)``:
exactly first, then ignoring case.  If it occurs several times, the first
occurrence is explained and the result says so.  Tokens are numbered from 0
everywhere (the text, the JSON's token_index and occurrences, evaluate --errors).
"""

from __future__ import annotations

import numpy as np

from .artifact import Model
from .decision import decide
from .errors import DataError
from .model import DERIVATIVES, backward, forward, gather, loss_and_delta_s, probabilities
from .sentence import LOSS as SENTENCE_LOSS, log_alpha, log_beta, log_partition, marginals, tag_spans, viterbi
from .tokenize import tokenize
from .vocab import UNK_ID
from .windows import feature_name, make_windows

N_FIRST = 5  # how many leading values a vector summary shows

# How each formula reads, for the printout only (the numbers come from model.py); the keys
# are model.ACTIVATIONS' and model.COSTS' (tests/test_explain.py checks).
ACTIVATION_FORMULA = {"sigmoid": "σ(z)", "tanh": "tanh(z)", "relu": "max(z, 0)"}
DERIVATIVE_FORMULA = {"sigmoid": "h(1 - h)", "tanh": "1 - h²", "relu": "[h > 0]"}
DELTA_S_FORMULA = {"bce": "p - y", "squared": "2(p - y)·p(1 - p)", "ce": "p - y  (y one-hot)",
                   SENTENCE_LOSS: "P(y_i = t | sentence) - [t = label]"}


# ---------------------------------------------------------------------------
# Picking the word and the label
# ---------------------------------------------------------------------------


def find_word(tokens: list[str], word: str) -> tuple[int, list[int], bool]:
    """(index of the explained token, indices of all its occurrences, matched exactly?).

    Exact matches win; without one, matches ignoring case.  DataError names the
    word and lists the tokens when there is no match at all.
    """
    if not tokens:
        raise DataError(f"the text has no tokens, so there is no window for {word!r}; give some text to explain")
    exact = [i for i, t in enumerate(tokens) if t == word]
    if exact:
        return exact[0], exact, True
    folded = word.casefold()
    loose = [i for i, t in enumerate(tokens) if t.casefold() == folded]
    if loose:
        return loose[0], loose, False
    listing = ", ".join(repr(t) for t in tokens[:40]) + (", ..." if len(tokens) > 40 else "")
    raise DataError(f"--word {word!r} is not a token of the text; its tokens are {listing} "
                    f"(give --word as one of them)")


def token_at(tokens: list[str], index: int) -> int:
    """``index`` itself when it is a 0-based token index of ``tokens``; else DataError naming the range."""
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(tokens):
        raise DataError(f"token index {index!r} is out of range: the text has {len(tokens)} tokens, "
                        f"so give an index from 0 to {len(tokens) - 1}" if tokens else
                        "the text has no tokens, so there is no window to explain; give some text")
    return index


def output_names(model: Model) -> list[str]:
    """The names of the model's scores s: its classes, or a sentence-level model's IOB2 tags."""
    return model.tags if model.output == "sentence" else model.classes


def label_index(model: Model, label: int | str) -> int:
    """The index of ``label`` among output_names: an int (or digit string) index, or a name such as
    "LOC" (for a sentence model a tag such as "I-LOC", or a class name, meaning its B- tag)."""
    classes = output_names(model)
    if isinstance(label, str) and not label.strip().lstrip("-").isdigit():
        if label in classes:
            return classes.index(label)
        if f"B-{label}" in classes:
            return classes.index(f"B-{label}")
        raise DataError(f"--label {label!r} is not a {'tag' if model.output == 'sentence' else 'class'} of this "
                        f"model; use one of {', '.join(f'{i} ({c})' for i, c in enumerate(classes))}")
    k = int(label)
    if not 0 <= k < len(classes):
        raise DataError(f"--label {k} is out of range: this {model.task} model takes "
                        f"{', '.join(f'{i} ({c})' for i, c in enumerate(classes))}")
    return k


# ---------------------------------------------------------------------------
# The explanation as data
# ---------------------------------------------------------------------------


def summarise(v: np.ndarray) -> dict:
    """A vector or matrix in a few numbers: shape, norm (Frobenius for a matrix), min, max, first values."""
    v = np.asarray(v)
    flat = v.reshape(-1).astype(np.float64)
    return {
        "shape": list(v.shape),
        "norm": float(np.linalg.norm(flat)),
        "min": float(flat.min()) if flat.size else 0.0,
        "max": float(flat.max()) if flat.size else 0.0,
        "first": [float(a) for a in flat[:N_FIRST]] if v.ndim == 1 else [],
    }


def _scalar_or_list(a: np.ndarray) -> float | list[float]:
    a = np.asarray(a, dtype=np.float64)
    return float(a) if a.ndim == 0 else [float(x) for x in a]


def forward_backward(model: Model, ids: np.ndarray, casing: np.ndarray, k: int) -> dict:
    """Every node of one window's graph, from the model's reference path.

    ids, casing: (1, w); k: the label (class index).  Returns X (1, D), the Cache (z and
    h (1, H)), s and p (1,) or (1, n_classes), J, delta_s, and grads (backward()'s Grads,
    no L2 term: grads.dh = ∂J/∂h, grads.delta = δ, grads.dX = ∂J/∂x, all (1, ·)).
    """
    params, cfg = model.params, model.config
    X = gather(params, ids, casing)
    s, cache = forward(params, X, model.activation)
    # B = 1: the batch mean of loss_and_delta_s is this window's own value
    J, delta_s = loss_and_delta_s(s, np.array([k], dtype=np.int32), cfg.loss, cfg.train.pos_weight)
    grads = backward(params, cache, delta_s, ids, casing, train_E=True, lam=0.0, regularize_E=False)
    return {"X": X, "cache": cache, "s": s, "p": probabilities(s), "loss": cfg.loss, "J": J, "delta_s": delta_s,
            "grads": grads}


def saliency(model: Model, ids: np.ndarray, casing: np.ndarray, fb: dict, k: int) -> dict:
    """∂s/∂x (1, D) and the scores when each window word in turn is <unk>.

    ∂s/∂x is backward()'s dX with δs = 1 (multiclass: δs = one-hot k, so ∂s_k/∂x).
    s_unk, p_unk: (w,) or (w, n_classes), row j with position j's word id set to
    <unk> and its casing kept (as word dropout does in training).
    """
    params, w = model.params, model.params.window
    unit = np.eye(fb["s"].shape[1], dtype=fb["s"].dtype)[[k]] if fb["s"].ndim == 2 else np.ones_like(fb["s"])
    ds_dx = backward(params, fb["cache"], unit, ids, casing, train_E=False, lam=0.0, regularize_E=False).dX
    swapped = np.repeat(ids, w, axis=0)
    swapped[np.arange(w), np.arange(w)] = UNK_ID
    s_unk, _ = forward(params, gather(params, swapped, np.repeat(casing, w, axis=0)), model.activation)
    return {"ds_dx": ds_dx, "s_unk": s_unk, "p_unk": probabilities(s_unk) if params.A is None else fb["p_unk"]}


def sentence_forward_backward(model: Model, ids_all: np.ndarray, casing_all: np.ndarray, i: int, k: int) -> dict:
    """forward_backward for token i of a sentence-level model, and the sentence around it.

    ids_all, casing_all: (n, w), the windows of the sentence; k: the label tag.  The tag scores S
    (n, T) of every window (model.forward), then sentence.py's reference recursions: marginals P
    (n, T), the Viterbi path; δs = P[i] − onehot(k) (1, T) for backward on window i; and p_unk (w, T),
    P[i] again with each window word in turn replaced by <unk> in every window that holds it.
    """
    params, A, m = model.params, model.params.A, model.radius
    S, _ = forward(params, gather(params, ids_all, casing_all), model.activation)

    def token_marginals(S: np.ndarray) -> np.ndarray:
        alpha, beta = log_alpha(S, A), log_beta(S, A)
        return marginals(S, A, alpha, beta, log_partition(alpha))[0]

    alpha = log_alpha(S, A)
    P, path = token_marginals(S), viterbi(S, A)
    ids, casing = ids_all[i:i + 1], casing_all[i:i + 1]
    X = gather(params, ids, casing)
    s, cache = forward(params, X, model.activation)
    delta_s = (P[i] - np.eye(S.shape[1])[k])[None, :].astype(s.dtype)  # ∂J/∂S[i] = P(y_i = t) − [t = k]
    grads = backward(params, cache, delta_s, ids, casing, train_E=True, lam=0.0, regularize_E=False)
    p_unk = np.zeros((2 * m + 1, S.shape[1]))
    n, rows = len(ids_all), np.arange(len(ids_all))
    for j, o in enumerate(range(-m, m + 1)):
        if 0 <= i + o < n:  # the windows r hold token i + o at column (i + o) − r + m
            col, unk = i + o - rows + m, ids_all.copy()
            inside = (col >= 0) & (col < 2 * m + 1)
            unk[rows[inside], col[inside]] = UNK_ID
            p_unk[j] = token_marginals(forward(params, gather(params, unk, casing_all), model.activation)[0])[i]
    return {"X": X, "cache": cache, "s": s, "p": P[i:i + 1], "loss": SENTENCE_LOSS, "J": None, "delta_s": delta_s,
            "grads": grads, "S": S, "P": P, "path": path[0], "path_score": path[1],
            "log_Z": log_partition(alpha), "p_unk": p_unk}


def _finite_or_none(values) -> list[float | None]:
    """Transition scores for JSON: a pair IOB2 forbids (−∞) is None."""
    return [float(a) if np.isfinite(a) else None for a in np.asarray(values, dtype=np.float64)]


def _sentence_summary(model: Model, tokens: list[str], i: int, fb: dict) -> dict:
    """The sentence-level part of explain(): token i's tag scores, its transitions in and out, its
    marginals, and the Viterbi path of the sentence with its entities."""
    tags, A, path = model.tags, model.params.A, fb["path"]
    T, n = len(tags), len(tokens)
    prev = int(path[i - 1]) if i else T  # row T of A: the start
    nxt = int(path[i + 1]) if i + 1 < n else None
    return {
        "tags": tags, "tag": tags[int(path[i])],
        "tag_scores": _scalar_or_list(fb["S"][i]), "marginals": _scalar_or_list(fb["P"][i]),
        "incoming_from": "start" if i == 0 else f"{tags[prev]} (token {i - 1}, Viterbi)",
        "incoming": _finite_or_none(A[prev]),
        "outgoing_to": None if nxt is None else f"{tags[nxt]} (token {i + 1}, Viterbi)",
        "outgoing": None if nxt is None else _finite_or_none(A[:T, nxt]),
        "viterbi": [tags[int(t)] for t in path], "viterbi_score": float(fb["path_score"]),
        "log_Z": float(fb["log_Z"]), "path_probability": float(np.exp(fb["path_score"] - fb["log_Z"])),
        "spans": [{"label": t, "start": a, "end": b, "text": " ".join(tokens[a:b])}
                  for t, a, b in tag_spans(path, tags)],
    }


def _pick_token(tokens: list[str], word: str | None, index: int | None) -> tuple[int, str, list[int], bool]:
    """(index, word, every index of that word, matched exactly?) for --word or --index (one of them)."""
    if (word is None) == (index is None):
        raise DataError("explain: give the word to explain or its token index, not both and not neither")
    if index is None:
        i, occurrences, exact = find_word(tokens, word)
        return i, word, occurrences, exact
    i = token_at(tokens, index)
    return i, tokens[i], [j for j, t in enumerate(tokens) if t == tokens[i]], True


def _window_rows(model: Model, tokens: list[str], i: int, ids, casing, fb: dict, sal: dict, of_k) -> list[dict]:
    """One row per window position: the word, its vector norms, its slices of ∂J/∂x and ∂s/∂x, and <unk>."""
    params, vocab, m = model.params, model.vocab, model.radius
    w, d, d_c = params.window, params.d, params.d_c
    s_ref, p_ref = of_k(fb["s"][0]), of_k(fb["p"][0])
    x3, dx3, ds3 = (a.reshape(w, d + d_c) for a in (fb["X"], fb["grads"].dX, sal["ds_dx"]))  # a row per position
    rows = []
    for j, o in enumerate(range(-m, m + 1)):
        wid = int(ids[0, j])
        inside = 0 <= i + o < len(tokens)  # else <s> / </s> padding
        rows.append({
            "offset": o,
            "slot": "w0" if o == 0 else f"w{o:+d}",
            "token": tokens[i + o] if inside else vocab.words[wid],
            "token_index": i + o if inside else None,
            "in_sentence": inside,
            "vocab_word": vocab.words[wid],
            "id": wid,
            "casing": feature_name(casing[0, j]),
            "e_norm": float(np.linalg.norm(x3[j, :d])),
            "c_norm": float(np.linalg.norm(x3[j, d:])) if d_c else None,
            "dJ_de_norm": float(np.linalg.norm(dx3[j, :d])),
            "dJ_dc_norm": float(np.linalg.norm(dx3[j, d:])) if d_c else None,
            "dJ_dx_norm": float(np.linalg.norm(dx3[j])),
            "ds_dx_norm": float(np.linalg.norm(ds3[j])),
            "s_unk": of_k(sal["s_unk"][j]) if inside else None,
            "s_change": of_k(sal["s_unk"][j]) - s_ref if inside else None,
            "p_unk": of_k(sal["p_unk"][j]) if inside else None,
            "p_change": of_k(sal["p_unk"][j]) - p_ref if inside else None,
        })
    return rows


def explain(model: Model, text: str, word: str | None = None, label: int | str = 1, *,
            index: int | None = None) -> dict:
    """Forward and backward pass of ``model`` on one window of ``text`` (a JSON-safe dict).

    The window is that of ``word`` (first occurrence, see find_word) or of the token at
    0-based ``index`` (exactly one of the two).  label: the gold label for the backward
    pass (see the module docstring).
    """
    params, classes, names = model.params, model.classes, output_names(model)
    sentence_model = model.output == "sentence"
    multiclass = model.task == "multiclass" or sentence_model  # s is a vector (of classes or of tags)
    k = label_index(model, label)
    tokens = [t.text for t in tokenize(text)]
    i, word, occurrences, exact = _pick_token(tokens, word, index)
    windows = make_windows([tokens], model.vocab, model.radius, gazetteer=model.gazetteer)
    ids, casing = windows.ids[i:i + 1], windows.casing[i:i + 1]  # (1, w)
    fb = (sentence_forward_backward(model, windows.ids, windows.casing, i, k) if sentence_model
          else forward_backward(model, ids, casing, k))
    sal = saliency(model, ids, casing, fb, k)
    of_k = (lambda q: float(q[k])) if multiclass else float  # the output the saliency is about
    rows = _window_rows(model, tokens, i, ids, casing, fb, sal, of_k)
    neighbours = [r for r in rows if r["offset"] != 0 and r["in_sentence"]]
    top_grad = max(neighbours, key=lambda r: r["ds_dx_norm"], default=None)
    # p saturates near 0 and 1 (float32 steps of 6e-8 there): ties in |Δp| go to the larger |Δs|
    top_unk = max(neighbours, key=lambda r: (abs(r["p_change"]), abs(r["s_change"])), default=None)
    p = fb["p"][0]
    prediction = (model.tags[int(fb["path"][i])] if sentence_model
                  else classes[int(decide(fb["p"], model.threshold, classes)[0])])
    result = {
        "text": text, "word": word, "token": tokens[i], "token_index": i, "occurrences": occurrences,
        "tokens": tokens, "notes": _notes(tokens, word, i, occurrences, exact),
        "model": {
            "path": str(model.path), "task": model.task, "output": model.output, "classes": classes,
            "radius": model.radius, "window": params.window, "d": params.d, "d_c": params.d_c,
            "D": int(params.W.shape[1]), "hidden": params.hidden, "activation": model.activation, "loss": fb["loss"],
            "threshold": None if multiclass else model.threshold,
            "ensemble": model.config.train.ensemble,  # members merged into this one network (ensemble.py)
        },
        "window": rows,
        "forward": {
            "x": summarise(fb["X"][0]), "z": summarise(fb["cache"].z[0]), "h": summarise(fb["cache"].h[0]),
            "s": _scalar_or_list(fb["s"][0]), "p": _scalar_or_list(p), "prediction": prediction,
        },
        "backward": _backward_summary(model, fb, k),
        "saliency": {
            "of": f"s[{k}] ({names[k]})" if multiclass else "s",
            "p_of": (f"P({names[k]} | sentence)" if sentence_model else f"p[{k}] ({names[k]})" if multiclass
                     else "p"),
            "s": of_k(fb["s"][0]), "p": of_k(fb["p"][0]),
            "ranks": "the neighbours of the centre word (the centre word itself is not ranked)",
            "top_gradient": None if top_grad is None else top_grad["slot"],
            "top_unk": None if top_unk is None else top_unk["slot"],
        },
    }
    if sentence_model:
        result["sentence"] = _sentence_summary(model, tokens, i, fb)
    return result


def _notes(tokens: list[str], word: str, i: int, occurrences: list[int], exact: bool) -> list[str]:
    """What the reader should know about the token picked: a case-insensitive match, repeats."""
    notes = []
    if not exact:
        notes.append(f"no exact match for {word!r}; matched {tokens[i]!r} ignoring case")
    if len(occurrences) > 1:
        which = "the first" if i == occurrences[0] else f"token {i}"
        notes.append(f"{tokens[i]!r} occurs {len(occurrences)} times "
                     f"(tokens {', '.join(str(j) for j in occurrences)}); explaining {which}")
    return notes


def _backward_summary(model: Model, fb: dict, k: int) -> dict:
    """The backward half of explain()'s result: δs, then each node's upstream, local and downstream."""
    params, grads, classes = model.params, fb["grads"], output_names(model)
    multiclass = model.task == "multiclass" or model.output == "sentence"
    return {
        "label": k,
        "label_name": classes[k],
        "y": [float(c == k) for c in range(len(classes))] if multiclass else float(k),
        "J": None if fb["J"] is None else float(fb["J"]),
        "delta_s": _scalar_or_list(fb["delta_s"][0]),
        "dJ_dh": summarise(grads.dh[0]),
        "f_prime": summarise(DERIVATIVES[model.activation](fb["cache"].h)[0]),
        "delta": summarise(grads.delta[0]),
        "dJ_dx": summarise(grads.dX[0]),
        "W": summarise(params.W),
        "u": summarise(params.u),
        "dW": summarise(grads.dW),
        "db": summarise(grads.db),
        "du": summarise(grads.du),
        "dc": None if grads.dc is None else _scalar_or_list(grads.dc),
    }


# ---------------------------------------------------------------------------
# The explanation as text
# ---------------------------------------------------------------------------


def _g(x: float | None) -> str:
    """A number to 4 significant figures (parseable: plain ASCII minus)."""
    return "-" if x is None else f"{x:.4g}"


def _p(x: float | None) -> str:
    """A probability to 6 significant figures: a confident 0.99999 must not print as 1."""
    return "-" if x is None else f"{x:.6g}"


def _vec(v: dict) -> str:
    """A vector summary on one line: (shape) ‖·‖ norm  min .. max  [first values, ...]."""
    shape = "(" + ", ".join(map(str, v["shape"])) + ("," if len(v["shape"]) == 1 else "") + ")"
    out = f"{shape:<10} ‖·‖ {_g(v['norm']):<9} min {_g(v['min']):<10} max {_g(v['max']):<10}"
    if v["first"]:
        more = ", ..." if v["shape"][0] > len(v["first"]) else ""
        out += " [" + ", ".join(_g(a) for a in v["first"]) + more + "]"
    return out.rstrip()


def format_text(result: dict) -> str:
    """The explanation as the lecture would write it on the board (see the module docstring)."""
    mdl = result["model"]
    out = [f"Explaining {result['token']!r} (token {result['token_index']} of tokens 0-{len(result['tokens']) - 1}) "
           f"in: {result['text']}"]
    out += [f"  note: {n}" for n in result["notes"]]
    casing = f", casing vectors d_c = {mdl['d_c']}" if mdl["d_c"] else ""
    out.append(f"model {mdl['path']}: {mdl['task']} ({', '.join(mdl['classes'])}), radius m = {mdl['radius']}, "
               f"d = {mdl['d']}{casing}, D = {mdl['window']}·{mdl['d'] + mdl['d_c']} = {mdl['D']}, "
               f"H = {mdl['hidden']}, f = {mdl['activation']}")
    if mdl.get("ensemble", 1) > 1:
        out.append(f"  an ensemble of {mdl['ensemble']} networks merged into this one (ensemble.py): each member's "
                   f"vectors side by side in e and c, W block diagonal, u divided by {mdl['ensemble']}: s is the "
                   f"mean of the members' s")
    sentence_part = _sentence_text(result) if "sentence" in result else []
    return "\n".join(out + _forward_text(result) + sentence_part + _backward_text(result) + _saliency_text(result))


def _sentence_text(result: dict) -> list[str]:
    """The sentence-level part: tag scores, transitions in and out, marginals, the Viterbi path."""
    sen, i = result["sentence"], result["token_index"]
    tags = sen["tags"]
    out = ["", f"Sentence level: score(y) = Σ_k (A[y_k-1, y_k] + S[k, y_k]); token {i} ({result['token']!r})"]
    out.append(f"    {'tag':<8} {'S[i, t]':>9} {'A[in, t]':>9} {'A[t, out]':>10} {'P(y_i = t)':>11}")
    for t, name in enumerate(tags):
        incoming, outgoing = sen["incoming"][t], None if sen["outgoing"] is None else sen["outgoing"][t]
        out.append(f"    {name:<8} {_g(sen['tag_scores'][t]):>9} {_a(incoming):>9} "
                   f"{'' if sen['outgoing'] is None else _a(outgoing):>10} {_p(sen['marginals'][t]):>11}")
    out.append(f"  in: from {sen['incoming_from']};  out: " + ("the sentence ends here" if sen["outgoing"] is None
                                                              else f"to {sen['outgoing_to']}")
               + "  (-inf: a pair IOB2 forbids)")
    path = " ".join(f"{tok}/{tag}" for tok, tag in zip(result["tokens"], sen["viterbi"]))
    out.append(f"  Viterbi path: {path}")
    spans = ", ".join(f"[{s['text']}]{s['label']}" for s in sen["spans"]) or "(no entities)"
    out.append(f"  entities: {spans};  score {_g(sen['viterbi_score'])}, log Z {_g(sen['log_Z'])}, "
               f"p(path | sentence) = {_p(sen['path_probability'])}")
    return out


def _a(x: float | None) -> str:
    """A transition score; None is a pair IOB2 forbids (−∞)."""
    return "-inf" if x is None else _g(x)


def _list(values) -> str:
    return "[" + ", ".join(_g(a) for a in values) + "]"


def _forward_text(result: dict) -> list[str]:
    mdl, fw, bw = result["model"], result["forward"], result["backward"]
    out = ["", "Forward pass"]
    cw = max(6, *(len(r["casing"]) for r in result["window"]))  # "title+continues" with a gazetteer
    header = f"  {'slot':<5} {'token':<16} {'vocabulary word':<16} {'id':>7}  {'casing':<{cw}} {'‖e‖':>8}"
    out.append(header + (f" {'‖c‖':>8}" if mdl["d_c"] else ""))
    for r in result["window"]:
        line = (f"  {r['slot']:<5} {r['token']:<16} {r['vocab_word']:<16} {r['id']:>7}  {r['casing']:<{cw}} "
                f"{_g(r['e_norm']):>8}")
        out.append(line + (f" {_g(r['c_norm']):>8}" if mdl["d_c"] else ""))
    part = "e({w}); c({w})" if mdl["d_c"] else "e({w})"
    ends = [part.format(w=r["slot"]) for r in (result["window"][0], result["window"][-1])]
    x_formula = "[" + (ends[0] if mdl["radius"] == 0 else f"{ends[0]}; ...; {ends[1]}") + "]"
    out.append(f"  {'x = ' + x_formula:<44} {_vec(fw['x'])}")
    out.append(f"  {'z = W x + b':<44} {_vec(fw['z'])}")
    out.append(f"  {'h = f(z) = ' + ACTIVATION_FORMULA[mdl['activation']]:<44} {_vec(fw['h'])}")
    sentence_model = mdl.get("output") == "sentence"
    if mdl["task"] == "multiclass" or sentence_model:
        names = result["sentence"]["tags"] if sentence_model else mdl["classes"]
        out.append("  s = U h + c (a score f(t | window) per tag),  p = P(y_i = t | sentence), the marginals:"
                   if sentence_model else "  s = U h + c,  p = softmax(s):")
        out.append(f"    {'k':>2}  {'tag' if sentence_model else 'class':<6} {'s_k':>9} {'p_k':>11} {'y_k':>4} "
                   f"{'δs_k':>10}")
        for c, name in enumerate(names):
            mark = "  <- label" if c == bw["label"] else ""
            out.append(f"    {c:>2}  {name:<6} {_g(fw['s'][c]):>9} {_p(fw['p'][c]):>11} {bw['y'][c]:>4.0f} "
                       f"{_g(bw['delta_s'][c]):>10}{mark}")
        out.append(f"  prediction: {fw['prediction']} " + ("(the Viterbi path's tag)" if sentence_model
                                                            else "(argmax p)"))
    else:
        out.append(f"  {'s = uᵀh + c':<44} s = {_g(fw['s'])}")
        out.append(f"  {'p = σ(s)':<44} p = {_p(fw['p'])}  -> {fw['prediction']} "
                   f"(threshold {_g(mdl['threshold'])})")
    return out


def _backward_text(result: dict) -> list[str]:
    mdl, bw = result["model"], result["backward"]
    sentence_model = mdl.get("output") == "sentence"
    multiclass, act, loss = mdl["task"] == "multiclass" or sentence_model, mdl["activation"], mdl["loss"]
    y_text = f"y = one-hot({bw['label']})" if multiclass else f"y = {bw['label']}"
    delta_s_text = _list(bw["delta_s"]) if multiclass else _g(bw["delta_s"])
    what = (f"J = {_g(bw['J'])}  (this window's data loss, no L2 term)" if not sentence_model else
            "J = -log p(y | sentence) for any gold path y that tags this token with the label; "
            "this token's row of ∂J/∂S:")
    out = ["", f"Backward pass, label {bw['label']} ({bw['label_name']}): {y_text}, loss {loss}, {what}",
           f"  δs = ∂J/∂s = {DELTA_S_FORMULA[loss]} = {delta_s_text}"]
    dc = "-" if bw["dc"] is None else (_list(bw["dc"]) if multiclass else _g(bw["dc"]))
    nodes = [
        (f"node {'s = U h + c' if multiclass else 's = uᵀh + c'}", [
            ("upstream", ("δs (T,)" if sentence_model else "δs (n_classes,)") if multiclass else "δs", delta_s_text),
            ("local", "∂s/∂h = U" if multiclass else "∂s/∂h = u", _vec(bw["u"])),
            ("downstream", "∂J/∂h = Uᵀδs" if multiclass else "∂J/∂h = u δs", _vec(bw["dJ_dh"])),
        ], [("∂J/∂U = δs hᵀ" if multiclass else "∂J/∂u = δs h", _vec(bw["du"])), ("∂J/∂c = δs", dc)]),
        (f"node h = f(z) = {ACTIVATION_FORMULA[act]}   (elementwise: the local Jacobian is diagonal)", [
            ("upstream", "∂J/∂h", _vec(bw["dJ_dh"])),
            ("local", f"f'(z) = {DERIVATIVE_FORMULA[act]}", _vec(bw["f_prime"])),
            ("downstream", "δ = ∂J/∂z = ∂J/∂h ∘ f'(z)", _vec(bw["delta"])),
        ], []),
        ("node z = W x + b", [
            ("upstream", "δ", _vec(bw["delta"])),
            ("local", "∂z/∂x = W", _vec(bw["W"])),
            ("downstream", "∂J/∂x = Wᵀδ", _vec(bw["dJ_dx"])),
        ], [("∂J/∂W = δ xᵀ", _vec(bw["dW"])), ("∂J/∂b = δ", _vec(bw["db"]))]),
    ]
    for title, steps, extra in nodes:
        out.append(f"  {title}")
        out += [f"    {role:<11}{name:<28} {value}" for role, name, value in steps]
        out += [f"    {'and':<11}{name:<28} {value}" for name, value in extra]
    rows_of = "E and casing row of C" if mdl["d_c"] else "E"
    out.append(f"  ∂J/∂x per window word (each slice is added to the word's row of {rows_of}):")
    out.append(f"    {'slot':<5} {'token':<16} {'‖∂J/∂e‖':>10}" + (f" {'‖∂J/∂c‖':>10}" if mdl["d_c"] else ""))
    for r in result["window"]:
        line = f"    {r['slot']:<5} {r['token']:<16} {_g(r['dJ_de_norm']):>10}"
        out.append(line + (f" {_g(r['dJ_dc_norm']):>10}" if mdl["d_c"] else ""))
    return out


def _saliency_text(result: dict) -> list[str]:
    sal = result["saliency"]
    s_name, p_name = sal["of"], sal["p_of"]
    out = ["", f"Saliency: which window word moves {s_name} most ({s_name} = {_g(sal['s'])}, "
               f"{p_name} = {_p(sal['p'])});",
           "  the gradient of the score, and the change when the word is replaced by <unk> (casing kept)",
           f"    {'slot':<5} {'token':<16} {'‖∂s/∂x_i‖':>10} {'s with <unk>':>13} {'Δs':>10} "
           f"{'p with <unk>':>13} {'Δp':>11}"]
    for r in result["window"]:
        if r["in_sentence"]:
            unk = f"{_g(r['s_unk']):>13} {r['s_change']:>+10.4g} {_p(r['p_unk']):>13} {r['p_change']:>+11.4g}"
        else:
            unk = f"{'(padding)':>13}"
        out.append(f"    {r['slot']:<5} {r['token']:<16} {_g(r['ds_dx_norm']):>10} {unk}")
    by_slot = {r["slot"]: r for r in result["window"]}
    centre = by_slot["w0"]
    if sal["top_gradient"] is None:
        out.append("  the word has no neighbours inside the sentence (only padding)")
        return out
    g, u = by_slot[sal["top_gradient"]], by_slot[sal["top_unk"]]
    out.append(f"  among the neighbours of {centre['token']!r} (w0 itself: ‖∂s/∂x‖ = {_g(centre['ds_dx_norm'])}, "
               f"not ranked): largest gradient {g['token']!r} ({g['slot']}), ‖∂s/∂x‖ = {_g(g['ds_dx_norm'])}; "
               f"largest effect of <unk> {u['token']!r} ({u['slot']}), {p_name} {_p(sal['p'])} -> "
               f"{_p(u['p_unk'])} ({u['p_change']:+.4g})")
    return out
