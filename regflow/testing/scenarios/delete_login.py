"""Delete a login."""

from regflow.testing.scenarios.admin import targeted

SCENARIO = targeted("delete_login")
