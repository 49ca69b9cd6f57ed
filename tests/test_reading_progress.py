"""Progress stages and cancellation tokens."""

import threading

import pytest

from memory.reading.progress import Cancelled, CancelToken, Stages


def test_stages_map_onto_one_percentage_that_never_goes_back():
    seen = []
    stages = Stages(lambda stage, percent: seen.append((stage, percent)), {"extract": 1, "index": 3})
    stages.report("extract")
    stages.done("extract")
    stages.report("index", 0.5)
    stages.report("extract", 0.1)  # a late report from an earlier stage
    stages.report("index", 2.0)
    assert seen == [("extract", 0), ("extract", 25), ("index", 62), ("extract", 62), ("index", 100)]
    Stages(None, {"a": 1}).report("a", 0.5)  # no callback: nothing happens


def test_a_token_cancelled_from_another_thread_stops_the_job():
    token = CancelToken()
    token.check()
    thread = threading.Thread(target=token.cancel)
    thread.start()
    thread.join()
    assert token.cancelled
    with pytest.raises(Cancelled):
        token.check()
