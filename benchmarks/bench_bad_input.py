"""Bad-input benchmark: the bad-input corpus through the command line, time and peak memory per case.

    python -m benchmarks bad_input

Every item of tests/fakes/bad_inputs.py (built into a temporary folder: >1 GiB zip bombs
as .epub/.docx/.charx, random bytes, empty files, 100,000-deep HTML, a file over the
20 MB cap, damaged UTF-8, one 10 MB line, control characters, planted instructions,
PNG cards with 10 MB chunks, a 3 MB persona file) is given to the command that takes
it (`companion ingest`, `companion personas import`, `companion personas list` with the
file in COMPANION_PERSONAS_DIR), each in its own process forked from one that imported
the CLI and loaded the tokenizer once (tests/cli_runner.py). Reported per case: the
outcome (exit code and the first line of stderr), the wall time of the command and the
child's peak resident memory (wait4's ru_maxrss, which includes the ~100-200 MB it
shares with the parent, so an upper bound). One cold start of the real `companion`
script on the first case shows what a fresh process adds.

The issue's limits: a refusal or safe handling within 5 s and 500 MB. The test
(tests/test_bad_input.py) asserts them; this prints the figures for docs/reliability.md.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from benchmarks.common import print_table


def run() -> dict:
    from tests.cli_runner import ForkedCompanion, clean_env, run_measured
    from tests.fakes import bad_inputs

    with tempfile.TemporaryDirectory(prefix="bench-bad-input-") as temp:
        folder = Path(temp)
        documents = bad_inputs.document_corpus(folder / "documents")
        cards = bad_inputs.card_corpus(folder / "cards")
        personas_dir = folder / "personas"
        personas_dir.mkdir()
        (personas_dir / "huge.toml").write_bytes(bad_inputs.huge_toml())
        env = clean_env({"COMPANION_DB": str(folder / "companion.db")})
        cli = ForkedCompanion(folder / "runs")
        try:
            jobs = [(case, "companion ingest", ["ingest", str(path), "--user", "ann", "--json"], env)
                    for case, path in documents.items()]
            jobs += [(case, "companion personas import", ["personas", "import", str(path)], env)
                     for case, path in cards.items()]
            jobs.append(("persona file of 3 MB", "companion personas list", ["personas", "list"],
                         {**env, "COMPANION_PERSONAS_DIR": str(personas_dir)}))
            cases = []
            for case, command, args, case_env in jobs:
                outcome = cli(args, case_env)
                said = (outcome.stderr.strip().splitlines() or [""])[0].removeprefix("companion: ")
                cases.append({"case": case, "command": command, "exit_code": outcome.code,
                              "said": said if outcome.code or said else outcome.stdout.strip()[:100],
                              "wall_s": round(outcome.seconds, 3), "peak_rss_mb": round(outcome.peak_mb, 1)})
        finally:
            cli.close()
        first = next(iter(documents.values()))
        cold = run_measured(["ingest", str(first), "--user", "ann"], env, folder / "cold")
    return {"cases": cases, "cold_start": {"case": next(iter(documents)), "wall_s": round(cold.seconds, 3),
                                           "peak_rss_mb": round(cold.peak_mb, 1), "exit_code": cold.code}}


def report(results: dict) -> None:
    print_table(
        "Bad input through the command line (each case its own forked process)",
        ["case", "command", "exit", "wall s", "peak RSS MB", "outcome"],
        [[r["case"], r["command"], r["exit_code"], f"{r['wall_s']:.2f}", f"{r['peak_rss_mb']:.0f}", r["said"][:90]]
         for r in results["cases"]],
    )
    cold = results["cold_start"]
    print(f"\ncold start of the real script ({cold['case']}): {cold['wall_s']:.2f} s, "
          f"peak {cold['peak_rss_mb']:.0f} MB, exit code {cold['exit_code']}")
