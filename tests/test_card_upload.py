"""Which documents may be character cards, and fetching them through the fake Bot API."""

import pytest
from aiogram.types import Document

from bot.telegram.card_upload import CardFile, CardUnavailable, card_file_name, download_card, may_hold_card
from personas.cards import MAX_CARD_FILE_BYTES
from tests.card_samples import as_json, png_with_pillow_text, to_base64_json, v1_card


def document(telegram, data=None, name=None, mime=None, **fields):
    file_id = telegram.add_file(data, name, mime) if data is not None else "unknown-file-id"
    return Document(file_id=file_id, file_unique_id="u1", file_name=name, mime_type=mime,
                    file_size=len(data) if data is not None else 10, **fields)


def test_only_card_like_names_and_types_are_looked_at():
    def doc(name=None, mime=None):
        return Document(file_id="f", file_unique_id="u", file_name=name, mime_type=mime)

    assert may_hold_card(doc("Sera.PNG")) and may_hold_card(doc("sera.charx")) and may_hold_card(doc("c.json"))
    assert may_hold_card(doc(None, "application/json")) and may_hold_card(doc("x", "image/png"))
    assert not may_hold_card(doc("novel.txt", "text/plain")) and not may_hold_card(doc("a.epub"))
    assert card_file_name(doc(None, "image/png")) == "card.png" and card_file_name(doc("a.json")) == "a.json"


async def test_cards_are_downloaded_and_other_files_are_not_cards(telegram, telegram_bot):
    card = as_json(v1_card())
    assert await download_card(telegram_bot, document(telegram, card, "tom.json")) == CardFile("tom.json", card)
    png = png_with_pillow_text({"chara": to_base64_json(v1_card())})
    assert (await download_card(telegram_bot, document(telegram, png, None, "image/png"))).name == "card.png"
    picture = png_with_pillow_text({"Title": "a cat"})
    assert await download_card(telegram_bot, document(telegram, picture, "cat.png")) is None
    assert await download_card(telegram_bot, document(telegram, b'{"name": "pkg"}', "package.json")) is None


async def test_files_that_cannot_be_had(telegram, telegram_bot):
    with pytest.raises(CardUnavailable) as refused:
        await download_card(telegram_bot, document(telegram, None, "gone.json"))
    assert refused.value.text_key == "tg.card_download_failed"
    huge = Document(file_id="f", file_unique_id="u", file_name="big.charx", file_size=MAX_CARD_FILE_BYTES + 1)
    with pytest.raises(CardUnavailable) as refused:
        await download_card(telegram_bot, huge)
    assert refused.value.text_key == "tg.card_too_big"
    big_picture = huge.model_copy(update={"file_name": "big.png"})
    assert await download_card(telegram_bot, big_picture) is None
    assert telegram.calls_of("getFile") and all(c.params["file_id"] != "f" for c in telegram.calls_of("getFile"))
