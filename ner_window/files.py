"""The one place that writes user-visible files: whole or not at all.

Every file or directory the package leaves for a user -- a model directory, a
checkpoint, metrics.csv, the pictures, errors.txt, evaluate's --predictions and
--pr-curve, a CoNLL file, the word2vec cache -- is written through this module:

    write_bytes_atomic(path, data)   a temporary file in the target's directory, then os.replace
    write_text_atomic(path, text)    the same, UTF-8
    write_dir_atomic(target, write)  write(tmp_dir) fills a temporary sibling directory, then
                                     two renames swap it in (see read_checkpoint for a kill
                                     between the two)

A reader therefore never sees half a file, and a crash leaves the previous
version whole.  The temporary lives in the target's own directory, so that
os.replace is a rename within one file system, which POSIX makes atomic.
"""

from __future__ import annotations

import itertools
import os
import shutil
import threading
from pathlib import Path
from typing import Callable

_serial = itertools.count()  # with the pid and thread: a temporary name no other writer is using


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file beside it and a rename."""
    path = os.fspath(path)
    directory, name = os.path.split(os.path.abspath(path))
    while True:
        tmp = os.path.join(directory, f".{name}.{os.getpid()}-{threading.get_ident()}-{next(_serial)}.tmp")
        try:  # O_EXCL: never write into another file; mode 0o666 less the umask, as open() gives
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:  # left behind by a killed process that had this pid
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """write_bytes_atomic of ``text`` encoded as UTF-8."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_dir_atomic(target: str | os.PathLike, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp_dir)``, then move ``tmp_dir`` to ``target``, replacing it only once complete.

    The previous ``target`` is renamed to ``.NAME.old-PID`` first and removed after the
    new one is in place; a kill between the two renames leaves that complete old copy.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        write(tmp)
        if target.exists():
            os.replace(target, old)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
