"""`ner-window explain`: the printed forward and backward pass are the model's numbers.

Small hand-made models (random parameters, float64, a dozen words) keep this fast
and exact.  The expected values do not come from the code under test: the forward
pass is written out here in numpy (x by concatenating rows of E and C, z = W x + b,
h = f(z), s = uᵀh + c, p = σ(s) or softmax(s)), and every gradient explain reports
is checked against centred differences of that hand-written J.
"""

import json
import re

import numpy as np
import pytest
from click.testing import CliRunner

from ner_window import explain as explain_module
from ner_window import model as model_module
from ner_window.artifact import load_model, save_model
from ner_window.cli import cli
from ner_window.errors import DataError
from ner_window.explain import explain, format_text
from ner_window.model import init_params
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
            # train.loss is a binary loss; a multiclass model always trains with "ce"
            "train": {"loss": loss if task == "binary" else "bce", "pos_weight": 1.0},
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


# --- the reference, by hand ------------------------------------------------------------

F = {"tanh": np.tanh, "sigmoid": lambda z: 1 / (1 + np.exp(-z)), "relu": lambda z: np.maximum(z, 0.0)}


def hand_loss(s, label, loss):
    """ℓ(s, y) for one window, from the lecture's formulas."""
    if loss == "ce":
        return np.log(np.exp(s).sum()) - s[label]
    p = 1 / (1 + np.exp(-s))
    return -label * np.log(p) - (1 - label) * np.log(1 - p) if loss == "bce" else (p - label) ** 2


class Hand:
    """One window of ``model``, by hand: every intermediate, and J as a function of any of them."""

    def __init__(self, model, text, index, label, loss):
        tokens = text.split()
        win = make_windows([tokens], model.vocab, model.radius)
        self.ids, self.casing = win.ids[index:index + 1], win.casing[index:index + 1]
        self.p = {k: np.array(getattr(model.params, k), dtype=float) for k in ("E", "W", "b", "u")}
        self.p["C"] = model.params.C
        self.p["c"] = np.array(model.params.c, dtype=float)
        self.f, self.label, self.loss = F[model.activation], label, loss
        self.x = self.x_of(self.p["E"])
        self.z = self.p["W"] @ self.x + self.p["b"]
        self.h = self.f(self.z)
        self.s = self.s_of(self.h)
        e = np.exp(self.s - np.max(self.s))
        self.prob = e / e.sum() if np.ndim(self.s) else 1 / (1 + np.exp(-self.s))
        self.J = hand_loss(self.s, label, loss)

    def x_of(self, E):
        rows = [E[i] if self.p["C"] is None else np.concatenate([E[i], self.p["C"][c]])
                for i, c in zip(self.ids[0], self.casing[0])]
        return np.concatenate(rows)

    def s_of(self, h, u=None, c=None):
        u, c = self.p["u"] if u is None else u, self.p["c"] if c is None else c
        return u @ h + c

    def J_of(self, name, value):
        """J with one node or parameter replaced by ``value`` (the rest as in the model)."""
        if name == "s":
            return hand_loss(value, self.label, self.loss)
        if name in ("h", "u", "c"):
            h = value if name == "h" else self.h
            return hand_loss(self.s_of(h, **({name: value} if name != "h" else {})), self.label, self.loss)
        if name in ("z", "W", "b", "x", "E"):
            x = self.x_of(value) if name == "E" else (value if name == "x" else self.x)
            W, b = (value if name == "W" else self.p["W"]), (value if name == "b" else self.p["b"])
            z = value if name == "z" else W @ x + b
            return hand_loss(self.s_of(self.f(z)), self.label, self.loss)
        raise KeyError(name)

    def grad(self, name, eps=1e-6):
        """∂J/∂(name) by centred differences."""
        start = {"s": self.s, "h": self.h, "z": self.z, "x": self.x}.get(name)
        a = np.array(self.p[name] if start is None else start, dtype=float)
        g = np.zeros_like(a)
        for ix in np.ndindex(a.shape):
            old = a[ix]
            a[ix] = old + eps
            up = self.J_of(name, a)
            a[ix] = old - eps
            down = self.J_of(name, a)
            a[ix] = old
            g[ix] = (up - down) / (2 * eps)
        return g

    def ds_dx(self, k=None, eps=1e-6):
        """∂s/∂x (or ∂s_k/∂x) by centred differences."""
        g = np.zeros_like(self.x)
        for j in range(self.x.size):
            e = np.zeros_like(self.x)
            e[j] = eps
            up, down = (self.s_of(self.f(self.p["W"] @ (self.x + t) + self.p["b"])) for t in (e, -e))
            g[j] = ((up - down) if k is None else (up[k] - down[k])) / (2 * eps)
        return g


def norm(a):
    return float(np.linalg.norm(a))


def test_the_printouts_formula_tables_name_the_models_functions():
    assert set(explain_module.ACTIVATION_FORMULA) == set(explain_module.DERIVATIVE_FORMULA) == \
        set(model_module.ACTIVATIONS)
    from ner_window.sentence import LOSS

    assert set(explain_module.DELTA_S_FORMULA) == set(model_module.COSTS) | {LOSS}  # + the sentence-level loss


# --- the forward pass ----------------------------------------------------------------


def test_forward_numbers_are_the_models(binary):
    r = explain(binary, TEXT, "Paris")
    ref = Hand(binary, TEXT, 2, 1, "bce")
    assert r["token"] == "Paris" and r["token_index"] == 2
    assert r["forward"]["s"] == pytest.approx(float(ref.s), rel=1e-12)
    assert r["forward"]["p"] == pytest.approx(float(ref.prob), rel=1e-12)
    assert r["forward"]["x"]["norm"] == pytest.approx(norm(ref.x))
    assert r["forward"]["z"]["norm"] == pytest.approx(norm(ref.z))
    assert r["forward"]["h"]["norm"] == pytest.approx(norm(ref.h))
    assert r["forward"]["h"]["first"] == pytest.approx(ref.h[:5].tolist())
    assert np.tanh(r["forward"]["z"]["max"]) == pytest.approx(r["forward"]["h"]["max"])
    # the window: words, the vocabulary rows they map to, and their vector norms
    assert [w["token"] for w in r["window"]] == ["museums", "in", "Paris", "are", "amazing"]
    assert [w["token_index"] for w in r["window"]] == [0, 1, 2, 3, 4]
    assert r["window"][2]["vocab_word"] == "paris" and r["window"][2]["casing"] == "title"
    E, C = binary.params.E, binary.params.C
    for w, i, c in zip(r["window"], ref.ids[0], ref.casing[0]):
        assert w["id"] == i
        assert w["e_norm"] == pytest.approx(norm(E[i]))
        assert w["c_norm"] == pytest.approx(norm(C[c]))
    assert r["forward"]["prediction"] == ("LOC" if ref.prob >= 0.4 else "O")


def test_window_at_the_sentence_edge_shows_the_padding(binary):
    r = explain(binary, TEXT, "museums")
    assert [w["token"] for w in r["window"][:2]] == ["<s>", "<s>"]
    assert [w["in_sentence"] for w in r["window"]] == [False, False, True, True, True]
    assert r["window"][0]["p_unk"] is None and r["window"][0]["casing"] == "pad"


# --- the backward pass -----------------------------------------------------------------


@pytest.mark.parametrize("label", [1, 0])
def test_backward_numbers_are_the_models(binary, label):
    r = explain(binary, TEXT, "Paris", label)
    ref = Hand(binary, TEXT, 2, label, "bce")
    bw = r["backward"]
    # step 1: δs = ∂J/∂s, which for cross-entropy is p - y
    assert bw["J"] == pytest.approx(float(ref.J), rel=1e-12)
    assert bw["delta_s"] == pytest.approx(float(ref.grad("s")), rel=1e-7)
    assert bw["delta_s"] == pytest.approx(float(ref.prob) - label, rel=1e-12)
    # step 2: ∂J/∂h, ∂J/∂u, ∂J/∂c
    assert bw["dJ_dh"]["norm"] == pytest.approx(norm(ref.grad("h")), rel=1e-7)
    assert bw["du"]["norm"] == pytest.approx(norm(ref.grad("u")), rel=1e-7)
    assert bw["dc"] == pytest.approx(float(ref.grad("c")), rel=1e-7)
    # step 3: f'(z) = 1 - h² for tanh, and δ = ∂J/∂z
    assert bw["f_prime"]["first"] == pytest.approx((1 - ref.h ** 2)[:5].tolist())
    assert bw["delta"]["norm"] == pytest.approx(norm(ref.grad("z")), rel=1e-7)
    assert bw["delta"]["first"] == pytest.approx(ref.grad("z")[:5].tolist(), rel=1e-6, abs=1e-9)
    # step 4: ∂J/∂W, ∂J/∂b, ∂J/∂x
    assert bw["dW"]["norm"] == pytest.approx(norm(ref.grad("W")), rel=1e-7)
    assert bw["db"]["norm"] == pytest.approx(norm(ref.grad("b")), rel=1e-7)
    assert bw["db"]["first"] == pytest.approx(ref.grad("b")[:5].tolist(), rel=1e-6, abs=1e-9)
    assert bw["dJ_dx"]["norm"] == pytest.approx(norm(ref.grad("x")), rel=1e-7)


def test_dJ_dx_per_word_sums_to_the_gradient_of_each_row_of_E(binary):
    """Step 5 in reverse: explain keeps ∂J/∂x per position; a word used twice gets both slices."""
    text = "the museums in the museums"  # "the" and "museums" twice in one window
    r = explain(binary, text, "in")
    ref = Hand(binary, text, 2, 1, "bce")
    d, d_c = binary.params.d, binary.params.d_c
    dx = ref.grad("x").reshape(5, d + d_c)
    for j, w in enumerate(r["window"]):
        assert w["dJ_de_norm"] == pytest.approx(norm(dx[j, :d]), rel=1e-6)
        assert w["dJ_dc_norm"] == pytest.approx(norm(dx[j, d:]), rel=1e-6)
    dE = ref.grad("E")  # ∂J/∂E by perturbing the rows of E themselves
    for word in ("the", "museums"):
        slots = [j for j, w in enumerate(r["window"]) if w["token"] == word]
        assert len(slots) == 2
        np.testing.assert_allclose(dx[slots, :d].sum(axis=0), dE[binary.vocab.lookup(word)], rtol=1e-5, atol=1e-9)


# --- saliency ---------------------------------------------------------------------------


def test_saliency_gradient_is_ds_dx_and_chain_rule_holds(binary):
    r = explain(binary, TEXT, "Paris", 1)
    ref = Hand(binary, TEXT, 2, 1, "bce")
    p = binary.params
    num = ref.ds_dx().reshape(5, p.d + p.d_c)
    delta_s = float(ref.grad("s"))
    for j, w in enumerate(r["window"]):
        assert w["ds_dx_norm"] == pytest.approx(norm(num[j]), rel=1e-6)
        # ∂J/∂x = δs ∂s/∂x: one scalar scales the whole saliency
        assert w["dJ_dx_norm"] == pytest.approx(abs(delta_s) * w["ds_dx_norm"], rel=1e-6)
    neighbours = [w for w in r["window"] if w["offset"] != 0]
    assert r["saliency"]["top_gradient"] == max(neighbours, key=lambda w: w["ds_dx_norm"])["slot"]


def test_the_saliency_summary_says_which_words_it_ranks(binary):
    """The summary ranks the neighbours only, says so, and shows the centre word's own gradient:
    it never names a neighbour as the largest gradient without the larger centre value beside it."""
    r = explain(binary, TEXT, "Paris", 1)
    by_slot = {w["slot"]: w for w in r["window"]}
    text = format_text(r)
    summary = text.splitlines()[-1]
    assert "among the neighbours of 'Paris'" in summary and "not ranked" in summary
    assert f"w0 itself: ‖∂s/∂x‖ = {by_slot['w0']['ds_dx_norm']:.4g}" in summary
    top = by_slot[r["saliency"]["top_gradient"]]
    assert f"largest gradient {top['token']!r} ({top['slot']})" in summary
    assert "neighbours" in r["saliency"]["ranks"]


def test_unk_replacement_is_the_prediction_with_an_unknown_word(binary):
    """Replacing "in" by a word the vocabulary lacks (same casing class) gives the reported p."""
    r = explain(binary, TEXT, "Paris")
    ref = Hand(binary, "museums qqqq Paris are amazing", 2, 1, "bce")
    assert ref.ids[0, 1] == UNK_ID
    w_in = r["window"][1]
    assert w_in["p_unk"] == pytest.approx(float(ref.prob), rel=1e-12)
    assert w_in["p_change"] == pytest.approx(float(ref.prob) - r["forward"]["p"])
    assert r["saliency"]["top_unk"] == max(r["window"][:2] + r["window"][3:], key=lambda w: abs(w["p_change"]))["slot"]


# --- multiclass ---------------------------------------------------------------------------


def test_multiclass_p_per_class_and_delta_s_is_p_minus_one_hot(multiclass):
    r = explain(multiclass, TEXT, "Paris")  # default label 1 = the first entity class
    ref = Hand(multiclass, TEXT, 2, 1, "ce")
    assert r["backward"]["label"] == 1 and r["backward"]["label_name"] == "LOC"
    assert r["forward"]["p"] == pytest.approx(ref.prob.tolist(), rel=1e-12)
    assert sum(r["forward"]["p"]) == pytest.approx(1.0)
    assert r["backward"]["y"] == [0, 1, 0, 0, 0]
    assert r["backward"]["delta_s"] == pytest.approx((ref.prob - np.eye(5)[1]).tolist())
    assert r["backward"]["delta_s"] == pytest.approx(ref.grad("s").tolist(), rel=1e-6, abs=1e-9)
    assert r["backward"]["dW"]["norm"] == pytest.approx(norm(ref.grad("W")), rel=1e-7)
    assert r["backward"]["dJ_dh"]["norm"] == pytest.approx(norm(ref.grad("h")), rel=1e-7)
    assert r["forward"]["prediction"] == CLASSES[int(np.argmax(ref.prob))]
    # the saliency of class k = 1: ∂s_1/∂x
    p = multiclass.params
    num = ref.ds_dx(k=1).reshape(5, p.d + p.d_c)
    assert [w["ds_dx_norm"] for w in r["window"]] == pytest.approx([norm(row) for row in num], rel=1e-6)


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
    ref = Hand(model, TEXT, 2, 1, loss)
    assert r["backward"]["J"] == pytest.approx(float(ref.J), rel=1e-12)
    assert r["backward"]["delta_s"] == pytest.approx(float(ref.grad("s")), rel=1e-6)
    assert r["backward"]["dW"]["norm"] == pytest.approx(norm(ref.grad("W")), rel=1e-6)
    assert r["backward"]["dJ_dx"]["norm"] == pytest.approx(norm(ref.grad("x")), rel=1e-6)
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
    assert "occurs 2 times (tokens 0, 2); explaining the first" in format_text(r)  # numbered from 0, as the JSON


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
    ref = Hand(binary, TEXT, 2, 1, "bce")
    assert _number_after(r"s = uᵀh \+ c\s+s =", text) == pytest.approx(float(ref.s), rel=1e-3)
    assert _number_after(r"p = σ\(s\)\s+p =", text) == pytest.approx(float(ref.prob), rel=1e-5)
    assert _number_after(r"J =", text) == pytest.approx(float(ref.J), rel=1e-3)
    assert _number_after(r"δs = ∂J/∂s = p - y =", text) == pytest.approx(float(ref.grad("s")), rel=1e-3)
    assert _number_after(r"∂J/∂W = δ xᵀ\s+\(7, \d+\)\s+‖·‖", text) == pytest.approx(norm(ref.grad("W")), rel=1e-3)
    assert _number_after(r"∂J/∂b = δ\s+\(7,\)\s+‖·‖", text) == pytest.approx(norm(ref.grad("b")), rel=1e-3)
    assert text.splitlines()[0].startswith("Explaining 'Paris' (token 2 of tokens 0-4)")
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
    assert any("(tokens 0, 2); explaining token 2" in n for n in second["notes"])  # the index given, from 0


@pytest.mark.parametrize("index", [-1, 5, True])
def test_a_token_index_outside_the_text_is_a_data_error(binary, index):
    with pytest.raises(DataError, match="from 0 to 4"):
        explain(binary, TEXT, index=index)
    with pytest.raises(DataError, match="not both"):
        explain(binary, TEXT, "Paris", index=2)


def test_cli_index_explains_the_token_counted_from_0(binary):
    out = CliRunner().invoke(cli, ["explain", TEXT, "--index", "2", "--model", str(binary.path), "--format", "json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output) == json.loads(json.dumps(explain(binary, TEXT, index=2)))
    both = CliRunner().invoke(cli, ["explain", TEXT, "--index", "2", "--word", "Paris", "--model", str(binary.path)])
    assert both.exit_code == 2 and "not both" in both.output and "Traceback" not in both.output
    out = CliRunner().invoke(cli, ["explain", TEXT, "--index", "9", "--model", str(binary.path)])
    assert out.exit_code == 2 and "from 0 to 4" in out.output
