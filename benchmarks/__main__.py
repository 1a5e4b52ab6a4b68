"""``python -m benchmarks`` (``make bench``): run every benchmark, print the table, write
``benchmarks/results.json``.

    python -m benchmarks                 # the full run (a few minutes; rewrites docs/benchmarks.md)
    python -m benchmarks --quick         # short loops, 10k instead of 100k flows: a smoke test
    python -m benchmarks --only dispatch_memory,import_ms --out /tmp/r.json
    python -m benchmarks --only http --merge   # redo one row in benchmarks/results.json
    python -m benchmarks.docs_page             # then docs/benchmarks.md from it
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from benchmarks import fixtures
from benchmarks.bounds import bounds
from benchmarks.contention import contention
from benchmarks.dispatch import dispatch_memory, step_postgresql, step_sqlite
from benchmarks.docs_page import PAGE, page
from benchmarks.growth import growth
from benchmarks.harness import machine
from benchmarks.http_bench import http, scaling
from benchmarks.journal_report import journal_report
from benchmarks.mutation import mutation
from benchmarks.oracle import oracle_gap
from benchmarks.registration import registration
from benchmarks.report import table
from benchmarks.startup import import_ms

HERE = Path(__file__).parent
# In this order: the import timing first, on a quiet machine; the multi-process run last.
BENCHMARKS: dict[str, Callable[[Any], dict[str, Any]]] = {
    "import_ms": import_ms,
    "dispatch_memory": dispatch_memory,
    "step_sqlite": step_sqlite,
    "step_postgresql": step_postgresql,
    "bounds": bounds,
    "growth": growth,
    "registration": registration,
    "oracle_gap": oracle_gap,
    "mutation": mutation,
    "contention": contention,
    "journal_report": journal_report,
    "http": http,
    "scaling": scaling,
}


@attrs.frozen
class Config:
    rounds: int = 9  # interleaved rounds per comparison
    seconds: float = 0.6  # a contender's time box per round; benchmarks scale it
    growth_big: int = 100_000
    import_runs: int = 11
    mutation_sample: int = 1  # judge every n-th mutant of each flow
    scaling_processes: tuple[int, ...] = (1, 2, 4)  # regflow serve processes per scaling run
    journal_rows: int = 1_000_000  # journal rows generated for the report timing


QUICK = Config(rounds=3, seconds=0.2, growth_big=10_000, import_runs=3, mutation_sample=5,
               scaling_processes=(1, 2), journal_rows=30_000)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short loops, a smoke test")
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    parser.add_argument("--out", type=Path, default=None,
                        help="where to write the JSON (default benchmarks/results.json; "
                             "with --quick, a file in the temporary folder)")
    parser.add_argument("--merge", action="store_true",
                        help="with --only: keep the other rows of the output file")
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else Config()
    chosen = [name.strip() for name in args.only.split(",") if name.strip()] or list(BENCHMARKS)
    unknown = sorted(set(chosen) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}")
    out = args.out or (Path(tempfile.gettempdir()) / "regflow-bench-quick.json" if args.quick
                       else HERE / "results.json")

    started = time.perf_counter()
    results: dict[str, Any] = {}
    if args.only and args.merge and out.exists():  # the other rows stay as an earlier run left them
        results = json.loads(out.read_text(encoding="utf-8"))
    results |= {"machine": machine(fixtures.postgres_version()),
                "config": attrs.asdict(cfg) | {"quick": args.quick}}
    failed = []
    for name in BENCHMARKS:
        if name not in chosen:
            continue
        print(f"… {name}", file=sys.stderr, flush=True)
        begun = time.perf_counter()
        try:
            found = BENCHMARKS[name](cfg)
        except Exception:
            failed.append(name)
            found = {"error": traceback.format_exc()}
            print(found["error"], file=sys.stderr)
        found.setdefault("see", f"docs/benchmarks.md#{name}")
        if name == "import_ms" and "import_ms" in found:  # a plain number, its runs beside it
            results["import_ms"] = found["import_ms"]
            results["import_detail"] = found["detail"] | {"see": found["see"]}
        else:
            results[name] = found
        print(f"  {name}: {time.perf_counter() - begun:.1f} s", file=sys.stderr, flush=True)
    if not (args.only and args.merge):
        results["duration_s"] = round(time.perf_counter() - started, 1)
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(table(results))
    print(f"\n{time.perf_counter() - started:.1f} s; written to {out}")
    if not args.quick and not args.only and args.out is None:  # the full run: the page too
        PAGE.write_text(page(results), encoding="utf-8")
        print(f"{PAGE} rewritten from it")
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
