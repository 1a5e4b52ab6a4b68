"""The ``regflow`` command line (SPEC 4.3)."""

from regflow.cli import contracts, service, terminal
from regflow.cli.base import main

__all__ = ["contracts", "main", "service", "terminal"]
