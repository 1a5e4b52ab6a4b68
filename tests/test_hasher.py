"""The argon2id password hasher."""

from __future__ import annotations

import pytest

from regflow.adapters.argon2_hasher import Argon2Hasher
from regflow.ground.ports import PasswordHasher


@pytest.fixture(scope="module")
def default_hasher() -> Argon2Hasher:
    """The production-strength hasher."""
    return Argon2Hasher()


@pytest.fixture(params=["default", "fast"])
def hasher(request: pytest.FixtureRequest, default_hasher: Argon2Hasher) -> Argon2Hasher:
    """Both variants."""
    return default_hasher if request.param == "default" else Argon2Hasher.fast()


def test_fits_the_port(hasher: Argon2Hasher) -> None:
    """Argon2Hasher is a PasswordHasher by shape."""
    port: PasswordHasher = hasher
    assert port.verify(port.hash("Pass-w0rd"), "Pass-w0rd")


def test_hash_then_verify(hasher: Argon2Hasher) -> None:
    """A hash verifies its own password, Japanese included, and is salted."""
    password = "社労法務-Pass1"
    hashed = hasher.hash(password)
    assert hashed.startswith("$argon2id$")
    assert hasher.verify(hashed, password) is True
    assert hasher.hash(password) != hashed


def test_wrong_password_is_false(hasher: Argon2Hasher) -> None:
    """A wrong password answers False, not an exception."""
    assert hasher.verify(hasher.hash("Right-Pass1"), "Wrong-Pass1") is False


GARBAGE = ["", "not a hash", "$argon2id$v=19$m=8,t=1,p=1$AAAA$BBBB", "$2b$12$x"]


@pytest.mark.parametrize("garbage", GARBAGE)
def test_garbage_hash_is_false(hasher: Argon2Hasher, garbage: str) -> None:
    """An unreadable or foreign hash answers False, not an exception."""
    assert hasher.verify(garbage, "whatever") is False


def test_default_parameters_are_owasp_minimum(default_hasher: Argon2Hasher) -> None:
    """The default is argon2id with m=19456 KiB, t=2, p=1."""
    assert default_hasher.hash("Pass-w0rd").startswith("$argon2id$v=19$m=19456,t=2,p=1$")


def test_fast_variant_parameters() -> None:
    """The test-only variant is argon2id with t=1, m=8 KiB, p=1."""
    assert Argon2Hasher.fast().hash("Pass-w0rd").startswith("$argon2id$v=19$m=8,t=1,p=1$")


def test_needs_rehash(default_hasher: Argon2Hasher) -> None:
    """A hash with other parameters, or a broken one, needs rehashing; a current one does not."""
    fast = Argon2Hasher.fast()
    assert default_hasher.needs_rehash(default_hasher.hash("Pass-w0rd")) is False
    assert default_hasher.needs_rehash(fast.hash("Pass-w0rd")) is True
    assert default_hasher.needs_rehash("not a hash") is True
    assert default_hasher.verify(fast.hash("Pass-w0rd"), "Pass-w0rd") is True  # still readable
