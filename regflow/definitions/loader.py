"""Loading definitions: structured by cattrs from dicts, TOML, YAML or JSON, then checked.

A definition is checked when it is loaded — its shape by cattrs, its cross-references (states,
guards, actions, validators, fields, settings, migrations) here — and every fault is reported
with its path, e.g. ``registration.states.details.on.submit[0]: unknown guard 'contract_match'``.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import cattrs
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError, IterableValidationError
from cattrs.gen import make_dict_structure_fn

from regflow.definitions.model import (
    ARM_MODES,
    FIELD_TYPES,
    FINAL_STATUSES,
    STANDARD_FINALS,
    ActionDef,
    FieldDef,
    FlowDefinition,
    MigrationDef,
    Names,
    RetryPolicy,
    ScreenDef,
    Setting,
    StateDef,
    TimerDef,
    TimerMigrationDef,
    TransitionDef,
    parse_duration,
    rule_faults,
)
from regflow.ground.exceptions import DefinitionError

# ---- structuring ---------------------------------------------------------------------------

def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)

    def strings(value: Any, _: Any) -> tuple[str, ...]:
        if isinstance(value, str):
            return (value,)
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise TypeError("expected a name or a list of names")

    def transitions(value: Any, _: Any) -> tuple[TransitionDef, ...]:
        items = value if isinstance(value, list | tuple) else [value]
        out = []
        for item in items:
            out.append(TransitionDef(target=item) if isinstance(item, str)
                       else conv.structure(item, TransitionDef))
        return tuple(out)

    def action(value: Any, _: Any) -> ActionDef:
        if isinstance(value, str):
            return ActionDef(event=value)
        if not isinstance(value, Mapping):
            raise TypeError("an action is an event name or a table with 'event'")
        extra = set(value) - {f.name for f in attrs.fields(ActionDef)}
        if extra:
            raise ForbiddenExtraKeysError("", ActionDef, extra)
        return conv.structure_attrs_fromdict(dict(value), ActionDef)

    def setting(value: Any, _: Any) -> Setting:
        if not isinstance(value, bool | int | float | str):
            raise TypeError("a setting is a string, number or boolean")
        return value

    def strict(kind: type, accepts: tuple[type, ...]) -> None:
        def check(value: Any, _: Any) -> Any:
            if isinstance(value, bool) and kind is not bool:
                raise TypeError(f"expected {kind.__name__}, not a boolean")
            if not isinstance(value, accepts):
                raise TypeError(f"expected {kind.__name__}, not {type(value).__name__}")
            return kind(value)

        conv.register_structure_hook(kind, check)

    strict(bool, (bool,))
    strict(int, (int,))
    strict(float, (int, float))
    strict(str, (str,))
    conv.register_structure_hook_func(lambda t: t == tuple[str, ...], strings)
    conv.register_structure_hook_func(lambda t: t == tuple[TransitionDef, ...], transitions)
    conv.register_structure_hook_func(lambda t: t is ActionDef, action)
    conv.register_structure_hook_func(lambda t: t == Setting, setting)
    conv.register_structure_hook_func(lambda t: t is TimerDef, lambda v, _: _timer(conv, v))
    timers_table = make_dict_structure_fn(TimerMigrationDef, conv, _cattrs_forbid_extra_keys=True,
                                          _cattrs_detailed_validation=True)

    def timer_migration(value: Any, _: Any) -> TimerMigrationDef:
        if isinstance(value, str):  # ``timers.provisioning = "restart"``
            return TimerMigrationDef(arm=value)
        if not isinstance(value, Mapping):
            raise TypeError("'carry', 'restart' or a table with 'arm' and 'events'")
        return timers_table(dict(value), TimerMigrationDef)

    conv.register_structure_hook_func(lambda t: t is TimerMigrationDef, timer_migration)
    return conv


def _timer(conv: cattrs.Converter, value: Any) -> TimerDef:
    if not isinstance(value, Mapping):
        raise TypeError("a timer is a table with 'after' and 'event'")
    extra = set(value) - {"after", "event"}
    if extra:
        raise ForbiddenExtraKeysError("", TimerDef, extra)
    missing = [k for k in ("after", "event") if k not in value]
    if missing:
        raise ValueError(f"required field {missing[0]!r} missing")
    after = value["after"]
    if isinstance(after, bool) or not isinstance(after, int | str):
        raise TypeError("'after' is a duration such as '30m' or a number of seconds")
    return TimerDef(after=str(after), event=str(value["event"]))


for _cls in (FieldDef, ActionDef, ScreenDef, TransitionDef, TimerDef, StateDef, RetryPolicy,
             TimerMigrationDef, MigrationDef, FlowDefinition):
    attrs.resolve_types(_cls)
_CONVERTER = _make_converter()


def _format(exc: BaseException, type_: type | None) -> str:
    if isinstance(exc, KeyError):
        return "required field missing"
    if isinstance(exc, ForbiddenExtraKeysError):
        return f"unknown field(s) {', '.join(repr(k) for k in sorted(exc.extra_fields))}"
    if isinstance(exc, TypeError | ValueError) and exc.args and isinstance(exc.args[0], str):
        name = getattr(type_, "__name__", None)
        text = exc.args[0]
        if name and ("not iterable" in text or "argument must be" in text or "invalid literal" in text):
            return f"expected {name}"
        return text
    return cattrs.v.format_exception(exc, type_)


_KEY = re.compile(r"\[(['\"])(.*?)\1\]")


def _paths(lines: list[str]) -> list[str]:
    """cattrs says ``problem @ root.states['a'].on``; we say ``root.states.a.on: problem``."""
    out = []
    for line in lines:
        problem, _, where = line.rpartition(" @ ")
        where = _KEY.sub(lambda m: "." + m.group(2), where)
        out.append(f"{where}: {problem}" if problem else line)
    return out


def structure(raw: Mapping[str, Any], root: str) -> FlowDefinition:
    """Structure a mapping into a definition, or raise DefinitionError with paths under ``root``."""
    if not isinstance(raw, Mapping):
        raise DefinitionError([f"{root}: a definition is a table (mapping), not {type(raw).__name__}"])
    try:
        return _CONVERTER.structure(dict(raw), FlowDefinition)
    except (ClassValidationError, IterableValidationError) as exc:
        raise DefinitionError(_paths(cattrs.transform_error(exc, root, _format))) from None


# ---- cross-references ----------------------------------------------------------------------

def check_references(defn: FlowDefinition, names: Names, root: str) -> list[str]:
    """Every fault of cross-reference, with its path."""
    faults: list[str] = []
    states = defn.states
    if defn.version < 1:
        faults.append(f"{root}.version: must be 1 or more")
    if defn.initial not in states:
        faults.append(f"{root}.initial: unknown state {defn.initial!r}")
    if defn.auth not in ("none", "session", "admin"):
        faults.append(f"{root}.auth: 'none', 'session' or 'admin', not {defn.auth!r}")
    faults += _duration_fault(defn, defn.expiry, f"{root}.expiry")
    for old, migration in defn.migrations.items():
        if not old.isdigit() or int(old) >= defn.version:
            faults.append(f"{root}.migrations.{old}: migrations come from an older version number")
        faults += [f"{root}.migrations.{old}.states.{src}: unknown state {dst!r}"
                   for src, dst in migration.states.items() if dst not in states]
        faults += _timer_migration_faults(defn, migration, f"{root}.migrations.{old}")
    for key, allowed in defn.choices.items():
        if key not in defn.settings:
            faults.append(f"{root}.choices.{key}: unknown setting {key!r}")
        elif defn.settings[key] not in allowed:
            faults.append(f"{root}.settings.{key}: one of {', '.join(allowed)}")
    faults += rule_faults(defn, root)
    for name, f in defn.fields.items():
        if f.type not in FIELD_TYPES:
            faults.append(f"{root}.fields.{name}.type: unknown field type {f.type!r}")
        faults += [f"{root}.fields.{name}.validate: unknown validator {v!r}"
                   for v in f.validate if v not in names.validators]
    for pname, policy in defn.retry.items():
        if policy.attempts < 1 or policy.initial < 0 or policy.factor < 1 or policy.max < 0:
            faults.append(f"{root}.retry.{pname}: attempts >= 1, initial >= 0, factor >= 1, max >= 0")
        if policy.jitter not in ("full", "none"):
            faults.append(f"{root}.retry.{pname}.jitter: 'full' or 'none', not {policy.jitter!r}")
    for sname, state in states.items():
        here = f"{root}.states.{sname}"
        if state.status is not None and state.status not in FINAL_STATUSES:
            faults.append(f"{here}.status: one of {', '.join(FINAL_STATUSES)}")
        if state.status is not None and not state.final:
            faults.append(f"{here}.status: only final states have a status")
        faults += [f"{here}.enter: unknown action {a!r}" for a in state.enter if a not in names.actions]
        for i, timer in enumerate(state.after):
            faults += _duration_fault(defn, timer.after, f"{here}.after[{i}].after")
            if timer.event not in state.on:
                faults.append(f"{here}.after[{i}].event: no transition for timer event {timer.event!r}")
        if state.screen is not None:
            for fname in state.screen.fields:
                if fname not in defn.fields:
                    faults.append(f"{here}.screen.fields: unknown field {fname!r}")
            for act in state.screen.actions:
                if act.event not in state.on:
                    faults.append(f"{here}.screen.actions: no transition for event {act.event!r}")
                if act.when is not None and act.when not in names.guards:
                    faults.append(f"{here}.screen.actions: unknown guard {act.when!r}")
        for event, branches in state.on.items():
            for i, t in enumerate(branches):
                at = f"{here}.on.{event}" + (f"[{i}]" if len(branches) > 1 else "")
                if t.target is not None and t.target not in states:
                    faults.append(f"{at}: unknown state {t.target!r}")
                faults += [f"{at}: unknown guard {g!r}" for g in (*t.guard, *t.unless)
                           if g not in names.guards]
                faults += [f"{at}: unknown action {a!r}" for a in t.actions if a not in names.actions]
                if t.retry not in defn.retry:
                    faults.append(f"{at}: unknown retry policy {t.retry!r}")
                if t.level not in ("error", "warning", "info"):
                    faults.append(f"{at}.level: 'error', 'warning' or 'info', not {t.level!r}")
    return faults


def _timer_migration_faults(defn: FlowDefinition, migration: MigrationDef, where: str) -> list[str]:
    """What the ``timers`` of a migration name on this version's side: the new state (each
    key is an old state, moving to its ``states`` entry or to the state of the same name), the
    arm mode, and the new timer events ``events`` maps to."""
    faults: list[str] = []
    for src, rule in migration.timers.items():
        here = f"{where}.timers.{src}"
        target = migration.target(src)
        if target not in defn.states:
            if src not in migration.states:  # a mapping to an unknown state is reported above
                faults.append(f"{here}: no state {src!r} in version {defn.version}: map it in "
                              f"{where}.states")
            continue
        if rule.arm not in ARM_MODES:
            faults.append(f"{here}.arm: 'carry' or 'restart', not {rule.arm!r}")
        elif rule.events and rule.arm != "carry":
            faults.append(f"{here}.events: only 'carry' maps old timer events to new ones")
        timers = defn.states[target].timer_events
        faults += [f"{here}.events.{old}: {target!r} has no timer sending {new!r}"
                   for old, new in rule.events.items() if new not in timers]
    return faults


def migration_faults(new: FlowDefinition, old: FlowDefinition, root: str) -> list[str]:
    """What ``new``'s migration from ``old`` gets wrong about ``old`` (both loaded, e.g. while
    a deploy adds a version): old states and timer events it names that ``old`` lacks, old
    states left without a state to move to, and old timers that correspond to no timer of the
    new state while that state has timers of its own no old timer corresponds to (a renamed
    timer: say ``events`` to carry its deadline, or ``arm = "restart"``)."""
    migration = new.migrations.get(str(old.version))
    if migration is None:
        return []
    where, v = f"{root}.migrations.{old.version}", f"version {old.version}"
    faults = [f"{where}.{part}.{src}: {v} has no state {src!r}"
              for part, names in (("states", migration.states), ("timers", migration.timers))
              for src in names if src not in old.states]
    for sname, state in old.states.items():
        target = migration.target(sname)
        if target not in new.states:
            if sname not in migration.states:  # a mapping to an unknown state is reported on load
                faults.append(f"{where}.states: {v}'s state {sname!r} has no state to move to: "
                              f"map it to one of version {new.version}")
            continue
        rule = migration.timers_of(sname)
        faults += [f"{where}.timers.{sname}.events.{event}: {v}'s {sname!r} has no timer "
                   f"sending {event!r}" for event in rule.events if event not in state.timer_events]
        if rule.arm != "carry":
            continue
        armed = new.states[target].timer_events
        lost = [t.event for t in state.after if rule.events.get(t.event, t.event) not in armed]
        carried = {rule.events.get(t.event, t.event) for t in state.after}
        fresh = [t.event for t in new.states[target].after if t.event not in carried]
        if lost and fresh:
            faults.append(
                f"{where}.timers.{sname}: {v}'s timer {lost[0]!r} corresponds to no timer of "
                f"{target!r}, which has {', '.join(repr(e) for e in fresh)}: carry its deadline "
                f'with events = {{ {lost[0]} = "{fresh[0]}" }}, or arm them anew with '
                f'arm = "restart"')
    return faults


def _duration_fault(defn: FlowDefinition, text: str, where: str) -> list[str]:
    if text.startswith("@"):
        if text[1:] not in defn.settings:
            return [f"{where}: unknown setting {text[1:]!r}"]
        text = str(defn.settings[text[1:]])
    try:
        parse_duration(text)
    except ValueError as exc:
        return [f"{where}: {exc}"]
    return []


def with_standard_finals(defn: FlowDefinition) -> FlowDefinition:
    """Every flow has the final states cancelled, expired and failed; add those not declared."""
    states = dict(defn.states)
    for name, status in STANDARD_FINALS.items():
        states.setdefault(name, StateDef(final=True, status=status))
    return attrs.evolve(defn, states=states)


# ---- sources -------------------------------------------------------------------------------

def _yaml_loads(text: str) -> Any:
    """YAML with 1.2 booleans: ``on``/``off``/``yes``/``no`` stay strings (``on:`` is a state's
    events). PyYAML is loaded on the first YAML file only."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
        list("tTfF"))
    try:
        return yaml.load(text, Loader=Loader)
    except yaml.YAMLError as exc:
        raise ValueError(str(exc)) from None


def read_source(path: str | Path) -> dict[str, Any]:
    """A definition file's table: ``.toml``, ``.yaml`` / ``.yml`` or ``.json``."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".toml":
            data: Any = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            data = _yaml_loads(text)
        elif path.suffix == ".json":
            import json

            data = json.loads(text)
        else:
            raise DefinitionError([f"{path}: unknown definition format {path.suffix!r}"])
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        if isinstance(exc, DefinitionError):
            raise
        raise DefinitionError([f"{path}: cannot parse: {exc}"]) from None
    if not isinstance(data, dict):
        raise DefinitionError([f"{path}: a definition is a table (mapping)"])
    return data


def load(source: Mapping[str, Any] | str | Path, names: Names,
         root: str | None = None) -> FlowDefinition:
    """Load and check a definition from a mapping or a file; raise DefinitionError with paths."""
    raw = read_source(source) if isinstance(source, str | Path) else dict(source)
    where = root or str(raw.get("name") or (source if isinstance(source, str | Path) else "flow"))
    defn = structure(raw, where)
    faults = check_references(with_standard_finals(defn), names, where)
    if faults:
        raise DefinitionError(faults)
    return with_standard_finals(defn)

