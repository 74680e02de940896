"""scripts/load_test.py runs end to end against a real local server (--quick: a few seconds).

Checks the figures are there and consistent, that no request failed, and that every
scenario stayed within its bounds; speeds are not asserted on a shared machine (the
targets live in the script and BENCHMARKS.md).
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "load_test.py"


@pytest.fixture(scope="module")
def quick(tiny_model_dir):
    out = subprocess.run([sys.executable, str(SCRIPT), "--model", str(tiny_model_dir), "--quick", "--format", "json"],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_every_scenario_answered_every_request(quick):
    for name in ("latency", "soak", "batches"):
        r = quick[name]
        assert r["errors"] == 0 and r["error_kinds"] == {}, (name, r)
        assert r["answered"] == r["requests"] > 0, name
        assert 0 < r["p50_ms"] <= r["p99_ms"] <= r["max_ms"], name
        assert r["requests_per_s"] == pytest.approx(r["answered"] / r["seconds"], rel=0.01)


def test_the_bounds_hold(quick):
    assert quick["latency"]["requests"] <= 400 and quick["latency"]["seconds"] < 1.0 + 10  # --quick: 400 or 1 s
    assert quick["soak"]["requests"] <= 400
    assert quick["latency"]["clients"] == 4 and quick["batches"]["clients"] == 2


def test_memory_and_throughput_figures(quick):
    soak = quick["soak"]
    assert 0 < soak["rss_before_mb"] and 0 < soak["rss_after_mb"]
    assert soak["rss_growth_mb"] == pytest.approx(soak["rss_after_mb"] - soak["rss_before_mb"], abs=0.11)
    assert len(soak["rss_series_mb"]) == 10 and all(mb > 0 for _, mb in soak["rss_series_mb"])
    bat = quick["batches"]
    assert bat["tokens_per_request"] > bat["texts_per_request"]  # sentences, several tokens each
    assert bat["tokens_per_s"] == pytest.approx(bat["answered"] * bat["tokens_per_request"] / bat["seconds"], rel=0.05)
    assert 0 < quick["cold_start"]["median_s"] < 30
    assert set(quick["targets"]) >= {"latency: p99 <= 50 ms", "batches: >= 200k tokens/s", "cold start <= 2 s"}
