from memory.documents.formats.html import read_html
from memory.documents.extract import extract_bytes

PAGE = """<!DOCTYPE html><html><head><meta charset="gbk"><title>西游记 - 某某小说网</title></head><body>
<nav><a href="/">首页</a> <a href="/list">目录</a></nav>
<h1>西游记</h1>
<h2>第一回　灵根育孕源流出</h2><p>　　诗曰：混沌未分天地乱。</p>
<h2>第二回　悟彻菩提真妙理</h2><p>　　话表美猴王得了姓名。</p>
<footer>Copyright 某某小说网</footer></body></html>"""


def test_meta_charset_headings_and_chrome():
    document = extract_bytes(PAGE.encode("gbk"), "page.html")
    assert document.encoding == "gb18030"
    assert document.title == "西游记 - 某某小说网"
    assert document.chapter_source == "styles"
    assert [(c.title, c.number) for c in document.chapters] == [("第一回　灵根育孕源流出", 1), ("第二回　悟彻菩提真妙理", 2)]
    assert "首页" not in document.text and "Copyright" not in document.text
    assert document.text.startswith("西游记\n\n第一回")


def test_http_charset_wins_over_guessing():
    html = "<p>Ça coûte très cher, répondit-elle, à Noël.</p>".encode("cp1252")
    assert read_html(html, "windows-1252").encoding == "cp1252"


def test_a_page_without_headings_has_one_untitled_section():
    document = read_html(b"<html><head><title>Note</title></head><body><p>Just text.</p></body></html>")
    assert document.title == "Note"
    assert [s.title for s in document.sections] == [None]
    assert document.chapter_source == "none"


def test_title_falls_back_to_the_first_h1():
    assert read_html(b"<h1>Heading</h1><p>x</p>").title == "Heading"
