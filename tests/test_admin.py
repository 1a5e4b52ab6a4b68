"""Administration (SPEC 2.4, 4.1a, 4.1b) on memory, SQLite and PostgreSQL: the admin's list of
logins, the five admin flows end to end, who may start and drive them, and what they do to
sessions, pending codes and seats. Every admin step is journaled with the acting login's id, and
every test ends with I4 checked over the store (exactly one admin per customer with logins).

Time is frozen at 2026-03-02 09:00:00 UTC; logins are ready 10 minutes after registration.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import attrs
import pytest
from flows import (
    CUSTOMER_ID,
    PASSWORD,
    action_events,
    details,
    field_names,
    last_code,
    message_ids,
    register,
    to_details,
)
from freezegun.api import FrozenDateTimeFactory

import regflow
from regflow.definitions.validation import email_key
from regflow.ground.exceptions import NotSignedIn
from regflow.ground.records import Login
from regflow.ground.screens import Snapshot

SECOND = timedelta(seconds=1)
PROVISIONING = timedelta(minutes=10)
SESSION_TTL = timedelta(hours=12)

TARO = "taro@example.jp"  # the first registrant of 281234: its admin
HANA = "hana@example.jp"
JIRO = "jiro@example.jp"
SABURO = "saburo@example.jp"
KEN = "ken@other.example"  # the admin of another customer

OTHER: dict[str, Any] = {
    "customer_id": "285555", "phone": "06-5555-0000", "licenses": 2,
    "accounts": ["wxyz5-01", "wxyz5-02"],
}
LIST_FIELDS = {"id", "email", "display_name", "account", "role", "ready", "two_factor"}
TARGETED = ("unlink_login", "delete_login", "transfer_admin")
GARBAGE_TOKENS = ("", "garbage", "x" * 300, "a.b", "Zm9v.YmFy")


# ---- helpers -----------------------------------------------------------------------------------


def all_logins(engine: regflow.Engine) -> dict[str, Login]:
    """Every login of the store, by e-mail key."""
    with engine.store.transaction() as tx:
        return {login.email_key: login for customer in tx.contracts.customers()
                for login in tx.logins.of_customer(customer.customer_id)}


def login_of(engine: regflow.Engine, email: str) -> Login:
    """The login of an address (which must exist)."""
    found = all_logins(engine).get(email_key(email))
    assert found is not None, f"no login for {email}"
    return found


def has_login(engine: regflow.Engine, email: str) -> bool:
    """Whether the address has a login."""
    return email_key(email) in all_logins(engine)


def enroll(engine: regflow.Engine, account: str, email: str, **contract: str) -> str:
    """Register a login (accepted, provisioning); its id."""
    snap = register(engine, account, email, **contract)
    assert snap.state == "provisioning", message_ids(snap)
    return login_of(engine, email).id


def enroll_other(engine: regflow.Engine, account: str, email: str) -> str:
    """Register a login of the other customer (added on first use); its id."""
    with engine.store.transaction() as tx:
        known = tx.contracts.customer(OTHER["customer_id"]) is not None
    if not known:
        engine.contracts.add(**OTHER)
    return enroll(engine, account, email, customer_id=OTHER["customer_id"], tel=OTHER["phone"])


def sign_in_flow(engine: regflow.Engine, account: str, email: str) -> Snapshot:
    """Start a sign-in on ``account`` and submit the credentials."""
    snap = engine.start("sign_in", {"account": account})
    return engine.send(snap, "submit", {"email": email, "password": PASSWORD})


def sign_in(engine: regflow.Engine, account: str, email: str) -> str:
    """Sign in all the way (second factor and link prompt as asked); the session token."""
    snap = sign_in_flow(engine, account, email)
    if snap.state == "second_factor":
        snap = engine.send(snap, "submit", {"code": last_code(engine)})
    if snap.state == "link_prompt":
        snap = engine.send(snap, "submit")
    assert snap.state == "signed_in", (snap.state, message_ids(snap))
    assert snap.session
    return snap.session


def admin_flow(engine: regflow.Engine, flow: str, session: str | None, target: str | None = None,
               data: dict[str, Any] | None = None) -> Snapshot:
    """Start an admin flow (with ``target`` if given) and submit its confirm screen."""
    snap = engine.start(flow, {"target": target} if target is not None else {}, session=session)
    assert snap.state == "confirm"
    return engine.send(snap, "submit", data, session=session)


def assert_journaled(engine: regflow.Engine, flow_id: str, actor: str, *events: str) -> None:
    """Every step of the flow is journaled with ``actor``, in this order of events."""
    history = engine.history(flow_id)
    assert [entry.event for entry in history] == list(events)
    assert {entry.actor for entry in history} == {actor}


def assert_one_admin_per_customer(engine: regflow.Engine) -> None:
    """I4 over the store: every customer with logins has exactly one admin."""
    with engine.store.transaction() as tx:
        for customer in tx.contracts.customers():
            roles = [login.role for login in tx.logins.of_customer(customer.customer_id)]
            if roles:
                assert roles.count("admin") == 1, (customer.customer_id, roles)
                assert set(roles) <= {"admin", "member"}


@attrs.define
class Team:
    """Customer 281234 with its admin taro and member hana, plus ken, the admin of 285555."""

    taro: str  # login ids
    hana: str
    ken: str
    taro_token: str  # their sessions
    hana_token: str
    ken_token: str


def team(engine: regflow.Engine, frozen: FrozenDateTimeFactory) -> Team:
    """Register taro (abcd8-01), hana (abcd8-02) and ken (wxyz5-01), wait until ready, sign in."""
    taro = enroll(engine, "abcd8-01", TARO)
    hana = enroll(engine, "abcd8-02", HANA)
    ken = enroll_other(engine, "wxyz5-01", KEN)
    frozen.tick(PROVISIONING)
    return Team(taro=taro, hana=hana, ken=ken, taro_token=sign_in(engine, "abcd8-01", TARO),
                hana_token=sign_in(engine, "abcd8-02", HANA),
                ken_token=sign_in(engine, "wxyz5-01", KEN))


@pytest.fixture(autouse=True)
def _one_admin_per_customer(engine: regflow.Engine) -> Iterator[None]:
    """I4 holds over the store after every test."""
    yield
    assert_one_admin_per_customer(engine)


# ---- the list ----------------------------------------------------------------------------------


def test_admin_logins_lists_the_customers_logins(engine: regflow.Engine,
                                                 frozen: FrozenDateTimeFactory) -> None:
    """The admin's list: every login of its own customer with the fields of SPEC 4.1b."""
    t = team(engine, frozen)
    jiro = enroll(engine, "abcd8-03", JIRO)
    rows = engine.admin_logins(t.taro_token)
    assert all(set(row) >= LIST_FIELDS for row in rows)
    by_email = {row["email"]: row for row in rows}
    assert set(by_email) == {TARO, HANA, JIRO}  # not ken: another customer's
    expected = {
        TARO: {"id": t.taro, "display_name": "山田 太郎", "account": "abcd8-01", "role": "admin",
               "ready": True, "two_factor": False},
        HANA: {"id": t.hana, "display_name": "山田 太郎", "account": "abcd8-02", "role": "member",
               "ready": True, "two_factor": False},
        JIRO: {"id": jiro, "display_name": "山田 太郎", "account": None, "role": "member",
               "ready": False, "two_factor": False},
    }
    for address, fields in expected.items():
        assert {k: by_email[address][k] for k in fields} == fields, address
    frozen.tick(PROVISIONING - SECOND)
    assert {r["email"]: r["ready"] for r in engine.admin_logins(t.taro_token)}[JIRO] is False
    frozen.tick(SECOND)
    assert {r["email"]: r["ready"] for r in engine.admin_logins(t.taro_token)}[JIRO] is True
    assert [r["email"] for r in engine.admin_logins(t.ken_token)] == [KEN]


def test_admin_logins_is_only_for_a_live_admin_session(engine: regflow.Engine,
                                                       frozen: FrozenDateTimeFactory) -> None:
    """A member's token (Forbidden), no token, garbage, an expired or ended session (NotSignedIn,
    itself a Forbidden)."""
    t = team(engine, frozen)
    with pytest.raises(regflow.Forbidden) as refused:
        engine.admin_logins(t.hana_token)
    assert not isinstance(refused.value, NotSignedIn)  # signed in, but not the admin: 403
    for token in (None, *GARBAGE_TOKENS, t.taro_token + "x", t.taro_token[:-1]):
        with pytest.raises(NotSignedIn):  # a Forbidden (401)
            engine.admin_logins(token)  # type: ignore[arg-type]
    frozen.tick(SESSION_TTL - 2 * SECOND)  # both sessions were opened at T0 + 10 min
    assert len(engine.admin_logins(t.taro_token)) == 2
    frozen.tick(2 * SECOND)
    with pytest.raises(NotSignedIn):
        engine.admin_logins(t.taro_token)
    fresh = sign_in(engine, "abcd8-01", TARO)
    assert len(engine.admin_logins(fresh)) == 2
    assert engine.end_session(fresh) is True
    with pytest.raises(NotSignedIn):
        engine.admin_logins(fresh)


# ---- who may start and drive admin flows -------------------------------------------------------


@pytest.mark.parametrize("flow", TARGETED)
def test_targeted_flows_need_the_admin_of_the_targets_customer(
        engine: regflow.Engine, frozen: FrozenDateTimeFactory, flow: str) -> None:
    """Only the admin of the target's own customer may start unlink/delete/transfer."""
    t = team(engine, frozen)
    refused: list[tuple[str | None, str]] = [
        (t.ken_token, t.hana),  # another customer's admin
        (t.hana_token, t.taro),  # a member
        (t.hana_token, t.hana),
        (None, t.hana),  # no session
        ("garbage", t.hana),
        (t.taro_token, t.ken),  # a login of another customer
        (t.taro_token, "no-such-login"),
    ]
    for token, target in refused:
        with pytest.raises(regflow.Forbidden):
            engine.start(flow, {"target": target}, session=token)
    snap = engine.start(flow, {"target": t.hana}, session=t.taro_token)
    assert (snap.state, action_events(snap)) == ("confirm", ["submit", "cancel"])
    snap = engine.send(snap, "cancel", session=t.taro_token)
    assert (snap.state, snap.status) == ("cancelled", "cancelled")
    assert_journaled(engine, snap.id, t.taro, "start", "cancel")
    hana = login_of(engine, HANA)
    assert (hana.role, hana.account) == ("member", "abcd8-02")


def test_policy_flows_need_the_right_session(engine: regflow.Engine,
                                             frozen: FrozenDateTimeFactory) -> None:
    """require_two_factor: an admin's session only; set_two_factor: any signed-in login's own."""
    t = team(engine, frozen)
    for token in (t.hana_token, None, *GARBAGE_TOKENS):
        with pytest.raises(regflow.Forbidden):
            engine.start("require_two_factor", session=token)
    for token in (None, *GARBAGE_TOKENS):
        with pytest.raises(regflow.Forbidden):
            engine.start("set_two_factor", session=token)
    for token in (t.taro_token, t.hana_token, t.ken_token):
        snap = engine.start("set_two_factor", session=token)
        assert (snap.state, field_names(snap)) == ("confirm", ["enabled"])
    snap = engine.start("require_two_factor", session=t.taro_token)
    assert (snap.state, field_names(snap)) == ("confirm", ["enabled"])


def test_send_with_another_logins_session_is_forbidden(engine: regflow.Engine,
                                                       frozen: FrozenDateTimeFactory) -> None:
    """Events of an admin flow need the session of the login that started it."""
    t = team(engine, frozen)
    delete = engine.start("delete_login", {"target": t.hana}, session=t.taro_token)
    own = engine.start("set_two_factor", session=t.hana_token)
    for token in (t.hana_token, t.ken_token, None, *GARBAGE_TOKENS):
        with pytest.raises(regflow.Forbidden):
            engine.send(delete, "submit", session=token)
    for token in (t.taro_token, t.ken_token, None):
        with pytest.raises(regflow.Forbidden):
            engine.send(own, "submit", {"enabled": True}, session=token)
    assert engine.get(delete).state == "confirm"
    assert engine.get(own).state == "confirm"
    assert has_login(engine, HANA)
    assert login_of(engine, HANA).two_factor is False
    assert engine.send(delete, "submit", session=t.taro_token).state == "done"
    assert_journaled(engine, delete.id, t.taro, "start", "submit")


@pytest.mark.parametrize("flow", TARGETED)
def test_admin_cannot_act_on_itself(engine: regflow.Engine, frozen: FrozenDateTimeFactory,
                                    flow: str) -> None:
    """Unlinking, deleting or transferring to oneself: cannot_act_on_self, nothing changes."""
    t = team(engine, frozen)
    snap = admin_flow(engine, flow, t.taro_token, t.taro)
    assert (snap.state, snap.status, message_ids(snap)) == ("confirm", "active", ["cannot_act_on_self"])
    taro = login_of(engine, TARO)
    assert (taro.role, taro.account) == ("admin", "abcd8-01")
    assert len(engine.admin_logins(t.taro_token)) == 2
    assert_journaled(engine, snap.id, t.taro, "start", "submit")
    assert engine.history(snap.id)[-1].outcome == "cannot_act_on_self"


# ---- unlink ------------------------------------------------------------------------------------


def test_unlink_ends_sessions_and_frees_the_seat(engine: regflow.Engine,
                                                 frozen: FrozenDateTimeFactory) -> None:
    """Unlink: the login stays (unlinked), its sessions die, another login may take the seat."""
    t = team(engine, frozen)
    jiro = enroll(engine, "abcd8-03", JIRO)
    frozen.tick(PROVISIONING)
    waiting = sign_in_flow(engine, "abcd8-02", JIRO)
    assert waiting.state == "link_prompt"
    waiting = engine.send(waiting, "submit")
    assert (waiting.state, message_ids(waiting)) == ("link_prompt", ["account_taken"])

    snap = admin_flow(engine, "unlink_login", t.taro_token, t.hana)
    assert (snap.state, snap.status) == ("done", "completed")
    assert_journaled(engine, snap.id, t.taro, "start", "submit")
    with pytest.raises(regflow.Forbidden):
        engine.start("set_two_factor", session=t.hana_token)
    hana = login_of(engine, HANA)
    assert (hana.id, hana.role, hana.account) == (t.hana, "member", None)
    assert {r["email"]: r["account"] for r in engine.admin_logins(t.taro_token)} == {
        TARO: "abcd8-01", HANA: None, JIRO: None}

    waiting = engine.send(waiting, "submit")
    assert waiting.state == "signed_in"
    assert login_of(engine, JIRO).account == "abcd8-02"
    assert login_of(engine, JIRO).id == jiro
    assert sign_in(engine, "abcd8-03", HANA)  # hana links again, to the free seat
    assert login_of(engine, HANA).account == "abcd8-03"


# ---- delete ------------------------------------------------------------------------------------


def test_delete_frees_a_seat_and_kills_sessions(engine: regflow.Engine,
                                                frozen: FrozenDateTimeFactory) -> None:
    """Delete: a 4th registrant gets the freed seat; the deleted login's sessions die at once."""
    t = team(engine, frozen)
    enroll(engine, "abcd8-03", JIRO)
    fourth = to_details(engine, SABURO, "abcd8-03")
    fourth = engine.send(fourth, "submit", details())
    assert (fourth.state, message_ids(fourth)) == ("details", ["license_full"])
    pending = engine.start("set_two_factor", session=t.hana_token)  # started before the delete

    snap = admin_flow(engine, "delete_login", t.taro_token, t.hana)
    assert (snap.state, snap.status) == ("done", "completed")
    assert_journaled(engine, snap.id, t.taro, "start", "submit")
    assert not has_login(engine, HANA)
    assert [r["email"] for r in engine.admin_logins(t.taro_token)] == [TARO, JIRO]
    with pytest.raises(regflow.Forbidden):
        engine.admin_logins(t.hana_token)
    with pytest.raises(regflow.Forbidden):
        engine.start("set_two_factor", session=t.hana_token)
    with pytest.raises(regflow.Forbidden):
        engine.send(pending, "submit", {"enabled": True}, session=t.hana_token)

    fourth = engine.send(fourth, "submit", details())
    assert fourth.state == "provisioning", message_ids(fourth)
    assert sorted(r["email"] for r in engine.admin_logins(t.taro_token)) == [JIRO, SABURO, TARO]


def test_delete_kills_pending_codes(engine: regflow.Engine, frozen: FrozenDateTimeFactory) -> None:
    """A sign-in 2FA code and a reset code issued before the delete never work, even for a new
    login of the same address registered afterwards."""
    t = team(engine, frozen)
    own = admin_flow(engine, "set_two_factor", t.hana_token, data={"enabled": True})
    assert own.state == "done"
    second = sign_in_flow(engine, "abcd8-02", HANA)
    assert second.state == "second_factor"
    sign_in_code = last_code(engine)
    reset = engine.start("password_reset")
    reset = engine.send(reset, "submit", {"email": HANA})
    assert reset.state == "enter_code"
    reset_code = last_code(engine)

    assert admin_flow(engine, "delete_login", t.taro_token, t.hana).state == "done"
    again = enroll(engine, "abcd8-02", HANA)  # the address registers again: a new login
    assert again != t.hana
    frozen.tick(PROVISIONING)

    second = engine.send(second, "submit", {"code": sign_in_code})
    assert second.state != "signed_in"
    assert second.session is None
    reset = engine.send(reset, "submit", {"code": reset_code})
    assert (reset.state, message_ids(reset)) == ("enter_code", ["code_void"])
    assert login_of(engine, HANA).id == again
    assert sign_in(engine, "abcd8-02", HANA)  # the new login signs in (no 2FA: a fresh login)


def test_email_change_is_delete_then_register_again(engine: regflow.Engine,
                                                    frozen: FrozenDateTimeFactory) -> None:
    """FAQ 11: delete the login, register the new address; the old address may come back fresh."""
    t = team(engine, frozen)
    assert admin_flow(engine, "delete_login", t.taro_token, t.hana).state == "done"
    new_address = "hana.new@example.jp"
    renamed = enroll(engine, "abcd8-02", new_address)
    returned = enroll(engine, "abcd8-03", HANA)
    assert len({t.hana, renamed, returned}) == 3
    assert {login_of(engine, a).role for a in (new_address, HANA)} == {"member"}
    frozen.tick(PROVISIONING)
    assert sign_in(engine, "abcd8-02", new_address)  # the seat hana held is free to link
    assert login_of(engine, new_address).account == "abcd8-02"
    rows = {r["email"]: r for r in engine.admin_logins(t.taro_token)}
    assert set(rows) == {TARO, new_address, HANA}
    assert rows[HANA]["id"] == returned
    assert rows[HANA]["account"] is None


# ---- transfer ----------------------------------------------------------------------------------


def test_transfer_admin_only_to_a_ready_login(engine: regflow.Engine,
                                              frozen: FrozenDateTimeFactory) -> None:
    """target_not_ready until ready_at; then the target is admin and the old admin a member."""
    taro = enroll(engine, "abcd8-01", TARO)
    frozen.tick(PROVISIONING)
    taro_token = sign_in(engine, "abcd8-01", TARO)
    hana = enroll(engine, "abcd8-02", HANA)
    snap = engine.start("transfer_admin", {"target": hana}, session=taro_token)
    frozen.tick(PROVISIONING - SECOND)
    snap = engine.send(snap, "submit", session=taro_token)
    assert (snap.state, message_ids(snap)) == ("confirm", ["target_not_ready"])
    assert login_of(engine, HANA).role == "member"
    frozen.tick(SECOND)
    snap = engine.send(snap, "submit", session=taro_token)
    assert (snap.state, snap.status) == ("done", "completed")
    assert_journaled(engine, snap.id, taro, "start", "submit", "submit")
    assert (login_of(engine, TARO).role, login_of(engine, HANA).role) == ("member", "admin")
    assert_one_admin_per_customer(engine)

    with pytest.raises(regflow.Forbidden):
        engine.admin_logins(taro_token)
    with pytest.raises(regflow.Forbidden):
        engine.start("delete_login", {"target": hana}, session=taro_token)
    assert engine.start("set_two_factor", session=taro_token).state == "confirm"  # still signed in
    hana_token = sign_in(engine, "abcd8-02", HANA)
    assert {r["email"]: r["role"] for r in engine.admin_logins(hana_token)} == {
        TARO: "member", HANA: "admin"}
    gone = admin_flow(engine, "delete_login", hana_token, taro)  # "transfer first", then delete
    assert gone.state == "done"
    assert_journaled(engine, gone.id, hana, "start", "submit")
    assert [r["email"] for r in engine.admin_logins(hana_token)] == [HANA]


def test_admin_flow_started_before_a_transfer_is_refused(engine: regflow.Engine,
                                                         frozen: FrozenDateTimeFactory) -> None:
    """A flow the old admin started before transferring cannot be finished by it afterwards."""
    t = team(engine, frozen)
    jiro = enroll(engine, "abcd8-03", JIRO)
    pending = engine.start("delete_login", {"target": jiro}, session=t.taro_token)
    assert admin_flow(engine, "transfer_admin", t.taro_token, t.hana).state == "done"
    with pytest.raises(regflow.Forbidden):
        engine.send(pending, "submit", session=t.taro_token)
    assert has_login(engine, JIRO)
    assert engine.get(pending).state == "confirm"


# ---- second factor -----------------------------------------------------------------------------


def test_require_two_factor_for_the_customer(engine: regflow.Engine,
                                             frozen: FrozenDateTimeFactory) -> None:
    """The admin's policy: every login of its customer (only) signs in with a code, until off."""
    t = team(engine, frozen)
    snap = admin_flow(engine, "require_two_factor", t.taro_token, data={"enabled": True})
    assert (snap.state, snap.status) == ("done", "completed")
    assert_journaled(engine, snap.id, t.taro, "start", "submit")
    assert sign_in_flow(engine, "abcd8-02", HANA).state == "second_factor"
    assert sign_in_flow(engine, "abcd8-01", TARO).state == "second_factor"
    assert sign_in(engine, "abcd8-02", HANA)
    assert sign_in_flow(engine, "wxyz5-01", KEN).state == "signed_in"  # another customer
    snap = admin_flow(engine, "require_two_factor", t.taro_token, data={"enabled": False})
    assert snap.state == "done"
    assert sign_in_flow(engine, "abcd8-02", HANA).state == "signed_in"


def test_set_two_factor_for_oneself(engine: regflow.Engine, frozen: FrozenDateTimeFactory) -> None:
    """Any signed-in login turns its own second factor on or off; the list shows it."""
    t = team(engine, frozen)
    snap = admin_flow(engine, "set_two_factor", t.hana_token, data={"enabled": True})
    assert (snap.state, snap.status) == ("done", "completed")
    assert_journaled(engine, snap.id, t.hana, "start", "submit")
    assert {r["email"]: r["two_factor"] for r in engine.admin_logins(t.taro_token)} == {
        TARO: False, HANA: True}
    assert sign_in_flow(engine, "abcd8-02", HANA).state == "second_factor"
    assert sign_in_flow(engine, "abcd8-01", TARO).state == "signed_in"
    assert admin_flow(engine, "set_two_factor", t.hana_token, data={"enabled": False}).state == "done"
    assert sign_in_flow(engine, "abcd8-02", HANA).state == "signed_in"


def test_every_admin_step_is_journaled_with_the_admin(engine: regflow.Engine,
                                                      frozen: FrozenDateTimeFactory) -> None:
    """Each admin flow's journal: start and submit, actor = the admin's login id, outcome ok."""
    t = team(engine, frozen)
    jiro = enroll(engine, "abcd8-03", JIRO)
    frozen.tick(PROVISIONING)
    runs = [
        admin_flow(engine, "require_two_factor", t.taro_token, data={"enabled": False}),
        admin_flow(engine, "unlink_login", t.taro_token, t.hana),
        admin_flow(engine, "delete_login", t.taro_token, t.hana),
        admin_flow(engine, "transfer_admin", t.taro_token, jiro),
    ]
    for snap in runs:
        assert snap.state == "done", (snap.flow, message_ids(snap))
        history = engine.history(snap.id)
        assert [(e.from_state, e.to_state, e.event, e.actor, e.outcome) for e in history] == [
            ("", "confirm", "start", t.taro, "ok"), ("confirm", "done", "submit", t.taro, "ok")]
    assert login_of(engine, JIRO).role == "admin"
    assert login_of(engine, JIRO).customer_id == CUSTOMER_ID
