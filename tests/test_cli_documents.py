"""`companion ingest` and `companion characters` as a user runs them: real processes,
a real database file, the fake model over HTTP."""

import json

from memory.schema import open_store
from personas import read_card
from tests.fakes.documents import shared_data_file
from tests.fakes.novels import ZH_CHARACTERS_REPLY, ZH_PROFILE_REPLY, NovelModel, chinese_novel
from tests.test_cli import companion, model_env


def counts(db_path):
    store = open_store(db_path)
    try:
        return {table: store.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for table in ("documents", "document_passages", "document_passages_fts")}
    finally:
        store.close()


def test_ingest_json_reports_the_stored_document(tmp_path, db_path):
    path = shared_data_file("pride_and_prejudice.txt")
    result = companion(["ingest", str(path), "--user", "ann", "--json"], env_extra={"COMPANION_DB": str(db_path)})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == {"id", "title", "format", "encoding", "chars", "tokens", "chapters", "volumes", "toc_entries",
                           "stripped_lines", "seconds", "stages"}
    assert (report["title"], report["format"], report["encoding"], report["chapters"]) == (
        "Pride and Prejudice", "txt", "utf-8", 61)
    assert isinstance(report["chars"], int) and report["tokens"] > 100_000 and report["seconds"] > 0
    assert result.stderr == ""  # no progress bar with --json
    stored = counts(db_path)
    assert stored["documents"] == 1 and stored["document_passages"] == stored["document_passages_fts"] > 0


def test_ingest_json_reports_what_cleaning_found_in_a_messy_web_file(tmp_path, db_path):
    from tests.fakes.messy_novels import XIYOUJI, messy_variants

    shared_data_file(XIYOUJI)
    variant = messy_variants(XIYOUJI)["everything at once"]
    path = tmp_path / "西游记_笔趣阁.txt"
    path.write_bytes(variant.data)
    result = companion(["ingest", str(path), "--user", "ann", "--json"], env_extra={"COMPANION_DB": str(db_path)})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["chapters"], report["volumes"], report["toc_entries"], report["stripped_lines"]) == (
        100, 10, 100, variant.stripped)
    assert set(report["stages"]) >= {"extract", "passages", "rows", "tokenizer", "tokens", "index forms", "index",
                                     "commit", "checkpoint"}
    plain = companion(["ingest", str(path), "--user", "bob"], env_extra={"COMPANION_DB": str(db_path)})
    assert f"100 chapters in 10 volumes, {variant.stripped} junk lines stripped" in plain.stdout


def test_ingest_refusals_are_one_line_with_exit_code_1(tmp_path, db_path):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    env = {"COMPANION_DB": str(db_path)}
    for path in (empty, tmp_path / "missing.txt"):
        result = companion(["ingest", str(path), "--user", "ann", "--json"], env_extra=env)
        assert result.returncode == 1 and result.stdout == ""
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("companion: ")
    assert counts(db_path)["documents"] == 0


def test_ingest_with_a_progress_bar_and_attach(tmp_path, db_path, fake_openai):
    path = tmp_path / "西游小记.txt"
    path.write_bytes(chinese_novel().encode("gb18030"))
    env = model_env(fake_openai, db_path)
    result = companion(["ingest", str(path), "--user", "ann", "--attach"], env_extra=env)
    assert result.returncode == 0, result.stderr
    assert "reading the text" in result.stderr and "counting and indexing" in result.stderr
    assert "“西游小记” (txt, gb18030), " in result.stdout and "5 chapters" in result.stdout
    assert "read verbatim" in result.stdout
    shown = companion(["context", "--user", "ann", "--json", "--message", "hi"], env_extra=env)
    messages = json.loads(shown.stdout)["messages"]
    assert messages[1]["section"] == "documents" and "七十二般变化" in messages[1]["content"]


def test_characters_lists_and_picks_with_a_card(tmp_path, db_path, fake_openai):
    fake_openai.default_reply = NovelModel(characters=ZH_CHARACTERS_REPLY, profile=ZH_PROFILE_REPLY)
    path = tmp_path / "西游小记.txt"
    path.write_text(chinese_novel(), encoding="utf-8")
    env = model_env(fake_openai, db_path)
    document_id = json.loads(companion(["ingest", str(path), "--user", "ann", "--json"], env_extra=env).stdout)["id"]
    listed = companion(["characters", str(document_id), "--user", "ann", "--json"], env_extra=env)
    assert listed.returncode == 0, listed.stderr
    found = json.loads(listed.stdout)["characters"]
    assert found[0]["name"] == "孙悟空" and found[0]["mentions"] > 0 and "哪吒" not in [c["name"] for c in found]
    card = tmp_path / "wukong.png"
    picked = companion(["characters", str(document_id), "--user", "ann", "--upto", "3", "--pick", "1",
                        "--card", str(card)], env_extra=env)
    assert picked.returncode == 0, picked.stderr
    assert "persona " in picked.stdout and "card written" in picked.stdout
    assert read_card(card.read_bytes(), card.name).persona.name == "孙悟空"
    wrong = companion(["characters", "999", "--user", "ann"], env_extra=env)
    assert wrong.returncode == 1 and "no document 999" in wrong.stderr
    beyond = companion(["characters", str(document_id), "--user", "ann", "--upto", "9"], env_extra=env)
    assert beyond.returncode == 1 and "between 1 and 5" in beyond.stderr
