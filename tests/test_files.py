"""files.py: a file or directory is replaced whole, or not at all."""

import os

import pytest

from ner_window.files import write_bytes_atomic, write_dir_atomic, write_text_atomic


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
