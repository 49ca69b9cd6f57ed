"""Reading model output for background tasks: fences, prose around JSON, cut-off answers."""

import pytest

from memory.model_tasks import conversation_language, json_items, strip_fences


@pytest.mark.parametrize("answer, texts", [
    ('{"facts": [{"text": "a"}, {"text": "b"}]}', ["a", "b"]),
    ('```json\n{"facts": [{"text": "a"}]}\n```', ["a"]),
    ('Here are the facts:\n{"facts": [{"text": "a"}]}\nHope this helps!', ["a"]),
    ('[{"text": "a"}, {"text": "b"}]', ["a", "b"]),
    ('{"facts": [{"text": "a"}, {"text": "b"}, {"text": "c', ["a", "b"]),  # cut off mid-answer
    ('{"text": "lonely"}', ["lonely"]),
    ('{"facts": []}', []),
    ("I found nothing worth keeping.", []),
    ('{"facts": [{"text": "a"}, 3, "x"]}', ["a"]),
])
def test_json_items_recovers_what_it_can(answer, texts):
    assert [item["text"] for item in json_items(answer, "facts")] == texts


def test_strip_fences():
    assert strip_fences("```\nsummary\n```") == "summary"
    assert strip_fences("  plain  ") == "plain"


def test_conversation_language():
    assert conversation_language(["今天我们去公园散步了，天气很好。"]) == "zh"
    assert conversation_language(["We walked in the park, the weather was lovely."]) == "en"
    assert conversation_language(["我今天 met Marcus at the café，很开心"]) == "zh"
    assert conversation_language(["😀", "123"], hint="zh-CN") == "zh"
    assert conversation_language([""]) == "en"
