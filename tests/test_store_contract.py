"""One contract for every Store adapter: MemoryStore and PeeweeStore on a SQLite file."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from regflow.adapters.memory import MemoryStore
from regflow.adapters.peewee_store import PeeweeStore
from regflow.exceptions import ConstraintViolation, StoreError
from regflow.ports import Store
from regflow.records import (
    Code,
    Customer,
    FlowRecord,
    IdempotencyRecord,
    JournalEntry,
    Login,
    OutboxMail,
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


def entry(flow_id: str, event: str, seconds: float) -> JournalEntry:
    """A journal entry of ``event`` at T0 + ``seconds``."""
    return JournalEntry(flow_id, "a", "b", event, "user", at(seconds), "ok")


def sqlite_url(path: Path) -> str:
    """The store URL of a SQLite file (absolute paths give the four-slash form)."""
    return f"sqlite:///{path}"


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """Each adapter in turn; the SQLite one on a real file."""
    made: Store = (
        MemoryStore()
        if request.param == "memory"
        else PeeweeStore.from_url(sqlite_url(tmp_path / "store.db"))
    )
    yield made
    made.close()


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
        tx.codes.update(latest)
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
        tx.logins.insert(make_login("l1", role="admin", account="A1"))
        tx.codes.insert(make_code("k1", flow_id="kept"))
        tx.outbox.enqueue(make_mail("m1", 0))
        raise RuntimeError("boom")


def test_exception_rolls_back_everything(store: Store) -> None:
    """An exception inside a transaction leaves no trace of any of its writes."""
    with store.transaction() as tx:
        tx.flows.insert(make_flow("kept", timers=[("t", at(5))]))
        tx.contracts.put_customer(Customer("c1", "1", 1, ["A1"]))
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
        assert tx.logins.count("c1") == 0
        assert tx.codes.latest("kept", "verify_email") is None
        assert tx.outbox.get("m1") is None
        assert tx.outbox.due(at(100), 10) == []
        tx.logins.insert(make_login("l1", role="admin", account="A1"))  # no stale index entry


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


def test_two_sqlite_files_stay_separate(tmp_path: Path) -> None:
    """Two PeeweeStores on two files in one process never see each other's rows."""
    first = PeeweeStore.from_url(sqlite_url(tmp_path / "one.db"))
    second = PeeweeStore.from_url(sqlite_url(tmp_path / "two.db"))
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
    for bad in ("postgresql://localhost/x", "sqlite:///:memory:", "sqlite:///"):
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
