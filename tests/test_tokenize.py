"""tokenize: raw text -> CoNLL-2003-style tokens with character offsets.

Worked examples first (each one a rule of the Reuters tokenisation), then the
properties every tokenisation must have (offsets round-trip, nothing but
whitespace is dropped), then robustness: odd characters and a 100,000-word line.
"""

import ast
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ner_window.tokenize import Token, tokenize


def words(text: str) -> list[str]:
    return [t.text for t in tokenize(text)]


# --------------------------------------------------------------- worked examples

def test_lecture_example_gives_five_tokens_with_offsets():
    text = "museums in Paris are amazing"
    assert tokenize(text) == [Token("museums", 0, 7), Token("in", 8, 10), Token("Paris", 11, 16),
                              Token("are", 17, 20), Token("amazing", 21, 28)]


@pytest.mark.parametrize("text, expected", [
    # punctuation is split off
    ("Paris, France; Rome: Italy!", ["Paris", ",", "France", ";", "Rome", ":", "Italy", "!"]),
    ('He said "yes" (twice)?', ["He", "said", '"', "yes", '"', "(", "twice", ")", "?"]),
    # sentence-final period split, abbreviations with internal periods kept
    ("They flew to Berlin.", ["They", "flew", "to", "Berlin", "."]),
    ("the U.S. and the U.N. met, e.g. at 10 a.m. today",
     ["the", "U.S.", "and", "the", "U.N.", "met", ",", "e.g.", "at", "10", "a.m.", "today"]),
    ("talks in the U.S.", ["talks", "in", "the", "U.S."]),
    ("the U.S.-led coalition", ["the", "U.S.-led", "coalition"]),
    # titles and months keep their period
    ("Mr. Smith and Dr. Jones of Acme Inc. met at St. Paul on Jan. 5",
     ["Mr.", "Smith", "and", "Dr.", "Jones", "of", "Acme", "Inc.", "met", "at", "St.", "Paul", "on", "Jan.", "5"]),
    ("Acme Corp. and Foo Ltd. in San Jose, Calif.", ["Acme", "Corp.", "and", "Foo", "Ltd.", "in", "San", "Jose", ",", "Calif."]),
    ("MR. SMITH vs. No. 3", ["MR.", "SMITH", "vs.", "No.", "3"]),
    ("He said No. Then left.", ["He", "said", "No", ".", "Then", "left", "."]),
    # initials keep their period; a capital ending a sentence does not
    ("M. Waugh c A. Smith", ["M.", "Waugh", "c", "A.", "Smith"]),
    ("We chose plan B. it worked", ["We", "chose", "plan", "B", ".", "it", "worked"]),
    # possessive and clitics are split off, as are n't
    ("Germany's exports", ["Germany", "'s", "exports"]),
    ("the players' bus", ["the", "players", "'", "bus"]),
    ("didn't can't won't DIDN'T", ["did", "n't", "ca", "n't", "wo", "n't", "DID", "N'T"]),
    ("I'm sure they're here and we've seen she'll go, it'd rain",
     ["I", "'m", "sure", "they", "'re", "here", "and", "we", "'ve", "seen", "she", "'ll", "go", ",", "it", "'d", "rain"]),
    ("GERMANY'S Kohl", ["GERMANY", "'S", "Kohl"]),
    ("Germany\u2019s exports", ["Germany", "\u2019s", "exports"]),
    # already-tokenised text keeps its tokens
    ("Germany 's exports did n't fall", ["Germany", "'s", "exports", "did", "n't", "fall"]),
    # an apostrophe inside a name is not a clitic
    ("O'Brien and O'Neal play rock'n'roll", ["O'Brien", "and", "O'Neal", "play", "rock'n'roll"]),
    # numbers keep their , . : / ; dates and scores keep their hyphens
    ("1,200 people paid 3.5 percent", ["1,200", "people", "paid", "3.5", "percent"]),
    ("LONDON 1996-08-22", ["LONDON", "1996-08-22"]),
    ("won 3-1 and 6-4 7-6 at 12:30 , 1/2 of 1996/97", ["won", "3-1", "and", "6-4", "7-6", "at", "12:30", ",", "1/2", "of", "1996/97"]),
    ("It cost 5.", ["It", "cost", "5", "."]),
    ("rose +0.05 to .500 ; call +44 171", ["rose", "+0.05", "to", ".500", ";", "call", "+44", "171"]),
    ("US$ 5 million and HK$ 3 , $ 4", ["US$", "5", "million", "and", "HK$", "3", ",", "$", "4"]),
    # hyphenated words kept
    ("a well-known all-rounder , Inzamam-ul-Haq", ["a", "well-known", "all-rounder", ",", "Inzamam-ul-Haq"]),
    ("S&P and AT&T rose", ["S&P", "and", "AT&T", "rose"]),
    # a numbered list item at the start of a line keeps its period (Reuters sports results)
    ("1. Michael Johnson (U.S.) 19.32\n2. Frank Fredericks", ["1.", "Michael", "Johnson", "(", "U.S.", ")", "19.32", "2.", "Frank", "Fredericks"]),
    # runs of dots and dashes are one token
    ("wait ... -- no --- yes", ["wait", "...", "--", "no", "---", "yes"]),
    # hashtags and @mentions are one token (as tweets are annotated); not inside a word
    ("just landed in #tokyo with @jenny_k #NYC2024", ["just", "landed", "in", "#tokyo", "with", "@jenny_k", "#NYC2024"]),
    ("C# and a@b", ["C", "#", "and", "a", "@", "b"]),
    # URLs and e-mail addresses are one token; trailing punctuation is not part of them
    ("see http://example.org/a?b=1. or www.reuters.com, mail ann.lee@example.co.uk.",
     ["see", "http://example.org/a?b=1", ".", "or", "www.reuters.com", ",", "mail", "ann.lee@example.co.uk", "."]),
])
def test_conll_tokenisation(text, expected):
    assert words(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("Émile went to Zürich", ["Émile", "went", "to", "Zürich"]),
    ("Москва́ — столица России.", ["Москва́", "—", "столица", "России", "."]),
    ("東京 は 大きい", ["東京", "は", "大きい"]),
    ("हिन्दी भाषा", ["हिन्दी", "भाषा"]),              # vowel signs are combining marks, not separators
    ("مرحبا بالعالم", ["مرحبا", "بالعالم"]),
    ("I ❤️ Paris 👍🏽!", ["I", "❤️", "Paris", "👍🏽", "!"]),  # emoji keep their variation selector / skin tone
    ("family 👨\u200d👩\u200d👧 flag 🇩🇪", ["family", "👨\u200d👩\u200d👧", "flag", "🇩🇪"]),
])
def test_other_scripts_and_emoji_become_tokens(text, expected):
    assert words(text) == expected


def test_empty_and_whitespace_only_text_give_no_tokens():
    assert tokenize("") == []
    assert tokenize(" \t\n\r\x0b\x0c\u00a0\u2003 ") == []


def test_control_characters_separate_tokens():
    text = "New\x00York\x07is\x1b\x7fbig\u200bcity\ufeff."
    assert words(text) == ["New", "York", "is", "big", "city", "."]
    assert all(text[t.start:t.end] == t.text for t in tokenize(text))


# -------------------------------------------------------------------- properties

SEPARATORS = set(" \t\n\r\x0b\x0c") | {chr(c) for c in range(0x20)} | {chr(c) for c in range(0x7f, 0xa0)}


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.one_of(st.sampled_from(list("aZ09 .,'’-&$+@:/\"()\n\t\x00\u200d\u0301")),
                                  st.characters()), max_size=60))
def test_offsets_round_trip_and_only_separators_are_dropped(text):
    tokens = tokenize(text)
    covered = [False] * len(text)
    previous_end = 0
    for t in tokens:
        assert text[t.start:t.end] == t.text and t.text
        assert t.start >= previous_end            # in order, never overlapping
        previous_end = t.end
        covered[t.start:t.end] = [True] * len(t.text)
        assert not any(c.isspace() or c in SEPARATORS for c in t.text)
    dropped = {c for c, used in zip(text, covered) if not used}
    assert all(c.isspace() or c in SEPARATORS or c in "\u200b\u2060\ufeff" for c in dropped)


def test_tokenising_tokens_again_changes_nothing():
    sentence = "EU rejects German call to boycott British lamb . Germany 's U.S. did n't 1,200 3-1 ( LONDON ) 1996-08-22"
    assert " ".join(words(sentence)) == sentence


# ------------------------------------------------------------------ linear time

def test_a_100k_word_line_is_tokenised_quickly():
    line = " ".join(["Reuters", "reported", "that", "Germany's", "U.S.", "exports", "rose", "3.5", "%,"] * 11112)
    t0 = time.perf_counter()
    tokens = tokenize(line)
    elapsed = time.perf_counter() - t0
    assert len(tokens) == 11112 * 11       # 's and the comma split off
    assert elapsed < 3.0, f"100k words took {elapsed:.2f}s"


@pytest.mark.parametrize("unit", ["a", "a.", "a-", "1,", "a'", "'s", "a@", "x" * 70 + "@", "http://.", "U.S.",
                                  "n't", "A. ", "1. ", "\u200d", "a&", "a'n'", ".1", "+", "www."])
def test_adversarial_runs_stay_linear(unit):
    # 200,000-character runs built to make a backtracking regex rescan the run
    # at every position; quadratic behaviour would take minutes here.
    text = unit * (200_000 // len(unit))
    t0 = time.perf_counter()
    tokens = tokenize(text)
    assert time.perf_counter() - t0 < 2.0
    assert "".join(t.text for t in tokens) == "".join(text.split())


def test_tokenize_imports_only_re_and_dataclasses():
    source = Path(__file__).resolve().parents[1] / "ner_window" / "tokenize.py"
    imported = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module.split(".")[0])
    assert imported <= {"re", "dataclasses", "__future__"}
