"""Images for personas: reading card text out of PNG files, writing PNG cards, avatars.

Reading walks the PNG chunk list by hand instead of opening the image with Pillow: a
card's text chunk usually sits after the pixel data (SillyTavern inserts it just before
`IEND`), and Pillow only reaches those chunks by decoding every pixel, which is slow
and an opening for decompression bombs. The walk is bounded: every text value has a
size limit, compressed ones (`zTXt`, compressed `iTXt`) are inflated with that limit,
and CRCs are not checked (card tools in the wild do not always get them right).

Writing uses Pillow: the avatar is decoded (after a pixel-count check), scaled down to
`MAX_AVATAR_SIDE`, and saved as a fresh PNG with only our own `tEXt` chunks, so stale
card data in an uploaded image never leaks into an export. Without an avatar a
placeholder is drawn: the persona's initials on a colour derived from its id, so the
same persona always gets the same picture.
"""

from __future__ import annotations

import colorsys
import hashlib
import io
import re
import zlib

from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError
from PIL.PngImagePlugin import PngInfo

from personas.errors import PersonaError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_TEXT_VALUE_BYTES = 8 * 1024 * 1024
MAX_AVATAR_PIXELS = 40_000_000
MAX_AVATAR_SIDE = 1024
PLACEHOLDER_SIZE = (400, 600)


def is_png(data: bytes) -> bool:
    return data.startswith(PNG_SIGNATURE)


def read_png_text(data: bytes, keywords: set[str]) -> dict[str, str]:
    """The text of the wanted `tEXt`/`zTXt`/`iTXt` chunks, keyed by lowercased keyword.

    The first chunk with a keyword wins. Raises PersonaError for a file that is not a
    PNG or whose chunk list is cut short.
    """
    if not is_png(data):
        raise PersonaError("not a PNG file")
    found: dict[str, str] = {}
    position = len(PNG_SIGNATURE)
    while position < len(data):
        if position + 8 > len(data):
            raise PersonaError("the PNG file is cut short (damaged or incomplete download)")
        length = int.from_bytes(data[position : position + 4], "big")
        chunk_type = data[position + 4 : position + 8]
        body_start = position + 8
        body_end = body_start + length
        if body_end + 4 > len(data):
            raise PersonaError("the PNG file is cut short (damaged or incomplete download)")
        if chunk_type == b"IEND":
            break
        if chunk_type in (b"tEXt", b"zTXt", b"iTXt"):
            # Only wanted chunks are decoded: a picture's big (or compressed) comment is
            # none of our business and must not make the card unreadable.
            keyword = data[body_start : min(body_end, body_start + 80)].partition(b"\0")[0].decode("latin-1").lower()
            if keyword in keywords and keyword not in found:
                _, text = _decode_text_chunk(chunk_type, data[body_start:body_end])
                if text is not None:
                    found[keyword] = text
        position = body_end + 4
    return found


def _decode_text_chunk(chunk_type: bytes, body: bytes) -> tuple[str, str | None]:
    raw_keyword, _, rest = body.partition(b"\0")
    keyword = raw_keyword.decode("latin-1").lower()
    if chunk_type == b"tEXt":
        return keyword, _limited(rest).decode("latin-1")
    if chunk_type == b"zTXt":
        if not rest or rest[0] != 0:
            return keyword, None
        return keyword, _inflate(rest[1:]).decode("latin-1")
    # iTXt: compression flag, method, language tag \0, translated keyword \0, UTF-8 text.
    if len(rest) < 2:
        return keyword, None
    compressed = rest[0] == 1
    _language, _, rest = rest[2:].partition(b"\0")
    _translated, _, text = rest.partition(b"\0")
    raw = _inflate(text) if compressed else _limited(text)
    return keyword, raw.decode("utf-8", errors="replace")


def _limited(raw: bytes) -> bytes:
    if len(raw) > MAX_TEXT_VALUE_BYTES:
        raise PersonaError(f"a PNG text chunk is over {MAX_TEXT_VALUE_BYTES // (1024 * 1024)} MB")
    return raw


def _inflate(compressed: bytes) -> bytes:
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(compressed, MAX_TEXT_VALUE_BYTES + 1)
    except zlib.error:
        raise PersonaError("a compressed PNG text chunk is damaged") from None
    return _limited(raw)


def open_avatar(image_bytes: bytes) -> Image.Image:
    """Decode an uploaded avatar (any format Pillow reads), scaled to fit MAX_AVATAR_SIDE."""
    try:
        image = Image.open(io.BytesIO(image_bytes))
        if image.width * image.height > MAX_AVATAR_PIXELS:
            raise PersonaError(
                f"the avatar is {image.width}x{image.height} pixels; use an image under "
                f"{MAX_AVATAR_PIXELS // 1_000_000} megapixels"
            )
        image.load()
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, SyntaxError) as exc:
        if isinstance(exc, PersonaError):
            raise
        raise PersonaError("the avatar is not an image that can be read (use PNG, JPEG or WebP)") from None
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    image = image.convert("RGBA" if has_alpha else "RGB")
    image.thumbnail((MAX_AVATAR_SIDE, MAX_AVATAR_SIDE))
    return image


def avatar_png(image_bytes: bytes) -> bytes:
    """An uploaded avatar as a clean PNG (no metadata, at most MAX_AVATAR_SIDE pixels a side)."""
    return png_with_text(open_avatar(image_bytes), {})


def png_with_text(image: Image.Image, text_chunks: dict[str, str]) -> bytes:
    """`image` saved as PNG carrying exactly the given `tEXt` chunks."""
    info = PngInfo()
    for keyword, text in text_chunks.items():
        info.add_text(keyword, text)
    output = io.BytesIO()
    image.save(output, format="PNG", pnginfo=info)
    return output.getvalue()


def placeholder_avatar(persona_id: str, name: str) -> Image.Image:
    """Initials on a colour derived from the id: stable for a persona, distinct between them."""
    digest = hashlib.sha256(persona_id.encode("utf-8")).digest()
    hue = int.from_bytes(digest[:2], "big") / 65535
    red, green, blue = colorsys.hls_to_rgb(hue, 0.45, 0.5)
    image = Image.new("RGB", PLACEHOLDER_SIZE, (round(red * 255), round(green * 255), round(blue * 255)))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=PLACEHOLDER_SIZE[0] * 2 // 5)
    width, height = PLACEHOLDER_SIZE
    draw.text((width / 2, height / 2), initials(name, persona_id), fill=(255, 255, 255), font=font, anchor="mm")
    return image


def initials(name: str, persona_id: str) -> str:
    """Up to two capital letters for a placeholder; from the id when the name has no Latin letters.

    The bundled font has no CJK glyphs, and a stable ASCII id is always at hand.
    """
    words = re.findall(r"[A-Za-z0-9]+", name) or re.findall(r"[a-z0-9]+", persona_id) or ["?"]
    return "".join(word[0] for word in words[:2]).upper()
