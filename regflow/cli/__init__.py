"""The ``regflow`` command line."""

from regflow.cli import contracts, lint_commands, service, terminal
from regflow.cli import migrate_command as migrate_command
from regflow.cli import mutate_command as mutate_command
from regflow.cli import paths_command as paths_command
from regflow.cli import report_command as report_command
from regflow.cli.base import main

__all__ = ["contracts", "lint_commands", "main", "service", "terminal"]
