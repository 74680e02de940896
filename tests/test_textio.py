"""textio.py: text to tag is decoded one way, or refused with the file, the byte offset and --encoding.

The expected lines come from Python's own codecs and str.split on the whole input, never
from textio; the expected byte offsets from bytes.index on the raw input.
"""

import codecs
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ner_window import textio
from ner_window.errors import DataError
from ner_window.textio import Piece, read_lines, read_pieces

TEXT = "Zürich 🇨🇭 is on the Limmat\r\nmuseums in Paris\n\nend"
LINES = ["Zürich 🇨🇭 is on the Limmat", "museums in Paris", "", "end"]


def lines_of(raw: bytes, **kw) -> list[str]:
    return list(read_lines(io.BytesIO(raw), **kw))


@pytest.mark.parametrize("raw", [
    TEXT.encode("utf-8"),
    codecs.BOM_UTF8 + TEXT.encode("utf-8"),
    codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le"),
    codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be"),
    codecs.BOM_UTF32_LE + TEXT.encode("utf-32-le"),
    TEXT.encode("utf-16"),  # Python writes the mark of the machine's byte order
], ids=["utf8", "utf8_bom", "utf16le_bom", "utf16be_bom", "utf32le_bom", "utf16_native"])
def test_a_byte_order_mark_decides_the_encoding_and_is_not_part_of_the_text(raw, monkeypatch):
    assert lines_of(raw) == LINES
    monkeypatch.setattr(textio, "BLOCK_BYTES", 3)  # marks, characters and CRLF cut between blocks
    assert lines_of(raw) == LINES


def test_line_endings():
    assert lines_of(b"") == []
    assert lines_of(b"\n") == [""]
    assert lines_of(b"a\nb") == ["a", "b"]  # no final newline
    assert lines_of(b"a\r\nb\r\n") == ["a", "b"]
    assert lines_of(b"a\rb\n") == ["a\rb"]  # a lone CR is not a line end (the tokenizer reads it as a space)
    assert lines_of(codecs.BOM_UTF8) == []


@pytest.mark.parametrize("raw, offset, line", [
    (b"museums in Z\xfcrich\n", 12, 1),  # Latin-1 u-umlaut
    (b"one\ntwo\nthree \xe9t\xe9\n", 14, 3),
    (b"ok\n" * 5 + b"caf\xc3", 18, 6),  # a UTF-8 sequence cut off by the end of the file
    (b"\xff\xff not a mark", 0, 1),
])
def test_invalid_utf8_names_the_file_the_byte_offset_the_line_and_encoding(tmp_path, monkeypatch, raw, offset, line):
    path = tmp_path / "in.txt"
    path.write_bytes(raw)
    assert raw[offset] >= 0x80 and raw.count(b"\n", 0, offset) + 1 == line  # the expected values, checked
    for block in (textio.BLOCK_BYTES, 4):
        monkeypatch.setattr(textio, "BLOCK_BYTES", block)
        with pytest.raises(DataError) as e:
            list(read_lines(path))
        msg = str(e.value)
        assert msg.startswith(f"{path}: byte 0x{raw[offset]:02x} at byte offset {offset} (line {line})"), msg
        assert "not valid UTF-8" in msg and "--encoding" in msg


def test_a_byte_offset_past_the_first_block_counts_every_byte(tmp_path, monkeypatch):
    raw = ("é" * 1000 + "\n").encode() * 3 + b"x\xe9"
    monkeypatch.setattr(textio, "BLOCK_BYTES", 999)  # odd: blocks end inside characters
    with pytest.raises(DataError, match=f"at byte offset {len(raw) - 1:,} \\(line 4\\)"):
        list(read_lines(io.BytesIO(raw)))


def test_encoding_option_names_the_codec():
    assert lines_of("Zürich\n".encode("latin-1"), encoding="latin-1") == ["Zürich"]
    assert lines_of("Zürich\n".encode("cp1252"), encoding="cp1252") == ["Zürich"]
    assert lines_of(codecs.BOM_UTF8 + b"x\n", encoding="utf8") == ["x"]  # the mark is still dropped
    assert lines_of(codecs.BOM_UTF8 + b"x", encoding="latin-1") == ["\xef\xbb\xbfx"]  # as the user asked
    assert lines_of("a\nb\n".encode("utf-16-be"), encoding="utf-16-be") == ["a", "b"]
    with pytest.raises(DataError, match="--encoding klingon: unknown encoding"):
        lines_of(b"x", encoding="klingon")
    with pytest.raises(DataError, match="byte 0x81 at byte offset 1 .* not valid cp1252; check --encoding cp1252"):
        lines_of(b"a\x81", encoding="cp1252")


@pytest.mark.parametrize("raw, where", [
    (bytes(range(256)), "byte offset 0 (line 1)"),
    (b"ab\ncd\x00", "byte offset 5 (line 2)"),
    ("museums in Paris\n".encode("utf-16-le"), "byte offset 1 (line 1)"),  # UTF-16 without a mark
])
def test_a_nul_character_means_binary_data(raw, where):
    with pytest.raises(DataError) as e:
        lines_of(raw)
    assert f"a NUL character at {where}: this is binary data" in str(e.value)
    assert "--encoding utf-16-le" in str(e.value)


def test_a_nul_character_in_utf16_text_is_refused_too():
    with pytest.raises(DataError, match="a NUL character at line 2: this is binary data, not text$"):
        lines_of("a\nb\x00".encode("utf-16"))


def test_paths_stdin_and_missing_files(tmp_path, monkeypatch):
    path = tmp_path / "in.txt"
    path.write_bytes(TEXT.encode())
    assert list(read_lines(path)) == list(read_lines(str(path))) == LINES
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"caf\xe9\n")))
    with pytest.raises(DataError, match="^stdin: byte 0xe9 at byte offset 3"):
        list(read_lines("-"))
    with pytest.raises(DataError, match="nope.txt: no such file"):
        list(read_lines(tmp_path / "nope.txt"))
    with pytest.raises(DataError, match="is a directory"):
        list(read_lines(tmp_path))


def test_a_long_line_comes_in_pieces_cut_after_whitespace():
    raw = b"aaa bbb\tccc ddd\neeeeeeeeee x\r\n\r\nab"
    pieces = list(read_pieces(io.BytesIO(raw), max_chars=6))
    assert pieces == [Piece("aaa ", 0, False), Piece("bbb\t", 4, False), Piece("ccc ", 8, False),
                      Piece("ddd", 12, True),
                      Piece("eeeeee", 0, False), Piece("eeee x", 6, True),  # no whitespace: cut at the limit
                      Piece("", 0, True), Piece("ab", 0, True)]


@settings(max_examples=300, deadline=None)
@given(text=st.text(st.sampled_from("ab é🇨\u3000 \t\r\n"), max_size=60), max_chars=st.integers(2, 9),
       block=st.integers(1, 9))
def test_pieces_join_to_the_lines_and_never_cut_a_word_that_fits(text, max_chars, block):
    expected = text.split("\n")
    if expected[-1] == "":
        expected.pop()
    expected = [line[:-1] if line.endswith("\r") else line for line in expected]
    textio.BLOCK_BYTES, saved = block, textio.BLOCK_BYTES
    try:
        pieces = list(read_pieces(io.BytesIO(text.encode()), max_chars=max_chars))
    finally:
        textio.BLOCK_BYTES = saved
    lines, current = [], ""
    for p in pieces:
        assert p.start == len(current) and len(p.text) <= max_chars
        if not p.last:  # cut after whitespace, unless max_chars characters hold none
            assert p.text[-1].isspace() or not any(c.isspace() for c in p.text)
        current += p.text
        if p.last:
            lines.append(current)
            current = ""
    assert current == "" and lines == expected
