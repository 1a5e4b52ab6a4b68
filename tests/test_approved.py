"""Approved paths are the oracle (SPEC 3, issue 11): ``regflow paths FLOW --check`` replays the
approved file shipped with the package and fails on any change of behaviour — each change of
the issue's table, made to the running code, is caught by the check alone; so is any change
of a duration or a number in a definition file — and passes on the unchanged checkout.
"""

from __future__ import annotations

import importlib
import importlib.resources
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from regflow import machines
from regflow.cli import main
from regflow.machines import BUILTIN_FLOWS
from regflow.rules import codes
from regflow.runtime import steps
from regflow.testing import approval

registration = importlib.import_module("regflow.machines.registration")  # the module, not its Registry
MACHINES = Path(registration.__file__).parent


def _check(flow: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["paths", flow, "--check", *args])
    return result.exit_code, result.output


@pytest.mark.parametrize("flow", BUILTIN_FLOWS)
def test_the_unchanged_checkout_is_as_approved(flow: str) -> None:
    """Every built-in flow replays its shipped approved paths without a difference."""
    code, output = _check(flow)
    assert code == 0, output
    assert "behaviour as approved" in output


@pytest.mark.parametrize("flow", BUILTIN_FLOWS)
def test_the_approved_file_is_what_approve_writes(flow: str, tmp_path: Path) -> None:
    """``--approve`` on the unchanged checkout writes the shipped file byte for byte (the
    shipped file is current, and approval is deterministic)."""
    target = tmp_path / f"{flow}.json"
    result = CliRunner().invoke(main, ["paths", flow, "--approve", "--approved", str(target)])
    assert result.exit_code == 0, result.output
    assert target.read_text(encoding="utf-8") == approval.builtin_approved(flow).read_text(encoding="utf-8")


# ---- the four changes of the table ------------------------------------------------------

@pytest.mark.parametrize(("flow", "mutation"), [
    ("registration", "first_registrant_not_admin"),
    ("registration", "codes_expire_a_second_early"),
    ("password_reset", "codes_expire_a_second_early"),
    ("sign_in", "codes_expire_a_second_early"),
    ("registration", "seat_not_checked"),
    ("registration", "timers_sixty_seconds_late"),
    ("sign_in", "timers_sixty_seconds_late"),
    ("password_reset", "timers_sixty_seconds_late"),
])
def test_each_change_of_the_table_fails_the_check(flow: str, mutation: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The changes that ``regflow paths --check`` let through before approved paths, made to the
    running code: the check alone now fails, naming a path, a step and what differs, and the
    command that re-approves."""
    if mutation == "first_registrant_not_admin":
        actions = dict(registration.registration.actions)
        original = actions["create_login"]

        def create_login(ctx: Any) -> None:
            count = ctx.tx.logins.count
            ctx.tx.logins.count = lambda customer_id: count(customer_id) + 1  # never the first
            try:
                original(ctx)
            finally:
                ctx.tx.logins.count = count

        monkeypatch.setitem(registration.registration.actions, "create_login", create_login)
    elif mutation == "codes_expire_a_second_early":
        original_check = codes.check

        def check(ctx: Any, purpose: str, email_key: str, typed: str, max_tries: int) -> Any:
            saved = ctx.now
            ctx.now = saved + timedelta(seconds=1)
            try:
                return original_check(ctx, purpose, email_key, typed, max_tries)
            finally:
                ctx.now = saved

        monkeypatch.setattr(codes, "check", check)
    elif mutation == "seat_not_checked":
        def contract_matches(ctx: Any) -> bool:
            customer = registration._typed_customer(ctx)
            return customer is not None and (
                registration.tel_digits(customer.phone).lstrip("+") == ctx.input["tel"])

        monkeypatch.setitem(registration.registration.guards, "contract_matches", contract_matches)
    else:
        original_enter = steps.enter

        def enter(compiled: Any, ctx: Any, target: str) -> None:
            original_enter(compiled, ctx, target)
            ctx.flow.timers = [(event, at + timedelta(seconds=60)) for event, at in ctx.flow.timers]

        monkeypatch.setattr(steps, "enter", enter)
    code, output = _check(flow)
    assert code == 1, output
    assert re.search(rf"{flow}-\d\d (start|step \d+ \(.+\)): \w+: ", output), output
    assert f"regflow paths {flow} --approve" in output


# ---- any change of a duration or a number in a definition file ---------------------------------

def _numbers(flow: str) -> list[tuple[str, str, str]]:
    """(setting, as written, changed by one unit) for each duration and count of a flow's file."""
    text = (MACHINES / f"{flow}.toml").read_text(encoding="utf-8")
    section = text.split("[settings]", 1)[1].split("\n[", 1)[0]
    found = []
    for name, value in re.findall(r'^(\w+) = ("?[0-9]+[smhd]?"?)', section, re.M):
        number = int(re.sub(r"\D", "", value))
        for delta in (-1, 1):
            if number + delta >= 1:
                found.append((name, value, value.replace(str(number), str(number + delta), 1)))
    return found


CHANGES = [(flow, *change) for flow in BUILTIN_FLOWS for change in _numbers(flow)]


class _Files:
    """``importlib.resources`` for regflow.machines, with one definition file's text replaced."""

    def __init__(self, name: str, text: str) -> None:
        self.name, self.text = name, text

    def files(self, package: str) -> Any:
        real = importlib.resources.files(package)
        replaced = self

        class Folder:
            def joinpath(self, *parts: str) -> Any:
                if parts == (replaced.name,):
                    return _Text(replaced.text)
                return real.joinpath(*parts)

        return Folder()


class _Text:
    def __init__(self, text: str) -> None:
        self.text = text

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.text


@pytest.mark.parametrize(("flow", "setting", "written", "mutated"), CHANGES,
                         ids=[f"{f}-{s}-{m}" for f, s, _, m in CHANGES])
def test_a_changed_number_in_a_definition_file_fails_the_check(
        flow: str, setting: str, written: str, mutated: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The built-in definition file with one setting one unit off (as an edit of the file would
    leave it): ``regflow paths FLOW --check`` against the shipped approved paths fails."""
    text = (MACHINES / f"{flow}.toml").read_text(encoding="utf-8")
    changed = re.sub(rf"^{setting} = {re.escape(written)}", f"{setting} = {mutated}", text,
                     count=1, flags=re.M)
    assert changed != text
    monkeypatch.setattr(machines, "resources", _Files(f"{flow}.toml", changed))
    code, output = _check(flow)
    assert code == 1, f"{setting} {written} -> {mutated} passed the check:\n{output}"
