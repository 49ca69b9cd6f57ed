from memory.documents.model import Chapter, ExtractedDocument


def test_chapter_text_slices_the_document():
    document = ExtractedDocument("T", "txt", "utf-8", "front\n\nChapter 1\nbody", [Chapter(0, "Chapter 1", 7, 21, 1)])
    assert document.chapter_text(document.chapters[0]) == "Chapter 1\nbody"
    assert (document.author, document.chapter_source) == (None, "none")
