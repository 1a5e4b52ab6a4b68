"""Delete a login (SPEC 2.4)."""

from regflow.testing.scenarios.admin import targeted

SCENARIO = targeted("delete_login")
