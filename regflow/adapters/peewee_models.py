"""The PeeweeStore's tables (built per database) and row mapping (driver errors are translated
in ``peewee_errors``; ``translated`` is re-exported here for the table views).

The same models serve SQLite and PostgreSQL; index names are explicit because PostgreSQL reports
them when a uniqueness rule refuses a write (``peewee_errors`` maps them to the rules).

Instants are stored as integer microseconds since the Unix epoch (UTC): exact, portable
(BIGINT on SQLite and PostgreSQL) and ordered like the instants themselves.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import attrs
import peewee as pw

from regflow.adapters.peewee_errors import translated as translated  # the tables' import
from regflow.ground.records import FlowRecord

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
_A = TypeVar("_A", bound=attrs.AttrsInstance)


def to_micros(instant: datetime) -> int:
    """Microseconds since the epoch of a timezone-aware instant."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"naive datetime {instant!r}: stores take timezone-aware UTC instants")
    return (instant - _EPOCH) // _MICRO


def from_micros(micros: int) -> datetime:
    """The timezone-aware UTC instant ``micros`` microseconds after the epoch."""
    return _EPOCH + timedelta(microseconds=micros)


class InstantField(pw.BigIntegerField):
    """A timezone-aware UTC ``datetime`` kept as integer microseconds since the epoch."""

    def db_value(self, value: datetime | None) -> int | None:
        """Microseconds for the database (comparisons convert their right side too)."""
        return None if value is None else to_micros(value)

    def python_value(self, value: int | None) -> datetime | None:
        """The instant back from its microseconds."""
        return None if value is None else from_micros(int(value))


class JsonField(pw.TextField):
    """A JSON document kept as text (portable; no JSON operators are needed on it)."""

    def db_value(self, value: Any) -> str | None:
        """The value as compact JSON text."""
        if value is None:
            return None
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    def python_value(self, value: str | None) -> Any:
        """The value decoded from its JSON text."""
        return None if value is None else json.loads(value)


def values_of(record: attrs.AttrsInstance, *skip: str) -> dict[str, Any]:
    """A record's fields as column values, without ``skip``."""
    return {k: v for k, v in attrs.asdict(record, recurse=False).items() if k not in skip}


def record_of(cls: type[_A], row: Any, **override: Any) -> _A:
    """The record ``cls`` read from a model row's same-named columns."""
    values = {field.name: getattr(row, field.name) for field in attrs.fields(cls)}
    values.update(override)
    return cls(**values)


def flow_values(flow: FlowRecord) -> dict[str, Any]:
    """A flow's columns except ``id`` and ``rev``, with its due instant for the index."""
    values = values_of(flow, "id", "rev")
    values["timers"] = [[event, to_micros(at)] for event, at in flow.timers]
    values["next_due_at"] = flow.next_due_at
    values["customer_id"] = flow.customer
    return values


@attrs.frozen
class Tables:
    """The model classes of one store, bound to that store's database (peewee is untyped)."""

    flows: Any
    journal: Any
    idempotency: Any
    customers: Any
    accounts: Any
    logins: Any
    sessions: Any
    codes: Any
    outbox: Any
    limits: Any
    meta: Any

    def all(self) -> list[Any]:
        """Every model, in creation order (customers before the accounts referring to them)."""
        return [getattr(self, field.name) for field in attrs.fields(Tables)]


def build_tables(db: pw.Database) -> Tables:
    """Fresh model classes bound to ``db``: no class is shared between stores."""

    class Base(pw.Model):
        class Meta:
            database = db
            legacy_table_names = False

    class Flow(Base):
        id = pw.TextField(primary_key=True)
        flow = pw.TextField()
        version = pw.IntegerField()
        state = pw.TextField()
        status = pw.TextField()
        data = JsonField()
        timers = JsonField()  # [[event, microseconds], ...]
        expires_at = InstantField(null=True)
        next_due_at = InstantField(null=True)  # NULL when the flow is not active
        created_at = InstantField()
        updated_at = InstantField()
        token_digest = pw.TextField(default="")  # SHA-256 of the flow token (hex)
        customer_id = pw.TextField(null=True)  # reports by customer (FlowRecord.customer); v3
        rev = pw.IntegerField()

        class Meta:
            table_name = "flows"

    class Journal(Base):
        id = pw.AutoField()
        flow_id = pw.TextField()
        from_state = pw.TextField()
        to_state = pw.TextField()
        event = pw.TextField()
        actor = pw.TextField()
        at = InstantField()
        outcome = pw.TextField()

        class Meta:
            table_name = "journal"

    class Idempotency(Base):
        flow_id = pw.TextField()
        key = pw.TextField()
        request_hash = pw.TextField()
        response = JsonField()
        created_at = InstantField()

        class Meta:
            table_name = "idempotency_keys"
            primary_key = pw.CompositeKey("flow_id", "key")

    class Customer(Base):
        customer_id = pw.TextField(primary_key=True)
        phone = pw.TextField()
        licenses = pw.IntegerField()
        require_two_factor = pw.BooleanField(default=False)

        class Meta:
            table_name = "customers"

    class Account(Base):
        account = pw.TextField(primary_key=True)
        customer = pw.ForeignKeyField(
            Customer, column_name="customer_id", field="customer_id", on_delete="CASCADE"
        )
        position = pw.IntegerField()  # keeps Customer.accounts in the order given

        class Meta:
            table_name = "accounts"

    class Login(Base):
        id = pw.TextField(primary_key=True)
        customer_id = pw.TextField()
        email = pw.TextField()
        email_key = pw.TextField()
        password_hash = pw.TextField()
        display_name = pw.TextField()
        role = pw.TextField()
        two_factor = pw.BooleanField()
        ready_at = InstantField()
        account = pw.TextField(null=True)
        created_at = InstantField()

        class Meta:
            table_name = "logins"

    class Session(Base):
        id = pw.TextField(primary_key=True)
        login_id = pw.TextField()
        digest = pw.TextField()  # SHA-256 of the token
        created_at = InstantField()
        expires_at = InstantField()

        class Meta:
            table_name = "sessions"

    class Code(Base):
        id = pw.TextField(primary_key=True)
        flow_id = pw.TextField()
        purpose = pw.TextField()
        email_key = pw.TextField()
        digest = pw.TextField()
        expires_at = InstantField()
        created_at = InstantField()
        wrong_tries = pw.IntegerField()
        used_at = InstantField(null=True)
        void = pw.BooleanField()
        seq = pw.IntegerField()  # issue order within (flow_id, purpose): "latest" needs no clock

        class Meta:
            table_name = "codes"

    class Outbox(Base):
        id = pw.TextField(primary_key=True)
        flow_id = pw.TextField(null=True)
        to = pw.TextField()
        message = pw.BlobField()
        created_at = InstantField()
        status = pw.TextField()
        attempts = pw.IntegerField()
        next_attempt_at = InstantField(null=True)
        sent_at = InstantField(null=True)
        last_error = pw.TextField(null=True)

        class Meta:
            table_name = "outbox"

    class LimitHit(Base):
        id = pw.AutoField()
        kind = pw.TextField()
        subject = pw.TextField()  # a keyed digest (regflow.runtime.limits), never an address or IP
        client = pw.TextField()
        at = InstantField()
        until = InstantField(null=True)

        class Meta:
            table_name = "limit_hits"

    class Meta_(Base):
        key = pw.TextField(primary_key=True)
        value = pw.TextField()

        class Meta:
            table_name = "regflow_meta"

    # Index names are explicit: PostgreSQL reports them in constraint errors.
    Flow.add_index(Flow.index(Flow.next_due_at, name="flows_next_due_at"))
    Journal.add_index(Journal.index(Journal.flow_id, name="journal_flow_id"))
    Account.add_index(Account.index(Account.customer, name="accounts_customer_id"))
    Login.add_index(Login.index(Login.customer_id, name="logins_customer_id"))
    Login.add_index(Login.index(Login.email_key, unique=True, name="logins_email_key_unique"))
    Login.add_index(Login.index(Login.account, unique=True, name="logins_account_unique"))
    Login.add_index(
        Login.index(
            Login.customer_id, unique=True, where=pw.SQL("role = 'admin'"), name="logins_one_admin"
        )
    )
    Session.add_index(Session.index(Session.login_id, name="sessions_login_id"))
    Session.add_index(Session.index(Session.digest, unique=True, name="sessions_digest_unique"))
    # (schema version 2: the latest code of a flow and purpose read from the index, no sort)
    Code.add_index(Code.index(Code.flow_id, Code.purpose, Code.seq, name="codes_flow_id_purpose_seq"))
    Code.add_index(Code.index(Code.email_key, name="codes_email_key"))
    Outbox.add_index(Outbox.index(Outbox.status, Outbox.next_attempt_at, name="outbox_status_due"))
    Outbox.add_index(Outbox.index(Outbox.created_at, name="outbox_created_at"))
    Flow.add_index(Flow.index(Flow.status, Flow.updated_at, name="flows_status_updated_at"))
    Journal.add_index(Journal.index(Journal.at, name="journal_at"))
    Code.add_index(Code.index(Code.created_at, name="codes_created_at"))
    Session.add_index(Session.index(Session.expires_at, name="sessions_expires_at"))
    Idempotency.add_index(Idempotency.index(Idempotency.created_at, name="idempotency_created_at"))
    LimitHit.add_index(LimitHit.index(LimitHit.kind, LimitHit.subject, LimitHit.client, LimitHit.at,
                                      name="limit_hits_key_at"))
    LimitHit.add_index(LimitHit.index(LimitHit.at, name="limit_hits_at"))
    return Tables(
        flows=Flow,
        journal=Journal,
        idempotency=Idempotency,
        customers=Customer,
        accounts=Account,
        logins=Login,
        sessions=Session,
        codes=Code,
        outbox=Outbox,
        limits=LimitHit,
        meta=Meta_,
    )
