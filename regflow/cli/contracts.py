"""``regflow contracts``: import contracts from CSV."""

from __future__ import annotations

from pathlib import Path

import click

from regflow.cli.base import CommandFailed, _Group, engine_options, main, open_engine
from regflow.contracts import (
    ContractError,
    ContractRow,
    StoreContracts,
    check_contract,
    read_contracts_csv,
)


@main.group(cls=_Group)
def contracts() -> None:
    """Contracts: customers, their phone, license count and accounts (seats)."""


@contracts.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@engine_options
def import_contracts(file: Path, db: str, mail: str, hasher: str) -> None:
    """Import FILE.csv (customer_id,phone,licenses,accounts): all of it, or nothing."""
    rows, problems = _read_contracts(file)
    if not problems:
        with open_engine(db, mail, hasher) as engine:
            try:
                imported = StoreContracts(engine.store).add_many(rows)
            except ContractError as exc:
                problems = [f"{file}: {p}" for p in exc.problems]
            else:
                click.echo(f"Imported {len(imported)} contract(s) from {file}.")
                return
    for problem in problems:
        click.echo(problem, err=True)
    raise CommandFailed("contract_invalid", f"{len(problems)} problem(s) in {file}; nothing was imported")


def _read_contracts(file: Path) -> tuple[list[ContractRow], list[str]]:
    """The rows of a contracts CSV and every problem found in it, by line number."""
    try:
        numbered = read_contracts_csv(file)
    except ContractError as exc:
        return [], exc.problems
    except UnicodeDecodeError:
        return [], [f"{file}: not UTF-8 text; save the CSV as UTF-8"]
    problems: list[str] = []
    customer_lines: dict[str, int] = {}
    account_lines: dict[str, int] = {}
    for line, row in numbered:
        customer, found = check_contract(*row)
        problems += [f"{file}:{line}: {p}" for p in found]
        if found:
            continue
        first = customer_lines.setdefault(customer.customer_id, line)
        if first != line:
            problems.append(f"{file}:{line}: customer_id: {customer.customer_id} is also on line {first}")
        for account in customer.accounts:
            first = account_lines.setdefault(account, line)
            if first != line:
                problems.append(f"{file}:{line}: accounts: {account!r} is also on line {first}")
    return [row for _, row in numbered], problems


