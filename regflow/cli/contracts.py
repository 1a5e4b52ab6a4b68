"""``regflow contracts``: import contracts from CSV."""

from __future__ import annotations

from pathlib import Path

import click

from regflow.cli.base import CommandFailed, _Group, engine_options, main, open_engine
from regflow.definitions.validation import rule_setting_faults
from regflow.rules.contracts import (
    ContractError,
    ContractRules,
    StoreContracts,
    check_contracts,
    read_contracts_csv,
)


@main.group(cls=_Group)
def contracts() -> None:
    """Contracts: customers, their phone, license count and accounts (seats)."""


@contracts.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--customer-pattern", default=ContractRules().customer_id_pattern, show_default=True,
              metavar="REGEX", help="Customer numbers (all of the number, after NFKC), as the "
                                    "registration flow's setting customer_id_pattern.")
@click.option("--phone-country", metavar="CC",
              help="Phones must be valid in this country (e.g. US), as the registration flow's "
                   "setting phone_country; default: any 6-15 digits.")
@engine_options
def import_contracts(file: Path, customer_pattern: str, phone_country: str | None, db: str,
                     mail: str, hasher: str) -> None:
    """Import FILE.csv (customer_id,phone,licenses,accounts): all of it, or nothing."""
    phone_country = phone_country or ""
    bad = [*rule_setting_faults("customer_id_pattern", customer_pattern, "--customer-pattern"),
           *rule_setting_faults("phone_country", phone_country, "--phone-country")]
    if bad:
        raise CommandFailed("config_invalid", "; ".join(bad))
    rules = ContractRules(customer_pattern, phone_country)
    try:
        numbered = read_contracts_csv(file)
    except ContractError as exc:
        problems = exc.problems
    except UnicodeDecodeError:
        problems = [f"{file}: not UTF-8 text; save the CSV as UTF-8"]
    else:
        lines, rows = [line for line, _ in numbered], [row for _, row in numbered]
        # Checked before the store is opened: a bad file leaves no database behind.
        problems = check_contracts(rows, source=str(file), lines=lines, rules=rules)[1]
        if not problems:
            with open_engine(db, mail, hasher) as engine:
                try:
                    imported = StoreContracts(engine.store, rules).add_many(
                        rows, source=str(file), lines=lines)
                except ContractError as exc:
                    problems = exc.problems
                else:
                    click.echo(f"Imported {len(imported)} contract(s) from {file}.")
                    return
    for problem in problems:
        click.echo(problem, err=True)
    raise CommandFailed("contract_invalid", f"{len(problems)} problem(s) in {file}; nothing was imported")
