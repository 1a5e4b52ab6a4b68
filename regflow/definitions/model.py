"""Flow definitions as data: the attrs classes of a flow, and durations.

``regflow.definitions.loader`` structures them from dicts, TOML or YAML and checks them, reporting every
fault with its path (e.g. ``registration.states.details.on.submit[0]: unknown guard 'x'``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from regflow.definitions.validation import rule_setting_faults
from regflow.ground.exceptions import DefinitionError

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
    """How adapter calls that raise TransientError are retried (defaults: the built-in flows')."""

    attempts: int = 3
    initial: float = 0.2
    factor: float = 2.0
    max: float = 2.0
    jitter: str = "full"


@attrs.frozen
class TimerMigrationDef:
    """How the timers of the new state are armed for flows that migrate from one old state.

    ``carry`` (the default) keeps each old timer's deadline for the new timer that corresponds
    to it — the same event, or the one ``events`` maps it to (old event → new event) — and arms
    a new timer without one from the migration instant; ``restart`` arms every timer of the new
    state from the migration instant, as if the state were entered then.
    """

    arm: str = "carry"
    events: dict[str, str] = attrs.field(factory=dict)


ARM_MODES = ("carry", "restart")


@attrs.frozen
class MigrationDef:
    """How flows of an older version move to this one: old state → new state (unlisted states
    keep their name, which must exist here), and per old state how the new state's timers are
    armed (``timers``; unlisted: carry by event name)."""

    states: dict[str, str] = attrs.field(factory=dict)
    timers: dict[str, TimerMigrationDef] = attrs.field(factory=dict)

    def target(self, state: str) -> str:
        """The state of this version a flow in the old ``state`` moves to."""
        return self.states.get(state, state)

    def timers_of(self, state: str) -> TimerMigrationDef:
        """How the timers are armed for flows migrating from the old ``state``."""
        return self.timers.get(state, TimerMigrationDef())


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
        settings = {**self.settings, **overrides}
        return attrs.evolve(self, settings=settings, fields=_fields_following(self.fields, settings))


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
    if not isinstance(value, str):
        return [f"{where}: expected text, not {value!r}"]
    return rule_setting_faults(key, value, where)


def _fields_following(fields: dict[str, FieldDef], settings: Mapping[str, Setting]) -> dict[str, FieldDef]:
    """The fields with the constraints front ends show kept to the rule settings: a field
    checked by ``customer_number`` shows the ``customer_id_pattern`` (and no fixed length)."""
    pattern = settings.get("customer_id_pattern")
    out = dict(fields)
    for name, field in fields.items():
        shown = field.constraints.get("pattern")
        if "customer_number" in field.validate and pattern is not None and shown is not None \
                and shown != pattern:
            constraints = {k: v for k, v in field.constraints.items() if k != "length"}
            out[name] = attrs.evolve(field, constraints={**constraints, "pattern": pattern})
    return out


_COUNTS = ("min_length", "max_length", "length", "classes")


def rule_faults(defn: FlowDefinition, root: str) -> list[str]:
    """What is wrong with the rules a definition declares as data: its rule settings (a bad
    pattern, country or blocklist), its fields' constraints (a ``pattern`` that is no regular
    expression, lengths and ``classes`` that are no counts), and a customer-number field that
    shows another pattern than the setting ``customer_id_pattern`` checks."""
    faults: list[str] = []
    for key, value in defn.settings.items():
        faults += rule_setting_faults(key, value, f"{root}.settings.{key}")
    for name, field in defn.fields.items():
        here = f"{root}.fields.{name}.constraints"
        limits = field.constraints
        pattern = limits.get("pattern")
        if pattern is not None and not isinstance(pattern, str):
            faults.append(f"{here}.pattern: expected text, not {pattern!r}")
        elif pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                faults.append(f"{here}.pattern: not a regular expression: {exc}")
        faults += [f"{here}.{key}: expected a whole number of 0 or more, not {limits[key]!r}"
                   for key in _COUNTS if key in limits and not _count(limits[key])]
        if _count(limits.get("min_length")) and _count(limits.get("max_length")) \
                and limits["min_length"] > limits["max_length"]:
            faults.append(f"{here}: min_length {limits['min_length']} is above max_length "
                          f"{limits['max_length']}")
        if _count(limits.get("classes")) and limits["classes"] > 4:
            faults.append(f"{here}.classes: at most 4 (lower, upper, digit, symbol)")
        wanted = defn.settings.get("customer_id_pattern")
        if "customer_number" in field.validate and wanted is not None and pattern is not None \
                and pattern != wanted:
            faults.append(f"{here}.pattern: {pattern!r} is not the setting customer_id_pattern "
                          f"{wanted!r} the field is checked by")
    return faults


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def format_duration(seconds: int) -> str:
    """The inverse for people: ``1800`` → ``"30 min"``."""
    for size, name in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {name}"
    return f"{seconds} s"


class Names:
    """The names a definition may reference: guards, actions and validators known at run time."""

    def __init__(self, guards: set[str], actions: set[str], validators: set[str]) -> None:
        self.guards = guards
        self.actions = actions
        self.validators = validators
