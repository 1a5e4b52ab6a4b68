"""The provisioner used when an embedding has none: nothing to create elsewhere."""

from __future__ import annotations

from regflow.ground.records import Login


class NoProvisioner:
    """Accepts every login; the login is usable at ``ready_at`` without outside work."""

    def provision(self, login: Login, *, key: str) -> None:
        """Nothing to do."""
        del login, key
