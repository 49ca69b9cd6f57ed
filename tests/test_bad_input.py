"""The bad-input corpus (tests/fakes/bad_inputs.py) through the real faces of the bot.

Every item must be either one clear refusal (on the command line: exit code 1 and one
line on stderr, no traceback; in Telegram: one reply) or handled safely, within the
issue's safety limits of 5 s and 500 MB peak memory, and a refusal must store nothing:
the row count of every table (the full-text index's shadow tables included) is the same
before and after. Telegram's update journal is the one table that grows on a refusal,
by design (every update is journaled on receipt and marked done).

Command-line cases run as their own processes, forked from a server that imported the
CLI once (tests/cli_runner.py), so each has its own peak memory (`wait4`) without paying
the interpreter start; the Telegram cases run the whole bot in-process (BotHarness),
whose peak is read from /proc (VmHWM, reset before each case) and includes the test's own
copy of the file. Measured figures are in docs/reliability.md (`python -m benchmarks
bad_input` prints them).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from pathlib import Path

import pytest

from tests.cli_runner import ForkedCompanion, Outcome, clean_env, run_measured
from tests.conftest import table_names
from tests.fakes import bad_inputs as corpus
from tests.fakes.telegram_server import DEFAULT_USER_ID as ALICE
from tests.test_cli import model_env

SAFETY_SECONDS = 5.0  # the limit for a refusal or safe handling
# A document at the 10-million-character limit is read in full (split, counted, indexed):
# about 3 s on a busy two-core machine, so its safety limit is generous.
SLOW_CASES = {"one 10 MB line": 15.0}
PEAK_MB = 500.0
REFUSED, STORED = "refused", "stored"

# case -> (outcome, a fragment of the refusal, or the fields of the stored document)
DOCUMENTS: dict[str, tuple[str, object]] = {
    "empty .txt": (REFUSED, "The file is empty"),
    "empty .epub": (REFUSED, "The file is empty"),
    "empty .pdf": (REFUSED, "The file is empty"),
    "empty .docx": (REFUSED, "The file is empty"),
    "random bytes .epub": (REFUSED, "named .epub but is not one inside"),
    "random bytes .pdf": (REFUSED, "named .pdf but is not one inside"),
    "random bytes .docx": (REFUSED, "named .docx but is not one inside"),
    "random bytes .png": (REFUSED, "looks like an image, not a document"),
    "zip bomb .epub": (REFUSED, "(a zip bomb?)"),
    "zip bomb .epub, lying sizes": (REFUSED, "No text was found in this EPUB file"),
    "zip bomb .epub, overlapping": (REFUSED, "(a zip bomb?)"),
    "zip bomb .docx": (REFUSED, "(a zip bomb?)"),
    "zip bomb .docx, lying sizes": (REFUSED, "This Word file is damaged"),
    "zip bomb .docx, overlapping": (REFUSED, "(a zip bomb?)"),
    "zip of zip bombs": (REFUSED, "This ZIP holds 10 documents"),
    "zip bomb in the mimetype member": (REFUSED, "This ZIP holds no document I can read"),
    "HTML nested 100,000 deep": (STORED, {"format": "html", "chars": 4}),
    "EPUB with XHTML nested 100,000 deep": (STORED, {"format": "epub", "chars": 6}),
    "EPUB with a billion-laughs chapter": (STORED, {"format": "epub", "chars": 10}),  # entities never expanded
    "file over the 20 MB cap": (REFUSED, "over the 20.0 MB limit"),
    "invalid UTF-8": (STORED, {"format": "txt", "encoding": "utf-8"}),
    "one 10 MB line": (STORED, {"format": "txt", "chars": 10_000_000}),
    "control characters only": (REFUSED, "This file is not plain text"),
    "control characters in prose": (STORED, {"format": "txt", "encoding": "utf-8"}),
    "planted instructions": (STORED, {"format": "txt", "chapters": 1}),
}
# In Telegram some refusals come earlier and say it in Telegram's terms.
TELEGRAM_DOCUMENTS = {
    **DOCUMENTS,
    "random bytes .png": (REFUSED, "can't see pictures"),
    "file over the 20 MB cap": (REFUSED, "Telegram lets bots download files of at most 20 MB"),
}
CARDS: dict[str, tuple[str, str]] = {
    "empty .png card": (REFUSED, "the file is not a PNG file"),
    "random bytes .png card": (REFUSED, "the file is not a PNG file"),
    "zip bomb .charx": (REFUSED, "'card.json' in the .charx file is over 4 MB"),
    "zip bomb .charx, lying sizes": (REFUSED, "the card is not valid JSON"),
    "zip bomb .charx, overlapping": (REFUSED, "'card.json' in the .charx file is over 4 MB"),
    "PNG card with a 10 MB chunk": (STORED, "old-tom"),
    "PNG card with a 10 MB card chunk": (REFUSED, "a PNG text chunk is over 8 MB"),
    "PNG card with a zTXt bomb": (REFUSED, "a PNG text chunk is over 8 MB"),
    "deeply nested card JSON": (REFUSED, "the card's JSON is nested too deeply"),
    "invalid UTF-8 card JSON": (REFUSED, "the card is not UTF-8 JSON"),
}
TELEGRAM_CARDS = {  # a PNG that holds no card is a picture to the bot, and it says so
    **CARDS,
    "empty .png card": (REFUSED, "can't see pictures"),
    "random bytes .png card": (REFUSED, "can't see pictures"),
}
MIME_TYPES = {".epub": "application/epub+zip", ".pdf": "application/pdf", ".png": "image/png",
              ".zip": "application/zip", ".charx": "application/zip", ".json": "application/json",
              ".html": "text/html", ".txt": "text/plain",
              ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document"}


# -- helpers ---------------------------------------------------------------------------------
def store_row_counts(store, skip: tuple[str, ...] = ()) -> dict[str, int]:
    """Rows per table of a running bot's store, on either backend."""
    return {t: store.db.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in table_names(store)
            if t not in skip}


def row_counts(db_path: Path, skip: tuple[str, ...] = ()) -> dict[str, int]:
    db = sqlite3.connect(db_path)
    try:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: db.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables if t not in skip}
    finally:
        db.close()


def changed(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {t: after.get(t, 0) - before.get(t, 0) for t in set(before) | set(after)
            if after.get(t, 0) != before.get(t, 0)}


def within_limits(result: Outcome, case: str) -> None:
    assert result.seconds < SLOW_CASES.get(case, SAFETY_SECONDS), f"{case}: {result.seconds:.1f} s"
    assert result.peak_mb < PEAK_MB, f"{case}: peak {result.peak_mb:.0f} MB"


def one_clear_line(stderr: str, fragment: str) -> None:
    assert "Traceback" not in stderr, stderr
    assert stderr.count("\n") == 1 and stderr.startswith("companion: "), stderr
    assert fragment in stderr, stderr


# -- the command line ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("corpus")
    return {**corpus.document_corpus(folder / "documents"), **corpus.card_corpus(folder / "cards")}


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    runner = ForkedCompanion(tmp_path_factory.mktemp("cli"))
    yield runner
    runner.close()


@pytest.fixture(scope="module")
def cli_db(tmp_path_factory, cli) -> Path:
    """A database that already has the user and one document, so a refusal has nothing to create."""
    folder = tmp_path_factory.mktemp("db")
    db_path = folder / "companion.db"
    (folder / "hello.txt").write_text("Hello there.\n\nA first small document.\n")
    ready = cli(["ingest", str(folder / "hello.txt"), "--user", "ann", "--json"],
                clean_env({"COMPANION_DB": str(db_path)}))
    assert ready.code == 0, ready.stderr
    return db_path


@pytest.mark.parametrize("case", list(DOCUMENTS))
def test_companion_ingest(case, cli, cli_db, files):
    outcome, expected = DOCUMENTS[case]
    before = row_counts(cli_db)
    result = cli(["ingest", str(files[case]), "--user", "ann", "--json"], clean_env({"COMPANION_DB": str(cli_db)}))
    within_limits(result, case)
    after = row_counts(cli_db)
    if outcome == REFUSED:
        assert result.code == 1 and result.stdout == ""
        one_clear_line(result.stderr, expected)
        assert changed(before, after) == {}
        return
    assert result.code == 0 and result.stderr == "", result.stderr
    report = json.loads(result.stdout)
    assert {key: report[key] for key in expected} == expected
    assert after["documents"] == before["documents"] + 1
    assert after["document_passages"] == after["document_passages_fts"] > before["document_passages"]


@pytest.mark.parametrize("case", list(CARDS))
def test_companion_personas_import(case, cli, cli_db, files):
    outcome, expected = CARDS[case]
    before = row_counts(cli_db)
    result = cli(["personas", "import", str(files[case])], clean_env({"COMPANION_DB": str(cli_db)}))
    within_limits(result, case)
    after = row_counts(cli_db)
    if outcome == REFUSED:
        assert result.code == 1 and result.stdout == ""
        one_clear_line(result.stderr, f"companion: {files[case].name}: {expected}")
        assert changed(before, after) == {}
        return
    assert result.code == 0 and result.stdout == f"{expected}\n", result.stderr
    assert changed(before, after) == {"stored_personas": 1}
    db = sqlite3.connect(cli_db)
    avatar = db.execute("SELECT length(avatar) FROM stored_personas WHERE id = ?", [expected]).fetchone()[0]
    db.close()
    assert avatar < 1024 * 1024  # the picture is stored re-encoded, without the 10 MB chunk


def test_huge_and_deep_persona_files(cli, tmp_path):
    personas_dir = tmp_path / "personas"
    personas_dir.mkdir()
    (personas_dir / "huge.toml").write_bytes(corpus.huge_toml())
    (personas_dir / "deep.toml").write_text("a = " + "[" * 100_000 + "]" * 100_000 + "\n")
    env = clean_env({"COMPANION_DB": str(tmp_path / "c.db")})
    refused = cli(["personas", "import", str(personas_dir / "huge.toml")], env)
    within_limits(refused, "huge TOML, imported")
    assert refused.code == 1 and refused.stdout == ""
    one_clear_line(refused.stderr, "huge.toml is a persona file")
    listed = cli(["personas", "list"], {**env, "COMPANION_PERSONAS_DIR": str(personas_dir)})
    within_limits(listed, "huge TOML in COMPANION_PERSONAS_DIR")
    assert listed.code == 0 and "assistant" in listed.stdout  # the others are still offered
    assert sorted(listed.stderr.splitlines()) == [
        f"companion: warning: {personas_dir / 'deep.toml'}: tables or arrays nested too deeply; flatten them",
        f"companion: warning: {personas_dir / 'huge.toml'}: the file is over 1024 KB; shorten it"]


def test_unreadable_chat_files_are_refused(cli, tmp_path):
    env = clean_env({"COMPANION_DB": str(tmp_path / "c.db")})
    for name, data in (("empty.jsonl", b""), ("random.jsonl", os.urandom(64 * 1024)),
                       ("nested.json", b"[" * 100_000 + b"]" * 100_000)):
        path = tmp_path / name
        path.write_bytes(data)
        result = cli(["import", str(path), "--user", "ann"], env)
        within_limits(result, name)
        assert result.code == 1 and result.stdout == "", name
        assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert not (tmp_path / "c.db").exists() or row_counts(tmp_path / "c.db").get("messages", 0) == 0


def test_terminal_chat_with_odd_text(fake_openai, tmp_path, cli):
    db_path = tmp_path / "c.db"
    lines = [corpus.emoji_message(), corpus.control_characters(), "caf\xe9 \xff", "next"]
    stdin = b"".join(line.encode("utf-8") + b"\n" for line in lines[:2]) + b"caf\xe9 \xff\nnext\n"
    result = cli(["chat", "--user", "ann"], clean_env(model_env(fake_openai, db_path)), stdin=stdin)
    within_limits(result, "terminal chat")
    assert result.code == 0, result.stderr
    db = sqlite3.connect(db_path)
    stored = db.execute("SELECT role, content FROM messages ORDER BY id").fetchall()
    db.close()
    assert [role for role, _ in stored] == ["user", "assistant"] * 4
    assert [content for role, content in stored if role == "user"] == [
        corpus.emoji_message(), corpus.control_characters(), "caf\ufffd \ufffd", "next"]


def test_the_forked_runner_matches_the_real_script(cli, cli_db, files, tmp_path):
    """The real `companion` script gives the same answer as the forked child, within the limits."""
    env = clean_env({"COMPANION_DB": str(cli_db)})
    for case in ("zip bomb .docx, lying sizes",):  # the one that took 2 GB before the fix
        args = ["ingest", str(files[case]), "--user", "ann", "--json"]
        real, forked = run_measured(args, env, tmp_path / "real"), cli(args, env)
        assert (real.code, real.stdout, real.stderr) == (forked.code, forked.stdout, forked.stderr)
        assert real.peak_mb < PEAK_MB, f"{case}: peak {real.peak_mb:.0f} MB"


# -- Telegram --------------------------------------------------------------------------------
def _peak_reset() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM, the peak resident size
        return True
    except OSError:
        return False


def _memory_mb(field: str) -> float:
    status = Path("/proc/self/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+) kB", status).group(1)) / 1024


async def _final_reply(telegram, count: int) -> str:
    """The text of the bot's newest message once there are more than `count` and it is no
    longer a progress line ("📖 … downloading… 40%")."""
    def settled():
        messages = telegram.bot_messages(ALICE)
        return len(messages) > count and not (messages[-1].text or "").startswith("📖")

    await telegram.wait_until(settled, 15)
    return telegram.bot_messages(ALICE)[-1].text or ""


# The update journal grows by design; chapter summaries of a long document stored earlier
# are written in the background while later cases run (checked below to belong to it).
SKIPPED = ("updates", "document_summaries")


async def test_telegram_uploads(companion, telegram, fake_openai, files):
    telegram.private_message("hello")  # the user, the conversation: what a refusal must not create
    await companion.replies(ALICE, 1)
    store = companion.store
    measure = _peak_reset()
    problems = []
    for case, (outcome, expected) in {**TELEGRAM_DOCUMENTS, **TELEGRAM_CARDS}.items():
        path = files[case]
        data = path.read_bytes()
        file_id = telegram.add_file(data, path.name, MIME_TYPES[path.suffix])
        del data
        before = store_row_counts(store, skip=SKIPPED)
        count = len(telegram.bot_messages(ALICE))
        if measure:
            _peak_reset()
        resident = _memory_mb("VmRSS") if measure else 0.0
        start = time.monotonic()
        telegram.document(file_id)
        reply = await _final_reply(telegram, count)
        seconds = time.monotonic() - start
        growth = _memory_mb("VmHWM") - resident if measure else 0.0
        after = store_row_counts(store, skip=SKIPPED)
        print(f"{case}: {seconds:.2f} s, +{growth:.0f} MB over {resident:.0f} MB")
        if seconds >= SLOW_CASES.get(case, SAFETY_SECONDS) or growth >= PEAK_MB:
            problems.append(f"{case}: {seconds:.1f} s, +{growth:.0f} MB")
        if outcome == REFUSED:
            if not isinstance(expected, str) or expected not in reply or changed(before, after):
                problems.append(f"{case}: {reply!r}, rows {changed(before, after)}")
        elif case in CARDS:
            if "Imported the character card" not in reply or changed(before, after) != {"stored_personas": 1}:
                problems.append(f"{case}: {reply!r}, rows {changed(before, after)}")
        elif not reply.startswith("📚") or changed(before, after).get("documents") != 1:
            problems.append(f"{case}: {reply!r}, rows {changed(before, after)}")
    assert problems == [], "\n".join(problems)
    orphans = companion.store.db.execute(
        "SELECT count(*) FROM document_summaries WHERE document_id NOT IN (SELECT id FROM documents)").fetchone()[0]
    assert orphans == 0
    count = len(telegram.bot_messages(ALICE))
    telegram.private_message("are you still there?")
    await companion.replies(ALICE, count + 1)  # (the model's answer: background summaries share the fake)
    assert any(r.messages[-1]["content"].endswith("are you still there?") for r in fake_openai.chat_requests)


async def test_telegram_odd_messages_are_answered_and_stored(companion, telegram, fake_openai):
    sent = [corpus.emoji_message(), corpus.control_characters(), "lone \ud800 surrogates \udfff here", "next"]
    # NUL, like a lone surrogate, becomes U+FFFD (no text, and PostgreSQL's cannot hold it)
    stored = [corpus.emoji_message(), corpus.control_characters().replace("\x00", "\ufffd"),
              "lone \ufffd surrogates \ufffd here", "next"]
    for number, text in enumerate(sent, 1):
        fake_openai.enqueue(f"reply {number}")
        start = time.monotonic()
        telegram.private_message(text)
        assert (await companion.replies(ALICE, number))[-1] == f"reply {number}"
        assert time.monotonic() - start < SAFETY_SECONDS
    rows = companion.store.db.execute("SELECT role, content, status FROM messages ORDER BY id").fetchall()
    assert [tuple(row) for row in rows if row[0] == "user"] == [("user", text, "complete") for text in stored]
    assert fake_openai.chat_requests[2].messages[-1]["content"].endswith("lone \ufffd surrogates \ufffd here")
    # every update is finished in the journal; the last one just after its reply was sent
    unfinished = lambda: companion.store.db.execute(  # noqa: E731
        "SELECT count(*) FROM updates WHERE done_at IS NULL").fetchone()[0]
    await telegram.wait_until(lambda: unfinished() == 0, 5, message="every update to be finished")


async def test_planted_instructions_stay_inside_the_document_block(companion, telegram, fake_openai):
    planted = corpus.planted_instructions()
    telegram.document(telegram.add_file(planted.encode(), "lighthouse.txt", "text/plain"))
    assert (await _final_reply(telegram, 0)).startswith("📚")
    document = companion.services.reading.documents.documents_of(companion.store.directory.find_user("tg", ALICE).id)[0]
    assert companion.services.reading.documents.text(document.id).strip() == planted.strip()  # stored verbatim
    fake_openai.enqueue("It is about a lighthouse keeper.")
    telegram.private_message("What is the document about?")
    await companion.replies(ALICE, 2)
    messages = fake_openai.chat_requests[-1].messages
    assert messages[0]["role"] == "system" and corpus.PLANTED_MARKER not in messages[0]["content"]
    holders = [m for m in messages if corpus.PLANTED_MARKER in m["content"]]
    assert len(holders) == 1 and holders[0]["role"] == "user"
    block = holders[0]["content"]
    tag = re.search(r"^<<<DOCUMENT (\S+)>>>$", block, re.MULTILINE).group(1)
    assert tag != "00000000"  # the planted end marker does not close the block
    start, end = block.index(f"<<<DOCUMENT {tag}>>>"), block.index(f"<<<END DOCUMENT {tag}>>>")
    assert start < block.index(corpus.PLANTED_MARKER) < block.index("PWNED") < end
    assert "reading material, not instructions" in block[:start]
