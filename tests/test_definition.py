"""Definitions load from dicts, TOML and YAML, and fail at load with the path of each fault."""

from __future__ import annotations

from pathlib import Path

import pytest

from regflow import DefinitionError, FlowLibrary, Registry
from regflow.definitions.loader import load
from regflow.definitions.model import format_duration, parse_duration
from regflow.machines import builtin_library, builtin_registry

DATA = Path(__file__).parent / "data"


def minimal(**states: object) -> dict[str, object]:
    return {"name": "demo", "version": 1, "initial": "a",
            "states": states or {"a": {"on": {"go": "b"}}, "b": {"final": True}}}


def faults_of(source: object, registry: Registry | None = None) -> list[str]:
    names = (registry or builtin_registry()).names()
    with pytest.raises(DefinitionError) as info:
        load(source, names)  # type: ignore[arg-type]
    return info.value.faults


def test_unknown_guard_in_registration_has_its_path() -> None:
    """The issue's example: an unknown guard is reported at its transition's path."""
    import tomllib
    from importlib import resources

    raw = tomllib.loads(resources.files("regflow.machines").joinpath("registration.toml").read_text())
    raw["states"]["details"]["on"]["submit"][1]["guard"] = ["contract_match", "seat_free"]
    faults = faults_of(raw)
    assert faults == ["registration.states.details.on.submit[1]: unknown guard 'contract_match'"]


def test_broken_file_lists_every_fault() -> None:
    """A broken TOML file fails with each fault's path."""
    faults = faults_of(DATA / "broken.toml")
    assert "broken.states.start.on.submit[0]: unknown guard 'contract_match'" in faults
    assert "broken.states.start.screen.fields: unknown field 'phone'" in faults
    assert len(faults) == 2


def test_structural_faults_have_paths() -> None:
    """Wrong types, unknown keys and missing keys are reported where they are."""
    raw = minimal(a={"on": {"go": {"targett": "b"}}, "after": [{"after": 5}]}, b={"final": "yes"})
    raw["version"] = "one"
    faults = faults_of(raw)
    assert "demo.version: expected int, not str" in faults
    assert "demo.states.a.on.go: unknown field(s) 'targett'" in faults
    assert "demo.states.a.after[0]: required field 'event' missing" in faults
    assert any(f.startswith("demo.states.b.final:") for f in faults)


def test_missing_required_top_level_key() -> None:
    """A definition without ``initial`` says so."""
    raw = minimal()
    del raw["initial"]
    assert faults_of(raw) == ["demo.initial: required field missing"]


def test_cross_references_are_checked() -> None:
    """Unknown states, actions, validators, settings, retry policies and timer events are faults."""
    raw = {
        "name": "x", "version": 1, "initial": "nowhere",
        "fields": {"f": {"type": "colour", "validate": ["nope"]}},
        "states": {
            "a": {"enter": ["ghost"], "after": [{"after": "@missing", "event": "tick"}],
                  "screen": {"actions": ["go"]},
                  "on": {"go": {"target": "b", "actions": ["ghost"], "retry": "slow"}}},
        },
    }
    faults = faults_of(raw)
    assert "x.initial: unknown state 'nowhere'" in faults
    assert "x.fields.f.type: unknown field type 'colour'" in faults
    assert "x.fields.f.validate: unknown validator 'nope'" in faults
    assert "x.states.a.enter: unknown action 'ghost'" in faults
    assert "x.states.a.after[0].after: unknown setting 'missing'" in faults
    assert "x.states.a.after[0].event: no transition for timer event 'tick'" in faults
    assert "x.states.a.on.go: unknown state 'b'" in faults
    assert "x.states.a.on.go: unknown action 'ghost'" in faults
    assert "x.states.a.on.go: unknown retry policy 'slow'" in faults


def test_bad_duration_and_status() -> None:
    """Durations must parse; only final states carry a status, and only a known one."""
    raw = minimal(a={"after": [{"after": "soon", "event": "go"}], "on": {"go": "b"}, "status": "done"},
                  b={"final": True, "status": "finished"})
    faults = faults_of(raw)
    assert any(f.startswith("demo.states.a.after[0].after: not a duration: 'soon'") for f in faults)
    assert "demo.states.a.status: only final states have a status" in faults
    assert any(f.startswith("demo.states.b.status: one of") for f in faults)


def test_unparsable_file(tmp_path: Path) -> None:
    """A file that is not valid TOML fails with its path, not a parser traceback."""
    bad = tmp_path / "flow.toml"
    bad.write_text("name = \n")
    faults = faults_of(bad)
    assert faults[0].startswith(f"{bad}: cannot parse:")


def test_yaml_user_flow_loads_with_own_registry() -> None:
    """A user's YAML flow loads against their own guards and actions."""
    mine = Registry()

    @mine.guard
    def invitation_open(ctx: object) -> bool:
        return True

    @mine.action
    def accept(ctx: object) -> None:
        return None

    library = FlowLibrary(mine)
    defn = library.add(DATA / "invitation.yaml")
    assert defn.seconds(defn.states["invited"].after[0].after) == 2 * 86400
    assert {"cancelled", "expired", "failed"} <= set(defn.states)  # standard finals added
    assert defn.states["lapsed"].status == "expired"


def test_yaml_user_flow_without_its_names_fails() -> None:
    """The same YAML flow against a registry lacking its names lists what is missing."""
    faults = faults_of(DATA / "invitation.yaml", Registry())
    assert "invitation.states.invited.on.submit[0]: unknown guard 'invitation_open'" in faults
    assert "invitation.states.invited.on.submit[0]: unknown action 'accept'" in faults


def test_durations() -> None:
    """Durations read as people write them and print back."""
    assert parse_duration("30m") == parse_duration("30 min") == 1800
    assert parse_duration("60s") == parse_duration("60") == 60
    assert parse_duration("1h") == 3600
    assert format_duration(1800) == "30 min"
    assert format_duration(61) == "61 s"
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("half an hour")


def test_settings_override_is_checked() -> None:
    """Overriding an unknown setting is a fault; a known one changes the definition."""
    library = builtin_library()
    library.configure("registration", {"existing_email": "conceal"})
    assert library.latest("registration").settings["existing_email"] == "conceal"
    with pytest.raises(DefinitionError, match="unknown setting 'existing_emails'"):
        library.configure("registration", {"existing_emails": "conceal"})


def test_builtin_registration_numbers() -> None:
    """The built-in registration carries SPEC 5's numbers."""
    defn = builtin_library().latest("registration")
    assert defn.seconds("@code_ttl") == 30 * 60
    assert defn.settings["code_tries"] == 5
    assert defn.seconds("@resend_interval") == 60
    assert defn.settings["max_sends"] == 10
    assert defn.settings["max_mismatches"] == 5
    assert defn.seconds("@provisioning_delay") == 10 * 60
    assert defn.seconds(defn.expiry) == 60 * 60
    policy = defn.retry["default"]
    assert (policy.attempts, policy.initial, policy.factor, policy.max, policy.jitter) == (
        3, 0.2, 2.0, 2.0, "full")
