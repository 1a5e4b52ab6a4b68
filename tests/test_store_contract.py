"""One contract for every Store adapter: MemoryStore, PeeweeStore on a SQLite file and on
PostgreSQL (a fresh schema per test; skipped when no server answers), then what only PostgreSQL
has: row locks that block, SKIP LOCKED, deadlocks retried as ConcurrentUpdate, schemas."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import attrs
import peewee as pw
import pytest
from pg import drop_schema, postgres_url, schema_of

from regflow.adapters.memory import MemoryStore
from regflow.adapters.peewee_store import PeeweeStore
from regflow.ground.exceptions import ConcurrentUpdate, ConstraintViolation, StoreError, TransientError
from regflow.ground.ports import Store, Transaction
from regflow.ground.records import (
    Code,
    Customer,
    Cutoffs,
    FlowRecord,
    IdempotencyRecord,
    JournalEntry,
    LimitHit,
    Login,
    OutboxMail,
    Session,
)

T0 = datetime(2025, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)


def at(seconds: float) -> datetime:
    """An instant ``seconds`` after T0."""
    return T0 + timedelta(seconds=seconds)


def make_flow(flow_id: str = "f1", **changes: Any) -> FlowRecord:
    """An active flow with nested data, two timers and an expiry."""
    values: dict[str, Any] = {
        "id": flow_id,
        "flow": "register",
        "version": 2,
        "state": "enter_email",
        "status": "active",
        "data": {"email": "a@example.jp", "tries": 1, "nested": {"list": [1, "二", None, True]}},
        "timers": [("remind", at(60.000001)), ("give_up", at(3600))],
        "expires_at": at(7200),
        "created_at": at(0),
        "updated_at": at(0.5),
        "token_digest": "7f" * 32,  # SHA-256 (hex) of the flow token
    }
    values.update(changes)
    return FlowRecord(**values)


def make_login(login_id: str = "l1", **changes: Any) -> Login:
    """A member login of customer c1 without a seat."""
    values: dict[str, Any] = {
        "id": login_id,
        "customer_id": "c1",
        "email": f"{login_id}@Example.jp",
        "email_key": f"{login_id}@example.jp",
        "password_hash": "$argon2id$x",
        "display_name": "山田 太郎",
        "role": "member",
        "two_factor": False,
        "ready_at": at(1),
        "account": None,
        "created_at": at(0),
    }
    values.update(changes)
    return Login(**values)


def make_code(code_id: str, **changes: Any) -> Code:
    """A fresh verification code of flow f1."""
    values: dict[str, Any] = {
        "id": code_id,
        "flow_id": "f1",
        "purpose": "verify_email",
        "email_key": "a@example.jp",
        "digest": f"digest-{code_id}",
        "expires_at": at(600),
        "created_at": at(0),
    }
    values.update(changes)
    return Code(**values)


def make_mail(mail_id: str, created: float, **changes: Any) -> OutboxMail:
    """A queued mail created ``created`` seconds after T0."""
    values: dict[str, Any] = {
        "id": mail_id,
        "flow_id": "f1",
        "to": "a@example.jp",
        "message": b"Message-ID: <" + mail_id.encode() + b">\r\n\r\n\x00\xff",
        "created_at": at(created),
    }
    values.update(changes)
    return OutboxMail(**values)


def make_session(session_id: str, login_id: str = "l1", **changes: Any) -> Session:
    """A session of ``login_id`` started at T0, for an hour."""
    values: dict[str, Any] = {
        "id": session_id,
        "login_id": login_id,
        "digest": f"sha256-{session_id}",
        "created_at": at(0),
        "expires_at": at(3600),
    }
    values.update(changes)
    return Session(**values)


def entry(flow_id: str, event: str, seconds: float) -> JournalEntry:
    """A journal entry of ``event`` at T0 + ``seconds``."""
    return JournalEntry(flow_id, "a", "b", event, "user", at(seconds), "ok")


def sqlite_url(path: Path) -> str:
    """The store URL of a SQLite file (absolute paths give the four-slash form)."""
    return f"sqlite:///{path}"


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """Each adapter in turn: SQLite on a real file, PostgreSQL in a fresh schema."""
    if request.param == "memory":
        yield MemoryStore()
        return
    url = postgres_url() if request.param == "postgresql" else sqlite_url(tmp_path / "store.db")
    made = PeeweeStore.from_url(url)
    try:
        yield made
    finally:
        made.close()
        if request.param == "postgresql":
            drop_schema(url)


@pytest.fixture
def pg_store() -> Iterator[PeeweeStore]:
    """A PeeweeStore on PostgreSQL in a fresh schema (the test skips without a server)."""
    url = postgres_url()
    made = PeeweeStore.from_url(url)
    try:
        yield made
    finally:
        made.close()
        drop_schema(url)


def peer_of(store: Store) -> Store:
    """Another handle on the same data: a second PeeweeStore on the file, or the same store."""
    return PeeweeStore.from_url(store.url) if isinstance(store, PeeweeStore) else store


def test_flow_round_trip(store: Store) -> None:
    """A flow comes back equal: data, timers and instants to the microsecond."""
    flow = make_flow()
    with store.transaction() as tx:
        tx.flows.insert(flow)
    with store.transaction() as tx:
        loaded = tx.flows.load("f1")
        assert tx.flows.load("nope") is None
    assert loaded == flow
    assert loaded is not None
    assert loaded.timers[0][1].microsecond == 891012
    assert loaded.created_at.utcoffset() == timedelta(0)


def test_instant_in_other_zone_comes_back_equal(store: Store) -> None:
    """An aware instant in another zone comes back as the same instant."""
    jst = timezone(timedelta(hours=9))
    flow = make_flow(created_at=datetime(2025, 1, 1, 9, 0, 0, 1, tzinfo=jst))
    with store.transaction() as tx:
        tx.flows.insert(flow)
        loaded = tx.flows.load("f1")
    assert loaded is not None
    assert loaded.created_at == datetime(2025, 1, 1, 0, 0, 0, 1, tzinfo=UTC)


def test_records_are_copies(store: Store) -> None:
    """Mutating a record given to or taken from the store changes nothing stored."""
    flow = make_flow()
    with store.transaction() as tx:
        tx.flows.insert(flow)
        flow.data["nested"]["list"].append("x")
        flow.timers.clear()
        loaded = tx.flows.load("f1")
        assert loaded is not None
        loaded.data["email"] = "changed"
        loaded.timers.append(("late", at(9)))
        assert tx.flows.load("f1") == make_flow()


def test_duplicate_flow_id_is_refused(store: Store) -> None:
    """Inserting a flow id twice raises ConstraintViolation('id')."""
    with store.transaction() as tx:
        tx.flows.insert(make_flow())
        with pytest.raises(ConstraintViolation) as caught:
            tx.flows.insert(make_flow(state="other"))
    assert caught.value.constraint == "id"


def test_update_is_version_checked(store: Store) -> None:
    """update saves and bumps rev when it matches, returns False when stale or unknown."""
    with store.transaction() as tx:
        tx.flows.insert(make_flow())
    with store.transaction() as tx:
        first = tx.flows.load("f1")
        stale = tx.flows.load("f1")
        assert first is not None
        assert stale is not None
        first.state = "confirm"
        assert tx.flows.update(first, 0) is True
        assert first.rev == 1
        stale.state = "lost"
        assert tx.flows.update(stale, 0) is False
        assert stale.rev == 0
        assert tx.flows.update(make_flow("ghost"), 0) is False
    with store.transaction() as tx:
        loaded = tx.flows.load("f1")
    assert loaded is not None
    assert (loaded.state, loaded.rev) == ("confirm", 1)


def test_journal_keeps_insertion_order(store: Store) -> None:
    """history lists a flow's entries in the order they were written."""
    entries = [entry("f1", "b", 5), entry("f1", "a", 1), entry("f1", "c", 1)]
    with store.transaction() as tx:
        for item in entries:
            tx.flows.journal(item)
        tx.flows.journal(entry("f2", "z", 0))
    with store.transaction() as tx:
        assert tx.flows.history("f1") == entries
        assert tx.flows.history("f2") == [entry("f2", "z", 0)]
        assert tx.flows.history("none") == []


def test_idempotency_round_trip(store: Store) -> None:
    """A remembered answer comes back equal; the same key twice is refused."""
    record = IdempotencyRecord("f1", "key-1", "sha256:ab", {"status": 200, "body": ["é"]}, at(3))
    with store.transaction() as tx:
        tx.flows.remember(record)
    with store.transaction() as tx:
        assert tx.flows.idempotent("f1", "key-1") == record
        assert tx.flows.idempotent("f1", "key-2") is None
        assert tx.flows.idempotent("f2", "key-1") is None
        with pytest.raises(ConstraintViolation) as caught:
            tx.flows.remember(record)
    assert caught.value.constraint == "idempotency"


def test_customer_put_get_and_replace_accounts(store: Store) -> None:
    """put_customer inserts, then replaces phone, licenses and the seat list."""
    with store.transaction() as tx:
        tx.contracts.put_customer(Customer("c1", "03-1234-5678", 3, ["A2", "A1", "A3"]))
    with store.transaction() as tx:
        assert tx.contracts.customer("c1") == Customer("c1", "03-1234-5678", 3, ["A2", "A1", "A3"])
        assert tx.contracts.customer("c2") is None
        found = tx.contracts.customer_of_account("A1")
        assert found is not None
        assert found.customer_id == "c1"
        assert tx.contracts.customer_of_account("B9") is None
        tx.contracts.put_customer(Customer("c1", "090-0000-0000", 2, ["A3", "A4"]))
    with store.transaction() as tx:
        assert tx.contracts.customer("c1") == Customer("c1", "090-0000-0000", 2, ["A3", "A4"])
        assert tx.contracts.customer_of_account("A1") is None
        assert tx.contracts.customer_of_account("A4") == tx.contracts.customer("c1")


def test_seat_of_other_customer_is_refused(store: Store) -> None:
    """A seat belongs to one customer: taking another's is refused and changes nothing."""
    with store.transaction() as tx:
        tx.contracts.put_customer(Customer("c1", "1", 1, ["A1"]))
        with pytest.raises(ConstraintViolation) as caught:
            tx.contracts.put_customer(Customer("c2", "2", 1, ["A2", "A1"]))
        assert caught.value.constraint == "seat"
        assert tx.contracts.customer("c2") is None
        assert tx.contracts.customer_of_account("A2") is None


def test_login_lookups(store: Store) -> None:
    """Logins are found by email key, id and customer; count counts them."""
    second = make_login("l2", created_at=at(-5), role="admin", account="A1")
    with store.transaction() as tx:
        tx.logins.insert(make_login("l1"))
        tx.logins.insert(second)
        tx.logins.insert(make_login("l3", customer_id="c2"))
    with store.transaction() as tx:
        assert tx.logins.by_email("l1@example.jp") == make_login("l1")
        assert tx.logins.by_email("L1@example.jp") is None
        assert tx.logins.get("l2") == second
        assert tx.logins.get("nope") is None
        assert tx.logins.by_email("l1@example.jp", lock=True) == make_login("l1")
        assert tx.logins.get("l2", lock=True) == second
        assert tx.logins.get("nope", lock=True) is None
        assert tx.logins.by_account("A1") == second
        assert tx.logins.by_account("A2") is None
        assert [x.id for x in tx.logins.of_customer("c1")] == ["l2", "l1"]
        assert tx.logins.count("c1") == 2
        assert tx.logins.count("c2") == 1
        assert tx.logins.count("c3") == 0
        assert tx.logins.of_customer("c3") == []


@pytest.mark.parametrize(
    ("second", "constraint"),
    [
        (make_login("l2", email_key="l1@example.jp"), "email"),
        (make_login("l2", account="A1"), "account"),
        (make_login("l2", role="admin"), "admin"),
        (make_login("l1", email_key="other@example.jp"), "id"),
    ],
)
def test_login_constraints(store: Store, second: Login, constraint: str) -> None:
    """I1 (email key), I2 (account), I4 (one admin) and the id are enforced by the store."""
    with store.transaction() as tx:
        tx.logins.insert(make_login("l1", role="admin", account="A1"))
    with store.transaction() as tx:
        with pytest.raises(ConstraintViolation) as caught:
            tx.logins.insert(second)
        assert caught.value.constraint == constraint
        assert tx.logins.count("c1") == 1


def test_logins_without_seat_or_admin_role_coexist(store: Store) -> None:
    """Many seatless members and one admin per customer are allowed."""
    with store.transaction() as tx:
        tx.logins.insert(make_login("l1", role="admin"))
        tx.logins.insert(make_login("l2"))
        tx.logins.insert(make_login("l3"))
        tx.logins.insert(make_login("l4", customer_id="c2", role="admin"))
        assert tx.logins.count("c1") == 3


def test_refused_insert_leaves_transaction_usable(store: Store) -> None:
    """After a ConstraintViolation, the same transaction can still write and commit."""
    with store.transaction() as tx:
        tx.logins.insert(make_login("l1"))
        with pytest.raises(ConstraintViolation):
            tx.logins.insert(make_login("l2", email_key="l1@example.jp"))
        tx.logins.insert(make_login("l3"))
    with store.transaction() as tx:
        assert [x.id for x in tx.logins.of_customer("c1")] == ["l1", "l3"]


def test_login_update_saves_every_field(store: Store) -> None:
    """update saves every field but id; the old email key, seat and admin role are freed."""
    with store.transaction() as tx:
        tx.logins.insert(make_login("l1", role="admin", account="A1"))
    changed = make_login(
        "l1",
        customer_id="c2",
        email="New@Example.jp",
        email_key="new@example.jp",
        password_hash="$argon2id$y",
        display_name="Yamada",
        role="member",
        two_factor=True,
        ready_at=at(2),
        account="A2",
        created_at=at(-1),
    )
    with store.transaction() as tx:
        tx.logins.update(changed)
    with store.transaction() as tx:
        assert tx.logins.get("l1") == changed
        assert tx.logins.by_email("new@example.jp") == changed
        assert tx.logins.by_email("l1@example.jp") is None
        assert tx.logins.by_account("A2") == changed
        assert tx.logins.by_account("A1") is None
        assert (tx.logins.count("c1"), tx.logins.count("c2")) == (0, 1)
        tx.logins.insert(make_login("l2", email_key="l1@example.jp", role="admin", account="A1"))
        with pytest.raises(StoreError):
            tx.logins.update(make_login("unknown"))


@pytest.mark.parametrize(
    ("change", "constraint"),
    [
        ({"email_key": "l1@example.jp"}, "email"),
        ({"account": "A1"}, "account"),
        ({"role": "admin"}, "admin"),
    ],
)
def test_login_update_constraints(store: Store, change: dict[str, Any], constraint: str) -> None:
    """update is refused like insert, and the transaction stays usable afterwards."""
    with store.transaction() as tx:
        tx.logins.insert(make_login("l1", role="admin", account="A1"))
        tx.logins.insert(make_login("l2", account="A2"))
    with store.transaction() as tx:
        with pytest.raises(ConstraintViolation) as caught:
            tx.logins.update(make_login("l2", **{"account": "A2", **change}))
        assert caught.value.constraint == constraint
        tx.logins.update(make_login("l2", account="A2", display_name="still usable"))
        tx.logins.update(make_login("l1", role="admin", account="A1", two_factor=True))  # itself: ok
    with store.transaction() as tx:
        assert tx.logins.get("l2") == make_login("l2", account="A2", display_name="still usable")
        assert tx.logins.by_email("l2@example.jp") is not None


def test_login_delete_frees_email_seat_and_admin(store: Store) -> None:
    """delete removes the login; its email key, seat and admin role can be taken again."""
    with store.transaction() as tx:
        tx.logins.insert(make_login("l1", role="admin", account="A1"))
        tx.logins.insert(make_login("l2"))
        tx.sessions.insert(make_session("s1", "l1"))
    with store.transaction() as tx:
        tx.logins.delete("l1")
        assert tx.logins.get("l1") is None
        assert tx.logins.by_account("A1") is None
        with pytest.raises(StoreError):
            tx.logins.delete("l1")
    with store.transaction() as tx:
        assert [x.id for x in tx.logins.of_customer("c1")] == ["l2"]
        assert tx.logins.count("c1") == 1
        assert tx.sessions.by_digest("sha256-s1") is not None  # ended by the engine, not here
        tx.logins.insert(make_login("l3", email_key="l1@example.jp", role="admin", account="A1"))
        assert tx.logins.by_email("l1@example.jp") == tx.logins.get("l3")


def test_sessions_insert_find_and_end(store: Store) -> None:
    """Sessions are found by digest; end ends one, end_of_login all of a login but one."""
    with store.transaction() as tx:
        for session_id, login_id in [("s1", "l1"), ("s2", "l1"), ("s3", "l1"), ("s4", "l2")]:
            tx.sessions.insert(make_session(session_id, login_id))
    with store.transaction() as tx:
        assert tx.sessions.by_digest("sha256-s2") == make_session("s2")
        assert tx.sessions.by_digest("nope") is None
        tx.sessions.end("s1")
        tx.sessions.end("s1")  # ending twice (or an unknown session) does nothing
        tx.sessions.end("unknown")
        assert tx.sessions.by_digest("sha256-s1") is None
        assert tx.sessions.end_of_login("l1", keep="s3") == 1
        assert tx.sessions.end_of_login("l9") == 0
    with store.transaction() as tx:
        assert tx.sessions.by_digest("sha256-s2") is None
        assert tx.sessions.by_digest("sha256-s3") == make_session("s3")
        assert tx.sessions.end_of_login("l1") == 1
        assert tx.sessions.end_of_login("l1") == 0
        assert tx.sessions.by_digest("sha256-s4") == make_session("s4", "l2")


@pytest.mark.parametrize(
    ("second", "constraint"),
    [(make_session("s2", digest="sha256-s1"), "digest"), (make_session("s1", digest="x"), "id")],
)
def test_session_constraints(store: Store, second: Session, constraint: str) -> None:
    """A digest or id taken twice is refused; the transaction stays usable."""
    with store.transaction() as tx:
        tx.sessions.insert(make_session("s1"))
        with pytest.raises(ConstraintViolation) as caught:
            tx.sessions.insert(second)
        assert caught.value.constraint == constraint
        tx.sessions.insert(make_session("s3"))
    with store.transaction() as tx:
        assert tx.sessions.by_digest("sha256-s3") == make_session("s3")


@pytest.mark.parametrize("table", ["flows", "codes", "outbox"])
def test_refused_id_leaves_transaction_usable(store: Store, table: str) -> None:
    """A duplicate id in any table is refused without spoiling the rest of the transaction."""
    insert: dict[str, Callable[[Transaction, str], None]] = {
        "flows": lambda tx, i: tx.flows.insert(make_flow(i)),
        "codes": lambda tx, i: tx.codes.insert(make_code(i)),
        "outbox": lambda tx, i: tx.outbox.enqueue(make_mail(i, 0)),
    }
    with store.transaction() as tx:
        insert[table](tx, "x1")
        with pytest.raises(ConstraintViolation) as caught:
            insert[table](tx, "x1")
        assert caught.value.constraint == "id"
        tx.logins.insert(make_login("l1"))
    with store.transaction() as tx:
        assert tx.logins.get("l1") == make_login("l1")


def test_customers_and_two_factor_policy(store: Store) -> None:
    """customers lists every customer by id with seats; the 2FA policy is kept and set."""
    with store.transaction() as tx:
        assert tx.contracts.customers() == []
        tx.contracts.put_customer(Customer("c2", "2", 2, ["B2", "B1"], require_two_factor=True))
        tx.contracts.put_customer(Customer("c1", "1", 1, ["A1"]))
        tx.contracts.put_customer(Customer("c3", "3", 0, []))
    with store.transaction() as tx:
        assert tx.contracts.customers() == [
            Customer("c1", "1", 1, ["A1"]),
            Customer("c2", "2", 2, ["B2", "B1"], require_two_factor=True),
            Customer("c3", "3", 0, []),
        ]
        tx.contracts.set_require_two_factor("c1", True)
        tx.contracts.set_require_two_factor("c2", False)
        with pytest.raises(StoreError):
            tx.contracts.set_require_two_factor("c9", True)
    with store.transaction() as tx:
        assert [c.require_two_factor for c in tx.contracts.customers()] == [True, False, False]
        found = tx.contracts.customer_of_account("A1")
        assert found is not None
        assert found.require_two_factor is True


def test_lock_calls_return_the_same_rows(store: Store) -> None:
    """lock and the locking reads work on every store (no-ops where writers are serialised)."""
    with store.transaction() as tx:
        tx.contracts.put_customer(Customer("c1", "1", 1, ["A1"]))
        tx.flows.insert(make_flow())
        tx.outbox.enqueue(make_mail("m1", 0))
    with store.transaction() as tx:
        tx.contracts.lock("c1")
        tx.contracts.lock("unknown")
        assert tx.flows.load("f1") == make_flow()
        assert tx.outbox.get("m1") == make_mail("m1", 0)
        assert [m.id for m in tx.outbox.due(at(1), 10)] == ["m1"]
    with store.transaction() as tx:
        contracts = tx.contracts
    with pytest.raises(StoreError):
        contracts.lock("c1")


def test_void_for_voids_live_codes_of_one_address(store: Store) -> None:
    """void_for voids unused, unvoided codes of the address only, and counts them."""
    with store.transaction() as tx:
        tx.codes.insert(make_code("k1"))
        tx.codes.insert(make_code("k2", flow_id="f2", purpose="reset"))
        tx.codes.insert(make_code("k3", flow_id="f3", used_at=at(5)))
        tx.codes.insert(make_code("k4", flow_id="f4", void=True))
        tx.codes.insert(make_code("k5", flow_id="f5", email_key="b@example.jp"))
    with store.transaction() as tx:
        assert tx.codes.void_for("a@example.jp") == 2
        assert tx.codes.void_for("a@example.jp") == 0
        assert tx.codes.void_for("nobody@example.jp") == 0
    with store.transaction() as tx:
        assert tx.codes.latest("f1", "verify_email") == make_code("k1", void=True)
        assert tx.codes.latest("f2", "reset") == make_code("k2", flow_id="f2", purpose="reset", void=True)
        assert tx.codes.latest("f3", "verify_email") == make_code("k3", flow_id="f3", used_at=at(5))
        assert tx.codes.latest("f5", "verify_email") == make_code(
            "k5", flow_id="f5", email_key="b@example.jp"
        )


def test_codes_latest_insert_update(store: Store) -> None:
    """latest is the code issued last (even at the same instant); update saves its state."""
    with store.transaction() as tx:
        assert tx.codes.latest("f1", "verify_email") is None
        tx.codes.insert(make_code("k1"))
        tx.codes.insert(make_code("k0"))  # same created_at, issued later
        tx.codes.insert(make_code("k2", purpose="reset"))
    with store.transaction() as tx:
        latest = tx.codes.latest("f1", "verify_email")
        assert latest == make_code("k0")
        assert latest is not None
        latest.wrong_tries = 2
        latest.used_at = at(30.25)
        latest.void = True
        tx.codes.update(attrs.evolve(latest, email_key="other@example.jp"))  # address as issued
        assert tx.codes.latest("f1", "reset") == make_code("k2", purpose="reset")
        assert tx.codes.latest("f2", "verify_email") is None
        with pytest.raises(StoreError):
            tx.codes.update(make_code("unknown"))
    with store.transaction() as tx:
        assert tx.codes.latest("f1", "verify_email") == latest


def test_outbox_due_order_and_next_attempt(store: Store) -> None:
    """due lists queued mail oldest first, honouring next_attempt_at; update and get work."""
    with store.transaction() as tx:
        tx.outbox.enqueue(make_mail("m3", 3))
        tx.outbox.enqueue(make_mail("m1", 1))
        tx.outbox.enqueue(make_mail("m2", 2, next_attempt_at=at(100)))
        tx.outbox.enqueue(make_mail("m0", 0, status="sent", sent_at=at(0.1)))
        tx.outbox.enqueue(make_mail("m4", 4, flow_id=None, next_attempt_at=at(10)))
    with store.transaction() as tx:
        assert [m.id for m in tx.outbox.due(at(10), 10)] == ["m1", "m3", "m4"]
        assert [m.id for m in tx.outbox.due(at(100), 10)] == ["m1", "m2", "m3", "m4"]
        assert [m.id for m in tx.outbox.due(at(100), 2)] == ["m1", "m2"]
        assert tx.outbox.get("m4") == make_mail("m4", 4, flow_id=None, next_attempt_at=at(10))
        assert tx.outbox.get("nope") is None
        sent = tx.outbox.get("m1")
        assert sent is not None
        sent.status, sent.attempts, sent.sent_at = "sent", 1, at(11)
        tx.outbox.update(sent)
        retry = tx.outbox.get("m3")
        assert retry is not None
        retry.attempts, retry.next_attempt_at, retry.last_error = 1, at(50), "421 busy"
        tx.outbox.update(retry)
        with pytest.raises(StoreError):
            tx.outbox.update(make_mail("unknown", 0))
    with store.transaction() as tx:
        assert [m.id for m in tx.outbox.due(at(10), 10)] == ["m4"]
        assert [m.id for m in tx.outbox.due(at(50), 10)] == ["m3", "m4"]
        assert tx.outbox.get("m1") == sent
        assert tx.outbox.get("m3") == retry


def test_outbox_leases_lapse_on_the_database_clock(store: Store) -> None:
    """A sending mail is due once its lease has passed on database_now (the process's ``now``
    in memory), whatever ``now`` the caller's clock gives; queued mail follows ``now``."""
    with store.transaction() as tx:
        shared = tx.outbox.database_now()
        base = T0 if shared is None else shared
        tx.outbox.enqueue(make_mail("live", 1, status="sending", attempts=1,
                                    next_attempt_at=base + timedelta(seconds=60)))
        tx.outbox.enqueue(make_mail("lapsed", 2, status="sending", attempts=1,
                                    next_attempt_at=base - timedelta(seconds=1)))
        tx.outbox.enqueue(make_mail("waiting", 3, attempts=1,
                                    next_attempt_at=base + timedelta(seconds=60)))
    with store.transaction() as tx:
        if shared is None:  # memory: one process, one clock
            assert isinstance(store, MemoryStore)
            assert [m.id for m in tx.outbox.due(T0, 10)] == ["lapsed"]
            assert [m.id for m in tx.outbox.due(at(60), 10)] == ["live", "lapsed", "waiting"]
            return
        assert abs(shared - datetime.now(UTC)) < timedelta(seconds=5)
        time.sleep(0.01)
        later = tx.outbox.database_now()
        assert later is not None
        assert later > shared  # the clock at each statement, not the transaction's start
        # A caller whose clock is a day behind still sees the lapsed lease; one a year ahead
        # sees the waiting mail too, but not the live lease.
        assert [m.id for m in tx.outbox.due(shared - timedelta(days=1), 10)] == ["lapsed"]
        assert [m.id for m in tx.outbox.due(shared + timedelta(days=365), 10)] == [
            "lapsed", "waiting"]


def test_due_flows_order_and_status(store: Store) -> None:
    """due_flows lists active flows whose timer or expiry is due, earliest first."""
    with store.transaction() as tx:
        tx.flows.insert(make_flow("late", timers=[], expires_at=at(50)))
        tx.flows.insert(make_flow("early", timers=[("t", at(10))], expires_at=at(90)))
        tx.flows.insert(make_flow("idle", timers=[], expires_at=None))
        tx.flows.insert(make_flow("done", status="completed", timers=[("t", at(1))]))
        tx.flows.insert(make_flow("future", timers=[("t", at(500))], expires_at=at(900)))
    assert list(store.due_flows(at(5), 10)) == []
    assert list(store.due_flows(at(50), 10)) == ["early", "late"]
    assert list(store.due_flows(at(1000), 1)) == ["early"]
    with store.transaction() as tx:
        early = tx.flows.load("early")
        assert early is not None
        early.status, early.expires_at = "cancelled", None
        assert tx.flows.update(early, early.rev)
        late = tx.flows.load("late")
        assert late is not None
        late.timers = [("t", at(1))]
        assert tx.flows.update(late, late.rev)
    assert list(store.due_flows(at(1000), 10)) == ["late", "future"]


def defer_then_fail(store: Store, flow_id: str) -> None:
    """Defer a flow in a transaction that then raises."""
    with store.transaction() as tx:
        assert tx.flows.defer(flow_id, at(30), at(700))
        raise RuntimeError("rolled back")


def test_defer_moves_a_due_flow_later_in_the_index(store: Store) -> None:
    """defer moves an active flow due by ``due_by`` to ``until`` in due_flows, leaving the
    flow itself as it was; a flow not due, ended or unknown is not moved; a save puts the flow
    back where its timers say."""
    with store.transaction() as tx:
        tx.flows.insert(make_flow("poison", timers=[("t", at(10))], expires_at=at(90)))
        tx.flows.insert(make_flow("healthy", timers=[("t", at(20))], expires_at=at(90)))
        tx.flows.insert(make_flow("later", timers=[("t", at(500))], expires_at=at(900)))
        tx.flows.insert(make_flow("done", status="completed", timers=[("t", at(1))]))
    with store.transaction() as tx:
        assert tx.flows.defer("poison", at(30), at(100))
        assert not tx.flows.defer("later", at(30), at(100))  # not due by then
        assert not tx.flows.defer("done", at(30), at(100))
        assert not tx.flows.defer("unknown", at(30), at(100))
        assert tx.flows.load("poison") == make_flow("poison", timers=[("t", at(10))],
                                                    expires_at=at(90))
    assert list(store.due_flows(at(30), 10)) == ["healthy"]
    assert list(store.due_flows(at(99), 10)) == ["healthy"]
    assert list(store.due_flows(at(100), 10)) == ["healthy", "poison"]
    assert list(store.due_flows(at(1000), 10)) == ["healthy", "poison", "later"]
    with store.transaction() as tx:
        assert not tx.flows.defer("poison", at(30), at(200))  # waiting: not due by at(30)
        assert tx.flows.defer("poison", at(100), at(50))  # due by at(100): moved, even earlier
    assert list(store.due_flows(at(60), 10)) == ["healthy", "poison"]
    with pytest.raises(RuntimeError, match="rolled back"):
        defer_then_fail(store, "healthy")
    assert list(store.due_flows(at(30), 10)) == ["healthy"]
    with store.transaction() as tx:
        poison = tx.flows.load("poison")
        assert poison is not None
        assert tx.flows.update(poison, poison.rev)
    assert list(store.due_flows(at(30), 10)) == ["poison", "healthy"]


def test_iter_flow_ids_yields_every_flow(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """iter_flow_ids yields every flow id once, ended flows included, across pages."""
    monkeypatch.setattr("regflow.adapters.peewee_store._PAGE", 7)
    ids = {f"f{i:04d}" for i in range(30)}
    with store.transaction() as tx:
        for flow_id in ids:
            tx.flows.insert(make_flow(flow_id, status="expired"))
    assert sorted(store.iter_flow_ids()) == sorted(ids)


def write_everything_then_fail(store: Store) -> None:
    """Write to every table in one transaction, then raise."""
    with store.transaction() as tx:
        kept = tx.flows.load("kept")
        assert kept is not None
        kept.status = "completed"
        assert tx.flows.update(kept, 0)
        tx.flows.insert(make_flow("new", timers=[("t", at(1))]))
        tx.flows.journal(entry("kept", "e", 1))
        tx.flows.remember(IdempotencyRecord("kept", "k", "h", {}, at(1)))
        tx.contracts.put_customer(Customer("c1", "2", 2, ["A2"]))
        tx.logins.delete("gone")  # frees the admin role for l1
        tx.logins.insert(make_login("l1", role="admin", account="A1"))
        tx.logins.update(make_login("l0", email_key="moved@example.jp", two_factor=True))
        tx.contracts.set_require_two_factor("c1", True)
        tx.sessions.insert(make_session("s1"))
        tx.sessions.end("s0")
        tx.codes.insert(make_code("k1", flow_id="kept"))
        assert tx.codes.void_for("a@example.jp") == 2
        tx.outbox.enqueue(make_mail("m1", 0))
        tx.limits.add(hit("wrong_code", 1))
        assert tx.limits.clear("kept_kind", "s") == 1
        raise RuntimeError("boom")


def test_exception_rolls_back_everything(store: Store) -> None:
    """An exception inside a transaction leaves no trace of any of its writes."""
    with store.transaction() as tx:
        tx.flows.insert(make_flow("kept", timers=[("t", at(5))]))
        tx.contracts.put_customer(Customer("c1", "1", 1, ["A1"]))
        tx.logins.insert(make_login("l0"))
        tx.logins.insert(make_login("gone", role="admin", account="A9"))
        tx.sessions.insert(make_session("s0", "l0"))
        tx.codes.insert(make_code("k0"))
        tx.limits.add(hit("kept_kind", 0))
    with pytest.raises(RuntimeError, match="boom"):
        write_everything_then_fail(store)
    assert list(store.due_flows(at(100), 10)) == ["kept"]
    with store.transaction() as tx:
        assert tx.flows.load("new") is None
        assert tx.flows.load("kept") == make_flow("kept", timers=[("t", at(5))])
        assert tx.flows.history("kept") == []
        assert tx.flows.idempotent("kept", "k") is None
        assert tx.contracts.customer("c1") == Customer("c1", "1", 1, ["A1"])
        assert tx.contracts.customer_of_account("A2") is None
        assert tx.logins.get("l1") is None
        assert tx.logins.get("l0") == make_login("l0")
        assert tx.logins.by_email("moved@example.jp") is None
        assert tx.logins.by_account("A9") == make_login("gone", role="admin", account="A9")
        assert tx.logins.count("c1") == 2
        assert tx.sessions.by_digest("sha256-s0") == make_session("s0", "l0")
        assert tx.sessions.by_digest("sha256-s1") is None
        assert tx.codes.latest("kept", "verify_email") is None
        assert tx.codes.latest("f1", "verify_email") == make_code("k0")
        assert tx.outbox.get("m1") is None
        assert tx.outbox.due(at(100), 10) == []
        assert tx.limits.count("wrong_code", "s", None, at(-1)) == (0, None)
        assert tx.limits.last("kept_kind", "s", "") == hit("kept_kind", 0)
        tx.logins.insert(make_login("l1", account="A1"))  # no stale index entry
        tx.logins.update(make_login("l0", email_key="moved@example.jp"))
        tx.sessions.insert(make_session("s1"))


def hit(kind: str, seconds: float, subject: str = "s", client: str = "", **changes: Any) -> LimitHit:
    """A limit hit of ``kind`` at T0 + ``seconds``."""
    return LimitHit(kind=kind, subject=subject, client=client, at=at(seconds), **changes)


def test_limit_hits_count_last_and_clear(store: Store) -> None:
    """count: hits strictly later than ``since``, of one client or (None) of any, with the
    earliest; last: the latest of one client; clear: of one client or of every client."""
    with store.transaction() as tx:
        for seconds, client in ((0, "a"), (10.5, "b"), (20, "a"), (30, "")):
            tx.limits.add(hit("wrong_code", seconds, client=client))
        tx.limits.add(hit("wrong_code", 5, subject="other"))
        tx.limits.add(hit("lockout", 40, client="a", until=at(100.000001)))
        tx.limits.lock("s")  # serialises counting; usable in any transaction
    with store.transaction() as tx:
        assert tx.limits.count("wrong_code", "s", None, at(-1)) == (4, at(0))
        assert tx.limits.count("wrong_code", "s", None, at(0)) == (3, at(10.5))  # strictly later
        assert tx.limits.count("wrong_code", "s", "a", at(-1)) == (2, at(0))
        assert tx.limits.count("wrong_code", "s", "", at(-1)) == (1, at(30))
        assert tx.limits.count("wrong_code", "s", "c", at(-1)) == (0, None)
        assert tx.limits.count("wrong_code", "s", None, at(30)) == (0, None)
        assert tx.limits.count("lockout", "s", None, at(-1)) == (1, at(40))
        assert tx.limits.last("wrong_code", "s", "a") == hit("wrong_code", 20, client="a")
        assert tx.limits.last("lockout", "s", "a") == hit("lockout", 40, client="a", until=at(100.000001))
        assert tx.limits.last("lockout", "s", "b") is None
        assert tx.limits.clear("wrong_code", "s", "a") == 2
        assert tx.limits.count("wrong_code", "s", None, at(-1)) == (2, at(10.5))
        assert tx.limits.clear("wrong_code", "s") == 2
        assert tx.limits.clear("wrong_code", "s") == 0
        assert tx.limits.count("wrong_code", "other", None, at(-1)) == (1, at(5))
        assert tx.limits.last("lockout", "s", "a") is not None


def test_purge_deletes_only_what_ended_before_the_cutoffs(store: Store) -> None:
    """Ended flows (their codes and remembered answers), spent codes, expired sessions, sent /
    failed / decoy mail, limit hits (a lockout only once it is over) and journal entries
    older than their cutoff go; everything else stays."""
    with store.transaction() as tx:
        tx.flows.insert(make_flow("old_end", status="completed", timers=[], updated_at=at(10)))
        tx.flows.insert(make_flow("new_end", status="cancelled", timers=[], updated_at=at(100)))
        tx.flows.insert(make_flow("old_active", updated_at=at(10)))
        tx.codes.insert(make_code("c_of_old_end", flow_id="old_end"))
        tx.codes.insert(make_code("c_used", flow_id="old_active", used_at=at(1)))
        tx.codes.insert(make_code("c_live", flow_id="old_active", expires_at=at(600)))
        tx.flows.remember(IdempotencyRecord("old_end", "k", "h", {}, at(100)))
        tx.flows.remember(IdempotencyRecord("new_end", "old", "h", {}, at(10)))
        tx.flows.remember(IdempotencyRecord("new_end", "new", "h", {}, at(100)))
        tx.logins.insert(make_login("l1"))
        tx.sessions.insert(make_session("s_old", expires_at=at(10)))
        tx.sessions.insert(make_session("s_new", expires_at=at(100), digest="sha256-s_new"))
        for mail_id, status in (("m_sent", "sent"), ("m_decoy", "decoy"), ("m_queued", "queued")):
            tx.outbox.enqueue(make_mail(mail_id, 10, status=status))
        tx.limits.add(hit("wrong_code", 10))
        tx.limits.add(hit("wrong_code", 100))
        tx.limits.add(hit("lockout", 10, until=at(100)))
        tx.flows.journal(entry("old_active", "old", 10))
        tx.flows.journal(entry("old_active", "new", 100))
    cut = at(50)
    counts = store.purge(Cutoffs(flows=cut, codes=cut, sessions=cut, mail=cut, idempotency=cut,
                                 limits=cut, journal=cut))
    assert counts == {"flows": 1, "codes": 2, "sessions": 1, "mail": 2, "idempotency": 2,
                      "limits": 1, "journal": 1}
    with store.transaction() as tx:
        assert tx.flows.load("old_end") is None
        assert tx.flows.load("new_end") is not None
        assert tx.flows.load("old_active") is not None
        assert tx.codes.latest("old_active", "verify_email") == make_code(
            "c_live", flow_id="old_active", expires_at=at(600))
        assert tx.codes.latest("old_end", "verify_email") is None
        assert tx.flows.idempotent("old_end", "k") is None
        assert tx.flows.idempotent("new_end", "old") is None
        assert tx.flows.idempotent("new_end", "new") is not None
        assert tx.sessions.by_digest("sha256-s_old") is None
        assert tx.sessions.by_digest("sha256-s_new") is not None
        assert [tx.outbox.get(m) is not None for m in ("m_sent", "m_decoy", "m_queued")] == [
            False, False, True]
        assert tx.limits.count("wrong_code", "s", None, at(-1)) == (1, at(100))
        assert tx.limits.last("lockout", "s", "") == hit("lockout", 10, until=at(100))
        assert [e.event for e in tx.flows.history("old_active")] == ["new"]


def test_nested_transaction_rolls_back_alone(store: Store) -> None:
    """A failing nested transaction undoes only its own writes."""

    def fail_inside() -> None:
        with store.transaction() as inner:
            inner.logins.insert(make_login("inner"))
            raise RuntimeError("inner fails")

    with store.transaction() as tx:
        tx.logins.insert(make_login("outer"))
        with pytest.raises(RuntimeError, match="inner fails"):
            fail_inside()
        tx.logins.insert(make_login("after"))
    with store.transaction() as tx:
        assert [x.id for x in tx.logins.of_customer("c1")] == ["after", "outer"]


def test_tables_refuse_use_outside_transaction(store: Store) -> None:
    """A table view kept after its transaction refuses to work."""
    with store.transaction() as tx:
        flows = tx.flows
    with pytest.raises(StoreError):
        flows.load("f1")


def test_concurrent_increments_are_serialised(store: Store) -> None:
    """8 threads x 50 load+update increments, half through other store handles, end at 400."""
    with store.transaction() as tx:
        tx.flows.insert(make_flow())
    handles = [store if i % 2 else peer_of(store) for i in range(8)]
    start = threading.Barrier(len(handles))
    failures: list[BaseException] = []

    def work(handle: Store) -> None:
        try:
            start.wait()
            for _ in range(50):
                with handle.transaction() as tx:
                    flow = tx.flows.load("f1")
                    assert flow is not None
                    time.sleep(0)  # let other threads run between load and update
                    flow.data["n"] = flow.rev + 1
                    assert tx.flows.update(flow, flow.rev), "lost the write lock"
        except BaseException as exc:
            failures.append(exc)
        finally:
            handle.close()

    threads = [threading.Thread(target=work, args=(handle,)) for handle in handles]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    with store.transaction() as tx:
        flow = tx.flows.load("f1")
    assert flow is not None
    assert (flow.rev, flow.data["n"]) == (400, 400)


def assert_separate(first: PeeweeStore, second: PeeweeStore) -> None:
    """Rows written through one store are never seen through the other."""
    with first.transaction() as a, second.transaction() as b:
        a.flows.insert(make_flow(state="in_one"))
        assert b.flows.load("f1") is None
        b.flows.insert(make_flow(state="in_two"))
        b.logins.insert(make_login("l1"))
    with first.transaction() as a, second.transaction() as b:
        one, two = a.flows.load("f1"), b.flows.load("f1")
        assert a.logins.get("l1") is None
    assert one is not None
    assert two is not None
    assert (one.state, two.state) == ("in_one", "in_two")


def test_two_sqlite_files_stay_separate(tmp_path: Path) -> None:
    """Two PeeweeStores on two files in one process never see each other's rows."""
    first = PeeweeStore.from_url(sqlite_url(tmp_path / "one.db"))
    second = PeeweeStore.from_url(sqlite_url(tmp_path / "two.db"))
    assert_separate(first, second)
    first.close()
    second.close()
    reopened = PeeweeStore.from_url(sqlite_url(tmp_path / "one.db"))
    with reopened.transaction() as a:
        assert a.flows.load("f1") == make_flow(state="in_one")
    reopened.close()


def test_sqlite_url_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Relative and absolute sqlite URLs name files; other URLs are refused."""
    monkeypatch.chdir(tmp_path)
    relative = PeeweeStore.from_url("sqlite:///data/sub/rel.db")
    monkeypatch.chdir("/")
    with relative.transaction() as tx:
        tx.flows.insert(make_flow())
    relative.close()
    assert (tmp_path / "data" / "sub" / "rel.db").is_file()
    absolute = PeeweeStore.from_url(f"sqlite:///{tmp_path}/data/sub/rel.db")
    assert absolute.url.startswith("sqlite:////")
    assert list(absolute.iter_flow_ids()) == ["f1"]
    absolute.close()
    for bad in ("mysql://localhost/x", "sqlite:///:memory:", "sqlite:///", "sqlite://x.db"):
        with pytest.raises(ValueError, match="URL"):
            PeeweeStore.from_url(bad)


def test_driver_errors_become_store_errors(tmp_path: Path) -> None:
    """A file that is no database raises StoreError caused by the driver's error."""
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database file, not at all" * 100)
    store = PeeweeStore.from_url(sqlite_url(junk))
    with pytest.raises(StoreError) as caught, store.transaction():
        pass
    assert caught.value.__cause__ is not None
    assert type(caught.value) is StoreError


# PostgreSQL only: row locks that block, SKIP LOCKED, deadlocks, schemas, URLs.


class Holder:
    """A transaction in another thread (so on another connection) that runs ``first`` and
    keeps its locks until ``release`` is set."""

    def __init__(self, store: Store, first: Callable[[Transaction], object]) -> None:
        self.ready = threading.Event()
        self.release = threading.Event()
        self.failures: list[BaseException] = []
        self.result: object = None
        self.thread = threading.Thread(target=self._run, args=(store, first))
        self.thread.start()
        assert self.ready.wait(10), "the holding transaction did not start"

    def _run(self, store: Store, first: Callable[[Transaction], object]) -> None:
        try:
            with store.transaction() as tx:
                self.result = first(tx)
                self.ready.set()
                self.release.wait(10)
        except BaseException as exc:
            self.failures.append(exc)
            self.ready.set()
        finally:
            store.close()

    def finish(self) -> None:
        """Let the holding transaction commit, and check it did."""
        self.release.set()
        self.thread.join()
        assert self.failures == []


def seed_lock_targets(store: Store) -> None:
    """Customers c1, c2, login l1, flow f1 and mail m1."""
    with store.transaction() as tx:
        tx.contracts.put_customer(Customer("c1", "1", 1, ["A1"]))
        tx.contracts.put_customer(Customer("c2", "2", 1, ["B1"]))
        tx.logins.insert(make_login("l1"))
        tx.flows.insert(make_flow())
        tx.outbox.enqueue(make_mail("m1", 0))


HOLD = 0.4  # seconds the first transaction keeps its locks


@pytest.mark.parametrize(
    ("first", "second", "waits"),
    [
        (lambda tx: tx.contracts.lock("c1"), lambda tx: tx.contracts.lock("c1"), True),
        (lambda tx: tx.contracts.lock("c1"), lambda tx: tx.contracts.lock("c2"), False),
        (lambda tx: tx.contracts.lock("ghost"), lambda tx: tx.contracts.lock("ghost"), True),
        (lambda tx: tx.logins.by_email("l1@example.jp", lock=True),
         lambda tx: tx.logins.get("l1", lock=True), True),
        (lambda tx: tx.logins.get("l1", lock=True), lambda tx: tx.logins.get("l1"), False),
        (lambda tx: tx.flows.load("f1"), lambda tx: tx.flows.load("f1"), True),
        (lambda tx: tx.outbox.get("m1"), lambda tx: tx.outbox.get("m1"), True),
    ],
    ids=["customer", "other-customer", "customer-not-in-table", "login", "login-plain-read", "flow", "mail"],
)
def test_postgres_row_locks_block(
    pg_store: PeeweeStore,
    first: Callable[[Transaction], object],
    second: Callable[[Transaction], object],
    waits: bool,
) -> None:
    """A locking read waits for the transaction holding the row; other reads do not."""
    seed_lock_targets(pg_store)
    holder = Holder(pg_store, first)
    timer = threading.Timer(HOLD, holder.release.set)
    timer.start()
    started = time.monotonic()
    with pg_store.transaction() as tx:
        second(tx)
    waited = time.monotonic() - started
    timer.join()
    holder.finish()
    assert (waited >= HOLD * 0.8) is waits, f"waited {waited:.3f} s"


def test_postgres_due_skips_mail_another_relay_holds(pg_store: PeeweeStore) -> None:
    """Two relays on two connections: due skips the rows the other transaction locked."""
    with pg_store.transaction() as tx:
        for i in range(1, 4):
            tx.outbox.enqueue(make_mail(f"m{i}", i))
    first_relay = Holder(pg_store, lambda tx: [m.id for m in tx.outbox.due(at(10), 1)])
    try:
        assert first_relay.result == ["m1"]
        with pg_store.transaction() as tx:
            assert [m.id for m in tx.outbox.due(at(10), 10)] == ["m2", "m3"]
            assert [m.id for m in tx.outbox.due(at(10), 1)] == ["m2"]
    finally:
        first_relay.finish()
    with pg_store.transaction() as tx:
        assert [m.id for m in tx.outbox.due(at(10), 10)] == ["m1", "m2", "m3"]


def test_postgres_deadlock_becomes_concurrent_update(pg_store: PeeweeStore) -> None:
    """Two transactions locking two flows in opposite orders: one is told ConcurrentUpdate."""
    with pg_store.transaction() as tx:
        tx.flows.insert(make_flow("f1"))
        tx.flows.insert(make_flow("f2"))
    both = threading.Barrier(2)
    outcomes: list[object] = []

    def work(first: str, second: str) -> None:
        try:
            with pg_store.transaction() as tx:
                tx.flows.load(first)
                both.wait(10)
                tx.flows.load(second)
            outcomes.append("committed")
        except BaseException as exc:
            outcomes.append(exc)
        finally:
            pg_store.close()

    threads = [threading.Thread(target=work, args=pair) for pair in [("f1", "f2"), ("f2", "f1")]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(type(x).__name__ for x in outcomes) == ["ConcurrentUpdate", "str"]
    refused = next(x for x in outcomes if isinstance(x, ConcurrentUpdate))
    assert "deadlock" in str(refused.__cause__)


def test_postgres_failed_statement_is_not_committed_silently(pg_store: PeeweeStore) -> None:
    """A statement that failed (and was caught) spoils the transaction: no silent rollback."""

    def write_then_fail_quietly() -> None:
        with pg_store.transaction() as tx:
            tx.flows.insert(make_flow())
            with pytest.raises(pw.DataError):
                pg_store._db.execute_sql("SELECT 1 / 0")

    with pytest.raises(StoreError, match="rolled back"):
        write_then_fail_quietly()
    with pg_store.transaction() as tx:
        assert tx.flows.load("f1") is None


def test_two_postgres_schemas_stay_separate() -> None:
    """Two PeeweeStores on two schemas of one database never see each other's rows."""
    urls = [postgres_url(), postgres_url()]
    first, second = (PeeweeStore.from_url(url) for url in urls)
    try:
        assert_separate(first, second)
        reopened = PeeweeStore.from_url(urls[0])
        assert list(reopened.iter_flow_ids()) == ["f1"]
        reopened.close()
    finally:
        first.close()
        second.close()
        for url in urls:
            drop_schema(url)


def test_postgres_url_forms() -> None:
    """Bad PostgreSQL URLs are refused; postgres:// and mixed-case schemas work, on psycopg 3."""
    for bad in (
        "postgresql://h/db?schema=bad-name",
        "postgresql://h/db?schema=1abc",
        "postgresql://h/db?schema=",
        f"postgresql://h/db?schema={'a' * 64}",
        "postgresql://h/db?schema=a&schema=b",
        "postgresql://h/",
        "postgresql://h:port/db",
    ):
        with pytest.raises(ValueError, match="URL"):
            PeeweeStore.from_url(bad)
    with pytest.raises(ValueError, match="URL") as caught:
        PeeweeStore.from_url("postgresql://u:s3cret@h/db?schema=no-way")
    assert "s3cret" not in str(caught.value)
    assert "u:***@h" in str(caught.value)
    url = postgres_url().replace("postgresql://", "postgres://").replace("regflow_test_", "Regflow_T_")
    store = PeeweeStore.from_url(url)
    try:
        assert type(store._db._adapter).__name__ == "Psycopg3Adapter"
        with store.transaction() as tx:
            tx.flows.insert(make_flow())
        with store.transaction() as tx:
            assert tx.flows.load("f1") == make_flow()
        tables = store._db.get_tables(schema=schema_of(url))
        assert {"flows", "logins", "sessions"} <= set(tables)
    finally:
        store.close()
        drop_schema(url)


def test_unreachable_postgres_is_transient() -> None:
    """No server behind the URL (down, restarting, out of reach): TransientError, worth
    trying again later (issue 18), caused by the driver's error."""
    pytest.importorskip("psycopg")
    store = PeeweeStore.from_url("postgresql://postgres@127.0.0.1:1/test?connect_timeout=2")
    with pytest.raises(TransientError) as caught, store.transaction():
        pass
    assert caught.value.__cause__ is not None


def test_shared_secret_is_stable(store: Store) -> None:
    """A store's shared secret is 32 bytes and the same on every call."""
    first = store.shared_secret()
    assert len(first) == 32
    assert store.shared_secret() == first


def test_shared_secret_is_shared_by_every_store_on_one_file(tmp_path: Path) -> None:
    """Two stores on one SQLite file agree on the secret; another file has its own."""
    one = PeeweeStore.from_url(sqlite_url(tmp_path / "one.db"))
    again = PeeweeStore.from_url(sqlite_url(tmp_path / "one.db"))
    other = PeeweeStore.from_url(sqlite_url(tmp_path / "two.db"))
    try:
        assert one.shared_secret() == again.shared_secret() != other.shared_secret()
    finally:
        for store in (one, again, other):
            store.close()
