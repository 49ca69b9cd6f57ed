"""The /persona menu's pieces that need no chat: keys that fit in callback data, finding
a choice among what a user may choose, the /me answer."""

from bot.telegram.callbacks import ChoosePersona
from bot.telegram.persona_views import find_choice, me_text, persona_key
from memory.persona_catalog import PersonaEntry
from memory.records import User
from personas import Persona


def test_long_ids_travel_as_a_digest_that_fits_in_callback_data():
    long_id = "a" * 64
    key = persona_key(long_id)
    assert key.startswith("~") and len(ChoosePersona(key=key).pack().encode()) <= 64
    assert persona_key("mara") == "mara"
    entries = [PersonaEntry(Persona(id=persona_id, name=persona_id), "card") for persona_id in ("mara", long_id)]
    assert find_choice(entries, key).persona.id == long_id
    assert find_choice(entries, "mara").persona.id == "mara"
    assert find_choice(entries, "ghost") is None


def test_me_text_says_what_the_bot_knows():
    def user(**fields):
        return User(id=1, platform="tg", external_id="7", display_name="Alice", language=None, timezone=None,
                    **fields)

    assert me_text(user(), "show", "en").startswith("I call you Alice (your Telegram name).")
    assert me_text(user(), "clear", "zh") == "已清除。我会重新用你的 Telegram 名字Alice称呼你。"
    assert me_text(user(me_name="Ally"), "set", "en") == "Got it: I'll call you Ally."
    shown = me_text(user(me_description="a nurse"), "show", "en")
    assert shown.startswith("I call you Alice.\nAbout you: a nurse\n\nChange it: /me Name")
