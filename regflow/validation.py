"""Normalising and checking what people type: e-mail, codes, passwords, customer numbers, phones.

NFKC folds full-width digits and ``－`` but not the dashes ``‐ ‒ – — ― − ー``; those are folded
here. Digits are matched with ``[0-9]``, never ``\\d`` (which takes any script's digits).
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from importlib import resources
from typing import Any

DASHES = "-‐‑‒–—―−ーｰ－"
_DASH_TABLE = str.maketrans(dict.fromkeys(DASHES + " \u3000()（）", ""))
_BIDI = {0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)}
_CODE = re.compile(r"[0-9]{8}")
_CUSTOMER_ID = re.compile(r"28[0-9]{4}")
_TEL = re.compile(r"\+?[0-9]{6,15}")


class Invalid(Exception):
    """A value was refused; ``message_id`` and ``params`` say why, for the person."""

    def __init__(self, message_id: str, **params: Any) -> None:
        self.message_id = message_id
        self.params = params
        super().__init__(message_id)


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


def normalize_customer_id(value: str) -> str:
    """Six ASCII digits starting 28 (full-width accepted), or Invalid('customer_id_invalid')."""
    text = unicodedata.normalize("NFKC", value).strip()
    if not _CUSTOMER_ID.fullmatch(text):
        raise Invalid("customer_id_invalid")
    return text


def tel_digits(value: str) -> str:
    """A phone number as its digits only, hyphens of every kind, spaces and brackets removed."""
    return unicodedata.normalize("NFKC", value).translate(_DASH_TABLE)


def normalize_tel(value: str) -> str:
    """A phone number's digits, or Invalid('tel_invalid')."""
    digits = tel_digits(value)
    if not _TEL.fullmatch(digits):
        raise Invalid("tel_invalid")
    return digits.lstrip("+")


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


@cache
def common_passwords() -> frozenset[str]:
    """The shipped blocklist of common passwords, lower-cased."""
    text = resources.files("regflow").joinpath("data/common-passwords.txt").read_text("utf-8")
    return frozenset(line.strip().casefold() for line in text.splitlines()
                     if line.strip() and not line.startswith("#"))


def password_classes(password: str) -> int:
    """How many of {lower, upper, digit, symbol} the password uses."""
    lower = any(ch.islower() for ch in password)
    upper = any(ch.isupper() for ch in password)
    digit = any("0" <= ch <= "9" for ch in password)
    symbol = any(not (ch.islower() or ch.isupper() or "0" <= ch <= "9") for ch in password)
    return lower + upper + digit + symbol


def check_password(password: str, *, email: str | None = None,
                   customer_id: str | None = None) -> None:
    """SPEC 2.1.4's password policy; raises Invalid with the first rule broken."""
    if not 8 <= len(password) <= 256:
        raise Invalid("password_length", min=8, max=256)
    if password_classes(password) < 3:
        raise Invalid("password_classes", classes=3)
    folded = password.casefold()
    if folded in common_passwords():
        raise Invalid("password_common")
    if email:
        local = email.split("@", 1)[0].casefold()
        if len(local) >= 3 and local in folded:
            raise Invalid("password_contains_email")
    if customer_id and customer_id in password:
        raise Invalid("password_contains_customer_id")
