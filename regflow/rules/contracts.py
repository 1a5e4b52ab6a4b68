"""Contracts (customers and their seats) kept in the store, and their CSV import.

Which customer numbers and phones a contract may have is the deployment's rule, the same the
registration flow checks what people type against: ``ContractRules``, by default the settings
``customer_id_pattern`` and ``phone_country`` of the library's ``registration`` flow.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from regflow.definitions.validation import RULE_SETTINGS, Invalid, normalize_customer_id, normalize_tel
from regflow.ground.exceptions import RegflowError
from regflow.ground.ports import Store
from regflow.ground.records import Customer

if TYPE_CHECKING:
    from regflow.definitions.library import FlowLibrary

CSV_HEADER = ("customer_id", "phone", "licenses", "accounts")
RULES_FLOW = "registration"  # the flow whose settings say what a contract's number and phone are


@attrs.frozen
class ContractRules:
    """A contract's customer number matches ``customer_id_pattern`` (after NFKC, all of it);
    its phone is a phone number as ``phone_country`` reads it ("" digits only, or a country such
    as "US": valid there). The defaults are the seed's: six digits starting 28, any digits."""

    customer_id_pattern: str = RULE_SETTINGS["customer_id_pattern"]
    phone_country: str = RULE_SETTINGS["phone_country"]

    @classmethod
    def of_settings(cls, settings: Mapping[str, object]) -> ContractRules:
        """The rules a flow's settings give (the defaults for those it lacks)."""
        return cls(**{f.name: str(settings.get(f.name, f.default))
                      for f in attrs.fields(cls)})

    @classmethod
    def of_library(cls, flows: FlowLibrary) -> ContractRules:
        """The rules of the library's ``registration`` flow (latest version), else the defaults."""
        if RULES_FLOW not in flows.names():
            return cls()
        return cls.of_settings(flows.latest(RULES_FLOW).settings)

    def describe(self) -> str:
        """The customer-number rule in words, for a problem line."""
        if self == ContractRules():
            return "6 digits starting 28"
        return f"matching {self.customer_id_pattern!r}"


class ContractError(RegflowError):
    """A contract could not be added: ``problems`` lists ``where: what`` lines."""

    message_id = "contract_invalid"

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def check_contract(customer_id: str, phone: str, licenses: int, accounts: Sequence[str],
                   rules: ContractRules | None = None) -> tuple[Customer, list[str]]:
    """A normalised Customer and the problems found (empty when it is good)."""
    rules = rules if rules is not None else ContractRules()
    problems: list[str] = []
    try:
        customer_id = normalize_customer_id(customer_id, rules.customer_id_pattern)
    except Invalid:
        problems.append(f"customer_id: {customer_id!r} is not {rules.describe()}")
    try:
        normalize_tel(phone, rules.phone_country)
    except Invalid:
        where = f" in {rules.phone_country}" if rules.phone_country else ""
        problems.append(f"phone: {phone!r} is not a phone number{where}")
    if isinstance(licenses, bool) or not isinstance(licenses, int) or licenses < 1:
        problems.append(f"licenses: {licenses!r} is not a positive whole number")
    seats = [a.strip() for a in accounts if a.strip()]
    if not seats:
        problems.append("accounts: at least one account (seat) is needed")
    if len(set(seats)) != len(seats):
        problems.append("accounts: an account is listed twice")
    if any(len(a) > 64 or any(ch.isspace() for ch in a) for a in seats):
        problems.append("accounts: an account id has spaces or is longer than 64 characters")
    return Customer(customer_id=customer_id, phone=phone.strip(), licenses=licenses,
                    accounts=seats), problems


class StoreContracts:
    """The ContractDirectory kept in the engine's own store (imported from CSV or added).

    ``rules`` says which numbers and phones contracts may have: given, or those of a flow
    library (``ContractRules.of_library``, read at each addition so later settings count), or
    the defaults.
    """

    def __init__(self, store: Store, rules: ContractRules | FlowLibrary | None = None) -> None:
        self.store = store
        self._rules: Callable[[], ContractRules]
        if rules is None or isinstance(rules, ContractRules):
            fixed = rules if rules is not None else ContractRules()
            self._rules = lambda: fixed
        else:
            library = rules
            self._rules = lambda: ContractRules.of_library(library)

    @property
    def rules(self) -> ContractRules:
        """The rules contracts added now are checked by."""
        return self._rules()

    def find(self, customer_id: str) -> Customer | None:
        """The customer with that number, or None."""
        with self.store.transaction() as tx:
            return tx.contracts.customer(customer_id)

    def of_account(self, account: str) -> Customer | None:
        """The customer owning that seat, or None."""
        with self.store.transaction() as tx:
            return tx.contracts.customer_of_account(account)

    def add(self, customer_id: str, phone: str, licenses: int,
            accounts: Sequence[str]) -> Customer:
        """Create or replace a contract; raise ContractError when it is not valid."""
        return self.add_many([(customer_id, phone, licenses, accounts)])[0]

    def add_many(self, rows: Sequence[tuple[str, str, int, Sequence[str]]], *,
                 source: str | None = None, lines: Sequence[int] | None = None) -> list[Customer]:
        """Add several contracts in one transaction: all or nothing (problems as by
        ``check_contracts``, with ``source`` and ``lines`` naming where each row came from)."""
        customers, problems = check_contracts(rows, source=source, lines=lines, rules=self.rules)
        if problems:
            raise ContractError(problems)
        with self.store.transaction() as tx:
            for i, customer in enumerate(customers):
                for account in customer.accounts:
                    owner = tx.contracts.customer_of_account(account)
                    if owner is not None and owner.customer_id != customer.customer_id:
                        raise ContractError([f"{_where(i, source, lines)}: accounts: {account!r} "
                                             f"already belongs to {owner.customer_id}"])
                known = tx.contracts.customer(customer.customer_id)
                if known is not None:  # a re-import keeps the admin's two-factor policy
                    customer.require_two_factor = known.require_two_factor
                tx.contracts.put_customer(customer)
        return customers


def _where(index: int, source: str | None, lines: Sequence[int] | None) -> str:
    """Where a row came from, for a problem: ``FILE:LINE``, ``line N`` or ``row N``."""
    if lines is None:
        return f"{source}: row {index}" if source else f"row {index}"
    return f"{source}:{lines[index]}" if source else f"line {lines[index]}"


def check_contracts(rows: Sequence[tuple[str, str, int, Sequence[str]]], *,
                    source: str | None = None, lines: Sequence[int] | None = None,
                    rules: ContractRules | None = None) -> tuple[list[Customer], list[str]]:
    """Normalised customers and every problem: each row's own, and a customer or account that
    stands on two rows ("is also on line 2")."""
    customers: list[Customer] = []
    problems: list[str] = []
    customer_at: dict[str, str] = {}
    account_at: dict[str, str] = {}
    for i, row in enumerate(rows):
        where = _where(i, source, lines)
        ref = f"line {lines[i]}" if lines is not None else f"row {i}"
        customer, found = check_contract(*row, rules=rules)
        customers.append(customer)
        problems += [f"{where}: {p}" for p in found]
        if found:
            continue
        first = customer_at.setdefault(customer.customer_id, ref)
        if first != ref:
            problems.append(f"{where}: customer_id: {customer.customer_id} is also on {first}")
        for account in customer.accounts:
            first = account_at.setdefault(account, ref)
            if first != ref:
                problems.append(f"{where}: accounts: {account!r} is also on {first}")
    return customers, problems


ContractRow = tuple[str, str, int, list[str]]


def read_contracts_csv(path: str | Path) -> list[tuple[int, ContractRow]]:
    """Rows of a ``customer_id,phone,licenses,accounts`` CSV (accounts separated by spaces),
    each with the line it ends on, so problems can name their line even after blank lines."""
    rows: list[tuple[int, ContractRow]] = []
    problems: list[str] = []
    with Path(path).open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != CSV_HEADER:
            raise ContractError([f"{path}: header must be {','.join(CSV_HEADER)}"])
        for row in reader:
            line = reader.line_num
            if None in row or any(v is None for v in row.values()):
                problems.append(f"{path}:{line}: expected 4 columns")
                continue
            try:
                licenses = int(row["licenses"].strip())
            except ValueError:
                problems.append(f"{path}:{line}: licenses: {row['licenses']!r} is not a number")
                continue
            rows.append((line, (row["customer_id"], row["phone"], licenses, row["accounts"].split())))
    if problems:
        raise ContractError(problems)
    return rows
