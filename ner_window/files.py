"""The one place that writes user-visible files: whole or not at all, and a clear error when it cannot.

API for other engineers (these names are stable):

    write_bytes_atomic(path, data)   a temporary file in the target's directory, then os.replace
    write_text_atomic(path, text)    the same, UTF-8
    write_dir_atomic(target, write)  write(tmp_dir) fills a temporary sibling directory, then
                                     two renames swap it in (see read_checkpoint for a kill
                                     between the two)
    line_writer(path=None) -> LineWriter
        streaming output in whole lines, for `predict` and anything that writes as it goes:
            with line_writer(path) as out:      # None or "-": stdout
                out.write(text)                 # any text; lines end with \\n
            out.lines                           # complete lines written so far
        To stdout, whole lines go out as they are ready; if the write fails or a signal stops
        the process, the output ends after a complete line (a regular file that stdout
        points at is cut back to it).  To a path, the file appears whole at the end (a
        temporary beside it, then a rename), or not at all.
    signal_handlers(on_signal)       context: on_signal for SIGINT and SIGTERM (main thread), then
                                     the previous handlers
    signals_raise()                  context: SIGINT and SIGTERM raise Signalled (a
                                     KeyboardInterrupt with .signum), except inside a
                                     LineWriter's write, which finishes first
    write_error(path, oserror) -> WriteError   the one-line message for a failed write

Every OSError of a write (EACCES, ENOSPC, EROFS, ENOTDIR, EFBIG, EPIPE, ...) becomes a
WriteError that names the path, the cause and what to do; the CLI prints it on one line
and exits with 2.  (EPIPE on stdout is the exception: the reader left, as after `| head`;
it stays BrokenPipeError, which the CLI ends quietly.)

A reader therefore never sees half a file, and a failure leaves the previous version
whole.  The temporary lives in the target's own directory, so that os.replace is a rename
within one file system, which POSIX makes atomic.  Files are created with mode 0o666 and
directories 0o777, less the umask, as open() and mkdir() create them.  A path that exists
and is not a regular file (/dev/stdout, a FIFO) is written directly: it cannot be replaced.
A symbolic link is followed: the file it points at is replaced, the link stays.
"""

from __future__ import annotations

import contextlib
import errno
import io
import itertools
import os
import shutil
import signal
import stat
import sys
import threading
from pathlib import Path
from typing import Callable

from .errors import WriteError

_serial = itertools.count()  # with the pid and thread: a temporary name no other writer is using

ADVICE = {
    errno.EACCES: "no permission to write there; choose another path or change the directory's permissions",
    errno.EPERM: "not permitted; choose another path",
    errno.ENOSPC: "the disk is full; free some space or write elsewhere",
    errno.EDQUOT: "the disk quota is used up; free some space or write elsewhere",
    errno.EROFS: "the file system is read-only; write elsewhere",
    errno.ENOTDIR: "a part of the path is a file, not a directory; fix the path",
    errno.ENOENT: "its directory does not exist; create it or fix the path",
    errno.EISDIR: "it is a directory; give a file path",
    errno.EFBIG: "the file would exceed the size this process may write (ulimit -f); raise the limit",
    errno.EPIPE: "the reader closed the pipe",
    errno.ENAMETOOLONG: "the name is too long; choose a shorter path",
    errno.EIO: "the device reported an input/output error; check the disk",
}


def write_error(path, e: OSError, after: str = "") -> WriteError:
    """A WriteError naming ``path``, the cause (e.strerror) and what to do; ``after`` says what was done."""
    cause = e.strerror or type(e).__name__
    advice = ADVICE.get(e.errno, "check the path and the disk")
    return WriteError(f"{os.fspath(path)}: cannot write ({cause}){after}; {advice}")


def _real_target(path) -> tuple[str, bool]:
    """(the path to write, whether it can be replaced by a rename): a link is followed; a device
    or FIFO is written in place."""
    path = os.path.realpath(os.fspath(path)) if os.path.islink(path) else os.path.abspath(os.fspath(path))
    try:
        return path, stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return path, True  # does not exist (yet): created by the rename


def _create_temp(path: str) -> tuple[int, str]:
    """An open descriptor and the name of a new temporary file beside ``path``."""
    directory, name = os.path.split(path)
    while True:
        tmp = os.path.join(directory, f".{name}.{os.getpid()}-{threading.get_ident()}-{next(_serial)}.tmp")
        try:  # O_EXCL: never write into another file; mode 0o666 less the umask, as open() gives
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:  # left behind by a killed process that had this pid
            continue


def _write_all(fd: int, data) -> int:
    """os.write until all of ``data`` is out (a write may take only part); the bytes written.
    An OSError carries the bytes written before it as ``.written``."""
    view, done = memoryview(data), 0
    try:
        while done < len(view):
            done += os.write(fd, view[done:])
    except OSError as e:
        e.written = done
        raise
    return done


def _sync_dir(directory: str) -> None:
    """fsync a directory, so a rename in it survives a power cut (best effort: not every
    file system can)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _make_dirs(directory: Path) -> None:
    """mkdir -p; a part of the path that is a file is ENOTDIR (mkdir says "File exists")."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(directory)) from None


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file beside it and a rename; WriteError if it cannot."""
    shown = os.fspath(path)
    path, replaceable = _real_target(path)
    if not replaceable:  # /dev/stdout, a FIFO: written in place
        try:
            with open(path, "wb") as f:
                f.write(data)
        except OSError as e:
            raise write_error(shown, e) from None
        return
    tmp = None
    try:
        fd, tmp = _create_temp(path)
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        tmp = None
    except OSError as e:
        raise write_error(shown, e) from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    _sync_dir(os.path.dirname(path))


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """write_bytes_atomic of ``text`` encoded as UTF-8."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_dir_atomic(target: str | os.PathLike, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp_dir)``, then move ``tmp_dir`` to ``target``, replacing it only once complete.

    The previous ``target`` is renamed to ``.NAME.old-PID`` first and removed after the
    new one is in place; a kill between the two renames leaves that complete old copy
    (a signal caught by signals_raise waits until both are done).  An OSError on the way
    is a WriteError naming ``target``; the previous ``target`` is then still whole.
    """
    target = Path(target)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    try:
        _make_dirs(target.parent)
        for leftover in (tmp, old):  # from a killed process that had this pid
            shutil.rmtree(leftover, ignore_errors=True)
        tmp.mkdir()
        write(tmp)
        with _deferred_signals():
            moved = target.exists()
            if moved:
                os.replace(target, old)
            try:
                os.replace(tmp, target)
            except OSError:
                if moved:
                    os.replace(old, target)  # put the previous one back
                raise
    except OSError as e:
        raise write_error(target, e) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if target.exists():
            shutil.rmtree(old, ignore_errors=True)
    _sync_dir(str(target.parent))


# --- signals ---------------------------------------------------------------------------


class Signalled(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived inside signals_raise(); the usual exit code is 128 + signum.

    ``done``: what had been written when it arrived (set by whoever knows, e.g. predict)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.done = ""


_defer = threading.local()  # .depth: inside a write that must finish; .pending: a signal that waits


@contextlib.contextmanager
def _deferred_signals():
    """A signal that arrives inside is raised when the block ends (see signals_raise)."""
    _defer.depth = getattr(_defer, "depth", 0) + 1
    try:
        yield
    finally:
        _defer.depth -= 1
    pending = getattr(_defer, "pending", None)
    if pending is not None and _defer.depth == 0:
        _defer.pending = None
        raise Signalled(pending)


@contextlib.contextmanager
def signal_handlers(on_signal):
    """on_signal(signum, frame) for SIGINT and SIGTERM while inside, the previous handlers after.
    Main thread only (Python runs handlers there); elsewhere a no-op."""
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def signals_raise():
    """While inside, SIGINT and SIGTERM raise Signalled where the program is, so that every
    ``finally`` runs (temporary files are removed) -- except inside a LineWriter's write or
    write_dir_atomic's renames, which finish first.  Main thread only; elsewhere a no-op."""

    def on_signal(signum, frame):  # noqa: ARG001
        if getattr(_defer, "depth", 0):
            _defer.pending = signum
            return
        raise Signalled(signum)

    with signal_handlers(on_signal):
        yield


# --- streaming output ------------------------------------------------------------------


class LineWriter:
    """Text out in whole lines: to stdout as it comes, or to a file that appears whole at the end.

    Use through ``line_writer(path)``.  ``write(text)`` buffers; every FLUSH_CHARS characters
    the complete lines go out (a line longer than MAX_PENDING_CHARS goes out in parts).
    ``lines`` counts the complete lines written.  See the module docstring for failures.
    """

    FLUSH_CHARS = 1 << 16
    MAX_PENDING_CHARS = 1 << 20

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = None if path is None or os.fspath(path) == "-" else os.fspath(path)
        self.name = "stdout" if self.path is None else self.path
        self.lines = 0
        self._parts: list[str] = []
        self._size = 0
        self._next_flush = self.FLUSH_CHARS
        self._fd: int | None = None  # where the bytes go (None: self._stream)
        self._stream = None  # stdout's binary (or text) stream when it has no descriptor
        self._tmp: str | None = None  # the temporary file that becomes self.path
        self._target = None
        self._good = self._pos = 0  # file offsets: end of the last complete line; end of what was written
        self._truncate = False  # may cut the file back to self._good (a regular file, not O_APPEND)

    # -- opening and closing

    def open(self) -> "LineWriter":
        try:
            if self.path is None:
                self._open_stdout()
            else:
                target, replaceable = _real_target(self.path)
                if replaceable:
                    self._fd, self._tmp = _create_temp(target)
                    self._target = target
                else:
                    self._fd = os.open(target, os.O_WRONLY)
        except OSError as e:
            raise write_error(self.name, e) from None
        return self

    def _open_stdout(self) -> None:
        out = sys.stdout
        out.flush()  # whatever was printed before comes first
        try:
            self._fd = out.fileno()
        except (AttributeError, ValueError, OSError):  # io.UnsupportedOperation: a test's captured stdout
            self._stream = getattr(out, "buffer", out)
            return
        st = os.fstat(self._fd)
        if stat.S_ISREG(st.st_mode):
            import fcntl  # lazy: POSIX only, and only needed here

            self._truncate = not fcntl.fcntl(self._fd, fcntl.F_GETFL) & os.O_APPEND
            self._good = self._pos = os.lseek(self._fd, 0, os.SEEK_CUR)

    def __enter__(self) -> "LineWriter":
        return self

    def __exit__(self, kind, error, tb) -> None:
        if kind is None:
            self.close()
        else:
            self.abort(error)

    def close(self) -> None:
        """Write what is buffered; a file target is then renamed into place."""
        self._flush(final=True)
        if self._tmp is not None:
            try:
                os.fsync(self._fd)
                os.close(self._fd)
                self._fd = None
                os.replace(self._tmp, self._target)
                self._tmp = None
            except OSError as e:
                self.abort(e)
                raise write_error(self.name, e) from None
            _sync_dir(os.path.dirname(self._target))
        elif self.path is not None and self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def abort(self, error: BaseException | None = None) -> None:
        """Stop after a failure: stdout keeps its complete lines (the buffered ones are written
        unless the failure was a write's own); a file target is removed, unwritten."""
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                if self._fd is not None:
                    os.close(self._fd)
                os.unlink(self._tmp)
            self._fd = self._tmp = None
            self.lines = 0
            return
        if not isinstance(error, (OSError, WriteError)):
            with contextlib.suppress(OSError, WriteError):
                self._flush(final=False)
        if self._truncate and self._pos > self._good:  # a long line went out in part: cut it off
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._good)
                os.lseek(self._fd, self._good, os.SEEK_SET)
        if self.path is not None and self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    # -- writing

    def write(self, text: str) -> None:
        """Buffer ``text``; the complete lines go out every FLUSH_CHARS characters."""
        self._parts.append(text)
        self._size += len(text)
        if self._size >= self._next_flush:
            self._flush(final=False)

    def _flush(self, final: bool) -> None:
        if not self._parts:
            return
        text = "".join(self._parts)
        cut = len(text) if final or len(text) >= self.MAX_PENDING_CHARS else text.rfind("\n") + 1
        self._parts, self._size = ([text[cut:]], len(text) - cut) if cut < len(text) else ([], 0)
        # a line still unfinished: look again when the buffer has doubled, not at every write
        self._next_flush = max(self.FLUSH_CHARS, 2 * self._size)
        if cut:
            self._emit(text[:cut].encode("utf-8"))

    def _emit(self, data: bytes) -> None:
        """Write ``data``, finishing even if a signal arrives; count and remember its complete lines."""
        done = 0
        with _deferred_signals():
            try:
                if self._fd is not None:
                    done = _write_all(self._fd, data)
                else:
                    done = self._write_stream(data)
            except OSError as e:
                done = getattr(e, "written", 0)
                self._count(data, done)
                if e.errno == errno.EPIPE and self.path is None:
                    raise  # the reader left (| head): the CLI ends quietly
                raise write_error(self.name, e, f" after {self.lines:,} complete lines") from None
            self._count(data, done)

    def _write_stream(self, data: bytes) -> int:
        stream = self._stream
        if isinstance(stream, io.TextIOBase):
            stream.write(data.decode("utf-8"))
        else:
            stream.write(data)
        stream.flush()
        return len(data)

    def _count(self, data: bytes, done: int) -> None:
        last = data.rfind(b"\n", 0, done)
        if last >= 0:
            self.lines += data.count(b"\n", 0, last + 1)
            self._good = self._pos + last + 1
        self._pos += done


def line_writer(path: str | os.PathLike | None = None) -> LineWriter:
    """A LineWriter to ``path`` (None or "-": stdout), opened; use it in a ``with`` block."""
    return LineWriter(path).open()
