"""Paths and path sets: what ``regflow paths`` prints and the runner replays (the coverage
items they reach are ``regflow.testing.model``'s)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import attrs

from regflow.testing.engines import FlowSource
from regflow.testing.model import KINDS, Item, Step
from regflow.testing.scenario import Scenario


@attrs.frozen
class Path:
    """A start context and steps that replay on an engine; ``covers`` lists the items reached.

    ``source`` and ``scenario`` say how to build the engine and its world (not part of the
    JSON, which carries them once per path set)."""

    id: str
    flow: str
    context: dict[str, Any]
    steps: tuple[Step, ...]
    covers: tuple[str, ...]
    source: FlowSource = attrs.field(eq=False, repr=False)
    scenario: Scenario = attrs.field(eq=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (with the start context and each step's expectation)."""
        return {"id": self.id, "context": dict(self.context),
                "steps": [s.to_dict() for s in self.steps], "covers": list(self.covers)}


@attrs.frozen
class Coverage:
    """Which items of a definition the paths reach; ``unreachable`` holds the items the
    scenario declares unreachable, with the reason (they still count in the totals)."""

    items: tuple[Item, ...]
    covered: frozenset[str]
    unreachable: Mapping[str, str] = attrs.field(factory=dict)

    def count(self, kind: str) -> tuple[int, int]:
        """``(covered, total)`` of one kind."""
        ids = [i.id for i in self.items if i.kind == kind]
        return sum(1 for i in ids if i in self.covered), len(ids)

    @property
    def uncovered(self) -> list[str]:
        """Items no path reaches, in the definition's order."""
        return [i.id for i in self.items if i.id not in self.covered]

    @property
    def missing(self) -> list[str]:
        """Uncovered items that are not declared unreachable: work left to do."""
        return [i for i in self.uncovered if i not in self.unreachable]

    @property
    def stale(self) -> list[str]:
        """Items declared unreachable that a path reaches after all."""
        return [i for i in self.unreachable if i in self.covered]

    @property
    def complete(self) -> bool:
        """Everything is covered except what is declared unreachable (and that really is)."""
        return not self.missing and not self.stale

    def to_dict(self) -> dict[str, list[int]]:
        """``{"transitions": [c, t], "guard_outcomes": [c, t], "timers": [c, t]}``."""
        return {kind: list(self.count(kind)) for kind in KINDS}

    def line(self, flow: str, limit: int | None = None) -> str:
        """``registration: transitions 25/25, guard outcomes 30/30, timers 15/15 (100%)``, then
        what is missing (the first ``limit`` items, and how many more)."""
        parts = [f"{kind.replace('_', ' ')} {c}/{t}" for kind in KINDS for c, t in [self.count(kind)]]
        total = len(self.items)
        percent = 100.0 if not total else 100.0 * len(self.covered & {i.id for i in self.items}) / total
        text = f"{flow}: {', '.join(parts)} ({percent:.0f}%)"
        if self.unreachable:
            text += f"; {len(self.unreachable)} declared unreachable"
        if self.complete:
            return text
        wrong = self.missing + self.stale
        if limit is not None and len(wrong) > limit:
            wrong = [*wrong[:limit], f"… {len(wrong) - limit} more"]
        return text + f"; MISSING {', '.join(wrong)}"


@attrs.frozen
class PathSet:
    """The paths of one flow with their coverage: the answer of ``generate_paths``."""

    flow: str
    version: int
    paths: tuple[Path, ...]
    coverage: Coverage
    scenario: Scenario = attrs.field(eq=False, repr=False)
    source: FlowSource = attrs.field(eq=False, repr=False)
    notes: tuple[str, ...] = ()

    def __iter__(self) -> Iterator[Path]:
        return iter(self.paths)

    def coverage_of(self, path_ids: Iterable[str]) -> Coverage:
        """The coverage of only some of the paths (e.g. those replayed in a test run)."""
        ids = set(path_ids)
        covered = frozenset(i for p in self.paths if p.id in ids for i in p.covers)
        return attrs.evolve(self.coverage, covered=covered)

    def __len__(self) -> int:
        return len(self.paths)

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``regflow paths``, with the uncovered items and the scenario."""
        declared = self.coverage.unreachable
        return {
            "flow": self.flow, "version": self.version,
            "paths": [p.to_dict() for p in self.paths],
            "coverage": self.coverage.to_dict(),
            "uncovered": [{"item": i, "reason": declared.get(i, "no witness reaches it")}
                          for i in self.coverage.uncovered],
            "notes": list(self.notes),
            "scenario": self.scenario.to_dict(),
        }

    def to_json(self) -> str:
        """``to_dict`` as indented JSON, the same bytes for the same definition and scenario."""
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2, default=str)
