"""Normalising and checking what people type: e-mail, codes, passwords, customer numbers, phones.

NFKC folds full-width digits and ``－`` but not the dashes ``‐ ‒ – — ― − ー``; those are folded
here. Digits are matched with ``[0-9]``, never ``\\d`` (which takes any script's digits); a
flow's own customer-number pattern is compiled ASCII-only, so its ``\\d`` means ``[0-9]`` too.

The rules a flow may set (its ``[settings]``, see ``RULE_SETTINGS``) have the seed's values as
defaults: customer numbers ``28[0-9]{4}``, phones compared by their digits, the shipped blocklist.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from importlib import resources
from pathlib import Path

from regflow.ground.exceptions import Invalid as Invalid  # raised by every check here

DASHES = "-‐‑‒–—―−ーｰ－"
_DASH_TABLE = str.maketrans(dict.fromkeys(DASHES + " \u3000()（）", ""))
_BIDI = {0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)}
_CODE = re.compile(r"[0-9]{8}")
_TEL = re.compile(r"\+?[0-9]{6,15}")
_COUNTRY = re.compile(r"[A-Z]{2}")
COMMON_BLOCKLIST = "common"  # in ``password_blocklist``: the shipped list of common passwords
# The rule settings a flow may declare, with the seed's values (what a flow without them gets).
RULE_SETTINGS: dict[str, str] = {
    "customer_id_pattern": "28[0-9]{4}",
    "phone_country": "",
    "password_blocklist": COMMON_BLOCKLIST,
}




def email_key(email: str) -> str:
    """The key of I1: NFKC, then case-folded as a whole."""
    return unicodedata.normalize("NFKC", email).casefold()


def normalize_email(value: str) -> str:
    """A syntactically valid address (NFKC, trimmed), or Invalid('email_invalid')."""
    text = unicodedata.normalize("NFKC", value).strip()
    if not text or len(text) > 254:
        raise Invalid("email_invalid")
    import email_validator  # loaded on first use: it takes a third of `import regflow`

    try:
        result = email_validator.validate_email(text, check_deliverability=False)
    except email_validator.EmailNotValidError:
        raise Invalid("email_invalid") from None
    return str(result.normalized)


def normalize_code(value: str) -> str:
    """Eight ASCII digits (full-width and spaces accepted), or Invalid('code_format')."""
    text = unicodedata.normalize("NFKC", value).translate(_DASH_TABLE)
    if not _CODE.fullmatch(text):
        raise Invalid("code_format", digits=8)
    return text


@cache
def customer_id_regex(pattern: str) -> re.Pattern[str]:
    """A customer-number pattern compiled ASCII-only (``re.error`` when it is no regex)."""
    return re.compile(pattern, re.ASCII)


def normalize_customer_id(value: str, pattern: str = RULE_SETTINGS["customer_id_pattern"]) -> str:
    """The customer number after NFKC and trimming when ``pattern`` matches all of it (by
    default six ASCII digits starting 28, full-width accepted), or Invalid('customer_id_invalid')."""
    text = unicodedata.normalize("NFKC", value).strip()
    if not customer_id_regex(pattern).fullmatch(text):
        # the seed's message names its rule ("6 digits starting with 28"); another pattern's
        # message does not (a flow's texts may say more, under message.customer_id_format)
        default = pattern == RULE_SETTINGS["customer_id_pattern"]
        raise Invalid("customer_id_invalid" if default else "customer_id_format")
    return text


def tel_digits(value: str) -> str:
    """A phone number as its digits only, hyphens of every kind, spaces and brackets removed."""
    return unicodedata.normalize("NFKC", value).translate(_DASH_TABLE)


def normalize_tel(value: str, country: str = "") -> str:
    """A phone number as compared with a contract's, or Invalid('tel_invalid'): without a
    ``country`` its digits (6 to 15, a leading ``+`` dropped); with one (ISO 3166 alpha-2, e.g.
    ``"US"``) the E.164 form (``+12125550123``) of a number valid there, parsed by phonenumbers
    (an international ``+…`` number is taken as written)."""
    if not country:
        digits = tel_digits(value)
        if not _TEL.fullmatch(digits):
            raise Invalid("tel_invalid")
        return digits.lstrip("+")
    import phonenumbers  # loaded on first use, only by flows that set a country

    text = unicodedata.normalize("NFKC", value).strip()
    try:
        number = phonenumbers.parse(text, country)
    except phonenumbers.NumberParseException:
        raise Invalid("tel_invalid") from None
    if not phonenumbers.is_valid_number(number):
        raise Invalid("tel_invalid")
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def same_phone(typed: str, contract_phone: str, country: str = "") -> bool:
    """Whether a typed phone (as ``normalize_tel`` gave it) is the contract's phone."""
    try:
        return normalize_tel(contract_phone, country) == typed
    except Invalid:
        return False


def has_forbidden_characters(text: str) -> bool:
    """Control characters (other than none at all) and bidi overrides are refused in names."""
    return any(unicodedata.category(ch) == "Cc" or ord(ch) in _BIDI for ch in text)


def normalize_display_name(value: str) -> str:
    """1–256 characters after NFC and trimming, no control or bidi characters."""
    text = unicodedata.normalize("NFC", value).strip()
    if has_forbidden_characters(text):
        raise Invalid("display_name_invalid")
    if not 1 <= len(text) <= 256:
        raise Invalid("display_name_length", min=1, max=256)
    return text


def _entries(text: str) -> frozenset[str]:
    return frozenset(line.strip().casefold() for line in text.splitlines()
                     if line.strip() and not line.startswith("#"))


@cache
def common_passwords() -> frozenset[str]:
    """The shipped blocklist of common passwords, lower-cased."""
    return _entries(resources.files("regflow").joinpath("data/common-passwords.txt").read_text("utf-8"))


def blocklist(spec: str) -> frozenset[str]:
    """The passwords a ``password_blocklist`` setting refuses, case-folded: its space-separated
    sources together, each ``common`` (the shipped list) or a UTF-8 file of one password a line
    (``#`` starts a comment line; a relative path is taken from the current folder); ``""``
    refuses none. Each file is read once per process."""
    out: frozenset[str] = frozenset()
    for source in spec.split():
        out |= common_passwords() if source == COMMON_BLOCKLIST else _blocklist_file(
            Path(source).resolve())
    return out


@cache
def _blocklist_file(path: Path) -> frozenset[str]:
    return _entries(path.read_text("utf-8"))


def password_classes(password: str) -> int:
    """How many of {lower, upper, digit, symbol} the password uses."""
    lower = any(ch.islower() for ch in password)
    upper = any(ch.isupper() for ch in password)
    digit = any("0" <= ch <= "9" for ch in password)
    symbol = any(not (ch.islower() or ch.isupper() or "0" <= ch <= "9") for ch in password)
    return lower + upper + digit + symbol


def check_password(password: str, *, email: str | None = None, customer_id: str | None = None,
                   min_length: int = 8, max_length: int = 256, classes: int = 3,
                   blocked: str = COMMON_BLOCKLIST) -> None:
    """The password policy (by default the seed's: 8–256 characters, 3 of the 4 classes, not
    on the shipped blocklist, not containing the e-mail's local part or the customer number);
    raises Invalid with the first rule broken. ``blocked`` is a ``password_blocklist`` value."""
    if not min_length <= len(password) <= max_length:
        raise Invalid("password_length", min=min_length, max=max_length)
    if password_classes(password) < classes:
        raise Invalid("password_classes", classes=classes)
    folded = password.casefold()
    if folded in blocklist(blocked):
        raise Invalid("password_common")
    if email:
        local = email.split("@", 1)[0].casefold()
        if len(local) >= 3 and local in folded:
            raise Invalid("password_contains_email")
    if customer_id and customer_id in password:
        raise Invalid("password_contains_customer_id")


def rule_setting_faults(key: str, value: object, where: str) -> list[str]:
    """What is wrong with the value of a rule setting (``RULE_SETTINGS``): a pattern that is no
    regular expression, a country phonenumbers does not know, a blocklist file that cannot be
    read. Other settings: nothing."""
    if key not in RULE_SETTINGS or not isinstance(value, str):
        return []
    if key == "customer_id_pattern":
        try:
            customer_id_regex(value)
        except re.error as exc:
            return [f"{where}: not a regular expression: {exc}"]
        return [] if value else [f"{where}: an empty pattern takes no customer number"]
    if key == "phone_country":
        return [] if not value else _country_faults(value, where)
    faults = []
    for source in value.split():
        if source == COMMON_BLOCKLIST:
            continue
        try:
            Path(source).read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            faults.append(f"{where}: cannot read the blocklist {source!r}: {exc}")
    if not faults:
        blocklist(value)  # read now, while loading: a file gone later cannot fail a step
    return faults


def _country_faults(country: str, where: str) -> list[str]:
    if not _COUNTRY.fullmatch(country):
        return [f"{where}: an ISO 3166 country code such as 'JP' or 'US', or '' (digits only)"]
    import phonenumbers

    if country not in phonenumbers.SUPPORTED_REGIONS:
        return [f"{where}: no phone numbering plan known for {country!r}"]
    return []
