"""UsageLedger: usage rows and token calibration, on both backends: a real SQLite file and a real PostgreSQL database."""

import pytest


@pytest.fixture
def store(backend_store):
    return backend_store




def test_usage_and_calibration_rows(store):
    store.usage.record_usage(conversation_id=None, user_id=None, model="m", outcome="complete",
                       prompt_tokens=100, cached_tokens=80, completion_tokens=20)
    assert store.usage.usage_totals() == {"requests": 1, "prompt_tokens": 100, "cached_tokens": 80,
                                    "completion_tokens": 20}
    store.usage.save_calibration("m", 1.1)
    store.usage.save_calibration("m", 1.2)
    assert store.usage.calibration_ratios() == {"m": 1.2}
    assert store.db.execute("SELECT samples FROM calibration").fetchone()[0] == 2
