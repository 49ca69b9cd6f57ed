"""Pieces of the Telegram documents glue: links in messages, mentions, size refusals."""

from bot.settings import Settings
from bot.telegram.reading import ReadingDesk, links_in, without_mention

MB = 1024 * 1024


def test_links_are_found_without_trailing_punctuation_and_capped():
    message = "看 https://a.example/书.txt， and (http://b.example/x?y=1). again https://a.example/书.txt " \
              "http://c.example http://d.example"
    assert links_in(message) == ["https://a.example/书.txt", "http://b.example/x?y=1", "http://c.example"]
    assert links_in(None) == [] and links_in("no links here") == []


def test_the_leading_mention_goes():
    assert without_mention("@Companion_Test_Bot, what is this?", "companion_test_bot") == "what is this?"
    assert without_mention("what about @companion_test_bot", "companion_test_bot") == "what about @companion_test_bot"
    assert without_mention("@companion_test_bot", "companion_test_bot") == "@companion_test_bot"


def desk(**settings) -> ReadingDesk:
    return ReadingDesk(None, Settings(**settings), None)


def test_size_refusals_name_the_limit_that_applies():
    official = desk()
    assert official.size_refusal(None, "en") is None and official.size_refusal(20 * MB, "en") is None
    assert "Telegram lets bots download files of at most 20 MB" in official.size_refusal(20 * MB + 1, "en")
    raised = desk(document_max_mb=50)
    assert "local Bot API server" in raised.size_refusal(30 * MB, "en")
    local = desk(document_max_mb=50, telegram_api_local=True)
    assert local.size_refusal(30 * MB, "en") is None
    assert local.size_refusal(60 * MB, "zh") == "这个文件有 60.0 MB，我最多能读 50.0 MB 的文档。请发送更小的文件，或者分成几部分。"
    small = desk(document_max_mb=5)
    assert small.size_refusal(6 * MB, "en") == ("This file is 6.0 MB; I read documents of up to 5.0 MB. "
                                                "Send a smaller file or split it.")
