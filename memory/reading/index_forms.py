"""The full-text index form of many passages at once, in numpy instead of Python.

`memory.textsearch.index_form` turns each CJK run into its overlapping bigrams with a
Python callback per run: for a 2-million-character Chinese novel that is 200,000
callbacks and a million small strings, a quarter of the whole ingestion. Here the
passages of a batch are joined (with NUL, which normalized text never holds), read as
UTF-32 code points, and every position writes at most four code points into a table:

* a character that is not CJK: itself;
* a CJK character followed by another: " c next " (a bigram between spaces);
* a CJK character standing alone: " c ";
* the last character of a longer run: nothing (it is in the bigram before it).

Empty slots are dropped, the result is decoded once and split at the NULs again. The text
differs from `index_form`'s only in spacing ("孙悟  悟空" for "孙悟 悟空"), so FTS5's
unicode61 tokenizer sees exactly the same tokens; a test holds the two to that. The
index stores nothing but these tokens for search (nobody reads the indexed text back),
and queries keep using `index_form`.
"""

from __future__ import annotations

import numpy as np

# The ranges of memory.textsearch._CJK_CHARS: Han (with extensions), kana, Hangul.
_CJK_RANGES = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x3040, 0x30FF), (0xAC00, 0xD7AF),
               (0x20000, 0x2FFFF))
_SPACE = np.uint32(ord(" "))
_SEPARATOR = "\x00"
_SKIP = np.uint32(0xFFFFFFFF)  # not a code point: a table slot that writes nothing


def index_forms(texts: list[str]) -> list[str]:
    """`index_form` of each text, tokenizing the same, computed for all at once."""
    if not texts:
        return []
    joined = _SEPARATOR.join(texts)
    if joined.isascii():
        return list(texts)
    codes = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32)
    cjk = np.zeros(len(codes), dtype=bool)
    for low, high in _CJK_RANGES:
        cjk |= (codes >= low) & (codes <= high)
    if not cjk.any():
        return list(texts)
    next_cjk = np.zeros_like(cjk)
    next_cjk[:-1] = cjk[1:]
    previous_cjk = np.zeros_like(cjk)
    previous_cjk[1:] = cjk[:-1]
    pair = cjk & next_cjk
    alone = cjk & ~next_cjk & ~previous_cjk
    opens = pair | alone  # the CJK characters that write a token
    following = np.zeros_like(codes)
    following[:-1] = codes[1:]
    # Each column filled by one np.where over the whole batch (masked assignments,
    # `table[pair, 1] = …`, took twice as long).
    table = np.empty((len(codes), 4), dtype=np.uint32)
    table[:, 0] = np.where(cjk, np.where(opens, _SPACE, _SKIP), codes)
    table[:, 1] = np.where(opens, codes, _SKIP)
    table[:, 2] = np.where(pair, following, np.where(alone, _SPACE, _SKIP))
    table[:, 3] = np.where(pair, _SPACE, _SKIP)
    flat = table.ravel()
    return flat[flat != _SKIP].tobytes().decode("utf-32-le").split(_SEPARATOR)
