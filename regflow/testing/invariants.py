"""The invariants I1–I5, checked over what a store holds (any store, any engine).

- **I1** one login per normalised e-mail: every login's key is NFKC + casefold of its address,
  no two share one, and looking the key up finds that login;
- **I2** an account is linked to at most one login (and looking it up finds that login);
- **I3** a customer's logins are no more than its licenses (and the store's count agrees);
- **I4** a customer with logins has exactly one admin;
- **I5** (for a flow, given the codes mailed to it) its current code works only while it is
  unused, not void, within its tries and unexpired; a replaced code never works; a live code
  is for the address the flow is about.
"""

from __future__ import annotations

from collections.abc import Sequence

from regflow.definitions.validation import email_key
from regflow.engine import Engine
from regflow.ground.ports import Transaction
from regflow.ground.records import Login
from regflow.rules import codes
from regflow.runtime.context import FlowContext


class InvariantViolation(AssertionError):
    """An invariant does not hold; ``faults`` lists each finding."""

    def __init__(self, faults: Sequence[str]) -> None:
        self.faults = list(faults)
        super().__init__("; ".join(self.faults))


def check_invariants(engine: Engine, *, flow_id: str | None = None, mailed: Sequence[str] = ()) -> None:
    """Raise InvariantViolation when I1–I4 (and, for ``flow_id`` with the codes ``mailed`` to
    it, oldest first, I5) do not hold."""
    faults = invariant_faults(engine, flow_id=flow_id, mailed=mailed)
    if faults:
        raise InvariantViolation(faults)


def invariant_faults(engine: Engine, *, flow_id: str | None = None, mailed: Sequence[str] = ()) -> list[str]:
    """Every violation found, as ``I<n>: what`` lines."""
    with engine.store.transaction() as tx:
        customers = tx.contracts.customers()
        logins = {c.customer_id: tx.logins.of_customer(c.customer_id) for c in customers}
        faults = _identity_faults(tx, [login for group in logins.values() for login in group])
        for customer in customers:
            mine = logins[customer.customer_id]
            if len(mine) > customer.licenses:
                faults.append(f"I3: customer {customer.customer_id} has {len(mine)} logins "
                              f"for {customer.licenses} licenses")
            if tx.logins.count(customer.customer_id) != len(mine):
                faults.append(f"I3: the store counts {tx.logins.count(customer.customer_id)} logins "
                              f"of {customer.customer_id}, lists {len(mine)}")
            admins = [login.email for login in mine if login.role == "admin"]
            if mine and len(admins) != 1:
                faults.append(f"I4: customer {customer.customer_id} has {len(admins)} admins {admins}")
        if flow_id is not None:
            faults += _code_faults(engine, tx, flow_id, mailed)
    return faults


def _identity_faults(tx: Transaction, logins: list[Login]) -> list[str]:
    faults: list[str] = []
    keys: dict[str, str] = {}
    accounts: dict[str, str] = {}
    for login in logins:
        key = email_key(login.email)
        if login.email_key != key:
            faults.append(f"I1: {login.email!r} is kept under {login.email_key!r}, not {key!r}")
        if key in keys:
            faults.append(f"I1: two logins for {key!r}")
        keys[key] = login.id
        found = tx.logins.by_email(key)
        if found is None or found.id != login.id:
            faults.append(f"I1: looking up {key!r} does not find its login")
        if login.account is not None:
            if login.account in accounts:
                faults.append(f"I2: account {login.account!r} is linked to two logins")
            accounts[login.account] = login.id
            holder = tx.logins.by_account(login.account)
            if holder is None or holder.id != login.id:
                faults.append(f"I2: looking up account {login.account!r} does not find {login.email!r}")
    return faults


def _code_faults(engine: Engine, tx: Transaction, flow_id: str, mailed: Sequence[str]) -> list[str]:
    record = tx.flows.load(flow_id)
    if record is None:
        return []
    current = tx.codes.latest(flow_id, record.flow)
    if current is None:
        return []
    definition = engine.flows.get(record.flow, record.version)
    tries = int(definition.settings.get("code_tries", 0) or 0)
    now = engine.clock.now()
    faults: list[str] = []
    if tries and current.wrong_tries >= tries and not current.void:
        faults.append(f"I5: a code with {current.wrong_tries} wrong tries of {tries} is not void")
    dead = (current.void or current.used_at is not None or now >= current.expires_at
            or bool(tries and current.wrong_tries >= tries))
    ctx = FlowContext(flow=record, definition=definition, tx=tx, services=engine.services, now=now,
                      event="")
    for n, digits in enumerate(mailed):
        judged = codes.check(ctx, record.flow, current.email_key, digits, tries or 1 << 30)
        works = judged is codes.CodeCheck.OK
        if works and dead:
            state = "used" if current.used_at else "void" if current.void else "expired or out of tries"
            faults.append(f"I5: the {state} code of flow {flow_id} still works")
        elif works and n != len(mailed) - 1:
            faults.append(f"I5: a replaced code (mail {n + 1} of {len(mailed)}) still works")
    kept = record.data.get("_email_key")
    if not dead and isinstance(kept, str) and current.email_key != kept:
        faults.append(f"I5: the live code is for {current.email_key!r}, the flow for {kept!r}")
    return faults
