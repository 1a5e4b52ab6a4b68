"""``python -c "import regflow"`` wall time, the median of several fresh interpreters, beside a
bare ``python -c pass`` (the interpreter's own start, which no package can remove) and the time
to an engine ready to serve (the built-in flows loaded, on the memory store)."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

from benchmarks.harness import median

ENGINE = "import regflow; regflow.Engine.from_url('memory://', hasher='fast')"


def _wall_ms(code: str) -> float:
    before = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return (time.perf_counter() - before) * 1000


def import_ms(cfg: Any) -> dict[str, Any]:
    _wall_ms("import regflow")  # bytecode compiled and files cached before the count
    runs: list[float] = []
    bare: list[float] = []
    ready: list[float] = []
    for _ in range(cfg.import_runs):  # in turns, so load from elsewhere hits all three alike
        runs.append(_wall_ms("import regflow"))
        bare.append(_wall_ms("pass"))
        ready.append(_wall_ms(ENGINE))
    value = round(median(runs), 1)
    return {
        "import_ms": value,
        "detail": {"runs_ms": [round(v, 1) for v in runs], "min_ms": round(min(runs), 1),
                   "bare_python_ms": round(median(bare), 1),
                   "engine_ready_ms": round(median(ready), 1),
                   "regflow_only_ms": round(value - median(bare), 1),
                   "target": "<= 150", "met": value <= 150},
    }
