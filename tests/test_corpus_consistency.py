"""scripts/corpus_consistency.py: every string annotated two ways is found, and must be a recorded decision."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "corpus_consistency.py"

SOURCE = """# a tiny annotated source
=== two readings of Reading and one of Paris
[Reading|LOC] is a town west of [London|LOC] .
[Reading|ORG] beat [Luton|ORG] 2-0 .
She was reading in [Paris|LOC] .
=== lowercase is the same string
just landed in [paris|LOC] lol
"""


def run(tmp_path, decisions: str, *args):
    src = tmp_path / "source"
    src.mkdir(exist_ok=True)
    (src / "a.txt").write_text(SOURCE, encoding="utf-8")
    (tmp_path / "decisions.tsv").write_text(decisions, encoding="utf-8")
    return subprocess.run([sys.executable, str(SCRIPT), "--source", str(src), "--decisions",
                           str(tmp_path / "decisions.tsv"), *args], capture_output=True, text=True, timeout=60)


def test_finds_entity_type_and_o_readings_casefolded(tmp_path):
    out = run(tmp_path, "", "--check")
    assert out.returncode == 1
    # Reading: LOC once, ORG once, O once ("reading" the verb); Paris/paris is one reading: not listed
    assert "'reading': LOC 1" in out.stdout and "O 1" in out.stdout and "ORG 1" in out.stdout
    assert "'paris'" not in out.stdout
    assert "1 ambiguous string(s); 1 not recorded" in out.stdout


def test_a_recorded_decision_passes_and_a_wrong_or_stale_one_fails(tmp_path):
    ok = run(tmp_path, "# string\treadings\twhy\nreading\tLOC/O/ORG\tthe town, the verb, the club\n", "--check")
    assert ok.returncode == 0, ok.stdout
    wrong = run(tmp_path, "reading\tLOC/ORG\tthe town, the club\n", "--check")
    assert wrong.returncode == 1 and "decisions say LOC/ORG" in wrong.stdout
    stale = run(tmp_path, "reading\tLOC/O/ORG\tx\nluton\tLOC/ORG\ty\n", "--check")
    assert stale.returncode == 1 and "'luton': recorded" in stale.stdout and "no longer ambiguous" in stale.stdout
