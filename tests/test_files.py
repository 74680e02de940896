"""files.py: a file or directory is replaced whole, or not at all."""

import errno
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ner_window.errors import WriteError
from ner_window.files import line_writer, write_bytes_atomic, write_dir_atomic, write_text_atomic

ROOT = Path(__file__).resolve().parent.parent


def test_a_file_is_replaced_whole_and_no_temporary_is_left(tmp_path):
    path = tmp_path / "out.txt"
    write_text_atomic(path, "first\n")
    write_text_atomic(path, "second\n")
    assert path.read_text() == "second\n"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "out.bin"
    write_bytes_atomic(path, b"old")

    with pytest.raises(TypeError):
        write_bytes_atomic(path, object())  # the write fails inside: nothing replaced, nothing left
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_a_directory_is_swapped_in_only_once_complete(tmp_path):
    target = tmp_path / "model"

    def write(files):
        def fill(tmp):
            for name, text in files.items():
                (tmp / name).write_text(text)
        return fill

    write_dir_atomic(target, write({"a": "1", "b": "2"}))
    assert sorted(os.listdir(target)) == ["a", "b"]

    def crash(tmp):
        (tmp / "a").write_text("half")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        write_dir_atomic(target, crash)
    assert (target / "a").read_text() == "1" and sorted(os.listdir(tmp_path)) == ["model"]
    write_dir_atomic(target, write({"c": "3"}))
    assert os.listdir(target) == ["c"] and sorted(os.listdir(tmp_path)) == ["model"]


# --- modes, links, devices ---------------------------------------------------------------------------


def test_files_and_directories_honour_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        write_text_atomic(tmp_path / "f.txt", "x")
        write_dir_atomic(tmp_path / "d", lambda tmp: (tmp / "inner").write_text("y"))
        with line_writer(tmp_path / "lines.txt") as out:
            out.write("z\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "f.txt").st_mode) == 0o640  # 0o666 less 0o027
    assert stat.S_IMODE(os.stat(tmp_path / "lines.txt").st_mode) == 0o640
    assert stat.S_IMODE(os.stat(tmp_path / "d").st_mode) == 0o750  # 0o777 less 0o027


def test_a_symbolic_link_is_followed_and_stays_a_link(tmp_path):
    (tmp_path / "real.txt").write_text("old")
    (tmp_path / "link.txt").symlink_to("real.txt")
    write_text_atomic(tmp_path / "link.txt", "new")
    assert (tmp_path / "link.txt").is_symlink() and (tmp_path / "real.txt").read_text() == "new"


def test_a_device_is_written_in_place_never_replaced(tmp_path):
    write_text_atomic("/dev/null", "gone")  # a character device: written, not renamed over
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


# --- failures are WriteErrors naming the path and the cause -----------------------------------------


def _leftovers(directory):
    return sorted(p for p in os.listdir(directory) if p.startswith("."))


def _write_lines(path):
    with line_writer(path) as out:
        out.write("museums in Paris\n" * 10)


WRITERS = {"file": lambda path: write_text_atomic(path, "x" * 10_000),
           "directory": lambda path: write_dir_atomic(path, lambda tmp: (tmp / "f").write_text("x")),
           "lines": _write_lines}


@pytest.mark.parametrize("writer", sorted(WRITERS))
@pytest.mark.parametrize("where, cause", [
    ("a_file/out.txt", "Not a directory"),  # a path under a regular file: ENOTDIR, for root too
    ("no_such_dir/out.txt", "No such file or directory"),
    ("/dev/full", "No space left on device"),  # every write to it fails with ENOSPC
])
def test_a_failed_write_is_a_write_error_naming_the_path_and_the_cause(tmp_path, writer, where, cause):
    if writer == "directory" and where in ("/dev/full", "no_such_dir/out.txt"):
        return  # a directory is never written over a device, and its missing parents are created
    (tmp_path / "a_file").write_text("keep")
    path = tmp_path / where
    with pytest.raises(WriteError) as e:
        WRITERS[writer](path)
    assert str(e.value).startswith(f"{path}: cannot write ({cause})"), str(e.value)
    assert (tmp_path / "a_file").read_text() == "keep" and _leftovers(tmp_path) == []


def test_a_line_writer_to_dev_full_fails_on_close(tmp_path):
    out = line_writer("/dev/full")
    out.write("museums in Paris\n")
    with pytest.raises(WriteError, match=r"^/dev/full: cannot write \(No space left on device\) after 0 complete"):
        out.close()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only directory anyway (CAP_DAC_OVERRIDE), "
                                             "so there is no failure to see; the other cases run as root")
def test_a_read_only_directory(tmp_path):
    (tmp_path / "out.txt").write_text("old")
    tmp_path.chmod(0o555)
    try:
        with pytest.raises(WriteError, match="out.txt: cannot write \\(Permission denied\\); no permission"):
            write_text_atomic(tmp_path / "out.txt", "new")
        with pytest.raises(WriteError, match="Permission denied"):
            line_writer(tmp_path / "other.txt")
    finally:
        tmp_path.chmod(0o755)
    assert (tmp_path / "out.txt").read_text() == "old" and _leftovers(tmp_path) == []


def test_disk_full_in_the_middle_of_a_file_keeps_the_old_one(tmp_path, monkeypatch):
    path = tmp_path / "out.bin"
    write_bytes_atomic(path, b"old")
    real_write = os.write

    def full_after_1000(fd, data):
        if len(data) > 1000:
            return real_write(fd, bytes(data[:1000]))  # a short write, then the disk is full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", full_after_1000)
    with pytest.raises(WriteError, match="out.bin: cannot write \\(No space left on device\\); the disk is full"):
        write_bytes_atomic(path, b"x" * 5000)
    monkeypatch.undo()
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["out.bin"]


def test_a_failed_second_rename_puts_the_previous_directory_back(tmp_path, monkeypatch):
    target = tmp_path / "model"
    write_dir_atomic(target, lambda tmp: (tmp / "a").write_text("1"))
    real_replace, calls = os.replace, []

    def fail_second(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", fail_second)
    with pytest.raises(WriteError, match="model: cannot write \\(Input/output error\\)"):
        write_dir_atomic(target, lambda tmp: (tmp / "b").write_text("2"))
    monkeypatch.undo()
    assert os.listdir(target) == ["a"] and sorted(os.listdir(tmp_path)) == ["model"]


# --- the streaming writer ------------------------------------------------------------------------------


def test_a_line_writer_to_a_path_appears_whole_or_not_at_all(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("previous\n")
    with line_writer(path) as out:
        for i in range(20_000):
            out.write(f"line {i}\n")
        assert path.read_text() == "previous\n"  # nothing shows until the end
    assert out.lines == 20_000 and path.read_text().splitlines() == [f"line {i}" for i in range(20_000)]
    with pytest.raises(RuntimeError):
        with line_writer(path) as out:
            out.write("half of a new version\n" * 10_000)
            raise RuntimeError("the input went bad")
    assert path.read_text().splitlines()[-1] == "line 19999" and os.listdir(tmp_path) == ["out.txt"]


WRITE_LINES = """
import resource, signal, sys, time
from ner_window.files import line_writer, signals_raise
from ner_window.errors import WriteError
limit, n, line = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] * int(sys.argv[4])
if limit:
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
with signals_raise():
    try:
        with line_writer() as out:
            for i in range(n):
                out.write(f"{i} {line}\\n")
                if i == 10:
                    print("started", file=sys.stderr, flush=True)
    except WriteError as e:
        print(e, file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt as e:
        print(f"{e.signum} after {out.lines}", file=sys.stderr)
        sys.exit(128 + e.signum)
print(f"wrote {out.lines}", file=sys.stderr)
"""


def write_lines(out_path: Path, limit: int, n: int, line: str, repeat: int) -> subprocess.CompletedProcess:
    with open(out_path, "wb") as f:
        return subprocess.run([sys.executable, "-c", WRITE_LINES, str(limit), str(n), line, str(repeat)], stdout=f,
                              stderr=subprocess.PIPE, text=True, timeout=60, cwd=ROOT)


@pytest.mark.parametrize("text, repeat", [("museums in Paris are amazing", 1), ("x", 3_000_000)], ids=["short", "3MB"])
def test_a_file_size_limit_on_stdout_leaves_only_complete_lines(tmp_path, text, repeat):
    """RLIMIT_FSIZE makes the kernel refuse writes past 200 kB (EFBIG), as a full disk would:
    stdout, a regular file, is cut back to its last complete line, and the message counts them."""
    out = tmp_path / "out.txt"
    line = text * repeat
    r = write_lines(out, 200_000, 400_000 if repeat == 1 else 3, text, repeat)
    assert r.returncode == 2, r.stderr
    written = out.read_bytes()
    n = written.count(b"\n")
    assert written.endswith(b"\n") or written == b""
    assert written.decode().splitlines() == [f"{i} {line}" for i in range(n)]
    assert f"stdout: cannot write (File too large) after {n:,} complete lines" in r.stderr
    assert (n > 1000) == (len(line) < 100)  # the short lines filled 200 kB; no 3 MB line fits


def test_stdout_to_dev_full_is_a_one_line_error():
    with open("/dev/full", "wb") as f:
        r = subprocess.run([sys.executable, "-c", WRITE_LINES, "0", "100000", "x", "1"], stdout=f,
                           stderr=subprocess.PIPE, text=True, timeout=60, cwd=ROOT)
    assert r.returncode == 2 and r.stderr == ("started\nstdout: cannot write (No space left on device) after 0 complete "
                                              "lines; the disk is full; free some space or write elsewhere\n")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["INT", "TERM"])
def test_a_signal_stops_the_writer_after_a_complete_line(tmp_path, sig):
    out = tmp_path / "out.txt"
    with open(out, "wb") as f:
        p = subprocess.Popen([sys.executable, "-c", WRITE_LINES, "0", str(10**9), "museums in Paris", "1"], stdout=f,
                             stderr=subprocess.PIPE, text=True, cwd=ROOT)
        assert p.stderr.readline() == "started\n"
        time.sleep(0.3)
        p.send_signal(sig)
        _, err = p.communicate(timeout=30)
    written = out.read_bytes()
    n = written.count(b"\n")
    assert p.returncode == 128 + sig and err == f"{int(sig)} after {n}\n"
    assert n > 10 and written.endswith(b"\n")
    assert written.decode().splitlines() == [f"{i} museums in Paris" for i in range(n)]
