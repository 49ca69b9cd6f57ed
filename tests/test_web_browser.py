"""The Mini App end to end in a real headless Chromium (Debian's `chromium`, driven by
Playwright for Python through `executable_path`; no browser download), opened as Telegram
opens it: `/app#tgWebAppData=<initData signed with the test token>&tgWebAppVersion=8.0&
tgWebAppPlatform=web`. What the page does is checked in the database and in the next
request the fake model server receives.

Each page is photographed; with MINI_APP_SCREENSHOTS set (README: `docs/mini-app`, a
path in the repository) the pictures go there, else into the test's temporary folder.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path
from urllib.parse import quote

import pytest
from PIL import Image, ImageDraw

from memory.compaction import Segment, SummaryStore
from memory.records import Owner
from personas.cards import card_to_png, read_card
from tests.card_samples import as_json, rich_v2_card
from tests.mini_app import ALICE, BOB, TOKEN, MiniApp, init_data, request_text

REPOSITORY = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
playwright_api = pytest.importorskip("playwright.async_api", reason="Playwright for Python is not installed "
                                     "(pip install -e '.[test]')")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed "
                                    "(apt-get install chromium; .ci/run installs it)")
pytestmark = pytest.mark.timeout(180)
DARK_THEME = {"bg_color": "#17212b", "text_color": "#f5f5f5", "hint_color": "#708499", "link_color": "#6ab3f3",
              "button_color": "#5288c1", "button_text_color": "#ffffff", "secondary_bg_color": "#232e3c"}
NOVEL = "\n\n".join(f"第{n}回 {title}\n\n" + ("孙悟空与唐僧西行取经，一路降妖除魔。" * 30)
                    for n, title in enumerate(["灵根育孕源流出", "悟彻菩提真妙理", "四海千山皆拱伏"], 1))


def test_ci_has_chromium():
    """CI installs it (.ci/run): there the browser tests must run, not skip."""
    if os.environ.get("CI"):
        assert CHROMIUM is not None, ".ci/run should have installed Debian's chromium"


def shots_dir(tmp_path: Path) -> Path:
    wanted = os.environ.get("MINI_APP_SCREENSHOTS")  # relative to the repository (tests run elsewhere)
    folder = REPOSITORY / wanted if wanted else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def avatar_image(colour: tuple[int, int, int]) -> bytes:
    image = Image.new("RGB", (256, 256), colour)
    draw = ImageDraw.Draw(image)
    draw.ellipse((48, 48, 208, 208), fill=(255, 236, 200))
    draw.ellipse((96, 104, 116, 124), fill=(40, 40, 40))
    draw.ellipse((140, 104, 160, 124), fill=(40, 40, 40))
    draw.arc((96, 130, 160, 176), 20, 160, fill=(120, 40, 40), width=6)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def launch_url(app: MiniApp, person: dict, *, theme: dict | None = None, page: str | None = None,
               raw_init_data: str | None = None) -> str:
    data = raw_init_data if raw_init_data is not None else init_data(person)
    fragment = f"tgWebAppData={quote(data, safe='')}&tgWebAppVersion=8.0&tgWebAppPlatform=web"
    if theme:
        fragment += "&tgWebAppThemeParams=" + quote(json.dumps(theme), safe="")
    if page:
        fragment += f"&page={page}"
    return f"{app.url}#{fragment}"


@pytest.fixture
async def app(tmp_path, fake_openai):
    app = await MiniApp(tmp_path, fake_openai).start()
    yield app
    await app.stop()


@pytest.fixture
async def browser():
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        await browser.close()


async def open_page(browser, url: str, *, width: int = 420, height: int = 860):
    context = await browser.new_context(viewport={"width": width, "height": height}, device_scale_factor=1)
    context.set_default_timeout(10_000)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    await page.goto(url)
    return page, errors


async def photograph(page, tmp_path: Path, name: str) -> None:
    await page.locator("#toast").evaluate("toast => { toast.hidden = true; }")  # not over the page
    await page.screenshot(path=str(shots_dir(tmp_path) / f"{name}.png"), full_page=True)


async def doing(page, method: str, path: str, action) -> dict:
    """Run a page action and wait for the API call it makes (`path`: a part of the URL)."""
    async with page.expect_response(lambda r: r.request.method == method and f"/app/api/{path}" in r.url) as info:
        await action()
    response = await info.value
    assert response.ok, (response.status, await response.text())
    return await response.json()


def furnish(app: MiniApp) -> dict:
    """Alice's companion as after a few weeks: a card of her own with an avatar and a
    lorebook, a conversation in two languages, a learned fact with its source turn, a
    summary, and a novel with chapters."""
    services = app.services
    alice = app.user(ALICE)
    card = read_card(as_json(rich_v2_card()), "seraphina.json").persona
    imported = services.personas.import_card(card_to_png(card, avatar_image((92, 140, 110))), "seraphina.png",
                                             owner=alice)
    owner = Owner.user(alice.id)
    engine = services.engine
    conversation = engine.conversation_for(owner, "assistant", user=alice)
    said = services.store.conversations.add_message(conversation.id, "user", "I started learning the cello last week, "
                                      "and my teacher is called Ms. Ortiz.")
    services.store.conversations.add_message(conversation.id, "assistant", "That's wonderful! How are the first lessons going?")
    services.store.conversations.add_message(conversation.id, "user", "我周末去了西湖，拍了很多照片。")
    services.store.conversations.add_message(conversation.id, "assistant", "西湖的秋天一定很美！你最喜欢哪一张？")
    learned = services.memory.facts.add(owner, "assistant", "Is learning the cello; the teacher is Ms. Ortiz",
                                        origin="model", source_ids=[said.id], said_at=said.created_at)
    SummaryStore(services.store).save(conversation.id, Segment(
        None, 0, said.id, said.id, said.created_at, said.created_at,
        "Alice talked about her new cello lessons and a weekend trip to West Lake.", 20))
    document = services.reading.ingestor.ingest_bytes(NOVEL.encode("utf-8"), "西游记.txt", alice).document
    return {"card": imported.persona, "conversation": conversation, "learned": learned, "document": document}


@needs_chromium
async def test_a_new_user_sees_the_shipped_personas_and_switching_changes_the_chat(app, browser, tmp_path):
    page, errors = await open_page(browser, launch_url(app, ALICE))
    await page.wait_for_selector("article.persona")
    names = await page.locator("article.persona .name").all_inner_texts()
    shipped = [p.name for p in app.services.personas.all()]
    assert all(any(name.startswith(persona) for name in names) for persona in shipped), (names, shipped)
    await photograph(page, tmp_path, "personas")

    await doing(page, "POST", "personas/linxi/choose", page.locator("article[data-persona='linxi'] button.choose").click)
    await page.wait_for_selector("article[data-persona='linxi'].current")
    alice = app.user(ALICE)
    assert app.services.store.directory.persona_of(Owner.user(alice.id)) == "linxi"
    request = await app.say("你好")
    assert "林夕" in request.messages[0]["content"]  # the next request is the new persona's
    assert errors == []


@needs_chromium
async def test_memory_edits_on_the_page_are_in_the_next_request(app, browser, tmp_path):
    furnished = furnish(app)
    page, errors = await open_page(browser, launch_url(app, ALICE, page="memory"))
    await page.wait_for_selector("[data-page='memory'] .fact")
    assert "Ms. Ortiz" in await page.locator(".fact .source").first.inner_text()  # its source turn

    await page.fill("#new-fact", "My cat is called Mochi")
    await doing(page, "POST", "memory/facts", lambda: page.click("#add-fact"))
    await page.wait_for_selector(".fact:has-text('Mochi')")
    memory = app.services.memory
    owner = Owner.user(app.user(ALICE).id)
    assert [f.text for f in memory.list_facts(owner, "assistant")][-1] == "My cat is called Mochi"

    mochi = page.locator(".fact:has-text('Mochi')")
    await mochi.locator("button.edit").click()
    await mochi.locator("textarea").fill("My cat is called Mochi; she is three")
    await doing(page, "PUT", "memory/facts/", mochi.locator("button.save").click)
    await page.wait_for_selector(".fact:has-text('she is three')")
    await photograph(page, tmp_path, "memory")

    learned = furnished["learned"]
    await doing(page, "DELETE", f"memory/facts/{learned.id}",
                page.locator(f".fact[data-fact='{learned.id}'] button.delete").click)
    await page.wait_for_selector(f".fact[data-fact='{learned.id}']", state="detached")
    assert memory.facts.get(owner, "assistant", learned.id).status == "deleted"

    sent = request_text(await app.say("What do you remember about me?"))
    assert "My cat is called Mochi; she is three" in sent
    assert learned.text not in sent  # deleted: gone from the request (the turn it came from stays)
    assert errors == []


@needs_chromium
async def test_history_search_finds_chinese_and_english(app, browser, tmp_path):
    furnish(app)
    page, errors = await open_page(browser, launch_url(app, ALICE, page="history"))
    await page.wait_for_selector("[data-page='history'] [data-conversation]")
    await page.fill("#search-query", "西湖")
    await page.click("#search-button")
    await page.wait_for_selector("#search-results .result")
    assert "西湖" in await page.locator("#search-results").inner_text()
    assert await page.locator("#search-results mark").count() >= 1
    await photograph(page, tmp_path, "history")
    await page.fill("#search-query", "cello")
    await page.click("#search-button")
    await page.wait_for_selector("#search-results .result:has-text('cello')")
    assert errors == []


@needs_chromium
async def test_the_other_pages_work_and_are_photographed(app, browser, tmp_path):
    furnished = furnish(app)
    store, documents = app.services.store, app.services.reading.documents
    alice = app.user(ALICE)
    page, errors = await open_page(browser, launch_url(app, ALICE, page="personas"))
    await page.wait_for_selector(f"article[data-persona='{furnished['card'].id}'] img.avatar")
    await photograph(page, tmp_path, "personas-with-a-card")

    await page.click("button[data-tab='lore']")
    await page.wait_for_selector("#lore-entries .lore-entry")
    first = page.locator("#lore-entries .lore-entry").first
    await first.locator("input.keys").fill("forest, 森林")
    await first.locator("input.enabled").uncheck()
    await doing(page, "PUT", "lorebooks/", lambda: page.click("#save-lore"))
    book = app.services.personas.get(furnished["card"].id).lorebook
    assert book.entries[0].keys == ["forest", "森林"] and book.entries[0].enabled is False
    await photograph(page, tmp_path, "lorebook")

    await page.click("button[data-tab='documents']")
    card = page.locator(f"[data-document='{furnished['document'].id}']")
    await card.wait_for()
    await doing(page, "PATCH", "documents/", card.locator("input.attach").check)
    await page.wait_for_selector(f"[data-document='{furnished['document'].id}'] select.upto")
    conversation = app.services.service.conversation(app.services.self_service.place(alice))
    assert furnished["document"].id in documents.attached_ids(conversation.id)
    await doing(page, "PATCH", "documents/", lambda: page.locator(
        f"[data-document='{furnished['document'].id}'] select.upto").select_option("2"))
    assert documents.attachments(conversation.id)[0].upto_chapter == 2
    await photograph(page, tmp_path, "documents")

    await page.click("button[data-tab='settings']")
    await page.wait_for_selector("#timezone")
    await page.fill("#timezone", "Asia/Shanghai")
    await doing(page, "PATCH", "settings", lambda: page.click("#save-zone"))
    await playwright_api.expect(page.locator("#timezone")).to_have_value("Asia/Shanghai")
    assert store.directory.user(alice.id).timezone == "Asia/Shanghai"
    await photograph(page, tmp_path, "settings")
    assert errors == []


@needs_chromium
async def test_chinese_user_with_a_dark_theme(app, browser, tmp_path):
    page, errors = await open_page(browser, launch_url(app, BOB, theme=DARK_THEME))
    await page.wait_for_selector("article.persona")
    assert await page.locator("button[data-tab='memory']").inner_text() == "记忆"
    background = await page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(23, 33, 43)"  # Telegram's bg_color
    await photograph(page, tmp_path, "personas-zh-dark")
    await page.evaluate("theme => window.Telegram.WebView.receiveEvent('theme_changed', {theme_params: theme})",
                        {"bg_color": "#ffffff", "text_color": "#000000"})  # the user switched back to light
    assert await page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(255, 255, 255)"
    assert errors == []


@needs_chromium
@pytest.mark.parametrize("case", ["forged", "three_days_old", "missing"])
async def test_bad_init_data_shows_no_data_and_gets_401(app, browser, tmp_path, case):
    furnish(app)
    raw = {"forged": init_data(ALICE, token="654321:another-bot"),
           "three_days_old": init_data(ALICE, age_seconds=3 * 24 * 3600), "missing": ""}[case]
    page, _ = await open_page(browser, launch_url(app, ALICE, raw_init_data=raw))
    await page.wait_for_selector("#gate:not([hidden])")
    assert await page.locator("#gate-text").inner_text() == "Open this from the bot in Telegram."
    body = await page.locator("body").inner_text()
    assert "Ms. Ortiz" not in body and "Seraphina" not in body and "西湖" not in body
    assert await page.locator("#shell").is_hidden()
    status = await page.evaluate("""async (raw) => (await fetch('/app/api/memory',
        {headers: {Authorization: 'tma ' + raw}})).status""", raw)
    assert status == 401
    if case == "forged":
        await photograph(page, tmp_path, "not-from-telegram")
