"""Password hashing with argon2id (argon2-cffi), at OWASP's minimum parameters by default."""

from __future__ import annotations

import argon2
from argon2.exceptions import InvalidHashError, VerificationError


class Argon2Hasher:
    """argon2id hashes in the PHC string format (``$argon2id$v=19$m=…,t=…,p=…$salt$hash``).

    The defaults (m=19 MiB, t=2, p=1) are OWASP's minimum recommendation for argon2id.
    """

    def __init__(self, time_cost: int = 2, memory_cost: int = 19456, parallelism: int = 1) -> None:
        self.time_cost = time_cost
        self.memory_cost = memory_cost  # KiB
        self.parallelism = parallelism
        self._hasher = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_cost,
            parallelism=parallelism,
            type=argon2.Type.ID,
        )

    @classmethod
    def fast(cls) -> Argon2Hasher:
        """A hasher for tests only (t=1, m=8 KiB, p=1): cheap to break, UNSAFE in production."""
        return cls(time_cost=1, memory_cost=8, parallelism=1)

    def hash(self, password: str) -> str:
        """A salted argon2id hash of the password."""
        return self._hasher.hash(password)

    def verify(self, hashed: str, password: str) -> bool:
        """Whether the password matches; False (never an exception) for a wrong or broken hash."""
        try:
            return self._hasher.verify(hashed, password)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, hashed: str) -> bool:
        """Whether the hash used other parameters (or is unreadable) and should be redone."""
        try:
            return self._hasher.check_needs_rehash(hashed)
        except InvalidHashError:
            return True
