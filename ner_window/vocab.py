"""The vocabulary: word <-> row of E, with a fallback chain for unseen spellings.

Row ids 0, 1, 2 are always ``<unk>``, ``<s>``, ``</s>``: the unknown word and
the two padding words that fill a window past the sentence edges
(lecture 3: "museums in Paris are amazing" needs e(<s>) for w-2 at the start).

A token is looked up in four steps, stopping at the first hit::

    exact  ->  lowercase  ->  digits normalised (of the lowercase form)  ->  <unk>
    "Paris"    "paris"        "1997" -> "0000"                              id 0

and a hashtag or mention that misses all three ("#Tokyo", "@paris") is looked up
again without its "#" / "@", so "#tokyo" gets the vector of "tokyo".

This module runs on every token at prediction time, so it imports only numpy
(and the project's errors) and each lookup is at most three dict probes.
"""

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from ner_window.errors import ModelError

UNK, BOS, EOS = "<unk>", "<s>", "</s>"
UNK_ID, BOS_ID, EOS_ID = 0, 1, 2
SPECIALS = (UNK, BOS, EOS)

# str.translate with a table is the fastest way to rewrite characters in CPython.
_ASCII_DIGITS_TO_ZERO = str.maketrans("123456789", "000000000")


def normalise_digits(word: str) -> str:
    """Replace every digit by "0": "1996" -> "0000", "3:15" -> "0:00".

    Numbers are an open class: no vocabulary holds every year or score, but the
    *shape* of a number ("0000" is probably a year, "0-0" a score) is common
    and has a pretrained vector (GloVe 6B has "0000", "0-0", "00:00").
    """
    if word.isascii():
        return word.translate(_ASCII_DIGITS_TO_ZERO)
    return "".join("0" if ch.isdecimal() else ch for ch in word)


def fallback_chain(word: str) -> tuple[str, ...]:
    """The spellings tried for `word`, in order, without repeats.

    ("Paris",) -> ("Paris", "paris");  "U.S." -> ("U.S.", "u.s.");
    "1996" -> ("1996", "0000");  "the" -> ("the",);
    "#Tokyo" -> ("#Tokyo", "#tokyo", "Tokyo", "tokyo").
    """
    lower = word.lower()
    shape = normalise_digits(lower)
    chain = [word]
    if lower != word:
        chain.append(lower)
    if shape != lower:
        chain.append(shape)
    if len(word) > 1 and word[0] in "#@":
        chain += [w for w in fallback_chain(word[1:]) if w not in chain]
    return tuple(chain)


class Vocab:
    """Words in row order: ``words[i]`` is the word whose vector is ``E[i]``.

    words : list[str]  (V,)  with words[0:3] == ["<unk>", "<s>", "</s>"]
    index : dict[str, int]   the inverse map, word -> row id
    """

    def __init__(self, words: Sequence[str]):
        words = list(words)
        if tuple(words[:3]) != SPECIALS:
            raise ValueError(f"a vocabulary must start with {list(SPECIALS)}, got {words[:3]}")
        index = dict(zip(words, range(len(words))))
        if len(index) != len(words):
            duplicates = sorted(w for w, n in Counter(words).items() if n > 1)
            raise ValueError(f"a vocabulary must not repeat words, repeated: {duplicates[:5]}")
        self.words = words
        self.index = index

    def lookup(self, token: str) -> int:
        """Row id of `token`: exact -> lowercase -> digits normalised -> <unk> (0)."""
        # Written out rather than looping over fallback_chain(): this runs on
        # every token, and most tokens hit on the first probe.
        i = self.index.get(token)
        if i is not None:
            return i
        lower = token.lower()
        i = self.index.get(lower)
        if i is not None:
            return i
        i = self.index.get(normalise_digits(lower))
        if i is not None:
            return i
        if len(token) > 1 and token[0] in "#@":  # a hashtag or mention: the word without its sign
            return self.lookup(token[1:])
        return UNK_ID

    def encode(self, tokens: Iterable[str]) -> np.ndarray:
        """Row ids of `tokens`, shape (n,) int32."""
        return np.fromiter(map(self.lookup, tokens), dtype=np.int32)

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        """True when `word` has its own row (no fallback)."""
        return word in self.index

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocab) and self.words == other.words

    def __repr__(self) -> str:
        return f"Vocab({len(self)} words)"

    def to_list(self) -> list[str]:
        """The words in row order, for meta.json."""
        return list(self.words)

    @classmethod
    def from_list(cls, words) -> "Vocab":
        """Rebuild from `to_list()` output; a damaged list raises ModelError."""
        if not isinstance(words, list) or not set(map(type, words)) <= {str}:  # one pass in C: loading is on the cold start
            raise ModelError(
                "saved vocabulary is not a list of strings; the model directory is damaged, "
                "save the model again"
            )
        try:
            return cls(words)
        except ValueError as error:
            raise ModelError(
                f"saved vocabulary is invalid ({error}); the model directory is damaged, "
                "save the model again"
            ) from None


def count_words(sentences_tokens: Iterable[Sequence[str]], lowercase: bool = True) -> Counter:
    """How often each vocabulary key occurs in the sentences.

    The key of a token is the token itself, lowercased when `lowercase`.  A key
    with digits also counts towards its digit shape ("1996" adds one to "0000"),
    so that with min_count > 1 the rare numbers, which fall back to their shape
    at lookup, share one trained row instead of all becoming <unk>.
    """
    counts = Counter()
    for tokens in sentences_tokens:
        counts.update([token.lower() for token in tokens] if lowercase else tokens)
    for word, n in list(counts.items()):
        shape = normalise_digits(word)
        if shape != word:
            counts[shape] += n
    return counts


def build_vocab(
    sentences_tokens: Iterable[Sequence[str]],
    min_count: int = 1,
    lowercase: bool = True,
    extra_words: Iterable[str] = (),
) -> Vocab:
    """The vocabulary: specials, then training words, then `extra_words`.

    sentences_tokens : training sentences, each a sequence of tokens
    min_count        : a training word needs at least this many occurrences
    lowercase        : training and extra words enter lowercased (GloVe is lowercased)
    extra_words      : words added regardless of count, in order, e.g. the most
                       frequent words of the pretrained source, so that a place
                       name never seen in training still has its pretrained row
                       at prediction time

    Training words come in order of decreasing count (ties: first seen first),
    so the ids are deterministic.
    """
    if min_count < 1:
        raise ValueError(f"min_count must be >= 1, got {min_count}")
    counts = count_words(sentences_tokens, lowercase)
    words = list(SPECIALS)
    seen = set(words)
    for word, n in counts.most_common():
        if n < min_count:
            break  # most_common() is sorted by count: nothing after this qualifies
        if word not in seen:
            seen.add(word)
            words.append(word)
    for word in extra_words:
        if lowercase:
            word = word.lower()
        if word not in seen:
            seen.add(word)
            words.append(word)
    return Vocab(words)
