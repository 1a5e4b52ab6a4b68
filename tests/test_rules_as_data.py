"""Contract and field rules as data (issue 14): the customer-number pattern, the phone comparison,
the password policy and the blocklist are settings and constraints of the flow definitions, the
seed's values the defaults; contracts follow the registration flow's rules."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flows import details, field_errors, last_code, message_ids, register, to_details

import regflow
from regflow.cli import main
from regflow.definitions.library import FlowLibrary
from regflow.definitions.validation import Invalid, check_password, normalize_customer_id, normalize_tel
from regflow.ground.exceptions import DefinitionError
from regflow.machines import BUILTIN_FLOWS, builtin_library, builtin_registry
from regflow.rules.contracts import ContractError, ContractRules

# What the seed says (SPEC 2.1.4): 6 ASCII digits starting 28 after NFKC; phones compared by
# their digits; passwords 8-256 code points, 3 of 4 classes, not on the common list.
SEED_CONTRACT = {"customer_id": "281234", "phone": "03-1234-5678", "licenses": 3,
                 "accounts": ["abcd8-01"]}
US_SETTINGS = {"customer_id_pattern": "[0-9]{6}", "phone_country": "US"}
US_CONTRACT = {"customer_id": "999999", "phone": "(212) 555-0123", "licenses": 2,
               "accounts": ["nyc-01", "nyc-02"]}


def registration_source() -> dict[str, Any]:
    """The built-in registration definition as a table, to make a flow of one's own from."""
    text = resources.files("regflow.machines").joinpath("registration.toml").read_text("utf-8")
    return tomllib.loads(text)


def engine_with(registration: dict[str, Any], db: str = "memory://") -> regflow.Engine:
    """An engine whose library has the built-in flows with ``registration`` replaced."""
    library = FlowLibrary(builtin_registry())
    library.add(registration, root="registration")
    for name in BUILTIN_FLOWS[1:]:
        text = resources.files("regflow.machines").joinpath(f"{name}.toml").read_text("utf-8")
        library.add(tomllib.loads(text), root=name)
    return regflow.Engine.from_url(db, mail="memory", hasher="fast", flows=library)


def faults_of(exc: pytest.ExceptionInfo[DefinitionError]) -> list[str]:
    """The fault lines of a definition error (its message id checked on the way)."""
    assert exc.value.message_id == "definition_invalid"
    return exc.value.faults


# ---- the defaults are the seed's ------------------------------------------------------------

def test_builtin_flows_declare_the_seeds_rules() -> None:
    """The built-in flows' rule settings and password constraints are the seed's values."""
    library = builtin_library()
    settings = library.latest("registration").settings
    assert (settings["customer_id_pattern"], settings["phone_country"],
            settings["password_blocklist"]) == ("28[0-9]{4}", "", "common")
    assert library.latest("password_reset").settings["password_blocklist"] == "common"
    for flow in ("registration", "password_reset"):
        limits = library.latest(flow).fields["password"].constraints
        assert (limits["min_length"], limits["max_length"], limits["classes"]) == (8, 256, 3)
    assert ContractRules.of_library(library) == ContractRules("28[0-9]{4}", "")


@pytest.mark.parametrize(("typed", "expected"), [
    ("280001", "280001"), ("２８０００１", "280001"), (" 289999 ", "289999")])
def test_default_customer_numbers_accepted(typed: str, expected: str) -> None:
    """Six digits starting 28, full-width accepted, are a customer number by default."""
    assert normalize_customer_id(typed) == expected


@pytest.mark.parametrize("typed", ["290001", "28000", "2800011", "٢٨٠٠٠١", "28000a"])
def test_default_customer_numbers_refused(typed: str) -> None:
    """Anything else is refused with the seed's message (which names its rule)."""
    with pytest.raises(Invalid) as exc:
        normalize_customer_id(typed)
    assert exc.value.message_id == "customer_id_invalid"


def test_default_phone_and_password_rules() -> None:
    """Phones are their digits (any dash, full-width); the policy is the seed's."""
    assert normalize_tel("０３－１２３４ー５６７８") == "0312345678"
    assert normalize_tel("+81 3 1234 5678") == "81312345678"
    check_password("Kx7#mPq2")  # 8 characters, 4 classes
    for password, message_id, params in [
        ("Kx7#mPq", "password_length", {"min": 8, "max": 256}),
        ("kx7mpq2wz", "password_classes", {"classes": 3}),
        ("Password1", "password_common", {}),
    ]:
        with pytest.raises(Invalid) as exc:
            check_password(password)
        assert (exc.value.message_id, exc.value.params) == (message_id, params)


def test_default_engine_refuses_other_customer_numbers() -> None:
    """Without another pattern, a contract's number is the seed's: 999999 is refused."""
    engine = regflow.Engine.from_url("memory://", mail="memory", hasher="fast")
    with pytest.raises(ContractError) as exc:
        engine.contracts.add(**{**SEED_CONTRACT, "customer_id": "999999"})
    assert exc.value.problems == ["row 0: customer_id: '999999' is not 6 digits starting 28"]


# ---- settings of the built-in registration ---------------------------------------------------

def test_us_settings_take_us_contracts_and_registrations() -> None:
    """With the US settings, 999999 and a US phone are a contract, and a registration with the
    phone written any US way matches it; a Japanese number is no US phone."""
    engine = regflow.Engine.from_url("memory://", mail="memory", hasher="fast",
                                     settings={"registration": US_SETTINGS})
    engine.contracts.add(**US_CONTRACT)
    assert engine.contracts.find("999999") is not None
    with pytest.raises(ContractError) as exc:
        engine.contracts.add(customer_id="281234", phone="03-1234-5678", licenses=1, accounts=["x-01"])
    assert exc.value.problems == ["row 0: phone: '03-1234-5678' is not a phone number in US"]

    snap = to_details(engine, "ann@example.com", account="nyc-01")
    assert snap.screen.fields[2].name == "customer_id"
    assert snap.screen.fields[2].constraints == {"pattern": "[0-9]{6}"}  # the setting's, no length 6
    refused = engine.send(snap, "submit", details(customer_id="999999", tel="03-1234-5678"))
    assert field_errors(refused) == {"tel": "tel_invalid"}
    refused = engine.send(snap, "submit", details(customer_id="99999", tel="212-555-0123"))
    assert field_errors(refused) == {"customer_id": "customer_id_format"}
    mismatch = engine.send(snap, "submit", details(customer_id="999999", tel="212-555-0124"))
    assert message_ids(mismatch) == ["contract_mismatch"]
    done = engine.send(snap, "submit", details(customer_id="999999", tel="+1 212 555 0123"))
    assert done.state == "provisioning", message_ids(done)
    other = register(engine, "nyc-02", "bob@example.com", customer_id="999999", tel="2125550123")
    assert other.state == "provisioning", message_ids(other)


def test_password_reset_refuses_a_custom_customer_number_in_the_password() -> None:
    """A login of customer 999999 cannot take a new password containing 999999."""
    engine = regflow.Engine.from_url("memory://", mail="memory", hasher="fast",
                                     settings={"registration": US_SETTINGS})
    engine.contracts.add(**US_CONTRACT)
    register(engine, "nyc-01", "ann@example.com", customer_id="999999", tel="2125550123")
    snap = engine.start("password_reset")
    snap = engine.send(snap, "submit", {"email": "ann@example.com"})
    snap = engine.send(snap, "submit", {"code": last_code(engine)})
    assert snap.state == "new_password", message_ids(snap)
    refused = engine.send(snap, "submit", {"password": "Kx7#999999", "password_confirm": "Kx7#999999"})
    assert field_errors(refused) == {"password": "password_contains_customer_id"}


# ---- a flow of one's own ---------------------------------------------------------------------

def own_registration(blocklist: str) -> dict[str, Any]:
    """Registration with passwords of 12+ characters of 2 classes and its own blocklist."""
    source = registration_source()
    source["settings"].update(US_SETTINGS, password_blocklist=blocklist)
    source["fields"]["customer_id"]["constraints"] = {"pattern": "[0-9]{6}"}
    source["fields"]["password"]["constraints"] = {"min_length": 12, "max_length": 64, "classes": 2}
    return source


@pytest.mark.parametrize("db", ["memory", "sqlite"])
def test_own_password_policy_and_blocklist(tmp_path: Path, db: str) -> None:
    """Its own constraints and list decide: 12+ characters, 2 classes, its words refused; the
    shipped list no longer applies unless it names ``common``."""
    words = tmp_path / "words.txt"
    words.write_text("# ours\nCorrectHorse2024\n", encoding="utf-8")
    url = "memory://" if db == "memory" else f"sqlite:///{tmp_path / 'own.db'}"
    engine = engine_with(own_registration(str(words)), url)
    engine.contracts.add(**US_CONTRACT)
    snap = to_details(engine, "ann@example.com", account="nyc-01")
    form = {"customer_id": "999999", "tel": "(212) 555-0123"}
    for password, expected in [("Kx7#mPq2wZ", "password_length"), ("abcdefghijkl", "password_classes"),
                               ("correcthorse2024", "password_common")]:
        refused = engine.send(snap, "submit", details(password=password, **form))
        assert field_errors(refused) == {"password": expected}, password
    done = engine.send(snap, "submit", details(password="1qaz2wsx3edc", **form))  # on the shipped list
    assert done.state == "provisioning", message_ids(done)
    engine.store.close()

    both = engine_with(own_registration(f"common {words}"))
    both.contracts.add(**US_CONTRACT)
    snap = to_details(both, "ann@example.com", account="nyc-01")
    refused = both.send(snap, "submit", details(password="1qaz2wsx3edc", **form))
    assert field_errors(refused) == {"password": "password_common"}


def test_own_flow_without_rule_settings_keeps_the_seeds() -> None:
    """A flow that declares none of the rule settings gets the seed's rules."""
    source = registration_source()
    for key in ("customer_id_pattern", "phone_country", "password_blocklist"):
        del source["settings"][key]
    engine = engine_with(source)
    engine.contracts.add(**SEED_CONTRACT)
    snap = to_details(engine, "ann@example.com")
    refused = engine.send(snap, "submit", details(customer_id="290001", password="Password1"))
    assert field_errors(refused) == {"customer_id": "customer_id_invalid", "password": "password_common"}
    with pytest.raises(ContractError):
        engine.contracts.add(**{**SEED_CONTRACT, "customer_id": "999999"})


# ---- bad rules are definition errors with their paths ----------------------------------------

@pytest.mark.parametrize(("key", "value", "fault"), [
    ("customer_id_pattern", "28[0-9", "registration.settings.customer_id_pattern: not a regular expression"),
    ("customer_id_pattern", "", "registration.settings.customer_id_pattern: an empty pattern"),
    ("phone_country", "USA", "registration.settings.phone_country: an ISO 3166 country code"),
    ("phone_country", "ZZ", "registration.settings.phone_country: no phone numbering plan known for 'ZZ'"),
    ("password_blocklist", "common /nonexistent/words.txt",
     "registration.settings.password_blocklist: cannot read the blocklist '/nonexistent/words.txt'"),
    ("phone_country", 1, "registration.settings.phone_country: expected text, not 1"),
])
def test_bad_rule_settings(key: str, value: Any, fault: str) -> None:
    """A bad rule setting, in the definition or as an engine's override, names its path."""
    source = registration_source()
    source["settings"][key] = value
    with pytest.raises(DefinitionError) as exc:
        builtin_library().add(source, root="registration")
    if not isinstance(value, int):  # a number is no text: structuring reports it otherwise
        assert [f for f in faults_of(exc) if f.startswith(fault)], faults_of(exc)
    with pytest.raises(DefinitionError) as exc:
        regflow.Engine.from_url("memory://", mail="memory", hasher="fast",
                                settings={"registration": {key: value}})
    assert [f for f in faults_of(exc) if f.startswith(fault)], faults_of(exc)


@pytest.mark.parametrize(("field", "constraints", "fault"), [
    ("password", {"min_length": "8"}, "registration.fields.password.constraints.min_length: expected a whole "
                                      "number of 0 or more, not '8'"),
    ("password", {"min_length": 20, "max_length": 10}, "registration.fields.password.constraints: min_length "
                                                       "20 is above max_length 10"),
    ("password", {"classes": 5}, "registration.fields.password.constraints.classes: at most 4"),
    ("code", {"pattern": "[0-9"}, "registration.fields.code.constraints.pattern: not a regular expression"),
    ("customer_id", {"pattern": "29[0-9]{4}"}, "registration.fields.customer_id.constraints.pattern: "
                                               "'29[0-9]{4}' is not the setting customer_id_pattern"),
])
def test_bad_constraints(field: str, constraints: dict[str, Any], fault: str) -> None:
    """Constraints that are no rule are definition errors with their paths."""
    source = registration_source()
    source["fields"][field]["constraints"] = constraints
    with pytest.raises(DefinitionError) as exc:
        builtin_library().add(source, root="registration")
    assert [f for f in faults_of(exc) if f.startswith(fault)], faults_of(exc)


# ---- the command line ------------------------------------------------------------------------

def test_contracts_import_with_a_customer_pattern(tmp_path: Path) -> None:
    """``regflow contracts import --customer-pattern`` takes the deployment's numbers; a bad
    pattern is a configuration error; without the option 999999 is refused."""
    csv = tmp_path / "c.csv"
    csv.write_text("customer_id,phone,licenses,accounts\n999999,(212) 555-0123,2,nyc-01\n", encoding="utf-8")
    places = ["--db", f"sqlite:///{tmp_path / 'regflow.db'}", "--mail", "memory", "--hasher", "fast"]
    runner = CliRunner()
    refused = runner.invoke(main, ["contracts", "import", str(csv), *places])
    assert refused.exit_code == 2
    assert f"{csv}:2: customer_id: '999999' is not 6 digits starting 28" in refused.stderr
    bad = runner.invoke(main, ["contracts", "import", str(csv), "--customer-pattern", "[0-9", *places])
    assert bad.exit_code == 2
    assert "config_invalid" in bad.stderr
    assert "--customer-pattern: not a regular expression" in bad.stderr
    taken = runner.invoke(main, ["contracts", "import", str(csv), "--customer-pattern", "[0-9]{6}",
                                 "--phone-country", "US", *places])
    assert taken.exit_code == 0, taken.output
    engine = regflow.Engine.from_url(f"sqlite:///{tmp_path / 'regflow.db'}", mail="memory", hasher="fast",
                                     settings={"registration": US_SETTINGS})
    try:
        found = engine.contracts.find("999999")
        assert found is not None
        assert found.accounts == ["nyc-01"]
    finally:
        engine.store.close()
