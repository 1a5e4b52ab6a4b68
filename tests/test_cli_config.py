"""Issue 14: configuration the twelve-factor way. Every option also from an environment
variable (the shared ones by one name, the rest REGFLOW_<COMMAND>_<OPTION>), all of them in
docs/configuration.md's table; ``-h`` on every command; ``regflow --version``."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import regflow
from regflow.cli import main
from regflow.cli.options_table import ENV_PREFIX, replace_in, rows
from regflow.cli.service import is_loopback

DOCS = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
REGFLOW = str(Path(sys.executable).with_name("regflow"))
SHARED = {"--db": "REGFLOW_DB", "--mail": "REGFLOW_MAIL", "--hasher": "REGFLOW_HASHER",
          "--lang": "REGFLOW_LANG", "--log-level": "REGFLOW_LOG_LEVEL", "--log-json": "REGFLOW_LOG_JSON",
          "--product": "REGFLOW_PRODUCT", "--mail-from": "REGFLOW_MAIL_FROM"}

# The commands whose store and mail are the deployment's; demo (which empties its database),
# paths and mutate (private memory engines) have their own.
ENGINE_COMMANDS = {"serve", "worker", "sweep", "purge", "run", "contracts import", "report"}


def regflow_in(folder: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("REGFLOW_")}
    return subprocess.run([REGFLOW, *args], cwd=folder, capture_output=True, text=True, timeout=120,
                          env={**clean, **env}, check=False)


def test_db_and_mail_from_the_environment(tmp_path: Path) -> None:
    """The issue's case: REGFLOW_DB=memory:// and REGFLOW_MAIL=memory leave the current folder
    empty; a SQLite URL there makes that file, not ./regflow.db."""
    done = regflow_in(tmp_path, "sweep", env={"REGFLOW_DB": "memory://", "REGFLOW_MAIL": "memory"})
    assert (done.returncode, done.stderr) == (0, "")
    assert list(tmp_path.iterdir()) == []
    elsewhere = tmp_path / "data"
    elsewhere.mkdir()
    done = regflow_in(tmp_path, "sweep", env={"REGFLOW_DB": f"sqlite:///{elsewhere}/x.db",
                                             "REGFLOW_MAIL": f"outbox:{elsewhere}/mail"})
    assert done.returncode == 0, done.stderr
    assert (elsewhere / "x.db").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_defaults_are_the_current_folder(tmp_path: Path) -> None:
    """Without options or variables: ./regflow.db (the documented default place)."""
    done = regflow_in(tmp_path, "sweep", "--hasher", "fast", env={})
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "regflow.db").is_file()


def test_option_wins_over_variable(tmp_path: Path) -> None:
    done = regflow_in(tmp_path, "sweep", "--db", "memory://", "--mail", "memory",
                      env={"REGFLOW_DB": "bogus://", "REGFLOW_MAIL": "bogus"})
    assert (done.returncode, done.stderr) == (0, "")


def test_per_command_variable_is_read() -> None:
    """An option without a shared name: REGFLOW_<COMMAND>_<OPTION>, checked like the option."""
    result = CliRunner().invoke(main, ["worker", "--once", "--db", "memory://", "--mail", "memory"],
                                env={"REGFLOW_WORKER_BATCH": "0", "REGFLOW_LANG": None})
    assert result.exit_code == 2
    assert result.stderr.startswith("regflow: usage: invalid value for --batch: 0 is not in the range x>=1")


def test_every_documented_variable_is_the_one_click_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """For every option of every command, the variable the table names is the one click reads."""
    root = click.Context(main, info_name="regflow", **main.context_settings)
    assert root.auto_envvar_prefix == ENV_PREFIX
    found = list(rows())
    assert len(found) > 50
    for row in found:
        ctx = root
        command: click.Command = main
        for word in row.command.split():
            assert isinstance(command, click.Group)
            command = command.commands[word]
            ctx = click.Context(command, info_name=word, parent=ctx)
        param = next(p for p in command.params if isinstance(p, click.Option)
                     and "/".join((max(p.opts, key=len), *p.secondary_opts)) == row.option)
        monkeypatch.setenv(row.envvar, "from-the-environment")
        assert param.resolve_envvar_value(ctx) == "from-the-environment", row
        monkeypatch.delenv(row.envvar)
        if row.shared:
            assert row.envvar == SHARED.get(row.option, row.envvar), row
        if row.command in ENGINE_COMMANDS and row.option in ("--db", "--mail"):
            assert row.envvar == SHARED[row.option], row


def test_shared_options_are_on_every_command() -> None:
    """--lang, --log-level and --log-json on every command; their variables named once."""
    by_command: dict[str, set[str]] = {}
    for row in rows():
        by_command.setdefault(row.command, set()).add(row.option)
    for command, options in by_command.items():
        assert {"--lang", "--log-level", "--log-json"} <= options, command


def test_docs_table_is_current() -> None:
    """docs/configuration.md holds the table made from the commands, as it is now (if this
    fails: python -m regflow.cli.options_table --write docs/configuration.md)."""
    text = DOCS.read_text(encoding="utf-8")
    assert replace_in(text) == text
    for row in rows():
        assert f"`{row.envvar}`" in text


def command_words(group: click.Group = main, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = [prefix]
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            found += command_words(command, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


@pytest.mark.parametrize("words", command_words(), ids=lambda w: " ".join(w) or "regflow")
def test_short_help_on_every_command(words: tuple[str, ...]) -> None:
    short = CliRunner().invoke(main, [*words, "-h"])
    long = CliRunner().invoke(main, [*words, "--help"])
    assert (short.exit_code, long.exit_code) == (0, 0), short.output
    assert short.stdout == long.stdout
    assert short.stdout.startswith(f"Usage: regflow {' '.join(words)}".rstrip() + " ")
    assert "-h, --help" in short.stdout


def test_version() -> None:
    expected = getattr(regflow, "__version__", None) or version("regflow")
    done = subprocess.run([REGFLOW, "--version"], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout == f"regflow {expected}\n"


def test_serve_refuses_a_public_host_without_the_secret(tmp_path: Path) -> None:
    """serve beyond loopback needs REGFLOW_SECRET: refused before anything listens or is written."""
    for host in ("0.0.0.0", "192.0.2.10", "::"):
        done = regflow_in(tmp_path, "serve", "--host", host, env={})
        assert done.returncode == 2
        assert done.stdout == ""
        assert done.stderr.startswith(f"regflow: secret_required: serving on {host}, beyond this machine")
    assert list(tmp_path.iterdir()) == []
    assert all(is_loopback(h) for h in ("127.0.0.1", "localhost", "::1", "[::1]", "127.8.9.10"))
