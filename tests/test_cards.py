"""Character cards: V1/V2/V3 in JSON, PNG and CHARX; round trips keep every field; bad
input gives one clear PersonaError."""

from __future__ import annotations

import base64
import copy
import io
import json
import zipfile

import pytest
from PIL import Image

from personas import (
    Persona,
    PersonaError,
    PersonaLibrary,
    card_from_dict,
    card_to_dict,
    card_to_json,
    card_to_png,
    looks_like_card,
    persona_id_from_name,
    read_card,
)
from personas.cards import MAX_CARD_FILE_BYTES, NAMESPACE, V3_ONLY_FIELDS
from personas.images import read_png_text
from personas.schema import MAX_PERSONA_TEXT_BYTES
from tests.card_samples import (
    as_json,
    png_image,
    png_with_chunk_before_iend,
    png_with_pillow_text,
    pygmalion_card,
    rich_v2_card,
    rich_v3_card,
    to_base64_json,
    v1_card,
)


def charx(files: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w", compression) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return output.getvalue()


def png_bytes(colour: tuple[int, int, int] = (10, 200, 30), size: tuple[int, int] = (20, 30)) -> bytes:
    output = io.BytesIO()
    png_image(size, colour).save(output, format="PNG")
    return output.getvalue()


# --- Mapping ---------------------------------------------------------------------------


def test_v2_fields_map_to_persona_fields():
    persona = read_card(as_json(rich_v2_card()), "seraphina.json").persona
    assert persona.id == "seraphina"
    assert persona.name == "Seraphina"
    assert persona.greeting.startswith("*Seraphina kneels")
    assert persona.example_dialogue.startswith("<START>")
    assert persona.alternate_greetings == ["*She hums by the fire.*", "你醒了？别急着起来。"]
    assert persona.system_prompt.startswith("{{original}}")
    assert persona.post_history_instructions == "Stay gentle."
    assert persona.tags == ["fantasy", "female", "中文"]
    assert (persona.creator, persona.character_version, persona.creator_notes) == (
        "tester",
        "1.2",
        "Gentle fantasy roleplay.",
    )
    assert persona.extensions["world"] == "Eldoria"
    assert persona.lorebook is not None and len(persona.lorebook.entries) == 3
    assert persona.lorebook.entries[1].effective_selective_logic == "and_all"
    assert persona.card_origin is not None and persona.card_origin.spec == "chara_card_v2"


def test_v3_nickname_and_extras():
    persona = read_card(as_json(rich_v3_card()), "sera.json").persona
    assert persona.nickname == "Sera"
    assert persona.render("{{char}}", "u") == "Sera"
    assert persona.card_origin.spec == "chara_card_v3"
    assert persona.card_origin.data_fields["group_only_greetings"] == ["*Seraphina greets the whole party.*"]
    assert persona.card_origin.data_fields["x_future_field"] == {"anything": [1, 2, None]}


def test_v1_card():
    imported = read_card(as_json(v1_card()), "tom.json")
    persona = imported.persona
    assert imported.spec == "chara_card_v1"
    assert (persona.id, persona.name) == ("old-tom", "Old Tom")
    assert persona.render(persona.greeting, "Ann") == "Arr, sit down, Ann."
    assert "Old Tom: Hmph." in persona.system_text("Ann")
    exported = card_to_dict(persona)
    assert exported["spec"] == "chara_card_v2" and exported["data"]["first_mes"] == "Arr, sit down, <USER>."
    assert exported["first_mes"] == "Arr, sit down, <USER>."  # V1 mirror for V1 readers
    assert exported["chat"] == "Old Tom - 2023" and exported["avatar"] == "none"


def test_old_pygmalion_spelling():
    persona = read_card(as_json(pygmalion_card()), "pyg.json").persona
    assert (persona.name, persona.description, persona.scenario, persona.greeting) == (
        "Pyg",
        "An old-format character.",
        "Somewhere.",
        "Hello there.",
    )
    assert card_to_dict(persona)["char_name"] == "Pyg"


def test_non_text_scalars_are_read_as_text_and_nulls_as_empty():
    card = rich_v2_card()
    card["data"]["character_version"] = 2
    card["data"]["creator_notes"] = None
    persona = card_from_dict(card)
    assert (persona.character_version, persona.creator_notes) == ("2", "")


# --- Round trips -----------------------------------------------------------------------


@pytest.mark.parametrize("make_card", [rich_v2_card, rich_v3_card], ids=["v2", "v3"])
def test_json_round_trip_keeps_every_field(make_card):
    original = make_card()
    spec = "v3" if original["spec"] == "chara_card_v3" else "v2"
    persona = read_card(as_json(original), "card.json").persona
    assert json.loads(card_to_json(persona, spec)) == original
    stored = Persona.model_validate(json.loads(persona.model_dump_json()))
    assert stored == persona
    assert card_to_dict(stored, spec) == original


def test_v3_exported_as_v2_carries_v2_fields_and_stashes_the_rest():
    original = rich_v3_card()
    persona = read_card(as_json(original), "sera.json").persona
    as_v2 = card_to_dict(persona, "v2")
    assert as_v2["spec"] == "chara_card_v2" and as_v2["spec_version"] == "2.0"
    for key, value in original["data"].items():
        if key in V3_ONLY_FIELDS:
            assert key not in as_v2["data"]
            assert as_v2["data"]["extensions"][NAMESPACE]["v3_fields"][key] == value
        elif key == "extensions":
            assert {k: v for k, v in as_v2["data"][key].items() if k != NAMESPACE} == value
        else:
            assert as_v2["data"][key] == value, key
    back = read_card(as_json(as_v2), "sera-v2.json").persona
    assert card_to_dict(back, "v3") == original
    assert card_to_dict(back, "v2") == as_v2


def test_v2_exported_as_v3_adds_what_v3_requires():
    persona = read_card(as_json(rich_v2_card()), "s.json").persona
    as_v3 = card_to_dict(persona, "v3")
    assert as_v3["spec"] == "chara_card_v3" and as_v3["spec_version"] == "3.0"
    assert as_v3["data"]["group_only_greetings"] == []
    assert all("use_regex" in entry for entry in as_v3["data"]["character_book"]["entries"])


def test_our_own_fields_travel_in_the_namespaced_extension():
    mara = PersonaLibrary().require("mara")
    card = card_to_dict(mara)
    own = card["data"]["extensions"][NAMESPACE]
    assert own["starter_prompts"] == mara.starter_prompts and own["language"] == "en"
    assert own["model"] == {"temperature": 0.85}
    assert own["v3_fields"] == {"nickname": "Mara"}
    entries = card["data"]["character_book"]["entries"]
    guild_bounty = next(entry for entry in entries if entry.get("name") == "Guild bounty")
    assert guild_bounty["extensions"]["selectiveLogic"] == 0
    back = read_card(card_to_json(mara), "mara.json", persona_id="mara").persona
    assert_same_persona(back, mara)


def assert_same_persona(imported: Persona, original: Persona, spec: str = "v2") -> None:
    """Equal apart from where the card keeps things: our lorebook spellings (such as
    `selective_logic`) come back as SillyTavern's `extensions`, with the same meaning,
    and exporting again in the same spec gives the same card."""
    assert imported.model_dump(exclude={"card_origin", "lorebook"}) == original.model_dump(
        exclude={"card_origin", "lorebook"}
    )
    assert card_to_dict(imported, spec) == card_to_dict(original, spec)
    if original.lorebook is not None:
        for ours, theirs in zip(imported.lorebook.entries, original.lorebook.entries, strict=True):
            assert ours.effective_selective_logic == theirs.effective_selective_logic
            assert ours.effective_match_whole_words == theirs.effective_match_whole_words
            assert ours.effective_scan_depth == theirs.effective_scan_depth


@pytest.mark.parametrize("persona_id", ["assistant", "linxi", "mara"])
def test_shipped_personas_survive_a_png_card_round_trip(persona_id):
    persona = PersonaLibrary().require(persona_id)
    card = card_to_png(persona)
    imported = read_card(card, f"{persona_id}.png", persona_id=persona_id)
    assert imported.spec == "chara_card_v3"
    assert_same_persona(imported.persona, persona, "v3")
    chunks = read_png_text(card, {"chara", "ccv3"})
    assert json.loads(base64.b64decode(chunks["chara"]))["spec"] == "chara_card_v2"
    assert json.loads(base64.b64decode(chunks["ccv3"]))["spec"] == "chara_card_v3"


def test_png_export_uses_the_avatar_or_a_stable_placeholder():
    persona = PersonaLibrary().require("linxi")
    with_avatar = Image.open(io.BytesIO(card_to_png(persona, png_bytes(size=(20, 30)))))
    assert with_avatar.size == (20, 30)
    placeholder = Image.open(io.BytesIO(card_to_png(persona)))
    assert placeholder.size == (400, 600)
    other = Image.open(io.BytesIO(card_to_png(PersonaLibrary().require("mara"))))
    assert placeholder.convert("RGB").getpixel((5, 5)) != other.convert("RGB").getpixel((5, 5))
    again = Image.open(io.BytesIO(card_to_png(persona)))
    assert again.convert("RGB").getpixel((5, 5)) == placeholder.convert("RGB").getpixel((5, 5))


def test_png_export_drops_card_chunks_of_the_avatar():
    old_card = png_with_pillow_text({"chara": to_base64_json(v1_card())})
    exported = card_to_png(PersonaLibrary().require("mara"), old_card)
    assert read_card(exported, "mara.png").persona.name == "Captain Mara Vale"


def test_png_export_refuses_an_avatar_that_is_not_an_image():
    with pytest.raises(PersonaError, match="not an image"):
        card_to_png(PersonaLibrary().default, b"GIF89a nonsense")


# --- PNG import ------------------------------------------------------------------------


def test_png_with_chara_chunk():
    imported = read_card(png_with_pillow_text({"chara": to_base64_json(rich_v2_card())}), "s.png")
    assert imported.persona.name == "Seraphina"
    assert imported.avatar is not None and imported.avatar.startswith(b"\x89PNG")


def test_png_prefers_ccv3_over_chara():
    v2 = rich_v2_card()
    v2["data"]["name"] = "Backfilled V2"
    data = png_with_pillow_text({"chara": to_base64_json(v2), "ccv3": to_base64_json(rich_v3_card())})
    imported = read_card(data, "s.png")
    assert (imported.spec, imported.persona.name) == ("chara_card_v3", "Seraphina")


def test_png_falls_back_to_chara_when_ccv3_is_damaged():
    data = png_with_pillow_text({"ccv3": "!!!not base64 json!!!", "chara": to_base64_json(rich_v2_card())})
    imported = read_card(data, "s.png")
    assert imported.spec == "chara_card_v2"
    assert imported.warnings and "V3 card in the PNG is unreadable" in imported.warnings[0]


def test_png_chunk_after_the_pixels():
    imported = read_card(png_with_chunk_before_iend("chara", to_base64_json(v1_card())), "tom.png")
    assert imported.persona.name == "Old Tom"


@pytest.mark.parametrize(("compressed", "international"), [(True, False), (False, True), (True, True)])
def test_png_ztxt_and_itxt_chunks(compressed, international):
    data = png_with_pillow_text(
        {"chara": to_base64_json(rich_v3_card())}, compressed=compressed, international=international
    )
    assert read_card(data, "s.png").persona.nickname == "Sera"


def test_png_with_raw_json_in_the_chunk():
    data = png_with_pillow_text({"chara": json.dumps(v1_card())})
    assert read_card(data, "tom.png").persona.name == "Old Tom"


# --- CHARX import ----------------------------------------------------------------------


def test_charx_with_icon_asset():
    card = rich_v3_card()
    card["data"]["assets"] = [
        {"type": "icon", "uri": "embeded://assets/icon/images/main.png", "name": "main", "ext": "png"}
    ]
    icon = png_bytes()
    imported = read_card(charx({"card.json": as_json(card), "assets/icon/images/main.png": icon}), "sera.charx")
    assert imported.persona.nickname == "Sera"
    assert imported.avatar == icon
    assert card_to_dict(imported.persona, "v3") == card


def test_charx_with_missing_icon_warns():
    card = rich_v3_card()
    card["data"]["assets"] = [
        {"type": "icon", "uri": "embeded://assets/icon/images/main.png", "name": "main", "ext": "png"}
    ]
    imported = read_card(charx({"card.json": as_json(card)}), "sera.charx")
    assert imported.avatar is None and "missing" in imported.warnings[0]


def test_charx_without_card_json():
    with pytest.raises(PersonaError, match=r"^x\.charx: the \.charx file has no card\.json"):
        read_card(charx({"readme.txt": b"hi"}), "x.charx")


def test_charx_zip_bomb_is_refused():
    bomb = charx({"card.json": b" " * (5 * 1024 * 1024)})
    assert len(bomb) < 100_000
    with pytest.raises(PersonaError, match="card.json' in the .charx file is over 4 MB"):
        read_card(bomb, "bomb.charx")


def test_charx_high_compression_ratio_is_refused():
    padded = {"spec": "chara_card_v3", "data": {"name": "A", "description": " " * (3 * 1024 * 1024)}}
    with pytest.raises(PersonaError, match="compressed suspiciously well"):
        read_card(charx({"card.json": as_json(padded)}), "ratio.charx")


def test_charx_encrypted_member_is_refused():
    data = bytearray(charx({"card.json": as_json(v1_card())}, zipfile.ZIP_STORED))
    central = data.index(b"PK\x01\x02")
    data[central + 8] |= 0x1
    with pytest.raises(PersonaError, match="encrypted"):
        read_card(bytes(data), "locked.charx")


def test_charx_name_on_something_else():
    with pytest.raises(PersonaError, match=r"^x\.charx: the file is not a \.charx \(zip\) file"):
        read_card(b"{}", "x.charx")


def test_damaged_zip():
    with pytest.raises(PersonaError, match="not a valid .charx file"):
        read_card(b"PK\x03\x04 this is not really a zip", "x.charx")


# --- Ids -------------------------------------------------------------------------------


def test_persona_ids_from_names():
    assert persona_id_from_name("Captain Mara Vale") == "captain-mara-vale"
    assert persona_id_from_name("  Zoë  ") == "zoe"
    chinese = persona_id_from_name("林夕")
    assert chinese == persona_id_from_name("林夕") and chinese.startswith("persona-")
    assert chinese != persona_id_from_name("林曦")
    assert Persona(id=chinese, name="林夕").id == chinese
    mixed = persona_id_from_name("Ana 林")
    assert mixed.startswith("ana-") and mixed != "ana"
    assert persona_id_from_name("!!!").startswith("persona-")
    long_id = persona_id_from_name("x" * 300, taken_ids=["x" * 40])
    assert Persona(id=long_id, name="x").id == long_id


def test_persona_id_collisions_get_a_number():
    taken = ["seraphina", "Seraphina-2"]
    assert persona_id_from_name("Seraphina", taken) == "seraphina-3"
    assert read_card(as_json(rich_v2_card()), "s.json", taken_ids=taken).persona.id == "seraphina-3"
    assert read_card(as_json(rich_v2_card()), "s.json", persona_id="sera").persona.id == "sera"


# --- Bad input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "filename", "message"),
    [
        (b'{"name": "A",', "a.json", r"^a\.json: the card is not valid JSON \(.* line 1 column"),
        (b"[1, 2]", "a.json", r"^a\.json: the card must be a JSON object"),
        (b"\xff\xfe garbage", "a.json", r"^a\.json: the card is not UTF-8 JSON"),
        (b'{"spec": "chara_card_v9", "data": {}}', "a.json", r"unknown card spec 'chara_card_v9'"),
        (b'{"spec": "lorebook_v3", "data": {}}', "a.json", r"this is a lorebook file, not a character card"),
        (b'{"spec": "chara_card_v2"}', "a.json", r"spec 'chara_card_v2' but has no 'data' object"),
        (b'{"spec": "chara_card_v2", "data": {"name": "  "}}', "a.json", r"the card has no name"),
        (b'{"description": "no name at all"}', "a.json", r"the card has no name"),
        (
            b'{"spec": "chara_card_v2", "data": {"name": "A", "first_mes": {}}}',
            "a.json",
            r"data\.first_mes must be text",
        ),
        (b'{"spec": "chara_card_v2", "data": {"name": "A", "tags": "x"}}', "a.json", r"data\.tags must be a list"),
        (b'{"spec": "chara_card_v2", "data": {"name": "A", "extensions": []}}', "a.json", r"data\.extensions must be"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "a.png", r"^a\.png: the PNG file is cut short"),
        (b"JFIF not a png", "a.png", r"^a\.png: the file is not a PNG file"),
    ],
)
def test_bad_input_gives_one_clear_error(data, filename, message):
    with pytest.raises(PersonaError, match=message):
        read_card(data, filename)


def test_png_without_a_card():
    with pytest.raises(PersonaError, match=r"^plain\.png: this PNG holds no character card"):
        read_card(png_bytes(), "plain.png")


def test_png_with_bad_base64():
    with pytest.raises(PersonaError, match="not valid base64"):
        read_card(png_with_pillow_text({"chara": "a"}), "bad.png")


def test_wrong_type_inside_the_lorebook_names_the_card_field():
    card = rich_v2_card()
    card["data"]["character_book"]["entries"][0]["constant"] = "yes please"
    with pytest.raises(PersonaError, match=r"field 'data\.character_book\.entries\.0\.constant'"):
        card_from_dict(card)


def test_bad_regex_in_a_card_is_reported_at_import():
    card = rich_v2_card()
    card["data"]["character_book"]["entries"][1]["keys"] = ["/[oops/"]
    with pytest.raises(PersonaError, match=r"data\.character_book\.entries\.1.*not a valid regular expression"):
        read_card(as_json(card), "s.json")


def test_wrong_type_in_our_namespace_names_the_card_field():
    card = rich_v2_card()
    card["data"]["extensions"][NAMESPACE] = {"model": {"temperature": "hot"}}
    with pytest.raises(PersonaError, match=rf"field 'data\.extensions\.{NAMESPACE}\.model\.temperature'"):
        card_from_dict(card)


def test_card_text_over_the_cap():
    card = copy.deepcopy(rich_v2_card())
    card["data"]["description"] = "字" * (MAX_PERSONA_TEXT_BYTES // 3 + 10)
    with pytest.raises(PersonaError, match=r"^big\.json: the persona holds .* over the 200 KB limit"):
        read_card(as_json(card), "big.json")


def test_file_over_the_size_limit():
    with pytest.raises(PersonaError, match=r"^huge\.json: the file is over 32 MB"):
        read_card(b" " * (MAX_CARD_FILE_BYTES + 1), "huge.json")


def test_png_card_round_trip_keeps_both_chunks_exact():
    v2, v3 = rich_v2_card(), rich_v3_card()
    original = png_with_pillow_text({"chara": to_base64_json(v2), "ccv3": to_base64_json(v3)})
    imported = read_card(original, "sera.png")
    exported = read_png_text(card_to_png(imported.persona, imported.avatar), {"chara", "ccv3"})
    assert json.loads(base64.b64decode(exported["ccv3"])) == v3
    # The V2 chunk holds the same V2 fields; the V3-only ones ride in our extension.
    as_v2 = json.loads(base64.b64decode(exported["chara"]))
    assert read_card(as_json(as_v2), "sera-v2.json").persona.model_dump(exclude={"card_origin"}) == (
        imported.persona.model_dump(exclude={"card_origin"})
    )


@pytest.mark.parametrize("depth", [70, 900, 100_000])
def test_deeply_nested_json_is_refused_cleanly(depth):
    nested = "[" * depth + "]" * depth
    data = ('{"spec": "chara_card_v2", "data": {"name": "A", "extensions": {"x": ' + nested + "}}}").encode()
    with pytest.raises(PersonaError, match=r"^deep\.json: the card's JSON is nested too deeply$"):
        read_card(data, "deep.json")


def test_moderately_nested_extensions_are_fine():
    nested = "[" * 20 + "]" * 20
    data = ('{"spec": "chara_card_v2", "data": {"name": "A", "extensions": {"x": ' + nested + "}}}").encode()
    assert read_card(data, "ok.json").persona.name == "A"


def test_looks_like_card_tells_cards_from_other_files():
    card_zip = charx({"card.json": as_json(rich_v3_card())})
    other_zip = charx({"chapter1.txt": b"text"})
    cards = [
        (as_json(rich_v2_card()), "sera.json"),
        (as_json(v1_card()), "tom.txt"),
        (as_json(pygmalion_card()), "pyg"),
        (as_json({"spec": "chara_card_v9"}), "future.json"),  # a card, if one we refuse
        (b'{"name": "x",', "broken.json"),
        (png_with_pillow_text({"chara": to_base64_json(v1_card())}), "tom.png"),
        (card_zip, "sera.zip"),
        (other_zip, "renamed.charx"),
        (b"not a zip", "damaged.charx"),
    ]
    for data, name in cards:
        assert looks_like_card(data, name), name
    others = [
        (png_with_pillow_text({"Comment": "holiday"}), "photo.png"),
        (b"\x89PNG\r\n\x1a\n\x00", "cut.png"),
        (other_zip, "archive.zip"),
        (b'{"name": "pkg", "description": "a package", "version": "1"}', "package.json"),
        (b"[1, 2]", "list.json"),
        (b'{"name": "x",', "broken.txt"),
        ("第一章".encode(), "novel.txt"),
    ]
    for data, name in others:
        assert not looks_like_card(data, name), name


def test_a_card_chunk_too_big_to_read_is_still_a_card_and_other_big_chunks_do_not_matter():
    from tests.card_samples import chunk
    from tests.fakes.bad_inputs import png_card_with_huge_card_chunk, png_card_with_ztxt_bomb, png_with_chunks

    for broken in (png_card_with_huge_card_chunk(), png_card_with_ztxt_bomb()):
        assert looks_like_card(broken, "card.png")  # so the sender hears what is wrong with the card
        with pytest.raises(PersonaError, match="over 8 MB"):
            read_card(broken, "card.png")
    card = to_base64_json(v1_card()).encode()
    comment = b"Comment\0" + b"c" * (9 * 1024 * 1024)
    with_comment = png_with_chunks(chunk(b"tEXt", comment), chunk(b"tEXt", b"chara\0" + card))
    assert read_card(with_comment, "card.png").persona.name == v1_card()["name"]
    assert not looks_like_card(png_with_chunks(chunk(b"tEXt", comment)), "cat.png")
