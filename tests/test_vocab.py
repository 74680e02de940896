"""The vocabulary: ids, the fallback chain exact -> lowercase -> digits -> <unk>, round trips."""

import ast
import sys
from pathlib import Path

import numpy as np
import pytest

from ner_window.errors import ModelError
from ner_window.vocab import (
    BOS,
    BOS_ID,
    EOS,
    EOS_ID,
    UNK,
    UNK_ID,
    Vocab,
    build_vocab,
    count_words,
    fallback_chain,
    normalise_digits,
)

# A tiny training set, counts by hand (lowercased):
#   in 3, paris 2, the 1, museum 1, is 1, amazing 1, lives 1, he 1, 1996 1, was 1
#   plus the digit shape of 1996: 0000 1
SENTENCES = [
    ["The", "museum", "in", "Paris", "is", "amazing"],
    ["He", "lives", "in", "Paris"],
    ["in", "1996", "was"],
]


# --- worked examples ---------------------------------------------------------


def test_special_words_have_ids_0_1_2():
    vocab = build_vocab(SENTENCES)
    assert (UNK_ID, BOS_ID, EOS_ID) == (0, 1, 2)
    assert vocab.words[:3] == [UNK, BOS, EOS] == ["<unk>", "<s>", "</s>"]
    assert [vocab.lookup(w) for w in (UNK, BOS, EOS)] == [0, 1, 2]


def test_normalise_digits_turns_every_digit_into_zero():
    assert normalise_digits("1996") == "0000"
    assert normalise_digits("3:15") == "0:00"
    assert normalise_digits("F-16s") == "F-00s"
    assert normalise_digits("paris") == "paris"
    assert normalise_digits("\u0663\u0664") == "00"  # Arabic-Indic digits are digits too


def test_fallback_chain_lists_each_spelling_once():
    assert fallback_chain("Paris") == ("Paris", "paris")
    assert fallback_chain("the") == ("the",)
    assert fallback_chain("1996") == ("1996", "0000")
    assert fallback_chain("F-16") == ("F-16", "f-16", "f-00")


def test_counts_worked_example():
    counts = count_words(SENTENCES, lowercase=True)
    assert counts["in"] == 3 and counts["paris"] == 2 and counts["the"] == 1
    assert counts["0000"] == 1  # the shape of "1996"
    assert "Paris" not in counts


def test_build_vocab_orders_training_words_by_count_then_first_seen():
    vocab = build_vocab(SENTENCES, min_count=1, lowercase=True)
    assert vocab.words[3:5] == ["in", "paris"]  # counts 3, 2
    assert vocab.words[5:8] == ["the", "museum", "is"]  # count 1, in order of appearance
    assert len(vocab) == 3 + 11  # 10 distinct lowercased words + the shape "0000"


def test_min_count_drops_rare_words():
    vocab = build_vocab(SENTENCES, min_count=2)
    assert vocab.words == [UNK, BOS, EOS, "in", "paris"]


def test_extra_words_are_added_after_training_words_lowercased_without_repeats():
    vocab = build_vocab(SENTENCES, min_count=2, extra_words=["the", "London", "PARIS", "berlin"])
    assert vocab.words == [UNK, BOS, EOS, "in", "paris", "the", "london", "berlin"]


def test_lowercase_false_keeps_the_case_of_training_words():
    vocab = build_vocab(SENTENCES, lowercase=False)
    assert "Paris" in vocab and "paris" not in vocab
    assert "The" in vocab and "the" not in vocab


# --- the fallback chain --------------------------------------------------------


def test_lookup_exact_then_lowercase_then_digits_then_unk():
    vocab = build_vocab(SENTENCES)
    paris = vocab.index["paris"]
    assert vocab.lookup("paris") == paris  # exact
    assert vocab.lookup("Paris") == paris  # lowercase
    assert vocab.lookup("PARIS") == paris
    assert vocab.lookup("1996") == vocab.index["1996"]  # exact
    assert vocab.lookup("2024") == vocab.index["0000"]  # digits normalised
    assert vocab.lookup("Zzyzx") == UNK_ID  # nothing matches
    assert vocab.lookup("12") == UNK_ID  # "00" is not in the vocabulary


def test_a_hashtag_or_mention_falls_back_to_the_word_without_its_sign():
    vocab = Vocab([UNK, BOS, EOS, "tokyo", "#tokyo", "0000"])
    assert vocab.lookup("#tokyo") == 4  # its own row wins
    assert vocab.lookup("#Tokyo") == 4  # lowercase of the hashtag before the bare word
    assert vocab.lookup("@TOKYO") == 3  # no row for @tokyo: the word's
    assert vocab.lookup("#2024") == 5  # then that word's own fallbacks (digits)
    assert vocab.lookup("#") == UNK_ID and vocab.lookup("#osaka") == UNK_ID
    assert fallback_chain("#Tokyo") == ("#Tokyo", "#tokyo", "Tokyo", "tokyo")


def test_exact_match_wins_over_lowercase():
    vocab = Vocab([UNK, BOS, EOS, "US", "us"])
    assert vocab.lookup("US") == 3
    assert vocab.lookup("us") == 4
    assert vocab.lookup("Us") == 4


def test_a_rare_number_falls_back_to_its_trained_shape():
    # With min_count=2 neither year enters, but their shape "0000" (count 2) does.
    vocab = build_vocab([["in", "1996"], ["in", "1997"]], min_count=2)
    assert vocab.words == [UNK, BOS, EOS, "in", "0000"]
    assert vocab.lookup("1996") == vocab.lookup("2031") == 4


def test_encode_gives_int32_ids():
    vocab = build_vocab(SENTENCES)
    ids = vocab.encode(["The", "museum", "in", "Berlin"])
    assert ids.dtype == np.int32 and ids.shape == (4,)
    assert ids.tolist() == [vocab.index["the"], vocab.index["museum"], vocab.index["in"], UNK_ID]
    assert vocab.encode([]).shape == (0,)
    assert vocab.encode(iter(["in"])).tolist() == [vocab.index["in"]]


# --- saving and loading --------------------------------------------------------


def test_to_list_from_list_round_trip():
    vocab = build_vocab(SENTENCES, extra_words=["london"])
    again = Vocab.from_list(vocab.to_list())
    assert again == vocab
    assert again.lookup("London") == vocab.lookup("London") == vocab.index["london"]


@pytest.mark.parametrize(
    "words",
    [
        ["paris", UNK, BOS, EOS],  # specials not first
        [UNK, BOS, EOS, "paris", "paris"],  # a repeated word
        [UNK, BOS, EOS, 3],  # not a string
        "<unk> <s> </s>",  # not a list
    ],
)
def test_from_list_rejects_a_damaged_list(words):
    with pytest.raises(ModelError, match="saved vocabulary"):
        Vocab.from_list(words)


def test_vocab_imports_only_numpy_and_the_standard_library():
    # vocab.py runs on the predict path: no gensim, pandas, sklearn ...
    source = Path(sys.modules[Vocab.__module__].__file__).read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module)
    outside = {
        name for name in imported
        if name.split(".")[0] not in sys.stdlib_module_names and name not in ("numpy", "ner_window.errors")
    }
    assert outside == set()
