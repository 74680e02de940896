"""`ner-window tag`: partitions, part files, the manifest, reruns, and a real Dask cluster.

The reference for every output is `ner-window predict --file` on the same input: the parts,
concatenated in order, must be that output byte for byte.  The Dask tests run a
distributed.LocalCluster of 2 worker processes; one kills a worker in the middle of the job.
"""

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from ner_window import corpus_tag
from ner_window.cli import cli
from ner_window.corpus_tag import expand_inputs, plan, run

ROOT = Path(__file__).resolve().parents[1]


def sentences() -> list[str]:
    """The bundled corpus's sentences, tokens joined by spaces, one a line."""
    out = []
    for name in ("dev.txt", "test.txt"):
        for block in (ROOT / "data" / name).read_text(encoding="utf-8").split("\n\n"):
            tokens = [ln.split()[0] for ln in block.splitlines() if ln.strip()]
            if tokens:
                out.append(" ".join(tokens))
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Two input files (one without a final line break, one with CRLF lines and a raw-text line)."""
    d = tmp_path_factory.mktemp("corpus")
    lines = sentences()
    (d / "a.txt").write_text("\n".join(lines[:2500]), encoding="utf-8")  # no line break at the end
    (d / "b.txt").write_bytes(("\r\n".join(lines[2500:4000]) + "\r\nMuseums in Paris, France's capital.\r\n")
                              .encode("utf-8"))
    return d


def predict(model, path, fmt) -> bytes:
    result = CliRunner().invoke(cli, ["predict", "--model", str(model), "--file", str(path), "--format", fmt])
    assert result.exit_code == 0, result.output
    return result.stdout_bytes


@pytest.fixture(scope="module")
def expected(corpus, tiny_model_dir):
    """predict --file's output for each format: a.txt's, then b.txt's."""
    return {fmt: predict(tiny_model_dir, corpus / "a.txt", fmt) + predict(tiny_model_dir, corpus / "b.txt", fmt)
            for fmt in ("jsonl", "conll", "text")}


def concatenated(out: Path, fmt: str) -> bytes:
    ext = corpus_tag.EXTENSIONS[fmt]
    return b"".join(p.read_bytes() for p in sorted((out / "parts").glob(f"*.{ext}")))


def tag(*args) -> "click.testing.Result":
    return CliRunner().invoke(cli, ["tag", *map(str, args)])


# ------------------------------------------------------------------ partitions


def test_partitions_are_byte_ranges_that_end_after_a_line(corpus):
    paths = expand_inputs([str(corpus / "*.txt")])
    assert [Path(p).name for p in paths] == ["a.txt", "b.txt"]
    parts = plan(paths, 20_000)
    for path in paths:
        data = Path(path).read_bytes()
        mine = [p for p in parts if p.path == path]
        assert mine[0].start == 0 and mine[-1].end == len(data) and len(mine) > 5
        assert all(a.end == b.start for a, b in zip(mine, mine[1:]))
        assert all(data[p.end - 1:p.end] == b"\n" for p in mine[:-1])
        assert all(p.end - p.start >= 20_000 for p in mine[:-1])  # cut at the first \n after the size
    assert [p.index for p in parts] == list(range(len(parts)))
    assert [p.name for p in parts][:2] == ["000000.jsonl", "000001.jsonl"]
    n_lines = sum(len(Path(p).read_bytes().splitlines()) for p in paths)
    assert len(plan(paths, 1)) == n_lines  # one byte each: every line its own partition


def test_a_utf16_file_is_one_partition(tmp_path):
    (tmp_path / "u16.txt").write_text("Paris\n" * 5000, encoding="utf-16")  # with its byte-order mark
    (tmp_path / "empty.txt").write_bytes(b"")
    assert [(p.start, p.end) for p in plan([str(tmp_path / "u16.txt"), str(tmp_path / "empty.txt")], 100)] == \
           [(0, (tmp_path / "u16.txt").stat().st_size)]


# ------------------------------------------------------------------ one process


@pytest.mark.parametrize("fmt", ["jsonl", "conll", "text"])
def test_the_parts_are_predicts_output(corpus, tiny_model_dir, expected, tmp_path, fmt):
    result = tag(corpus / "*.txt", "--out", tmp_path / "out", "--model", tiny_model_dir, "--format", fmt,
                 "--partition-mb", 0.02)
    assert result.exit_code == 0, result.output
    assert concatenated(tmp_path / "out", fmt) == expected[fmt]


def test_the_manifest_says_what_each_part_holds(corpus, tiny_model_dir, tmp_path):
    out = tmp_path / "out"
    summary = run([str(corpus / "a.txt"), str(corpus / "b.txt")], out, model=tiny_model_dir, partition_bytes=40_000)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    records = manifest["parts"]
    assert [r["part"] for r in records] == list(range(len(records))) and len(records) == summary.parts > 4
    for r in records:
        part = (out / "parts" / r["file"]).read_bytes()
        source = Path(r["input"]).read_bytes()[r["start"]:r["end"]]
        assert r["sha256"] == hashlib.sha256(part).hexdigest() and r["bytes"] == len(part)
        assert r["lines"] == part.count(b"\n") == source.count(b"\n") + (not source.endswith(b"\n"))
    assert manifest["lines"] == sum(len(p.read_bytes().splitlines()) for p in corpus.iterdir()) == summary.lines
    assert manifest["job"]["inputs"][0]["bytes"] == (corpus / "a.txt").stat().st_size
    assert sorted(p.name for p in out.iterdir()) == ["job.json", "manifest.json", "parts"]
    assert not list((out / "parts").glob(".*"))  # no temporary file left


def test_a_rerun_skips_finished_parts_and_redoes_unfinished_ones(corpus, tiny_model_dir, expected, tmp_path):
    out = tmp_path / "out"
    args = (corpus / "*.txt", "--out", out, "--model", tiny_model_dir, "--partition-mb", 0.05)
    assert tag(*args).exit_code == 0
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "parts").iterdir()}
    again = tag(*args)
    assert again.exit_code == 0 and "finished by an earlier run; nothing left to tag" in again.stderr
    assert {p.name: p.stat().st_mtime_ns for p in (out / "parts").iterdir()} == stamps
    (out / "parts" / "000001.json").unlink()  # as if killed after the part, before its record
    (out / "parts" / "000002.jsonl").write_bytes(b"half a part")  # as if a part were damaged
    (out / "parts" / ".000003.jsonl.123-456-7.tmp").write_bytes(b"a killed task's temporary")
    third = tag(*args)
    assert third.exit_code == 0, third.output
    n = len(stamps) // 2
    assert f"({n - 2:,} finished before)" in third.stdout
    assert concatenated(out, "jsonl") == expected["jsonl"] and not list((out / "parts").glob(".*"))


@pytest.mark.parametrize("case, message", [
    ("changed input", "holds the parts of another job (it differs in inputs)"),
    ("other format", "holds the parts of another job (it differs in format)"),
    ("not a job", "is not empty and holds no ner-window tag job"),
    ("no match", "matches no file"),
    ("directory", "is a directory; give the files in it"),
    ("inside out", "is inside --out"),
    ("both", "not both"),
    ("bad model", "no model here"),
])
def test_mistakes_are_one_line_errors(corpus, tiny_model_dir, tmp_path, case, message):
    out = tmp_path / "out"
    inputs = tmp_path / "in.txt"
    inputs.write_text("museums in Paris\n" * 10, encoding="utf-8")
    base = [inputs, "--out", out, "--model", tiny_model_dir]
    extra = []
    if case in ("changed input", "other format"):
        assert tag(*base).exit_code == 0
        if case == "changed input":
            inputs.write_text("museums in Rome\n" * 10, encoding="utf-8")
        else:
            extra = ["--format", "text"]
    elif case == "not a job":
        out.mkdir()
        (out / "notes.txt").write_text("mine", encoding="utf-8")
    elif case == "no match":
        base[0] = tmp_path / "*.none"
    elif case == "directory":
        base[0] = tmp_path
    elif case == "inside out":
        (out / "parts").mkdir(parents=True)
        base[0] = out / "parts" / "x.txt"
        base[0].write_text("Paris\n", encoding="utf-8")
        out = tmp_path / "out"
    elif case == "both":
        extra = ["--workers", "2", "--scheduler", "tcp://127.0.0.1:1"]
    elif case == "bad model":
        base[-1] = tmp_path / "nowhere"
    result = tag(*base, *extra)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and result.stderr.count("\n") == 1 and "Traceback" not in result.output


def test_undecodable_bytes_name_the_part_and_its_offset(tmp_path, tiny_model_dir):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"Paris is nice\n" * 3000 + b"caf\xe9 in Lyon\n")
    result = tag(path, "--out", tmp_path / "out", "--model", tiny_model_dir, "--partition-mb", 0.01)
    assert result.exit_code == 2
    start = max(p.start for p in plan([str(path)], int(0.01 * 2**20)))
    assert f"(the part from byte offset {start:,})" in result.stderr and "not valid UTF-8" in result.stderr
    assert "--encoding" in result.stderr


def test_tag_works_without_dask(tmp_path, tiny_model_dir):
    """Without the scale extra: one process works, --workers says which extra to install."""
    path = tmp_path / "in.txt"
    path.write_text("museums in Paris\n" * 20, encoding="utf-8")
    code = ("import sys\nsys.modules['distributed'] = None\nsys.modules['dask'] = None\n"
            "from ner_window.cli import main\nsys.argv = ['ner-window', 'tag', sys.argv[1], '--out', sys.argv[2], "
            "'--model', sys.argv[3]] + sys.argv[4:]\nmain()\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONSTARTUP"}

    def run_cli(*extra):
        return subprocess.run([sys.executable, "-c", code, str(path), str(tmp_path / "out"), str(tiny_model_dir),
                               *extra], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)

    one = run_cli()
    assert one.returncode == 0, one.stderr
    assert (tmp_path / "out" / "parts" / "000000.jsonl").read_text(encoding="utf-8").count("\n") == 20
    two = run_cli("--workers", "2")
    assert two.returncode == 2 and "needs the 'scale' extra" in two.stderr and "Traceback" not in two.stderr


def test_a_killed_run_leaves_no_half_part_and_a_rerun_finishes_it(corpus, tiny_model_dir, expected, tmp_path):
    """SIGKILL the whole `ner-window tag` process mid-job; the rerun skips what was finished."""
    out = tmp_path / "out"
    args = [sys.executable, "-c", "from ner_window.cli import main; main()", "tag", str(corpus / "*.txt"), "--out", str(out), "--model",
            str(tiny_model_dir), "--partition-mb", "0.01"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONSTARTUP"}
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.time() + 60
    while len(list((out / "parts").glob("*.json"))) < 3 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    records = {p.stem for p in (out / "parts").glob("*.json")}
    assert records and all((out / "parts" / f"{r}.jsonl").exists() for r in records)
    total = len(plan(expand_inputs([str(corpus / "*.txt")]), int(0.01 * 2**20)))
    assert len(records) < total, "the job ended before the kill: make the parts smaller"
    again = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert f"({len(records):,} finished before)" in again.stdout
    assert concatenated(out, "jsonl") == expected["jsonl"]


# ------------------------------------------------------------------ a Dask cluster


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    import logging

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=logging.ERROR) as local, distributed.Client(local) as client:
        yield local, client


def test_two_workers_write_predicts_output(corpus, tiny_model_dir, expected, tmp_path, cluster):
    local, client = cluster
    out = tmp_path / "out"
    summary = run([str(corpus / "*.txt")], out, model=tiny_model_dir, fmt="conll", partition_bytes=15_000,
                  scheduler=local.scheduler_address)
    assert concatenated(out, "conll") == expected["conll"]
    workers = {r["worker"] for r in summary.records}
    assert len(workers) == 2, workers  # both worker processes tagged parts


def test_a_worker_killed_mid_job_costs_nothing_twice(corpus, tiny_model_dir, expected, tmp_path, cluster):
    """Once the first part is written, os._exit a worker that is tagging a partition; the scheduler
    runs its task again elsewhere.  Every part once, no temporary left, the same bytes."""
    local, client = cluster
    out = tmp_path / "out"
    killed = []

    def kill_a_busy_worker():
        deadline = time.time() + 60
        while time.time() < deadline and not killed:
            busy = {w: tasks for w, tasks in client.processing().items() if tasks}
            if busy and list((out / "parts").glob("*.json")):
                victim = sorted(busy)[0]
                killed.append((victim, sorted(busy[victim])))
                try:
                    client.run(os._exit, 1, workers=[victim])
                except Exception:  # noqa: BLE001 - the worker dies before it can answer
                    pass
            time.sleep(0.01)

    watcher = threading.Thread(target=kill_a_busy_worker)
    watcher.start()
    try:
        summary = run([str(corpus / "*.txt")], out, model=tiny_model_dir, partition_bytes=8_000,
                      scheduler=client)  # the test's own Client: one event loop for it and the watcher
    finally:
        watcher.join()
    assert killed and killed[0][1], "no task was running when the worker was killed"
    records = summary.records
    assert [r["part"] for r in records] == list(range(summary.parts))  # every part once
    files = sorted(p.name for p in (out / "parts").iterdir())
    assert files == sorted([r["file"] for r in records] + [r["file"].replace(".jsonl", ".json") for r in records])
    assert concatenated(out, "jsonl") == expected["jsonl"]
    client.wait_for_workers(2, timeout=60)  # the nanny restarted it, for the next test


def test_a_dask_bag_of_tagged_lines(corpus, tiny_model_dir, expected, cluster):
    import dask.bag as db

    _, client = cluster
    bag = corpus_tag.tagged_bag(str(corpus / "*.txt"), model=tiny_model_dir, fmt="jsonl", partition_bytes=50_000)
    assert bag.npartitions > 2
    lines = bag.compute()
    assert "\n".join(lines) + "\n" == expected["jsonl"].decode("utf-8")
    texts = db.from_sequence(["museums in Paris\n", "Rome is old"], npartitions=2)
    conll = corpus_tag.tagged_bag(texts, model=tiny_model_dir, fmt="conll").compute()
    assert conll == [predict_one(tiny_model_dir, "museums in Paris"), predict_one(tiny_model_dir, "Rome is old")]


def predict_one(model, text) -> str:
    result = CliRunner().invoke(cli, ["predict", "--model", str(model), "--format", "conll", text])
    return result.output.rstrip("\n")


def test_progress_on_a_terminal_is_one_line_rewritten(corpus, tiny_model_dir, tmp_path):
    said = []
    run([str(corpus / "a.txt")], tmp_path / "out", model=tiny_model_dir, partition_bytes=50_000,
        progress=said.append, tty=True)
    updates = said[:-1]
    assert len(updates) > 3 and said[-1] == "\n"
    assert all(s.startswith("\r") and "parts, " in s and "tokens/s" in s and "left" in s for s in updates)
    assert updates[-1].startswith(f"\r{len(updates)}/{len(updates)} parts")


def test_a_utf16_input_is_tagged_whole_as_predict_reads_it(tmp_path, tiny_model_dir):
    path = tmp_path / "u16.txt"
    path.write_text("museums in Paris are amazing\nRome is old\n" * 300, encoding="utf-16")
    assert tag(path, "--out", tmp_path / "out", "--model", tiny_model_dir, "--partition-mb", 0.001).exit_code == 0
    assert concatenated(tmp_path / "out", "jsonl") == predict(tiny_model_dir, path, "jsonl")
