"""metrics: token-level and entity-level LOC scores, threshold tuning, conlleval output.

Small hand-checkable examples first, then the vectorised threshold search
against a brute-force re-decoding, then the conlleval file checked by an
independent port of conlleval's chunk counting.
"""

import csv
import os
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

from ner_window.metrics import (
    DEFAULT_GRID, PR_COLUMNS, best_threshold, conlleval_table, entity_prf, error_listing,
    evaluate_location, format_conlleval, format_error_listing, format_location_report, pr_curve,
    predicted_spans, predicted_spans_per_sentence, prf, sentence_offsets, spans_of_type,
    spans_to_iob2, token_prf, write_conlleval, write_pr_curve,
)


# ------------------------------------------------------------ worked examples

def test_entity_prf_worked_example():
    # gold: two locations; predicted: the first exactly, the second one token too
    # long on the left.  1 of 2 predictions right, 1 of 2 gold found.
    scores = entity_prf([[(0, 2), (5, 6)]], [[(0, 2), (4, 6)]])
    assert scores == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}


def test_prf_from_counts_and_zero_division():
    assert prf(3, 4, 6) == {"precision": 0.75, "recall": 0.5, "f1": 0.6, "support": 6}
    assert prf(0, 0, 0) == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert prf(0, 5, 0)["f1"] == 0.0 and prf(0, 0, 5)["precision"] == 0.0


def test_entity_prf_counts_spans_per_sentence():
    # the same (0, 1) in two sentences is two different entities
    gold = [[(0, 1)], [(0, 1), (2, 4)], []]
    pred = [[(0, 1)], [(2, 3)], [(1, 2)]]
    assert entity_prf(gold, pred) == prf(1, 3, 3)
    with pytest.raises(ValueError):
        entity_prf(gold, pred[:2])


def test_predicted_spans_are_runs():
    assert predicted_spans([0, 1, 1, 0, 1]) == [(1, 3), (4, 5)]
    assert predicted_spans([True, True, True]) == [(0, 3)]
    assert predicted_spans([]) == [] and predicted_spans([0, 0]) == []


def test_runs_never_cross_a_sentence_boundary():
    #               sentence 0 | sentence 1 | (2 empty) | sentence 3
    pred = np.array([0, 1, 1,     1, 1,                    1])
    sentence = np.array([0, 0, 0, 1, 1, 3])
    assert sentence_offsets(sentence).tolist() == [0, 3, 5, 5, 6]
    assert predicted_spans_per_sentence(pred, sentence) == [[(1, 3)], [(0, 2)], [], [(0, 1)]]
    with pytest.raises(ValueError):
        sentence_offsets([1, 0])


def test_token_prf_by_hand_and_without_warnings():
    y = [1, 1, 0, 0, 1]
    pred = [1, 0, 1, 0, 1]      # tp = 2, fp = 1, fn = 1
    assert token_prf(y, pred) == pytest.approx({"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3, "support": 3})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert token_prf([0, 0, 0], [0, 0, 0]) == prf(0, 0, 0)
        assert token_prf([1, 1], [0, 0]) == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}
        assert token_prf([0, 0], [1, 0]) == prf(0, 1, 0)
        assert token_prf([], []) == prf(0, 0, 0)


def test_lecture_sentence_token_and_entity_scores_differ():
    # "museums in New York are amazing": the model finds "New" but not "York".
    # Token level gives half credit, entity level none.
    p = [0.1, 0.2, 0.9, 0.4, 0.1, 0.0]
    y = [0, 0, 1, 1, 0, 0]
    report = evaluate_location(p, y, [0] * 6, gold_spans=[[(2, 4)]])
    assert report["token"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2}
    assert report["entity"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    text = format_location_report(report)
    assert "token-level" in text and "entity-level" in text and "(2 gold tokens)" in text
    # at t = 0.3 both tokens are predicted and the entity is found
    assert evaluate_location(p, y, [0] * 6, [[(2, 4)]], threshold=0.3)["entity"]["f1"] == 1.0


def test_adjacent_gold_locations_need_the_decoded_spans():
    # "B-LOC B-LOC": two one-token locations side by side.  The runs of y merge them.
    p, y, sentence = [0.9, 0.9], [1, 1], [0, 0]
    assert evaluate_location(p, y, sentence, gold_spans=[[(0, 1), (1, 2)]])["entity"]["f1"] == 0.0
    assert evaluate_location(p, y, sentence, gold_spans=None)["entity"]["f1"] == 1.0


def test_spans_of_type_keeps_one_type():
    typed = [[("LOC", 0, 2), ("PER", 3, 4)], [("ORG", 0, 1)]]
    assert spans_of_type(typed) == [[(0, 2)], []]
    assert spans_of_type(typed, "PER") == [[(3, 4)], []]


# ------------------------------------------------------------ threshold tuning

def test_best_threshold_small_example():
    # sentence 0: gold (1, 3);  sentence 1: gold (0, 1)
    p = [0.2, 0.8, 0.6, 0.1, 0.7, 0.4]
    sentence = [0, 0, 0, 0, 1, 1]
    gold = [[(1, 3)], [(0, 1)]]
    y = [0, 1, 1, 0, 1, 0]
    # t in (0.4, 0.6] predicts exactly {(1,3)} and {(0,1)}: F1 = 1.
    t, f1 = best_threshold(p, y, gold, sentence)
    assert f1 == 1.0 and 0.4 < t <= 0.6
    assert abs(t - 0.5) <= 0.0025   # ties go to the threshold nearest 0.5
    t, f1 = best_threshold(p, y, gold, sentence, grid="exact")
    assert f1 == 1.0 and t == 0.6


def runs(flags):
    """Independent brute-force span decoding: a plain loop."""
    spans, start = [], None
    for i, on in enumerate(list(flags) + [False]):
        if on and start is None:
            start = i
        if not on and start is not None:
            spans.append((start, i))
            start = None
    return spans


def brute_force_curve(p, y, gold, lengths, grid):
    """Re-decode every sentence at every threshold and count by hand."""
    rows = []
    for t in grid:
        correct = predicted = 0
        position = 0
        for spans, n in zip(gold, lengths):
            pred = set(runs([q >= t for q in p[position:position + n]]))
            correct += len(pred & set(spans))
            predicted += len(pred)
            position += n
        n_gold = sum(len(s) for s in gold)
        tp = sum(1 for q, label in zip(p, y) if q >= t and label == 1)
        n_pred_tokens = sum(1 for q in p if q >= t)
        rows.append((prf(tp, n_pred_tokens, sum(y)), prf(correct, predicted, n_gold)))
    return rows


def random_data(rng, n_sentences, quantise):
    lengths = rng.integers(0, 9, size=n_sentences)
    gold = []
    for n in lengths:
        spans, i = [], 0
        while i < n:                      # non-overlapping spans, sometimes adjacent
            if rng.random() < 0.35:
                j = min(n, i + int(rng.integers(1, 4)))
                spans.append((i, j))
                i = j
            else:
                i += 1
        gold.append(spans)
    y = np.concatenate([np.isin(np.arange(n), [k for a, b in s for k in range(a, b)]).astype(int)
                        for s, n in zip(gold, lengths)] + [np.zeros(0, int)])
    p = rng.random(int(lengths.sum()))
    p = np.clip(p * 0.7 + 0.3 * y, 0, 1)
    if quantise:                           # ties: equal neighbours and p exactly on grid points
        p = np.round(p * 8) / 8
    sentence = np.repeat(np.arange(n_sentences), lengths)
    return p, y, gold, lengths, sentence


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("quantise", [False, True])
def test_vectorised_curve_matches_brute_force(seed, quantise):
    rng = np.random.default_rng(seed)
    p, y, gold, lengths, sentence = random_data(rng, 30, quantise)
    for grid in (None, "exact"):
        table = pr_curve(p, y, gold, sentence, grid=grid)
        assert list(table) == list(PR_COLUMNS)
        reference = brute_force_curve(p.tolist(), y.tolist(), gold, lengths, table["threshold"])
        for i, (token, entity) in enumerate(reference):
            assert table["entity_precision"][i] == pytest.approx(entity["precision"])
            assert table["entity_recall"][i] == pytest.approx(entity["recall"])
            assert table["entity_f1"][i] == pytest.approx(entity["f1"])
            assert table["token_f1"][i] == pytest.approx(token["f1"])
            assert table["token_precision"][i] == pytest.approx(token["precision"])
        t, f1 = best_threshold(p, y, gold, sentence, grid=grid)
        assert f1 == pytest.approx(max(entity["f1"] for _, entity in reference))
        assert brute_force_curve(p.tolist(), y.tolist(), gold, lengths, [t])[0][1]["f1"] == pytest.approx(f1)


def test_exact_grid_finds_the_best_of_all_thresholds():
    rng = np.random.default_rng(7)
    p, y, gold, lengths, sentence = random_data(rng, 40, False)
    _, f1_exact = best_threshold(p, y, gold, sentence, grid="exact")
    dense = np.linspace(0, 1, 2001)
    assert f1_exact >= max(entity["f1"] for _, entity in brute_force_curve(p.tolist(), y.tolist(), gold, lengths, dense)) - 1e-12


def test_token_columns_agree_with_sklearn():
    rng = np.random.default_rng(3)
    p, y, gold, lengths, sentence = random_data(rng, 25, False)
    table = pr_curve(p, y, gold, sentence, grid=[0.2, 0.5, 0.8])
    for i, t in enumerate([0.2, 0.5, 0.8]):
        scores = token_prf(y, p >= t)
        assert table["token_precision"][i] == pytest.approx(scores["precision"])
        assert table["token_recall"][i] == pytest.approx(scores["recall"])
        assert table["token_f1"][i] == pytest.approx(scores["f1"])
        assert table["entity_f1"][i] == pytest.approx(evaluate_location(p, y, sentence, gold, t)["entity"]["f1"])


def test_threshold_search_is_fast_on_a_large_dev_set():
    rng = np.random.default_rng(0)
    n = 200_000
    p = rng.random(n)
    sentence = np.sort(rng.integers(0, 12_000, size=n))
    offsets = sentence_offsets(sentence, 12_000)
    gold = [[(0, 1)] if b > a else [] for a, b in zip(offsets[:-1], offsets[1:])]
    y = np.zeros(n, int)
    y[offsets[:-1][offsets[:-1] < offsets[1:]]] = 1
    t0 = time.perf_counter()
    best_threshold(p, y, gold, sentence, grid="exact")
    assert time.perf_counter() - t0 < 3.0


def test_write_pr_curve_csv(tmp_path):
    p = [0.2, 0.8, 0.6, 0.1]
    table = pr_curve(p, [0, 1, 1, 0], [[(1, 3)]], [0, 0, 0, 0])
    written = write_pr_curve(table, tmp_path / "pr.csv")
    with open(tmp_path / "pr.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == PR_COLUMNS and len(rows) == 1 + len(DEFAULT_GRID)
    row_05 = next(r for r in rows[1:] if float(r[0]) == 0.5)
    assert [float(v) for v in row_05] == [0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    assert sorted(os.listdir(tmp_path)) == [os.path.basename(written)] == ["pr.csv"]   # no temp files left


# ------------------------------------------------------------ conlleval

def test_conlleval_table_by_hand():
    gold = [[("LOC", 0, 1), ("PER", 2, 4)], [("LOC", 1, 3)]]
    pred = [[("LOC", 0, 1), ("ORG", 2, 4)], [("LOC", 1, 2)]]
    table = conlleval_table(gold, pred)
    assert table["overall"] == {**prf(1, 3, 3), "predicted": 3, "correct": 1}
    assert table["per_type"]["LOC"] == {**prf(1, 2, 2), "predicted": 2, "correct": 1}
    assert table["per_type"]["ORG"] == {**prf(0, 1, 0), "predicted": 1, "correct": 0}
    assert table["per_type"]["PER"] == {**prf(0, 0, 1), "predicted": 0, "correct": 0}
    assert list(table["per_type"]) == ["LOC", "ORG", "PER"]
    text = format_conlleval(table, n_tokens=7, n_correct_tags=5)
    assert text.splitlines() == [
        "processed 7 tokens with 3 phrases; found: 3 phrases; correct: 1.",
        "accuracy:  71.43%; precision:  33.33%; recall:  33.33%; FB1:  33.33",
        "              LOC: precision:  50.00%; recall:  50.00%; FB1:  50.00  2",
        "              ORG: precision:   0.00%; recall:   0.00%; FB1:   0.00  1",
        "              PER: precision:   0.00%; recall:   0.00%; FB1:   0.00  0",
    ]
    assert format_conlleval(table).splitlines()[1].startswith("precision:  33.33%")


def test_spans_to_iob2():
    assert spans_to_iob2([(0, 2), (2, 3)], 4) == ["B-LOC", "I-LOC", "B-LOC", "O"]
    assert spans_to_iob2([("PER", 1, 2)], 2) == ["O", "B-PER"]
    assert spans_to_iob2([], 0) == []
    with pytest.raises(ValueError):
        spans_to_iob2([(0, 2), (1, 3)], 4)
    with pytest.raises(ValueError):
        spans_to_iob2([(2, 5)], 4)


def conlleval_counts(lines):
    """A line-by-line port of conlleval.pl's chunk counting (version 2004-01-26),
    independent of ner_window.  Returns (correct, found_guessed, found_correct),
    each a dict {type: count} with the overall count under "".
    """
    def end_of_chunk(prev_tag, tag, prev_type, type_):
        return ((prev_tag, tag) in {("B", "B"), ("B", "O"), ("I", "B"), ("I", "O"),
                                    ("E", "E"), ("E", "I"), ("E", "O")}
                or (prev_tag not in ("O", ".") and prev_type != type_)
                or prev_tag in ("]", "["))

    def start_of_chunk(prev_tag, tag, prev_type, type_):
        # ("O", "I"): an I- tag right after O starts a chunk -- how IOB1 files work
        return ((prev_tag, tag) in {("B", "B"), ("I", "B"), ("O", "B"), ("O", "I"),
                                    ("E", "E"), ("E", "I"), ("O", "E")}
                or (tag not in ("O", ".") and prev_type != type_)
                or tag in ("[", "]"))

    def split(field):
        tag, _, type_ = field.partition("-")
        return tag, type_

    def bump(counts, type_):
        counts[""] += 1
        counts[type_] = counts.get(type_, 0) + 1

    correct_chunk, found_guessed, found_correct = {"": 0}, {"": 0}, {"": 0}
    in_correct = False
    last_correct, last_guessed, last_correct_type, last_guessed_type = "O", "O", "", ""
    for line in lines:
        features = line.split(" ")
        if line == "" or features[0] == "-X-":
            features = ["-X-", "O", "O"]
        guessed, guessed_type = split(features[-1])
        correct, correct_type = split(features[-2])
        if features[0] == "-X-":
            guessed = "O"
        if in_correct:
            end_c = end_of_chunk(last_correct, correct, last_correct_type, correct_type)
            end_g = end_of_chunk(last_guessed, guessed, last_guessed_type, guessed_type)
            if end_c and end_g and last_guessed_type == last_correct_type:
                in_correct = False
                bump(correct_chunk, last_correct_type)
            elif end_c != end_g or guessed_type != correct_type:
                in_correct = False
        start_c = start_of_chunk(last_correct, correct, last_correct_type, correct_type)
        start_g = start_of_chunk(last_guessed, guessed, last_guessed_type, guessed_type)
        if start_c and start_g and guessed_type == correct_type:
            in_correct = True
        if start_c:
            bump(found_correct, correct_type)
        if start_g:
            bump(found_guessed, guessed_type)
        last_guessed, last_correct, last_guessed_type, last_correct_type = guessed, correct, guessed_type, correct_type
    if in_correct:
        bump(correct_chunk, last_correct_type)
    return correct_chunk, found_guessed, found_correct


def test_conlleval_port_follows_conlleval_rules():
    def chunks(tags):
        lines = [f"w {t} O" for t in tags]
        return conlleval_counts(lines)[2][""]
    assert chunks(["O", "I-LOC", "I-LOC", "O"]) == 1          # I- after O starts a chunk (IOB1)
    assert chunks(["I-LOC", "B-LOC"]) == 2
    assert chunks(["B-LOC", "I-LOC", "I-PER"]) == 2           # a type change starts a chunk
    assert chunks(["B-LOC", "O", "I-LOC"]) == 2
    correct, guessed, gold = conlleval_counts(["a B-LOC B-LOC", "b I-LOC I-LOC", "c O I-LOC"])
    assert (correct[""], guessed[""], gold[""]) == (0, 1, 1)   # the guess runs one token too long


@pytest.mark.parametrize("seed", range(5))
def test_written_conlleval_file_scores_like_entity_prf(tmp_path, seed):
    rng = np.random.default_rng(seed)
    p, y, gold, lengths, sentence = random_data(rng, 40, False)
    pred = predicted_spans_per_sentence(p >= 0.5, sentence, len(lengths))
    tokens = [[f"w{s}_{i}" for i in range(n)] for s, n in enumerate(lengths)]
    gold_tags = [spans_to_iob2(spans, n) for spans, n in zip(gold, lengths)]
    pred_tags = [spans_to_iob2(spans, n) for spans, n in zip(pred, lengths)]
    path = tmp_path / "dev.conlleval"
    write_conlleval(path, tokens, gold_tags, pred_tags)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert not any(line.startswith("-DOCSTART-") for line in lines)
    assert sum(1 for line in lines if line) == int(lengths.sum())
    correct, guessed, found = conlleval_counts(lines)
    expected = entity_prf(gold, pred)
    assert prf(correct[""], guessed[""], found[""]) == expected
    assert prf(correct.get("LOC", 0), guessed.get("LOC", 0), found.get("LOC", 0)) == expected


def test_typed_conlleval_file_scores_like_conlleval_table(tmp_path):
    rng = np.random.default_rng(11)
    types = ["LOC", "PER", "ORG", "MISC"]
    lengths, gold, pred = [], [], []
    for _ in range(40):
        n = int(rng.integers(1, 10))
        lengths.append(n)
        for spans_list in (gold, pred):
            spans, i = [], 0
            while i < n:
                if rng.random() < 0.4:
                    j = min(n, i + int(rng.integers(1, 3)))
                    spans.append((str(rng.choice(types)), i, j))
                    i = j
                else:
                    i += 1
            spans_list.append(spans)
    tokens = [["x"] * n for n in lengths]
    write_conlleval(tmp_path / "out.txt", tokens, [spans_to_iob2(s, n) for s, n in zip(gold, lengths)],
                    [spans_to_iob2(s, n) for s, n in zip(pred, lengths)])
    correct, guessed, found = conlleval_counts((tmp_path / "out.txt").read_text().splitlines())
    table = conlleval_table(gold, pred)
    assert table["overall"]["f1"] == pytest.approx(prf(correct[""], guessed[""], found[""])["f1"])
    for t, scores in table["per_type"].items():
        assert (scores["correct"], scores["predicted"], scores["support"]) == \
            (correct.get(t, 0), guessed.get(t, 0), found.get(t, 0))


def test_write_conlleval_is_atomic_and_rejects_bad_fields(tmp_path):
    path = tmp_path / "out.txt"
    write_conlleval(path, [["Paris", "is", "big"], [], ["Rome"]],
                    [["B-LOC", "O", "O"], [], ["B-LOC"]], [["B-LOC", "O", "O"], [], ["O"]])
    good = "Paris B-LOC B-LOC\nis O O\nbig O O\n\nRome B-LOC O\n\n"
    assert path.read_text() == good
    with pytest.raises(ValueError):
        write_conlleval(path, [["New York"]], [["B-LOC"]], [["B-LOC"]])
    with pytest.raises(ValueError):
        write_conlleval(path, [["a", "b"]], [["O"]], [["O", "O"]])
    assert path.read_text() == good                 # the failed writes left the old file alone
    assert os.listdir(tmp_path) == ["out.txt"]


# ------------------------------------------------------------ error analysis

def test_error_listing_worked_example():
    sentences = [["museums", "in", "Paris", "are", "amazing"], ["Jordan", "scored"]]
    p = np.array([0.7, 0.1, 0.3, 0.2, 0.1, 0.95, 0.4])
    y = np.array([0, 0, 1, 0, 0, 0, 0])
    listing = error_listing(sentences, p, y, windows_radius=2, k=10)
    fp, fn = listing["false_positives"], listing["false_negatives"]
    assert [(e["word"], e["p"]) for e in fp] == [("Jordan", 0.95), ("museums", 0.7)]
    assert fp[0] == {"sentence": 1, "position": 0, "word": "Jordan", "window": ["<s>", "<s>", "Jordan", "scored", "</s>"],
                     "p": 0.95, "y": 0}
    assert fn == [{"sentence": 0, "position": 2, "word": "Paris",
                   "window": ["museums", "in", "Paris", "are", "amazing"], "p": 0.3, "y": 1}]
    assert len(error_listing(sentences, p, y, 2, k=1)["false_positives"]) == 1
    text = format_error_listing(listing)
    assert "p=0.950  sentence 1, token 0:  <s> <s> [Jordan] scored </s>" in text
    assert "museums in [Paris] are amazing" in text
    with pytest.raises(ValueError):
        error_listing(sentences, p[:-1], y[:-1], 2)


def test_error_listing_follows_the_given_decision_not_p():
    """Multiclass: the tag is the argmax, so P(LOC) = 0.4 can be a LOC tag and 0.45 not."""
    sentences = [["museums", "in", "Paris", "are", "amazing"], ["Jordan", "scored"]]
    p = np.array([0.1, 0.1, 0.45, 0.2, 0.1, 0.4, 0.3])
    y = np.array([0, 0, 1, 0, 0, 0, 0])
    is_loc = np.array([False, False, False, False, False, True, False])
    listing = error_listing(sentences, p, y, 2, is_loc=is_loc)
    assert [e["word"] for e in listing["false_positives"]] == ["Jordan"]
    assert [e["word"] for e in listing["false_negatives"]] == ["Paris"]
    assert listing["threshold"] is None and listing["rule"] == "argmax = LOC"
    assert "tagged LOC: argmax = LOC" in format_error_listing(listing)
    # the same p read with a 0.5 threshold finds no false positive at all
    assert error_listing(sentences, p, y, 2)["false_positives"] == []
    with pytest.raises(ValueError, match="is_loc"):
        error_listing(sentences, p, y, 2, is_loc=is_loc[:-1])


def test_metrics_import_does_not_pull_in_sklearn_or_matplotlib():
    code = "import sys, ner_window.metrics; print(sorted(m for m in ('sklearn', 'matplotlib', 'pandas') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
