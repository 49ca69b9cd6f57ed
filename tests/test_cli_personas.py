"""`companion personas …` and `--persona` with stored ids: a real process for the parts a
script depends on (stdout, exit codes, one-line errors), click's runner in this process for
the rest (the same command objects, settings, database file; much faster to start)."""

import base64
import json
import zipfile

import pytest
from click.testing import CliRunner

from bot.cli import main
from memory.schema import open_store
from personas import card_to_dict, read_card
from personas.images import read_png_text
from personas.schema import MAX_PERSONA_TEXT_BYTES
from tests.card_samples import (
    as_json,
    png_with_chunk_before_iend,
    png_with_pillow_text,
    rich_v2_card,
    rich_v3_card,
    to_base64_json,
    v1_card,
)
from tests.test_cli import companion, model_env


@pytest.fixture
def env(db_path):
    return {"COMPANION_DB": str(db_path)}


def run(args, env):
    result = CliRunner().invoke(main, args, env=env, catch_exceptions=False)
    return result


def stored_personas(db_path) -> int:
    store = open_store(db_path)
    try:
        return store.db.execute("SELECT count(*) FROM stored_personas").fetchone()[0]
    finally:
        store.close()


def test_import_prints_the_id_and_list_json_shows_every_persona(tmp_path, env, db_path):
    card = tmp_path / "seraphina.json"
    card.write_bytes(as_json(rich_v2_card()))
    imported = companion(["personas", "import", str(card)], env_extra=env)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout == "seraphina\n"
    listed = companion(["personas", "list", "--json"], env_extra=env)
    assert listed.returncode == 0, listed.stderr
    entries = json.loads(listed.stdout)
    assert [set(entry) for entry in entries] == [{"id", "name", "description", "source"}] * len(entries)
    by_id = {entry["id"]: entry for entry in entries}
    assert {"assistant", "linxi", "mara", "seraphina"} <= set(by_id)
    assert by_id["linxi"]["name"] == "林夕" and by_id["linxi"]["source"] == "builtin"
    assert by_id["seraphina"] == {"id": "seraphina", "name": "Seraphina", "source": "card",
                                  "description": rich_v2_card()["data"]["description"]}


@pytest.mark.parametrize("name, content, message", [
    ("broken.json", b'{"name": "x",', "is not valid JSON"),
    ("plain.png", png_with_pillow_text({"Comment": "just a picture"}), "holds no character card"),
    ("future.json", as_json({"spec": "chara_card_v9", "data": {"name": "X"}}), "unknown card spec 'chara_card_v9'"),
    ("huge.json", as_json({"name": "Big", "description": "x" * (MAX_PERSONA_TEXT_BYTES + 1)}), "over the 200 KB limit"),
])
def test_bad_cards_are_one_line_exit_1_and_store_nothing(tmp_path, env, db_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    result = run(["personas", "import", str(path)], env)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"companion: {name}: ") and message in result.stderr
    assert stored_personas(db_path) == 0


def test_a_bad_card_in_a_real_process(tmp_path, env, db_path):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    result = companion(["personas", "import", str(tmp_path / "broken.png")], env_extra=env)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == "companion: broken.png: the PNG file is cut short (damaged or incomplete download)\n"
    assert stored_personas(db_path) == 0


def test_other_refusals_are_one_line_exit_1(tmp_path, env, db_path):
    toml = tmp_path / "nova.toml"
    toml.write_text('name = "Nova"\n')
    refusals = [
        (["personas", "import", str(toml)], "put it in COMPANION_PERSONAS_DIR"),
        (["personas", "import", str(tmp_path / "missing.json")], "cannot read"),
        (["personas", "show", "nobody"], "no persona 'nobody'"),
        (["personas", "export", "nobody", "--format", "json", "--out", str(tmp_path / "x.json")], "no persona"),
        (["personas", "export", "mara", "--format", "png", "--out", str(tmp_path / "no" / "dir.png")],
         "cannot write"),
        (["personas", "publish", "linxi"], "no stored persona 'linxi'"),
        (["personas", "delete", "linxi"], "is a persona file"),
    ]
    for args, message in refusals:
        result = run(args, env)
        assert result.exit_code == 1, (args, result.output)
        assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr, (args, result.stderr)
    assert stored_personas(db_path) == 0
    assert not (tmp_path / "x.json").exists()


def test_v1_v2_v3_cards_in_json_png_and_charx_import_and_round_trip(tmp_path, env):
    v3_png = png_with_chunk_before_iend("ccv3", to_base64_json(rich_v3_card()))
    charx = tmp_path / "sera.charx"
    with zipfile.ZipFile(charx, "w") as archive:
        archive.writestr("card.json", as_json(rich_v3_card()))
    sources = {"tom.json": as_json(v1_card()), "sera-v2.png": png_with_pillow_text(
        {"chara": to_base64_json(rich_v2_card())}), "sera-v3.png": v3_png}
    for name, content in sources.items():
        (tmp_path / name).write_bytes(content)
    ids = {}
    for path in [*(tmp_path / name for name in sources), charx]:
        result = run(["personas", "import", str(path)], env)
        assert result.exit_code == 0, result.output
        ids[path.name] = result.stdout.strip()
    assert ids == {"tom.json": "old-tom", "sera-v2.png": "seraphina", "sera-v3.png": "seraphina-2",
                   "sera.charx": "seraphina-3"}

    for persona_id, spec, original in (("old-tom", "v2", v1_card()), ("seraphina", "v2", rich_v2_card()),
                                       ("seraphina-2", "v3", rich_v3_card())):
        out = tmp_path / f"{persona_id}.json"
        result = run(["personas", "export", persona_id, "--format", "json", "--spec", spec, "--out", str(out)], env)
        assert result.exit_code == 0, result.output
        expected = read_card(as_json(original)).persona
        assert json.loads(out.read_text()) == card_to_dict(expected, spec)
        png = tmp_path / f"{persona_id}.png"
        assert run(["personas", "export", persona_id, "--format", "png", "--out", str(png)], env).exit_code == 0
        chunks = read_png_text(png.read_bytes(), {"chara", "ccv3"})
        assert json.loads(base64.b64decode(chunks["chara"])) == card_to_dict(expected, "v2")
        assert json.loads(base64.b64decode(chunks["ccv3"])) == card_to_dict(expected, "v3")
    again = run(["personas", "import", str(tmp_path / "seraphina-2.png")], env)
    assert again.exit_code == 0 and again.stdout == "seraphina-4\n"
    assert run(["personas", "show", "seraphina-4"], env).stdout.startswith("Seraphina (seraphina-4) [card]")


def test_show_lists_text_lorebook_and_json(tmp_path, env):
    (tmp_path / "sera.json").write_bytes(as_json(rich_v2_card()))
    persona_id = run(["personas", "import", str(tmp_path / "sera.json")], env).stdout.strip()
    shown = run(["personas", "show", persona_id], env)
    assert shown.exit_code == 0
    assert shown.stdout.startswith("Seraphina (seraphina) [card]\n")
    assert "## Greeting\n*Seraphina kneels beside you.*" in shown.stdout
    assert "## Lorebook Eldoria (3 entries, scan depth 3)" in shown.stdout
    assert "- Shadowclaw: shadowclaw, /shadow ?claws?/i" in shown.stdout
    as_data = json.loads(run(["personas", "show", "linxi", "--json"], env).stdout)
    assert as_data["source"] == "builtin" and as_data["private"] is False
    assert as_data["persona"]["lorebook"]["scan_depth"] == 4


def test_private_personas_are_listed_with_all_and_can_be_published_and_deleted(env, db_path):
    from memory.persona_catalog import PersonaCatalog
    from personas import Persona, PersonaLibrary

    store = open_store(db_path)
    owner = store.directory.ensure_user("tg", 4242, display_name="Bea")
    PersonaCatalog(store, PersonaLibrary()).add(Persona(id="bea-cat", name="Bea's cat"), source="card", owner=owner)
    store.close()
    assert "bea-cat" not in run(["personas", "list"], env).stdout
    listed = run(["personas", "list", "--all"], env).stdout
    assert "Bea's cat  [card, private to tg:4242]" in listed
    assert run(["personas", "publish", "bea-cat"], env).exit_code == 0
    assert "bea-cat" in [e["id"] for e in json.loads(run(["personas", "list", "--json"], env).stdout)]
    assert run(["personas", "delete", "bea-cat"], env).exit_code == 0
    assert stored_personas(db_path) == 0


def test_context_with_a_stored_persona_shows_triggered_lore_in_the_tail(tmp_path, fake_openai, db_path):
    env = model_env(fake_openai, db_path)
    (tmp_path / "sera.json").write_bytes(as_json(rich_v2_card()))
    assert run(["personas", "import", str(tmp_path / "sera.json")], env).stdout.strip() == "seraphina"
    result = companion(["context", "--user", "ann", "--persona", "seraphina", "--message",
                        "Tell me about the forest", "--json"], env_extra=env)
    assert result.returncode == 0, result.stderr
    messages = json.loads(result.stdout)["messages"]
    assert messages[0]["section"] == "system" and "guardian of the Eldoria forest" in messages[0]["content"]
    # the greeting opens the conversation; the lore rides in the tail of the new message
    assert [m["section"] for m in messages] == ["system", "history", "user"]
    assert messages[1]["content"].startswith("*Seraphina kneels beside you.*")
    assert [part["section"] for part in messages[-1]["parts"]] == ["user", "time", "lore"]
    assert "Eldoria is an ancient forest full of magic." in messages[-1]["content"]
    assert messages[-1]["content"].startswith("Tell me about the forest\n\n")
    assert "Eldoria is an ancient forest full of magic." not in messages[0]["content"]

    chat = CliRunner().invoke(main, ["chat", "--user", "ann", "--persona", "seraphina"], env=env,
                              input="Tell me about the forest\n")
    assert chat.exit_code == 0, chat.output
    sent = fake_openai.chat_requests[-1].messages
    assert sent[0]["content"] == messages[0]["content"]
    assert "Eldoria is an ancient forest full of magic." in sent[-1]["content"]
