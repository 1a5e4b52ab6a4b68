"""Playing paths: a ``Player`` runs steps on an engine and observes what they did (the state,
the timers fired, the items covered); ``run_path`` (``regflow.testing.replay``) uses it to replay
a generated path and assert, after every step, the expected state and the invariants I1–I5, and
at the end that the path covered what it claims.

The Player also keeps the flow's deadlines as the *definition* sets them (``Timing``): a timer
falls due at the instant its state was entered plus its declared duration, the inactivity
expiry at the instant of the last user event the engine applied plus the declared expiry. The
generator's clock advances are computed from these, never from the deadlines the engine stored.
"""

from __future__ import annotations

import pathlib
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

import attrs

from regflow.definitions.model import FlowDefinition
from regflow.definitions.validation import email_key
from regflow.engine import Engine
from regflow.ground.exceptions import EventNotAllowed, FlowGone, Forbidden
from regflow.ground.records import JournalEntry
from regflow.runtime.migrations import MIGRATE_EVENT, rearm
from regflow.testing.engines import GuardCall, Recorder
from regflow.testing.invariants import check_invariants
from regflow.testing.model import (
    Step,
    guard_id,
    is_expiry,
    parse_timer,
    transition_id,
    walk_branches,
    when_guards,
)
from regflow.testing.scenario import Scenario
from regflow.testing.world import (
    MIGRATE_OP,
    SETTINGS_OP,
    ClockDriver,
    apply_op,
    build_world,
)

NO_BRANCH = ("invalid", "event_refused", "transient_error")  # journal outcomes of a user event


class PathFailed(AssertionError):
    """A replayed path did not do what it says."""


@attrs.frozen
class Observation:
    """What one step did: the step with its expectation filled in, and the items it covered."""

    step: Step
    items: frozenset[str]
    state: str
    active: bool
    messages: tuple[str, ...] = ()
    outcome: str = ""  # the journal's outcome of the event (``invalid`` when its data was refused)


@attrs.frozen
class Timing:
    """The flow's deadlines by its definition: ``state`` (as the Player followed it), its
    pending timers (index in the state's ``after``, the instant it falls due) and the instant
    the inactivity expiry falls due (None once the flow has ended)."""

    state: str = ""
    timers: tuple[tuple[int, datetime], ...] = ()
    expires: datetime | None = None


class Player:
    """Plays the steps of one flow on an engine, observing each (guards via the recorder) and
    keeping its deadlines by the definition (``timing``)."""

    def __init__(self, engine: Engine, flow: str, scenario: Scenario, driver: ClockDriver,
                 recorder: Recorder | None, *, check: bool = True) -> None:
        self.engine, self.flow, self.scenario, self.driver = engine, flow, scenario, driver
        self.recorder, self.check = recorder, check
        self.token: str | None = None  # the world's session token (flows that need a session)
        self.flow_id = ""
        self.flow_token: str | None = None  # the flow's secret, from the answer that started it
        self.handed_over: dict[str, str] | None = None  # the last event's hand-over, if any
        self._mark = 0
        self.timing = Timing()  # the deadlines by the definition (put back by hand to backtrack)
        self._migrating_from: FlowDefinition | None = None  # the version before a ``migrate`` step
        definition = engine.flows.latest(flow)
        lengths = [f.constraints.get("length", 8) for f in definition.fields.values() if f.type == "code"]
        self._width = int(lengths[0]) if lengths else 8
        self._code = re.compile(rf"(?<![0-9])[0-9]{{{self._width}}}(?![0-9])")

    @property
    def definition(self) -> FlowDefinition:
        """The definition as the engine runs it now (settings included)."""
        return self.engine.flows.latest(self.flow)

    def setup_world(self) -> None:
        """Clock, settings, contracts, logins and the session of the scenario."""
        s = self.scenario
        self.token = build_world(self.engine, self.flow, self.driver, start=s.start, settings=s.settings,
                                 contracts=s.contracts, logins=s.logins, session=s.session)

    def begin(self, context: Mapping[str, Any]) -> Observation:
        """Start the flow (context placeholders resolved); what the start covered."""
        self._mark = len(self._mails())
        if self.recorder is not None:
            self.recorder.calls.clear()
        at = self.driver.now()
        snapshot = self.engine.start(self.flow, self.resolve(context), session=self.token)
        self.flow_id, self.flow_token = snapshot.id, snapshot.flow_token
        calls = self.recorder.take(self.flow_id) if self.recorder is not None else []
        self.timing = self._entered(Timing(), snapshot.state, at)
        if snapshot.status == "active":
            self.timing = attrs.evolve(self.timing, expires=self._expiry(at))
        return self._observed(Step(expect=snapshot.state), calls, [], snapshot.state, snapshot.status)

    def play(self, step: Step) -> Observation:
        """Run one step; raise InvariantViolation (with ``check``) when I1–I5 break."""
        before = len(self.engine.history(self.flow_id))
        outcome: str | None = None
        at = self.driver.now()
        if step.world is not None:
            self._world(step.world)
        elif step.event is not None:
            outcome = self._send(step)
        else:
            seconds = self.seconds(step.advance)
            self.driver.advance(seconds)
            step = attrs.evolve(step, advance=seconds)
        snapshot = self.engine.get(self.flow_id, token=self.flow_token)
        entries = self.engine.history(self.flow_id)[before:]
        calls = self.recorder.take(self.flow_id) if self.recorder is not None else []
        fired = tuple(e.event for e in entries if e.actor == "timer")
        self._track(entries, calls, at, applied=step.event is not None and outcome is None,
                    active=snapshot.status == "active")
        step = attrs.evolve(step, expect=None if step.world is not None else outcome or snapshot.state,
                            fired=fired if step.advance is not None else None)
        if self.check:
            check_invariants(self.engine, flow_id=self.flow_id, mailed=self.codes())
        observed = self._observed(step, calls, entries, snapshot.state, snapshot.status)
        journaled = next((e.outcome for e in entries if e.actor != "timer" and e.event == step.event), "")
        return attrs.evolve(observed, messages=tuple(m.id for m in snapshot.screen.messages),
                            outcome=journaled)

    def seconds(self, advance: int | str | None) -> int:
        """An advance in seconds: a number, a duration (``"60s"``) or a setting (``"@code_ttl"``)."""
        return advance if isinstance(advance, int) else self.definition.seconds(str(advance))

    def _send(self, step: Step) -> str | None:
        assert step.event is not None
        self.handed_over = None
        if step.meanwhile is not None:
            if self.recorder is None:
                raise PathFailed("a step with 'meanwhile' needs an engine from regflow.testing.make_engine")
            change = self.resolve({k: v for k, v in step.meanwhile.items() if k != "guard"})
            self.recorder.arm(self.flow_id, str(step.meanwhile["guard"]),
                              lambda ctx: apply_op(self.engine, ctx.tx, ctx.now, change))
        try:
            answer = self.engine.send(self.flow_id, step.event, self.resolve(step.data),
                                      token=self.flow_token, session=self.token)
            self.handed_over = answer.continue_with
        except EventNotAllowed:
            return "refused"
        except FlowGone:
            return "gone"
        except Forbidden:
            return "forbidden"
        finally:
            if self.recorder is not None:
                self.recorder.disarm(self.flow_id)
        return None

    def _world(self, raw: Mapping[str, Any]) -> None:
        change = self.resolve(raw)
        if change["world"] == SETTINGS_OP:
            self.engine.flows.configure(str(change.get("flow", self.flow)), change["values"])
            return
        if change["world"] == MIGRATE_OP:
            self._deploy(change["to"])
            return
        with self.engine.store.transaction() as tx:
            apply_op(self.engine, tx, self.driver.now(), change)

    def _deploy(self, to: Mapping[str, Any] | str) -> None:
        """Load the newer version ``to`` (a definition table, or its file relative to the
        scenario's folder), give it the scenario's settings and retire the older versions: the
        flow migrates when the step then reads it."""
        flows, previous = self.engine.flows, self.definition
        source = to if isinstance(to, Mapping) else (self.scenario.base or pathlib.Path.cwd()) / to
        added = flows.add(source)
        if added.name != self.flow or added.version <= previous.version:
            raise PathFailed(f"migrate: {added.name} v{added.version} is no newer version of "
                             f"{self.flow} v{previous.version}")
        settings = {k: v for k, v in self.scenario.settings.items() if k in added.settings}
        if settings:
            flows.configure(self.flow, settings)
        for version in flows.versions(self.flow):
            if version < added.version:
                flows.retire(self.flow, version)
        self._migrating_from = previous

    def _migrated(self, timing: Timing, entry: JournalEntry) -> Timing:
        """``timing`` once the flow migrated (journaled by ``entry``): the new state's timers
        armed from the Player's own deadlines as the migration declares."""
        old, new = self._migrating_from, self.definition
        if old is None:
            raise PathFailed(f"the flow migrated to v{new.version} without a migrate step")
        migration = new.migrations[str(old.version)]
        target = migration.target(timing.state)
        if target not in new.states or new.states[target].final:
            return Timing(target)
        after = old.states[timing.state].after if timing.state in old.states else ()
        pending = [(after[i].event, at) for i, at in timing.timers if i < len(after)]
        armed = rearm(new, migration, timing.state, pending, timing.expires, entry.at)
        return Timing(target, tuple(enumerate(armed.deadlines)), armed.expires_at)

    # ---- deadlines by the definition -------------------------------------------------------------

    def _expiry(self, at: datetime) -> datetime:
        definition = self.definition
        return at + timedelta(seconds=definition.seconds(definition.expiry))

    def _entered(self, timing: Timing, state: str, at: datetime) -> Timing:
        """``timing`` once ``state`` is entered at ``at``: its timers armed, nothing else pending."""
        definition = self.definition
        found = definition.states.get(state)
        if found is None or found.final:
            return Timing(state)
        timers = tuple((i, at + timedelta(seconds=definition.seconds(t.after)))
                       for i, t in enumerate(found.after))
        return attrs.evolve(timing, state=state, timers=timers)

    def _track(self, entries: list[JournalEntry], calls: list[GuardCall], at: datetime, *,
               applied: bool, active: bool) -> None:
        """Follow the journal of a step: a timer fired is no longer pending; a branch with a
        target (re-)enters a state, arming its timers — at the firing timer's own deadline, or
        at ``at`` for a user event; a user event the engine applied (``applied``: the send did
        not raise) restarts the inactivity expiry."""
        definition, timing = self.definition, self.timing
        for entry in entries:
            instant = at
            if migration(entry):
                timing = self._migrated(timing, entry)
                continue
            if entry.actor == "timer":
                if entry.event == "expire":
                    timing = Timing(entry.to_state)
                    continue
                after = definition.states[timing.state].after if timing.state == entry.from_state else ()
                due = next(((i, d) for i, d in timing.timers
                            if i < len(after) and after[i].event == entry.event), None)
                if due is not None:
                    timing = attrs.evolve(timing, timers=tuple(t for t in timing.timers if t != due))
                instant = due[1] if due is not None else entry.at
            elif entry.outcome in NO_BRANCH:
                continue
            index = self._taken(definition, entry, calls)
            branches = definition.states[entry.from_state].on.get(entry.event, ()) \
                if entry.from_state in definition.states else ()
            target = branches[index].target if index is not None else (
                entry.to_state if entry.to_state != entry.from_state else None)
            if target is not None:
                timing = self._entered(timing, target, instant)
        if not active:
            timing = Timing(timing.state)
        elif applied:
            timing = attrs.evolve(timing, expires=self._expiry(at))
        self.timing = timing

    def deadlines(self) -> list[tuple[str, datetime]]:
        """The pending timers of the flow's state by the definition: ``(label, instant)``, with
        the label of their items (``enter_code.after[0]``), soonest first."""
        return sorted(((f"{self.timing.state}.after[{i}]", at) for i, at in self.timing.timers),
                      key=lambda pair: (pair[1], pair[0]))

    @staticmethod
    def _taken(definition: FlowDefinition, entry: JournalEntry, calls: list[GuardCall]) -> int | None:
        """The index of the branch a journaled step took (from the guards' answers), or None."""
        if entry.from_state not in definition.states:
            return None
        answers = {c.guard: c.result for c in calls if (c.state, c.event) == (entry.from_state, entry.event)}
        return walk_branches(definition, entry.from_state, entry.event, answers)[1]

    # ---- coverage --------------------------------------------------------------------------------

    def _observed(self, step: Step, calls: list[GuardCall], entries: list[JournalEntry],
                  state: str, status: str) -> Observation:
        definition = self.definition
        items: set[str] = set()
        asked: dict[tuple[str, str], dict[str, bool]] = {}
        for call in calls:
            asked.setdefault((call.state, call.event), {})[call.guard] = call.result
            if when_guards(definition, call.state).get(call.event) == call.guard:  # its action is sent
                items.add(guard_id(call.state, call.event, call.guard, call.result))
        for (sname, event), answers in asked.items():  # each branch's guards, as the engine asked them
            items.update(walk_branches(definition, sname, event, answers)[0])
        for entry in entries:
            if migration(entry):
                continue
            branches = definition.states[entry.from_state].on.get(entry.event, ())
            if not branches or (entry.actor != "timer" and entry.outcome in NO_BRANCH):
                continue
            index = self._taken(definition, entry, calls)
            if index is not None:
                items.add(transition_id(entry.from_state, entry.event, index, len(branches)))
        if step.timer is not None and step.fired is not None:
            label, offset = parse_timer(step.timer)
            event = "expire" if is_expiry(label) else self._timer_event(label)
            if (event in step.fired) == (offset >= 0):
                items.add(step.timer)
        return Observation(step, frozenset(items), state, status == "active")

    def _timer_event(self, label: str) -> str:
        state, _, index = label.partition(".after[")
        return str(self.definition.states[state].after[int(index.rstrip("]"))].event)

    def _mails(self) -> list[EmailMessage]:
        return list(getattr(self.engine.mailer, "messages", []))

    def codes(self) -> list[str]:
        """The codes in the mails sent since the flow started, oldest first."""
        found: list[str] = []
        for mail in self._mails()[self._mark:]:
            part = mail.get_body(("plain",))
            found += self._code.findall(str(part.get_content())) if part is not None else []
        return found

    def resolve(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """Data with its placeholders filled in: ``$code``, ``$wrong_code``, ``$login:EMAIL``,
        ``$data:KEY``."""
        return {k: self._value(v) for k, v in data.items()}

    def _value(self, value: Any) -> Any:
        if not isinstance(value, str) or not value.startswith("$"):
            return value
        if value in ("$code", "$wrong_code"):
            found = self.codes()
            code = found[-1] if found else "0" * self._width
            return code if value == "$code" else f"{(int(code) + 1) % 10 ** self._width:0{self._width}d}"
        kind, _, key = value[1:].partition(":")
        with self.engine.store.transaction() as tx:
            if kind == "login":
                login = tx.logins.by_email(email_key(key))
                if login is None:
                    raise LookupError(f"{value}: no login for {key!r}")
                return login.id
            if kind == "data":
                record = tx.flows.load(self.flow_id)
                return record.data.get(key) if record is not None else None
        return value

    def key(self) -> tuple[Any, ...]:
        """Where the flow is, for the search: state, status, pending timers and the text and
        yes/no facts of its data (counters and instants are left to the pumping)."""
        with self.engine.store.transaction() as tx:
            record = tx.flows.load(self.flow_id)
        assert record is not None
        facts = sorted((k, v) for k, v in record.data.items()
                       if isinstance(v, str | bool) and not (isinstance(v, str) and _instant(v)))
        return record.state, record.status, tuple(sorted(e for e, _ in record.timers)), tuple(facts)


def migration(entry: JournalEntry) -> bool:
    """Whether a journal entry is a migration to a newer version (not a step of the flow)."""
    return entry.actor == "system" and entry.event == MIGRATE_EVENT


def _instant(text: str) -> bool:
    return len(text) >= 16 and text[4:5] == "-" and "T" in text
