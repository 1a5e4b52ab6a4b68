"""Issue 14: every command ends an error with one line on stderr, ``regflow: <id>: <message>``,
exit code 2 and nothing on stdout, in the language asked (--lang or REGFLOW_LANG, else English);
a bad option of any command likewise (message id ``usage``).

Each command has one error case of its own (ERROR_CASES) and the bad-option cases run over the
whole command tree, so a new command is covered by the second at once and must add the first.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from regflow.cli import main

JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
GOOD_CSV = "customer_id,phone,licenses,accounts\n281234,03-1234-5678,3,abcd8-01\n"


def command_paths(group: click.Group = main, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command of the tree, as the words that call it (``("contracts", "import")``)."""
    found: list[tuple[str, ...]] = []
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            found += command_paths(command, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


def invoke(args: list[str], env: dict[str, str] | None = None) -> Result:
    clean = {"REGFLOW_LANG": None, "REGFLOW_DB": None, "REGFLOW_MAIL": None, "REGFLOW_SECRET": None,
             "REGFLOW_LOG_LEVEL": None}
    return CliRunner().invoke(main, args, env={**clean, **(env or {})}, catch_exceptions=False)


def one_error_line(result: Result, message_id: str) -> str:
    """The text after ``regflow: <id>: `` of the only stderr line; exit 2, stdout empty."""
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    prefix = f"regflow: {message_id}: "
    assert lines[0].startswith(prefix), lines[0]
    return lines[0][len(prefix):]


def error_cases(tmp: Path) -> dict[tuple[str, ...], tuple[list[str], str, str, str]]:
    """Per command: arguments, the message id, and a fragment of the Japanese and the English
    message (the Japanese from locales/ja.toml, the English from the code's own words)."""
    csv = tmp / "c.csv"
    csv.write_text(GOOD_CSV, encoding="utf-8")
    return {
        ("check",): (["check", "--registry", "nosuch:steps"], "registry_invalid",
                     "--registry を読み込めません", "No module named 'nosuch'"),
        ("contracts", "import"): (["contracts", "import", str(csv), "--db", "bogus://x"],
                                  "config_invalid", "設定が正しくありません", "unsupported store URL"),
        ("demo",): (["demo", "--db", "memory://"], "config_invalid", "設定が正しくありません",
                    "the demo runs on a SQLite file"),
        ("diagram",): (["diagram"], "diagram_flow_missing", "FLOW（組み込みフロー名または定義ファイル）か",
                       "give FLOW"),
        ("migrate",): (["migrate", "--db", "bogus"], "config_invalid", "設定が正しくありません",
                       "unsupported store URL"),
        ("report",): (["report", "registration", "--db", "memory://", "--since", "notadate"],
                      "report_range_invalid", "は日付（YYYY-MM-DD）でも", "is not a date (YYYY-MM-DD)"),
        ("traffic",): (["traffic", "--db", "bogus"], "config_invalid", "設定が正しくありません",
                       "unsupported store URL"),
        ("mutate",): (["mutate", "registration", "--approved", str(tmp / "none.json")], "paths_not_approved",
                      "承認済みパスがないか", "no approved paths at"),
        ("paths",): (["paths", "nosuch.toml"], "scenario_invalid", "シナリオに問題があります",
                     "is not a built-in flow"),
        ("purge",): (["purge", "--db", "bogus"], "config_invalid", "設定が正しくありません",
                     "unsupported store URL"),
        ("run",): (["run", "nosuchflow", "--account", "abcd8-01", "--db", "memory://", "--mail", "memory",
                    "--hasher", "fast"], "flow_not_found", "手続きが見つかりません",
                   "no flow named 'nosuchflow'"),
        ("serve",): (["serve", "--host", "0.0.0.0", "--db", "memory://"], "secret_required",
                     "REGFLOW_SECRET（32 バイト以上", "set REGFLOW_SECRET"),
        ("sweep",): (["sweep", "--db", "memory://", "--mail", "bogus"], "config_invalid",
                     "設定が正しくありません", "unsupported mail spec"),
        ("worker",): (["worker", "--once", "--db", "bogus"], "config_invalid", "設定が正しくありません",
                      "unsupported store URL"),
    }


def test_every_command_has_an_error_case(tmp_path: Path) -> None:
    """A command added to the tree needs its own case here."""
    assert set(command_paths()) <= set(error_cases(tmp_path)), (
        set(command_paths()) - set(error_cases(tmp_path)))


@pytest.mark.parametrize("command", command_paths(), ids=" ".join)
@pytest.mark.parametrize("how", ["option", "env"])
def test_error_of_each_command(tmp_path: Path, command: tuple[str, ...], how: str) -> None:
    """The command's own error: one line, in Japanese when asked, else in English."""
    cases = error_cases(tmp_path)
    if command not in cases:
        pytest.fail(f"no error case for {' '.join(command)}")
    args, message_id, japanese, english = cases[command]
    asked = ([*args, "--lang", "ja"], None) if how == "option" else (args, {"REGFLOW_LANG": "ja"})
    text = one_error_line(invoke(asked[0], asked[1]), message_id)
    assert japanese in text
    english_text = one_error_line(invoke(args), message_id)
    assert english in english_text
    assert not JAPANESE.search(english_text), english_text
    explicit = one_error_line(invoke([*args, "--lang", "en"], {"REGFLOW_LANG": "ja"}), message_id)
    assert explicit == english_text  # the option wins over the variable


@pytest.mark.parametrize("command", command_paths(), ids=" ".join)
def test_bad_option_of_each_command(command: tuple[str, ...]) -> None:
    """An unknown option and a bad value of a shared option, in both languages."""
    args = [*command, "--zzz-bogus"]
    assert one_error_line(invoke(args), "usage") == "no such option: --zzz-bogus"
    japanese = "オプション --zzz-bogus はありません"
    assert one_error_line(invoke([*args, "--lang", "ja"]), "usage") == japanese
    assert one_error_line(invoke(args, {"REGFLOW_LANG": "ja"}), "usage") == japanese
    bad_level = [*command, "--log-level", "loud"]
    assert one_error_line(invoke(bad_level), "usage").startswith("invalid value for --log-level: 'loud'")
    assert one_error_line(invoke(bad_level, {"REGFLOW_LANG": "ja"}), "usage").startswith(
        "--log-level の値が正しくありません: 'loud'")


def test_bad_environment_value_is_a_usage_error() -> None:
    """A variable is checked like its option: REGFLOW_HASHER=slow is refused, naming it."""
    text = one_error_line(invoke(["sweep", "--db", "memory://", "--mail", "memory"],
                                 {"REGFLOW_HASHER": "slow"}), "usage")
    assert text.startswith("invalid value for --hasher: 'slow'")


def test_unknown_command_and_missing_argument() -> None:
    assert one_error_line(invoke(["nosuch"]), "usage") == "No such command 'nosuch'."
    assert one_error_line(invoke(["run", "--lang", "ja"]), "usage") == "FLOW を指定してください"
    assert one_error_line(invoke(["run"]), "usage") == "missing FLOW"


def test_account_and_resume_together() -> None:
    result = invoke(["run", "registration", "--account", "a", "--resume", "b", "--db", "memory://",
                     "--mail", "memory", "--hasher", "fast", "--lang", "ja"])
    assert one_error_line(result, "usage") == (
        "--account ID（新しく開始）か --resume FLOW_ID（再開）のどちらか一方を指定してください")


def test_registry_error_through_the_installed_command(tmp_path: Path) -> None:
    """The issue's case, as a real process: ``--registry nosuch:steps`` is one line, no traceback."""
    regflow = str(Path(sys.executable).with_name("regflow"))
    for command in (["check"], ["diagram", "registration"], ["paths", "registration"]):
        done = subprocess.run([regflow, *command, "--registry", "nosuch:steps"], capture_output=True,
                              text=True, cwd=tmp_path, timeout=120, check=False)
        assert (done.returncode, done.stdout) == (2, ""), done.stderr
        assert len(done.stderr.splitlines()) == 1, done.stderr
        assert done.stderr.startswith(("regflow: registry_invalid: --registry nosuch:steps: ",
                                       "regflow: scenario_invalid: --registry nosuch:steps: "))
        assert "Traceback" not in done.stderr
