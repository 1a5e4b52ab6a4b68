"""Mutation testing of a flow against its approved paths (``regflow mutate``).

A *mutant* is the flow with one small change: in its definition (a guard dropped or negated,
two adjacent branches swapped, a transition retargeted, an action or a message dropped, a
duration or a setting moved by one unit) or in its registry (a guard that always answers true
or false, an action that does nothing). Each mutant is judged by ``approval.check`` — the
oracle of ``regflow paths FLOW --check`` — on the flow's approved paths: **killed** when the
check finds a difference (or raises), **survived** when the approved paths cannot tell the
mutant from the flow. A survivor is a behaviour the approved paths do not pin down: a missing
witness or path, or a mutant that really behaves the same — **equivalent**, which counts only
when declared with its reason (a scenario's ``equivalent`` table, or ``--equivalent FILE``).
Mutants that do not load (``DefinitionError``) are **invalid**. The score is
killed / (killed + survived).

Mutant ids are stable and readable, e.g. ``guard-dropped:details.submit[1]:seat_free``,
``retarget:enter_code.back:enter_email->details``, ``setting:code_ttl:+1s``,
``registry:guard-true:code_matches``.

Each mutant is checked with ``approval.check`` in parts that together make the whole check:
the coverage items first, then the approved paths most likely to tell it apart one at a time
(those that cover or go through what changed, then those that killed most mutants so far),
then the rest in growing groups; it stops at the first part that finds a difference. Only a
survivor replays every approved path. Mutants run in parallel processes (``--jobs``), each
of which builds the flow's judge and reads the approved document once.
"""

from __future__ import annotations

import concurrent.futures as futures
import multiprocessing
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import attrs

from regflow.definitions.model import FlowDefinition
from regflow.ground.exceptions import DefinitionError
from regflow.testing import approval
from regflow.testing.engines import FlowSource
from regflow.testing.mutants import (
    STATUSES,
    Mutant,
    definition_mapping,
    mutant_source,
    mutants,
    select,
)
from regflow.testing.scenario import Scenario


@attrs.frozen
class Outcome:
    """How one mutant fared: ``status`` is one of ``STATUSES``; ``detail`` is the first
    difference found (killed), the load fault (invalid) or the declared reason (equivalent);
    ``by`` says what killed it: ``items`` (the coverage items differ), a path id, or ``error``."""

    id: str
    kind: str
    change: str
    status: str
    detail: str = ""
    by: str = ""
    seconds: float = 0.0
    replayed: int = 0  # approved paths replayed to judge it
    declared: str | None = None  # the declared reason, when the mutant was declared equivalent

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of one result."""
        out = {"id": self.id, "kind": self.kind, "change": self.change, "status": self.status,
               "detail": self.detail, "by": self.by, "seconds": round(self.seconds, 4),
               "replayed": self.replayed}
        if self.declared is not None:
            out["declared_equivalent"] = self.declared
        return out


# ---- judging ----------------------------------------------------------------------------------

def path_marks(raw: Mapping[str, Any]) -> tuple[frozenset[str], frozenset[str]]:
    """What an approved path is known to go through: the items it covers, and the states it
    is in with the ``state.event`` pairs it sends or fires."""
    seen: set[str] = set()
    state = str(raw["start"]["state"])
    seen.add(state)
    for outcome in raw["steps"]:
        do = outcome.get("do") or {}
        if do.get("event"):
            seen.add(f"{state}.{do['event']}")
        for fired in outcome.get("fired") or ():
            seen.add(f"{state}.{fired}")
        state = str(outcome["state"])
        seen.add(state)
    return frozenset(str(c) for c in raw.get("covers") or ()), frozenset(seen)


class Judge:
    """Judges mutants of one flow on its approved document (one per worker process; it learns
    which paths kill most and tries them first).

    A mutant is checked with ``approval.check`` in parts that together are the whole check:
    the coverage items, then the ``singly`` most promising approved paths one at a time, then
    the rest in parts of 2, 4, 8, … — so a killed mutant stops early, and a survivor has been
    through the whole check."""

    def __init__(self, base: FlowSource, scenario: Scenario, document: Mapping[str, Any],
                 singly: int = 3) -> None:
        self.base, self.scenario, self.document, self.singly = base, scenario, document, singly
        self.paths: list[Mapping[str, Any]] = list(document["paths"])
        self.marks = {str(p["id"]): path_marks(p) for p in self.paths}
        self.kills: Counter[str] = Counter()

    def order(self, mutant: Mutant) -> list[Mapping[str, Any]]:
        """The approved paths in the order to try: those covering the changed items, then those
        going through its state or event, then those that killed most, then the shortest."""
        near = set(mutant.near)

        def key(raw: Mapping[str, Any]) -> tuple[int, int, int]:
            pid = str(raw["id"])
            covers, touches = self.marks[pid]
            return (-(2 * len(near & covers) + len(near & touches)), -self.kills[pid], len(raw["steps"]))
        return sorted(self.paths, key=key)

    def judge(self, mutant: Mutant) -> Outcome:
        """Check one mutant: invalid, killed (with the first difference) or survived."""
        begun = time.perf_counter()
        replayed = 0

        def done(status: str, detail: str = "", by: str = "") -> Outcome:
            return Outcome(mutant.id, mutant.kind, mutant.change, status, detail, by,
                           time.perf_counter() - begun, replayed)

        source = mutant_source(self.base, mutant)
        try:
            problems = approval.check({**self.document, "paths": []}, source, self.scenario)
        except DefinitionError as exc:  # the mutant does not load
            return done("invalid", exc.faults[0] if exc.faults else str(exc))
        except Exception as exc:
            return done("killed", _raised(exc), "error")
        if problems:
            return done("killed", problems[0], "items")
        ordered = self.order(mutant)
        parts = [ordered[n:n + size] for n, size in _parts(len(ordered), self.singly)]
        for part in parts:
            replayed += len(part)
            try:
                problems = approval.check({**self.document, "paths": part}, source, self.scenario)
            except Exception as exc:  # the check could not run: a difference all the same
                return done("killed", _raised(exc), "error")
            if problems:
                ids = [str(p["id"]) for p in part]
                killer = next((i for i in ids if problems[0].startswith((f"{i} ", f"{i}:"))), ids[0])
                self.kills[killer] += 1
                return done("killed", problems[0], killer)
        return done("survived")

    def baseline(self) -> list[str]:
        """The problems of the unchanged flow (none: the approved paths hold)."""
        return approval.check(self.document, self.base, self.scenario)


def _parts(total: int, singly: int) -> Iterator[tuple[int, int]]:
    """``(start, size)`` of the parts a mutant's paths are checked in: ``singly`` paths one
    at a time, then parts of 2, 4, 8, … (one ``approval.check`` each)."""
    start, size = 0, 1
    while start < total:
        yield start, size
        start += size
        if start >= singly:
            size = 2 * size if size > 1 else 2


def _raised(exc: Exception) -> str:
    return (f"{type(exc).__name__}: {exc}".splitlines() or [""])[0]


_JUDGE: Judge | None = None


def _start_worker(base: FlowSource, scenario: Scenario, document: Mapping[str, Any]) -> None:
    global _JUDGE
    _JUDGE = Judge(base, scenario, document)


def _judge(mutant: Mutant) -> Outcome:
    assert _JUDGE is not None, "worker not started"
    return _JUDGE.judge(mutant)


def _baseline() -> list[str]:
    assert _JUDGE is not None, "worker not started"
    return _JUDGE.baseline()


class BaselineFailed(Exception):
    """The approved paths do not hold on the unchanged flow: mutants cannot be judged."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


# ---- the run and its report -------------------------------------------------------------------

@attrs.frozen
class Report:
    """The outcome of a mutation run."""

    flow: str
    approved: str
    paths: int
    outcomes: tuple[Outcome, ...]
    seconds: float
    jobs: int
    warnings: tuple[str, ...] = ()

    def count(self, status: str) -> int:
        """How many mutants ended with ``status``."""
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def score(self) -> float:
        """killed / (killed + survived), in percent (100 when nothing was scored)."""
        killed, survived = self.count("killed"), self.count("survived")
        return 100.0 if killed + survived == 0 else 100.0 * killed / (killed + survived)

    @property
    def per_second(self) -> float:
        """Mutants judged per second of wall time."""
        return len(self.outcomes) / self.seconds if self.seconds > 0 else 0.0

    def of(self, status: str) -> list[Outcome]:
        """The outcomes with ``status``, in the mutants' order."""
        return [o for o in self.outcomes if o.status == status]

    def killed_by_items(self) -> int:
        """Killed mutants the coverage-item comparison alone caught."""
        return sum(1 for o in self.outcomes if o.status == "killed" and o.by == "items")

    def to_dict(self) -> dict[str, Any]:
        """The JSON report (``regflow mutate --json``)."""
        return {
            "flow": self.flow, "approved": self.approved, "paths": self.paths,
            "mutants": len(self.outcomes),
            **{status: self.count(status) for status in STATUSES},
            "killed_by_items": self.killed_by_items(),
            "score": round(self.score, 2), "seconds": round(self.seconds, 3),
            "mutants_per_s": round(self.per_second, 2), "jobs": self.jobs,
            "survivors": [{"id": o.id, "change": o.change} for o in self.of("survived")],
            "equivalent_mutants": [{"id": o.id, "change": o.change, "reason": o.detail}
                                   for o in self.of("equivalent")],
            "warnings": list(self.warnings),
            "results": [o.to_dict() for o in self.outcomes],
        }

    def lines(self) -> list[str]:
        """The report for people: survivors and equivalents one per line, then the counts."""
        out = [f"{self.flow}: {len(self.outcomes)} mutants judged by {self.paths} approved paths "
               f"({self.approved})"]
        for status, title in (("survived", "survived"), ("equivalent", "equivalent")):
            found = self.of(status)
            if not found:
                continue
            out.append(f"{title} ({len(found)}):")
            width = max(len(o.id) for o in found)
            why = status == "equivalent"
            out += [f"  {o.id.ljust(width)}  {o.change}" + (f" — {o.detail}" if why else "") for o in found]
        killed = self.count("killed")
        out.append(f"killed {killed} ({self.killed_by_items()} by the coverage items, "
                   f"{killed - self.killed_by_items()} by a replayed path), survived "
                   f"{self.count('survived')}, equivalent {self.count('equivalent')}, "
                   f"invalid {self.count('invalid')}")
        scored = killed + self.count("survived")
        out.append(f"score {self.score:.1f}% ({killed} of {scored}); {len(self.outcomes)} mutants in "
                   f"{self.seconds:.1f} s ({self.per_second:.1f} mutants/s, {self.jobs} "
                   f"job{'s' if self.jobs != 1 else ''})")
        return out


def base_source(source: FlowSource) -> tuple[FlowSource, FlowDefinition]:
    """The flow's source as a mapping that stands in for any built-in of its name (what every
    mutant changes), and its definition; the mapping must load back to the same definition."""
    defn = source.library().latest(source.name)
    base = FlowSource(source.name, mapping=definition_mapping(defn), registry=source.registry,
                      replaces=True)
    if base.library().latest(source.name) != defn:
        raise DefinitionError([f"{source.name}: the definition does not load back the same from data"])
    return base, defn


def mutate(source: FlowSource, scenario: Scenario, document: Mapping[str, Any], *,
           jobs: int | None = None, only: Sequence[str] = (), equivalent: Mapping[str, str] | None = None,
           approved: str = "", progress: Callable[[int, int, float], None] | None = None,
           every: float = 5.0) -> Report:
    """Judge every mutant of a flow (those ``only`` selects) on its approved ``document``.

    ``jobs`` processes (default: the CPU count; 1 runs here). ``equivalent`` maps mutant ids
    to the reason they behave the same; a declared mutant that survives is equivalent, one
    that is killed counts as killed (and the declaration is reported stale). ``progress`` is
    called with (done, total, seconds) at most every ``every`` seconds. Raises BaselineFailed
    when the approved paths do not hold on the unchanged flow."""
    begun = time.perf_counter()
    base, defn = base_source(source)
    every_mutant = mutants(defn, base.library().registry)
    chosen = select(every_mutant, only)
    declared = dict(equivalent or {})
    known = {m.id for m in every_mutant}
    warnings = [f"equivalent: no mutant {k!r} (a stale declaration?)"
                for k in sorted(declared) if k not in known]
    jobs = max(1, min(jobs or os.cpu_count() or 1, max(1, len(chosen))))
    results: dict[str, Outcome] = {}
    for outcome in _run(base, scenario, document, chosen, jobs, progress, every, begun):
        results[outcome.id] = outcome
    outcomes: list[Outcome] = []
    for m in chosen:
        outcome = results[m.id]
        reason = declared.get(m.id)
        if reason is not None:
            if outcome.status == "survived":
                outcome = attrs.evolve(outcome, status="equivalent", detail=reason, declared=reason)
            else:
                outcome = attrs.evolve(outcome, declared=reason)
                if outcome.status == "killed":
                    warnings.append(f"equivalent: {m.id} is declared equivalent but was killed "
                                    f"({outcome.detail}); remove the declaration")
        outcomes.append(outcome)
    return Report(flow=source.name, approved=approved, paths=len(document["paths"]),
                  outcomes=tuple(outcomes), seconds=time.perf_counter() - begun, jobs=jobs,
                  warnings=tuple(warnings))


def _run(base: FlowSource, scenario: Scenario, document: Mapping[str, Any], chosen: list[Mutant],
         jobs: int, progress: Callable[[int, int, float], None] | None, every: float,
         begun: float) -> Iterator[Outcome]:
    total, done, last = len(chosen), 0, time.perf_counter()

    def tick() -> None:
        nonlocal last
        now = time.perf_counter()
        if progress is not None and now - last >= every:
            progress(done, total, now - begun)
            last = now

    if jobs == 1:
        judge = Judge(base, scenario, document)
        problems = judge.baseline()
        if problems:
            raise BaselineFailed(problems)
        for m in chosen:
            yield judge.judge(m)
            done += 1
            tick()
        return
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    pool = futures.ProcessPoolExecutor(jobs, mp_context=context, initializer=_start_worker,
                                       initargs=(base, scenario, document))
    try:
        baseline = pool.submit(_baseline)
        pending: set[futures.Future[Any]] = {pool.submit(_judge, m) for m in chosen}
        problems = baseline.result()
        if problems:
            raise BaselineFailed(problems)
        while pending:
            finished, pending = futures.wait(pending, timeout=every, return_when=futures.FIRST_COMPLETED)
            for f in finished:
                done += 1
                yield f.result()
            tick()
    finally:  # on an error or an interrupt, what has not started is dropped
        pool.shutdown(wait=True, cancel_futures=True)
