"""Split raw text into tokens the way CoNLL-2003 (Reuters) is tokenised.

The tagger sees words, not characters, so raw text has to be cut exactly as
the training data was cut, or the window around a word looks nothing like the
windows the model learned from:

    "Germany's exports didn't fall in the U.S. on 1996-08-22."
    -> Germany | 's | exports | did | n't | fall | in | the | U.S. | on | 1996-08-22 | .

Rules, in the order they are tried at each position (first match wins):

    URL / e-mail      http://x.org/a, www.x.org, ann@x.org          one token
    hashtag, mention  #tokyo, #NYC2024, @jenny_k                     one token (as tweets are annotated)
    n't               did|n't, ca|n't, DID|N'T                       split off
    clitic            Germany|'s, they|'re, I|'m, we|'ve, she|'ll    split off (and kept whole in
                      already-tokenised text: "Germany 's")
    ordinal           "1. Michael Johnson" (at the start of a line)  kept with its period
    abbreviation      U.S., U.N., e.g., a.m., F.C., U.S.-led         kept whole
    title / month     Mr., Dr., St., Inc., Corp., Ltd., Jan., vs.,
                      Calif., No. (before a number)                  kept with its period
    initial           "M. Waugh" (capital + period before a capital) kept with its period
    currency          US$, HK$, C$                                   one token
    decimal, signed   .500, +0.05, +44                               one token
    word              Paris, all-rounder, O'Brien, S&P, 1,200, 3.5,
                      1996-08-22, 3-1, 1/2, 12:30                    one token
    dots / dashes     ..., --, ---                                   one token
    anything else     one punctuation mark or symbol (emoji with its modifiers)

Whitespace and control characters separate tokens and are never part of one.
Everything is one compiled regular expression, tried at each token start: no
alternative can scan further than a bounded distance or the end of the run it
is about to return, so a 100,000-word line takes linear time.  (Plain words and
single characters, which the expression could only return whole, skip it.)

Only ``re`` and ``dataclasses`` are imported: this module is on the predict path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Token:
    """One token and where it came from: ``source[start:end] == text``."""

    text: str
    start: int  # character offset of the first character
    end: int    # character offset one past the last character


# Characters that separate tokens besides \s: C0/C1 control characters, and the
# invisible format characters that leak out of word processors and web pages
# (zero-width space, word joiner, byte-order mark).
_SEPARATOR = r"\s\x00-\x1f\x7f-\x9f\u200b\u2060\ufeff"

# Combining marks that Python's \w does not count as word characters but that
# sit inside words: Latin diacritics, Hebrew/Arabic vowel points, the Indic
# blocks (vowel signs; the danda punctuation U+0964/5 is left out), Thai/Lao,
# Myanmar, and the zero-width non-joiner used inside Persian and Indic words.
_MARK = (r"\u0300-\u036f\u0483-\u0489\u0591-\u05c7\u0610-\u061a\u064b-\u065f\u0670"
         r"\u06d6-\u06ed\u0900-\u0963\u0966-\u0dff\u0e00-\u0eff\u1000-\u109f"
         r"\u1ab0-\u1aff\u1dc0-\u1dff\u200c\u20d0-\u20ff\ufe20-\ufe2f\u3099\u309a")
_W = rf"[\w{_MARK}]"           # a word character, any script
_APOS = r"['\u2019\u02bc]"     # ' and the typographic apostrophes
_CLITIC = rf"{_APOS}(?i:s|re|ve|ll|d|m)(?!{_W})"

# Abbreviations that keep their period.  Title-case and upper-case forms are
# listed (headlines in Reuters are upper case); lower-case "no." or "co." would
# be ordinary words ending a sentence, so they are not matched case-insensitively.
_TITLES = ("Mr", "Mrs", "Ms", "Dr", "Prof", "St", "Sr", "Jr", "Mt", "Ft", "Gen", "Gov",
           "Sen", "Rep", "Rev", "Lt", "Col", "Capt", "Sgt", "Maj", "Adm", "Cmdr", "Hon",
           "Inc", "Corp", "Ltd", "Co", "Bros", "Plc", "Ave", "Rd", "Blvd",
           "Jan", "Feb", "Mar", "Apr", "Jun", "Jul", "Aug", "Sep", "Sept", "Oct", "Nov", "Dec",
           "Vs", "Fig", "Vol",
           # US states as Reuters abbreviates them (the ambiguous Ill., Ind., La.,
           # Miss., Wash. ... are left out: they are also words that end sentences)
           "Calif", "Fla", "Ariz", "Colo", "Conn", "Mass", "Mich", "Minn", "Tenn", "Tex",
           "Okla", "Wis", "Neb", "Nev")
_LOWER_ABBREVIATIONS = ("vs", "etc", "approx", "cf", "al", "fig", "vol")
_ABBREVIATION = "|".join(sorted({*_TITLES, *(t.upper() for t in _TITLES), *_LOWER_ABBREVIATIONS},
                                key=lambda a: (-len(a), a)))

# A word is pieces joined by a hyphen, "&" (S&P, AT&T) or an apostrophe that is
# not a clitic (O'Brien, rock'n'roll).  A piece is a number with internal
# separators (1,200  3.5  12:30  1/2) or a run of word characters.
_PIECE = rf"(?:\d+(?:[.,:/]\d+)+|{_W}+)"
_JOIN = rf"(?:[-\u2010\u2011&]|{_APOS}(?!(?i:s|re|ve|ll|d|m)(?!{_W})))"

_TOKEN = re.compile("|".join([
    # URL: greedy over URL characters, then back off so trailing punctuation
    # ("see http://x.org.") is left for the next token.
    rf"(?i:https?://|www\.)[^{_SEPARATOR}<>\"'()\[\]{{}}]*[^{_SEPARATOR}<>\"'()\[\]{{}}.,;:!?]",
    # e-mail: the local part is bounded (RFC 5321: 64 characters) so a long run
    # of word characters with no "@" costs a bounded amount of work.
    r"\w[\w.+-]{0,63}@\w[\w-]*(?:\.\w[\w-]*)+",
    # #hashtag and @mention, not inside a word ("C#", "a@b" stay apart)
    rf"(?<![\w{_MARK}#@])[#@]{_W}+",
    # "didn't" -> "did" + "n't": the word stops where n't begins.
    rf"{_W}+(?=(?i:n{_APOS}t)(?!{_W}))",
    rf"(?i:n{_APOS}t)(?!{_W})",
    # After a space too, so already-tokenised text ("Germany 's") round-trips.
    rf"(?<=[\w{_MARK}\s]){_CLITIC}",
    # A numbered list item at the start of a line ("1. Michael Johnson (U.S.)").
    r"(?m:^)\d{1,3}\.(?=[ \t])",
    rf"(?<!{_W})(?:[^\W\d_]\.){{2,}}(?:-{_PIECE})*",   # U.S.-led stays whole
    rf"(?<!{_W})(?:{_ABBREVIATION})\.",
    r"(?<!\w)(?:No|NO)\.(?=[ \t]*\d)",
    rf"(?<!{_W})[A-Z]\.(?=[ \t]+[A-Z])",
    r"(?<!\w)[A-Z]{1,3}\$",
    r"(?<![\w.])\.\d+",
    # A signed change or a phone prefix, as in Reuters market reports: +0.05, +44.
    rf"(?<![\w+])\+(?=\d){_PIECE}(?:{_JOIN}{_PIECE})*",
    rf"{_PIECE}(?:{_JOIN}{_PIECE})*",
    r"\.{2,}|-{2,}",
    # Anything else is one mark; an emoji keeps its variation selector, skin
    # tone and zero-width-joiner sequence, and a flag is two regional indicators.
    r"[\U0001F1E6-\U0001F1FF]{2}",
    rf"[^{_SEPARATOR}](?:[\ufe0e\ufe0f\u20e3\U0001F3FB-\U0001F3FF]|\u200d[^{_SEPARATOR}])*",
]))


# Runs of characters between separators.  No token contains a separator, and
# _TOKEN matches at every other character (its last alternative takes any one),
# so tokenising run by run gives exactly the tokens of _TOKEN.finditer(text).
# That lets the common runs skip the long pattern: a run of letters ("Paris")
# can only be one word, and a one-character run ("," in tokenised text) one
# token.  That is most runs of most text (tokenising CoNLL-style text 1.8x faster).
_RUN = re.compile(rf"[^{_SEPARATOR}]+")


def token_spans(text: str) -> list[tuple[str, int, int]]:
    """The tokens of ``text`` as ``(text, start, end)`` tuples: ``tokenize`` without
    building Token objects (the tagger's hot path)."""
    spans = []
    for run in _RUN.finditer(text):
        word = run.group()
        if len(word) == 1 or word.isalpha():
            spans.append((word, run.start(), run.end()))
            continue
        pos, end = run.span()
        while pos < end:
            m = _TOKEN.match(text, pos)  # never None inside a run (see _RUN)
            spans.append((m.group(), pos, m.end()))
            pos = m.end()
    return spans


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into CoNLL-2003-style tokens with character offsets.

    Empty or whitespace-only text gives ``[]``; emoji and non-Latin scripts
    become tokens; control characters separate tokens.  Linear time.
    """
    return [Token(word, start, end) for word, start, end in token_spans(text)]
