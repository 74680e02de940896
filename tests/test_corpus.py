"""The bundled corpus: data/*.txt is exactly what its annotated source builds, tokenised as predict
tokenises, and every string annotated two ways is a recorded decision (data/decisions.tsv)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / script), *args], capture_output=True,
                          text=True, timeout=120)


def test_the_data_files_are_what_the_source_builds(tmp_path):
    out = run("build_corpus.py", "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    for name in ("train.txt", "dev.txt", "test.txt"):
        assert (tmp_path / name).read_bytes() == (ROOT / "data" / name).read_bytes(), (
            f"data/{name} differs from its source: run python scripts/build_corpus.py")


def test_every_source_sentence_is_tokenised_as_predict_tokenises_it():
    out = run("build_corpus.py", "--check")
    assert out.returncode == 0 and "\n0 line(s) tokenised differently" in out.stdout, out.stdout[-2000:]


def test_every_ambiguous_string_is_a_recorded_decision():
    out = run("corpus_consistency.py", "--check")
    assert out.returncode == 0, out.stdout[-2000:]
    assert "0 not recorded as decisions; 0 stale record(s)" in out.stdout
