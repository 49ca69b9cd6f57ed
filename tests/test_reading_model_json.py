"""JSON as models really write it."""

import pytest

from memory.reading.model_json import parse_model_json, string_list, text_field


@pytest.mark.parametrize("reply, expected", [
    ('{"a": 1}', {"a": 1}),
    ('```json\n{"a": [1, 2]}\n```', {"a": [1, 2]}),
    ('Sure! Here you go:\n```\n[{"name": "Elizabeth"}]\n```\nLet me know.', [{"name": "Elizabeth"}]),
    ('Here: {"a": 1} and that is all {not json}', {"a": 1}),
    ('{"a": [1, 2,], }', {"a": [1, 2]}),
    ('{"characters": [{"name": "孙悟空", "line": "石猴"}, {"name": "唐僧", "li', {"characters": [
        {"name": "孙悟空", "line": "石猴"}, {"name": "唐僧"}]}),
    ('```json\n{"characters": [{"name": "A"}, {"name": "B"', {"characters": [{"name": "A"}, {"name": "B"}]}),
    ('{"text": "a \\"quoted\\" word, and a brace }"}', {"text": 'a "quoted" word, and a brace }'}),
])
def test_parses_what_models_write(reply, expected):
    assert parse_model_json(reply) == expected


@pytest.mark.parametrize("reply", ["", "I cannot help with that.", "{{char}} smiles", "[", '{"a": '])
def test_no_json_is_none(reply):
    assert parse_model_json(reply) is None


def test_fields_and_lists():
    data = {"name": "  Jane ", "tags": ["a", " b ", 3], "aliases": "行者、美猴王, Monkey", "empty": ""}
    assert text_field(data, "missing", "empty", "name") == "Jane"
    assert text_field(data, "tags") == ""  # not all strings
    assert string_list(data["aliases"]) == ["行者", "美猴王", "Monkey"]
    assert string_list(data["tags"]) == ["a", "b"] and string_list(None) == []
