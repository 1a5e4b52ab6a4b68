"""Flow definitions as data: attrs classes, structured by cattrs from dicts, TOML or YAML.

A definition is checked when it is loaded — its shape by cattrs, its cross-references (states,
guards, actions, validators, fields, settings) here — and every fault is reported with its path,
e.g. ``registration.states.details.on.submit[0]: unknown guard 'contract_match'``.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import attrs
import cattrs
import yaml
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError, IterableValidationError

from regflow.exceptions import DefinitionError

FINAL_STATUSES = ("completed", "cancelled", "expired", "failed")
FIELD_TYPES = ("text", "email", "password", "code", "tel", "customer_id", "boolean")
STANDARD_FINALS = {"cancelled": "cancelled", "expired": "expired", "failed": "failed"}
Setting = bool | int | float | str


@attrs.frozen
class FieldDef:
    """An input of the flow; screens name the fields they show."""

    type: str = "text"
    required: bool = True
    label: str | None = None  # catalog key; default "field.<name>.label"
    validate: tuple[str, ...] = ()  # named validators, in order
    constraints: dict[str, Any] = attrs.field(factory=dict)
    autocomplete: str | None = None
    secret: bool | None = None  # never echoed back; default: type == "password"

    @property
    def is_secret(self) -> bool:
        """Whether the value must never be shown again or stored in the form."""
        return self.secret if self.secret is not None else self.type in ("password", "code")


@attrs.frozen
class ActionDef:
    """A button or link of a screen; ``validate`` says whether the screen's fields are checked."""

    event: str
    label: str | None = None
    validate: bool | None = None
    when: str | None = None  # a guard: the action is offered (and taken) only while it holds

    @property
    def validates(self) -> bool:
        """Submitting validates the fields by default; other events do not."""
        return self.validate if self.validate is not None else self.event == "submit"


@attrs.frozen
class ScreenDef:
    """What a state shows: a title, a text, fields and actions (messages come at run time)."""

    title: str | None = None
    text: str | None = None
    fields: tuple[str, ...] = ()
    actions: tuple[ActionDef, ...] = ()


@attrs.frozen
class TransitionDef:
    """One branch of an event: taken when all ``guard`` hold and no ``unless`` holds.

    ``target`` None stays in the state without re-entering it (timers keep running); naming the
    state itself re-enters it (its timers start again).
    """

    target: str | None = None
    guard: tuple[str, ...] = ()
    unless: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()
    message: str | None = None
    level: str = "error"
    retry: str = "default"

    @property
    def guarded(self) -> bool:
        """Whether the branch has a condition."""
        return bool(self.guard or self.unless)


@attrs.frozen
class TimerDef:
    """After ``after`` in the state (``"30m"``, ``"60s"``, seconds or ``"@setting"``), send ``event``."""

    after: str
    event: str


@attrs.frozen
class StateDef:
    """A state: its screen, the events it takes, its timers and what runs on entry."""

    screen: ScreenDef | None = None
    on: dict[str, tuple[TransitionDef, ...]] = attrs.field(factory=dict)
    after: tuple[TimerDef, ...] = ()
    enter: tuple[str, ...] = ()
    final: bool = False
    status: str | None = None  # for final states; default "completed"

    @property
    def timer_events(self) -> frozenset[str]:
        """Events only the state's timers may send."""
        return frozenset(t.event for t in self.after)

    @property
    def user_events(self) -> tuple[str, ...]:
        """Events a person (or front end) may send in this state."""
        return tuple(e for e in self.on if e not in self.timer_events)


@attrs.frozen
class RetryPolicy:
    """How adapter calls that raise TransientError are retried (SPEC 2.1 defaults)."""

    attempts: int = 3
    initial: float = 0.2
    factor: float = 2.0
    max: float = 2.0
    jitter: str = "full"


@attrs.frozen
class MigrationDef:
    """How flows of an older version move to this one: old state → new state (unlisted states
    keep their name, which must exist here)."""

    states: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen
class FlowDefinition:
    """A whole flow, as loaded and checked."""

    name: str
    version: int
    initial: str
    states: dict[str, StateDef]
    context: tuple[str, ...] = ()
    fields: dict[str, FieldDef] = attrs.field(factory=dict)
    settings: dict[str, Setting] = attrs.field(factory=dict)
    retry: dict[str, RetryPolicy] = attrs.field(factory=lambda: {"default": RetryPolicy()})
    expiry: str = "60m"
    texts: dict[str, dict[str, str]] = attrs.field(factory=dict)
    description: str = ""
    auth: str = "none"  # none | session (a signed-in login) | admin (the customer's admin)
    choices: dict[str, tuple[str, ...]] = attrs.field(factory=dict)  # allowed setting values
    migrations: dict[str, MigrationDef] = attrs.field(factory=dict)  # from version "N"
    security: bool | None = None  # log every step to regflow.security; default: flows with auth

    @property
    def security_log(self) -> bool:
        """Whether every step of this flow goes to the security log."""
        return self.security if self.security is not None else self.auth != "none"

    def seconds(self, duration: str) -> int:
        """A duration of this definition in seconds, with ``@name`` read from the settings."""
        if duration.startswith("@"):
            duration = str(self.settings[duration[1:]])
        return parse_duration(duration)

    def with_settings(self, overrides: Mapping[str, Setting]) -> FlowDefinition:
        """The same definition with some settings replaced (e.g. ``existing_email``); each new
        value must have the shape of the default (see ``setting_faults``)."""
        faults = [f"{self.name}.settings: unknown setting {k!r}"
                  for k in sorted(set(overrides) - set(self.settings))]
        for key, value in overrides.items():
            if key in self.settings:
                faults += setting_faults(self, key, value, f"{self.name}.settings.{key}")
        if faults:
            raise DefinitionError(faults)
        return attrs.evolve(self, settings={**self.settings, **overrides})


_DURATION = re.compile(
    r"^\s*(\d+)\s*(s|sec|secs|second|seconds|m|min|mins|minute|minutes|h|hour|hours|d|day|days)?\s*$"
)
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str | int) -> int:
    """``"30m"``, ``"30 min"``, ``"60s"``, ``"1h"`` or plain seconds → seconds."""
    if isinstance(text, int):
        return text
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"not a duration: {text!r} (use e.g. '30m', '60s', '1h')")
    unit = (match.group(2) or "s")[0]
    return int(match.group(1)) * _UNIT[unit]


def _is_duration(value: object) -> bool:
    try:
        parse_duration(value)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        return False
    return isinstance(value, str | int) and not isinstance(value, bool)


def _is_instant(value: object) -> bool:
    """An ISO 8601 date-time with its UTC offset (an instant, not a wall-clock time)."""
    if not isinstance(value, str):
        return False
    try:
        return datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False


def setting_faults(defn: FlowDefinition, key: str, value: object, where: str) -> list[str]:
    """A setting's value must keep the shape of its default: the same type, a duration stays a
    duration, an instant stays an instant with its offset, a choice stays one of its choices."""
    default = defn.settings[key]
    if key in defn.choices:
        if value not in defn.choices[key]:
            return [f"{where}: one of {', '.join(defn.choices[key])}, not {value!r}"]
        return []
    if isinstance(default, bool) or isinstance(value, bool):
        ok = isinstance(default, bool) and isinstance(value, bool)
        return [] if ok else [f"{where}: expected a boolean like the default {default!r}"]
    if isinstance(default, int | float):
        ok = isinstance(value, int | float)
        return [] if ok else [f"{where}: expected a number like the default {default!r}"]
    if isinstance(default, str) and _is_duration(default):
        return [] if isinstance(value, str) and _is_duration(value) else [
            f"{where}: expected a duration such as '30m' or '60s', not {value!r}"]
    if _is_instant(default):
        return [] if _is_instant(value) else [
            f"{where}: expected a date-time with its offset, e.g. '2026-02-02T00:00:00+09:00'"]
    return [] if isinstance(value, str) else [f"{where}: expected text, not {value!r}"]


def format_duration(seconds: int) -> str:
    """The inverse for people: ``1800`` → ``"30 min"``."""
    for size, name in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {name}"
    return f"{seconds} s"


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
             MigrationDef, FlowDefinition):
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

class Names:
    """The names a definition may reference: guards, actions and validators known at run time."""

    def __init__(self, guards: set[str], actions: set[str], validators: set[str]) -> None:
        self.guards = guards
        self.actions = actions
        self.validators = validators


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
    for key, allowed in defn.choices.items():
        if key not in defn.settings:
            faults.append(f"{root}.choices.{key}: unknown setting {key!r}")
        elif defn.settings[key] not in allowed:
            faults.append(f"{root}.settings.{key}: one of {', '.join(allowed)}")
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

class _YamlLoader(yaml.SafeLoader):
    """YAML 1.2 booleans: ``on``/``off``/``yes``/``no`` stay strings (``on:`` is a state's events)."""


_YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def read_source(path: str | Path) -> dict[str, Any]:
    """A definition file's table: ``.toml``, ``.yaml`` / ``.yml`` or ``.json``."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".toml":
            data: Any = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            data = yaml.load(text, Loader=_YamlLoader)
        elif path.suffix == ".json":
            import json

            data = json.loads(text)
        else:
            raise DefinitionError([f"{path}: unknown definition format {path.suffix!r}"])
    except (tomllib.TOMLDecodeError, yaml.YAMLError, ValueError) as exc:
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

