"""Turning the bytes of a text file into text: BOMs, UTF-16, UTF-8, GB18030, Big5.

Uploaded novels come in whatever their source used, mostly UTF-8, GB18030/GBK and
Big5, sometimes UTF-16 from Windows tools, with or without a BOM. The order:

1. a BOM decides (UTF-32, UTF-8, UTF-16; checked longest first);
2. NUL bytes that sit almost all at odd (or even) offsets mean BOM-less UTF-16 (real
   text files have no NULs otherwise, and BOM-less UTF-16 *is* valid UTF-8 when it is
   mostly ASCII, so this has to come before UTF-8);
3. strict UTF-8 over the whole file (C speed; multi-byte UTF-8 is self-checking, so a
   success is decisive);
4. an encoding the container declared (HTTP charset, ``<meta charset>``), if any;
4b. UTF-8 with a little damage (a download cut off mid-character, a stray byte from
   another encoding): when at least a hundred valid multi-byte characters stand for
   each broken sequence, the file is UTF-8 and the damage becomes U+FFFD. Text in any
   other encoding almost never forms valid multi-byte UTF-8, so this cannot steal a
   GB18030 or cp1252 file; without it, one bad byte in a UTF-8 novel was refused as
   "could not recognise the encoding" (or read as mojibake by the detector);
5. GB18030 and Big5 (cp950, then Big5-HKSCS) over the whole file. Big5 bytes often
   decode as GB18030 too, as nonsense, and short GB text can survive Big5. When both
   decode, the one whose text has more of the most common hanzi wins, and GB18030
   wins ties: a wrong double-byte codec produces rare characters. If even the winner
   has almost no common hanzi, the bytes are not Chinese (cp1252 smart quotes pair up
   with the next letter into valid GB18030) and go on to step 6;
5b. mixed files, pasted together from pages in two encodings (a GB18030 novel with a
   site's UTF-8 advertisements between chapters): line by line, strict UTF-8 or else
   GB18030, when every line decodes one way or the other and the GB18030 lines read
   as Chinese. The document's encoding is then the GB18030 of its text;
6. charset-normalizer, on a prefix only: it is thorough but slow (seconds on
   multi-megabyte input), so it is the fallback, not the first try.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from .errors import DocumentError, ErrorCode

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_DETECTOR_PREFIX_BYTES = 512 * 1024
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0e-\x1f]")
_DECLARED_CHARSET = re.compile(
    rb"""<\?xml[^>]*?encoding\s*=\s*["']?([A-Za-z0-9._:-]+)"""
    rb"""|<meta[^>]+?charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""",
    re.IGNORECASE,
)
# What browsers actually mean by these labels (WHATWG Encoding Standard).
_LABEL_ALIASES = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "big5": "big5hkscs",
    "big5-hkscs": "big5hkscs",
    "iso-8859-1": "cp1252",
    "latin-1": "cp1252",
    "latin1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
}


@dataclass(frozen=True, slots=True)
class DecodedText:
    text: str
    encoding: str  # a Python codec name, e.g. "utf-8", "gb18030", "cp950", "utf-16-le"


def decode_text(data: bytes, declared: str | None = None) -> DecodedText:
    """Decode a text file; `declared` is an encoding label its container named."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            return DecodedText(data[len(bom) :].decode(name, errors="replace"), name)
    utf16 = _bomless_utf16(data)
    if utf16 is not None:
        return utf16
    attempt = _try(data, "utf-8")
    if attempt is not None:
        return attempt
    codec = normalize_label(declared)
    if codec is not None:
        attempt = _try(data, codec)
        if attempt is not None:
            return attempt
    attempt = _damaged_utf8(data)
    if attempt is not None:
        return attempt
    attempt = _chinese_double_byte(data)
    if attempt is not None:
        return attempt
    attempt = _mixed_lines(data)
    if attempt is not None:
        return attempt
    return _detect(data)


def normalize_label(label: str | None) -> str | None:
    """Map an encoding label to a Python codec name; None if unknown."""
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    label = _LABEL_ALIASES.get(label, label)
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def sniff_declared_charset(data: bytes) -> str | None:
    """The encoding an HTML/XHTML document declares in its first 4 KB, if any."""
    match = _DECLARED_CHARSET.search(data[:4096])
    if match is None:
        return None
    return (match.group(1) or match.group(2)).decode("ascii")


def looks_binary(text: str) -> bool:
    """True if control characters make up more than 1% of the start of the text."""
    sample = text[:65536]
    return bool(sample) and len(_CONTROL_CHARS.findall(sample)) > len(sample) / 100


def _try(data: bytes, codec: str) -> DecodedText | None:
    try:
        return DecodedText(data.decode(codec), codec)
    except (UnicodeDecodeError, LookupError):
        return None


def _damaged_utf8(data: bytes) -> DecodedText | None:
    text = data.decode("utf-8", errors="replace")
    damaged = text.count("\ufffd")
    valid = len(text) - len(text.encode("ascii", "ignore")) - damaged  # non-ASCII, counted at C speed
    if damaged and valid >= 100 * damaged:
        return DecodedText(text, "utf-8")
    return None


def _bomless_utf16(data: bytes) -> DecodedText | None:
    sample = data[:65536]
    if b"\x00" not in sample or len(data) % 2:
        return None
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    if max(even, odd) < 0.7 * (even + odd):
        return None
    decoded = _try(data, "utf-16-le" if odd > even else "utf-16-be")
    if decoded is None or looks_binary(decoded.text):
        return None
    head = decoded.text[:65536]
    # Text in any language has line breaks or spaces; random binary rarely does.
    if head.count("\n") + head.count(" ") + head.count("\u3000") < len(head) / 1000:
        return None
    return decoded


def _chinese_double_byte(data: bytes) -> DecodedText | None:
    gb = _try(data, "gb18030")
    big5 = _try(data, "cp950") or _try(data, "big5hkscs")
    candidates = [candidate for candidate in (gb, big5) if candidate is not None]
    if not candidates:
        return None
    shares = [_common_hanzi_share(candidate.text) for candidate in candidates]
    if None in shares:
        return candidates[0]  # too few non-ASCII characters to judge: GB18030 first
    # max() keeps the first of equals, so GB18030 wins a tie.
    share, best = max(zip(shares, candidates, strict=True), key=lambda pair: pair[0])
    if share < 0.05:
        return None  # decodes, but as nonsense: a single-byte Western encoding, say
    return best


def _mixed_lines(data: bytes, codec: str = "gb18030") -> DecodedText | None:
    lines = []
    other = []
    for line in data.split(b"\n"):
        try:
            lines.append(line.decode("utf-8"))
            continue
        except UnicodeDecodeError:
            pass
        try:
            decoded = line.decode(codec)
        except UnicodeDecodeError:
            return None
        lines.append(decoded)
        other.append(decoded)
    share = _common_hanzi_share("".join(other))
    if share is None or share < 0.05:
        return None
    return DecodedText("\n".join(lines), codec)


# The most frequent Chinese characters, simplified and traditional. In real Chinese
# text they make up about a third of all non-ASCII characters; in bytes decoded with
# the wrong double-byte codec they are rare, which is the evidence step 5 weighs.
_COMMON_HANZI = (
    "的一是不了在人有我他这个们中来上大为和国地到以说时要就出会可也你对生能而子那得于着下"
    "自之年过发后作里用道行所然家种事成方多经么去法学如都同现当没动面起看定天分还进好小部"
    "其些主样理心她本前开但因只从想实日都见两长无问把头手又听走"
    "這個們來為國說時會對過發後裡經麼學當沒動還進樣開從實見兩長無問頭聽"
)


def _common_hanzi_share(text: str) -> float | None:
    """Share of common hanzi among the non-ASCII characters; None if too few to judge."""
    sample = text[:65536]
    non_ascii = len(sample) - len(sample.encode("ascii", errors="ignore"))
    if non_ascii < 20:
        return None
    common = sum(sample.count(char) for char in _COMMON_HANZI)
    return common / non_ascii


def _detect(data: bytes) -> DecodedText:
    from charset_normalizer import from_bytes  # imported late: only the fallback needs it

    prefix = data[:_DETECTOR_PREFIX_BYTES]
    if len(data) > len(prefix) and b"\n" in prefix:
        prefix = prefix[: prefix.rindex(b"\n") + 1]
    best = from_bytes(prefix).best()
    if best is None:
        raise DocumentError(
            ErrorCode.ENCODING,
            "Could not recognise the text encoding of this file. Save it as UTF-8 and send it again.",
        )
    codec = normalize_label(best.encoding) or "utf-8"
    return DecodedText(data.decode(codec, errors="replace"), codec)
