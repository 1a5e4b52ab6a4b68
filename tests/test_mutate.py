"""``regflow mutate`` (SPEC 3, issue 11 part 4): mutants of a flow's definition and registry,
judged by its approved paths — killed, survived, equivalent (only with a reason) or invalid.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from regflow.cli import main
from regflow.definitions.library import FlowLibrary
from regflow.definitions.model import FlowDefinition
from regflow.definitions.registry import Registry
from regflow.machines import BUILTIN_FLOWS, builtin_registry
from regflow.testing import (
    ScenarioError,
    approval,
    builtin_scenario,
    generate_paths,
    load_scenario,
    mutants,
    mutation,
)
from regflow.testing.engines import FlowSource
from regflow.testing.mutants import Mutant
from regflow.testing.mutation import Judge

EXAMPLES = Path(__file__).resolve().parent.parent / "regflow" / "examples"
FLOW = "unlink_login"  # a small built-in flow: its mutants run in about a second
LIVE = "retarget:confirm.cancel:cancelled->done"  # cancelling would complete the flow
# confirm has no timers, and its entry action only names the target again: staying and
# re-entering it look the same from outside.
EQUIVALENT = "retarget:confirm.submit[0]:stay->confirm"
REASON = "confirm has no timers and describe_target is idempotent: re-entering it is staying"

small_names = Registry()


@small_names.guard
def g1(ctx: Any) -> bool:
    return True


@small_names.guard
def g2(ctx: Any) -> bool:
    return True


@small_names.guard
def g3(ctx: Any) -> bool:
    return False


@small_names.action
def note(ctx: Any) -> None:
    return None


@small_names.action
def act(ctx: Any) -> None:
    return None


SMALL: dict[str, Any] = {
    "name": "small", "version": 1, "initial": "start", "expiry": "60m",
    "settings": {"ttl": "30m", "tries": 3, "ratio": 1.5, "mode": "a", "strict": True,
                 "since": "2026-01-01T00:00:00+09:00", "label": "plain text"},
    "choices": {"mode": ["a", "b", "c"]},
    "states": {
        "start": {
            "enter": ["note"],
            "screen": {"actions": ["go", "cancel"]},
            "after": [{"after": "@ttl", "event": "tick"}, {"after": "90s", "event": "tock"}],
            "on": {
                "go": [{"guard": ["g1", "g2"], "target": "done", "actions": ["act", "note"]},
                       {"unless": "g3", "message": "nope"},
                       {"target": "done"}],
                "cancel": "cancelled",
                "tick": {"message": "late"},
                "tock": "expired",
            },
        },
        "done": {"final": True},
    },
}


def _small() -> FlowDefinition:
    return FlowLibrary(builtin_registry() | small_names).add(SMALL)


# ---- the generator -----------------------------------------------------------------------------

def test_the_mutants_of_a_small_definition() -> None:
    """Each kind of mutant, counted from the definition itself."""
    defn = _small()
    found = mutants.mutants(defn)
    kinds = Counter(m.kind for m in found)
    branches = [(s, e, b) for s, st in defn.states.items() for e, bs in st.on.items() for b in bs]
    states = len(defn.states)  # start, done and the standard finals
    assert states == 5
    assert kinds["guard-dropped"] == kinds["guard-negated"] == sum(len(b.guard) + len(b.unless)
                                                                   for _, _, b in branches) == 3
    assert kinds["branches-swapped"] == sum(len(bs) - 1 for st in defn.states.values()
                                            for bs in st.on.values()) == 2
    # a target: each other state; a stay branch: each state (re-entering its own included)
    assert kinds["retarget"] == sum(states - 1 if b.target else states for _, _, b in branches) == 26
    assert kinds["action-dropped"] == sum(len(b.actions) for _, _, b in branches) == 2
    assert kinds["enter-dropped"] == 1
    assert kinds["message-dropped"] == sum(1 for _, _, b in branches if b.message) == 2
    assert kinds["timer"] == 2  # "90s" ± 1 s ("@ttl" moves with its setting)
    assert kinds["expiry"] == 2  # "60m" ± 1 s
    # ttl ±1 s, tries ±1, ratio ±1, mode: two other choices, strict flipped, since ±1 s; no text
    assert kinds["setting"] == 2 + 2 + 2 + 2 + 1 + 2 == 11
    assert kinds["registry:guard-true"] == kinds["registry:guard-false"] == 3
    assert kinds["registry:action-noop"] == 2  # note (entry and branch) and act, once each
    assert len(found) == sum(kinds.values()) == len({m.id for m in found})  # ids are unique

    ids = {m.id: m.mapping for m in found if m.mapping is not None}

    def on(mutant: str, event: str) -> list[dict[str, Any]]:
        branches: list[dict[str, Any]] = ids[mutant]["states"]["start"]["on"][event]
        return branches

    assert on("guard-dropped:start.go[0]:g2", "go")[0]["guard"] == ["g1"]
    negated = on("guard-negated:start.go[1]:g3", "go")[1]
    assert (negated["guard"], negated["unless"]) == (["g3"], [])
    swapped = on("branches-swapped:start.go[1]<>[2]", "go")
    assert [b["target"] for b in swapped] == ["done", "done", None]
    assert swapped[2]["message"] == "nope"
    assert on("retarget:start.go[1]:stay->start", "go")[1]["target"] == "start"
    assert on("retarget:start.cancel:cancelled->failed", "cancel")[0]["target"] == "failed"
    assert on("action-dropped:start.go[0]:note", "go")[0]["actions"] == ["act"]
    assert ids["enter-dropped:start:note"]["states"]["start"]["enter"] == []
    assert on("message-dropped:start.tick:late", "tick")[0]["message"] is None
    assert ids["timer:start.after[1]:-1s"]["states"]["start"]["after"][1]["after"] == "89s"
    assert ids["expiry:+1s"]["expiry"] == "3601s"
    assert ids["setting:ttl:+1s"]["settings"]["ttl"] == "1801s"
    assert ids["setting:tries:-1"]["settings"]["tries"] == 2
    assert ids["setting:mode:=c"]["settings"]["mode"] == "c"
    assert ids["setting:strict:=false"]["settings"]["strict"] is False
    assert ids["setting:since:-1s"]["settings"]["since"] == "2025-12-31T23:59:59+09:00"
    assert next(m for m in found if m.id == "registry:guard-true:g3").registry == ("guard-true", "g3")
    # each mutant changes one thing: the unchanged definition is not among them
    assert all(m.mapping != mutants.definition_mapping(defn) for m in found if m.mapping is not None)


def test_every_definition_mutant_loads_or_is_invalid() -> None:
    """The mutants of the small flow load back (none is invalid), each differing from it."""
    defn = _small()
    for m in mutants.definition_mutants(defn):
        assert m.mapping is not None
        changed = FlowLibrary(builtin_registry() | small_names).add(m.mapping)
        assert changed != defn, m.id


def test_only_selects_by_kind_or_prefix() -> None:
    found = mutants.mutants(_small())
    assert {m.kind for m in mutants.select(found, ["registry"])} == set(mutants.REGISTRY_KINDS)
    assert [m.id for m in mutants.select(found, ["setting:mode"])] == ["setting:mode:=b", "setting:mode:=c"]
    assert mutants.select(found, ["guard-dropped:start.go[0]:g1"])[0].id == "guard-dropped:start.go[0]:g1"
    assert mutants.select(found, []) == found


def test_a_mutant_replaces_the_built_in_definition() -> None:
    """``FlowSource(replaces=True)``: the mapping stands in for the built-in flow of its name,
    the other built-in flows stay."""
    original = FlowSource(FLOW).library()
    mapping = mutants.definition_mapping(original.latest(FLOW))
    mapping["settings"]["flow_expiry"] = "61m"
    library = FlowSource(FLOW, mapping=mapping, replaces=True).library()
    assert library.latest(FLOW).settings["flow_expiry"] == "61m"
    assert library.names() == original.names() == sorted(BUILTIN_FLOWS)
    assert FlowSource(FLOW).library().latest(FLOW).settings["flow_expiry"] == "60m"


# ---- judging on a built-in flow --------------------------------------------------------------

@pytest.fixture(scope="module")
def approved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """unlink_login's approved paths as the checkout behaves now (so the test does not depend
    on the shipped file being current)."""
    file = tmp_path_factory.mktemp("approved") / f"{FLOW}.json"
    file.write_text(approval.dumps(approval.approve(generate_paths(FLOW))), encoding="utf-8")
    return file


def test_killed_survived_and_equivalent(approved: Path) -> None:
    document = approval.load(approved)
    progress: list[tuple[int, int]] = []
    report = mutation.mutate(FlowSource(FLOW), builtin_scenario(FLOW), document, jobs=1,
                             only=[LIVE, EQUIVALENT, "registry:guard-true:target_is_actor",
                                   "guard-dropped"],
                             equivalent={EQUIVALENT: REASON, "setting:nothing:+1": "stale"},
                             progress=lambda done, total, s: progress.append((done, total)), every=0)
    by_id = {o.id: o for o in report.outcomes}
    assert by_id[LIVE].status == "killed"
    assert by_id[LIVE].by.startswith(f"{FLOW}-")
    assert "state" in by_id[LIVE].detail
    assert by_id["registry:guard-true:target_is_actor"].status == "killed"
    assert by_id[EQUIVALENT].status == "equivalent"
    assert by_id[EQUIVALENT].detail == REASON
    assert {o.status for o in report.outcomes if o.kind == "guard-dropped"} == {"killed"}
    assert report.count("survived") == 0
    assert report.score == 100.0
    assert report.warnings == ("equivalent: no mutant 'setting:nothing:+1' (a stale declaration?)",)
    assert progress[-1] == (len(report.outcomes), len(report.outcomes))
    text = "\n".join(report.lines())
    assert f"{EQUIVALENT}  " in text
    assert REASON in text


def test_a_scenario_declares_equivalent_mutants(approved: Path) -> None:
    """A scenario's ``equivalent`` table (id = reason) is what ``regflow mutate`` reads; a
    declaration without its reason is a fault of the scenario."""
    raw = {**builtin_scenario(FLOW).to_dict(), "equivalent": {EQUIVALENT: REASON}}
    raw["world"] = {"contracts": raw["world"]["contracts"], "logins": raw["world"]["logins"]}
    scenario = load_scenario({k: v for k, v in raw.items() if v is not None})
    assert mutants.declared_equivalents(scenario) == {EQUIVALENT: REASON}
    report = mutation.mutate(FlowSource(FLOW), scenario, approval.load(approved), jobs=1, only=[EQUIVALENT],
                             equivalent=mutants.declared_equivalents(scenario))
    assert [(o.status, o.detail) for o in report.outcomes] == [("equivalent", REASON)]
    with pytest.raises(ScenarioError, match=r"scenario.equivalent.x: give the reason"):
        load_scenario({"equivalent": {"x": ""}})


def test_a_mutant_declared_equivalent_but_killed_counts_as_killed(approved: Path) -> None:
    report = mutation.mutate(FlowSource(FLOW), builtin_scenario(FLOW), approval.load(approved), jobs=1,
                             only=[LIVE], equivalent={LIVE: "wrongly declared"})
    assert [o.status for o in report.outcomes] == ["killed"]
    assert report.outcomes[0].declared == "wrongly declared"
    assert "declared equivalent but was killed" in report.warnings[0]


def test_a_mutant_that_does_not_load_is_invalid(approved: Path) -> None:
    source = FlowSource(FLOW)
    base, defn = mutation.base_source(source)
    broken = mutants.definition_mapping(defn)
    broken["states"]["confirm"]["on"]["cancel"][0]["target"] = "nowhere"
    judge = Judge(base, builtin_scenario(FLOW), approval.load(approved))
    outcome = judge.judge(Mutant("retarget:confirm.cancel:cancelled->nowhere", "retarget", "by hand", broken))
    assert outcome.status == "invalid"
    assert "nowhere" in outcome.detail


def test_a_baseline_that_fails_is_refused(approved: Path) -> None:
    document = approval.load(approved)
    document["paths"][0]["steps"][0]["state"] = "somewhere else"
    with pytest.raises(mutation.BaselineFailed):
        mutation.mutate(FlowSource(FLOW), builtin_scenario(FLOW), document, jobs=1, only=[LIVE])


# ---- the command -------------------------------------------------------------------------------

def _mutate(*args: str) -> Any:
    return CliRunner().invoke(main, ["mutate", *args])


def test_the_command_on_a_built_in_flow(approved: Path) -> None:
    """The whole run, in parallel processes: the report's shape."""
    result = _mutate(FLOW, "--approved", str(approved), "--jobs", "2")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(f"{FLOW}: ")
    assert "mutants judged by 7 approved paths" in lines[0]
    assert lines[-2].startswith("killed ")
    assert "survived" in lines[-2]
    assert "invalid" in lines[-2]
    assert lines[-1].startswith("score ")
    assert "mutants/s, 2 jobs)" in lines[-1]
    survivors = lines[lines.index(next(x for x in lines if x.startswith("survived ("))) + 1:-2] \
        if any(x.startswith("survived (") for x in lines) else []
    assert all(x.startswith("  ") and len(x.split()) >= 2 for x in survivors)


def test_min_score_and_json(approved: Path, tmp_path: Path) -> None:
    """``--min-score``: exit 1 below it; a survivor declared equivalent (``--equivalent``, with
    its reason) leaves the score; ``--json`` the whole report."""
    args = [FLOW, "--approved", str(approved), "--jobs", "1"]
    passed = _mutate(*args, "--only", LIVE, "--min-score", "100", "--json")
    assert passed.exit_code == 0, passed.output
    report = json.loads(passed.stdout)
    assert (report["mutants"], report["killed"], report["score"]) == (1, 1, 100.0)
    assert {"survived", "equivalent", "invalid", "seconds", "mutants_per_s", "survivors",
            "results"} <= set(report)
    assert report["results"][0]["id"] == LIVE
    assert report["results"][0]["status"] == "killed"

    # Only the path that cancels: a mutant of what submit does is not seen by it.
    document = approval.load(approved)
    cancelling = [p for p in document["paths"] if p["covers"] == ["confirm.cancel"]]
    assert len(cancelling) == 1
    thin = tmp_path / "thin.json"
    thin.write_text(approval.dumps({**document, "paths": cancelling}), encoding="utf-8")
    unseen = "registry:guard-true:target_is_actor"
    thin_args = [FLOW, "--approved", str(thin), "--jobs", "1", "--only", unseen]
    failed = _mutate(*thin_args, "--min-score", "50")
    assert failed.exit_code == 1, failed.output
    assert "score 0.0% (0 of 1)" in failed.output
    assert unseen in failed.output
    assert "below --min-score 50%" in failed.output

    declared = tmp_path / "equivalent.toml"
    declared.write_text(f'"{unseen}" = "{REASON}"\n', encoding="utf-8")
    explained = _mutate(*thin_args, "--min-score", "100", "--equivalent", str(declared))
    assert explained.exit_code == 0, explained.output
    assert "equivalent (1):" in explained.output
    assert REASON in explained.output

    unexplained = tmp_path / "bare.toml"
    unexplained.write_text(f'"{unseen}" = ""\n', encoding="utf-8")
    refused = _mutate(*args, "--equivalent", str(unexplained))
    assert refused.exit_code == 2
    assert "only with its reason" in refused.output


@pytest.mark.parametrize("flow", BUILTIN_FLOWS)
def test_every_built_in_flow_kills_every_mutant(flow: str) -> None:
    """Issue 11's bar: every mutant of every built-in flow is killed by its shipped approved
    paths, or declared equivalent in its scenario with the reason."""
    result = _mutate(flow, "--min-score", "100")
    assert result.exit_code == 0, result.output
    assert "survived 0," in result.output


def test_command_faults() -> None:
    assert _mutate("invitation.yaml").exit_code == 2  # a user's flow needs its scenario
    assert "a kind is one of" in _mutate(FLOW, "--only", "nonsense").output
    missing = _mutate(FLOW, "--approved", "/nonexistent/approved.json")
    assert missing.exit_code == 2
    assert "regflow paths unlink_login --approve" in missing.output


def test_a_users_flow(tmp_path: Path) -> None:
    """The invitation example: approve, then mutate, from the docs' commands."""
    definition, scenario = EXAMPLES / "invitation.yaml", EXAMPLES / "invitation_scenario.yaml"
    file = tmp_path / "invitation.approved.json"
    approve = CliRunner().invoke(main, ["paths", str(definition), "--scenario", str(scenario),
                                        "--approve", "--approved", str(file)])
    assert approve.exit_code == 0, approve.output
    result = _mutate(str(definition), "--scenario", str(scenario), "--approved", str(file), "--json",
                     "--only", "retarget:invited.decline,registry:guard-true:terms_accepted")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    # decline → each of the 6 other states (invited, accepted, lapsed and the standard finals)
    # and the registry mutant
    assert report["flow"] == "invitation"
    assert report["killed"] == report["mutants"] == 6 + 1
