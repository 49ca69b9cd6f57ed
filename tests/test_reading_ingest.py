"""Ingestion end to end into a real database: every format and encoding, the shared
novels, refusals that store nothing, progress, cancellation, and links (refused when
they lead to private addresses, directly or by a redirect)."""

import zipfile

import pytest

from memory.documents import AddressPolicy, DocumentError, DocumentLimits, ErrorCode
from memory.reading import Cancelled, CancelToken, Ingestor
from tests.fakes.documents import make_docx, make_epub, make_pdf, make_zip, patch_declared_size, shared_data_file
from tests.fakes.novels import EN_CHAPTERS, ZH_CHAPTERS, chinese_novel
from tests.fakes.web_server import FakeWebServer, NameMap

LOOPBACK_FOR_TESTS = AddressPolicy(allow_loopback_for_tests=True)


@pytest.fixture
def ingestor(documents):
    return Ingestor(documents)


def nothing_stored(documents) -> bool:
    return set(documents.counts().values()) == {0}


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "gb18030"])
def test_text_in_any_encoding_is_stored_as_the_same_text(ingestor, documents, alice, encoding):
    result = ingestor.ingest_bytes(chinese_novel().encode(encoding), "novel.txt", alice)
    assert result.document.chapter_count == 5 and result.document.title == "西游小记"
    stored = documents.text(result.document.id)
    assert "孙悟空道：“我乃天生石猴，今日方知姓也！”" in stored and "\ufeff" not in stored
    assert result.document.encoding is not None and result.document.chars == len(stored)


def test_big5_traditional_chinese(ingestor, documents, alice):
    text = ("西遊記\n\n第一回　靈根育孕源流出\n\n花果山上有一塊仙石，孫悟空從石中生出。\n\n"
            "第二回　悟徹菩提真妙理\n\n孫悟空拜師學藝，學會七十二般變化。\n")
    document = ingestor.ingest_bytes(text.encode("big5"), "西遊記.txt", alice).document
    assert document.encoding in ("big5", "cp950", "big5hkscs") and document.chapter_count == 2
    assert "孫悟空拜師學藝" in documents.text(document.id)


def test_crlf_text_is_stored_with_plain_newlines(ingestor, documents, alice):
    crlf = ingestor.ingest_bytes(chinese_novel(newline="\r\n").encode(), "crlf.txt", alice).document
    assert "\r" not in documents.text(crlf.id)
    lf = ingestor.ingest_bytes(chinese_novel().encode(), "lf.txt", alice)
    assert lf.duplicate and lf.document.id == crlf.id  # the same normalized text


def test_messy_headings_still_make_chapters(ingestor, alice):
    text = ("我的小说\n\n  第 一 章  开端 \n\n正文一。\n\n\n\n第二章：发展\n正文二。\n\n【第三章】 高潮\n\n正文三。\n\n"
            "第四章\n\n正文四。\n")
    document = ingestor.ingest_bytes(text.encode(), "messy.txt", alice).document
    assert document.chapter_count == 4


@pytest.mark.parametrize("version", [2, 3])
def test_epub_2_and_3(ingestor, documents, alice, version):
    result = ingestor.ingest_bytes(make_epub(EN_CHAPTERS, version=version, title="Pride"), "pride.epub", alice)
    document = result.document
    assert (document.format, document.title, document.chapter_count) == ("epub", "Pride", 4)
    assert [c.title for c in documents.chapters(document.id)] == [title for title, _ in EN_CHAPTERS]


def test_docx_and_pdf(ingestor, documents, alice):
    docx = ingestor.ingest_bytes(make_docx(ZH_CHAPTERS, title="西游"), "西游.docx", alice).document
    assert docx.format == "docx" and docx.chapter_count == 5 and "筋斗云" in documents.text(docx.id)
    pages = [" ".join(paragraphs) for _, paragraphs in EN_CHAPTERS]
    pdf = ingestor.ingest_bytes(make_pdf(pages, bookmarks={i: t for i, (t, _) in enumerate(EN_CHAPTERS)}),
                                "pride.pdf", alice).document
    assert pdf.format == "pdf" and pdf.chapter_count == 4 and "Netherfield" in documents.text(pdf.id)


def test_html_page(ingestor, alice):
    page = "<html><head><title>西游</title></head><body><h2>第一回 石猴</h2><p>花果山。</p><h2>第二回 学艺</h2><p>祖师。</p>"
    document = ingestor.ingest_bytes(page.encode(), "page.html", alice).document
    assert (document.format, document.title, document.chapter_count) == ("html", "西游", 2)


def test_the_shared_novels_keep_their_chapters(ingestor, documents, alice):
    journey = ingestor.ingest_path(shared_data_file("xiyouji.utf8.txt"), alice)
    pride = ingestor.ingest_path(shared_data_file("pride_and_prejudice.txt"), alice)
    assert journey.document.chapter_count == 100 and pride.document.chapter_count == 61
    assert documents.chapters(journey.document.id)[99].title.startswith("第一百回")
    assert journey.document.chars == len(documents.text(journey.document.id))
    assert set(journey.as_json()) == {"id", "title", "format", "encoding", "chars", "tokens", "chapters", "volumes", "toc_entries",
                           "stripped_lines", "seconds", "stages"}
    assert journey.as_json()["chapters"] == 100 and journey.as_json()["tokens"] > 600_000


@pytest.mark.parametrize("name, data, code", [
    ("empty.txt", b"", ErrorCode.EMPTY),
    ("blank.txt", b" \n\n \t\n", ErrorCode.EMPTY),
    ("scan.pdf", make_pdf(["x"], blank=True), ErrorCode.NO_TEXT),
    ("locked.pdf", make_pdf(["secret text"], user_password="pw"), ErrorCode.ENCRYPTED),
    ("broken.epub", b"PK\x03\x04 not really a zip", ErrorCode.CORRUPT),
    ("broken.pdf", b"%PDF-1.7\n garbage", ErrorCode.CORRUPT),
    ("old.doc", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, ErrorCode.UNSUPPORTED),
    ("bomb.docx", patch_declared_size(make_docx(ZH_CHAPTERS), "word/document.xml", 0x7FFFFFFF), ErrorCode.ZIP_BOMB),
])
def test_refusals_store_nothing(ingestor, documents, alice, name, data, code):
    with pytest.raises(DocumentError) as refused:
        ingestor.ingest_bytes(data, name, alice)
    assert refused.value.code == code and refused.value.message
    assert nothing_stored(documents)


def test_an_epub_that_expands_too_steeply_is_refused(documents, alice):
    bomb = make_zip({"mimetype": b"application/epub+zip", "OEBPS/big.xhtml": b"<p>" + b"a" * 3_000_000 + b"</p>"},
                    compression=zipfile.ZIP_DEFLATED)
    with pytest.raises(DocumentError) as refused:
        Ingestor(documents, DocumentLimits(max_compression_ratio=50)).ingest_bytes(bomb, "bomb.epub", alice)
    assert refused.value.code == ErrorCode.ZIP_BOMB and nothing_stored(documents)


def test_oversized_input_is_refused_before_reading(documents, alice, tmp_path):
    small = Ingestor(documents, DocumentLimits(max_document_bytes=1000))
    with pytest.raises(DocumentError) as refused:
        small.check_size(5000)
    assert refused.value.code == ErrorCode.TOO_LARGE and "limit" in refused.value.message
    path = tmp_path / "big.txt"
    path.write_text("字" * 2000, encoding="utf-8")
    with pytest.raises(DocumentError):
        small.ingest_path(path, alice)
    with pytest.raises(DocumentError) as missing:
        small.ingest_path(tmp_path / "nope.txt", alice)
    assert "no file" in missing.value.message and nothing_stored(documents)


def test_progress_goes_up_to_100_through_the_stages(ingestor, alice):
    seen = []
    ingestor.ingest_bytes(chinese_novel().encode(), "novel.txt", alice,
                          progress=lambda stage, pct: seen.append((stage, pct)))
    percents = [pct for _, pct in seen]
    assert percents == sorted(percents) and percents[-1] == 100
    assert [stage for stage, _ in seen][0] == "extract" and seen[-1][0] == "index"


def test_cancelling_midway_stores_nothing(documents, alice):
    token = CancelToken()

    def progress(stage, percent):
        if stage == "index" and percent > 30:
            token.cancel()

    ingestor = Ingestor(documents, passage_chars=40)  # many small passages: several write batches
    with pytest.raises(Cancelled):
        ingestor.ingest_bytes((chinese_novel() * 30).encode(), "long.txt", alice, progress=progress, cancel=token)
    assert nothing_stored(documents)


@pytest.fixture
def web():
    with FakeWebServer() as server:
        yield server


async def test_a_link_is_read_like_an_upload(documents, alice, web):
    web.page("/book.txt", chinese_novel().encode("gb18030"), "text/plain; charset=gb18030")
    url = web.base_url.replace("127.0.0.1", "books.test") + "/book.txt"
    ingestor = Ingestor(documents, resolver=NameMap({"books.test": ["127.0.0.1"]}), policy=LOOPBACK_FOR_TESTS)
    result = await ingestor.ingest_url(url, alice)
    assert result.document.chapter_count == 5 and result.document.source == url


@pytest.mark.parametrize("address", ["127.0.0.1", "10.0.0.7", "169.254.169.254", "::1", "192.168.1.1"])
async def test_links_to_private_addresses_are_refused_after_resolution(documents, alice, web, address):
    web.page("/book.txt", "正文".encode(), "text/plain")
    url = web.base_url.replace("127.0.0.1", "intranet.test") + "/book.txt"
    ingestor = Ingestor(documents, resolver=NameMap({"intranet.test": [address]}))
    with pytest.raises(DocumentError) as refused:
        await ingestor.ingest_url(url, alice)
    assert refused.value.code == ErrorCode.BLOCKED_ADDRESS and web.requests == [] and nothing_stored(documents)


async def test_a_redirect_to_a_private_address_is_refused(documents, alice, web):
    web.redirect("/go", "http://metadata.test/latest/meta-data")
    url = web.base_url.replace("127.0.0.1", "public.test") + "/go"
    resolver = NameMap({"public.test": ["127.0.0.1"], "metadata.test": ["169.254.169.254"]})
    ingestor = Ingestor(documents, resolver=resolver, policy=LOOPBACK_FOR_TESTS)
    with pytest.raises(DocumentError) as refused:
        await ingestor.ingest_url(url, alice)
    assert refused.value.code == ErrorCode.BLOCKED_ADDRESS and "metadata.test" in resolver.lookups
    assert [path for _, path, _ in web.requests] == ["/go"] and nothing_stored(documents)


def test_token_counts_made_beside_the_writes_land_on_their_passages(ingestor, documents, alice):
    from memory.tokens import count_tokens

    stored = ingestor.ingest_bytes(("第一回 开始\n\n" + "孙悟空道：“俺老孙来也！”\n\n" * 400 + "第二回 结束\n\n尾。").encode(),
                                   "t.txt", alice).document
    passages = documents.passages(stored.id)
    assert len(passages) > 5 and all(p.tokens == count_tokens(p.text) for p in passages)
    assert stored.tokens == sum(p.tokens for p in passages)
    assert [c.tokens for c in documents.chapters(stored.id)] == [
        sum(p.tokens for p in passages if p.chapter_index == index) for index in (0, 1)]


def test_a_book_over_several_write_batches_comes_back_whole_counted_and_indexed(documents, alice):
    from memory.reading.ingest import BATCH, FIRST_BATCH
    from memory.tokens import count_tokens

    paragraphs = [f"第{n}段 孙悟空见了妖怪，Monkey met demon tag{n:04d}。" for n in range(FIRST_BATCH + 2 * BATCH)]
    text = "第一回 开始\n\n" + "\n\n".join(paragraphs) + "\n\n第二回 结束\n\n尾声独有的话。\n"
    stored = Ingestor(documents, passage_chars=40).ingest_bytes(text.encode(), "long.txt", alice).document
    passages = documents.passages(stored.id)
    assert len(passages) > FIRST_BATCH + BATCH  # three transactions at least: 1024, 512, the rest
    assert "".join(p.text for p in passages) == documents.text(stored.id)
    assert [p.id for p in passages] == list(range(passages[0].id, passages[0].id + len(passages)))
    assert all(p.tokens == count_tokens(p.text) for p in passages)
    assert stored.tokens == sum(p.tokens for p in passages)
    assert documents.counts()["index"] == len(passages)
    scope = [(stored.id, None)]
    for n in (0, FIRST_BATCH - 1, FIRST_BATCH, FIRST_BATCH + BATCH, len(paragraphs) - 1):
        found = documents.search_passages(scope, f"tag{n:04d}", limit=1)
        assert found and f"tag{n:04d}" in found[0].text
    assert "尾声独有" in documents.search_passages(scope, "尾声独有", limit=1)[0].text
