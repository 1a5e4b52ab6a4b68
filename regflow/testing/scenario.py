"""Scenarios: the world a flow's paths run in, and **witnesses** — inputs that make a guard true
or false. A scenario is data (a TOML / YAML / JSON file, or a dict), so it can be printed.

A witness is a hint, not a promise: the generator tries it wherever its guard is asked (or
where ``at`` says), alone and paired with another witness, and keeps what the engine really
did. A witness has ``data`` (merged over the base data of the event), ``before`` (steps first:
``{"advance": 60}``, ``{"event": "submit", "data": {...}}`` or a world operation), ``meanwhile``
(a world operation that lands while the event is applied, just before the guard is asked — a
race) or ``context`` (start the flow with another context). ``keep = true`` keeps the path the
witness makes even when it reaches nothing new: a boundary (a count, a duration, a rule such as
"the first registrant becomes admin") whose outcome the approved paths must show. A transition
without a guard takes witnesses under its name, ``state.event``. Data values
may be the placeholders ``$code`` (the code in the newest mail), ``$wrong_code``,
``$login:EMAIL`` (that login's id) and ``$data:KEY`` (the flow's data).
"""

from __future__ import annotations

import importlib
import importlib.util
import pathlib
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import attrs

from regflow.definitions.loader import read_source
from regflow.definitions.model import FlowDefinition
from regflow.definitions.registry import Registry
from regflow.ground.exceptions import DefinitionError, RegflowError
from regflow.testing.model import Step, guards_at, items_of
from regflow.testing.world import op_faults

DEFAULT_START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
_TOP = {"flow", "registry", "description", "start", "context", "session", "settings", "world", "data",
        "witnesses", "unreachable", "equivalent", "refused_starts"}
_WITNESS = {"data", "before", "meanwhile", "context", "at", "note", "keep"}


class ScenarioError(RegflowError):
    """A scenario is malformed or does not fit its definition; ``faults`` lists each problem."""

    message_id = "scenario_invalid"

    def __init__(self, faults: list[str]) -> None:
        self.faults = faults
        super().__init__("\n".join(faults))


@attrs.frozen
class Witness:
    """How to make ``guard`` come out ``outcome``."""

    guard: str
    outcome: bool
    index: int = 0
    data: dict[str, Any] = attrs.field(factory=dict)
    before: tuple[Step, ...] = ()
    meanwhile: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    at: str | None = None
    note: str = ""
    keep: bool = False  # always keep its path: a boundary the approved paths must show

    @property
    def label(self) -> str:
        """``guard=true`` (``#n`` for the n-th alternative)."""
        side = "true" if self.outcome else "false"
        return f"{self.guard}={side}" + (f"#{self.index}" if self.index else "")

    def applies(self, state: str, event: str) -> bool:
        """Whether the witness is tried at this state and event (``at`` = state or state.event)."""
        return self.context is None and self.at in (None, state, f"{state}.{event}")

    def to_dict(self) -> dict[str, Any]:
        """The witness as written (without defaults)."""
        out: dict[str, Any] = {"data": self.data, "before": [s.to_dict() for s in self.before],
                               "meanwhile": self.meanwhile, "context": self.context, "at": self.at,
                               "note": self.note, "keep": self.keep}
        return {k: v for k, v in out.items() if v}


@attrs.frozen
class Scenario:
    """A flow's world, base data per event, witnesses per guard, and declared unreachable items."""

    flow: str | None = None
    registry: str | None = None
    description: str = ""
    start: datetime = DEFAULT_START
    context: dict[str, Any] = attrs.field(factory=dict)
    session: str | None = None
    settings: dict[str, Any] = attrs.field(factory=dict)
    contracts: tuple[dict[str, Any], ...] = ()
    logins: tuple[dict[str, Any], ...] = ()
    data: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    witnesses: tuple[Witness, ...] = ()
    unreachable: dict[str, str] = attrs.field(factory=dict)
    equivalent: dict[str, str] = attrs.field(factory=dict)  # mutant id -> why it behaves the same
    refused_starts: tuple[dict[str, Any], ...] = ()  # contexts whose start must be refused
    base: pathlib.Path | None = attrs.field(default=None, eq=False)

    def data_for(self, state: str, event: str) -> dict[str, Any]:
        """The base data of an event: ``state.event``, else ``*.event``, else nothing."""
        return dict(self.data.get(f"{state}.{event}", self.data.get(f"*.{event}", {})))

    def witnesses_at(self, defn: FlowDefinition, state: str, event: str) -> list[Witness]:
        """The witnesses tried at a state and event: those of the guards asked there."""
        asked = {*guards_at(defn, state, event), f"{state}.{event}"}
        return [w for w in self.witnesses if w.guard in asked and w.applies(state, event)]

    def contexts(self) -> list[dict[str, Any]]:
        """The start contexts: the scenario's, then each context witness's."""
        return [self.context] + [w.context for w in self.witnesses if w.context is not None]

    def definition_file(self) -> pathlib.Path | None:
        """The definition file ``flow`` names (relative to the scenario), if it names a file."""
        if self.flow is None or not pathlib.PurePath(self.flow).suffix:
            return None
        return (self.base or pathlib.Path.cwd()) / self.flow

    def load_registry(self) -> Registry | None:
        """The ``module:attr`` registry named by the scenario (a module next to the scenario
        file is found without being on ``sys.path``)."""
        return load_registry(self.registry, self.base) if self.registry else None

    def to_dict(self) -> dict[str, Any]:
        """The scenario as data (what ``regflow paths`` prints)."""
        witnesses: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for w in self.witnesses:
            side = witnesses.setdefault(w.guard, {}).setdefault("true" if w.outcome else "false", [])
            side.append(w.to_dict())
        return {"flow": self.flow, "description": self.description,
                "start": self.start.isoformat().replace("+00:00", "Z"), "context": self.context,
                "session": self.session, "settings": self.settings,
                "world": {"contracts": list(self.contracts), "logins": list(self.logins)},
                "data": self.data, "witnesses": witnesses, "unreachable": self.unreachable}

    def check(self, defn: FlowDefinition) -> None:
        """Raise ScenarioError unless every name in the scenario exists in the definition."""
        faults: list[str] = []
        guards = {g for s in defn.states for e in defn.states[s].on for g in guards_at(defn, s, e)}
        guards |= {f"{s}.{e}" for s in defn.states for e in defn.states[s].on}  # transitions
        for w in self.witnesses:
            if w.guard not in guards:
                faults.append(f"scenario.witnesses.{w.guard}: the flow asks no guard {w.guard!r} "
                              "and has no transition of that name")
            if w.at is not None and w.at.split(".")[0] not in defn.states:
                faults.append(f"scenario.witnesses.{w.guard}: 'at' names no state: {w.at!r}")
        for key in self.data:
            state, _, event = key.partition(".")
            known = (any(event in s.on for s in defn.states.values()) if state == "*"
                     else state in defn.states and event in defn.states[state].on)
            if not known:
                faults.append(f"scenario.data: {key!r} is no state.event of {defn.name}")
        ids = [i.id for i in items_of(defn)]
        faults += [f"scenario.unreachable: {k!r} is no coverage item of {defn.name}{_renamed(k, ids)}"
                   for k in self.unreachable if k not in ids]
        if faults:
            raise ScenarioError(faults)


def _renamed(key: str, ids: list[str]) -> str:
    """A hint for an item named as before guard outcomes were per branch and the inactivity
    expiry per state: the items it became."""
    head, sep, tail = key.partition("?")
    if sep and "[" not in head:
        found = [i for i in ids if i.startswith(f"{head}[") and i.endswith(f"?{tail}")]
    elif key.startswith("expiry@"):
        found = [i for i in ids if i.endswith(f".{key}")]
    else:
        return ""
    return f" (now one per branch or state: {', '.join(repr(i) for i in found)})" if found else ""


def load_registry(spec: str, *folders: pathlib.Path | None) -> Registry:
    """A Registry from ``module:attr``: the module's file in the first of ``folders`` that has
    it, else the module as imported from ``sys.path``."""
    module_name, _, attr = spec.partition(":")
    candidate = next((f / f"{module_name}.py" for f in folders if f is not None
                      and (f / f"{module_name}.py").is_file()), None)
    if candidate is not None and module_name not in sys.modules:
        loader = importlib.util.spec_from_file_location(module_name, candidate)
        assert loader is not None
        assert loader.loader is not None
        module = importlib.util.module_from_spec(loader)
        sys.modules[module_name] = module
        loader.loader.exec_module(module)
    else:
        module = importlib.import_module(module_name)
    found = getattr(module, attr or "registry", None)
    if not isinstance(found, Registry):
        raise ScenarioError([f"scenario.registry: {spec!r} is not a regflow.Registry"])
    return found


def load_scenario(source: Mapping[str, Any] | str | pathlib.Path) -> Scenario:
    """A scenario from a dict or a ``.toml`` / ``.yaml`` / ``.json`` file; ScenarioError with
    the path of every fault."""
    base = None
    if isinstance(source, str | pathlib.Path):
        path = pathlib.Path(source)
        try:
            raw: Mapping[str, Any] = read_source(path)
        except (DefinitionError, OSError) as exc:
            raise ScenarioError([f"{path}: {exc}"]) from None
        base = path.resolve().parent
    else:
        raw = source
    faults: list[str] = [f"scenario: unknown key {k!r}" for k in sorted(set(raw) - _TOP)]
    world = raw.get("world") or {}
    if not isinstance(world, Mapping) or set(world) - {"contracts", "logins"}:
        faults.append("scenario.world: a table with 'contracts' and 'logins'")
        world = {}
    contracts, logins = _rows(world, "contracts", faults), _rows(world, "logins", faults)
    data = raw.get("data") or {}
    if not isinstance(data, Mapping) or not all(isinstance(v, Mapping) for v in data.values()):
        faults.append("scenario.data: a table of 'state.event' = {field = value}")
        data = {}
    witnesses = _witnesses(raw.get("witnesses") or {}, faults)
    scenario = Scenario(
        flow=_text(raw, "flow", faults), registry=_text(raw, "registry", faults),
        description=str(raw.get("description", "")), start=_instant(raw.get("start"), faults),
        context=_table(raw, "context", faults), session=_text(raw, "session", faults),
        settings=_table(raw, "settings", faults), contracts=tuple(contracts), logins=tuple(logins),
        data={str(k): dict(v) for k, v in data.items()}, witnesses=tuple(witnesses),
        unreachable={str(k): str(v) for k, v in _table(raw, "unreachable", faults).items()},
        equivalent=_reasons(raw, "equivalent", faults), base=base,
        refused_starts=tuple(_refused_starts(raw.get("refused_starts") or [], faults)))
    if faults:
        raise ScenarioError(faults)
    return scenario


def _refused_starts(raw: object, faults: list[str]) -> list[dict[str, Any]]:
    """``refused_starts``: a list of ``{context = {...}, note = "..."}``, each a start the flow must
    refuse (the approved paths keep the message id it is refused with)."""
    if not isinstance(raw, list) or not all(isinstance(r, Mapping) and isinstance(r.get("context"), Mapping)
                                            and set(r) <= {"context", "note"} for r in raw):
        faults.append("scenario.refused_starts: a list of {context = {...}, note = \"...\"}")
        return []
    return [{"context": dict(r["context"]), "note": str(r.get("note", ""))} for r in raw]


def builtin_scenario(flow: str) -> Scenario:
    """The scenario shipped for a built-in flow (``regflow/testing/scenarios/<flow>.py``)."""
    try:
        module = importlib.import_module(f"regflow.testing.scenarios.{flow}")
    except ModuleNotFoundError:
        raise ScenarioError([f"no built-in scenario for {flow!r}: give one with --scenario"]) from None
    return load_scenario(module.SCENARIO)


def _reasons(raw: Mapping[str, Any], key: str, faults: list[str]) -> dict[str, str]:
    """A table of id = reason (``equivalent``: mutants of ``regflow mutate`` that behave the
    same as the flow); a reason must be given."""
    table = _table(raw, key, faults)
    faults += [f"scenario.{key}.{k}: give the reason" for k, v in table.items()
               if not isinstance(v, str) or not v.strip()]
    return {str(k): str(v) for k, v in table.items()}


def _text(raw: Mapping[str, Any], key: str, faults: list[str]) -> str | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, str):
        faults.append(f"scenario.{key}: expected text")
        return None
    return value


def _table(raw: Mapping[str, Any], key: str, faults: list[str]) -> dict[str, Any]:
    value = raw.get(key) or {}
    if not isinstance(value, Mapping):
        faults.append(f"scenario.{key}: expected a table")
        return {}
    return dict(value)


def _rows(world: Mapping[str, Any], key: str, faults: list[str]) -> list[dict[str, Any]]:
    rows = world.get(key) or []
    if not isinstance(rows, list) or not all(isinstance(r, Mapping) for r in rows):
        faults.append(f"scenario.world.{key}: expected a list of tables")
        return []
    op = "add_contract" if key == "contracts" else "add_login"
    for i, row in enumerate(rows):
        faults += op_faults({"world": op, **row}, f"scenario.world.{key}[{i}]")
    return [dict(r) for r in rows]


def _instant(value: object, faults: list[str]) -> datetime:
    if value is None:
        return DEFAULT_START
    try:
        instant = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        faults.append(f"scenario.start: not an ISO 8601 instant: {value!r}")
        return DEFAULT_START
    return instant.replace(tzinfo=UTC) if instant.tzinfo is None else instant.astimezone(UTC)


def _witnesses(raw: object, faults: list[str]) -> list[Witness]:
    if not isinstance(raw, Mapping):
        faults.append("scenario.witnesses: a table of guard = {true = [...], false = [...]}")
        return []
    out: list[Witness] = []
    for guard, sides in raw.items():
        if not isinstance(sides, Mapping):
            faults.append(f"scenario.witnesses.{guard}: a table with 'true' and/or 'false'")
            continue
        for side, entries in sides.items():
            outcome = {"true": True, "false": False}.get(str(side).lower())
            where = f"scenario.witnesses.{guard}.{str(side).lower()}"
            if outcome is None:
                faults.append(f"scenario.witnesses.{guard}: 'true' or 'false', not {side!r}")
                continue
            listed = entries if isinstance(entries, list) else [entries]
            for n, entry in enumerate(listed):
                witness = _witness(str(guard), outcome, n, entry, f"{where}[{n}]", faults)
                if witness is not None:
                    out.append(witness)
    return out


def _witness(guard: str, outcome: bool, n: int, entry: object, where: str,
             faults: list[str]) -> Witness | None:
    if not isinstance(entry, Mapping):
        faults.append(f"{where}: a table with data, before, meanwhile, context or at")
        return None
    found = [f"{where}: unknown key {k!r}" for k in sorted(set(entry) - _WITNESS)]
    before = entry.get("before") or []
    if not isinstance(before, list) or not all(isinstance(s, Mapping) for s in before):
        found.append(f"{where}.before: a list of steps")
        before = []
    for i, step in enumerate(before):
        if "world" in step:
            found += op_faults(step, f"{where}.before[{i}]")
        elif set(step) != {"advance"} and not ("event" in step and set(step) <= {"event", "data"}):
            found.append(f"{where}.before[{i}]: {{advance = seconds}}, {{event = name, data = {{...}}}} "
                         "or {world = operation, ...}")
    meanwhile = entry.get("meanwhile")
    if meanwhile is not None:
        found += op_faults(meanwhile, f"{where}.meanwhile", in_step=False) if isinstance(meanwhile, Mapping) \
            else [f"{where}.meanwhile: a world operation"]
    for key in ("data", "context"):
        if entry.get(key) is not None and not isinstance(entry[key], Mapping):
            found.append(f"{where}.{key}: expected a table")
    if entry.get("context") is not None and set(entry) & {"data", "before", "meanwhile"}:
        found.append(f"{where}: a context witness starts another flow; it takes no data or steps")
    faults += found
    if found:
        return None
    return Witness(
        guard=guard, outcome=outcome, index=n, data=dict(entry.get("data") or {}),
        before=tuple(Step.from_dict(s) for s in before),
        meanwhile={"guard": guard, **meanwhile} if isinstance(meanwhile, Mapping) else None,
        context=dict(entry["context"]) if entry.get("context") is not None else None,
        at=str(entry["at"]) if entry.get("at") is not None else None, note=str(entry.get("note", "")),
        keep=bool(entry.get("keep", False)))
