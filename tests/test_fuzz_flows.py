"""Stateful fuzzing of the engine: a hypothesis state machine over every flow, I1–I5 after each step.

The engine runs in memory with the fast hasher and a ManualClock that starts an hour before the
enforcement date (2026-02-02 00:00 Tokyo), so clock advances cross it. Two customers: 281234
(2 licenses, 3 seats) and 285555 (3 licenses, 4 seats), plus a seat that belongs to no contract.
The addresses include case and full-width spellings of the same address (I1).

Every engine call may raise only the documented errors; anything else fails the run. The checks:
I1–I4 over the store after every step; I5 as far as it can be seen from outside (a code that
was accepted was issued for that flow, is its newest, was never accepted before and had not
expired; the newest live code of a registration or reset is accepted); sessions die exactly
when their login is deleted, unlinked, given a new password, signed out or the session expires;
wrong passwords lock a login as SPEC 2.2 says.

Bugs found are kept as plain regression tests at the end (lone surrogates in tokens and fields).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import attrs
import pytest
from flows import codes_in
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
)

import regflow
from regflow.definitions.validation import email_key
from regflow.ground.records import Login
from regflow.ground.screens import Snapshot
from regflow.testing import check_invariants  # I1–I4 over the whole store

START = datetime(2026, 2, 1, 14, 0, tzinfo=UTC)  # 23:00 in Tokyo: an hour before enforcement
ENFORCEMENT = datetime(2026, 2, 1, 15, 0, tzinfo=UTC)
CUSTOMERS: list[dict[str, Any]] = [
    {"customer_id": "281234", "phone": "03-1234-5678", "licenses": 2,
     "accounts": ["abcd8-01", "abcd8-02", "abcd8-03"]},
    {"customer_id": "285555", "phone": "06-5555-0000", "licenses": 3,
     "accounts": ["wxyz5-01", "wxyz5-02", "wxyz5-03", "wxyz5-04"]},
]
SEATS = [seat for c in CUSTOMERS for seat in c["accounts"]]
UNKNOWN_SEAT = "zzzz9-99"
ADDRESSES = [
    "taro@example.jp", "TARO@Example.JP", "ｔａｒｏ@ｅｘａｍｐｌｅ.jp",
    "hana@example.jp", "Hana@EXAMPLE.JP",
    "ken@other.example", "ＫＥＮ@other.example", "mi@other.example",
]
BAD_ADDRESSES = ["not-an-address", "", " ", "a@", "taro@example.jp\u202e"]
PASSWORDS = ["Kx7#mPq2wZ", "Rb4$tYw9Qe"]  # both meet the policy
BAD_PASSWORDS = ["short", "password", "taroTARO123!"]  # too short, blocklisted, has a local part
NAMES = ["山田 太郎", "Ken", "  trimmed  ", "\u202eevil", "", "x" * 300]
CODE_TTL = {"registration": 1800, "password_reset": 1800, "sign_in": 600}
CODE_STATE = {"registration": "enter_code", "password_reset": "enter_code", "sign_in": "second_factor"}
ACCEPTED_STATES = {"registration": {"details"}, "password_reset": {"new_password"},
                   "sign_in": {"link_prompt", "signed_in"}}
SESSION_TTL = timedelta(hours=12)
ADMIN_FLOWS = ("unlink_login", "delete_login", "transfer_admin", "require_two_factor", "set_two_factor")
TARGETED = ("unlink_login", "delete_login", "transfer_admin")
GARBAGE_TOKENS = [None, "", "garbage", "x" * 300, "a.b", "\u202e.\x00", "Zm9v.YmFy", "\ud800.x", "abc\udcff"]
EVENTS = ["submit", "cancel", "back", "resend_code", "create_account", "forgot_password",
          "continue_legacy", "provisioned", "code_timeout", "expire", "", "submit ", "SUBMIT"]
MENU: dict[tuple[str, str], list[str]] = {
    ("registration", "enter_email"): ["submit"] * 4 + ["cancel"],
    ("registration", "enter_code"): ["submit"] * 6 + ["resend_code"] * 2 + ["back", "cancel"],
    ("registration", "email_taken"): ["back"] * 3 + ["cancel"],
    ("registration", "details"): ["submit"] * 6 + ["cancel"],
    ("sign_in", "credentials"): ["submit"] * 6 + ["create_account", "forgot_password", "continue_legacy"],
    ("sign_in", "second_factor"): ["submit"] * 4 + ["resend_code", "cancel"],
    ("sign_in", "link_prompt"): ["submit"] * 3 + ["cancel"],
    ("password_reset", "enter_email"): ["submit"] * 4 + ["cancel"],
    ("password_reset", "enter_code"): ["submit"] * 4 + ["resend_code", "cancel"],
    ("password_reset", "new_password"): ["submit"] * 4 + ["cancel"],
}
ALLOWED_ERRORS = (regflow.EventNotAllowed, regflow.FlowGone, regflow.FlowNotFound, regflow.Forbidden,
                  regflow.InvalidContext, regflow.IdempotencyConflict, regflow.RateLimited)
LOCKOUT_AFTER = 10  # wrong passwords in a row for an address from one client (SPEC 2.2, 5)
LOCKOUT_WINDOW = timedelta(hours=1)  # ... within this (sign_in lockout_window)
LOCKOUT_MEMORY = timedelta(hours=24)  # lockouts within this double the next (lockout_memory)
# Values the embedding may be handed for a field: wrong types, control, bidi, NUL, lone
# surrogates, huge strings.
HOSTILE_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=40) | st.sampled_from(
    ["\x00", "\u202e", "\u202eevil", "\x1b[31m", "\r\n", "a" * 5000, "a" * 4097, "１２３４５６７８",
     "28１２３４", "Kx7#mPq2wZ\x00", "Kx7#mPq2wZ\u202e", "Kx7#mPq2wZ\ud800", "山田\u200f太郎", "山田\udc80",
     " ", "\u3000", "\ud800"])
HOSTILE_VALUE = (HOSTILE_TEXT | st.none() | st.booleans() | st.integers() | st.floats()
                 | st.lists(st.integers(), max_size=3) | st.dictionaries(st.text(max_size=3), st.none(),
                                                                          max_size=2))
FIELD_NAMES = ["email", "code", "password", "password_confirm", "customer_id", "display_name", "tel",
               "enabled", "unknown", "_login_id", "__proto__"]


@attrs.define(eq=False)
class Issued:
    """A code mailed for a flow: its digits, when, and the world it was issued into."""

    code: str
    at: datetime
    cutoffs: int  # deletions/unlinks so far (they void pending codes of the address)


@attrs.define(eq=False, repr=False)
class FlowRef:
    """A flow this run started, and what the run knows of it."""

    id: str
    kind: str
    token: str | None = None  # the flow token its start (or hand-over) answered with
    email: str | None = None  # the address the flow works with, once it took one
    target: str | None = None  # admin flows: the target login id
    session: str | None = None  # flows with ``auth``: the token that started them
    issued: list[Issued] = attrs.Factory(list)
    used: set[str] = attrs.Factory(set)
    wrong: int = 0  # wrong code tries against the newest code
    uncertain: bool = False  # an idempotent replay may have hidden a try

    def __repr__(self) -> str:
        return f"<{self.kind} {self.id[:6]}>"


def ref_of(snapshot: Snapshot, kind: str, **known: Any) -> FlowRef:
    """The run's record of a flow from the answer that started it (its id and token)."""
    return FlowRef(snapshot.id, kind, snapshot.flow_token, **known)


@attrs.define
class Lock:
    """The model of an address's wrong passwords from the in-process client (SPEC 2.2, 5: 10 in
    a row within the hour lock it, 1 min doubling to 1 h with each lockout within a day),
    whether the address has a login or not."""

    failures: list[datetime] = attrs.Factory(list)  # wrong passwords since the last success
    lockouts: list[tuple[datetime, datetime]] = attrs.Factory(list)  # (at, until)

    def locked(self, now: datetime) -> datetime | None:
        """Until when the address is locked out, if it is now."""
        until = self.lockouts[-1][1] if self.lockouts else None
        return until if until is not None and until > now else None

    def fail(self, now: datetime) -> None:
        """Count a wrong password; the 10th in a row within the window locks."""
        self.failures.append(now)
        since = now - LOCKOUT_WINDOW
        if self.lockouts and self.lockouts[-1][0] > since:
            since = self.lockouts[-1][0]  # those before the last lockout were paid for by it
        if sum(1 for at in self.failures if at > since) < LOCKOUT_AFTER:
            return
        strikes = sum(1 for at, _ in self.lockouts if at > now - LOCKOUT_MEMORY)
        self.lockouts.append((now, now + timedelta(seconds=min(3600, 60 * 2 ** strikes))))


@attrs.define(eq=False, repr=False)
class Token:
    """A session token and what the run expects of it."""

    token: str
    login_id: str
    expires_at: datetime
    dead: bool = False

    def __repr__(self) -> str:
        return f"<token {self.token[:6]} of {self.login_id[:6]}{' dead' if self.dead else ''}>"


def all_logins(engine: regflow.Engine) -> list[Login]:
    """Every login in the store, ordered without random ids (hypothesis must replay its draws)."""
    with engine.store.transaction() as tx:
        found = [login for customer in tx.contracts.customers()
                 for login in tx.logins.of_customer(customer.customer_id)]
    return sorted(found, key=lambda login: (login.customer_id, login.created_at, login.email_key))


def events_of(snapshot: Snapshot) -> list[str]:
    """The events a screen offers."""
    return [a.event for a in snapshot.screen.actions]


def wide(text: str) -> str:
    """Full-width digits for ASCII ones."""
    return "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in text)


class FlowMachine(RuleBasedStateMachine):
    """Registrations, sign-ins, resets and admin flows in any order, with the clock moving."""

    flows = Bundle("flows")
    admin_flows = Bundle("admin_flows")

    def __init__(self) -> None:
        super().__init__()
        self.clock = regflow.ManualClock(START)
        self.engine = regflow.Engine.from_url("memory://", mail="memory", hasher="fast", clock=self.clock)
        for contract in CUSTOMERS:
            self.engine.contracts.add(**contract)
        self.mailer: Any = self.engine.mailer
        self.seen_mails = 0
        self.passwords: dict[str, str] = {}  # email key → current password
        self.locks: dict[str, Lock | None] = {}  # email key → lockout model (None: not known
        #   after a replay; a missing key: nothing counted yet)
        self.tokens: list[Token] = []
        self.login_ids: list[str] = []  # every login id ever seen (deleted ones too)
        self.deleted: set[str] = set()
        self.cutoffs = 0
        self.all_used: dict[str, str] = {}  # accepted code → flow id

    # ---- plumbing ---------------------------------------------------------------------------

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, Exception | None]:
        """Call the engine; a documented error is returned, anything else fails the run."""
        try:
            return fn(*args, **kwargs), None
        except ALLOWED_ERRORS as exc:
            return None, exc

    def new_mails(self) -> list[EmailMessage]:
        """The mails sent since the last look."""
        fresh = self.mailer.messages[self.seen_mails:]
        self.seen_mails = len(self.mailer.messages)
        return list(fresh)

    def note_mails(self, ref: FlowRef | None) -> None:
        """Attribute the codes of new mails to the flow the last call drove."""
        for mail in self.new_mails():
            found = codes_in(mail)
            if found and ref is not None:
                for code in found:
                    ref.issued.append(Issued(code, self.clock.now(), self.cutoffs))
                ref.wrong, ref.uncertain = 0, False

    def login_by_email(self, email: str | None) -> Login | None:
        """The login of an address, from the store."""
        if email is None:
            return None
        with self.engine.store.transaction() as tx:
            return tx.logins.by_email(email_key(email))

    def login(self, login_id: str) -> Login | None:
        """A login by id, from the store."""
        with self.engine.store.transaction() as tx:
            return tx.logins.get(login_id)

    def remember_logins(self) -> None:
        """Keep the id of every login that exists now."""
        for login in all_logins(self.engine):
            if login.id not in self.login_ids:
                self.login_ids.append(login.id)

    def kill_sessions_of(self, login_id: str) -> None:
        """The model: every session of that login is dead now."""
        for token in self.tokens:
            if token.login_id == login_id:
                token.dead = True

    def session_alive(self, token: Token) -> bool:
        """Whether the model says the token still signs in."""
        return not token.dead and token.expires_at > self.clock.now()

    def pick_code(self, ref: FlowRef, how: str, data: st.DataObject) -> str:
        """A code for a code screen: the newest mailed, a wrong one, an old used one, another flow's."""
        newest = ref.issued[-1].code if ref.issued else "00000000"
        if how == "right":
            return newest
        if how == "wide":
            return wide(newest)
        if how == "used" and ref.used:
            return data.draw(st.sampled_from(sorted(ref.used)), label="used code")
        if how == "older" and len(ref.issued) > 1:
            return data.draw(st.sampled_from([i.code for i in ref.issued[:-1]]), label="older code")
        if how == "foreign" and self.all_used:
            return data.draw(st.sampled_from(sorted(self.all_used)), label="foreign code")
        return f"{(int(newest) + 1) % 10**8:08d}"

    def get(self, ref: FlowRef) -> Snapshot:
        """The flow as it is now (with its token, as its client asks)."""
        return self.engine.get(ref.id, token=ref.token)

    def keep(self, ref: FlowRef) -> Any:
        """A flow for the bundle while it is active (ended ones would only dilute it)."""
        return ref if self.get(ref).status == "active" else multiple()

    # ---- one event on a user flow, with its bookkeeping --------------------------------------

    def step(self, ref: FlowRef, event: str, payload: dict[str, Any] | None = None, *,
             key: str | None = None, session: str | None = None) -> list[FlowRef]:
        """Send one event to a flow and check what came of it; new flows it handed over to."""
        before = self.get(ref)
        self.note_mails(None)
        result, error = self.call(self.engine.send, ref.id, event, payload, token=ref.token,
                                  idempotency_key=key, session=session)
        self.note_mails(ref)
        after = self.get(ref)
        if key is not None:
            ref.uncertain = True
        if isinstance(error, regflow.FlowNotFound | regflow.InvalidContext) and not (
                isinstance(error, regflow.InvalidContext) and event == "create_account"):
            raise AssertionError(f"{event} on a known flow raised {error!r}")
        if isinstance(error, regflow.FlowGone):
            assert before.status != "active", (before.state, before.status)
            return []
        if before.status != "active" and error is None and key is None:
            raise AssertionError(f"{event} was taken by a {before.status} flow")
        if isinstance(error, regflow.RateLimited):  # a limit across flows: mails or wrong codes
            assert error.limit.split(":")[0] in ("code_mail", "wrong_code"), error.limit
            assert event in ("submit", "resend_code"), event
            assert event in events_of(before), (event, events_of(before))
            assert (after.state, after.status) == (before.state, before.status)
            return []
        if isinstance(error, regflow.EventNotAllowed):
            assert event not in events_of(before), (event, before.state, events_of(before))
            assert sorted(error.allowed) == sorted(events_of(before)), (error.allowed, events_of(before))
            assert after.state == before.state
            return []
        if error is None and key is None and event not in events_of(before):
            raise AssertionError(f"{event!r} taken in {before.state} offering {events_of(before)}")
        if error is not None:
            return []
        assert result is not None
        self.check_code(ref, before, after, event, payload or {}, key)
        if ref.kind == "sign_in" and before.state == "credentials" and event == "submit":
            self.check_lockout(result, payload or {}, key)
        return self.bookkeep(ref, before, after, result, event, payload or {})

    def check_code(self, ref: FlowRef, before: Snapshot, after: Snapshot, event: str,
                   payload: dict[str, Any], key: str | None) -> None:
        """I5 as seen from outside, for a code submitted on a code screen."""
        if ref.kind not in CODE_STATE or before.state != CODE_STATE[ref.kind] or event != "submit":
            return
        typed = payload.get("code")
        if not isinstance(typed, str):
            return
        digits = unicodedata.normalize("NFKC", typed)
        accepted = after.state in ACCEPTED_STATES[ref.kind]
        newest = ref.issued[-1] if ref.issued else None
        if accepted and key is None:
            assert newest is not None, "a code was accepted by a flow that was mailed none"
            assert digits == newest.code, f"I5: {digits} accepted, the newest code is {newest.code}"
            assert digits not in ref.used, f"I5: code {digits} accepted twice in one flow"
            assert self.all_used.get(digits, ref.id) == ref.id, f"I5: {digits} used by another flow"
            age = (self.clock.now() - newest.at).total_seconds()
            assert age < CODE_TTL[ref.kind], f"I5: code accepted {age}s after it was sent"
            ref.used.add(digits)
            self.all_used[digits] = ref.id
        elif not accepted and re.fullmatch(r"[0-9]{8}", digits):
            live = (newest is not None and digits == newest.code and digits not in ref.used
                    and (self.clock.now() - newest.at).total_seconds() < CODE_TTL[ref.kind]
                    and ref.wrong < 5 and newest.cutoffs == self.cutoffs and not ref.uncertain
                    and before.status == "active" and after.state == before.state)
            if live and ref.kind != "sign_in":
                raise AssertionError(f"I5: the newest live code was refused: {after.screen.messages}")
            if digits != (newest.code if newest else None):
                ref.wrong += 1

    def check_lockout(self, result: Snapshot, payload: dict[str, Any], key: str | None) -> None:
        """SPEC 2.2: one message for unknown/wrong; 10 wrong in a row lock the address (known
        or not) for this client 1 min, doubling to 1 h; the right password ends the run."""
        email, password = payload.get("email"), payload.get("password")
        ids = [m.id for m in result.screen.messages]
        if not isinstance(email, str) or not isinstance(password, str) or any(
                m.field for m in result.screen.messages):
            return  # refused by validation: no guard was asked
        address, now = email_key(email), self.clock.now()
        login = self.login_by_email(email)
        right = login is not None and password == self.passwords.get(address)
        lock = self.locks.get(address, Lock())
        if key is not None or lock is None:  # a replay may have hidden a try: known after a success
            cleared = key is None and right and "locked_out" not in ids
            self.locks[address] = Lock() if cleared else None
            return
        self.locks[address] = lock
        until = lock.locked(now)
        if until is not None:
            assert ids[:1] == ["locked_out"], f"locked until {until}, got {ids}"
        elif not right:
            assert ids == ["credentials_invalid"], ids
            lock.fail(now)
        else:
            assert not {"credentials_invalid", "locked_out"} & set(ids), ids
            self.locks[address] = Lock()

    def bookkeep(self, ref: FlowRef, before: Snapshot, after: Snapshot, result: Snapshot,
                 event: str, payload: dict[str, Any]) -> list[FlowRef]:
        """Update the model from a transition that happened."""
        born: list[FlowRef] = []
        if result.id != ref.id:  # a hand-over answers with the new flow's snapshot
            assert result.continue_with == {"flow": result.flow, "id": result.id}
            assert before.state == "credentials", before.state
            assert event in ("create_account", "forgot_password"), event
            assert result.flow_token is not None, "a hand-over without the new flow's token"
            born.append(ref_of(result, result.flow))
        email = payload.get("email")
        if before.state in ("enter_email", "credentials") and after.state != before.state \
                and isinstance(email, str):
            ref.email = email
        if ref.kind == "registration" and before.state == "details" and after.state == "provisioning":
            login = self.login_by_email(ref.email)
            assert login is not None, "a registration was accepted but no login exists"
            assert login.customer_id == unicodedata.normalize("NFKC", payload["customer_id"]).strip()
            self.passwords[login.email_key] = payload["password"]
            self.remember_logins()  # (wrong passwords typed for the address before still count)
        if ref.kind == "sign_in" and after.state == "signed_in" and before.state != "signed_in":
            assert result.session, "signed in without a session token"
            login = self.login_by_email(ref.email)
            assert login is not None, "signed in as a login that does not exist"
            assert login.account == after_account(self.engine, ref.id)
            if all(t.token != result.session for t in self.tokens):
                self.tokens.append(Token(result.session, login.id, self.clock.now() + SESSION_TTL))
        if ref.kind == "password_reset" and before.state == "new_password" and after.state == "done":
            login = self.login_by_email(ref.email)
            assert login is not None
            self.passwords[login.email_key] = payload["password"]
            self.locks[login.email_key] = Lock()  # a new password lifts any lockout
            self.kill_sessions_of(login.id)
        return born

    # ---- rules: starting flows ---------------------------------------------------------------

    @initialize(target=flows, team=st.sampled_from(["none", "team", "team with 2FA"]))
    def first_registration(self, team: str) -> FlowRef:
        """A registration to drive; maybe a team signed in (taro, hana of 281234; ken of 285555), 2FA on."""
        if team != "none":
            for seat, address, customer in (("abcd8-01", ADDRESSES[0], CUSTOMERS[0]),
                                            ("abcd8-02", ADDRESSES[3], CUSTOMERS[0]),
                                            ("wxyz5-01", ADDRESSES[5], CUSTOMERS[1])):
                ref = self.register(seat, address, customer, PASSWORDS[0])
                assert self.get(ref).state == "provisioning"
            self.clock.advance(601)
            for seat, address in (("abcd8-01", ADDRESSES[0]), ("abcd8-02", ADDRESSES[3]),
                                  ("wxyz5-01", ADDRESSES[5])):
                ref = self.sign_in(seat, address, link=True)
                assert self.get(ref).state == "signed_in"
            if team == "team with 2FA":
                hana, ken = self.tokens[1].token, self.tokens[2].token
                for kind, token in (("set_two_factor", hana), ("require_two_factor", ken)):
                    admin_ref = self.start_admin(kind, token, None)
                    assert admin_ref is not None
                    self.admin_step(admin_ref, "submit", token, {"enabled": True})
                    assert self.get(admin_ref).state == "done"
        return ref_of(self.engine.start("registration", {"account": SEATS[2]}), "registration")

    @rule(target=flows, seat=st.sampled_from([*SEATS, UNKNOWN_SEAT]))
    def start_registration(self, seat: str) -> Any:
        """A registration from a seat (an unknown seat is refused)."""
        snap, error = self.call(self.engine.start, "registration", {"account": seat})
        if seat == UNKNOWN_SEAT:
            assert isinstance(error, regflow.InvalidContext), error
            return multiple()
        assert error is None, error
        assert snap.state == "enter_email"
        return ref_of(snap, "registration")

    @rule(target=flows, seat=st.sampled_from([*SEATS, UNKNOWN_SEAT]))
    def start_sign_in(self, seat: str) -> Any:
        """A sign-in from a seat (one no contract has: refused, or taken and refused later)."""
        snap, error = self.call(self.engine.start, "sign_in", {"account": seat})
        if error is not None:
            assert seat == UNKNOWN_SEAT, error
            assert isinstance(error, regflow.InvalidContext), error
            return multiple()
        assert snap.state == "credentials"
        assert ("continue_legacy" in events_of(snap)) == (self.clock.now() < ENFORCEMENT)
        return ref_of(snap, "sign_in")

    @rule(target=flows)
    def start_password_reset(self) -> FlowRef:
        """A password reset."""
        return ref_of(self.engine.start("password_reset"), "password_reset")

    # ---- rules: driving user flows -----------------------------------------------------------

    @rule(target=flows, ref=flows, data=st.data())
    def drive(self, ref: FlowRef, data: st.DataObject) -> Any:
        """The next event of a user flow: mostly what its screen offers, with right or wrong data."""
        snap = self.get(ref)
        menu = MENU.get((ref.kind, snap.state), [])
        event = data.draw(st.sampled_from(menu) if menu and data.draw(st.integers(0, 9)) else
                          st.sampled_from(EVENTS), label="event")
        payload = self.payload_for(ref, snap.state, event, data)
        key = data.draw(st.sampled_from([None, None, None, None, "k1", "k2"]), label="idempotency key")
        return multiple(*self.step(ref, event, payload, key=key))

    @rule(target=flows, ref=flows, count=st.integers(2, 12), data=st.data())
    def drive_on(self, ref: FlowRef, count: int, data: st.DataObject) -> Any:
        """Several events in a row on one flow, seconds to minutes apart (tries, resends, limits)."""
        born: list[FlowRef] = []
        for _ in range(count):
            self.clock.advance(data.draw(st.sampled_from([0, 1, 30, 59, 60, 61, 120, 301]), label="pause"))
            snap = self.get(ref)
            menu = MENU.get((ref.kind, snap.state))
            if not menu:
                break
            event = data.draw(st.sampled_from(menu), label="event")
            born += self.step(ref, event, self.payload_for(ref, snap.state, event, data))
        return multiple(*born)

    def payload_for(self, ref: FlowRef, state: str, event: str, data: st.DataObject) -> dict[str, Any]:
        """Data for an event on a state's screen."""
        if event != "submit":
            return {}
        if state in ("enter_email",):
            return {"email": data.draw(st.sampled_from(ADDRESSES * 3 + BAD_ADDRESSES), label="email")}
        if state in ("enter_code", "second_factor"):
            how = data.draw(st.sampled_from(["right"] * 4 + ["wide", "wrong", "used", "older", "foreign",
                                                              "junk"]), label="code")
            return {"code": "12ab" if how == "junk" else self.pick_code(ref, how, data)}
        if state == "credentials":
            email = data.draw(st.sampled_from([*ADDRESSES, "nobody@example.jp"]), label="email")
            right = self.passwords.get(email_key(email), PASSWORDS[0])
            password = data.draw(st.sampled_from([right, right, right, PASSWORDS[1], "wrong"]),
                                 label="password")
            return {"email": email, "password": password}
        if state == "details":
            customer = data.draw(st.sampled_from(CUSTOMERS), label="customer")
            password = data.draw(st.sampled_from(PASSWORDS * 4 + BAD_PASSWORDS), label="password")
            return {
                "password": password,
                "password_confirm": data.draw(st.sampled_from([password] * 5 + ["other"]), label="confirm"),
                "customer_id": data.draw(st.sampled_from(
                    [customer["customer_id"]] * 3 + [wide(customer["customer_id"]), "289999", "12"]),
                    label="customer_id"),
                "display_name": data.draw(st.sampled_from(NAMES[:1] * 5 + NAMES), label="name"),
                "tel": data.draw(st.sampled_from([customer["phone"]] * 3 + [
                    wide(customer["phone"]), customer["phone"].replace("-", ""), "03-0000-0000", "x"]),
                    label="tel"),
            }
        if state == "new_password":
            password = data.draw(st.sampled_from(PASSWORDS * 3 + BAD_PASSWORDS), label="password")
            return {"password": password,
                    "password_confirm": data.draw(st.sampled_from([password] * 4 + ["other"]),
                                                  label="confirm")}
        return {}

    @rule(target=flows, ref=flows, event=st.sampled_from(EVENTS) | st.text(max_size=20),
          payload=st.dictionaries(st.sampled_from(FIELD_NAMES) | st.text(max_size=10), HOSTILE_VALUE,
                                  max_size=6))
    def hostile_event(self, ref: FlowRef, event: str, payload: dict[str, Any]) -> Any:
        """Any event name with values of any type: a snapshot with messages or a documented error."""
        return multiple(*self.step(ref, event, payload))

    @rule(target=flows, ref=flows, data=st.data())
    def mutated_submit(self, ref: FlowRef, data: st.DataObject) -> Any:
        """The screen's own form with one field replaced by a hostile value (or one added)."""
        snap = self.get(ref)
        payload = self.payload_for(ref, snap.state, "submit", data)
        name = data.draw(st.sampled_from([*payload, *FIELD_NAMES]), label="field")
        payload[name] = data.draw(HOSTILE_VALUE, label="value")
        return multiple(*self.step(ref, "submit", payload))

    @rule(target=flows, seat=st.sampled_from(SEATS), address=st.sampled_from(ADDRESSES),
          other=st.sampled_from([False] * 4 + [True]), password=st.sampled_from(PASSWORDS))
    def enroll(self, seat: str, address: str, other: bool, password: str) -> Any:
        """A whole registration in one go, with the right code and the seat's contract (or the other's)."""
        customer = next(c for c in CUSTOMERS if (seat in c["accounts"]) != other)
        return self.keep(self.register(seat, address, customer, password))

    def register(self, seat: str, address: str, customer: dict[str, Any], password: str) -> FlowRef:
        """Start a registration and drive it through code and details."""
        ref = ref_of(self.engine.start("registration", {"account": seat}), "registration")
        self.step(ref, "submit", {"email": address})
        if self.get(ref).state == "enter_code":
            self.step(ref, "submit", {"code": ref.issued[-1].code if ref.issued else "00000000"})
        if self.get(ref).state == "details":
            self.step(ref, "submit", {
                "password": password, "password_confirm": password, "display_name": NAMES[0],
                "customer_id": customer["customer_id"], "tel": customer["phone"]})
        return ref

    @rule(target=flows, link=st.sampled_from([True] * 3 + [False]), data=st.data())
    def sign_in_fully(self, link: bool, data: st.DataObject) -> Any:
        """A whole sign-in with the right password, mostly of an existing login from its customer's seat."""
        logins = all_logins(self.engine)
        login = data.draw(st.sampled_from([None, *logins * 4]), label="login")
        if login is None:
            address, seat = ADDRESSES[0], SEATS[0]
        else:
            same = [a for a in ADDRESSES if email_key(a) == login.email_key] or [login.email]
            address = data.draw(st.sampled_from(same), label="address")
            customer = next(c for c in CUSTOMERS if c["customer_id"] == login.customer_id)
            seats = [login.account] * 3 if login.account else []
            seat = data.draw(st.sampled_from(seats + customer["accounts"] + SEATS[:1]), label="seat")
        return self.keep(self.sign_in(seat, address, link=link))

    def sign_in(self, seat: str, address: str, *, link: bool) -> FlowRef:
        """Start a sign-in and drive it with the right password and code."""
        ref = ref_of(self.engine.start("sign_in", {"account": seat}), "sign_in")
        self.step(ref, "submit", {"email": address,
                                  "password": self.passwords.get(email_key(address), PASSWORDS[0])})
        if self.get(ref).state == "second_factor":
            self.step(ref, "submit", {"code": ref.issued[-1].code if ref.issued else "00000000"})
        if self.get(ref).state == "link_prompt":
            self.step(ref, "submit" if link else "cancel")
        return ref

    @rule(count=st.integers(1, 12), finally_right=st.booleans(), data=st.data())
    def hammer(self, count: int, finally_right: bool, data: st.DataObject) -> None:
        """Wrong passwords in a row for one login (any spelling of its address), maybe the right one last."""
        logins = all_logins(self.engine)
        if not logins:
            return
        login = data.draw(st.sampled_from(logins), label="login")
        spellings = [a for a in ADDRESSES if email_key(a) == login.email_key] or [login.email]
        customer = next(c for c in CUSTOMERS if c["customer_id"] == login.customer_id)
        seat = login.account or customer["accounts"][0]
        ref = ref_of(self.engine.start("sign_in", {"account": seat}), "sign_in")
        for _ in range(count):
            self.step(ref, "submit", {"email": data.draw(st.sampled_from(spellings), label="spelling"),
                                      "password": "Wrong#Pass1"})
        if finally_right and self.get(ref).state == "credentials":
            self.step(ref, "submit", {"email": login.email, "password": self.passwords[login.email_key]})

    @rule(target=flows, address=st.sampled_from(ADDRESSES), password=st.sampled_from(PASSWORDS))
    def reset_password(self, address: str, password: str) -> Any:
        """A whole password reset: address, the mailed code, a new password."""
        ref = ref_of(self.engine.start("password_reset"), "password_reset")
        self.step(ref, "submit", {"email": address})
        if ref.issued:  # a decoy (no login) mails nothing
            self.step(ref, "submit", {"code": ref.issued[-1].code})
        if self.get(ref).state == "new_password":
            self.step(ref, "submit", {"password": password, "password_confirm": password})
        return self.keep(ref)

    # ---- rules: administration ---------------------------------------------------------------

    def pick_token(self, data: st.DataObject) -> str | None:
        """A session token: mostly a live one of the run, else a dead one or garbage."""
        live = [t.token for t in self.tokens if self.session_alive(t)]
        dead = [t.token for t in self.tokens if not self.session_alive(t)]
        kind = data.draw(st.sampled_from(["live"] * 6 + ["dead", "garbage"]), label="token kind")
        pool = {"live": live, "dead": dead}.get(kind) or GARBAGE_TOKENS
        return data.draw(st.sampled_from(pool), label="session")

    def pick_target(self, token: str | None, data: st.DataObject) -> str:
        """A target login: mostly another of the token's customer, else any ever seen, or none."""
        model = self.token_model(token)
        me = self.login(model.login_id) if model is not None else None
        mine = [login.id for login in all_logins(self.engine)
                if me is not None and login.customer_id == me.customer_id and login.id != me.id]
        kind = data.draw(st.sampled_from(["mine"] * 6 + ["any", "none"]), label="target kind")
        pool = {"mine": mine, "any": self.login_ids}.get(kind) or ["nope"]
        return data.draw(st.sampled_from(pool), label="target")

    def token_model(self, token: str | None) -> Token | None:
        return next((t for t in self.tokens if t.token == token), None)

    @rule(target=admin_flows, kind=st.sampled_from(ADMIN_FLOWS), data=st.data())
    def start_admin_flow(self, kind: str, data: st.DataObject) -> Any:
        """An admin flow started with a random (maybe a member's, maybe a dead) session."""
        token = self.pick_token(data)
        target = self.pick_target(token, data) if kind in TARGETED else None
        ref = self.start_admin(kind, token, target)
        return ref if ref is not None else multiple()

    def start_admin(self, kind: str, token: str | None, target: str | None) -> FlowRef | None:
        """Start an admin flow: a live (admin) session on its own customer's login, else Forbidden."""
        context = {"target": target} if target is not None else {}
        snap, error = self.call(self.engine.start, kind, context, session=token)
        model = self.token_model(token)
        actor = self.login(model.login_id) if model is not None else None
        alive = model is not None and self.session_alive(model) and actor is not None
        if error is None:
            assert alive, f"{kind} started with a dead session"
            assert actor is not None
            if kind != "set_two_factor":
                assert actor.role == "admin", f"{kind} started by a {actor.role}"
            if target is not None:
                found = self.login(target)
                assert found is not None, f"{kind} started on a login that does not exist"
                assert found.customer_id == actor.customer_id, f"{kind} started on another customer's login"
            assert snap.state == "confirm"
            return ref_of(snap, kind, target=target, session=token)
        assert isinstance(error, regflow.Forbidden), error
        assert isinstance(error, regflow.NotSignedIn) == (not alive), (error, model)
        return None

    @rule(ref=admin_flows, data=st.data())
    def drive_admin(self, ref: FlowRef, data: st.DataObject) -> None:
        """Confirm or cancel an admin flow, with its own session, another one, or none."""
        event = data.draw(st.sampled_from(["submit"] * 4 + ["cancel", "back"]), label="event")
        token = data.draw(st.sampled_from([ref.session] * 4 + [self.pick_token(data)]), label="session")
        self.admin_step(ref, event, token, self.enabled(ref, data))

    def enabled(self, ref: FlowRef, data: st.DataObject) -> dict[str, Any]:
        """The data of an admin flow's confirm screen (``enabled``, maybe of a wrong type)."""
        if ref.kind not in ("require_two_factor", "set_two_factor"):
            return {}
        value = data.draw(st.sampled_from([True, False, True, False, "yes", None, 1]), label="enabled")
        return {"enabled": value}

    @rule(kind=st.sampled_from(ADMIN_FLOWS), data=st.data())
    def administer(self, kind: str, data: st.DataObject) -> None:
        """An admin flow started and confirmed at once, mostly by a live session."""
        token = self.pick_token(data)
        target = self.pick_target(token, data) if kind in TARGETED else None
        ref = self.start_admin(kind, token, target)
        if ref is not None:
            self.admin_step(ref, "submit", token, self.enabled(ref, data))

    def admin_step(self, ref: FlowRef, event: str, token: str | None, payload: dict[str, Any]) -> None:
        """Send one event to an admin flow and check what came of it."""
        before = self.get(ref)
        actor_before = self.login(self.token_model(ref.session).login_id)  # type: ignore[union-attr]
        result, error = self.call(self.engine.send, ref.id, event, payload, token=ref.token,
                                  session=token)
        after = self.get(ref)
        if isinstance(error, regflow.FlowNotFound | regflow.InvalidContext | regflow.IdempotencyConflict):
            raise AssertionError(f"{event} on {ref} raised {error!r}")
        if error is not None:
            assert (after.state, after.status) == (before.state, before.status)
            return
        assert result is not None
        assert before.status == "active", f"{event} taken by a {before.status} flow"
        starter, driver = self.token_model(ref.session), self.token_model(token)
        assert driver is not None, f"{ref.kind} driven by a session that is no login's"
        assert starter is not None
        assert driver.login_id == starter.login_id, f"{ref.kind} driven by another login than its starter"
        assert self.session_alive(driver), f"{ref.kind} driven with a dead session"
        if after.state != "done":
            return
        assert actor_before is not None
        if ref.kind == "set_two_factor":
            assert payload["enabled"] is True or payload["enabled"] is False
            return
        assert actor_before.role == "admin", f"{ref.kind} done by a {actor_before.role}"
        if ref.kind == "require_two_factor":
            return
        assert ref.target is not None
        assert ref.target != actor_before.id, "an admin acted on itself"
        target = self.login(ref.target)
        if ref.kind == "delete_login":
            assert target is None, "deleted login still there"
            self.deleted.add(ref.target)
            self.kill_sessions_of(ref.target)
            self.cutoffs += 1
        elif ref.kind == "unlink_login":
            assert target is not None
            assert target.account is None, "unlinked login still holds its seat"
            self.kill_sessions_of(ref.target)
            self.cutoffs += 1
        else:
            assert target is not None
            assert target.role == "admin", "transfer did not make the target admin"
            demoted = self.login(actor_before.id)
            assert demoted is not None
            assert demoted.role == "member", "transfer did not demote the old admin"

    @rule(data=st.data())
    def list_logins(self, data: st.DataObject) -> None:
        """The admin's list: only a live admin's session, only its own customer's logins."""
        token = self.pick_token(data)
        rows, error = self.call(self.engine.admin_logins, token)
        model = self.token_model(token)
        if error is None:
            assert model is not None, "a garbage token listed logins"
            assert self.session_alive(model), f"{model} listed logins"
            me = self.login(model.login_id)
            assert me is not None
            assert me.role == "admin", f"a {me.role} listed logins"
            mine = {login.id for login in all_logins(self.engine) if login.customer_id == me.customer_id}
            assert {row["id"] for row in rows} == mine
        else:
            assert isinstance(error, regflow.Forbidden), error

    @rule(data=st.data())
    def end_session(self, data: st.DataObject) -> None:
        """Sign out: true exactly for a live session."""
        token = self.pick_token(data)
        model = self.token_model(token)
        ended, error = self.call(self.engine.end_session, token)
        assert error is None, error
        alive = model is not None and self.session_alive(model) and self.login(model.login_id) is not None
        assert ended == alive, (token, model)
        if model is not None:
            model.dead = True

    # ---- rules: time -------------------------------------------------------------------------

    @rule(seconds=st.sampled_from([1, 59, 60, 61, 300, 599, 600, 601, 900, 1800, 3600])
          | st.integers(0, 900))
    def advance(self, seconds: int) -> None:
        """Time passes."""
        self.clock.advance(seconds)

    @rule(ref=flows, offset=st.sampled_from([-1, 0, 1]), data=st.data())
    def advance_to_deadline(self, ref: FlowRef, offset: int, data: st.DataObject) -> None:
        """Move the clock to a deadline of a flow (a timer or its expiry), a second before or after."""
        snap = self.get(ref)
        deadlines = [t.at for t in snap.timers] + ([snap.expires_at] if snap.expires_at else [])
        deadlines += [i.at + timedelta(seconds=CODE_TTL[ref.kind]) for i in ref.issued[-1:]]
        deadlines += [ENFORCEMENT]
        later = [d + timedelta(seconds=offset) for d in deadlines
                 if d + timedelta(seconds=offset) > self.clock.now()]
        if later:
            self.clock.set(data.draw(st.sampled_from(sorted(later)), label="deadline"))

    @rule()
    def sweep(self) -> None:
        """The worker applies what fell due."""
        assert self.engine.sweep() >= 0

    # ---- invariants --------------------------------------------------------------------------

    @invariant()
    def store_invariants(self) -> None:
        """I1–I4 hold over the store."""
        check_invariants(self.engine)

    @invariant()
    def sessions_die_with_their_login(self) -> None:
        """A session works exactly while the model says it lives (dead at once with its login)."""
        for model in self.tokens:
            _, error = self.call(self.engine.admin_logins, model.token)
            if self.session_alive(model):
                assert not isinstance(error, regflow.NotSignedIn), f"{model} refused as signed out"
                me = self.login(model.login_id)
                assert me is not None
                assert (error is None) == (me.role == "admin"), (model, me.role, error)
            else:
                assert isinstance(error, regflow.NotSignedIn), f"{model} still signs in: {error!r}"

    @invariant()
    def no_mail_left_queued(self) -> None:
        """Mail went out right after each commit (the memory mailer never fails)."""
        assert self.engine.deliver() == 0


def after_account(engine: regflow.Engine, flow_id: str) -> str:
    """The seat a flow was started from."""
    with engine.store.transaction() as tx:
        record = tx.flows.load(flow_id)
    assert record is not None
    return str(record.data["account"])


FlowMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=60, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
TestFlowMachine = FlowMachine.TestCase


@pytest.mark.parametrize("token", GARBAGE_TOKENS)
def test_garbage_tokens_are_not_signed_in(token: str | None) -> None:
    """Any token that is no session's, however odd, is NotSignedIn (not a crash)."""
    engine = regflow.Engine.from_url("memory://", mail="memory", hasher="fast",
                                     clock=regflow.ManualClock(START))
    with pytest.raises(regflow.NotSignedIn):
        engine.admin_logins(token)  # type: ignore[arg-type]
    assert engine.end_session(token) is False  # type: ignore[arg-type]
    with pytest.raises(regflow.NotSignedIn):
        engine.start("set_two_factor", session=token)  # type: ignore[arg-type]


# ---- regressions: text no store can keep (lone surrogates), handed to the Python embedding ------

LONE = "\ud800"


def fresh_engine(kind: str, tmp_path: Path) -> regflow.Engine:
    """A memory or SQLite engine with customer 281234, at START + a day (after enforcement)."""
    url = "memory://" if kind == "memory" else f"sqlite:///{tmp_path / 'fuzz.db'}"
    engine = regflow.Engine.from_url(url, mail="memory", hasher="fast",
                                     clock=regflow.ManualClock(START + timedelta(days=1)))
    engine.contracts.add(**CUSTOMERS[0])
    return engine


def at_details(engine: regflow.Engine) -> Snapshot:
    """A registration of taro on abcd8-01 at the details screen."""
    snap = engine.start("registration", {"account": "abcd8-01"})
    engine.send(snap, "submit", {"email": ADDRESSES[0]})
    mailer: Any = engine.mailer
    return engine.send(snap, "submit", {"code": codes_in(mailer.messages[-1])[0]})


def contract_details(**overrides: str) -> dict[str, str]:
    """A details form matching 281234, with some values replaced."""
    form = {"password": PASSWORDS[0], "password_confirm": PASSWORDS[0], "customer_id": "281234",
            "display_name": NAMES[0], "tel": "03-1234-5678"}
    return {**form, **overrides}


def refused(call: Callable[[], Any]) -> Snapshot | regflow.RegflowError:
    """The answer to a call that must not crash: a snapshot, or a documented error."""
    try:
        return call()  # type: ignore[no-any-return]
    except regflow.RegflowError as exc:
        return exc


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
@pytest.mark.parametrize("field", ["password", "display_name", "tel"])
def test_lone_surrogate_in_details_is_a_field_error(kind: str, field: str, tmp_path: Path) -> None:
    """A details form with a lone surrogate in one field: that field's message, no login."""
    engine = fresh_engine(kind, tmp_path)
    snap = at_details(engine)
    value = {"password": PASSWORDS[0] + LONE, "display_name": "山田" + LONE, "tel": "03" + LONE}[field]
    form = contract_details(**{field: value}, **({"password_confirm": value} if field == "password" else {}))
    answer = refused(lambda: engine.send(snap, "submit", form))
    assert isinstance(answer, Snapshot), answer
    assert answer.state == "details", answer.state
    assert field in {m.field for m in answer.screen.messages}, answer.screen.messages
    assert all_logins(engine) == []


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_lone_surrogate_in_a_sign_in_password_is_refused(kind: str, tmp_path: Path) -> None:
    """A password with a lone surrogate signs nobody in: credentials_invalid or a field message."""
    engine = fresh_engine(kind, tmp_path)
    snap = engine.start("sign_in", {"account": "abcd8-01"})
    answer = refused(lambda: engine.send(snap, "submit", {"email": ADDRESSES[0], "password": "x" + LONE}))
    assert isinstance(answer, Snapshot), answer
    assert answer.state == "credentials"
    ids = [m.id for m in answer.screen.messages]
    assert ids == ["credentials_invalid"] or {m.field for m in answer.screen.messages} == {"password"}, ids


@pytest.mark.parametrize("call", ["email", "account", "flow_id", "idempotency_key"])
def test_lone_surrogates_elsewhere_are_refused_on_sqlite(call: str, tmp_path: Path) -> None:
    """A lone surrogate in an address, seat, flow id or key: refused, not UnicodeEncodeError."""
    engine = fresh_engine("sqlite", tmp_path)
    flow = engine.start("registration", {"account": "abcd8-01"})
    calls: dict[str, Callable[[], Any]] = {
        "email": lambda: engine.send(flow, "submit", {"email": "taro" + LONE + "@example.jp"}),
        "account": lambda: engine.start("sign_in", {"account": "abcd8-0" + LONE}),
        "flow_id": lambda: engine.get(LONE),
        "idempotency_key": lambda: engine.send(flow, "submit", {"email": ADDRESSES[0]},
                                               idempotency_key="k" + LONE),
    }
    answer = refused(calls[call])
    if isinstance(answer, Snapshot):
        assert call in ("email", "idempotency_key"), answer
        assert call != "email" or answer.state == "enter_email"
