"""Stage 11: tag corpora of any size, in partitions, on one process or a Dask cluster.

    ner-window tag news/*.txt --out tagged/                      # one process
    ner-window tag news/*.txt --out tagged/ --workers 2          # a local Dask cluster of 2 processes
    ner-window tag /data/*.txt --out /data/tagged --scheduler tcp://10.0.0.1:8786   # a cluster of machines

API for other modules:

    run(inputs, out_dir, model=None, fmt="jsonl", ...) -> Summary   what `ner-window tag` does
    expand_inputs(patterns) -> list[str]        files and globs -> absolute paths, in order
    plan(paths, partition_bytes, encoding) -> list[Partition]
    tag_partition(part, job) -> dict            one task: a partition in, a part file and its record out
    tagged_bag(source, model=None, fmt="jsonl", ...) -> dask.bag.Bag   tagged lines for a Dask pipeline

Partitions.  Each input is cut into byte ranges of about ``partition_bytes`` (64 MB), each
ending just after a ``\\n`` (or at the end of the file), so no line is cut and the lines of
the parts, in order, are the lines of the file.  A UTF-16/32 file (a byte-order mark) or
one in a multi-byte --encoding other than UTF-8 cannot be cut at a byte and is one partition.

A task is a pure function of (partition, job): it reads its range through textio (the
same decoding as `predict --file`), tags it with pipeline.LinePipeline and writes
``DIR/parts/NNNNNN.<format>`` through files.line_writer: a temporary file beside it, renamed
into place when complete.  Then it writes the part's record ``DIR/parts/NNNNNN.json`` (input,
byte range, lines, tokens, bytes, sha256 of the part) the same way.  A part counts as
finished when its record is there.  So a worker killed mid-partition leaves at most a
hidden temporary file, never a part; the scheduler runs the task again elsewhere, and
running it twice writes the same bytes (a token's p depends on its window only: slots.py).
A worker (each of its threads) loads the model once and keeps it for all its tasks.

The directory.  ``DIR/job.json`` says what the parts are of (the inputs with their sizes and
modification times, the model's fingerprint, the format, threshold, encoding and partition
size); a second run with the same command skips every finished part, and a run with other
inputs or settings is refused rather than mixed in.  At the end ``DIR/manifest.json`` lists
every part in order, and ``cat DIR/parts/*.<format>`` is what `predict --file` writes for
the inputs one after another.
"""

from __future__ import annotations

import codecs
import glob
import hashlib
import io
import json
import os
import resource
import socket
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from .errors import DataError, MissingExtraError
from .files import line_writer, write_text_atomic
from .pipeline import LinePipeline
from .tagger import Tagger, default_model_path
from .textio import BOMS, read_blocks

JOB_VERSION = 1
PARTITION_BYTES = 64 << 20
EXTENSIONS = {"jsonl": "jsonl", "conll": "conll", "text": "txt"}


@dataclass(frozen=True)
class Partition:
    """Bytes [start, end) of the input ``path``, tagged into the part file ``name``."""

    index: int
    path: str
    start: int
    end: int
    name: str


@dataclass(frozen=True)
class Job:
    """What every task needs: the model directory, its fingerprint, the output and how to read the input."""

    model: str
    fingerprint: str
    out_dir: str
    fmt: str = "jsonl"
    threshold: float | None = None
    encoding: str | None = None


@dataclass
class Summary:
    parts: int = 0
    skipped: int = 0  # finished by an earlier run
    lines: int = 0
    tokens: int = 0
    tagged_tokens: int = 0  # by this run
    bytes_in: int = 0
    seconds: float = 0.0
    records: list[dict] = field(default_factory=list)


# ------------------------------------------------------------------ inputs and partitions


def expand_inputs(patterns: Iterable[str]) -> list[str]:
    """Each pattern is a file or a glob (``**`` for any depth); the files as absolute paths, in
    the order given (a glob's matches sorted), each once.  DataError for a pattern that names
    no file."""
    paths: list[str] = []
    for pattern in patterns:
        if glob.has_magic(pattern):
            found = sorted(p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p))
            if not found:
                raise DataError(f"{pattern}: matches no file; give files to tag or a glob such as 'news/*.txt'")
        elif os.path.isdir(pattern):
            raise DataError(f"{pattern}: is a directory; give the files in it, e.g. '{pattern.rstrip('/')}/*.txt'")
        elif not os.path.isfile(pattern):
            raise DataError(f"{pattern}: no such file; give text files to tag (one text per line)")
        else:
            found = [pattern]
        paths += [os.path.abspath(p) for p in found]
    return list(dict.fromkeys(paths))


def splittable(path: str, encoding: str | None) -> bool:
    """Can ``path`` be cut after any ``\\n`` byte?  Yes for UTF-8 and single-byte encodings; no for
    UTF-16/32 (a byte-order mark, or --encoding) and other multi-byte encodings."""
    with open(path, "rb") as f:
        head = f.read(4)
    mark = next((codec for bom, codec in BOMS if head.startswith(bom)), None)
    if mark not in (None, "utf-8"):
        return False
    if encoding is None:
        return True
    try:
        codec = codecs.lookup(encoding).name
    except LookupError:
        return False  # textio names the unknown encoding when the task reads it
    if codec == "utf-8":
        return True
    return "\n".encode(codec) == b"\n" and len(bytes(range(256)).decode(codec, "replace")) == 256


def _cut_after_newline(f, at: int, size: int) -> int:
    """The offset just after the first \\n at or after byte ``at`` (``size`` if there is none)."""
    f.seek(at)
    pos = at
    while True:
        block = f.read(1 << 16)
        if not block:
            return size
        i = block.find(b"\n")
        if i >= 0:
            return pos + i + 1
        pos += len(block)


def plan(paths: list[str], partition_bytes: int = PARTITION_BYTES, encoding: str | None = None,
         fmt: str = "jsonl") -> list[Partition]:
    """The partitions of ``paths``, in order: byte ranges of about ``partition_bytes``, each ending after a \\n."""
    ranges: list[tuple[str, int, int]] = []
    for path in paths:
        size = os.path.getsize(path)
        if size == 0:
            continue
        start, cut = 0, splittable(path, encoding)
        with open(path, "rb") as f:
            while start < size:
                end = size
                if cut and start + partition_bytes < size:
                    end = _cut_after_newline(f, start + partition_bytes - 1, size)
                ranges.append((path, start, end))
                start = end
    width = max(6, len(str(len(ranges) - 1)))
    ext = EXTENSIONS[fmt]
    return [Partition(i, p, a, b, f"{i:0{width}d}.{ext}") for i, (p, a, b) in enumerate(ranges)]


class _Range(io.RawIOBase):
    """Bytes [start, end) of a file as a binary stream, named for textio's messages."""

    def __init__(self, path: str, start: int, end: int):
        super().__init__()
        self._f = open(path, "rb")
        self._f.seek(start)
        self._left = end - start
        self.name = path if start == 0 else f"{path} (the part from byte offset {start:,})"

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = self._left if n is None or n < 0 else min(n, self._left)
        data = self._f.read(n)
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._f.close()
        super().close()


# ------------------------------------------------------------------ the task


_loaded = threading.local()  # a worker thread loads the model once (a pipeline's caches are one thread's)


def _pipelines() -> dict[tuple, LinePipeline]:
    if not hasattr(_loaded, "pipelines"):
        _loaded.pipelines = {}
    return _loaded.pipelines


def _pipeline(job: Job) -> LinePipeline:
    key = (job.model, job.fingerprint, job.threshold, job.fmt)
    pipelines = _pipelines()
    pipe = pipelines.get(key)
    if pipe is None:
        if len(pipelines) >= 4:
            pipelines.clear()
        pipe = pipelines[key] = LinePipeline(Tagger.load(job.model, job.threshold), job.fmt)
    return pipe


def tag_partition(part: Partition, job: Job) -> dict:
    """Tag one partition into DIR/parts/<name>, then write its record; returns the record."""
    parts = Path(job.out_dir) / "parts"
    pipe = _pipeline(job)
    t0 = time.perf_counter()
    digest, size = hashlib.sha256(), 0
    source = _Range(part.path, part.start, part.end)
    with source, line_writer(parts / part.name) as out:
        def write(text: str) -> None:
            nonlocal size
            data = text.encode("utf-8")
            digest.update(data)
            size += len(data)
            out.write(text)

        counts = pipe.run_pieces(read_blocks(source, job.encoding), write)
    record = {"part": part.index, "file": part.name, "input": part.path, "start": part.start, "end": part.end,
              "lines": counts.lines, "tokens": counts.tokens, "bytes": size, "sha256": digest.hexdigest(),
              "seconds": round(time.perf_counter() - t0, 3), "worker": f"{socket.gethostname()}:{os.getpid()}",
              "worker_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    write_text_atomic(parts / _record_name(part), json.dumps(record, indent=1) + "\n")
    return record


def _record_name(part: Partition) -> str:
    return part.name.rsplit(".", 1)[0] + ".json"


def finished(out_dir: Path, parts: list[Partition]) -> dict[int, dict]:
    """The records of the parts an earlier run finished (record present, part file of the recorded size)."""
    done = {}
    for part in parts:
        try:
            record = json.loads((out_dir / "parts" / _record_name(part)).read_text(encoding="utf-8"))
            if (record.get("start"), record.get("end")) == (part.start, part.end) and \
                    os.path.getsize(out_dir / "parts" / part.name) == record.get("bytes"):
                done[part.index] = record
        except (OSError, ValueError, AttributeError):
            continue
    return done


# ------------------------------------------------------------------ the job


def model_fingerprint(model_dir: Path) -> str:
    """sha256 over the model's meta.json and params.npz: the same model wherever it was copied."""
    digest = hashlib.sha256()
    for name in ("meta.json", "params.npz"):
        with open(model_dir / name, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def job_spec(paths: list[str], job: Job, partition_bytes: int) -> dict:
    """What DIR/job.json records: everything the parts depend on."""
    inputs = []
    for p in paths:
        st = os.stat(p)
        inputs.append({"path": p, "bytes": st.st_size, "mtime_ns": st.st_mtime_ns})
    return {"version": JOB_VERSION, "model": job.model, "model_sha256": job.fingerprint, "format": job.fmt,
            "threshold": job.threshold, "encoding": job.encoding, "partition_bytes": partition_bytes,
            "inputs": inputs}


def prepare_dir(out_dir: Path, spec: dict) -> None:
    """Create DIR (and DIR/parts) for ``spec``, or check that DIR holds parts of the same job."""
    job_file = out_dir / "job.json"
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError(f"{out_dir}: is a file; --out takes a directory (created if missing)")
    if job_file.is_file():
        try:
            old = json.loads(job_file.read_text(encoding="utf-8"))
        except ValueError:
            raise DataError(f"{job_file}: is not valid JSON; delete {out_dir} to tag again from the start") from None
        differ = [k for k in spec if k != "model" and (old.get(k) if isinstance(old, dict) else None) != spec[k]]
        if differ:
            raise DataError(f"{out_dir}: holds the parts of another job (it differs in {', '.join(differ)}); "
                            f"give a new --out, or delete {out_dir} to start again")
    elif out_dir.is_dir() and any(out_dir.iterdir()):
        raise DataError(f"{out_dir}: is not empty and holds no ner-window tag job; give a new or empty --out")
    else:
        try:
            (out_dir / "parts").mkdir(parents=True, exist_ok=True)
        except OSError as e:
            from .files import write_error

            raise write_error(out_dir, e) from None
        write_text_atomic(job_file, json.dumps(spec, indent=1) + "\n")
    (out_dir / "parts").mkdir(exist_ok=True)


def _remove_temporaries(out_dir: Path) -> None:
    """Hidden temporary files a killed task left in DIR/parts (never parts: see the module docstring)."""
    for tmp in (out_dir / "parts").glob(".*.tmp"):
        try:
            tmp.unlink()
        except OSError:
            pass


def run(inputs: Iterable[str], out_dir, model=None, fmt: str = "jsonl", threshold: float | None = None,
        encoding: str | None = None, partition_bytes: int = PARTITION_BYTES, workers: int | None = None,
        scheduler: str | None = None, progress: Callable[[str], None] | None = None, tty: bool = False) -> Summary:
    """Tag every line of ``inputs`` (files or globs) into ``out_dir`` (module docstring), skipping the parts
    an earlier run finished.  workers: a local Dask cluster of that many processes; scheduler: the
    address of a running Dask scheduler, or a distributed.Client (left open); neither: this process.
    progress(line) is told how it goes."""
    if fmt not in EXTENSIONS:
        raise DataError(f"--format {fmt}: tag writes {', '.join(EXTENSIONS)}")
    if workers is not None and scheduler is not None:
        raise DataError("give --workers N (a cluster on this machine) or --scheduler ADDRESS (a running one), not both")
    if partition_bytes < 1:
        raise DataError(f"the partition size must be at least 1 byte, got {partition_bytes}")
    paths, out_dir = expand_inputs(inputs), Path(out_dir)
    inside = [p for p in paths if Path(p).is_relative_to(out_dir.resolve())]
    if inside:
        raise DataError(f"{inside[0]}: is inside --out {out_dir}; tag into a directory apart from the inputs")
    tagger = Tagger.load(default_model_path() if model is None else model, threshold)  # a bad model fails here
    job = Job(model=str(Path(tagger.model.path).resolve()), fingerprint=model_fingerprint(Path(tagger.model.path)),
              out_dir=str(out_dir.resolve()), fmt=fmt, threshold=threshold, encoding=encoding)
    spec = job_spec(paths, job, partition_bytes)
    prepare_dir(out_dir, spec)
    parts = plan(paths, partition_bytes, encoding, fmt)
    done = finished(out_dir, parts)
    before = set(done)
    _remove_temporaries(out_dir)
    todo = [p for p in parts if p.index not in done]
    if workers is None and scheduler is None:
        report, t0 = Progress(progress, parts, done, tty), time.perf_counter()
        if todo:
            _pipelines()[(job.model, job.fingerprint, job.threshold, job.fmt)] = LinePipeline(tagger, fmt)
        for part in todo:
            done[part.index] = report.part_done(tag_partition(part, job))
    else:
        client = _client(workers, scheduler) if todo else None  # before the clock: starting workers
        report, t0 = Progress(progress, parts, done, tty), time.perf_counter()
        for record in _run_on_dask(todo, job, client, own=not hasattr(scheduler, "submit")):
            done[record["part"]] = report.part_done(record)
    _remove_temporaries(out_dir)
    summary = _summary(parts, done, before, time.perf_counter() - t0)
    write_text_atomic(out_dir / "manifest.json", json.dumps({"job": spec, "parts": summary.records,
                                                             "lines": summary.lines, "tokens": summary.tokens},
                                                            indent=1) + "\n")
    report.finish()
    return summary


def _summary(parts: list[Partition], done: dict[int, dict], before: set[int], seconds: float) -> Summary:
    records = [done[p.index] for p in parts]
    return Summary(parts=len(parts), skipped=len(before), lines=sum(r["lines"] for r in records),
                   tokens=sum(r["tokens"] for r in records),
                   tagged_tokens=sum(r["tokens"] for r in records if r["part"] not in before),
                   bytes_in=sum(p.end - p.start for p in parts), seconds=seconds, records=records)


# ------------------------------------------------------------------ Dask


def _distributed():
    """The distributed module, or MissingExtraError."""
    try:
        import distributed
    except ImportError:
        raise MissingExtraError("ner-window tag --workers/--scheduler needs the 'scale' extra (dask[distributed]): "
                                "pip install 'ner-window[scale]' (make installs it), or drop --workers to tag "
                                "in this process") from None
    return distributed


def _client(workers: int | None, scheduler):
    """A Client of a new local cluster of ``workers`` processes (one thread each), or of ``scheduler``
    (an address, or a distributed.Client to use as it is)."""
    distributed = _distributed()
    if hasattr(scheduler, "submit"):
        return scheduler
    if scheduler is not None:
        try:
            return distributed.Client(scheduler, timeout="10s")
        except (OSError, TimeoutError, ValueError) as e:
            raise DataError(f"--scheduler {scheduler}: cannot connect ({type(e).__name__}: {e}); start one with "
                            f"`dask scheduler` and workers with `dask worker {scheduler}`") from None
    import logging

    cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=logging.ERROR)
    return distributed.Client(cluster)


def _run_on_dask(todo: list[Partition], job: Job, client, own: bool) -> Iterator[dict]:
    """Submit every partition to the cluster of ``client``; the records as the tasks finish; then
    close the client and the local cluster it started, when ``own`` (not the caller's Client).

    A task's key names its part and job, so the scheduler runs it once unless its worker
    dies, when it runs it again on another (tag_partition makes that harmless)."""
    distributed = _distributed()
    if not todo:
        return
    try:
        tag = hashlib.sha256(json.dumps(asdict(job), sort_keys=True).encode()).hexdigest()[:12]
        part_of = {}
        for part in todo:
            part_of[client.submit(tag_partition, part, job, key=f"ner-window-tag-{tag}-{part.index}")] = part
        for future in distributed.as_completed(list(part_of)):
            try:
                yield future.result()
            except distributed.KilledWorker:
                part = part_of[future]
                raise DataError(f"{part.path} bytes {part.start:,}-{part.end:,} (part {part.name}): every worker "
                                f"that tagged it died; the machines may be short of memory: use fewer --workers "
                                f"or a smaller --partition-mb") from None
    finally:
        if own:
            cluster = getattr(client, "cluster", None)
            client.close()
            if cluster is not None:
                cluster.close()


# ------------------------------------------------------------------ progress


class Progress:
    """What `tag` says as it goes: on a terminal one line, rewritten (parts done, tokens/s, time
    left); in a log one line per finished part."""

    def __init__(self, say: Callable[[str], None] | None, parts: list[Partition], done: dict[int, dict],
                 tty: bool):
        self.say, self.tty = say, tty
        self.total, self.n_done = len(parts), len(done)
        self.bytes_left = sum(p.end - p.start for p in parts if p.index not in done)
        self.bytes_done = self.tokens = 0
        self.t0 = time.perf_counter()
        if say and done:
            rest = "nothing left to tag" if len(done) == len(parts) else "tagging the rest"
            say(f"{len(done):,} of {len(parts):,} parts were finished by an earlier run; {rest}")

    def part_done(self, record: dict) -> dict:
        self.n_done += 1
        size = record["end"] - record["start"]
        self.bytes_done, self.bytes_left, self.tokens = self.bytes_done + size, self.bytes_left - size, \
            self.tokens + record["tokens"]
        if self.say is None:
            return record
        elapsed = max(time.perf_counter() - self.t0, 1e-9)
        left = self.bytes_left * elapsed / max(self.bytes_done, 1)
        status = (f"{self.n_done:,}/{self.total:,} parts, {self.tokens / elapsed / 1e3:,.0f}k tokens/s, "
                  f"{_clock(left)} left")
        if self.tty:
            self.say(f"\r{status}   ")
        else:
            self.say(f"part {record['file']} done: {record['input']} bytes {record['start']:,}-{record['end']:,}, "
                     f"{record['lines']:,} lines, {record['tokens']:,} tokens in {record['seconds']:.1f} s ({status})")
        return record

    def finish(self) -> None:
        if self.say and self.tty and self.bytes_done:
            self.say("\n")


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


# ------------------------------------------------------------------ a Dask bag of tagged lines


def tagged_bag(source, model=None, fmt: str = "jsonl", threshold: float | None = None,
               encoding: str | None = None, partition_bytes: int = 16 << 20):
    """A dask.bag of tagged lines, one element per input line: for "jsonl" the JSON object, for
    "text" the marked line, for "conll" the line's ``token TAG`` lines joined by "\\n".

    source: files or globs (cut into partitions as `tag` cuts them), or a dask.bag of lines
    (e.g. dask.bag.read_text(...): a line break at an element's end is dropped).  The model
    is loaded once per worker process."""
    _distributed()
    import dask.bag as db

    tagger = Tagger.load(default_model_path() if model is None else model, threshold)
    job = Job(model=str(Path(tagger.model.path).resolve()), fingerprint=model_fingerprint(Path(tagger.model.path)),
              out_dir="", fmt=fmt, threshold=threshold, encoding=encoding)
    if fmt not in EXTENSIONS:
        raise DataError(f"format {fmt!r}: tagged_bag writes {', '.join(EXTENSIONS)}")
    if isinstance(source, db.Bag):
        return source.map_partitions(_tag_bag_lines, job)
    parts = plan(expand_inputs([source] if isinstance(source, (str, os.PathLike)) else source),
                 partition_bytes, encoding, fmt)
    return db.from_sequence(parts, npartitions=max(1, len(parts))).map_partitions(_tag_bag_parts, job)


def _tag_bag_parts(parts: list[Partition], job: Job) -> list[str]:
    out: list[str] = []
    for part in parts:
        with _Range(part.path, part.start, part.end) as source:
            out += _tagged_lines(_pipeline(job), read_blocks(source, job.encoding), job.fmt)
    return out


def _tag_bag_lines(lines, job: Job) -> list[str]:
    from .textio import Piece

    pieces = (Piece(line.rstrip("\r\n"), 0, True) for line in lines)
    return _tagged_lines(_pipeline(job), pieces, job.fmt)


def _tagged_lines(pipe: LinePipeline, pieces, fmt: str) -> list[str]:
    """The output of each line, without the line break(s) that end it."""
    written: list[str] = []
    pipe.run_pieces(pieces, written.append)
    rows = "".join(written).split("\n")[:-1]
    if fmt != "conll":
        return rows
    blocks, block = [], []
    for row in rows:  # each line's token rows, then one empty row
        if row:
            block.append(row)
        else:
            blocks.append("\n".join(block))
            block = []
    return blocks
