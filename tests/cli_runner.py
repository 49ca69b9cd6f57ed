"""Running `companion` commands many times, each as its own process, with its peak memory.

`run_measured` starts the real `companion` script (through a tiny launcher, see below)
and waits for it with `os.wait4`, which gives that one child's resource usage: its peak
resident memory (ru_maxrss) and exit code, beside the wall time.

`ForkedCompanion` is the same thing without paying the interpreter start and the
imports (about 1-2 s on a busy machine) for every case: one server process imports
`bot.cli` once, and for each command forks a child that runs the click entry point
`main` with the given arguments, environment, stdin and output files, exactly as the
script would, then exits with the command's exit code. The server also loads the
tokenizer once (1-2 s of every start, whatever the input). The parent waits for the child
with `os.wait4` and reports its exit code, wall time and peak memory. The child's peak
includes the pages it shares with the server (the imported modules, ~100 MB), so the
figure is an upper bound of what the command itself needs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.bot_process import COMMAND, clean_environment



@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str
    seconds: float
    peak_mb: float


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any bot settings, plus `extra`."""
    return {**clean_environment(), **(extra or {})}


# Linux keeps a process's peak memory across exec, and a child that subprocess starts
# with vfork shares its parent's memory until exec: measured directly, the child of a
# 500 MB test process "peaks" at 500 MB. So a bare interpreter (~10 MB) starts the
# command and reports the command's own usage.
_LAUNCHER = r"""
import json, os, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
with open(sys.argv[1], "w") as report:
    json.dump({"code": os.waitstatus_to_exitcode(status), "peak_mb": usage.ru_maxrss / 1024}, report)
"""


def run_measured(args: list[str], env: dict[str, str], folder: Path, stdin: bytes = b"") -> Outcome:
    """The real `companion` script as a process of its own, with its own peak memory."""
    folder.mkdir(parents=True, exist_ok=True)
    out, err, given, report = folder / "stdout", folder / "stderr", folder / "stdin", folder / "usage.json"
    given.write_bytes(stdin)
    start = time.monotonic()
    with open(given, "rb") as stdin_file, open(out, "wb") as out_file, open(err, "wb") as err_file:
        subprocess.run([sys.executable, "-S", "-c", _LAUNCHER, str(report), *COMMAND, *args], stdin=stdin_file,
                       stdout=out_file, stderr=err_file, env=env, check=False)
    seconds = time.monotonic() - start
    usage = json.loads(report.read_text())
    return Outcome(usage["code"], out.read_text(errors="replace"), err.read_text(errors="replace"),
                   seconds, usage["peak_mb"])


_SERVER = r"""
import json, os, sys, time
from bot.cli import main
from memory.tokens import load_encoding

load_encoding()  # once, as every child would: a fixed cost of each start, unrelated to the input

for line in sys.stdin:
    job = json.loads(line)
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        os.environ.clear()
        os.environ.update(job["env"])
        os.chdir(job["cwd"])
        for fd, path, flags in ((0, job["stdin"], os.O_RDONLY),
                                (1, job["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
                                (2, job["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)):
            os.dup2(os.open(path, flags, 0o600), fd)
        sys.stdin = open(0, encoding="utf-8", closefd=False)
        code = 0
        try:
            main.main(args=job["args"], prog_name="companion")
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
        except BaseException:
            import traceback
            traceback.print_exc()
            code = 70
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    _, status, usage = os.wait4(pid, 0)
    print(json.dumps({"code": os.waitstatus_to_exitcode(status), "seconds": time.monotonic() - start,
                      "peak_mb": usage.ru_maxrss / 1024}), flush=True)
"""


class ForkedCompanion:
    """`companion ARGS` run in a fresh child forked from a server that imported the CLI once."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.server = subprocess.Popen([sys.executable, "-c", _SERVER], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, text=True, env=clean_env(),
                                       cwd=Path(__file__).resolve().parents[1])
        self.runs = 0

    def __call__(self, args: list[str], env: dict[str, str], stdin: bytes = b"") -> Outcome:
        self.runs += 1
        base = self.folder / f"run{self.runs}"
        given = base.with_suffix(".stdin")
        given.write_bytes(stdin)
        job = {"args": args, "env": env, "cwd": str(self.folder), "stdin": str(given),
               "stdout": str(base.with_suffix(".out")), "stderr": str(base.with_suffix(".err"))}
        self.server.stdin.write(json.dumps(job) + "\n")
        self.server.stdin.flush()
        report = json.loads(self.server.stdout.readline())
        return Outcome(report["code"], base.with_suffix(".out").read_text(errors="replace"),
                       base.with_suffix(".err").read_text(errors="replace"), report["seconds"], report["peak_mb"])

    def close(self) -> None:
        self.server.stdin.close()
        self.server.wait(timeout=10)
