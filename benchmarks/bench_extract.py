"""Benchmark: document extraction speed and memory.

    python benchmarks/bench_extract.py            # prints a table, writes benchmarks/results/extract.json

Inputs (generated once into benchmarks/results/inputs/, reused afterwards):

* 2,000,000 characters of plain text (cut at the first line end after that): the
  shared 西游记 and Pride and Prejudice (../shared/data next to the repository)
  repeated until long enough, as UTF-8 and as GB18030. The Gutenberg header then
  sits in the middle of the file, so it is kept, as any pasted-together file would;
  chapters come from the 第…回 headings, the larger of the two numbering groups;
* EPUB and DOCX of that same text, one chapter per detected chapter;
* a 500-page PDF written with fpdf2. PDFs need an embedded font for CJK glyphs, and
  the machine has none (`fc-list :lang=zh` is empty: only DejaVu), so when no CJK
  font is found the PDF holds Pride and Prejudice (English) repeated instead; the
  JSON records which.

Each case runs in its own fresh Python process: three timed runs of
`extract_bytes` (decode + normalize + chapter detection; the PDF case includes
PDFium's text extraction), then one more under tracemalloc. Reported: best and
median wall time, tracemalloc peak (Python allocations), the process's peak RSS
(VmHWM, reset after the input is loaded) and its growth over the RSS at that point
(which includes PDFium's and lxml's C memory), and the time to split the result into
1000-character passages. Timing is informational
and never asserted in tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHARED = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"
INPUTS = RESULTS / "inputs"
TARGET_CHARS = 2_000_000
PDF_PAGES = 500


def novel_text() -> str:
    sources = [SHARED / "xiyouji.utf8.txt", SHARED / "pride_and_prejudice.txt"]
    missing = [str(path) for path in sources if not path.is_file()]
    if missing:
        sys.exit(f"shared test data missing: {', '.join(missing)}")
    one_round = "\n\n".join(path.read_text(encoding="utf-8-sig") for path in sources)
    text = one_round
    while len(text) < TARGET_CHARS:
        text += "\n\n" + one_round
    return text[: text.index("\n", TARGET_CHARS) + 1]  # just past 2,000,000, at a line end


def cjk_font() -> str | None:
    try:
        listing = subprocess.run(["fc-list", ":lang=zh", "file"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in listing.splitlines():
        path = line.split(":")[0].strip()
        if path.lower().endswith((".ttf", ".otf")):
            return path
    return None


def build_inputs() -> dict[str, object]:
    from memory.documents import extract_bytes
    from tests.fakes.documents import make_docx, make_epub

    INPUTS.mkdir(parents=True, exist_ok=True)
    notes: dict[str, object] = {}
    text = novel_text()
    utf8 = INPUTS / "novels.utf8.txt"
    if not utf8.exists():
        utf8.write_bytes(text.encode("utf-8"))
        (INPUTS / "novels.gb18030.txt").write_bytes(text.encode("gb18030"))
    notes["text_chars"] = len(text)

    if not (INPUTS / "novels.epub").exists() or not (INPUTS / "novels.docx").exists():
        document = extract_bytes(utf8.read_bytes(), "novels.txt")
        chapters = []
        for chapter in document.chapters:
            body = document.chapter_text(chapter).split("\n", 1)
            paragraphs = [p for p in (body[1] if len(body) > 1 else "").split("\n\n") if p.strip()]
            chapters.append((chapter.title, paragraphs))
        (INPUTS / "novels.epub").write_bytes(make_epub(chapters, title="Novels", chapters_per_file=1))
        (INPUTS / "novels.docx").write_bytes(make_docx(chapters, title="Novels"))

    font = cjk_font()
    notes["pdf_text"] = "西游记 + Pride and Prejudice" if font else "Pride and Prejudice, English only (fc-list found no CJK font)"
    pdf_path = INPUTS / "book500.pdf"
    if not pdf_path.exists():
        pdf_path.write_bytes(make_pdf(font))
    return notes


def make_pdf(font: str | None) -> bytes:
    """PDF_PAGES pages of 60 pre-wrapped lines each (fast to write: one cell per line)."""
    from fpdf import FPDF

    source = novel_text() if font else (SHARED / "pride_and_prejudice.txt").read_text(encoding="utf-8-sig")
    if not font:
        source = source.encode("latin-1", errors="replace").decode("latin-1")
    width = 45 if font else 95
    lines: list[str] = []
    for paragraph in source.split("\n"):
        lines.extend(textwrap.wrap(paragraph, width) or [""])
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(False)
    if font:
        pdf.add_font("cjk", fname=font)
        pdf.set_font("cjk", size=9)
    else:
        pdf.set_font("Helvetica", size=9)
    cursor = 0
    for _ in range(PDF_PAGES):
        pdf.add_page()
        for row in range(60):
            pdf.set_xy(10, 10 + row * 4.6)
            pdf.cell(0, 4.6, lines[cursor % len(lines)])
            cursor += 1
    return bytes(pdf.output())


CASE_SCRIPT = r"""
import json, os, statistics, sys, time, tracemalloc
sys.path.insert(0, {root!r})
from benchmarks.common import proc_status_kb
from memory.documents import extract_bytes, split_passages

def status_kb(field):
    return proc_status_kb(os.getpid(), field)

data = open({path!r}, "rb").read()
name = {name!r}
with open("/proc/self/clear_refs", "w") as handle:
    handle.write("5")  # reset the peak-RSS mark (VmHWM) to the current RSS
baseline = status_kb("VmRSS")
times = []
for _ in range(3):
    start = time.perf_counter()
    document = extract_bytes(data, name)
    times.append(time.perf_counter() - start)
start = time.perf_counter()
passages = split_passages(document.text, document.chapters, 1000)
passage_seconds = time.perf_counter() - start
peak_rss = status_kb("VmHWM")
del document
tracemalloc.start()
document = extract_bytes(data, name)
traced_peak = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
print(json.dumps({{
    "best_s": min(times), "median_s": statistics.median(times),
    "chars": len(document.text), "chapters": len(document.chapters), "chapter_source": document.chapter_source,
    "encoding": document.encoding, "input_bytes": len(data),
    "tracemalloc_peak_mb": traced_peak / 2**20, "rss_growth_mb": (peak_rss - baseline) / 1024,
    "peak_rss_mb": peak_rss / 1024, "passages": len(passages), "passages_s": passage_seconds,
}}))
"""


def run_case(label: str, path: Path) -> dict[str, object]:
    script = CASE_SCRIPT.format(root=str(ROOT), path=str(path), name=path.name)
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    result = json.loads(output.strip().splitlines()[-1])
    result["case"] = label
    return result


def main() -> None:
    started = time.perf_counter()
    notes = build_inputs()
    cases = [
        ("txt UTF-8, 2M chars", INPUTS / "novels.utf8.txt"),
        ("txt GB18030, 2M chars", INPUTS / "novels.gb18030.txt"),
        ("EPUB, same text", INPUTS / "novels.epub"),
        ("DOCX, same text", INPUTS / "novels.docx"),
        (f"PDF, {PDF_PAGES} pages", INPUTS / "book500.pdf"),
    ]
    results = [run_case(label, path) for label, path in cases]
    header = f"{'case':<24}{'input MB':>9}{'chars':>11}{'chapters':>9}{'best s':>8}{'median s':>9}{'py peak MB':>11}{'RSS +MB':>9}{'passages s':>11}"
    print(header)
    print("-" * len(header))
    for row in results:
        print(
            f"{row['case']:<24}{row['input_bytes'] / 2**20:>9.1f}{row['chars']:>11,}{row['chapters']:>9}"
            f"{row['best_s']:>8.3f}{row['median_s']:>9.3f}{row['tracemalloc_peak_mb']:>11.1f}"
            f"{row['rss_growth_mb']:>9.1f}{row['passages_s']:>11.3f}"
        )
    print(f"\nPDF text: {notes['pdf_text']}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    report = {
        "python": sys.version.split()[0],
        "notes": notes,
        "results": results,
        "total_seconds_including_generation": time.perf_counter() - started,
    }
    (RESULTS / "extract.json").write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    print(f"written {RESULTS / 'extract.json'}")


if __name__ == "__main__":
    main()
