from memory.documents.htmltext import html_to_text


def test_blocks_whitespace_and_entities():
    result = html_to_text(
        "<html><head><title> My  Book </title></head><body>"
        "<p>Hello   <b>world</b>,\n again&nbsp;&amp; more.</p><div>a<br>b<br/>c</div>"
        "<ul><li>one</li><li>two</li></ul><p>第二段&lt;x&gt;</p></body></html>"
    )
    assert result.title == "My Book"
    assert result.text == "Hello world, again & more.\n\na\nb\nc\n\none\ntwo\n\n第二段<x>"


def test_consecutive_line_breaks_leave_a_blank_line():
    result = html_to_text("<div>&nbsp;&nbsp;第一段。<br /><br />&nbsp;&nbsp;第二段。<br>同一段。</div>")
    assert result.text.strip() == "第一段。\n\n第二段。\n同一段。"


def test_pre_keeps_its_whitespace():
    assert html_to_text("<p>x</p><pre>  keep\n   this</pre>").text.startswith("x\n\n  keep\n   this")


def test_table_cells_are_tab_separated():
    assert html_to_text("<table><tr><td>a</td><td>b</td></tr><tr><td>c</td><td>d</td></tr></table>").text.strip() == "a\tb\nc\td"


def test_scripts_styles_and_ruby_glosses_are_dropped():
    result = html_to_text(
        '<style>p { color: red }</style><script>var s = "<p>not text</p>";</script>'
        "<noscript>Enable JS</noscript><p>漢<ruby>字<rt>ji</rt></ruby> text</p><template><p>t</p></template>"
    )
    assert result.text.strip() == "漢字 text"


def test_page_chrome_is_dropped_only_when_asked():
    html = (
        "<nav><a>Home</a> | <a>Next chapter</a></nav><div role='navigation'><div>Menu</div></div>"
        "<article><h1>Title</h1><p>Body.</p></article><aside>Ads</aside><footer>(c) site</footer>"
    )
    assert html_to_text(html, drop_page_chrome=True).text.strip() == "Title\n\nBody."
    kept = html_to_text(html).text
    assert "Home" in kept and "Menu" in kept and "Ads" in kept and "(c) site" in kept


def test_a_chrome_element_that_is_never_closed_keeps_its_content():
    result = html_to_text("<p>Start.</p><nav>menu <p>All the rest of the book.</p>", drop_page_chrome=True)
    assert "All the rest of the book." in result.text


def test_headings_and_anchor_offsets():
    result = html_to_text(
        '<h1 id="top">Book</h1><p>Intro.</p><h2 id="c1">Chapter 1</h2><p>One.</p>'
        '<p><a name="mark"></a>Marked.</p><h2 id="c2">Chapter <i>2</i></h2><p>Two.</p>'
    )
    assert [(h.level, h.text) for h in result.headings] == [(1, "Book"), (2, "Chapter 1"), (2, "Chapter 2")]
    for heading in result.headings:
        assert result.text[heading.offset :].startswith(heading.text)
    assert result.text[result.anchors["c1"] :].startswith("Chapter 1")
    assert result.text[result.anchors["c2"] :].startswith("Chapter 2")
    assert result.text[result.anchors["mark"] :].startswith("Marked.")
    assert result.anchors["top"] == 0


def test_anchors_inside_dropped_chrome_are_forgotten():
    result = html_to_text('<nav id="menu">Menu</nav><p id="p">Text</p>', drop_page_chrome=True)
    assert "menu" not in result.anchors
    assert result.text[result.anchors["p"] :].startswith("Text")


def test_deeply_nested_html_does_not_overflow_or_lose_text():
    depth = 20_000
    html = "<html><body>" + "<div>" * depth + "deep" + "</div>" * depth + "<p>after</p></body></html>"
    assert html_to_text(html).text.split() == ["deep", "after"]
    unclosed = "<body>" + "<font><span>" * depth + "still here"
    assert html_to_text(unclosed).text.strip() == "still here"


def test_xhtml_self_closing_tags_and_declarations():
    result = html_to_text(
        '<?xml version="1.0" encoding="utf-8"?><!DOCTYPE html><html xmlns="http://www.w3.org/1999/xhtml">'
        "<body><p>a<br/>b</p><![CDATA[x]]><!-- comment --><p>c</p></body></html>"
    )
    assert result.text.strip() == "a\nb\n\nc"


def test_an_unclosed_title_or_head_does_not_swallow_the_document():
    result = html_to_text("<html><head><title>Book<style>p {}</style><body><p>Body text.</p></body></html>")
    assert result.title == "Book"
    assert result.text.strip() == "Body text."
