"""`ner-window explain`: the printed forward and backward pass are the model's own numbers.

Small hand-made models (random parameters, float64, a dozen words) keep this fast
and exact; every number explain() reports is compared with model.forward /
loss_and_delta_s / backward run here on the same window, and the per-word
slices of ∂J/∂x and ∂s/∂x with centred differences.
"""

import json
import re

import numpy as np
import pytest
from click.testing import CliRunner

from ner_window.artifact import load_model, save_model
from ner_window.cli import cli
from ner_window.errors import DataError
from ner_window.explain import explain, format_text
from ner_window.model import backward, forward, gather, init_params, loss_and_delta_s, probabilities
from ner_window.vocab import UNK_ID, Vocab
from ner_window.windows import make_windows

WORDS = ["<unk>", "<s>", "</s>", "museums", "in", "paris", "are", "amazing", "the", "hilton", "visited"]
TEXT = "museums in Paris are amazing"
CLASSES = ["O", "LOC", "MISC", "ORG", "PER"]


def make_model(tmp_path, task="binary", activation="tanh", loss="bce", casing=True, radius=2):
    """Save and load a random model: d = 6, d_c = 3, H = 7, float64."""
    vocab = Vocab(WORDS)
    classes = ["O", "LOC"] if task == "binary" else CLASSES
    params = init_params(len(vocab), 6, radius, 7, n_casing=8 if casing else 0, d_c=3 if casing else 0,
                         n_classes=1 if task == "binary" else len(classes), rng=np.random.default_rng(3),
                         dtype=np.float64)
    # larger weights than Glorot's so that s and the gradients are far from 0
    params.W *= 3.0
    params.u *= 3.0
    meta = {
        "config": {
            "data": {"scheme": "iob2", "location_types": ["LOC"]},
            "model": {"task": task, "radius": radius, "hidden": 7, "activation": activation},
            "train": {"loss": loss, "pos_weight": 1.0},
        },
        "classes": classes,
        "threshold": 0.4,
    }
    out = tmp_path / f"{task}-{activation}-{loss}-{casing}-{radius}"
    save_model(out, params, vocab, meta)
    return load_model(out)


@pytest.fixture(scope="module")
def binary(tmp_path_factory):
    return make_model(tmp_path_factory.mktemp("explain"))


@pytest.fixture(scope="module")
def multiclass(tmp_path_factory):
    return make_model(tmp_path_factory.mktemp("explain"), task="multiclass", loss="ce")


def reference(model, text, index, label, loss):
    """The model's own reference path on the window of token ``index``: what explain must report."""
    tokens = text.split()
    win = make_windows([tokens], model.vocab, model.radius)
    ids, casing = win.ids[index:index + 1], win.casing[index:index + 1]
    X = gather(model.params, ids, casing)
    s, cache = forward(model.params, X, model.activation)
    J, delta_s = loss_and_delta_s(s, np.array([label]), loss)
    grads = backward(model.params, cache, delta_s, ids, casing, train_E=True, lam=0.0, regularize_E=False)
    return {"ids": ids, "casing": casing, "X": X, "s": s[0], "p": probabilities(s)[0], "h": cache.h[0],
            "J": J, "delta_s": delta_s[0], "grads": grads}


def numerical_grad(f, x, eps=1e-6):
    """Centred differences of a scalar function f at every entry of the vector x."""
    g = np.zeros_like(x)
    for k in range(x.size):
        e = np.zeros_like(x)
        e[k] = eps
        g[k] = (f(x + e) - f(x - e)) / (2 * eps)
    return g


# --- the forward pass ----------------------------------------------------------------


def test_forward_numbers_are_the_models(binary):
    r = explain(binary, TEXT, "Paris")
    ref = reference(binary, TEXT, 2, 1, "bce")
    assert r["token"] == "Paris" and r["token_index"] == 2
    assert r["forward"]["s"] == pytest.approx(float(ref["s"]), rel=1e-12)
    assert r["forward"]["p"] == pytest.approx(float(ref["p"]), rel=1e-12)
    assert r["forward"]["x"]["norm"] == pytest.approx(np.linalg.norm(ref["X"]))
    assert r["forward"]["h"]["norm"] == pytest.approx(np.linalg.norm(ref["h"]))
    assert r["forward"]["h"]["first"] == pytest.approx(ref["h"][:5].tolist())
    z = binary.params.W @ ref["X"][0] + binary.params.b
    assert r["forward"]["z"]["norm"] == pytest.approx(np.linalg.norm(z))
    assert np.tanh(r["forward"]["z"]["max"]) == pytest.approx(r["forward"]["h"]["max"])
    # the window: words, the vocabulary rows they map to, and their vector norms
    assert [w["token"] for w in r["window"]] == ["museums", "in", "Paris", "are", "amazing"]
    assert r["window"][2]["vocab_word"] == "paris" and r["window"][2]["casing"] == "title"
    E, C = binary.params.E, binary.params.C
    for w, i, c in zip(r["window"], ref["ids"][0], ref["casing"][0]):
        assert w["id"] == i
        assert w["e_norm"] == pytest.approx(np.linalg.norm(E[i]))
        assert w["c_norm"] == pytest.approx(np.linalg.norm(C[c]))
    assert r["forward"]["prediction"] == ("LOC" if ref["p"] >= 0.4 else "O")


def test_window_at_the_sentence_edge_shows_the_padding(binary):
    r = explain(binary, TEXT, "museums")
    assert [w["token"] for w in r["window"][:2]] == ["<s>", "<s>"]
    assert [w["in_sentence"] for w in r["window"]] == [False, False, True, True, True]
    assert r["window"][0]["p_unk"] is None and r["window"][0]["casing"] == "pad"


# --- the backward pass -----------------------------------------------------------------


@pytest.mark.parametrize("label", [1, 0])
def test_backward_numbers_are_the_models(binary, label):
    r = explain(binary, TEXT, "Paris", label)
    ref = reference(binary, TEXT, 2, label, "bce")
    bw, g = r["backward"], ref["grads"]
    # step 1: δs = p - y for cross-entropy
    assert bw["delta_s"] == pytest.approx(float(ref["delta_s"]), rel=1e-12)
    assert bw["delta_s"] == pytest.approx(r["forward"]["p"] - label)
    assert bw["J"] == pytest.approx(ref["J"])
    # step 2: ∂J/∂h = u δs, ∂J/∂u = δs h, ∂J/∂c = δs
    u = binary.params.u
    assert bw["dJ_dh"]["norm"] == pytest.approx(np.linalg.norm(u * ref["delta_s"]))
    assert bw["du"]["norm"] == pytest.approx(np.linalg.norm(g.du))
    assert bw["dc"] == pytest.approx(float(g.dc))
    # step 3: δ = ∂J/∂h ∘ f'(z), f' = 1 - h² for tanh
    assert bw["f_prime"]["first"] == pytest.approx((1 - ref["h"] ** 2)[:5].tolist())
    assert bw["delta"]["norm"] == pytest.approx(np.linalg.norm(u * ref["delta_s"] * (1 - ref["h"] ** 2)))
    # step 4: ∂J/∂W = δxᵀ, ∂J/∂b = δ, ∂J/∂x = Wᵀδ
    assert bw["dW"]["norm"] == pytest.approx(np.linalg.norm(g.dW))
    assert bw["db"]["norm"] == pytest.approx(np.linalg.norm(g.db))
    assert bw["db"]["first"] == pytest.approx(g.db[:5].tolist())
    assert bw["dJ_dx"]["norm"] == pytest.approx(np.linalg.norm(binary.params.W.T @ g.db))


def test_dJ_dx_per_word_sums_to_backwards_rows_of_E_and_C(binary):
    """Step 5 in reverse: explain keeps ∂J/∂x per position; backward() adds the slices into rows."""
    text = "the museums in the museums"  # "the" and "museums" twice in one window
    r = explain(binary, text, "in")
    ref = reference(binary, text, 2, 1, "bce")
    d, d_c = binary.params.d, binary.params.d_c
    dx = (binary.params.W.T @ ref["grads"].db).reshape(5, d + d_c)
    for j, w in enumerate(r["window"]):
        assert w["dJ_de_norm"] == pytest.approx(np.linalg.norm(dx[j, :d]))
        assert w["dJ_dc_norm"] == pytest.approx(np.linalg.norm(dx[j, d:]))
    rows = dict(zip(ref["grads"].dE_rows.tolist(), ref["grads"].dE_values))
    the = [j for j, w in enumerate(r["window"]) if w["token"] == "the"]
    assert len(the) == 2
    np.testing.assert_allclose(dx[the, :d].sum(axis=0), rows[binary.vocab.lookup("the")], rtol=1e-10)


def test_dJ_dx_per_word_matches_centred_differences(binary):
    """The slices are in the right order: perturb x and watch J."""
    r = explain(binary, TEXT, "Paris", 1)
    ref = reference(binary, TEXT, 2, 1, "bce")
    p = binary.params

    def J(x):
        s, _ = forward(p, x[None, :], binary.activation)
        return loss_and_delta_s(s, np.array([1]), "bce")[0]

    num = numerical_grad(J, ref["X"][0].copy()).reshape(5, p.d + p.d_c)
    for j, w in enumerate(r["window"]):
        assert w["dJ_de_norm"] == pytest.approx(np.linalg.norm(num[j, :p.d]), rel=1e-6)
        assert w["dJ_dc_norm"] == pytest.approx(np.linalg.norm(num[j, p.d:]), rel=1e-6)


# --- saliency ---------------------------------------------------------------------------


def test_saliency_gradient_is_ds_dx_and_chain_rule_holds(binary):
    r = explain(binary, TEXT, "Paris", 1)
    ref = reference(binary, TEXT, 2, 1, "bce")
    p = binary.params
    num = numerical_grad(lambda x: forward(p, x[None, :], binary.activation)[0][0], ref["X"][0].copy())
    num = num.reshape(5, p.d + p.d_c)
    for j, w in enumerate(r["window"]):
        assert w["ds_dx_norm"] == pytest.approx(np.linalg.norm(num[j]), rel=1e-6)
        # ∂J/∂x = δs ∂s/∂x: one scalar scales the whole saliency
        assert w["dJ_dx_norm"] == pytest.approx(abs(ref["delta_s"]) * w["ds_dx_norm"])
    neighbours = [w for w in r["window"] if w["offset"] != 0]
    assert r["saliency"]["top_gradient"] == max(neighbours, key=lambda w: w["ds_dx_norm"])["slot"]


def test_unk_replacement_is_the_prediction_with_an_unknown_word(binary):
    """Replacing "in" by a word the vocabulary lacks (same casing class) gives the reported p."""
    r = explain(binary, TEXT, "Paris")
    ref = reference(binary, "museums qqqq Paris are amazing", 2, 1, "bce")
    assert ref["ids"][0, 1] == UNK_ID
    w_in = r["window"][1]
    assert w_in["p_unk"] == pytest.approx(float(ref["p"]), rel=1e-12)
    assert w_in["p_change"] == pytest.approx(float(ref["p"]) - r["forward"]["p"])
    assert r["saliency"]["top_unk"] == max(r["window"][:2] + r["window"][3:], key=lambda w: abs(w["p_change"]))["slot"]


# --- multiclass ---------------------------------------------------------------------------


def test_multiclass_p_per_class_and_delta_s_is_p_minus_one_hot(multiclass):
    r = explain(multiclass, TEXT, "Paris")  # default label 1 = the first entity class
    ref = reference(multiclass, TEXT, 2, 1, "ce")
    assert r["backward"]["label"] == 1 and r["backward"]["label_name"] == "LOC"
    assert r["forward"]["p"] == pytest.approx(ref["p"].tolist(), rel=1e-12)
    assert sum(r["forward"]["p"]) == pytest.approx(1.0)
    assert r["backward"]["y"] == [0, 1, 0, 0, 0]
    assert r["backward"]["delta_s"] == pytest.approx((ref["p"] - np.eye(5)[1]).tolist())
    assert r["backward"]["dW"]["norm"] == pytest.approx(np.linalg.norm(ref["grads"].dW))
    assert r["backward"]["dJ_dh"]["norm"] == pytest.approx(np.linalg.norm(multiclass.params.u.T @ ref["delta_s"]))
    assert r["forward"]["prediction"] == CLASSES[int(np.argmax(ref["p"]))]


def test_multiclass_label_by_name_equals_label_by_index(multiclass):
    by_name = explain(multiclass, TEXT, "Paris", "PER")
    assert by_name == explain(multiclass, TEXT, "Paris", 4) == explain(multiclass, TEXT, "Paris", "4")
    assert by_name["backward"]["label_name"] == "PER"
    # the saliency is about the label's class: p[4]
    assert by_name["saliency"]["p"] == pytest.approx(by_name["forward"]["p"][4])


@pytest.mark.parametrize("label", [5, -1, "CITY"])
def test_a_label_the_model_does_not_have_is_a_data_error(multiclass, label):
    with pytest.raises(DataError, match=r"--label .*0 \(O\), 1 \(LOC\)"):
        explain(multiclass, TEXT, "Paris", label)


def test_binary_label_must_be_0_or_1(binary):
    with pytest.raises(DataError, match="0 \\(O\\), 1 \\(LOC\\)"):
        explain(binary, TEXT, "Paris", 2)


@pytest.mark.parametrize("activation,loss", [("sigmoid", "squared"), ("relu", "bce")])
def test_other_activations_and_losses_without_casing(tmp_path, activation, loss):
    model = make_model(tmp_path, activation=activation, loss=loss, casing=False, radius=1)
    r = explain(model, TEXT, "Paris", 1)
    ref = reference(model, TEXT, 2, 1, loss)
    assert r["backward"]["delta_s"] == pytest.approx(float(ref["delta_s"]))
    assert r["backward"]["dW"]["norm"] == pytest.approx(np.linalg.norm(ref["grads"].dW))
    assert r["window"][0]["c_norm"] is None and len(r["window"]) == 3
    text = format_text(r)
    assert {"sigmoid": "h(1 - h)", "relu": "[h > 0]"}[activation] in text
    assert "‖∂J/∂c‖" not in text


# --- the word -------------------------------------------------------------------------------


def test_word_not_in_the_text_names_it_and_lists_the_tokens(binary):
    with pytest.raises(DataError) as err:
        explain(binary, TEXT, "Berlin")
    msg = str(err.value)
    assert "'Berlin'" in msg and "'museums', 'in', 'Paris', 'are', 'amazing'" in msg and "\n" not in msg


def test_empty_text_is_a_data_error(binary):
    with pytest.raises(DataError, match="no tokens"):
        explain(binary, "   ", "Paris")


def test_repeated_word_explains_the_first_and_says_so(binary):
    r = explain(binary, "Paris visited Paris", "Paris")
    assert r["token_index"] == 0 and r["occurrences"] == [0, 2]
    assert any("2 times" in n and "first" in n for n in r["notes"])
    assert "occurs 2 times" in format_text(r)


def test_exact_case_wins_then_any_case(binary):
    assert explain(binary, "paris visited Paris", "Paris")["token_index"] == 2
    r = explain(binary, "museums in PARIS", "paris")
    assert r["token_index"] == 2 and r["token"] == "PARIS"
    assert any("ignoring case" in n for n in r["notes"])


def test_words_are_matched_as_tokens(binary):
    r = explain(binary, "museums in Paris, amazing", "Paris")  # the comma is its own token
    assert r["token"] == "Paris" and r["window"][3]["token"] == ","


# --- the printout ------------------------------------------------------------------------------


def _number_after(pattern, text):
    m = re.search(pattern + r"\s*(-?[0-9.]+(?:e[-+]?\d+)?)", text)
    assert m, f"{pattern!r} not found in\n{text}"
    return float(m.group(1))


def test_printed_numbers_are_the_models(binary):
    text = format_text(explain(binary, TEXT, "Paris", 1))
    ref = reference(binary, TEXT, 2, 1, "bce")
    assert _number_after(r"s = uᵀh \+ c\s+s =", text) == pytest.approx(float(ref["s"]), rel=1e-3)
    assert _number_after(r"p = σ\(s\)\s+p =", text) == pytest.approx(float(ref["p"]), rel=1e-5)
    assert _number_after(r"J =", text) == pytest.approx(ref["J"], rel=1e-3)
    assert _number_after(r"δs = ∂J/∂s = p - y =", text) == pytest.approx(float(ref["delta_s"]), rel=1e-3)
    assert _number_after(r"∂J/∂W = δ xᵀ\s+\(7, \d+\)\s+‖·‖", text) == pytest.approx(np.linalg.norm(ref["grads"].dW), rel=1e-3)
    assert _number_after(r"∂J/∂b = δ\s+\(7,\)\s+‖·‖", text) == pytest.approx(np.linalg.norm(ref["grads"].db), rel=1e-3)
    # the nodes, in the lecture's order, each as upstream × local = downstream
    order = [text.index(s) for s in ("node s = uᵀh + c", "node h = f(z)", "node z = W x + b", "Saliency")]
    assert order == sorted(order)
    assert text.count("upstream") == 3 and text.count("downstream") == 3
    assert "∂s/∂h = u" in text and "f'(z) = 1 - h²" in text and "∂J/∂x = Wᵀδ" in text
    # vectors are summarised, not dumped: no line carries more than a handful of numbers
    assert max(len(re.findall(r"-?\d+\.\d+", line)) for line in text.splitlines()) <= 12


def test_multiclass_printout_has_a_row_per_class(multiclass):
    r = explain(multiclass, TEXT, "Paris", "ORG")
    text = format_text(r)
    for k, name in enumerate(CLASSES):
        row = re.search(rf"^\s+{k}\s+{name}\s+(\S+)\s+(\S+)\s+(\d)\s+(\S+)", text, re.M)
        assert row, name
        assert float(row.group(2)) == pytest.approx(r["forward"]["p"][k], rel=1e-5)
        assert int(row.group(3)) == (name == "ORG")
        assert float(row.group(4)) == pytest.approx(r["backward"]["delta_s"][k], rel=1e-3)
    assert "∂J/∂h = Uᵀδs" in text and "<- label" in text


# --- the command line ----------------------------------------------------------------------------


def test_cli_json_is_the_same_data(binary):
    out = CliRunner().invoke(cli, ["explain", TEXT, "--word", "Paris", "--model", str(binary.path), "--format", "json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output) == json.loads(json.dumps(explain(binary, TEXT, "Paris", 1)))


def test_cli_text_and_label_by_name(multiclass):
    out = CliRunner().invoke(cli, ["explain", TEXT, "--word", "Paris", "--model", str(multiclass.path), "--label", "PER"])
    assert out.exit_code == 0, out.output
    assert out.output.rstrip("\n") == format_text(explain(multiclass, TEXT, "Paris", "PER"))


def test_cli_missing_word_is_one_line_exit_2(binary):
    out = CliRunner().invoke(cli, ["explain", TEXT, "--word", "Rome", "--model", str(binary.path)])
    assert out.exit_code == 2
    assert "Traceback" not in out.output
    assert "'Rome'" in out.output and "'amazing'" in out.output


def test_a_token_index_picks_the_same_window_as_the_word(binary):
    by_word = explain(binary, TEXT, "Paris")
    by_index = explain(binary, TEXT, index=2)
    assert by_index["token_index"] == 2 and by_index["token"] == "Paris"
    assert by_index["window"] == by_word["window"] and by_index["forward"] == by_word["forward"]
    # a repeated word: the index chooses which occurrence, and the note says so
    text = "Paris and Paris"
    second = explain(binary, text, index=2)
    assert second["token_index"] == 2 and second["window"] != explain(binary, text, "Paris")["window"]
    assert any("explaining token 3" in n for n in second["notes"])


@pytest.mark.parametrize("index", [-1, 5, True])
def test_a_token_index_outside_the_text_is_a_data_error(binary, index):
    with pytest.raises(DataError, match="from 0 to 4"):
        explain(binary, TEXT, index=index)
    with pytest.raises(DataError, match="not both"):
        explain(binary, TEXT, "Paris", index=2)
