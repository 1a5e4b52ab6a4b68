"""Unlock a login's sign-in (SPEC 2.2, 2.4); the admin may unlock its own login too."""

from regflow.testing.scenarios.admin import targeted

SCENARIO = targeted("unlock_login")
del SCENARIO["witnesses"]["target_is_actor"]  # no such rule: unlocking oneself is allowed
