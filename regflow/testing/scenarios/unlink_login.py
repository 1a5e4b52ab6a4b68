"""Unlink a login."""

from regflow.testing.scenarios.admin import targeted

SCENARIO = targeted("unlink_login")
