"""The Mini App's HTTP API (bot/web/server.py over memory/service/self_service.py) with
aiohttp's test client on 127.0.0.1: every action, each refusal, the headers, and that an
edit is in the next request the fake model receives."""

from __future__ import annotations

import json
import re

import pytest

from memory.records import Owner
from personas.cards import card_to_png, read_card
from tests.card_samples import as_json, rich_v2_card
from tests.fakes.openai_server import Reply, default_task_reply, task_kind
from tests.mini_app import ALICE, BOB, STRANGER, TOKEN, MiniApp, auth, init_data, request_text
from tests.conftest import said

NOVEL = "\n\n".join(f"Chapter {n}\n\n" + f"The story of part {n}. " * 40 for n in range(1, 5))


@pytest.fixture
async def app(tmp_path, fake_openai):
    app = await MiniApp(tmp_path, fake_openai, facts_every=1).start()
    yield app
    await app.stop()


def own_card(app: MiniApp, person=ALICE):
    card = read_card(as_json(rich_v2_card()), "seraphina.json").persona
    return app.services.personas.import_card(card_to_png(card), "seraphina.png", owner=app.user(person)).persona


def owner_of(app: MiniApp, person=ALICE) -> Owner:
    return Owner.user(app.user(person).id)


# -- refusals: who gets in ---------------------------------------------------------------------
@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer x"}, {"Authorization": "tma "},
    {"Authorization": "tma " + init_data(ALICE, token="654321:another-bot")},  # forged: another token
    {"Authorization": "tma " + init_data(ALICE).replace("Alice", "Alicia")},  # tampered after signing
    {"Authorization": "tma " + init_data(ALICE, age_seconds=3 * 24 * 3600)},  # three days old
    {"Authorization": "tma " + init_data(ALICE, age_seconds=-3600)},  # from the future
], ids=["missing", "not-tma", "empty", "forged", "tampered", "stale", "future"])
async def test_without_valid_init_data_every_call_is_401_and_shows_nothing(app, headers):
    app.services.memory.add_fact(owner_of(app), "assistant", "A secret worth keeping")
    for method, path in [("GET", "memory"), ("GET", "personas"), ("POST", "memory/facts"), ("GET", "history"),
                         ("GET", "search?q=secret"), ("PATCH", "settings"), ("DELETE", "memory/facts/1")]:
        response = await app.client.request(method, "/app/api/" + path, headers=headers, json={"text": "x"})
        assert response.status == 401, (method, path)
        assert "secret" not in (await response.text()).lower()
    assert [f.text for f in app.services.memory.list_facts(owner_of(app), "assistant")] == ["A secret worth keeping"]


async def test_the_age_limit_is_a_setting(tmp_path, fake_openai):
    app = await MiniApp(tmp_path, fake_openai, web_auth_max_age_hours=1).start()
    try:
        assert (await app.client.get("/app/api/me", headers=auth(ALICE, age_seconds=2 * 3600))).status == 401
        assert (await app.client.get("/app/api/me", headers=auth(ALICE, age_seconds=1800))).status == 200
    finally:
        await app.stop()


async def test_the_chat_access_rule_applies(tmp_path, fake_openai):
    app = await MiniApp(tmp_path, fake_openai, allowed_users=[], admins=[ALICE["id"]]).start()
    try:
        assert (await app.json("GET", "me"))["id"] == ALICE["id"]  # an admin
        refused = await app.call("GET", "memory", BOB)
        assert refused.status == 403 and (await refused.json())["error"] == "not_allowed"
        app.services.store.directory.update_user(app.user(BOB).id, allowed=1)  # /allow
        assert (await app.call("GET", "memory", BOB)).status == 200
    finally:
        await app.stop()
    app = await MiniApp(tmp_path / "open", fake_openai, allowed_users=[], open_to_all=True).start()
    try:
        assert (await app.call("GET", "memory", STRANGER)).status == 200
    finally:
        await app.stop()


# -- the page and its headers --------------------------------------------------------------------
async def test_page_assets_ship_in_the_package_with_strict_headers(app):
    page = await app.client.get("/app")
    html = await page.text()
    assert page.status == 200 and "/app/static/app.js" in html
    assert "http" not in html.replace("https://web.telegram.org", "")  # nothing from a CDN
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "frame-ancestors" in csp
    assert page.headers["Cache-Control"] == "no-store" and page.headers["X-Content-Type-Options"] == "nosniff"
    for asset in ("app.js", "app.css", "texts.json"):
        response = await app.client.get(f"/app/static/{asset}")
        body = await response.text()
        assert response.status == 200 and TOKEN not in body
        assert re.findall(r"https?://[\w.-]+", body) in ([], ["https://web.telegram.org"])  # no CDN
        assert response.headers["Content-Security-Policy"] == csp
    api = await app.call("GET", "me")
    assert api.headers["Cache-Control"] == "no-store"
    assert (await app.client.get("/")).url.path == "/app"
    assert (await app.client.get("/app/static/../server.py")).status == 404


async def test_page_texts_exist_in_english_and_chinese(app):
    texts = await (await app.client.get("/app/static/texts.json")).json()
    assert set(texts) == {"en", "zh"} and set(texts["en"]) == set(texts["zh"])
    for key, english in texts["en"].items():
        assert sorted(part.split("}")[0] for part in english.split("{")[1:]) == \
            sorted(part.split("}")[0] for part in texts["zh"][key].split("{")[1:]), key


async def test_big_bodies_and_bad_json_are_refused(app):
    too_big = await app.client.post("/app/api/memory/facts", data=b"x" * (300 * 1024),
                                    headers={**auth(), "Content-Type": "application/json"})
    assert too_big.status == 413
    bad = await app.client.post("/app/api/memory/facts", data=b"{not json", headers=auth())
    assert bad.status == 400 and (await bad.json())["error"] == "bad_json"
    assert app.services.memory.list_facts(owner_of(app), "assistant") == []


# -- personas ------------------------------------------------------------------------------------
async def test_gallery_and_switching(app, fake_openai):
    me = await app.json("GET", "me")
    assert me == {"id": ALICE["id"], "name": "Alice", "lang": "en"}
    gallery = await app.json("GET", "personas")
    ids = [p["id"] for p in gallery["personas"]]
    assert set(app.services.personas.library.ids()) <= set(ids) and gallery["current"] == "assistant"
    linxi = next(p for p in gallery["personas"] if p["id"] == "linxi")
    assert linxi["starters"] and linxi["description"] and not linxi["private"]

    switched = await app.json("POST", "personas/linxi/choose")
    assert switched["kind"] == "started" and "林夕" in switched["notice"]
    assert app.services.store.directory.persona_of(owner_of(app)) == "linxi"
    assert (await app.json("GET", "personas"))["current"] == "linxi"
    request = await app.say("你好")
    assert "林夕" in request.messages[0]["content"]
    assert (await app.json("POST", "personas/linxi/choose"))["kind"] == "same"
    assert (await app.call("POST", "personas/nobody/choose")).status == 404


async def test_a_private_persona_and_its_avatar_are_only_its_owners(app):
    card = own_card(app, BOB)
    bobs = await app.json("GET", "personas", BOB)
    assert next(p for p in bobs["personas"] if p["id"] == card.id)["has_avatar"] is True
    avatar = await app.call("GET", f"personas/{card.id}/avatar", BOB)
    assert avatar.status == 200 and (await avatar.read())[:8] == b"\x89PNG\r\n\x1a\n"
    assert card.id not in [p["id"] for p in (await app.json("GET", "personas"))["personas"]]
    assert (await app.call("GET", f"personas/{card.id}/avatar")).status == 404
    assert (await app.call("POST", f"personas/{card.id}/choose")).status == 404
    assert app.services.store.directory.persona_of(owner_of(app)) is None


# -- memory --------------------------------------------------------------------------------------
async def test_facts_added_edited_and_deleted_on_the_page_are_in_the_next_request(app, fake_openai):
    added = await app.json("POST", "memory/facts", json={"text": "I am allergic to cats"})
    assert added["ok"] and added["notice"]
    fact = (await app.json("GET", "memory"))["facts"][0]
    assert fact["text"] == "I am allergic to cats" and fact["origin"] == "user"
    assert "allergic to cats" in request_text(await app.say("hello"))

    await app.json("PUT", f"memory/facts/{fact['id']}", json={"text": "I am allergic to dogs"})
    sent = request_text(await app.say("and now?"))
    assert "allergic to dogs" in sent and "allergic to cats" not in sent
    edited = (await app.json("GET", "memory"))["facts"][0]
    await app.json("DELETE", f"memory/facts/{edited['id']}")
    assert (await app.json("GET", "memory"))["facts"] == []
    assert "allergic to dogs" not in request_text(await app.say("anything else?"))


async def test_a_deleted_fact_is_never_learned_again(app, fake_openai):
    proposal = Reply(json.dumps({"facts": [{"text": "Alice lives in Paris."}]}))
    fake_openai.task_reply = lambda body: proposal if task_kind(body) == "facts" else default_task_reply(body)
    await app.say("I live in Paris.")
    await app.services.engine.drain()
    facts = (await app.json("GET", "memory"))["facts"]
    assert [f["text"] for f in facts] == ["Alice lives in Paris."]
    assert facts[0]["origin"] == "model" and "Paris" in facts[0]["sources"][0]["text"]  # its source turn
    await app.json("DELETE", f"memory/facts/{facts[0]['id']}")
    await app.say("Paris is lovely, I live there.")  # the model proposes it again
    await app.services.engine.drain()
    assert (await app.json("GET", "memory"))["facts"] == []
    assert "Alice lives in Paris." not in request_text(await app.say("hi"))


async def test_fact_refusals(app):
    bobs = app.services.memory.add_fact(owner_of(app, BOB), "assistant", "Bob's secret")
    assert (await app.call("DELETE", f"memory/facts/{bobs.id}")).status == 404
    assert (await app.call("PUT", f"memory/facts/{bobs.id}", json={"text": "mine now"})).status == 404
    assert [f.text for f in app.services.memory.list_facts(owner_of(app, BOB), "assistant")] == ["Bob's secret"]
    empty = await app.call("POST", "memory/facts", json={"text": "   "})
    assert empty.status == 400 and (await empty.json())["detail"]  # said in the chat's words
    assert (await app.call("DELETE", "memory/facts/abc")).status == 404
    assert "Bob's secret" not in await (await app.call("GET", "memory")).text()


async def test_the_user_persona_and_summaries(app, fake_openai):
    me = await app.json("PUT", "memory/me", json={"name": "Ally", "description": "a night-shift nurse"})
    assert me["name"] == "Ally" and app.services.store.directory.user(app.user().id).me_name == "Ally"
    assert "a night-shift nurse" in (await app.say("hi")).messages[0]["content"]
    too_long = await app.call("PUT", "memory/me", json={"name": "x" * 65, "description": ""})
    assert too_long.status == 400
    assert (await app.json("PUT", "memory/me", json={"name": "", "description": ""}))["name"] == ""
    assert app.services.store.directory.user(app.user().id).me_description is None
    assert (await app.json("GET", "memory"))["summaries"] == []


# -- lorebooks -------------------------------------------------------------------------------------
async def test_lorebook_of_an_own_persona(app, fake_openai):
    card = own_card(app)
    assert (await app.json("GET", "lorebooks"))["personas"] == [{"id": card.id, "name": card.name}]
    book = await app.json("GET", f"lorebooks/{card.id}")
    entries = book["entries"]
    entries[0] = {**entries[0], "keys": ["glade", "林间"], "content": "The glade heals whoever sleeps there.",
                  "enabled": True, "order": 3}
    entries.append({"keys": ["moon"], "content": "The moon is silver in Eldoria.", "enabled": False})
    saved = await app.json("PUT", f"lorebooks/{card.id}", json={"entries": entries})
    assert saved["entries"][0]["keys"] == ["glade", "林间"] and saved["entries"][-1]["enabled"] is False
    stored = app.services.personas.get(card.id).lorebook.entries
    assert stored[0].insertion_order == 3 and stored[-1].content == "The moon is silver in Eldoria."

    await app.json("POST", f"personas/{card.id}/choose")
    sent = request_text(await app.say("Is the glade safe? And the moon?"))
    assert "The glade heals whoever sleeps there." in sent
    assert "The moon is silver" not in sent  # switched off

    bad = await app.call("PUT", f"lorebooks/{card.id}", json={"entries": [{"keys": [], "content": "no key"}]})
    assert bad.status == 400
    assert (await app.call("PUT", f"lorebooks/{card.id}", json={"entries": [{"keys": ["a"], "content": "x",
                                                                             "order": "soon"}]})).status == 400
    assert app.services.personas.get(card.id).lorebook.entries[0].keys == ["glade", "林间"]  # unchanged


async def test_lorebooks_of_others_and_shipped_personas_are_refused(app):
    card = own_card(app, BOB)
    assert (await app.json("GET", "lorebooks"))["personas"] == []
    assert (await app.call("GET", f"lorebooks/{card.id}")).status == 404
    assert (await app.call("PUT", f"lorebooks/{card.id}", json={"entries": []})).status == 404
    assert (await app.call("PUT", "lorebooks/linxi", json={"entries": []})).status == 404
    assert len(app.services.personas.get(card.id).lorebook.entries) > 0


# -- documents -------------------------------------------------------------------------------------
async def test_documents_attach_detach_and_reading_position(app, fake_openai):
    document = app.services.reading.ingestor.ingest_bytes(NOVEL.encode(), "story.txt", app.user()).document
    listed = (await app.json("GET", "documents"))["documents"]
    assert listed[0]["id"] == document.id and len(listed[0]["chapters"]) == 4 and not listed[0]["attached"]

    assert (await app.json("PATCH", f"documents/{document.id}", json={"attached": True}))["notice"]
    assert "The story of part 4." in request_text(await app.say("what is it about?"))
    await app.json("PATCH", f"documents/{document.id}", json={"upto": 2})
    assert (await app.json("GET", "documents"))["documents"][0]["upto"] == 2
    sent = request_text(await app.say("and now?"))
    assert "The story of part 2." in sent and "The story of part 3." not in sent
    assert (await app.call("PATCH", f"documents/{document.id}", json={"upto": 9})).status == 400
    assert (await app.call("PATCH", f"documents/{document.id}", json={"upto": "2"})).status == 400
    await app.json("PATCH", f"documents/{document.id}", json={"upto": None})
    await app.json("PATCH", f"documents/{document.id}", json={"attached": False})
    assert "The story of part" not in request_text(await app.say("bye"))

    bobs = app.services.reading.ingestor.ingest_bytes(b"Bob's diary, private.", "diary.txt", app.user(BOB)).document
    assert (await app.call("PATCH", f"documents/{bobs.id}", json={"attached": True})).status == 404
    assert "diary" not in await (await app.call("GET", "documents")).text()


# -- history ---------------------------------------------------------------------------------------
async def test_history_search_and_export(app, fake_openai):
    await app.say("我周末去了西湖，拍了很多照片。", reply="西湖真美！")
    await app.say("I started learning the cello.", reply="Lovely!")
    first = app.services.service.conversation(app.services.self_service.place(app.user()))
    await app.json("POST", "personas/linxi/choose")
    await app.say("你好，林夕", reply="你好呀")
    await app.say("Bob's own words about 西湖", person=BOB)

    history = (await app.json("GET", "history"))["personas"]
    assert [group["persona"] for group in history] == ["linxi", "assistant"]  # the current one first
    assert history[1]["conversations"][0]["messages"] == 4

    found = (await app.json("GET", "search?q=" + "西湖"))["results"]
    assert {r["text"] for r in found} == {"我周末去了西湖，拍了很多照片。", "西湖真美！"}  # not Bob's
    assert [r["text"] for r in (await app.json("GET", "search?q=cello"))["results"]] == \
        ["I started learning the cello."]
    assert (await app.json("GET", "search?q="))["results"] == []

    messages = await app.json("GET", f"history/{first.id}")
    assert [m["text"] for m in messages["messages"]][:2] == ["我周末去了西湖，拍了很多照片。", "西湖真美！"]
    exported = await app.call("GET", f"history/{first.id}/export")
    assert exported.status == 200 and "attachment" in exported.headers["Content-Disposition"]
    document = json.loads(await exported.read())
    assert document["format"] == "companion-chat/1" and len(document["messages"]) == 4
    current = app.services.service.conversation(app.services.self_service.place(app.user()))
    assert len(json.loads(await (await app.call("GET", f"history/{current.id}/export")).read())["messages"]) >= 2

    bobs = app.services.service.conversation(app.services.self_service.place(app.user(BOB)))
    assert (await app.call("GET", f"history/{bobs.id}")).status == 404
    assert (await app.call("GET", f"history/{bobs.id}/export")).status == 404
    assert (await app.call("GET", "history/99999")).status == 404


# -- settings --------------------------------------------------------------------------------------
async def test_settings(app, fake_openai):
    settings = await app.json("GET", "settings")
    assert settings["language"] == "auto" and settings["checkins"]["available"] and not settings["voice"]["available"]
    changed = await app.json("PATCH", "settings", json={"language": "zh", "timezone": "Asia/Shanghai",
                                                        "checkins": {"enabled": True, "every_hours": 12,
                                                                     "quiet": "23-8"}})
    assert changed["language"] == "zh" and changed["timezone"] == "Asia/Shanghai"
    assert changed["timezone_label"] == "Asia/Shanghai (UTC+08:00)"
    assert (await app.json("PATCH", "settings", json={"timezone": "+9"}))["timezone_label"] == "UTC+09:00"
    await app.json("PATCH", "settings", json={"timezone": "Asia/Shanghai"})
    assert changed["checkins"]["enabled"] and changed["checkins"]["every_hours"] == 12
    user = app.services.store.directory.user(app.user().id)
    assert user.language_override == "zh" and user.timezone == "Asia/Shanghai"
    plan = app.services.life.checkins.plan(user.id)
    assert plan.enabled and plan.every.total_seconds() == 12 * 3600 and str(plan.quiet).startswith("23:00")
    assert (await app.json("GET", "me"))["lang"] == "zh"
    sent = (await app.say("几点了？")).messages
    assert "Asia/Shanghai" in sent[0]["content"] and said(sent[-1]["content"]) == "几点了？"  # the zone, local stamps
    off = await app.json("PATCH", "settings", json={"checkins": {"enabled": False}})
    assert off["checkins"]["enabled"] is False

    for change in ({"language": "fr"}, {"timezone": "Mars/Olympus"}, {"checkins": {"quiet": "soon"}},
                   {"checkins": {"enabled": True, "every_hours": 1}}, {"voice": True}):
        refused = await app.call("PATCH", "settings", json=change)
        assert refused.status == 400, change
        assert (await refused.json())["detail"]
    assert app.services.store.directory.user(app.user().id).timezone == "Asia/Shanghai"
