"""``mutation``: ``regflow mutate`` over every built-in flow — each mutant of the definition and
the registry judged by the flow's shipped approved paths, in parallel processes (one per CPU).

Reported per flow and in total: mutants, seconds (wall, the pool's start included), mutants per
second and the score (killed / (killed + survived)); the aim is all built-in flows together in
under 60 s. A mutant that is killed stops at the first approved path that tells it apart; a
survivor replays every approved path, so the time falls as the scenarios kill more.
``--quick`` judges every 5th mutant of each flow.
"""

from __future__ import annotations

import os
import time
from typing import Any

from regflow.machines import BUILTIN_FLOWS
from regflow.testing import approval, builtin_scenario
from regflow.testing import mutation as mutants
from regflow.testing.engines import FlowSource
from regflow.testing.mutants import STATUSES, declared_equivalents
from regflow.testing.mutants import mutants as mutants_of

AIM_S = 60.0


def mutation_run(flow: str, sample: int = 1, jobs: int | None = None) -> mutants.Report:
    """One flow's mutation run on its shipped approved paths (every ``sample``-th mutant)."""
    source, scenario = FlowSource(flow), builtin_scenario(flow)
    document = approval.load(approval.builtin_approved(flow))
    only: list[str] = []
    if sample > 1:
        _, definition = mutants.base_source(source)
        only = [m.id for m in mutants_of(definition)][::sample]
    return mutants.mutate(source, scenario, document, jobs=jobs, only=only,
                          equivalent=declared_equivalents(scenario), approved=f"{flow}.json")


def mutation(cfg: Any) -> dict[str, Any]:
    sample = int(getattr(cfg, "mutation_sample", 1))
    jobs = os.cpu_count() or 1
    flows: dict[str, Any] = {}
    begun = time.perf_counter()
    for flow in BUILTIN_FLOWS:
        report = mutation_run(flow, sample, jobs)
        flows[flow] = {
            "mutants": len(report.outcomes), "seconds": round(report.seconds, 2),
            "mutants_per_s": round(report.per_second, 1), "score": round(report.score, 1),
            **{status: report.count(status) for status in STATUSES},
            "survivors": [o.id for o in report.of("survived")],
        }
    seconds = time.perf_counter() - begun
    total = sum(f["mutants"] for f in flows.values())
    lowest = min(flows, key=lambda f: flows[f]["score"])
    return {
        "mutants": total, "seconds": round(seconds, 1), "mutants_per_s": round(total / seconds, 1),
        "jobs": jobs, "sample": sample, "flows": flows,
        "survived": sum(f["survived"] for f in flows.values()),
        "lowest_score": {"flow": lowest, "score": flows[lowest]["score"]},
        "target": f"< {AIM_S:.0f} s", "met": seconds < AIM_S if sample == 1 else None,
    }
