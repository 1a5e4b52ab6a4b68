"""Approved paths: the observable outcome of every step of a flow's paths, written once by
``regflow paths FLOW --approve``, reviewed like code, and from then on the oracle that
``regflow paths FLOW --check`` (and ``regflow mutate``) replays against.

What a step's outcome holds is what a person or another system can see, in concrete numbers:
the flow's state and status, the screen's message ids with their fields and parameters, its
timers and expiry as instants, the timers that fired, the mails sent (template and recipient),
a session opened, and what changed in the world — logins created, changed or deleted (role,
seat, ready time, second factor, password), sessions ended, the flow's codes issued, used or
voided, licenses used, a customer's two-factor policy. Never a setting's name: a changed
duration or count in the definition shows as a changed instant or outcome.

The file is JSON, one per flow, in a stable order (keys as written here, paths by id), so a
change of behaviour shows as a readable diff in review.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from importlib import resources
from pathlib import Path as FilePath
from typing import Any

import attrs

from regflow.engine import Engine
from regflow.machines import BUILTIN_FLOWS
from regflow.testing.engines import FlowSource, engine_meta, flow_source, make_engine
from regflow.testing.model import Step, items_of
from regflow.testing.observe import Observer
from regflow.testing.pathset import Path, PathSet
from regflow.testing.runner import Player
from regflow.testing.scenario import Scenario

FORMAT = 1


def approve_command(flow: str | FlowSource) -> str:
    """The command that writes (again) the approved paths of a flow (no machine's own paths in
    it: the file name of a definition, with its scenario to be named)."""
    if isinstance(flow, FlowSource):
        if flow.file is None:
            return f"regflow paths {flow.name} --approve"
        return f"regflow paths {flow.file.name} --scenario SCENARIO --approve"
    return f"regflow paths {flow} --approve"


def builtin_approved(flow: str) -> FilePath:
    """Where the approved paths of a built-in flow ship (inside the package)."""
    return FilePath(str(resources.files("regflow.machines").joinpath("approved", f"{flow}.json")))


def approved_file(source: FlowSource, explicit: FilePath | None = None) -> FilePath:
    """The approved file of a flow: ``explicit``, else the built-in one, else
    ``<definition>.approved.json`` beside its definition file."""
    if explicit is not None:
        return explicit
    if source.file is None and source.name in BUILTIN_FLOWS:
        return builtin_approved(source.name)
    if source.file is not None:
        return source.file.with_name(f"{source.file.stem}.approved.json")
    raise ValueError(f"{source.name}: a flow given as a mapping needs an explicit approved file")


# ---- approving and checking ------------------------------------------------------------------

@attrs.frozen
class Difference:
    """One way a replay departed from the approved outcome."""

    path: str
    step: int  # 0: the start
    does: str
    field: str
    approved: Any
    now: Any

    def line(self) -> str:
        """``registration-03 step 4 (submit {'code': '$code'}): state: approved 'details', now
        'enter_code'``."""
        where = "start" if self.step == 0 else f"step {self.step} ({self.does})"
        return f"{self.path} {where}: {self.field}: approved {self.approved!r}, now {self.now!r}"


def replay(path_id: str, flow: str, context: Mapping[str, Any], steps: list[Step],
           scenario: Scenario, engine: Engine) -> Iterator[dict[str, Any]]:
    """The outcomes of a path's start and steps, replayed on ``engine`` (from ``make_engine``)."""
    meta = engine_meta(engine)
    assert meta is not None, "replay needs an engine from regflow.testing.make_engine"
    player = Player(engine, flow, scenario, meta.driver, meta.recorder, check=True)
    player.setup_world()
    first = player.begin(context)
    observer = Observer(engine, player)
    observer.before = {**observer.before, "codes": {}}
    yield observer.outcome(first, engine.get(player.flow_id, token=player.flow_token), None)
    for step in steps:
        seen = player.play(step)
        snapshot = engine.get(player.flow_id, token=player.flow_token)
        do = {k: v for k, v in seen.step.to_dict().items() if k not in ("expect", "fired")}
        yield observer.outcome(seen, snapshot, do)


def refusals(source: FlowSource, scenario: Scenario, **engine_options: Any) -> list[dict[str, Any]]:
    """What each of the scenario's ``refused_starts`` answers: the message id the start is
    refused with (``"started"`` when it is not refused)."""
    from regflow.ground.exceptions import RegflowError

    found = []
    for entry in scenario.refused_starts:
        engine = make_engine(source, **engine_options)
        meta = engine_meta(engine)
        assert meta is not None
        player = Player(engine, source.name, scenario, meta.driver, meta.recorder, check=False)
        try:
            player.setup_world()
            try:
                engine.start(source.name, player.resolve(entry["context"]), session=player.token)
                answer = "started"
            except RegflowError as exc:
                answer = exc.message_id
        finally:
            engine.store.close()
        found.append({"context": dict(entry["context"]), "refused": answer})
    return found


def approve(found: PathSet, **engine_options: Any) -> dict[str, Any]:
    """The approved document of a path set: every path replayed, each outcome written down."""
    paths = []
    for path in found:
        engine = make_engine(path, **engine_options)
        try:
            outcomes = list(replay(path.id, path.flow, path.context, list(path.steps), path.scenario,
                                   engine))
        finally:
            engine.store.close()
        paths.append({"id": path.id, "context": dict(path.context), "covers": list(path.covers),
                      "start": outcomes[0], "steps": outcomes[1:]})
    return {
        "format": FORMAT, "flow": found.flow, "version": found.version,
        "approve_with": approve_command(found.source),
        "items": [i.id for i in found.coverage.items if i.id in found.coverage.covered],
        "unreachable": dict(found.coverage.unreachable),
        "refused_starts": refusals(found.source, found.scenario, **engine_options),
        "paths": paths,
    }


def dumps(document: Mapping[str, Any]) -> str:
    """The approved document as its file's text (stable: the same document, the same bytes):
    one line per aspect of each outcome, so a review diff points at the step and the aspect."""
    head = {k: v for k, v in document.items() if k not in ("paths", "items")}
    lines = ["{"] + [f" {_compact(k)}: {_compact(v)}," for k, v in head.items()]
    items = document["items"]
    lines += [' "items": ['] + [f"  {_compact(i)}" + ("," if n < len(items) - 1 else "")
                               for n, i in enumerate(items)] + [" ],", ' "paths": [']
    for p, path in enumerate(document["paths"]):
        lines.append("  {")
        lines += [f"   {_compact(k)}: {_compact(path[k])}," for k in ("id", "context", "covers")]
        lines.append('   "start": ' + _outcome(path["start"], "   ") + ",")
        lines.append('   "steps": [')
        steps = path["steps"]
        lines += ["    " + _outcome(o, "    ") + ("," if n < len(steps) - 1 else "")
                  for n, o in enumerate(steps)]
        lines.append("   ]")
        lines.append("  }" + ("," if p < len(document["paths"]) - 1 else ""))
    lines += [" ]", "}"]
    return "\n".join(lines) + "\n"


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def _outcome(outcome: Mapping[str, Any], indent: str) -> str:
    inner = [f"{indent} {_compact(k)}: {_compact(v)}" for k, v in outcome.items()]
    return "{\n" + ",\n".join(inner) + f"\n{indent}}}"


def load(file: FilePath) -> dict[str, Any]:
    """An approved document from its file."""
    document = json.loads(file.read_text(encoding="utf-8"))
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ValueError(f"{file}: not an approved-paths file of format {FORMAT}")
    return document


def approved_paths(document: Mapping[str, Any], source: FlowSource, scenario: Scenario) -> list[Path]:
    """The approved paths as runnable ``Path`` values (their steps as approved)."""
    return [Path(id=p["id"], flow=document["flow"], context=dict(p["context"]),
                 steps=tuple(Step.from_dict(o["do"]) for o in p["steps"]),
                 covers=tuple(p["covers"]), source=source, scenario=scenario)
            for p in document["paths"]]


def compare(path_id: str, approved: Sequence[Mapping[str, Any]],
            now: Sequence[Mapping[str, Any]]) -> list[Difference]:
    """Where a replay's outcomes differ from the approved ones (the first differing step of a
    path, field by field: what follows a difference only repeats it)."""
    for n, (old, new) in enumerate(zip(approved, now, strict=False)):
        does = _describe(old.get("do"))
        found = [Difference(path_id, n, does, key, old.get(key), new.get(key))
                 for key in dict.fromkeys((*old, *new)) if key != "do" and old.get(key) != new.get(key)]
        if found:
            return found
    if len(approved) != len(now):
        return [Difference(path_id, min(len(approved), len(now)), "", "steps", len(approved) - 1,
                           len(now) - 1)]
    return []


def _describe(do: Mapping[str, Any] | None) -> str:
    return "start" if do is None else Step.from_dict(do).describe()


def check(document: Mapping[str, Any], source: FlowSource, scenario: Scenario,
          **engine_options: Any) -> list[str]:
    """Replay an approved document; the problems found, as lines (none: behaviour unchanged).

    Each path is replayed on a fresh engine and compared step by step; the definition's
    coverage items are compared with the approved ones, both ways."""
    problems: list[str] = []
    definition = source.library().latest(source.name)
    current = {i.id for i in items_of(definition)} - set(scenario.unreachable)
    approved_items = set(document["items"])
    new = sorted(current - approved_items)
    gone = sorted(approved_items - {i.id for i in items_of(definition)})
    if new:
        problems.append(f"{source.name}: the definition has items no approved path reaches: {', '.join(new)}")
    if gone:
        problems.append(f"{source.name}: approved items the definition no longer has: {', '.join(gone)}")
    approved_refusals = document.get("refused_starts", [])
    for was, now in zip(approved_refusals, refusals(source, scenario, **engine_options), strict=False):
        if was != now:
            problems.append(f"{source.name}: start with {was['context']}: refused: approved "
                            f"{was['refused']!r}, now {now['refused']!r}")
    if len(approved_refusals) != len(scenario.refused_starts):
        problems.append(f"{source.name}: the scenario has {len(scenario.refused_starts)} refused starts, "
                        f"the approved file {len(approved_refusals)}")
    for path, raw in zip(approved_paths(document, source, scenario), document["paths"], strict=True):
        outcomes: list[dict[str, Any]] = []
        engine = make_engine(path, **engine_options)
        try:
            outcomes += replay(path.id, path.flow, path.context, list(path.steps), scenario, engine)
        except Exception as exc:  # an invariant broken, a step that cannot run: a difference
            step = len(outcomes)
            where = "start" if step == 0 else f"step {step} ({path.steps[step - 1].describe()})"
            kind = "invariant" if type(exc).__name__ == "InvariantViolation" else type(exc).__name__
            problems.append(f"{path.id} {where}: {kind}: {str(exc).splitlines()[0] if str(exc) else ''}")
            continue
        finally:
            engine.store.close()
        problems += [d.line() for d in compare(path.id, [raw["start"], *raw["steps"]], outcomes)]
    return problems


# ---- under pytest ------------------------------------------------------------------------------

@attrs.frozen
class ApprovedPath:
    """A path of an approved file with its approved outcomes (the start's, then each step's)."""

    path: Path
    outcomes: tuple[Mapping[str, Any], ...]

    @property
    def id(self) -> str:
        """The path's id (``registration-03``)."""
        return self.path.id


def approved_of(flow: Any, scenario: Any = None, *, registry: Any = None,
                approved: FilePath | str | None = None) -> list[ApprovedPath]:
    """The approved paths of a flow (a built-in name, or a definition file with its scenario),
    read from its approved file (``approved``, else where ``approved_file`` says)."""
    from regflow.testing.scenario import load_scenario

    if scenario is None:
        loaded = builtin_scenario_of(flow)
    else:
        loaded = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    source = flow_source(flow if isinstance(flow, str) and flow in BUILTIN_FLOWS else FilePath(flow),
                         registry if registry is not None else loaded.load_registry())
    file = approved_file(source, FilePath(approved) if approved is not None else None)
    document = load(file)
    return [ApprovedPath(path, (raw["start"], *raw["steps"]))
            for path, raw in zip(approved_paths(document, source, loaded), document["paths"], strict=True)]


def builtin_scenario_of(flow: Any) -> Scenario:
    """The built-in scenario of a built-in flow's name."""
    from regflow.testing.scenario import ScenarioError, builtin_scenario

    if not (isinstance(flow, str) and flow in BUILTIN_FLOWS):
        raise ScenarioError(["a flow that is not built in needs its scenario"])
    return builtin_scenario(flow)


def check_path(engine: Engine, approved: ApprovedPath) -> None:
    """Replay an approved path on a fresh ``engine`` (from ``make_engine`` or the plugin's
    ``regflow_engine``); ``PathFailed`` listing what differs from the approved outcomes."""
    from regflow.testing.runner import PathFailed

    path = approved.path
    outcomes = list(replay(path.id, path.flow, path.context, list(path.steps), path.scenario, engine))
    found = compare(path.id, approved.outcomes, outcomes)
    if found:
        lines = "\n".join(f"  {d.line()}" for d in found)
        raise PathFailed(f"{path.id} differs from its approved outcome:\n{lines}\n"
                         f"If intended, re-approve: {approve_command(path.source)}")
