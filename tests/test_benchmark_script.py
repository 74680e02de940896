"""scripts/benchmark.py (and scripts/bench_ab.py) run end to end and print the figures the issues track.

A smoke test on tiny sizes (--quick): it checks the JSON shape and that every
figure is a positive rate, never a speed (timings are not asserted on a shared
machine).  The torch rows are null when torch is not installed.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import conll_counts

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "benchmark.py"


@pytest.fixture(scope="module")
def quick_json():
    # --time-limit: the torch epochs stop after their first batch, as on a machine where torch's threads collapse
    out = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--format", "json", "--torch-threads", "1",
                          "--time-limit", "0.000001"],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_json_has_the_tracked_keys(quick_json):
    res = quick_json
    for key in ("ner_window", "ner_window_finetuned", "torch", "torch_sparse", "torch_dense", "sklearn",
                "sklearn_float64", "per_example"):
        assert key in res["train"], key
    assert {"ner_window", "torch"} <= set(res["infer"])
    for key in ("gemm_gflops", "gemm_gflops_1thread", "step_gemm_gflops", "ner_window_gflops", "ratios", "config",
                "machine"):
        assert key in res, key


def test_every_figure_is_a_positive_rate_or_a_skip(quick_json):
    res = quick_json
    torch_missing = any("torch is not installed" in note for note in res["notes"])
    for section in ("train", "infer"):
        for key, value in res[section].items():
            if value is None:
                assert key.startswith("torch") and torch_missing, key
            else:
                assert value > 0, key
                assert len(res["runs"][section][key]) == res["config"]["repeat"] >= 3
    assert res["gemm_gflops"] > 0 and res["ner_window_gflops"]["train"] > 0


def test_ratios_are_ner_window_over_the_baseline(quick_json):
    res = quick_json
    train = res["train"]
    assert res["ratios"]["train"]["sklearn"] == pytest.approx(train["ner_window"] / train["sklearn"])
    if train["torch_sparse"] is not None:
        ratio = train["ner_window_finetuned"] / train["torch_sparse"]
        assert res["ratios"]["train"]["torch_sparse"] == pytest.approx(ratio)


def test_a_torch_run_stopped_by_the_time_limit_is_reported(quick_json):
    res = quick_json
    if res["train"]["torch"] is None:
        pytest.skip("torch is not installed")
    assert res["partial_runs"] == {"torch": 3, "torch_sparse": 3, "torch_dense": 3}
    assert any(note.startswith("torch_sparse: 3 of 3 runs stopped") for note in res["notes"])
    assert "ner_window" not in res["partial_runs"]


def test_text_output_names_every_row():
    out = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--repeat", "3", "--skip", "torch,sklearn",
                          "--activations", "tanh"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    for text in ("ner-window tanh, frozen E", "ner-window tanh, fine-tuned E", "per-example numpy loop",
                 "inference, batch", "GEMM float32", "GFLOP/s"):
        assert text in out.stdout, text


def test_the_ab_script_times_two_checkouts_side_by_side():
    """scripts/bench_ab.py on this checkout against itself (tiny sizes, numpy path: no compiling)."""
    import os

    env = {**os.environ, "NER_WINDOW_KERNELS": "numpy"}
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_ab.py"), str(ROOT), "--rounds", "2",
                          "--steps", "2", "--windows", "1000"], capture_output=True, text=True, timeout=120,
                         cwd=ROOT, env=env)
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stdout.splitlines() if "this/other time" in line]
    assert [line.split("  ")[0] for line in lines] == ["train step, frozen E", "train step, fine-tuned E",
                                                      "predict_proba, 1000 windows", f"tag_lines, {conll_counts(ROOT / 'data' / 'train.txt')[1]} tokens"]


def test_the_scale_benchmark_runs(tiny_model_dir, tmp_path):
    """scripts/bench_scale.py --quick: the scoring section's figures, one per implementation (a smoke test)."""
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_scale.py"), "--quick", "--only", "scoring",
                          "--model", str(tiny_model_dir), "--workdir", str(tmp_path), "--format", "json"],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    scoring = json.loads(out.stdout)["scoring"]
    rates = scoring["windows_per_s"]
    assert {"slots, 1 thread", "slots, 2 threads", "matrix product (predict_proba), 1 thread"} <= set(rates)
    assert all(v > 0 for v in rates.values())
    import importlib.util

    if importlib.util.find_spec("numba"):  # make installs the fast extra: the compiled loop's row, and its s
        assert "compiled slot loop (numba; not in the package)" in rates
        assert scoring["compiled_max_abs_ds"] < 1e-4  # the rational tanh is a few ulp from np.tanh
