import codecs

import pytest

from memory.documents.encoding import (
    decode_text,
    looks_binary,
    normalize_label,
    sniff_declared_charset,
)
from memory.documents.errors import DocumentError, ErrorCode
from tests.fakes.documents import shared_data_file

SIMPLIFIED = "第一回　灵根育孕源流出\n\n　　诗曰：混沌未分天地乱，茫茫渺渺无人见。我们都是中国人，他说了一个好故事。\n" * 20
TRADITIONAL = (
    "話說天下大勢，分久必合，合久必分。周末七國分爭，並入於秦。及秦滅之後，楚、漢分爭，又並入於漢。"
    "漢朝自高祖斬白蛇而起義，一統天下，後來光武中興，傳至獻帝，遂分為三國。他們說這個故事很長。\n"
) * 20
ENGLISH = "It is a truth universally acknowledged, that a single man in possession of a good fortune.\n" * 20


@pytest.mark.parametrize(
    ("bom", "codec", "expected"),
    [
        (codecs.BOM_UTF8, "utf-8", "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le", "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be", "utf-16-be"),
        (codecs.BOM_UTF32_LE, "utf-32-le", "utf-32-le"),
        (codecs.BOM_UTF32_BE, "utf-32-be", "utf-32-be"),
    ],
)
def test_bom_decides(bom, codec, expected):
    decoded = decode_text(bom + SIMPLIFIED.encode(codec))
    assert decoded.encoding == expected
    assert decoded.text == SIMPLIFIED


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
@pytest.mark.parametrize("text", [ENGLISH, SIMPLIFIED, ENGLISH + SIMPLIFIED])
def test_utf16_without_bom(codec, text):
    decoded = decode_text(text.encode(codec))
    assert decoded.encoding == codec
    assert decoded.text == text


def test_strict_utf8():
    decoded = decode_text(SIMPLIFIED.encode("utf-8"))
    assert (decoded.encoding, decoded.text) == ("utf-8", SIMPLIFIED)


def test_gb18030():
    decoded = decode_text(SIMPLIFIED.encode("gb18030"))
    assert (decoded.encoding, decoded.text) == ("gb18030", SIMPLIFIED)


def test_big5():
    decoded = decode_text(TRADITIONAL.encode("big5"))
    assert decoded.encoding in ("cp950", "big5hkscs")
    assert decoded.text == TRADITIONAL


def test_big5_bytes_also_decode_as_gb18030_but_big5_wins_on_evidence():
    data = TRADITIONAL.encode("big5")
    data.decode("gb18030")  # the ambiguity this test is about: no exception
    assert decode_text(data).text == TRADITIONAL


def test_gb_text_that_also_decodes_as_big5_stays_gb18030():
    text = "中文Abc混合English文本\n" * 5
    data = text.encode("gb18030")
    data.decode("cp950")  # decodes (as nonsense) under Big5 too
    decoded = decode_text(data)
    assert (decoded.encoding, decoded.text) == ("gb18030", text)


def test_declared_charset_is_tried_before_guessing():
    text = "Ça coûte dix euros, dit-elle. Très cher ! " * 10
    decoded = decode_text(text.encode("cp1252"), declared="windows-1252")
    assert (decoded.encoding, decoded.text) == ("cp1252", text)


def test_a_wrong_declaration_loses_to_valid_utf8():
    decoded = decode_text(SIMPLIFIED.encode("utf-8"), declared="gbk")
    assert decoded.encoding == "utf-8"


def test_western_single_byte_text_goes_to_the_detector():
    text = "“Hello,” she said. “It’s fine—really.” The café owners agreed.\n" * 10
    decoded = decode_text(text.encode("cp1252"))
    assert decoded.text == text
    assert decoded.encoding in ("cp1252", "cp1250", "latin_1", "iso8859_15")


def test_undetectable_bytes_are_refused_with_a_clear_message():
    # Bytes that are neither UTF-8 nor double-byte Chinese nor anything
    # charset-normalizer will vouch for.
    with pytest.raises(DocumentError) as error:
        decode_text(bytes(range(0x80, 0x100)) * 4 + b"\x00\x81\x00\xff" * 50)
    assert error.value.code is ErrorCode.ENCODING
    assert "UTF-8" in error.value.message


def test_whole_novel_in_gb18030():
    text = shared_data_file("xiyouji.utf8.txt").read_text(encoding="utf-8")
    decoded = decode_text(text.encode("gb18030"))
    assert decoded.encoding == "gb18030"
    assert decoded.text == text


@pytest.mark.parametrize(
    ("html", "charset"),
    [
        (b'<html><head><meta charset="gbk"></head>', "gbk"),
        (b"<meta charset=big5>", "big5"),
        (b'<meta http-equiv="Content-Type" content="text/html; charset=GB2312">', "GB2312"),
        (b'<?xml version="1.0" encoding="ISO-8859-1"?><html/>', "ISO-8859-1"),
        (b"<html><body>no declaration</body></html>", None),
    ],
)
def test_sniff_declared_charset(html, charset):
    assert sniff_declared_charset(html) == charset


@pytest.mark.parametrize(
    ("label", "codec"),
    [("GB2312", "gb18030"), ("gbk", "gb18030"), ("big5", "big5hkscs"), ("ISO-8859-1", "cp1252"), ("utf8", "utf-8"), ("nonsense", None), (None, None)],
)
def test_labels_map_the_way_browsers_read_them(label, codec):
    assert normalize_label(label) == codec


def test_looks_binary():
    assert looks_binary("\x00\x01\x02abc" * 100)
    assert not looks_binary("plain text\twith a tab\n" * 100)
    assert not looks_binary("")


def test_utf8_with_a_few_damaged_bytes_is_utf8_with_replacement_characters():
    # A stray byte, a broken pair and a download cut off mid-character.
    data = SIMPLIFIED.encode("utf-8")
    damaged = data[:300] + b"\xff" + data[300:600] + b"\xc3\x28" + data[600:] + "完".encode("utf-8")[:2]
    decoded = decode_text(damaged)
    assert decoded.encoding == "utf-8"
    assert decoded.text.count("\ufffd") == 3 and decoded.text.startswith(SIMPLIFIED[:50])
    # Many broken sequences per valid one is not damaged UTF-8: GB18030 still wins.
    assert decode_text(SIMPLIFIED.encode("gb18030")).encoding == "gb18030"
