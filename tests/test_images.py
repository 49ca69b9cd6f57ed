"""PNG text chunks read by hand (bounded, wherever they sit), avatars and placeholders."""

from __future__ import annotations

import io
import zlib

import pytest
from PIL import Image

from personas import PersonaError
from personas.images import (
    MAX_AVATAR_SIDE,
    MAX_TEXT_VALUE_BYTES,
    avatar_png,
    initials,
    placeholder_avatar,
    read_png_text,
)
from tests.card_samples import chunk, png_with_chunk_before_iend, png_with_pillow_text


def test_reads_wanted_keywords_case_insensitively_first_wins():
    data = png_with_pillow_text({"Chara": "first", "other": "x"})
    iend = data.rindex(b"IEND") - 4
    data = data[:iend] + chunk(b"tEXt", b"chara\0second") + data[iend:]
    assert read_png_text(data, {"chara"}) == {"chara": "first"}
    assert read_png_text(png_with_chunk_before_iend("chara", "late"), {"chara", "ccv3"}) == {"chara": "late"}


def test_oversized_compressed_chunk_is_refused():
    body = b"chara\0\0" + zlib.compress(b"A" * (MAX_TEXT_VALUE_BYTES + 10))
    plain = png_with_pillow_text({})
    iend = plain.rindex(b"IEND") - 4
    data = plain[:iend] + chunk(b"zTXt", body) + plain[iend:]
    with pytest.raises(PersonaError, match="text chunk is over"):
        read_png_text(data, {"chara"})


def test_damaged_compressed_chunk():
    plain = png_with_pillow_text({})
    iend = plain.rindex(b"IEND") - 4
    data = plain[:iend] + chunk(b"zTXt", b"chara\0\0not zlib") + plain[iend:]
    with pytest.raises(PersonaError, match="damaged"):
        read_png_text(data, {"chara"})


def test_truncated_png():
    data = png_with_pillow_text({"chara": "x"})
    with pytest.raises(PersonaError, match="cut short"):
        read_png_text(data[:40], {"chara"})


def test_avatar_png_scales_down_and_keeps_transparency():
    big = Image.new("RGBA", (2000, 1000), (0, 0, 0, 0))
    output = io.BytesIO()
    big.save(output, format="PNG")
    result = Image.open(io.BytesIO(avatar_png(output.getvalue())))
    assert result.size == (MAX_AVATAR_SIDE, MAX_AVATAR_SIDE // 2)
    assert result.mode == "RGBA"


def test_avatar_from_jpeg():
    output = io.BytesIO()
    Image.new("RGB", (30, 40), (1, 2, 3)).save(output, format="JPEG")
    assert Image.open(io.BytesIO(avatar_png(output.getvalue()))).format == "PNG"


def test_placeholder_initials():
    assert initials("Captain Mara Vale", "mara") == "CM"
    assert initials("林夕", "linxi") == "L"
    assert initials("林夕", "persona-1a2b3c4d") == "P1"
    assert initials("", "") == "?"
    assert placeholder_avatar("a", "Alice").size == (400, 600)
