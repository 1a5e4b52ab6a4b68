"""The sign-in flow (SPEC 2.1 steps 1, 6, 7, 2.2, 4.1a, 5) on memory, SQLite and PostgreSQL.

Time is frozen at 2026-03-02 09:00:00 UTC (18:00 in Tokyo) and moved to the exact second of
every boundary: the enforcement date, ``ready_at``, the lockouts, the second-factor code and the
12-hour session.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
from flows import (
    PASSWORD,
    EngineFactory,
    action_events,
    field_names,
    last_code,
    login_of,
    mail_count,
    message,
    message_ids,
    newest_mail,
    plain_body,
    ready,
    register,
    session_of,
    stored_flow,
    wrong_code,
)
from freezegun.api import FrozenDateTimeFactory

import regflow
from regflow.adapters.argon2_hasher import Argon2Hasher
from regflow.definitions.validation import email_key
from regflow.ground.screens import Snapshot
from regflow.runtime import limits
from regflow.runtime.limits import Limits, Rate

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
PROVISIONING = 10 * MINUTE
CODE_TTL = 10 * MINUTE
RESEND = 60 * SECOND
SESSION_TTL = 12 * HOUR
ENFORCEMENT = datetime(2026, 2, 1, 15, 0, tzinfo=UTC)  # 2026-02-02 00:00 Asia/Tokyo
WRONG = "Wrong-pass-99"
LOCKOUT_AFTER = 10  # wrong passwords in a row from one client (SPEC 2.2, sign_in lockout_after)
STEP_UP_AFTER = 20  # wrong passwords from all clients within the hour (sign_in step_up_after)
LOCKOUT_FIRST = MINUTE  # then doubling ...
LOCKOUT_MAX = HOUR  # ... up to this (SPEC 5)
# The address's code mails across flows raised from 5 to 20 per 15 min, for the tests of the
# per-flow rule (at most 10 sends per flow), which the default limit would cut short at 5:
# only the flow's own rule can then refuse a send.
PER_FLOW_SENDS = Limits(code_mails=(Rate(20, 15 * 60), Rate(40, 24 * 3600)))
LOCKED_SUBJECT = "regflow サインインの失敗が続いたため、一時的にロックしました"

TARO = "taro@example.jp"
HANAKO = "hanako@example.jp"
JIRO = "jiro@example.jp"
SIGN_IN_SUBJECT = "regflow サインイン確認コード"

CREDENTIALS_FIELDS = ["email", "password"]
CREDENTIALS_ACTIONS = ["submit", "create_account", "forgot_password"]
SECOND_FACTOR_FIELDS = ["code"]
SECOND_FACTOR_ACTIONS = ["submit", "resend_code", "cancel"]
LINK_PROMPT_ACTIONS = ["submit", "cancel"]


# ---- helpers ---------------------------------------------------------------------------------

class CountingHasher:
    """The fast argon2id hasher, recording every ``verify`` (the password typed) and ``hash``."""

    def __init__(self) -> None:
        self.inner = Argon2Hasher.fast()
        self.verified: list[str] = []
        self.hashed = 0

    def hash(self, password: str) -> str:
        """Hash with the inner hasher, counting."""
        self.hashed += 1
        return self.inner.hash(password)

    def verify(self, hashed: str, password: str) -> bool:
        """Verify with the inner hasher, recording the typed password."""
        self.verified.append(password)
        return self.inner.verify(hashed, password)


class SlowHasher(CountingHasher):
    """As slow to verify as a production argon2id (20 ms): races get a window to show."""

    def verify(self, hashed: str, password: str) -> bool:
        """Verify, then wait 20 ms."""
        result = super().verify(hashed, password)
        time.sleep(0.02)  # real time: freezegun does not patch sleep
        return result


def submit(engine: regflow.Engine, account: str, email: str, password: str = PASSWORD) -> Snapshot:
    """Start a sign-in on ``account`` and submit the credentials."""
    snap = engine.start("sign_in", {"account": account})
    return engine.send(snap, "submit", {"email": email, "password": password})


def sign_in(engine: regflow.Engine, account: str, email: str, password: str = PASSWORD) -> Snapshot:
    """Sign in, answering OK at the link prompt; the signed_in snapshot."""
    snap = submit(engine, account, email, password)
    if snap.state == "link_prompt":
        snap = engine.send(snap, "submit")
    assert (snap.state, snap.status) == ("signed_in", "completed"), message_ids(snap)
    assert snap.session is not None
    return snap


def sessions_of(engine: regflow.Engine, email: str) -> int:
    """How many sessions the login has (ends them all: call last)."""
    login = login_of(engine, email)
    with engine.store.transaction() as tx:
        return tx.sessions.end_of_login(login.id)


def turn_on_two_factor(engine: regflow.Engine, token: str) -> None:
    """The login of ``token`` turns its own second factor on (set_two_factor flow)."""
    snap = engine.start("set_two_factor", session=token)
    assert (snap.state, field_names(snap)) == ("confirm", ["enabled"])
    snap = engine.send(snap, "submit", {"enabled": True}, session=token)
    assert (snap.state, snap.status) == ("done", "completed"), message_ids(snap)


def require_two_factor(engine: regflow.Engine, admin_token: str) -> None:
    """The admin makes the second factor the customer's policy (require_two_factor flow)."""
    snap = engine.start("require_two_factor", session=admin_token)
    snap = engine.send(snap, "submit", {"enabled": True}, session=admin_token)
    assert (snap.state, snap.status) == ("done", "completed"), message_ids(snap)


def to_second_factor(engine: regflow.Engine, frozen: FrozenDateTimeFactory) -> Snapshot:
    """Taro: ready, linked to abcd8-01, second factor on; a new sign-in at the code screen."""
    ready(engine, frozen, ("abcd8-01", TARO))
    turn_on_two_factor(engine, sign_in(engine, "abcd8-01", TARO).session or "")
    before = mail_count(engine)
    snap = submit(engine, "abcd8-01", TARO)
    assert (snap.state, message_ids(snap)) == ("second_factor", []), message_ids(snap)
    assert mail_count(engine) == before + 1
    return snap


def fail(engine: regflow.Engine, flow: Snapshot, email: str, times: int, *,
         client: str | None = None) -> Snapshot:
    """Send ``times`` wrong passwords for ``email`` in one flow (from ``client``, else
    in-process); each says credentials_invalid."""
    snap = flow
    for _ in range(times):
        snap = engine.send(snap, "submit", {"email": email, "password": WRONG}, client=client)
        assert (snap.state, message_ids(snap)) == ("credentials", ["credentials_invalid"])
    return snap


def new_flow(engine: regflow.Engine, account: str = "abcd8-01", *,
             client: str | None = None) -> Snapshot:
    """A fresh sign-in flow on ``account``."""
    return engine.start("sign_in", {"account": account}, client=client)


def _client_key(engine: regflow.Engine, client: str | None) -> str:
    """A client as the store counts it: in-process callers are ``""``, others a keyed digest."""
    return "" if client is None else limits.digest(engine.services.secret, f"client:{client}")


def _subject(engine: regflow.Engine, email: str) -> str:
    return limits.address(engine.services.secret, email_key(email))


def failures(engine: regflow.Engine, email: str, client: str | None = None) -> int:
    """Wrong passwords for the address from ``client`` (in-process by default) kept in the
    store, whether or not a lockout already paid for them."""
    with engine.store.transaction() as tx:
        count, _ = tx.limits.count(limits.SIGN_IN_FAILURE, _subject(engine, email),
                                   _client_key(engine, client), T0 - 365 * 24 * HOUR)
    return count


def lockouts(engine: regflow.Engine, email: str, client: str | None = None) -> int:
    """The lockouts of the address for ``client`` (in-process by default) kept in the store."""
    with engine.store.transaction() as tx:
        count, _ = tx.limits.count(limits.SIGN_IN_LOCKOUT, _subject(engine, email),
                                   _client_key(engine, client), T0 - 365 * 24 * HOUR)
    return count


def locked_until(engine: regflow.Engine, email: str, client: str | None = None) -> datetime | None:
    """When the latest lockout of the address for ``client`` ends (None: no lockout kept)."""
    with engine.store.transaction() as tx:
        hit = tx.limits.last(limits.SIGN_IN_LOCKOUT, _subject(engine, email),
                             _client_key(engine, client))
    return None if hit is None else hit.until


def mails_to(engine: regflow.Engine, email: str, subject: str) -> int:
    """How many mails with ``subject`` went to ``email``."""
    mailer: Any = engine.mailer
    return sum(1 for m in mailer.messages if (m["To"], m["Subject"]) == (email, subject))


# ---- screens and names (SPEC 4.1a) -----------------------------------------------------------

def test_credentials_screen_names(engine: regflow.Engine) -> None:
    """credentials: email/password; submit, create_account, forgot_password (after enforcement)."""
    snap = engine.start("sign_in", {"account": "abcd8-01"})
    assert (snap.flow, snap.state, snap.status, snap.version) == ("sign_in", "credentials", "active", 1)
    assert len(snap.id) >= 22
    assert field_names(snap) == CREDENTIALS_FIELDS
    assert action_events(snap) == CREDENTIALS_ACTIONS
    assert snap.screen.actions[0].primary
    assert [a.label for a in snap.screen.actions] == [
        "サインイン", "アカウントをお持ちでない場合、作成できます", "パスワードを忘れた方はこちら"]
    assert snap.screen.title == "サインイン"
    assert snap.session is None
    assert snap.continue_with is None


def test_sign_in_needs_an_account_context(engine: regflow.Engine) -> None:
    """sign_in is started from the seat in use: without ``account`` it is refused."""
    with pytest.raises(regflow.InvalidContext):
        engine.start("sign_in", {})


def test_empty_credentials_are_field_errors(engine: regflow.Engine) -> None:
    """Submitting nothing stays on credentials with errors on both fields, no failure counted."""
    snap = engine.start("sign_in", {"account": "abcd8-01"})
    snap = engine.send(snap, "submit", {})
    assert snap.state == "credentials"
    assert {m.field for m in snap.screen.messages} == {"email", "password"}
    assert not snap.ok


# ---- enforcement date ------------------------------------------------------------------------

def test_legacy_offered_and_works_before_enforcement(engine: regflow.Engine,
                                                      frozen: FrozenDateTimeFactory) -> None:
    """At 2026-02-01 23:59:59 JST continue_legacy is offered and ends the flow in ``legacy``."""
    frozen.move_to(ENFORCEMENT - SECOND)
    snap = engine.start("sign_in", {"account": "abcd8-01"})
    assert action_events(snap) == [*CREDENTIALS_ACTIONS, "continue_legacy"]
    assert snap.screen.actions[-1].label == "アカウントなしで続行"
    snap = engine.send(snap, "continue_legacy")
    assert (snap.state, snap.status) == ("legacy", "completed")
    assert snap.session is None
    assert snap.screen.actions == ()


def test_legacy_refused_from_enforcement(engine: regflow.Engine,
                                         frozen: FrozenDateTimeFactory) -> None:
    """At 2026-02-02 00:00:00 JST continue_legacy is neither offered nor accepted (EventNotAllowed)."""
    frozen.move_to(ENFORCEMENT)
    snap = engine.start("sign_in", {"account": "abcd8-01"})
    assert action_events(snap) == CREDENTIALS_ACTIONS
    with pytest.raises(regflow.EventNotAllowed) as refused:
        engine.send(snap, "continue_legacy")
    assert "continue_legacy" not in refused.value.allowed
    assert set(refused.value.allowed) == set(CREDENTIALS_ACTIONS)
    assert engine.get(snap).state == "credentials"


def test_legacy_offered_at_last_second_refused_at_enforcement(
        engine: regflow.Engine, frozen: FrozenDateTimeFactory) -> None:
    """A screen shown at 23:59:59 offers continue_legacy, but sending it at 00:00:00 is refused."""
    frozen.move_to(ENFORCEMENT - SECOND)
    snap = engine.start("sign_in", {"account": "abcd8-01"})
    assert "continue_legacy" in action_events(snap)
    frozen.tick(SECOND)
    assert "continue_legacy" not in action_events(engine.get(snap))
    with pytest.raises(regflow.EventNotAllowed):
        engine.send(snap, "continue_legacy")
    snap = engine.get(snap)
    assert (snap.state, snap.status) == ("credentials", "active")


def test_enforcement_date_is_configurable(make_engine: EngineFactory,
                                          frozen: FrozenDateTimeFactory) -> None:
    """settings={"sign_in": {"enforcement": ...}} moves the date: offered before it, refused from it."""
    engine = make_engine(settings={"sign_in": {"enforcement": "2026-03-02T18:00:01+09:00"}})
    snap = engine.start("sign_in", {"account": "abcd8-01"})  # 18:00:00 JST
    assert "continue_legacy" in action_events(snap)
    frozen.tick(SECOND)
    other = engine.start("sign_in", {"account": "abcd8-01"})
    assert "continue_legacy" not in action_events(other)
    with pytest.raises(regflow.EventNotAllowed):
        engine.send(other, "continue_legacy")
    frozen.move_to(T0 - SECOND)
    assert engine.send(other, "continue_legacy").state == "legacy"


def test_enforcement_date_without_offset(make_engine: EngineFactory,
                                         frozen: FrozenDateTimeFactory) -> None:
    """An enforcement date without UTC offset is refused when loaded, or read as Tokyo midnight."""
    try:
        engine = make_engine(settings={"sign_in": {"enforcement": "2026-02-02"}})
    except (regflow.DefinitionError, ValueError):
        return  # refused up front, with a clear error: fine
    frozen.move_to(ENFORCEMENT - SECOND)
    snap = engine.start("sign_in", {"account": "abcd8-01"})  # must not crash
    assert "continue_legacy" in action_events(snap)
    frozen.move_to(ENFORCEMENT)
    assert "continue_legacy" not in action_events(engine.start("sign_in", {"account": "abcd8-01"}))


# ---- hand-overs ------------------------------------------------------------------------------

def test_create_account_hands_over_to_registration(engine: regflow.Engine) -> None:
    """create_account answers with a new registration on the same seat; sign_in ends handed_over."""
    start = engine.start("sign_in", {"account": "abcd8-02"})
    snap = engine.send(start, "create_account")
    assert (snap.flow, snap.state, snap.status) == ("registration", "enter_email", "active")
    assert snap.id != start.id
    assert snap.flow_token is not None
    assert snap.flow_token != start.flow_token  # the new flow's own token, for the same client
    with pytest.raises(regflow.FlowNotFound):
        engine.get(snap.id, token=start.flow_token)
    assert snap.continue_with == {"flow": "registration", "id": snap.id}
    assert snap.to_dict()["continue_with"] == {"flow": "registration", "id": snap.id}
    assert field_names(snap) == ["email"]
    assert stored_flow(engine, snap.id).data["account"] == "abcd8-02"

    old = engine.get(start)
    assert (old.flow, old.state, old.status) == ("sign_in", "handed_over", "completed")
    assert old.continue_with == {"flow": "registration", "id": snap.id}
    assert old.session is None
    with pytest.raises(regflow.FlowGone):
        engine.send(start, "submit", {"email": TARO, "password": PASSWORD})

    # the registration handed over to is a working one
    snap = engine.send(snap, "submit", {"email": TARO})
    assert (snap.state, snap.flow) == ("enter_code", "registration")


def test_forgot_password_hands_over_to_password_reset(engine: regflow.Engine) -> None:
    """forgot_password answers with a new password_reset; sign_in ends handed_over, linked to it."""
    start = engine.start("sign_in", {"account": "abcd8-01"})
    snap = engine.send(start, "forgot_password")
    assert (snap.flow, snap.state, snap.status) == ("password_reset", "enter_email", "active")
    assert snap.continue_with == {"flow": "password_reset", "id": snap.id}
    assert field_names(snap) == ["email"]
    old = engine.get(start)
    assert (old.state, old.status) == ("handed_over", "completed")
    assert old.continue_with == {"flow": "password_reset", "id": snap.id}
    assert engine.get(snap).state == "enter_email"


# ---- first sign-in: ready_at, link prompt, session --------------------------------------------

def test_not_ready_until_ready_at(engine: regflow.Engine, frozen: FrozenDateTimeFactory) -> None:
    """Before ready_at → not_ready with 18:10 (Tokyo); at 9:59 still; at 10:00 → link_prompt."""
    register(engine, "abcd8-01", TARO)  # accepted at 18:00 JST
    snap = submit(engine, "abcd8-01", TARO)
    assert (snap.state, message_ids(snap)) == ("credentials", ["not_ready"])
    assert message(snap, "not_ready").params == {"ready_at_local": "18:10"}
    assert "18:10" in message(snap, "not_ready").text

    frozen.tick(PROVISIONING - SECOND)
    snap = engine.send(snap, "submit", {"email": TARO, "password": PASSWORD})
    assert (snap.state, message_ids(snap)) == ("credentials", ["not_ready"])

    frozen.tick(SECOND)
    snap = engine.send(snap, "submit", {"email": TARO, "password": PASSWORD})
    assert (snap.state, snap.status, message_ids(snap)) == ("link_prompt", "active", [])
    assert snap.session is None


def test_not_ready_only_with_the_right_password(engine: regflow.Engine) -> None:
    """A wrong password for a login still being set up says credentials_invalid, not not_ready."""
    register(engine, "abcd8-01", TARO)
    snap = submit(engine, "abcd8-01", TARO, WRONG)
    assert message_ids(snap) == ["credentials_invalid"]


def test_link_prompt_ok_links_and_signs_in(engine: regflow.Engine,
                                          frozen: FrozenDateTimeFactory) -> None:
    """OK at link_prompt links login ↔ seat, ends signed_in (completed) with a session token."""
    ready(engine, frozen, ("abcd8-01", TARO))
    snap = submit(engine, "abcd8-01", TARO)
    assert snap.state == "link_prompt"
    assert field_names(snap) == []
    assert action_events(snap) == LINK_PROMPT_ACTIONS
    assert [a.label for a in snap.screen.actions] == ["OK", "キャンセル"]
    assert "abcd8-01" in (snap.screen.text or "")
    assert login_of(engine, TARO).account is None

    snap = engine.send(snap, "submit")
    assert (snap.state, snap.status, message_ids(snap)) == ("signed_in", "completed", [])
    assert snap.screen.actions == ()
    assert snap.expires_at is None
    assert snap.to_dict()["session"] == snap.session
    token = snap.session
    assert token is not None
    assert login_of(engine, TARO).account == "abcd8-01"
    assert engine.admin_logins(token) == [{
        "id": login_of(engine, TARO).id, "email": TARO, "display_name": "山田 太郎",
        "account": "abcd8-01", "role": "admin", "ready": True,
        "ready_at": "2026-03-02T09:10:00Z", "two_factor": False, "sign_in_failures": 0,
    }]


def test_session_token_entropy_and_digest_only(engine: regflow.Engine,
                                              frozen: FrozenDateTimeFactory) -> None:
    """The token carries ≥128 random bits; the store keeps only its SHA-256 digest, never the token."""
    ready(engine, frozen, ("abcd8-01", TARO))
    snap = sign_in(engine, "abcd8-01", TARO)
    token = snap.session
    assert token is not None
    random_part = token.split(".")[0]
    assert len(base64.urlsafe_b64decode(random_part + "=" * (-len(random_part) % 4))) >= 16
    assert len(token) <= 256

    stored = session_of(engine, token)
    assert stored is not None
    assert stored.digest == hashlib.sha256(token.encode()).hexdigest()
    assert stored.login_id == login_of(engine, TARO).id
    assert (stored.created_at, stored.expires_at) == (T0 + PROVISIONING, T0 + PROVISIONING + SESSION_TTL)
    for name, value in attrs.asdict(stored).items():
        assert token not in str(value), name
        assert token.split(".")[1] not in str(value), name  # nor the MAC half
    # the flow record (and its journal) keep no token either
    assert token not in json.dumps(stored_flow(engine, snap.id).data, default=str)
    assert token not in repr(engine.history(snap.id))

    again = sign_in(engine, "abcd8-01", TARO)
    assert again.session is not None
    assert again.session != token
    assert again.session.split(".")[0] != random_part


def test_cancel_at_link_prompt_returns_to_credentials(engine: regflow.Engine,
                                                      frozen: FrozenDateTimeFactory) -> None:
    """cancel at link_prompt: back to credentials, nothing linked, no session; sign-in works again."""
    ready(engine, frozen, ("abcd8-01", TARO))
    snap = submit(engine, "abcd8-01", TARO)
    snap = engine.send(snap, "cancel")
    assert (snap.state, snap.status, message_ids(snap)) == ("credentials", "active", [])
    assert field_names(snap) == CREDENTIALS_FIELDS
    assert snap.session is None
    assert login_of(engine, TARO).account is None
    assert "_login_id" not in stored_flow(engine, snap.id).data

    snap = engine.send(snap, "submit", {"email": TARO, "password": PASSWORD})
    assert snap.state == "link_prompt"
    assert engine.send(snap, "submit").state == "signed_in"


def test_second_sign_in_goes_straight_to_signed_in(engine: regflow.Engine,
                                                   frozen: FrozenDateTimeFactory) -> None:
    """A linked login signing in on its own seat skips the link prompt."""
    ready(engine, frozen, ("abcd8-01", TARO))
    first = sign_in(engine, "abcd8-01", TARO)
    snap = submit(engine, "abcd8-01", TARO)
    assert (snap.state, snap.status, message_ids(snap)) == ("signed_in", "completed", [])
    assert snap.session is not None
    assert snap.session != first.session
    assert engine.admin_logins(first.session or "") == engine.admin_logins(snap.session)


def test_email_is_matched_normalised(engine: regflow.Engine, frozen: FrozenDateTimeFactory) -> None:
    """The address is matched after NFKC + case folding (full-width, upper case)."""
    ready(engine, frozen, ("abcd8-01", TARO))
    snap = submit(engine, "abcd8-01", " ＴＡＲＯ@Example.JP ")
    assert snap.state == "link_prompt", message_ids(snap)


# ---- seats: linked_elsewhere, account_taken, account_not_yours --------------------------------

def test_linked_elsewhere(engine: regflow.Engine, frozen: FrozenDateTimeFactory) -> None:
    """A login linked to abcd8-01 signing in from abcd8-02 is refused with linked_elsewhere."""
    ready(engine, frozen, ("abcd8-01", TARO))
    sign_in(engine, "abcd8-01", TARO)
    snap = submit(engine, "abcd8-02", TARO)
    assert (snap.state, snap.status, message_ids(snap)) == ("credentials", "active", ["linked_elsewhere"])
    assert message(snap, "linked_elsewhere").text == "このアカウントは別の ASP ユーザーに紐づけられています。"
    assert snap.session is None
    assert login_of(engine, TARO).account == "abcd8-01"
    assert failures(engine, TARO) == 0


def test_account_taken_at_link_prompt(engine: regflow.Engine, frozen: FrozenDateTimeFactory) -> None:
    """A seat already linked to another login: the link prompt's OK says account_taken (I2)."""
    ready(engine, frozen, ("abcd8-01", TARO), ("abcd8-02", HANAKO))
    sign_in(engine, "abcd8-01", TARO)
    snap = submit(engine, "abcd8-01", HANAKO)
    assert snap.state == "link_prompt"
    snap = engine.send(snap, "submit")
    assert (snap.state, snap.status, message_ids(snap)) == ("link_prompt", "active", ["account_taken"])
    assert message(snap, "account_taken").text == (
        "この ASP ユーザーはすでに別のアカウントに紐づけられています。")
    assert snap.session is None
    assert login_of(engine, HANAKO).account is None
    assert login_of(engine, TARO).account == "abcd8-01"
    # cancel, then the free seat works
    snap = engine.send(snap, "cancel")
    assert snap.state == "credentials"
    assert sign_in(engine, "abcd8-02", HANAKO).state == "signed_in"
    assert login_of(engine, HANAKO).account == "abcd8-02"


def test_account_not_yours(engine: regflow.Engine, frozen: FrozenDateTimeFactory) -> None:
    """A seat of another customer is refused with account_not_yours; a seat of no customer
    cannot even open the sign-in (account_unknown), as for registration."""
    engine.contracts.add(customer_id="289876", phone="06-9876-5432", licenses=1, accounts=["wxyz9-01"])
    ready(engine, frozen, ("abcd8-01", TARO))
    snap = submit(engine, "wxyz9-01", TARO)
    assert (snap.state, message_ids(snap)) == ("credentials", ["account_not_yours"])
    assert snap.session is None
    with pytest.raises(regflow.InvalidContext) as unknown:
        engine.start("sign_in", {"account": "zzzz0-99"})
    assert unknown.value.message_id == "account_unknown"
    assert login_of(engine, TARO).account is None


def test_login_deleted_at_link_prompt(engine: regflow.Engine, frozen: FrozenDateTimeFactory) -> None:
    """A login deleted by the admin while at the link prompt: OK goes back with credentials_invalid."""
    ready(engine, frozen, ("abcd8-01", TARO), ("abcd8-02", HANAKO))
    admin = sign_in(engine, "abcd8-01", TARO).session or ""
    snap = submit(engine, "abcd8-02", HANAKO)
    assert snap.state == "link_prompt"
    delete = engine.start("delete_login", {"target": login_of(engine, HANAKO).id}, session=admin)
    assert engine.send(delete, "submit", session=admin).state == "done"
    snap = engine.send(snap, "submit")
    assert (snap.state, message_ids(snap)) == ("credentials", ["credentials_invalid"])
    assert snap.session is None


def test_login_deleted_at_second_factor(engine: regflow.Engine,
                                        frozen: FrozenDateTimeFactory) -> None:
    """A login deleted while at the code screen: its mailed code signs nobody in."""
    ready(engine, frozen, ("abcd8-01", TARO), ("abcd8-02", HANAKO))
    admin = sign_in(engine, "abcd8-01", TARO).session or ""
    require_two_factor(engine, admin)
    snap = submit(engine, "abcd8-02", HANAKO)
    assert snap.state == "second_factor"
    code = last_code(engine)
    delete = engine.start("delete_login", {"target": login_of(engine, HANAKO).id}, session=admin)
    assert engine.send(delete, "submit", session=admin).state == "done"
    snap = engine.send(snap, "submit", {"code": code})
    assert (snap.state, message_ids(snap)) == ("credentials", ["credentials_invalid"])
    assert snap.session is None


# ---- no enumeration --------------------------------------------------------------------------

def test_unknown_address_looks_like_wrong_password(make_engine: EngineFactory,
                                                   frozen: FrozenDateTimeFactory) -> None:
    """Unknown address and wrong password: the same messages (ids, texts, params), same screen."""
    hasher = CountingHasher()
    engine = make_engine(hasher=hasher)
    ready(engine, frozen, ("abcd8-01", TARO))
    wrong = submit(engine, "abcd8-01", TARO, WRONG)
    unknown = submit(engine, "abcd8-01", "nobody@example.jp", WRONG)
    assert message_ids(wrong) == message_ids(unknown) == ["credentials_invalid"]
    assert [m.to_dict() for m in wrong.screen.messages] == [m.to_dict() for m in unknown.screen.messages]
    assert message(unknown, "credentials_invalid").text == (
        "メールアドレスまたはパスワードが正しくありません。")
    assert message(unknown, "credentials_invalid").field is None

    def neutral(snap: Snapshot) -> dict[str, Any]:
        data = snap.to_dict()
        del data["id"], data["flow_token"]  # each flow's own
        for field in data["screen"]["fields"]:
            field["value"] = None  # each shows its own typed address again
        return data

    assert neutral(wrong) == neutral(unknown)
    assert {f.name: f.value for f in unknown.screen.fields}["password"] is None


def test_unknown_address_still_verifies_a_hash(make_engine: EngineFactory,
                                               frozen: FrozenDateTimeFactory) -> None:
    """For an unknown address the hasher's verify runs once (a dummy hash), as for a known one."""
    hasher = CountingHasher()
    engine = make_engine(hasher=hasher)
    ready(engine, frozen, ("abcd8-01", TARO))

    hasher.verified.clear()
    submit(engine, "abcd8-01", "nobody@example.jp", "Typed-For-Nobody-1")
    assert hasher.verified == ["Typed-For-Nobody-1"]

    hasher.verified.clear()
    submit(engine, "abcd8-01", TARO, "Typed-For-Taro-1")
    assert hasher.verified == ["Typed-For-Taro-1"]

    hasher.verified.clear()
    submit(engine, "abcd8-01", "nobody2@example.jp", "Typed-Again-1")  # the dummy hash is reused
    assert hasher.verified == ["Typed-Again-1"]


# ---- lockout (SPEC 2.2, 5: 10 in a row → 1 min, doubling to 1 h, per address and client) ------

def test_nine_failures_do_not_lock(engine: regflow.Engine, frozen: FrozenDateTimeFactory) -> None:
    """After 9 wrong passwords the right one still signs in, and the count starts over."""
    ready(engine, frozen, ("abcd8-01", TARO))
    snap = fail(engine, new_flow(engine), TARO, LOCKOUT_AFTER - 1)
    assert (failures(engine, TARO), lockouts(engine, TARO)) == (9, 0)
    snap = engine.send(snap, "submit", {"email": TARO, "password": PASSWORD})
    assert snap.state == "link_prompt"
    assert (failures(engine, TARO), lockouts(engine, TARO)) == (0, 0)
    fail(engine, new_flow(engine), TARO, LOCKOUT_AFTER - 1)  # 9 more: still no lockout
    assert submit(engine, "abcd8-01", TARO).state == "link_prompt"


def test_tenth_failure_locks_for_one_minute(engine: regflow.Engine,
                                           frozen: FrozenDateTimeFactory) -> None:
    """The 10th wrong password locks: the right one at +59 s says locked_out, at +60 s it works."""
    ready(engine, frozen, ("abcd8-01", TARO))
    flow = fail(engine, new_flow(engine), TARO, LOCKOUT_AFTER - 1)
    frozen.tick(5 * SECOND)
    locked_at = T0 + PROVISIONING + 5 * SECOND
    flow = fail(engine, flow, TARO, 1)  # the 10th still says credentials_invalid
    assert (lockouts(engine, TARO), locked_until(engine, TARO)) == (1, locked_at + LOCKOUT_FIRST)

    frozen.tick(59 * SECOND)
    snap = engine.send(flow, "submit", {"email": TARO, "password": PASSWORD})
    assert (snap.state, message_ids(snap)) == ("credentials", ["locked_out"])
    locked = message(snap, "locked_out")
    assert locked.params == {"seconds": 1, "until_local": "18:11:05"}
    assert "1 秒後（18:11:05）" in locked.text
    # a wrong password while locked is not counted
    snap = engine.send(flow, "submit", {"email": TARO, "password": WRONG})
    assert message_ids(snap) == ["locked_out"]
    assert failures(engine, TARO) == LOCKOUT_AFTER

    frozen.tick(SECOND)
    snap = engine.send(flow, "submit", {"email": TARO, "password": PASSWORD})
    assert (snap.state, message_ids(snap)) == ("link_prompt", [])
    assert (failures(engine, TARO), lockouts(engine, TARO), locked_until(engine, TARO)) == (0, 0, None)


def test_lockouts_double_up_to_one_hour(engine: regflow.Engine, frozen: FrozenDateTimeFactory) -> None:
    """Each further 10 failures lock for 2, 4, 8, 16, 32 min, then 1 h (capped), and 1 h again."""
    ready(engine, frozen, ("abcd8-01", TARO))
    for number, minutes in enumerate((1, 2, 4, 8, 16, 32, 60, 60), start=1):
        assert minutes * MINUTE == min(LOCKOUT_MAX, LOCKOUT_FIRST * 2 ** (number - 1))
        flow = fail(engine, new_flow(engine), TARO, LOCKOUT_AFTER)
        now = datetime.now(UTC)
        assert (lockouts(engine, TARO), locked_until(engine, TARO)) == (number, now + minutes * MINUTE)
        frozen.tick(minutes * MINUTE - SECOND)
        snap = engine.send(flow, "submit", {"email": TARO, "password": PASSWORD})
        assert message_ids(snap) == ["locked_out"], number
        assert message(snap, "locked_out").params["seconds"] == 1
        frozen.tick(SECOND)
    # the lock is over: the right password works and resets the doubling
    assert submit(engine, "abcd8-01", TARO).state == "link_prompt"
    assert lockouts(engine, TARO) == 0


def test_success_resets_the_doubling(engine: regflow.Engine, frozen: FrozenDateTimeFactory) -> None:
    """After a lockout and a successful sign-in, the next 10 failures lock for 1 minute again."""
    ready(engine, frozen, ("abcd8-01", TARO))
    fail(engine, new_flow(engine), TARO, LOCKOUT_AFTER)
    frozen.tick(LOCKOUT_FIRST)
    sign_in(engine, "abcd8-01", TARO)
    assert lockouts(engine, TARO) == 0
    fail(engine, new_flow(engine), TARO, LOCKOUT_AFTER)
    assert (lockouts(engine, TARO), locked_until(engine, TARO)) == (
        1, datetime.now(UTC) + LOCKOUT_FIRST)


def test_failures_must_be_consecutive(engine: regflow.Engine, frozen: FrozenDateTimeFactory) -> None:
    """9 failures, a success, 9 failures: no lockout (only consecutive failures count)."""
    ready(engine, frozen, ("abcd8-01", TARO))
    fail(engine, new_flow(engine), TARO, LOCKOUT_AFTER - 1)
    sign_in(engine, "abcd8-01", TARO)
    fail(engine, new_flow(engine), TARO, LOCKOUT_AFTER - 1)
    assert (failures(engine, TARO), locked_until(engine, TARO)) == (9, None)
    assert submit(engine, "abcd8-01", TARO).state == "signed_in"


def test_failures_older_than_the_window_do_not_count(engine: regflow.Engine,
                                                     frozen: FrozenDateTimeFactory) -> None:
    """Failures count within lockout_window (1 h): 9 failures, and one more exactly an hour
    later, lock nothing; 9 failures a second later, and one more at 59:59 after them, lock."""
    ready(engine, frozen, ("abcd8-01", TARO), ("abcd8-02", HANAKO))
    start = datetime.now(UTC)
    fail(engine, new_flow(engine), TARO, LOCKOUT_AFTER - 1)
    frozen.tick(SECOND)
    fail(engine, new_flow(engine), HANAKO, LOCKOUT_AFTER - 1)
    frozen.move_to(start + HOUR)
    fail(engine, new_flow(engine), TARO, 1)
    fail(engine, new_flow(engine), HANAKO, 1)
    assert (lockouts(engine, TARO), lockouts(engine, HANAKO)) == (0, 1)
    assert submit(engine, "abcd8-01", TARO).state == "link_prompt"
    assert message_ids(submit(engine, "abcd8-02", HANAKO)) == ["locked_out"]


def test_lockout_is_per_address(engine: regflow.Engine, frozen: FrozenDateTimeFactory) -> None:
    """Failures for one address (across flows) never lock another."""
    ready(engine, frozen, ("abcd8-01", TARO), ("abcd8-02", HANAKO))
    for _ in range(5):  # two flows, interleaved: the count is the address's, not the flow's
        fail(engine, new_flow(engine, "abcd8-01"), TARO, 1)
        fail(engine, new_flow(engine, "abcd8-02"), TARO, 1)
        fail(engine, new_flow(engine, "abcd8-02"), HANAKO, 1)
    assert locked_until(engine, TARO) is not None
    assert (failures(engine, HANAKO), lockouts(engine, HANAKO)) == (5, 0)
    assert message_ids(submit(engine, "abcd8-01", TARO)) == ["locked_out"]
    assert submit(engine, "abcd8-02", HANAKO).state == "link_prompt"


def test_lockout_is_per_client(engine: regflow.Engine, frozen: FrozenDateTimeFactory) -> None:
    """Client "a" typing 10 wrong passwords locks out client "a" only: client "b" with the right
    password signs in at once (SPEC 5: never a lock-out of the rightful person from a clean
    client), and leaves a's lockout as it was."""
    ready(engine, frozen, ("abcd8-01", TARO))
    flow_a = fail(engine, new_flow(engine, client="a"), TARO, LOCKOUT_AFTER, client="a")
    snap = engine.send(flow_a, "submit", {"email": TARO, "password": PASSWORD}, client="a")
    assert (snap.state, message_ids(snap)) == ("credentials", ["locked_out"])
    assert message(snap, "locked_out").params["seconds"] == LOCKOUT_FIRST.total_seconds()
    assert locked_until(engine, TARO, "a") == datetime.now(UTC) + LOCKOUT_FIRST
    assert locked_until(engine, TARO, "b") is None

    snap = engine.send(new_flow(engine, client="b"), "submit",
                       {"email": TARO, "password": PASSWORD}, client="b")
    assert (snap.state, message_ids(snap)) == ("link_prompt", [])
    snap = engine.send(flow_a, "submit", {"email": TARO, "password": PASSWORD}, client="a")
    assert message_ids(snap) == ["locked_out"]
    assert (failures(engine, TARO, "a"), lockouts(engine, TARO, "a")) == (LOCKOUT_AFTER, 1)
    # in-process callers are a client of their own, as clean as "b"
    assert submit(engine, "abcd8-01", TARO).state == "link_prompt"


def test_many_clients_make_the_right_password_need_a_code(engine: regflow.Engine,
                                                         frozen: FrozenDateTimeFactory) -> None:
    """20 wrong passwords for one address within the hour from many clients (none of them
    locked out): the right password, even from a clean client, then leads to second_factor with
    a code mailed to the address; with 19 it signs in on the password alone."""
    ready(engine, frozen, ("abcd8-01", TARO))
    for n in range(STEP_UP_AFTER - 1):
        fail(engine, new_flow(engine, client=f"c{n}"), TARO, 1, client=f"c{n}")
    mails = mail_count(engine)
    snap = engine.send(new_flow(engine, client="clean-1"), "submit",
                       {"email": TARO, "password": PASSWORD}, client="clean-1")
    assert (snap.state, message_ids(snap)) == ("link_prompt", [])
    assert mail_count(engine) == mails

    fail(engine, new_flow(engine, client="c-last"), TARO, 1, client="c-last")  # the 20th
    snap = engine.send(new_flow(engine, client="clean-2"), "submit",
                       {"email": TARO, "password": PASSWORD}, client="clean-2")
    assert (snap.state, message_ids(snap)) == ("second_factor", [])
    assert snap.session is None
    assert mail_count(engine) == mails + 1
    assert (newest_mail(engine)["To"], newest_mail(engine)["Subject"]) == (TARO, SIGN_IN_SUBJECT)
    snap = engine.send(snap, "submit", {"code": last_code(engine)}, client="clean-2")
    assert snap.state == "link_prompt"
    assert engine.send(snap, "submit", client="clean-2").state == "signed_in"
    assert login_of(engine, TARO).two_factor is False  # the login's own setting is untouched


def test_unknown_address_is_locked_out_like_a_known_one(engine: regflow.Engine,
                                                        frozen: FrozenDateTimeFactory) -> None:
    """An address without a login is counted and locked out exactly like a registered one:
    9 wrong passwords say credentials_invalid, the 10th too, then locked_out with the same
    seconds and time; nothing tells the two apart, and no mail goes to the unknown address."""
    ready(engine, frozen, ("abcd8-01", TARO))
    nobody = "nobody@example.jp"
    answers: dict[str, Snapshot] = {}
    for email in (TARO, nobody):
        flow = fail(engine, new_flow(engine), email, LOCKOUT_AFTER)
        answers[email] = engine.send(flow, "submit", {"email": email, "password": WRONG})
        assert failures(engine, email) == LOCKOUT_AFTER
        assert lockouts(engine, email) == 1
    assert message_ids(answers[TARO]) == message_ids(answers[nobody]) == ["locked_out"]
    assert [m.to_dict() for m in answers[TARO].screen.messages] == [
        m.to_dict() for m in answers[nobody].screen.messages]
    assert message(answers[nobody], "locked_out").params == {"seconds": 60, "until_local": "18:11:00"}
    assert mails_to(engine, nobody, LOCKED_SUBJECT) == 0
    assert mails_to(engine, TARO, LOCKED_SUBJECT) == 1

    frozen.tick(LOCKOUT_FIRST)  # over for both: the unknown address is just wrong again
    snap = engine.send(answers[nobody], "submit", {"email": nobody, "password": WRONG})
    assert message_ids(snap) == ["credentials_invalid"]


def test_lockout_mails_the_owner_once_an_hour(engine: regflow.Engine,
                                             frozen: FrozenDateTimeFactory) -> None:
    """A lockout mails the address's owner (until when, in which zone); further lockouts of the
    address within the hour, from this client or others, mail nothing more; an hour after the
    notice the next lockout tells the owner again."""
    ready(engine, frozen, ("abcd8-01", TARO))
    fail(engine, new_flow(engine), TARO, LOCKOUT_AFTER - 1)
    assert mails_to(engine, TARO, LOCKED_SUBJECT) == 0
    fail(engine, new_flow(engine), TARO, 1)
    told_at = datetime.now(UTC)
    assert mails_to(engine, TARO, LOCKED_SUBJECT) == 1
    body = plain_body(newest_mail(engine))
    assert newest_mail(engine)["Subject"] == LOCKED_SUBJECT
    assert "2026-03-02 18:11（Asia/Tokyo）" in body  # 09:10 UTC + 1 min, in Tokyo

    fail(engine, new_flow(engine, client="a"), TARO, LOCKOUT_AFTER, client="a")
    frozen.tick(LOCKOUT_FIRST)
    fail(engine, new_flow(engine), TARO, LOCKOUT_AFTER)  # the first client's 2nd lockout
    frozen.move_to(told_at + HOUR - SECOND)
    fail(engine, new_flow(engine, client="b"), TARO, LOCKOUT_AFTER, client="b")
    assert (lockouts(engine, TARO), lockouts(engine, TARO, "a"), lockouts(engine, TARO, "b")) == (2, 1, 1)
    assert mails_to(engine, TARO, LOCKED_SUBJECT) == 1

    frozen.move_to(told_at + HOUR)
    fail(engine, new_flow(engine, client="c"), TARO, LOCKOUT_AFTER, client="c")
    assert mails_to(engine, TARO, LOCKED_SUBJECT) == 2


def _concurrent_wrong_passwords(engine: regflow.Engine, email: str, count: int) -> list[Snapshot]:
    """``count`` sign-in flows for ``email``, each sending one wrong password at the same moment."""
    flows = [new_flow(engine) for _ in range(count)]
    barrier = threading.Barrier(count)
    answers: list[Snapshot] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(flow: Snapshot) -> None:
        try:
            barrier.wait(timeout=30)
            snap = engine.send(flow, "submit", {"email": email, "password": WRONG})
            with lock:
                answers.append(snap)
        except BaseException as exc:  # every exception is a failure of the test
            with lock:
                errors.append(exc)
        finally:
            engine.store.close()  # this thread's connection

    threads = [threading.Thread(target=work, args=(flow,)) for flow in flows]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert len(answers) == count
    return answers


def test_concurrent_failures_are_counted_exactly(make_engine: EngineFactory,
                                                 frozen: FrozenDateTimeFactory) -> None:
    """9 simultaneous wrong passwords count exactly 9 (no lost update); the 10th then locks."""
    engine = make_engine(hasher=SlowHasher())
    ready(engine, frozen, ("abcd8-01", TARO))
    answers = _concurrent_wrong_passwords(engine, TARO, 9)
    assert sorted(message_ids(a)[0] for a in answers) == ["credentials_invalid"] * 9
    assert (failures(engine, TARO), lockouts(engine, TARO)) == (9, 0)

    fail(engine, new_flow(engine), TARO, 1)
    assert (failures(engine, TARO), lockouts(engine, TARO), locked_until(engine, TARO)) == (
        LOCKOUT_AFTER, 1, datetime.now(UTC) + LOCKOUT_FIRST)
    assert message_ids(submit(engine, "abcd8-01", TARO)) == ["locked_out"]


def test_concurrent_failures_lock_exactly_once(make_engine: EngineFactory,
                                               frozen: FrozenDateTimeFactory) -> None:
    """12 simultaneous wrong passwords: 10 are counted and lock once, the last 2 see locked_out."""
    engine = make_engine(hasher=SlowHasher())
    ready(engine, frozen, ("abcd8-01", TARO))
    answers = _concurrent_wrong_passwords(engine, TARO, 12)
    assert sorted(message_ids(a)[0] for a in answers) == ["credentials_invalid"] * 10 + ["locked_out"] * 2
    assert all(a.state == "credentials" for a in answers)
    assert (failures(engine, TARO), lockouts(engine, TARO), locked_until(engine, TARO)) == (
        LOCKOUT_AFTER, 1, datetime.now(UTC) + LOCKOUT_FIRST)
    assert mails_to(engine, TARO, LOCKED_SUBJECT) == 1  # the owner is told once


# ---- second factor ---------------------------------------------------------------------------

def test_two_factor_sign_in(engine: regflow.Engine, frozen: FrozenDateTimeFactory) -> None:
    """With two_factor on, the password leads to second_factor and an 8-digit sign_in_code mail."""
    snap = to_second_factor(engine, frozen)
    assert field_names(snap) == SECOND_FACTOR_FIELDS
    assert action_events(snap) == SECOND_FACTOR_ACTIONS
    assert TARO in (snap.screen.text or "")
    assert snap.session is None
    now = datetime.now(UTC)
    assert [(t.event, t.at) for t in snap.timers] == [("code_timeout", now + CODE_TTL)]
    mail = newest_mail(engine)
    assert (mail["To"], mail["Subject"]) == (TARO, SIGN_IN_SUBJECT)
    code = last_code(engine)
    assert len(code) == 8
    assert code.isdigit()
    assert "10 分間" in plain_body(mail)
    assert login_of(engine, TARO).two_factor is True

    snap = engine.send(snap, "submit", {"code": code})
    assert (snap.state, snap.status, message_ids(snap)) == ("signed_in", "completed", [])
    assert snap.session is not None
    assert engine.admin_logins(snap.session)[0]["two_factor"] is True
    # the code is spent
    with engine.store.transaction() as tx:
        spent = tx.codes.latest(snap.id, "sign_in")
    assert spent is not None
    assert spent.used_at == now


def test_two_factor_code_valid_at_last_second(engine: regflow.Engine,
                                              frozen: FrozenDateTimeFactory) -> None:
    """The sign-in code is accepted at 9:59 after it was mailed."""
    snap = to_second_factor(engine, frozen)
    frozen.tick(CODE_TTL - SECOND)
    assert message_ids(engine.get(snap)) == []
    snap = engine.send(snap, "submit", {"code": last_code(engine)})
    assert (snap.state, message_ids(snap)) == ("signed_in", [])


def test_two_factor_code_expired_at_ten_minutes(engine: regflow.Engine,
                                                frozen: FrozenDateTimeFactory) -> None:
    """At 10:00 get shows code_expired (timer), the right code is refused; a resend then works."""
    snap = to_second_factor(engine, frozen)
    code = last_code(engine)
    mailed_at = datetime.now(UTC)
    frozen.tick(CODE_TTL)
    snap = engine.get(snap)
    assert (snap.state, snap.status, message_ids(snap)) == ("second_factor", "active", ["code_expired"])
    assert snap.timers == ()
    timeout = engine.history(snap.id)[-1]
    assert (timeout.event, timeout.actor, timeout.at) == ("code_timeout", "timer", mailed_at + CODE_TTL)

    snap = engine.send(snap, "submit", {"code": code})
    assert (snap.state, message_ids(snap)) == ("second_factor", ["code_expired"])
    assert snap.session is None
    snap = engine.send(snap, "resend_code")
    assert message_ids(snap) == ["code_resent"]
    assert engine.send(snap, "submit", {"code": last_code(engine)}).state == "signed_in"


def test_two_factor_five_wrong_tries_void_the_code(engine: regflow.Engine,
                                                   frozen: FrozenDateTimeFactory) -> None:
    """Wrong codes: 4..1 tries left, the 5th exhausts, then even the right code is void."""
    snap = to_second_factor(engine, frozen)
    code = last_code(engine)
    for left in (4, 3, 2, 1):
        snap = engine.send(snap, "submit", {"code": wrong_code(code)})
        assert (snap.state, message_ids(snap)) == ("second_factor", ["code_invalid"])
        assert message(snap, "code_invalid").params == {"tries_left": left}
    snap = engine.send(snap, "submit", {"code": wrong_code(code)})
    assert message_ids(snap) == ["code_tries_exhausted"]
    snap = engine.send(snap, "submit", {"code": code})
    assert (snap.state, message_ids(snap)) == ("second_factor", ["code_void"])
    assert snap.session is None
    # wrong codes never count as wrong passwords
    assert failures(engine, TARO) == 0

    frozen.tick(RESEND)
    snap = engine.send(snap, "resend_code")
    assert message_ids(snap) == ["code_resent"]
    assert engine.send(snap, "submit", {"code": last_code(engine)}).state == "signed_in"


def test_two_factor_resend_rules(engine: regflow.Engine, frozen: FrozenDateTimeFactory) -> None:
    """Resend at 59 s → resend_too_soon; at 60 s a new code (the old one dead, new 10-min timer)."""
    snap = to_second_factor(engine, frozen)
    old = last_code(engine)
    mails = mail_count(engine)
    frozen.tick(RESEND - SECOND)
    snap = engine.send(snap, "resend_code")
    assert (snap.state, message_ids(snap)) == ("second_factor", ["resend_too_soon"])
    assert message(snap, "resend_too_soon").params["seconds"] == 1
    assert mail_count(engine) == mails

    frozen.tick(SECOND)
    snap = engine.send(snap, "resend_code")
    assert (snap.state, message_ids(snap)) == ("second_factor", ["code_resent"])
    assert message(snap, "code_resent").level == "info"
    assert mail_count(engine) == mails + 1
    assert newest_mail(engine)["Subject"] == SIGN_IN_SUBJECT
    new = last_code(engine)
    assert [(t.event, t.at) for t in snap.timers] == [("code_timeout", datetime.now(UTC) + CODE_TTL)]
    if new != old:
        snap = engine.send(snap, "submit", {"code": old})
        assert message_ids(snap)[0] in ("code_invalid", "code_void")
    assert engine.send(snap, "submit", {"code": new}).state == "signed_in"


def test_two_factor_send_limit(make_engine: EngineFactory, frozen: FrozenDateTimeFactory) -> None:
    """The first code and 9 resends go out; the 11th send of the flow is refused (send_limit)."""
    engine = make_engine(limits=PER_FLOW_SENDS)  # the per-flow rule, not the one across flows
    snap = to_second_factor(engine, frozen)
    mails = mail_count(engine)
    for _ in range(9):
        frozen.tick(RESEND)
        snap = engine.send(snap, "resend_code")
        assert message_ids(snap) == ["code_resent"]
    frozen.tick(RESEND)
    snap = engine.send(snap, "resend_code")
    assert message_ids(snap) == ["send_limit"]
    assert mail_count(engine) == mails + 9
    assert engine.send(snap, "submit", {"code": last_code(engine)}).state == "signed_in"


def test_two_factor_send_limit_holds_after_cancel(make_engine: EngineFactory,
                                                  frozen: FrozenDateTimeFactory) -> None:
    """Cancel + the password again cannot mail more than max_sends (10) codes from one flow."""
    engine = make_engine(limits=PER_FLOW_SENDS)  # the per-flow rule, not the one across flows
    snap = to_second_factor(engine, frozen)
    mails = mail_count(engine)
    for _ in range(12):
        frozen.tick(RESEND)
        if snap.state == "second_factor":
            snap = engine.send(snap, "cancel")
        assert snap.state == "credentials"
        snap = engine.send(snap, "submit", {"email": TARO, "password": PASSWORD})
    assert mail_count(engine) - mails == 10 - 1  # the first of the flow's 10 is in ``mails``
    assert (snap.state, message_ids(snap)) == ("credentials", ["send_limit"])


def test_two_factor_cancel_returns_to_credentials(engine: regflow.Engine,
                                                  frozen: FrozenDateTimeFactory) -> None:
    """cancel at second_factor: back to credentials, the code dies; the password again mails a new one."""
    snap = to_second_factor(engine, frozen)
    code = last_code(engine)
    snap = engine.send(snap, "cancel")
    assert (snap.state, snap.status, message_ids(snap)) == ("credentials", "active", [])
    assert snap.timers == ()
    assert snap.session is None
    with engine.store.transaction() as tx:
        dead = tx.codes.latest(snap.id, "sign_in")
    assert dead is not None
    assert dead.void is True

    frozen.tick(RESEND)
    snap = engine.send(snap, "submit", {"email": TARO, "password": PASSWORD})
    assert snap.state == "second_factor"
    if last_code(engine) != code:
        assert engine.send(snap, "submit", {"code": code}).state == "second_factor"
    assert engine.send(snap, "submit", {"code": last_code(engine)}).state == "signed_in"


def test_two_factor_then_link_prompt(engine: regflow.Engine, frozen: FrozenDateTimeFactory) -> None:
    """The customer's require_two_factor policy: every login (even unlinked) passes the code first."""
    ready(engine, frozen, ("abcd8-01", TARO), ("abcd8-02", HANAKO))
    admin = sign_in(engine, "abcd8-01", TARO).session or ""
    require_two_factor(engine, admin)
    assert login_of(engine, HANAKO).two_factor is False

    snap = submit(engine, "abcd8-02", HANAKO)
    assert (snap.state, message_ids(snap)) == ("second_factor", [])
    assert (newest_mail(engine)["To"], newest_mail(engine)["Subject"]) == (HANAKO, SIGN_IN_SUBJECT)
    snap = engine.send(snap, "submit", {"code": last_code(engine)})
    assert snap.state == "link_prompt"
    snap = engine.send(snap, "submit")
    assert (snap.state, snap.status) == ("signed_in", "completed")
    assert login_of(engine, HANAKO).account == "abcd8-02"

    # the admin too, though its own two_factor is off
    snap = submit(engine, "abcd8-01", TARO)
    assert snap.state == "second_factor"
    assert newest_mail(engine)["To"] == TARO
    assert engine.send(snap, "submit", {"code": last_code(engine)}).state == "signed_in"


def test_two_factor_policy_of_another_customer_does_not_apply(engine: regflow.Engine,
                                                              frozen: FrozenDateTimeFactory) -> None:
    """require_two_factor of one customer leaves another customer's logins on password only."""
    engine.contracts.add(customer_id="289876", phone="06-9876-5432", licenses=2, accounts=["wxyz9-01"])
    ready(engine, frozen, ("abcd8-01", TARO))
    snap = register(engine, "wxyz9-01", JIRO, customer_id="289876", tel="06-9876-5432")
    assert snap.state == "provisioning", message_ids(snap)
    frozen.tick(PROVISIONING)
    require_two_factor(engine, sign_in(engine, "abcd8-01", TARO).session or "")
    assert submit(engine, "wxyz9-01", JIRO).state == "link_prompt"


def test_two_factor_off_again(engine: regflow.Engine, frozen: FrozenDateTimeFactory) -> None:
    """set_two_factor with enabled=False brings the password-only sign-in back."""
    snap = to_second_factor(engine, frozen)
    token = engine.send(snap, "submit", {"code": last_code(engine)}).session or ""
    flow = engine.start("set_two_factor", session=token)
    assert engine.send(flow, "submit", {"enabled": False}, session=token).state == "done"
    assert submit(engine, "abcd8-01", TARO).state == "signed_in"


# ---- sessions --------------------------------------------------------------------------------

def test_end_session_signs_out(engine: regflow.Engine, frozen: FrozenDateTimeFactory) -> None:
    """end_session ends that session only: admin_logins with it is Forbidden, another still works."""
    ready(engine, frozen, ("abcd8-01", TARO))
    token = sign_in(engine, "abcd8-01", TARO).session or ""
    other = sign_in(engine, "abcd8-01", TARO).session or ""
    assert engine.admin_logins(token)
    assert engine.end_session(token) is True
    with pytest.raises(regflow.Forbidden):
        engine.admin_logins(token)
    assert session_of(engine, token) is None
    assert engine.end_session(token) is False
    assert engine.admin_logins(other)[0]["email"] == TARO
    with pytest.raises(regflow.Forbidden):
        engine.start("set_two_factor", session=token)


@pytest.mark.parametrize("token", ["", "not-a-token", "x" * 300, "abc.def"])
def test_bogus_tokens_are_forbidden(engine: regflow.Engine, token: str) -> None:
    """Unknown, malformed or oversized tokens: Forbidden, and end_session says there was none."""
    with pytest.raises(regflow.Forbidden):
        engine.admin_logins(token)
    assert engine.end_session(token) is False


def test_session_expires_after_twelve_hours(engine: regflow.Engine,
                                           frozen: FrozenDateTimeFactory) -> None:
    """A session works at 11:59:59 after sign-in and is Forbidden at 12:00:00."""
    ready(engine, frozen, ("abcd8-01", TARO))
    token = sign_in(engine, "abcd8-01", TARO).session or ""
    frozen.tick(SESSION_TTL - SECOND)
    assert engine.admin_logins(token)[0]["email"] == TARO
    frozen.tick(SECOND)
    with pytest.raises(regflow.Forbidden):
        engine.admin_logins(token)
    assert engine.end_session(token) is False
    with pytest.raises(regflow.Forbidden):
        engine.start("set_two_factor", session=token)


def test_member_session_is_not_admin(engine: regflow.Engine, frozen: FrozenDateTimeFactory) -> None:
    """A member's session signs in but cannot list logins (Forbidden)."""
    ready(engine, frozen, ("abcd8-01", TARO), ("abcd8-02", HANAKO))
    token = sign_in(engine, "abcd8-02", HANAKO).session or ""
    with pytest.raises(regflow.Forbidden):
        engine.admin_logins(token)


def test_sessions_are_per_device_free(engine: regflow.Engine, frozen: FrozenDateTimeFactory) -> None:
    """FAQ 9: several sign-ins of one login on its seat each get a session; all work at once."""
    ready(engine, frozen, ("abcd8-01", TARO))
    tokens = {sign_in(engine, "abcd8-01", TARO).session for _ in range(3)}
    assert len(tokens) == 3
    for token in tokens:
        assert engine.admin_logins(token or "")
    assert sessions_of(engine, TARO) == 3


# ---- idempotency -----------------------------------------------------------------------------

def test_idempotent_sign_in_replays_the_same_session(engine: regflow.Engine,
                                                     frozen: FrozenDateTimeFactory) -> None:
    """The same idempotency key twice: the same snapshot and token, and only one session row."""
    ready(engine, frozen, ("abcd8-01", TARO))
    sign_in(engine, "abcd8-01", TARO)  # linked, and one session
    assert sessions_of(engine, TARO) == 1  # ... now ended: count from zero

    flow = new_flow(engine)
    form = {"email": TARO, "password": PASSWORD}
    first = engine.send(flow, "submit", form, idempotency_key="k")
    assert first.state == "signed_in"
    frozen.tick(5 * SECOND)
    again = engine.send(flow, "submit", form, idempotency_key="k")
    assert again.to_dict() == first.to_dict()
    assert again.session == first.session
    assert engine.admin_logins(again.session or "")

    with engine.store.transaction() as tx:
        kept = tx.flows.idempotent(flow.id, "k")
    assert kept is not None
    assert "session" not in kept.response
    assert (first.session or "") not in json.dumps(kept.response, default=str)

    with pytest.raises(regflow.IdempotencyConflict):
        engine.send(flow, "submit", {"email": TARO, "password": WRONG}, idempotency_key="k")
    assert sessions_of(engine, TARO) == 1


def test_idempotent_link_prompt_ok(engine: regflow.Engine, frozen: FrozenDateTimeFactory) -> None:
    """OK at the link prompt sent twice with one key: one session, the same token, linked once."""
    ready(engine, frozen, ("abcd8-01", TARO))
    snap = submit(engine, "abcd8-01", TARO)
    first = engine.send(snap, "submit", idempotency_key="ok-1")
    again = engine.send(snap, "submit", idempotency_key="ok-1")
    assert first.state == again.state == "signed_in"
    assert first.session == again.session
    assert first.to_dict() == again.to_dict()
    assert login_of(engine, TARO).account == "abcd8-01"
    assert sessions_of(engine, TARO) == 1
