"""Documents benchmark: end-to-end ingestion per format, and request assembly with a novel attached.

    python -m benchmarks documents

Ingestion is measured the way `companion ingest` runs it: each case in a fresh Python
process, a fresh database, `Ingestor.ingest_path` from the file on disk to a stored
document (extraction, passages, token counts, full-text index, commit). Reported: the
wall time of that call (cold: the o200k tokenizer loads inside it, as in a fresh CLI;
warm: loaded before, as in the running bot) and the process's peak RSS (VmHWM).
Targets: 2,000,000 characters of plain text in <= 3 s and <= 400 MB peak.

Speed against the old path (issue 18, item 3): three inputs of 2,300,000 characters
(the shared novels mixed, 西游记 alone, Pride and Prejudice alone, each repeated),
ingested by this tree and by the tree of `BASELINE` (pinned: main as it was when
item 3 began, so later changes on main do not move the old path; `git archive` into
a temporary folder, so it is the real old code, not a copy kept here), alternately,
each in a fresh process with a fresh database and the tokenizer loading inside the
call (as `companion ingest` runs), several rounds in one run. Reported per input: the
best and median wall time of each side and their ratios (the target is old / new >=
2), CPU time, peak RSS (target < 400 MB), the load average around the run, and the
share of the wall of each stage of the new path (decode, normalise, chapters,
passages, token counts, full-text index, commit; `STAGES` maps them onto the timings
the ingestion reports; the tokenizer, the counts and the index forms run in threads
beside the writes, so the shares add up to more than 100%). Set BENCH_BASELINE to
compare with another commit, BENCH_SPEED_ROUNDS for more rounds (default 4),
BENCH_SPEED_INPUTS to pick inputs (comma-separated: mixed, chinese, english), and
BENCH_SPEED_ONLY=1 to run only this part. The machines are shared: compare the
ratio, not the seconds, across runs.

Inputs (built once into benchmarks/results/inputs/ by `bench_extract`): the shared
西游记 and Pride and Prejudice repeated to just over 2,000,000 characters, as UTF-8
and GB18030 text, an EPUB and a DOCX of the same text, and a 500-page PDF.

Cast (issue 18): the text's own cast of each shared novel (`memory.reading.cast`),
the dozen a user is shown, scored against the hand-written lists in
tests/fakes/novel_casts.py: precision (people of the list among those shown), recall
of the main cast, the same person twice, places shown as people, aliases merged
rightly and wrongly. With a model that hands back the names it is given, this is the
cast the user gets (the model's answer is reconciled with it).

Request assembly: 100k stored messages at a 256k window (the core benchmark's
largest case) with 西游记 (~699k o200k tokens) attached. It cannot be verbatim in
256k, so the static part holds its chapter summaries (synthetic here: 100 x ~150
tokens) and each request searches the passages for the new message. Target: p50 <=
15 ms, as for the core case without a document (also measured, for comparison).
Timing is informational and never asserted in tests.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import ROOT, SHARED_DATA, percentile, print_table

RUNS = 41
BASELINE = os.environ.get("BENCH_BASELINE", "040d39750fe5aeedb921b2e2033a06774817a8c6")  # main as of issue 18 item 3 (pinned)
SPEED_CHARS = 2_300_000
SPEED_ROUNDS = int(os.environ.get("BENCH_SPEED_ROUNDS", "4"))
SPEED_SCRIPT = r"""
import json, os, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, {root!r})
sys.path.insert(1, {here!r})

from benchmarks.common import proc_status_kb
from memory.reading import DocumentStore, Ingestor
import inspect
from memory.store import Store
if "migration_sets" in inspect.signature(Store).parameters:
    from memory.schema import open_store
else:  # the old path's tree: its Store applied its migrations itself
    open_store = Store
with tempfile.TemporaryDirectory() as folder:
    store = open_store(Path(folder) / "bench.db")
    users = getattr(store, "directory", store)  # older trees' Store made the users itself
    owner = users.ensure_user("local", "bench")
    documents = DocumentStore(store)
    started, cpu = time.perf_counter(), time.process_time()
    result = Ingestor(documents).ingest_path({path!r}, owner)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    peak = proc_status_kb(os.getpid(), "VmHWM") / 1024
    stages = dict(getattr(result, "stages", {{}}) or {{}})
    if stages:  # the parts of extraction, timed on their own afterwards
        from memory.documents.chapters import detect_structure
        from memory.documents.encoding import decode_text
        from memory.documents.normalize import normalize_text
        data = Path({path!r}).read_bytes()
        moment = time.perf_counter(); text = decode_text(data).text
        stages["decode"] = time.perf_counter() - moment
        moment = time.perf_counter(); text = normalize_text(text)
        stages["normalize"] = time.perf_counter() - moment
        moment = time.perf_counter(); detect_structure(text)
        stages["chapters"] = time.perf_counter() - moment
    print(json.dumps({{"wall_s": wall, "cpu_s": cpu, "peak_rss_mb": peak, "chars": result.document.chars,
                       "tokens": result.document.tokens, "chapters": result.document.chapter_count,
                       "stages": stages}}))
"""
CASE_SCRIPT = r"""
import json, os, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, {root!r})

from benchmarks.common import proc_status_kb

def peak_rss_mb():
    return proc_status_kb(os.getpid(), "VmHWM") / 1024

if {warm!r}:
    from memory.tokens import load_encoding
    load_encoding()
from memory.reading import DocumentStore, Ingestor
import inspect
from memory.store import Store
if "migration_sets" in inspect.signature(Store).parameters:
    from memory.schema import open_store
else:  # the old path's tree: its Store applied its migrations itself
    open_store = Store
with tempfile.TemporaryDirectory() as folder:
    store = open_store(Path(folder) / "bench.db")
    owner = store.directory.ensure_user("local", "bench")
    documents = DocumentStore(store)
    started = time.perf_counter()
    result = Ingestor(documents).ingest_path({path!r}, owner)
    seconds = time.perf_counter() - started
    print(json.dumps({{**result.as_json(), "wall_s": seconds, "peak_rss_mb": peak_rss_mb(),
                       "passages": documents.counts()["passages"]}}, ensure_ascii=False))
"""


def ingest_case(label: str, path: Path, warm: bool) -> dict:
    script = CASE_SCRIPT.format(root=str(ROOT), path=str(path), warm=warm)
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    result = json.loads(output.strip().splitlines()[-1])
    return {"case": label, "warm": warm, "input_mb": path.stat().st_size / 2**20, **result}


def assembly_figures() -> dict:
    from benchmarks.bench_core import build_conversation
    from memory.engine import Engine, ModelSettings
    from memory.model_client import ModelClient
    from memory.reading import DocumentStore, Ingestor, ReadingProvider, Summarizer, context_for
    from memory.reading.store import SummaryRow
    from memory.schema import open_store
    from memory.tokens import count_tokens
    from personas import PersonaLibrary

    novel = SHARED_DATA / "xiyouji.utf8.txt"
    queries = ["孙悟空和猪八戒在高老庄遇到了什么？", "唐僧为什么要去西天取经", "Tell me about the white bone demon 白骨精",
               "火焰山的芭蕉扇是谁的", "观音菩萨给了唐僧什么", "What did the Monkey King steal in heaven?"]
    window = 262_144
    figures: dict = {}
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(Path(folder) / "bench.db")
        conversation_id = build_conversation(store, 100_000)
        owner = store.directory.user(store.conversations.conversation(conversation_id).user_id)
        client = ModelClient(base_url="http://127.0.0.1:9/v1", api_key="unused")
        settings = ModelSettings(model="bench", window=window, reply_tokens=4096, tail_tokens=window // 10)

        def timed(engine: Engine) -> tuple[list[float], object]:
            samples, request = [], None
            for run in range(RUNS):
                conversation = store.conversations.conversation(conversation_id)
                started = time.perf_counter()
                query = queries[run % len(queries)]  # the new message, not stored: the tail goes with it
                request = engine.build_request(conversation, user=owner, query=query, final_user_text=query)
                samples.append((time.perf_counter() - started) * 1000)
                if request.boundary_moved:
                    store.conversations.set_boundary(conversation_id, request.boundary_message_id)
            return samples, request

        plain, _ = timed(Engine(store, client, PersonaLibrary(), settings))
        documents = DocumentStore(store)
        stored = Ingestor(documents).ingest_path(novel, owner).document
        summarizer = Summarizer(documents, client, model="bench", unit_tokens=8000)
        rng = random.Random(3)
        for unit in summarizer.units(stored.id):
            text = "".join(rng.choice("唐僧悟空八戒沙僧妖怪师父徒弟西天取经山洞宝贝菩萨") for _ in range(160))
            documents.save_summary(stored.id, SummaryRow(unit.first_passage_id, unit.last_passage_id,
                                                         unit.chapter_index, text, count_tokens(text)), "bench")
        documents.attach(conversation_id, stored.id)
        provider = ReadingProvider(documents, summarizer)
        engine = Engine(store, client, PersonaLibrary(), settings, providers=[provider])
        with_novel, request = timed(engine)
        sections = request.section_tokens()
        figures = {
            "window": window, "messages": 100_000, "novel_tokens": stored.tokens,
            "mode": provider.plan(context_for(engine, store.conversations.conversation(conversation_id), owner))[0].mode,
            "documents_tokens": sections.get("documents", 0), "passages_tokens": sections.get("tail:passages", 0),
            "p50_ms_without_document": percentile(plain, 50), "p50_ms": percentile(with_novel, 50),
            "p95_ms": percentile(with_novel, 95), "p50_target_ms": 15,
        }
        store.close()
    return figures


SPEED_INPUTS = {  # name: the shared novels it repeats
    "mixed": ("xiyouji.utf8.txt", "pride_and_prejudice.txt"),
    "chinese": ("xiyouji.utf8.txt",),
    "english": ("pride_and_prejudice.txt",),
}
SPEED_FILES = {"mixed": "novels.2300k.utf8.txt", "chinese": "xiyouji.2300k.utf8.txt",
               "english": "pride.2300k.utf8.txt"}


def speed_input(name: str = "mixed") -> Path:
    from benchmarks.bench_extract import INPUTS, SHARED

    path = INPUTS / SPEED_FILES[name]
    if not path.exists():
        INPUTS.mkdir(parents=True, exist_ok=True)
        one_round = "\n\n".join((SHARED / novel).read_text(encoding="utf-8-sig") for novel in SPEED_INPUTS[name])
        text = one_round
        while len(text) < SPEED_CHARS:
            text += "\n\n" + one_round
        path.write_text(text[: text.index("\n", SPEED_CHARS) + 1], encoding="utf-8")
    return path


def speed_case(root: Path, path: Path) -> dict:
    script = SPEED_SCRIPT.format(root=str(root), here=str(ROOT), path=str(path))
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                            cwd=str(root)).stdout
    return json.loads(output.strip().splitlines()[-1])


def speed_figures() -> dict:
    """The new path against BASELINE's, alternately, SPEED_ROUNDS rounds per input (see the module doc)."""
    names = [name.strip() for name in os.environ.get("BENCH_SPEED_INPUTS", ",".join(SPEED_INPUTS)).split(",")
             if name.strip()]
    paths = {name: speed_input(name) for name in names}
    load_before = os.getloadavg()
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        old_root = Path(folder) / "baseline"
        old_root.mkdir()
        try:
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", BASELINE], capture_output=True,
                                     check=True).stdout
        except (OSError, subprocess.CalledProcessError) as error:
            return {"error": f"cannot check out the baseline {BASELINE}: {error}"}
        subprocess.run(["tar", "-x", "-C", str(old_root)], input=archive, check=True)
        for name, path in paths.items():
            old, new = [], []
            for round_number in range(SPEED_ROUNDS):  # who goes first alternates too
                if round_number % 2 == 0:
                    old.append(speed_case(old_root, path))
                    new.append(speed_case(ROOT, path))
                else:
                    new.append(speed_case(ROOT, path))
                    old.append(speed_case(old_root, path))
            results[name] = speed_summary(old, new)
    return {"baseline": BASELINE, "rounds": SPEED_ROUNDS, "inputs": results,
            "load_average_before": load_before, "load_average_after": os.getloadavg(),
            "ratio_target": 2.0, "peak_rss_target_mb": 400}


def speed_summary(old: list[dict], new: list[dict]) -> dict:
    best_old = min(old, key=lambda r: r["wall_s"])
    best_new = min(new, key=lambda r: r["wall_s"])
    median = lambda runs, key: statistics.median(r[key] for r in runs)  # noqa: E731
    stages = best_new["stages"]
    return {
        "chars": best_new["chars"], "tokens": best_new["tokens"], "chapters": best_new["chapters"],
        "same_tokens": {r["tokens"] for r in old} == {r["tokens"] for r in new},
        "old_s": [r["wall_s"] for r in old], "new_s": [r["wall_s"] for r in new],
        "old_best_s": best_old["wall_s"], "new_best_s": best_new["wall_s"],
        "old_median_s": median(old, "wall_s"), "new_median_s": median(new, "wall_s"),
        "ratio_best": best_old["wall_s"] / best_new["wall_s"],
        "ratio_median": median(old, "wall_s") / median(new, "wall_s"),
        # each round's old / new (the two ran one after the other, so under the same load)
        "ratio_pairs_median": statistics.median(o["wall_s"] / n["wall_s"] for o, n in zip(old, new)),
        "old_cpu_s": median(old, "cpu_s"), "new_cpu_s": median(new, "cpu_s"),
        "old_peak_rss_mb": max(r["peak_rss_mb"] for r in old), "new_peak_rss_mb": max(r["peak_rss_mb"] for r in new),
        "stages_s": stages,
        "stage_share": {name: seconds / best_new["wall_s"] for name, seconds in stages.items()},
    }


def cast_figures() -> dict:
    from memory.reading.cast import find_cast
    from memory.reading.characters import MAX_CHARACTERS
    from tests.fakes.novel_casts import CASTS, score

    figures = {}
    for novel in CASTS:
        text = (SHARED_DATA / novel).read_text(encoding="utf-8-sig")
        started = time.perf_counter()
        cast = find_cast(text)
        seconds = time.perf_counter() - started
        shown = cast.people[:MAX_CHARACTERS]
        figures[novel] = {**score([(p.name, p.aliases) for p in shown], novel).as_dict(), "seconds": seconds,
                          "shown": [p.name for p in shown], "places_found": len(cast.places)}
    return figures


def report_cast(casts: dict) -> None:
    print_table("Cast from the text, the dozen shown, against the hand-written lists",
                ["novel", "precision", "main recall", "doubles", "places shown", "aliases right/wrong",
                 "places set apart", "s"],
                [[novel.split(".")[0], f"{c['precision']:.2f}", f"{c['main_recall']:.2f} ({c['main_found']}/"
                  f"{c['main_total']})", "; ".join(c["doubles"]) or "none", len(c["places"]),
                  f"{c['aliases_right']}/{c['aliases_wrong']}", c["places_found"], f"{c['seconds']:.2f}"]
                 for novel, c in casts.items()])
    for novel, c in casts.items():
        print(f"{novel.split('.')[0]}: {', '.join(c['shown'])}")


def run() -> dict:
    from benchmarks.bench_extract import INPUTS, PDF_PAGES, build_inputs

    speed = speed_figures()
    if os.environ.get("BENCH_SPEED_ONLY"):
        return {"speed": speed}
    notes = build_inputs()
    casts = cast_figures()
    cases = [
        ("txt UTF-8, 2M chars", INPUTS / "novels.utf8.txt"),
        ("txt GB18030, 2M chars", INPUTS / "novels.gb18030.txt"),
        ("EPUB, same text", INPUTS / "novels.epub"),
        ("DOCX, same text", INPUTS / "novels.docx"),
        (f"PDF, {PDF_PAGES} pages", INPUTS / "book500.pdf"),
    ]
    ingestion = [ingest_case(label, path, warm=False) for label, path in cases]
    ingestion.append(ingest_case(cases[0][0], cases[0][1], warm=True))
    headline = ingestion[0]
    return {
        "notes": notes,
        "speed": speed,
        "cast": casts,
        "ingestion": ingestion,
        "assembly": assembly_figures(),
        "targets": {"txt_2m_seconds": headline["wall_s"], "seconds_target": 3.0,
                    "txt_2m_peak_rss_mb": headline["peak_rss_mb"], "peak_rss_target_mb": 400},
    }


# (issue 18's stage, the timing's name in IngestResult.stages, the thread it runs in)
STAGES = [
    ("decode", "decode", "writer"), ("normalise", "normalize", "writer"), ("chapters", "chapters", "writer"),
    ("(all extraction)", "extract", "writer"), ("passages", "passages", "writer"), ("passages", "rows", "writer"),
    ("token counts", "tokenizer", "tokens"), ("token counts", "tokens", "tokens"),
    ("token counts", "tokens wait", "writer"), ("full-text index", "index forms", "prepare"),
    ("full-text index", "index", "writer"), ("commit", "commit", "writer"), ("commit", "checkpoint", "writer"),
]


def report_speed(speed: dict) -> None:
    if "error" in speed:
        print(f"\nSpeed against the old path: {speed['error']}")
        return
    for name, figures in speed["inputs"].items():
        report_speed_input(name, figures, speed)
    print(f"\nload average (1, 5, 15 min) before {', '.join(f'{x:.2f}' for x in speed['load_average_before'])}, "
          f"after {', '.join(f'{x:.2f}' for x in speed['load_average_after'])}")


def report_speed_input(name: str, speed: dict, run: dict) -> None:
    print_table(
        f"Ingestion of {speed['chars']:,} characters ({name}), this tree against {run['baseline'][:12]} "
        f"(alternately, {run['rounds']} rounds, fresh process each)",
        ["path", "best wall s", "median wall s", "CPU s", "peak RSS MB"],
        [["old", f"{speed['old_best_s']:.2f}", f"{speed['old_median_s']:.2f}", f"{speed['old_cpu_s']:.2f}",
          f"{speed['old_peak_rss_mb']:.0f}"],
         ["new", f"{speed['new_best_s']:.2f}", f"{speed['new_median_s']:.2f}", f"{speed['new_cpu_s']:.2f}",
          f"{speed['new_peak_rss_mb']:.0f}"]],
    )
    print_table(f"Stages of the new path ({name}; best run; the tokenizer, token counts and index forms run in "
                "threads beside the writes, so the shares add up to more than 100%)",
                ["stage", "part", "thread", "seconds", "share of wall"],
                [[stage, part, thread, f"{speed['stages_s'][part]:.3f}", f"{speed['stage_share'][part]:.0%}"]
                 for stage, part, thread in STAGES if part in speed["stages_s"]])
    print(f"\n{name}: old / new {speed['ratio_best']:.2f}x best, {speed['ratio_median']:.2f}x median, "
          f"{speed['ratio_pairs_median']:.2f}x median of the rounds' ratios (target >= {run['ratio_target']:.0f}x); "
          f"peak RSS {speed['new_peak_rss_mb']:.0f} MB (target < {run['peak_rss_target_mb']} MB); "
          f"same token counts: {speed['same_tokens']}")


def report(results: dict) -> None:
    report_speed(results["speed"])
    if len(results) == 1:
        return
    report_cast(results["cast"])
    print_table(
        "Ingestion, end to end (fresh process each; cold = tokenizer loads inside the call)",
        ["case", "tokenizer", "input MB", "chars", "tokens", "chapters", "passages", "wall s", "peak RSS MB"],
        [[r["case"], "warm" if r["warm"] else "cold", f"{r['input_mb']:.1f}", f"{r['chars']:,}", f"{r['tokens']:,}",
          r["chapters"], r["passages"], f"{r['wall_s']:.2f}", f"{r['peak_rss_mb']:.0f}"] for r in results["ingestion"]],
    )
    print(f"PDF text: {results['notes'].get('pdf_text')}")
    a = results["assembly"]
    print_table(
        f"Request assembly, {a['messages']:,} messages, window {a['window']:,}, novel of {a['novel_tokens']:,} tokens",
        ["document", "mode", "documents tok", "passages tok", "p50 ms", "p95 ms"],
        [["none", "-", 0, 0, f"{a['p50_ms_without_document']:.2f}", "-"],
         ["西游记", a["mode"], a["documents_tokens"], a["passages_tokens"], f"{a['p50_ms']:.2f}", f"{a['p95_ms']:.2f}"]],
    )
    t = results["targets"]
    print(f"\n2M chars of text: {t['txt_2m_seconds']:.2f} s (target <= {t['seconds_target']:.0f} s), "
          f"peak RSS {t['txt_2m_peak_rss_mb']:.0f} MB (target <= {t['peak_rss_target_mb']} MB); "
          f"assembly p50 {a['p50_ms']:.2f} ms (target <= {a['p50_target_ms']} ms)")


if __name__ == "__main__":
    report(run())
