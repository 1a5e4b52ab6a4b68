"""The table of every ``regflow`` option, its environment variable and its default, made from
the click command tree (docs/configuration.md holds it between two markers).

``python -m regflow.cli.options_table`` prints it; ``--write FILE`` replaces the table in FILE.
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import click

from regflow.cli import main
from regflow.cli.base import ENV_PREFIX

__all__ = ["END", "ENV_PREFIX", "START", "Row", "replace_in", "rows", "table"]

START = "<!-- options table: made by `python -m regflow.cli.options_table --write docs/configuration.md` -->"
END = "<!-- end of options table -->"


@attrs.frozen
class Row:
    """One option of one command."""

    command: str  # "worker", "contracts import"
    option: str  # "--db", "--relay/--no-relay"
    envvar: str
    default: str
    shared: bool  # its variable is named once for every command (REGFLOW_DB), not per command
    help: str


def _default(option: click.Option) -> str:
    if option.is_flag and not option.secondary_opts:
        return "off"
    value: Any = option.default
    if callable(value) or value is None or isinstance(value, enum.Enum):  # click's UNSET too
        return "—"
    if option.is_flag:
        return option.opts[0] if value else option.secondary_opts[0]
    if isinstance(value, tuple | list):
        return ", ".join(map(str, value)) or "—"
    return str(value)


def _help(text: str | None) -> str:
    return " ".join((text or "").split()).rstrip(".").replace("|", "\\|")


def rows(group: click.Group = main, parent: click.Context | None = None) -> Iterator[Row]:
    """Every visible option of every command, in command order."""
    ctx = parent or click.Context(group, info_name="regflow", **main.context_settings)
    for name in sorted(group.commands):
        command = group.commands[name]
        child = click.Context(command, info_name=name, parent=ctx)
        if isinstance(command, click.Group):
            yield from rows(command, child)
            continue
        words = child.command_path.split(" ", 1)[1]
        for param in command.params:
            if not isinstance(param, click.Option) or param.hidden or param.name is None:
                continue
            explicit = param.envvar if isinstance(param.envvar, str) else None
            own = f"{child.auto_envvar_prefix}_"
            envvar = explicit or f"{own}{param.name.upper()}"
            option = "/".join((max(param.opts, key=len), *param.secondary_opts))
            yield Row(words, option, envvar, _default(param), not envvar.startswith(own), _help(param.help))


def _cell(text: str) -> str:
    return f"`{text}`" if text not in ("—", "off") else text


def table() -> str:
    """The markdown: the shared variables (one name for every command), then the rest."""
    everything = list(rows())
    shared: dict[tuple[str, str, str], list[Row]] = {}
    for row in everything:
        if row.shared:
            shared.setdefault((row.envvar, row.option, row.default), []).append(row)
    lines = ["| variable | option | default | commands | what it sets |", "| --- | --- | --- | --- | --- |"]
    for (envvar, option, default), found in sorted(shared.items()):
        commands = ", ".join(r.command for r in found)
        helps = next((r.help for r in found if r.help), "")
        lines.append(f"| `{envvar}` | `{option}` | {_cell(default)} | {commands} | {helps} |")
    lines += ["", "| command | option | variable | default | what it sets |",
              "| --- | --- | --- | --- | --- |"]
    for row in everything:
        if not row.shared:
            lines.append(f"| {row.command} | `{row.option}` | `{row.envvar}` | {_cell(row.default)} "
                         f"| {row.help} |")
    return "\n".join(lines) + "\n"


def replace_in(text: str) -> str:
    """``text`` with the part between START and END made anew; ValueError without the markers."""
    before, start, rest = text.partition(START)
    _, end, after = rest.partition(END)
    if not start or not end:
        raise ValueError(f"the markers {START!r} and {END!r} are missing")
    return f"{before}{START}\n\n{table()}\n{END}{after}"


def _main(argv: list[str]) -> int:
    if argv[:1] == ["--write"] and len(argv) == 2:
        path = Path(argv[1])
        path.write_text(replace_in(path.read_text(encoding="utf-8")), encoding="utf-8")
        return 0
    sys.stdout.write(table())
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
