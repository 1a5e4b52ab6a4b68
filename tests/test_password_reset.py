"""The password reset flow (SPEC 2.3, 4.1a, 5) on memory, SQLite and PostgreSQL.

e-mail → 8-digit code (30 minutes, 5 tries, resend ≥ 60 s apart) → new password (the policy
of 2.1.4) → done, every session of the login ended. An unregistered address gets the same
screens and texts, but no mail and no code that works. Time is frozen at 2026-03-02 09:00 UTC.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flows import (
    PASSWORD,
    EngineFactory,
    action_events,
    field_errors,
    field_names,
    last_code,
    login_of,
    mail_count,
    message,
    message_ids,
    newest_mail,
    plain_body,
    ready,
    session_of,
    wrong_code,
)
from freezegun.api import FrozenDateTimeFactory

import regflow
import regflow.rules.codes
from regflow.definitions.validation import email_key
from regflow.ground.exceptions import RateLimited
from regflow.ground.screens import Snapshot
from regflow.runtime import limits
from regflow.runtime.limits import Limits, Rate

SECOND = timedelta(seconds=1)
MINUTE = timedelta(minutes=1)
CODE_TTL = 30 * MINUTE
RESEND = 60 * SECOND
NEW_PASSWORD = "Tsuki-no-shita-8"  # meets the policy
TARO = "taro@example.jp"
HANAKO = "hanako@example.jp"
NOBODY = "nobody@example.jp"
RESET_SUBJECT = "regflow パスワード再設定コード"

ENTER_EMAIL_ACTIONS = ["submit", "cancel"]
ENTER_CODE_ACTIONS = ["submit", "resend_code", "cancel"]
NEW_PASSWORD_FIELDS = ["password", "password_confirm"]
CODE_MAILS = 5  # code mails per address across flows in any 15 minutes (SPEC 5, engine Limits)
CODE_MAIL_WINDOW = 15 * MINUTE
WRONG_CODES = 10  # wrong codes per address across flows in any hour (engine Limits)
WRONG_CODE_WINDOW = 60 * MINUTE
# The address's code mails across flows raised from 5 to 20 per 15 min, for the tests of the
# per-flow rule (at most 10 sends per flow), which the default limit would cut short at 5:
# only the flow's own rule can then refuse a send.
PER_FLOW_SENDS = Limits(code_mails=(Rate(20, 15 * 60), Rate(40, 24 * 3600)))


# ---- helpers ---------------------------------------------------------------------------------

def sign_in(engine: regflow.Engine, account: str, email: str, password: str = PASSWORD) -> Snapshot:
    """Start a sign-in and submit the credentials (OK at the link prompt); the last snapshot."""
    snap = engine.start("sign_in", {"account": account})
    snap = engine.send(snap, "submit", {"email": email, "password": password})
    if snap.state == "link_prompt":
        snap = engine.send(snap, "submit")
    return snap


def token_of(engine: regflow.Engine, account: str, email: str) -> str:
    """A fresh session token of a ready login."""
    snap = sign_in(engine, account, email)
    assert snap.state == "signed_in", message_ids(snap)
    assert snap.session is not None
    return snap.session


def session_alive(engine: regflow.Engine, token: str) -> bool:
    """Whether the store still has the session of a token."""
    return session_of(engine, token) is not None


def to_code(engine: regflow.Engine, email: str) -> Snapshot:
    """Start a password reset and submit the address: the enter_code screen."""
    snap = engine.start("password_reset")
    snap = engine.send(snap, "submit", {"email": email})
    assert (snap.state, message_ids(snap)) == ("enter_code", []), message_ids(snap)
    return snap


def to_new_password(engine: regflow.Engine, email: str) -> Snapshot:
    """A password reset of a registered address, past its code: the new_password screen."""
    snap = to_code(engine, email)
    snap = engine.send(snap, "submit", {"code": last_code(engine)})
    assert (snap.state, message_ids(snap)) == ("new_password", []), message_ids(snap)
    return snap


def new_password(password: str, confirm: str | None = None) -> dict[str, str]:
    """The new_password form."""
    return {"password": password, "password_confirm": password if confirm is None else confirm}


def neutral(snap: Snapshot, email: str) -> dict[str, Any]:
    """The JSON snapshot without what differs between two flows (ids, the typed address)."""
    data = snap.to_dict()
    del data["id"], data["flow_token"]  # each flow's own
    text = data["screen"]["text"]
    data["screen"]["text"] = text.replace(email, "<email>") if isinstance(text, str) else text
    for field in data["screen"]["fields"]:
        if field["value"] == email:
            field["value"] = "<email>"
    return data


@pytest.fixture
def known_codes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Codes are drawn as 10000001, 10000002, ... and listed, decoys included."""
    numbers = itertools.count(10000001)
    drawn: list[str] = []

    def next_code(digits: int = 8) -> str:
        drawn.append(f"{next(numbers):08d}")
        return drawn[-1]

    monkeypatch.setattr(regflow.rules.codes, "random_code", next_code)
    return drawn


# ---- happy path ------------------------------------------------------------------------------

def test_reset_happy_path(engine: regflow.Engine, frozen: FrozenDateTimeFactory) -> None:
    """enter_email → code mail → new_password → done; the old password is dead, the new one works."""
    ready(engine, frozen, ("abcd8-01", TARO))
    token_of(engine, "abcd8-01", TARO)  # linked
    snap = engine.start("password_reset")
    assert (snap.flow, snap.state, snap.status) == ("password_reset", "enter_email", "active")
    assert field_names(snap) == ["email"]
    assert action_events(snap) == ENTER_EMAIL_ACTIONS
    assert snap.screen.title == "パスワードのリセット"

    mails = mail_count(engine)
    snap = engine.send(snap, "submit", {"email": TARO})
    assert (snap.state, message_ids(snap)) == ("enter_code", [])
    assert field_names(snap) == ["code"]
    assert action_events(snap) == ENTER_CODE_ACTIONS
    assert snap.screen.text == f"{TARO} が登録されている場合、このアドレスにコードを送信しました"
    now = datetime.now(UTC)
    assert [(t.event, t.at) for t in snap.timers] == [("code_timeout", now + CODE_TTL)]
    assert mail_count(engine) == mails + 1
    mail = newest_mail(engine)
    assert (mail["To"], mail["Subject"]) == (TARO, RESET_SUBJECT)
    assert "30 分間" in plain_body(mail)
    code = last_code(engine)

    snap = engine.send(snap, "submit", {"code": code})
    assert (snap.state, message_ids(snap)) == ("new_password", [])
    assert field_names(snap) == NEW_PASSWORD_FIELDS
    assert snap.timers == ()

    snap = engine.send(snap, "submit", new_password(NEW_PASSWORD))
    assert (snap.state, snap.status, message_ids(snap)) == ("done", "completed", [])
    assert snap.session is None
    assert snap.screen.title == "パスワードを変更しました"

    old = sign_in(engine, "abcd8-01", TARO, PASSWORD)
    assert (old.state, message_ids(old)) == ("credentials", ["credentials_invalid"])
    new = sign_in(engine, "abcd8-01", TARO, NEW_PASSWORD)
    assert (new.state, new.status) == ("signed_in", "completed")
    # the code is spent
    with engine.store.transaction() as tx:
        spent = tx.codes.latest(snap.id, "password_reset")
    assert spent is not None
    assert spent.used_at is not None


def test_reset_from_sign_in(engine: regflow.Engine, frozen: FrozenDateTimeFactory) -> None:
    """forgot_password on the sign-in screen leads to a working reset; then sign-in with the new one."""
    ready(engine, frozen, ("abcd8-01", TARO))
    start = engine.start("sign_in", {"account": "abcd8-01"})
    snap = engine.send(start, "forgot_password")
    assert (snap.flow, snap.state) == ("password_reset", "enter_email")
    snap = engine.send(snap, "submit", {"email": TARO})
    snap = engine.send(snap, "submit", {"code": last_code(engine)})
    snap = engine.send(snap, "submit", new_password(NEW_PASSWORD))
    assert snap.state == "done"
    assert sign_in(engine, "abcd8-01", TARO, NEW_PASSWORD).state == "signed_in"


def test_reset_ends_every_session_of_the_login(engine: regflow.Engine,
                                               frozen: FrozenDateTimeFactory) -> None:
    """Every existing session of the login ends (Forbidden); other logins' sessions live on."""
    ready(engine, frozen, ("abcd8-01", TARO), ("abcd8-02", HANAKO))
    taro_1 = token_of(engine, "abcd8-01", TARO)
    taro_2 = token_of(engine, "abcd8-01", TARO)
    hanako = token_of(engine, "abcd8-02", HANAKO)
    assert engine.admin_logins(taro_1)

    snap = to_new_password(engine, TARO)
    assert session_alive(engine, taro_1)  # nothing ends before the new password is set
    assert engine.send(snap, "submit", new_password(NEW_PASSWORD)).state == "done"

    for token in (taro_1, taro_2):
        with pytest.raises(regflow.Forbidden):
            engine.admin_logins(token)
        assert not session_alive(engine, token)
        assert engine.end_session(token) is False
    assert session_alive(engine, hanako)
    assert engine.end_session(hanako) is True
    # a session opened after the reset works
    fresh = sign_in(engine, "abcd8-01", TARO, NEW_PASSWORD).session
    assert fresh is not None
    assert {row["email"] for row in engine.admin_logins(fresh)} == {TARO, HANAKO}


@pytest.mark.parametrize("pending", ["link_prompt", "second_factor"])
def test_reset_stops_sign_ins_in_progress(engine: regflow.Engine, frozen: FrozenDateTimeFactory,
                                          pending: str) -> None:
    """A sign-in that passed the OLD password (at the link prompt or code screen) gets no session
    once the password is reset: a reset must shut out whoever knew the old one."""
    ready(engine, frozen, ("abcd8-01", TARO), ("abcd8-02", HANAKO))
    if pending == "second_factor":
        admin = token_of(engine, "abcd8-01", TARO)
        policy = engine.start("require_two_factor", session=admin)
        assert engine.send(policy, "submit", {"enabled": True}, session=admin).state == "done"
    intruder = engine.start("sign_in", {"account": "abcd8-02"})
    intruder = engine.send(intruder, "submit", {"email": HANAKO, "password": PASSWORD})
    assert intruder.state == pending
    data = {"code": last_code(engine)} if pending == "second_factor" else {}

    frozen.tick(RESEND)
    snap = to_new_password(engine, HANAKO)
    assert engine.send(snap, "submit", new_password(NEW_PASSWORD)).state == "done"

    intruder = engine.send(intruder, "submit", data)
    assert intruder.session is None
    if intruder.state == "link_prompt":  # past the code: OK at the link prompt must fail too
        intruder = engine.send(intruder, "submit")
    assert intruder.session is None
    assert intruder.state != "signed_in"


def test_reset_of_a_member_keeps_the_admin_signed_in(engine: regflow.Engine,
                                                     frozen: FrozenDateTimeFactory) -> None:
    """Resetting a member's password ends the member's sessions, not the admin's."""
    ready(engine, frozen, ("abcd8-01", TARO), ("abcd8-02", HANAKO))
    admin = token_of(engine, "abcd8-01", TARO)
    member = token_of(engine, "abcd8-02", HANAKO)
    snap = to_new_password(engine, HANAKO)
    assert engine.send(snap, "submit", new_password(NEW_PASSWORD)).state == "done"
    assert not session_alive(engine, member)
    assert {row["email"] for row in engine.admin_logins(admin)} == {TARO, HANAKO}


# ---- the password policy ---------------------------------------------------------------------

@pytest.mark.parametrize(("password", "error"), [
    ("Kx7#mPq", "password_length"),                    # 7 code points
    ("x" * 7 + "A1", None),                             # 9: length fine, 3 classes: accepted
    ("alllowercaseletters", "password_classes"),
    ("Taro-Secret-77", "password_contains_email"),     # the address's local part, any case
    ("Pw#281234xyz", "password_contains_customer_id"),  # the customer number
    ("Password1!", "password_common"),
    ("K" * 257 + "x1", "password_length"),
])
def test_new_password_policy(engine: regflow.Engine, frozen: FrozenDateTimeFactory,
                             password: str, error: str | None) -> None:
    """The new password follows SPEC 2.1.4; a refused one keeps the flow at new_password."""
    ready(engine, frozen, ("abcd8-01", TARO))
    snap = to_new_password(engine, TARO)
    snap = engine.send(snap, "submit", new_password(password))
    if error is None:
        assert (snap.state, message_ids(snap)) == ("done", [])
        assert sign_in(engine, "abcd8-01", TARO, password).state == "signed_in"
        return
    assert (snap.state, snap.status) == ("new_password", "active")
    assert field_errors(snap) == {"password": error}
    # nothing changed: the old password still signs in
    assert sign_in(engine, "abcd8-01", TARO, PASSWORD).state == "signed_in"


@pytest.mark.parametrize("smuggled", ["289999", "x"])
def test_policy_customer_number_cannot_be_smuggled(engine: regflow.Engine,
                                                   frozen: FrozenDateTimeFactory, smuggled: str) -> None:
    """An extra ``customer_id`` in the new_password data does not switch off the customer number rule."""
    ready(engine, frozen, ("abcd8-01", TARO))
    snap = to_new_password(engine, TARO)
    snap = engine.send(snap, "submit", {**new_password("Pw#281234xyz"), "customer_id": smuggled})
    assert snap.state == "new_password"
    assert field_errors(snap) == {"password": "password_contains_customer_id"}


def test_new_password_confirmation_must_match(engine: regflow.Engine,
                                              frozen: FrozenDateTimeFactory) -> None:
    """A confirmation that differs is password_mismatch on password_confirm; then a match works."""
    ready(engine, frozen, ("abcd8-01", TARO))
    snap = to_new_password(engine, TARO)
    snap = engine.send(snap, "submit", new_password(NEW_PASSWORD, NEW_PASSWORD + "x"))
    assert snap.state == "new_password"
    assert field_errors(snap) == {"password_confirm": "password_mismatch"}
    snap = engine.send(snap, "submit", {})
    assert snap.state == "new_password"
    assert set(field_errors(snap)) == {"password", "password_confirm"}
    assert engine.send(snap, "submit", new_password(NEW_PASSWORD)).state == "done"


def test_new_password_policy_texts(engine: regflow.Engine, frozen: FrozenDateTimeFactory) -> None:
    """The policy messages name the limits (8–256, 3 classes) in Japanese."""
    ready(engine, frozen, ("abcd8-01", TARO))
    snap = to_new_password(engine, TARO)
    snap = engine.send(snap, "submit", new_password("Ab1#"))
    assert message(snap, "password_length").text == "パスワードは 8 文字以上 256 文字以下で入力してください。"
    snap = engine.send(snap, "submit", new_password("abcdefghijk"))
    assert "3 種類" in message(snap, "password_classes").text


# ---- unknown address: the same screens, no mail, no working code ------------------------------

def test_unknown_address_looks_the_same(engine: regflow.Engine, frozen: FrozenDateTimeFactory) -> None:
    """An unregistered address reaches enter_code with the same screen and texts, and no mail."""
    ready(engine, frozen, ("abcd8-01", TARO))
    mails = mail_count(engine)
    unknown = to_code(engine, NOBODY)
    assert mail_count(engine) == mails
    known = to_code(engine, TARO)
    assert mail_count(engine) == mails + 1
    assert unknown.screen.text == f"{NOBODY} が登録されている場合、このアドレスにコードを送信しました"
    assert neutral(unknown, NOBODY) == neutral(known, TARO)

    # wrong codes, resends: message for message the same, still no mail for the unknown address
    taro_code = last_code(engine)
    for code in ("12345678", wrong_code(taro_code)):
        a = engine.send(unknown, "submit", {"code": code})
        b = engine.send(known, "submit", {"code": wrong_code(taro_code)})
        assert neutral(a, NOBODY) == neutral(b, TARO)
        assert message_ids(a) == ["code_invalid"]
    a, b = engine.send(unknown, "resend_code"), engine.send(known, "resend_code")
    assert message_ids(a) == message_ids(b) == ["resend_too_soon"]
    frozen.tick(RESEND)
    a, b = engine.send(unknown, "resend_code"), engine.send(known, "resend_code")
    assert message_ids(a) == message_ids(b) == ["code_resent"]
    assert neutral(a, NOBODY) == neutral(b, TARO)
    assert mail_count(engine) == mails + 2
    assert all(m["To"] != NOBODY for m in engine.mailer.messages)  # type: ignore[attr-defined]


def test_unknown_address_no_code_works(engine: regflow.Engine, frozen: FrozenDateTimeFactory,
                                       known_codes: list[str]) -> None:
    """For an unregistered address not even the drawn (never mailed) digits open new_password."""
    snap = to_code(engine, NOBODY)
    decoy = known_codes[-1]
    snap = engine.send(snap, "submit", {"code": decoy})
    assert (snap.state, message_ids(snap)) == ("enter_code", ["code_invalid"])
    for _ in range(3):
        snap = engine.send(snap, "submit", {"code": decoy})
    snap = engine.send(snap, "submit", {"code": decoy})
    assert message_ids(snap) == ["code_tries_exhausted"]
    frozen.tick(RESEND)
    snap = engine.send(snap, "resend_code")
    assert message_ids(snap) == ["code_resent"]
    for code in (known_codes[-1], *known_codes):
        snap = engine.send(snap, "submit", {"code": code})
        assert snap.state == "enter_code"
    assert mail_count(engine) == 0


def test_code_of_another_address_does_not_work(engine: regflow.Engine,
                                               frozen: FrozenDateTimeFactory) -> None:
    """A reset code mailed to taro opens nothing in a reset flow for another address (I5)."""
    ready(engine, frozen, ("abcd8-01", TARO), ("abcd8-02", HANAKO))
    to_code(engine, TARO)
    taro_code = last_code(engine)
    other = to_code(engine, NOBODY)
    assert engine.send(other, "submit", {"code": taro_code}).state == "enter_code"
    hanako = to_code(engine, HANAKO)
    assert engine.send(hanako, "submit", {"code": taro_code}).state == "enter_code"
    assert engine.send(hanako, "submit", {"code": last_code(engine)}).state == "new_password"


# ---- limits across flows (SPEC 5): per address, whatever the flow, known or not ---------------

def test_code_mails_across_flows_known_or_not(engine: regflow.Engine,
                                              frozen: FrozenDateTimeFactory) -> None:
    """5 reset mails (or decoys) to one address in any 15 minutes: the 6th reset at 14:59 is
    refused with RateLimited, for a registered address and an unknown one alike (the same
    seconds to wait); at exactly 15:00 after the first it is allowed again."""
    ready(engine, frozen, ("abcd8-01", TARO))
    frozen.tick(CODE_MAIL_WINDOW)  # the registration's code mail to taro is out of the window
    started = datetime.now(UTC)
    for _ in range(CODE_MAILS):
        for email in (TARO, NOBODY):
            to_code(engine, email)
        frozen.tick(MINUTE)
    frozen.move_to(started + CODE_MAIL_WINDOW - SECOND)
    waits = []
    for email in (TARO, NOBODY):
        snap = engine.start("password_reset")
        with pytest.raises(RateLimited) as refused:
            engine.send(snap, "submit", {"email": email})
        waits.append(refused.value.retry_after)
        assert engine.get(snap).state == "enter_email"
    assert waits == [1, 1]
    frozen.move_to(started + CODE_MAIL_WINDOW)
    for email in (TARO, NOBODY):
        to_code(engine, email)


def test_every_flow_counts_against_the_address(engine: regflow.Engine,
                                               frozen: FrozenDateTimeFactory) -> None:
    """Registration codes and reset decoys for one (unregistered) address share its 5 mails
    per 15 minutes: after 3 registrations and 2 resets, the next of either is refused."""
    for account in ("abcd8-01", "abcd8-02", "abcd8-03"):
        snap = engine.start("registration", {"account": account})
        assert engine.send(snap, "submit", {"email": HANAKO}).state == "enter_code"
    to_code(engine, HANAKO)
    to_code(engine, HANAKO)
    with pytest.raises(RateLimited):
        to_code(engine, HANAKO)
    snap = engine.start("registration", {"account": "abcd8-01"})
    with pytest.raises(RateLimited):
        engine.send(snap, "submit", {"email": HANAKO})
    assert mail_count(engine) == 3  # the decoys were never sent


def test_wrong_codes_across_flows_known_or_not(engine: regflow.Engine,
                                               frozen: FrozenDateTimeFactory) -> None:
    """10 wrong codes per address in any hour across reset flows: a third flow gives no fresh
    tries, for an unknown address exactly as for a registered one."""
    ready(engine, frozen, ("abcd8-01", TARO))
    for email in (TARO, NOBODY):
        for _ in range(WRONG_CODES // 5):
            snap = to_code(engine, email)
            for _ in range(5):
                snap = engine.send(snap, "submit", {"code": "12345678"})
            assert message_ids(snap) == ["code_tries_exhausted"]
        snap = to_code(engine, email)
        with pytest.raises(RateLimited) as refused:
            engine.send(snap, "submit", {"code": "12345678"})
        assert refused.value.retry_after == WRONG_CODE_WINDOW.total_seconds()
        assert message_ids(engine.get(snap)) == []


# ---- lockout ---------------------------------------------------------------------------------

def test_reset_lifts_a_lockout(engine: regflow.Engine, frozen: FrozenDateTimeFactory) -> None:
    """A locked login (10 wrong passwords, from this client and from client "a") signs in with
    the new password right after the reset, from either: the reset forgets every client's
    wrong passwords and lockouts for the address."""
    ready(engine, frozen, ("abcd8-01", TARO))
    for client in (None, "a"):
        flow = engine.start("sign_in", {"account": "abcd8-01"}, client=client)
        for _ in range(10):
            flow = engine.send(flow, "submit", {"email": TARO, "password": "Wrong-pass-99"},
                               client=client)
        snap = engine.send(flow, "submit", {"email": TARO, "password": PASSWORD}, client=client)
        assert message_ids(snap) == ["locked_out"]
    assert sign_in_hits(engine, TARO) == (20, 2)

    snap = to_new_password(engine, TARO)
    assert engine.send(snap, "submit", new_password(NEW_PASSWORD)).state == "done"
    assert sign_in_hits(engine, TARO) == (0, 0)
    assert sign_in(engine, "abcd8-01", TARO, NEW_PASSWORD).state == "signed_in"
    snap = engine.start("sign_in", {"account": "abcd8-01"}, client="a")
    snap = engine.send(snap, "submit", {"email": TARO, "password": NEW_PASSWORD}, client="a")
    assert (snap.state, message_ids(snap)) == ("signed_in", [])


def sign_in_hits(engine: regflow.Engine, email: str) -> tuple[int, int]:
    """Wrong passwords and lockouts of the address kept in the store, from every client."""
    subject = limits.address(engine.services.secret, email_key(email))
    since = datetime(2000, 1, 1, tzinfo=UTC)
    with engine.store.transaction() as tx:
        wrong, _ = tx.limits.count(limits.SIGN_IN_FAILURE, subject, None, since)
        locked, _ = tx.limits.count(limits.SIGN_IN_LOCKOUT, subject, None, since)
    return wrong, locked


# ---- the code: 30 minutes, 5 tries, resend ----------------------------------------------------

def test_code_valid_at_last_second(engine: regflow.Engine, frozen: FrozenDateTimeFactory) -> None:
    """At 29:59 after it was mailed the reset code still opens new_password."""
    ready(engine, frozen, ("abcd8-01", TARO))
    snap = to_code(engine, TARO)
    frozen.tick(CODE_TTL - SECOND)
    assert message_ids(engine.get(snap)) == []
    snap = engine.send(snap, "submit", {"code": last_code(engine)})
    assert (snap.state, message_ids(snap)) == ("new_password", [])


def test_code_expired_at_thirty_minutes(engine: regflow.Engine, frozen: FrozenDateTimeFactory) -> None:
    """At 30:00 get shows code_expired (timer), the code is refused; a resend's code works."""
    ready(engine, frozen, ("abcd8-01", TARO))
    snap = to_code(engine, TARO)
    code = last_code(engine)
    mailed_at = datetime.now(UTC)
    frozen.tick(CODE_TTL)
    snap = engine.get(snap)
    assert (snap.state, snap.status, message_ids(snap)) == ("enter_code", "active", ["code_expired"])
    assert snap.timers == ()
    timeout = engine.history(snap.id)[-1]
    assert (timeout.event, timeout.actor, timeout.at) == ("code_timeout", "timer", mailed_at + CODE_TTL)
    snap = engine.send(snap, "submit", {"code": code})
    assert (snap.state, message_ids(snap)) == ("enter_code", ["code_expired"])
    snap = engine.send(snap, "resend_code")
    assert message_ids(snap) == ["code_resent"]
    assert engine.send(snap, "submit", {"code": last_code(engine)}).state == "new_password"


def test_five_wrong_codes_void_it(engine: regflow.Engine, frozen: FrozenDateTimeFactory) -> None:
    """Tries 1–4 say code_invalid (4..1 left), the 5th exhausts, then the right code is void."""
    ready(engine, frozen, ("abcd8-01", TARO))
    snap = to_code(engine, TARO)
    code = last_code(engine)
    for left in (4, 3, 2, 1):
        snap = engine.send(snap, "submit", {"code": wrong_code(code)})
        assert message(snap, "code_invalid").params == {"tries_left": left}
    snap = engine.send(snap, "submit", {"code": wrong_code(code)})
    assert message_ids(snap) == ["code_tries_exhausted"]
    snap = engine.send(snap, "submit", {"code": code})
    assert (snap.state, message_ids(snap)) == ("enter_code", ["code_void"])
    frozen.tick(RESEND)
    assert message_ids(engine.send(snap, "resend_code")) == ["code_resent"]
    assert engine.send(snap, "submit", {"code": last_code(engine)}).state == "new_password"


def test_resend_interval_and_old_code(engine: regflow.Engine, frozen: FrozenDateTimeFactory,
                                      known_codes: list[str]) -> None:
    """Resend at 59 s is refused (1 s left), at 60 s a new code is mailed and the old one is dead."""
    ready(engine, frozen, ("abcd8-01", TARO))
    snap = to_code(engine, TARO)
    old = last_code(engine)
    mails = mail_count(engine)
    frozen.tick(RESEND - SECOND)
    snap = engine.send(snap, "resend_code")
    assert message_ids(snap) == ["resend_too_soon"]
    assert message(snap, "resend_too_soon").params["seconds"] == 1
    assert mail_count(engine) == mails
    frozen.tick(SECOND)
    snap = engine.send(snap, "resend_code")
    assert message_ids(snap) == ["code_resent"]
    assert mail_count(engine) == mails + 1
    assert newest_mail(engine)["Subject"] == RESET_SUBJECT
    new = last_code(engine)
    assert new != old
    assert engine.send(snap, "submit", {"code": old}).state == "enter_code"
    assert engine.send(snap, "submit", {"code": new}).state == "new_password"


def test_at_most_ten_sends(make_engine: EngineFactory, frozen: FrozenDateTimeFactory) -> None:
    """The first code and 9 resends go out; the 11th send is refused with send_limit."""
    engine = make_engine(limits=PER_FLOW_SENDS)  # the per-flow rule, not the one across flows
    ready(engine, frozen, ("abcd8-01", TARO))
    snap = to_code(engine, TARO)
    mails = mail_count(engine)
    for _ in range(9):
        frozen.tick(RESEND)
        assert message_ids(engine.send(snap, "resend_code")) == ["code_resent"]
    frozen.tick(RESEND)
    snap = engine.send(snap, "resend_code")
    assert message_ids(snap) == ["send_limit"]
    assert mail_count(engine) == mails + 9
    assert engine.send(snap, "submit", {"code": last_code(engine)}).state == "new_password"


# ---- cancel, deleted login -------------------------------------------------------------------

@pytest.mark.parametrize("where", ["enter_email", "enter_code", "new_password"])
def test_cancel(engine: regflow.Engine, frozen: FrozenDateTimeFactory, where: str) -> None:
    """cancel on any screen ends the flow cancelled; the password is unchanged."""
    ready(engine, frozen, ("abcd8-01", TARO))
    if where == "enter_email":
        snap = engine.start("password_reset")
    elif where == "enter_code":
        snap = to_code(engine, TARO)
    else:
        snap = to_new_password(engine, TARO)
    snap = engine.send(snap, "cancel")
    assert (snap.state, snap.status) == ("cancelled", "cancelled")
    with pytest.raises(regflow.FlowGone):
        engine.send(snap, "submit", new_password(NEW_PASSWORD))
    assert sign_in(engine, "abcd8-01", TARO, PASSWORD).state == "signed_in"


def test_login_deleted_before_new_password(engine: regflow.Engine,
                                           frozen: FrozenDateTimeFactory) -> None:
    """A login deleted by the admin after the code: the new password fails the flow (login_gone)."""
    ready(engine, frozen, ("abcd8-01", TARO), ("abcd8-02", HANAKO))
    admin = token_of(engine, "abcd8-01", TARO)
    snap = to_new_password(engine, HANAKO)
    target = login_of(engine, HANAKO).id
    delete = engine.start("delete_login", {"target": target}, session=admin)
    assert engine.send(delete, "submit", session=admin).state == "done"
    snap = engine.send(snap, "submit", new_password(NEW_PASSWORD))
    assert (snap.state, snap.status, message_ids(snap)) == ("failed", "failed", ["login_gone"])
    assert sign_in(engine, "abcd8-02", HANAKO, NEW_PASSWORD).state == "credentials"
