import dataclasses

import pytest

from memory.documents.limits import DEFAULT_LIMITS, MIB, DocumentLimits


def test_defaults():
    assert DEFAULT_LIMITS.max_document_bytes == 20 * MIB  # the official Bot API's download limit
    assert DEFAULT_LIMITS.max_expanded_bytes == 1024 * MIB
    assert DEFAULT_LIMITS.max_compression_ratio == 100
    assert DEFAULT_LIMITS.max_chars == 10_000_000
    assert DEFAULT_LIMITS.max_redirects == 5


def test_limits_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT_LIMITS.max_chars = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    "field", ["max_document_bytes", "max_expanded_bytes", "max_member_bytes", "max_compression_ratio", "max_chars", "fetch_timeout_seconds"]
)
def test_limits_must_be_positive(field):
    with pytest.raises(ValueError, match=field):
        DocumentLimits(**{field: 0})


def test_redirects_may_be_zero_but_not_negative():
    assert DocumentLimits(max_redirects=0).max_redirects == 0
    with pytest.raises(ValueError):
        DocumentLimits(max_redirects=-1)
