"""The ``regflow`` command line, on real SQLite files and outbox folders."""

from __future__ import annotations

import email
import email.policy
import re
import shutil
import subprocess
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory

import regflow
from regflow.cli import main
from regflow.cli.terminal import sender_of
from regflow.ground.records import Customer

START = "2026-03-02 09:00:00"  # UTC; 18:00 in Asia/Tokyo
PASSWORD = "Kx7#mPq2wZ"
GOOD_CSV = """customer_id,phone,licenses,accounts
281234,03-1234-5678,3,abcd8-01 abcd8-02 abcd8-03
285555,06-1111-2222,1,efgh9-01
"""


@pytest.fixture
def places(tmp_path: Path) -> list[str]:
    """``--db`` and ``--mail`` options for a SQLite file and an outbox folder in tmp_path."""
    return ["--db", f"sqlite:///{tmp_path / 'regflow.db'}", "--mail", f"outbox:{tmp_path / 'outbox'}",
            "--hasher", "fast"]


@pytest.fixture
def frozen() -> Iterator[FrozenDateTimeFactory]:
    """Time frozen at START."""
    with freeze_time(START, tz_offset=0) as factory:
        yield factory


def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
    """Run the command line in-process."""
    return CliRunner().invoke(main, list(args), input=input, env=env, catch_exceptions=False)


def customer(tmp_path: Path, customer_id: str) -> Customer | None:
    """The contract stored in tmp_path's database, or None."""
    engine = regflow.Engine.from_url(f"sqlite:///{tmp_path / 'regflow.db'}", "memory", hasher="fast")
    try:
        return engine.contracts.find(customer_id)
    finally:
        engine.store.close()


def write(path: Path, text: str) -> str:
    """Write a file and give its name as an argument."""
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_import_good_file(tmp_path: Path, places: list[str]) -> None:
    """Every row of a good file becomes a contract."""
    result = invoke("contracts", "import", write(tmp_path / "c.csv", GOOD_CSV), *places)
    assert result.exit_code == 0, result.output
    assert "Imported 2 contract(s)" in result.stdout
    found = customer(tmp_path, "285555")
    assert found is not None
    assert (found.licenses, found.accounts) == (1, ["efgh9-01"])


def test_import_bad_file_imports_nothing(tmp_path: Path, places: list[str]) -> None:
    """Each problem is reported with its line number; exit code 2; nothing imported."""
    csv = write(tmp_path / "c.csv", GOOD_CSV.splitlines()[0] + "\n" + "\n".join([
        "281234,03-1234-5678,3,abcd8-01",
        "12345,03-1234-5678,1,x-01",
        "285555,no phone,1,y-01",
        "286666,06-1111-2222,2,abcd8-01",
    ]) + "\n")
    result = invoke("contracts", "import", csv, *places)
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"{csv}:3: customer_id:")
    assert lines[1].startswith(f"{csv}:4: phone:")
    assert lines[2] == f"{csv}:5: accounts: 'abcd8-01' is also on line 2"
    assert lines[3] == f"regflow: contract_invalid: 3 problem(s) in {csv}; nothing was imported"
    assert customer(tmp_path, "281234") is None


def test_import_unreadable_rows(tmp_path: Path, places: list[str]) -> None:
    """A licence count that is no number is reported by line; so is a non-UTF-8 file."""
    csv = write(tmp_path / "c.csv", GOOD_CSV.replace(",1,efgh9-01", ",one,efgh9-01"))
    result = invoke("contracts", "import", csv, *places)
    assert result.exit_code == 2
    assert f"{csv}:3: licenses: 'one'" in result.stderr
    sjis = tmp_path / "sjis.csv"
    sjis.write_bytes(GOOD_CSV.replace("efgh9-01", "営業-01").encode("shift_jis"))
    result = invoke("contracts", "import", str(sjis), *places)
    assert result.exit_code == 2
    assert "not UTF-8" in result.stderr


def test_import_conflicting_with_the_store(tmp_path: Path, places: list[str]) -> None:
    """A seat that belongs to another stored customer refuses the whole file."""
    assert invoke("contracts", "import", write(tmp_path / "a.csv", GOOD_CSV), *places).exit_code == 0
    csv = write(tmp_path / "b.csv", "customer_id,phone,licenses,accounts\n"
                "287777,03-0000-0000,1,zz-01\n289999,03-0000-0001,1,efgh9-01\n")
    result = invoke("contracts", "import", csv, *places)
    assert result.exit_code == 2
    assert "already belongs to 285555" in result.stderr
    assert customer(tmp_path, "287777") is None


def mail_code(path: Path) -> str:
    """The 8-digit code of an .eml file."""
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    body = message.get_body(("plain",))
    assert body is not None
    found = re.findall(r"(?<![0-9])[0-9]{8}(?![0-9])", body.get_content())  # type: ignore[attr-defined]
    assert len(found) == 1
    return str(found[0])


def test_run_end_to_end(tmp_path: Path, places: list[str], frozen: FrozenDateTimeFactory) -> None:
    """Start, stop at the code, read it from the .eml, resume (with the flow token the hint
    printed: by option, then from the environment), sweep the timer, see it ready."""
    assert invoke("contracts", "import", write(tmp_path / "c.csv", GOOD_CSV), *places).exit_code == 0
    first = invoke("run", "registration", "--account", "abcd8-01", "--lang", "en", *places,
                   input="taro@example.jp\n\n")
    assert first.exit_code == 0, first.output
    mail = re.search(r"Mail written: (\S+\.eml)", first.stdout)
    flow = re.search(r"Stopped \(flow id: ([\w-]+)\)", first.stdout)
    assert mail is not None
    assert flow is not None
    assert Path(mail.group(1)).parent == (tmp_path / "outbox").resolve()
    flow_id = flow.group(1)
    assert f"--resume {flow_id} --lang en --db sqlite:///{tmp_path}" in first.stdout
    hint = re.search(r"To continue later: .* --flow-token=([\w-]+)$", first.stdout, re.MULTILINE)
    assert hint is not None
    token = hint.group(1)
    assert len(token) >= 22  # at least 128 bits, URL-safe base64

    no_token = invoke("run", "registration", "--resume", flow_id, "--lang", "en", *places)
    assert no_token.exit_code == 2
    assert no_token.stderr.startswith("regflow: flow_token_required: ")
    wrong = invoke("run", "registration", "--resume", flow_id, f"--flow-token={token}x", *places)
    assert (wrong.exit_code, wrong.stderr) == (
        2, f"regflow: flow_not_found: no flow with id {flow_id!r}\n")

    details = "\n".join([mail_code(Path(mail.group(1))), "", PASSWORD, PASSWORD, "281234",
                         "山田 太郎", "03-1234-5678", "", "q"]) + "\n"
    second = invoke("run", "registration", "--resume", flow_id, "--flow-token", token,
                    "--lang", "en", *places, input=details)
    assert second.exit_code == 0, second.output
    assert "in about 10 minutes (you can sign in from 18:10)." in second.stdout  # the dialog (⑦)
    assert PASSWORD not in second.stdout

    frozen.tick(600)
    swept = invoke("sweep", *places)
    assert swept.stdout == "Applied due timers to 1 flow(s); delivered 0 mail(s).\n"
    last = invoke("run", "registration", "--resume", flow_id, "--lang", "en", *places,
                  env={"REGFLOW_FLOW_TOKEN": token})
    assert last.exit_code == 0
    assert "Your account is registered" in last.stdout
    assert "The flow has ended (completed)." in last.stdout


def test_run_unknown_account(places: list[str]) -> None:
    """An account on no contract: one line on stderr with the message id (in the language
    asked), nothing on stdout, exit code 2."""
    result = invoke("run", "registration", "--account", "zzzz9-99", "--lang", "ja", *places, input="")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == ("regflow: account_unknown: この ASP ユーザー（アカウント）はご契約に"
                             "見つかりません。（unknown account 'zzzz9-99'）\n")


def test_run_needs_account_or_resume(places: list[str]) -> None:
    """Exactly one of --account and --resume is needed."""
    assert invoke("run", "registration", *places).exit_code == 2
    assert invoke("run", "registration", "--account", "a", "--resume", "b", *places).exit_code == 2


def test_errors_are_one_line_with_their_id(places: list[str]) -> None:
    """RegflowError and bad URLs end in one stderr line with the message id, exit code 2."""
    result = invoke("run", "registration", "--resume", "no-such-flow", "--flow-token", "t",
                    *places)
    assert (result.exit_code, result.stderr) == (
        2, "regflow: flow_not_found: no flow with id 'no-such-flow'\n")
    result = invoke("sweep", "--db", "mysql://nowhere")
    assert result.exit_code == 2
    assert result.stderr.startswith("regflow: config_invalid: unsupported store URL")


def test_demo_seeds_once_and_runs(tmp_path: Path, places: list[str]) -> None:
    """The demo seeds customer 281234 (again without harm), prints it, and starts registering."""
    for _ in range(2):
        result = invoke("demo", "--terminal", "--keep", *places, input="")
        assert result.exit_code == 0, result.output
        assert "お客様番号 (CustomerId): 281234" in result.stdout
        assert f"{(tmp_path / 'outbox').resolve()} に .eml ファイルとして書き出します" in result.stdout
        assert "━━ アカウントの作成 ━━" in result.stdout
    found = customer(tmp_path, "281234")
    assert found is not None
    assert (found.phone, found.licenses, found.accounts) == (
        "03-1234-5678", 3, ["abcd8-01", "abcd8-02", "abcd8-03"])


def test_sweep_on_an_empty_store(places: list[str]) -> None:
    """Nothing due: zero and zero."""
    result = invoke("sweep", *places)
    assert result.exit_code == 0
    assert result.stdout == "Applied due timers to 0 flow(s); delivered 0 mail(s).\n"


def test_import_line_numbers_survive_blank_lines(tmp_path: Path) -> None:
    """A problem after a blank line is reported on its real line."""
    csv_file = tmp_path / "contracts.csv"
    csv_file.write_text("customer_id,phone,licenses,accounts\n\n281234,03-1234-5678,x,a-01\n",
                        encoding="utf-8")
    result = CliRunner().invoke(main, ["contracts", "import", str(csv_file),
                                       "--db", f"sqlite:///{tmp_path / 'r.db'}"])
    assert result.exit_code == 2
    assert f"{csv_file}:3: licenses" in result.output


# Issue 12, point 6: the product name and the sender, by option or environment, in every command
# that runs steps. The values are the guide's product name and addresses of our choosing.
PRODUCT = "次世代社労法務システム"
SENDER = "社労法務サポート <support@example.jp>"


@pytest.fixture
def no_identity_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither REGFLOW_PRODUCT nor REGFLOW_MAIL_FROM from the caller's environment."""
    monkeypatch.delenv("REGFLOW_PRODUCT", raising=False)
    monkeypatch.delenv("REGFLOW_MAIL_FROM", raising=False)


def only_mail(outbox: Path) -> EmailMessage:
    """The one .eml file in an outbox folder."""
    files = sorted(outbox.glob("*.eml"))
    assert len(files) == 1, files
    message = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


@pytest.mark.parametrize("by", ["options", "environment"])
@pytest.mark.usefixtures("no_identity_env")
def test_run_mails_in_the_products_name(tmp_path: Path, places: list[str], by: str) -> None:
    """`regflow run` with a product and a sender: the code mail comes from that sender and names
    the product in its subject and body."""
    assert invoke("contracts", "import", write(tmp_path / "c.csv", GOOD_CSV), *places).exit_code == 0
    extra, env = (["--product", PRODUCT, "--mail-from", SENDER], None) if by == "options" else (
        [], {"REGFLOW_PRODUCT": PRODUCT, "REGFLOW_MAIL_FROM": SENDER})
    result = invoke("run", "registration", "--account", "abcd8-01", *places, *extra,
                    input="taro@example.jp\n\n", env=env)
    assert result.exit_code == 0, result.output
    message = only_mail(tmp_path / "outbox")
    sender = message["From"].addresses
    assert [(a.display_name, a.addr_spec) for a in sender] == [
        ("社労法務サポート", "support@example.jp")]
    assert PRODUCT in message["Subject"]
    body = message.get_body(("plain",))
    assert body is not None
    assert PRODUCT in body.get_content()  # type: ignore[attr-defined]
    assert "regflow" not in message["Subject"]
    if by == "options":  # a resumed run needs them again: the hint passes them on
        hint = next(line for line in result.stdout.splitlines() if "--flow-token=" in line)
        assert f"--product {PRODUCT}" in hint.replace("'", "")
        assert "--mail-from" in hint


@pytest.mark.usefixtures("no_identity_env")
def test_product_alone_names_the_default_sender(tmp_path: Path, places: list[str]) -> None:
    """Without --mail-from, mail comes from the product's name on no-reply@regflow.invalid."""
    assert invoke("contracts", "import", write(tmp_path / "c.csv", GOOD_CSV), *places).exit_code == 0
    result = invoke("run", "registration", "--account", "abcd8-01", "--product", PRODUCT,
                    *places, input="taro@example.jp\n\n")
    assert result.exit_code == 0, result.output
    sender = only_mail(tmp_path / "outbox")["From"].addresses
    assert [(a.display_name, a.addr_spec) for a in sender] == [
        (PRODUCT, "no-reply@regflow.invalid")]


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch, no_identity_env: None) -> list[tuple[str, str]]:
    """The (product, sender) of every engine a command builds; serving returns at once."""
    import regflow.cli.base
    import regflow.web.server

    seen: list[tuple[str, str]] = []
    real = regflow.Engine.from_url

    def recording(*args: Any, **kwargs: Any) -> regflow.Engine:
        engine = real(*args, **kwargs)
        seen.append((engine.services.product, sender_of(engine)))
        return engine

    monkeypatch.setattr(regflow.Engine, "from_url", recording)
    monkeypatch.setattr(regflow.web.server, "serve", lambda engine, **options: None)
    return seen


def command_lines(tmp_path: Path) -> dict[str, list[str]]:
    """Each command that runs steps, on places in tmp_path; fast hashing."""
    db = f"sqlite:///{tmp_path / 'regflow.db'}"
    common = ["--db", db, "--mail", f"outbox:{tmp_path / 'outbox'}", "--hasher", "fast"]
    return {
        "serve": ["serve", *common],
        "demo": ["demo", *common],
        "demo --terminal": ["demo", "--terminal", *common],
        "worker": ["worker", "--once", *common],
        "sweep": ["sweep", *common],
        "run": ["run", "registration", "--resume", "nothing", "--flow-token", "t", *common],
    }


COMMANDS = ["serve", "demo", "demo --terminal", "worker", "sweep", "run"]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("by", ["options", "environment"])
def test_every_command_takes_product_and_sender(
        tmp_path: Path, built: list[tuple[str, str]], command: str, by: str) -> None:
    """serve, demo, worker, sweep and run build their engine with the product and sender given
    by --product/--mail-from or REGFLOW_PRODUCT/REGFLOW_MAIL_FROM."""
    args = command_lines(tmp_path)[command]
    if by == "options":
        result = invoke(*args, "--product", PRODUCT, "--mail-from", SENDER, input="")
    else:
        result = invoke(*args, input="",
                        env={"REGFLOW_PRODUCT": PRODUCT, "REGFLOW_MAIL_FROM": SENDER})
    assert "config_invalid" not in result.stderr, result.stderr
    assert built == [(PRODUCT, SENDER)]


@pytest.mark.parametrize("command", ["demo", "demo --terminal"])
def test_demo_banner_shows_product_and_sender(
        tmp_path: Path, built: list[tuple[str, str]], command: str) -> None:
    """The demo prints the product name and the From its mail comes from."""
    result = invoke(*command_lines(tmp_path)[command], "--product", PRODUCT, input="")
    assert f"製品名: {PRODUCT}\n" in result.stdout
    assert f"差出人 (From): {PRODUCT} <no-reply@regflow.invalid>\n" in result.stdout


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(("option", "value", "named"), [
    ("--product", "", "--product"),
    ("--product", "   ", "--product"),
    ("--product", "次世代\n社労", "--product"),
    ("--product", "x" * 101, "--product"),
    ("--mail-from", "no-reply", "--mail-from"),
    ("--mail-from", "a@example.jp, b@example.jp", "--mail-from"),
    ("--mail-from", "a@example.jp\r\nBcc: b@example.jp", "--mail-from"),
    ("REGFLOW_PRODUCT", "a\x07b", "REGFLOW_PRODUCT"),
    ("REGFLOW_MAIL_FROM", "nobody", "REGFLOW_MAIL_FROM"),
])
def test_bad_product_or_sender_is_config_invalid(
        tmp_path: Path, built: list[tuple[str, str]], command: str, option: str, value: str,
        named: str) -> None:
    """A product that is empty, too long or holds a control character, and a sender that is no
    single address: one line, config_invalid, exit code 2, no engine."""
    args = command_lines(tmp_path)[command]
    if option.startswith("--"):
        result = invoke(*args, option, value, input="")
    else:
        result = invoke(*args, input="", env={option: value})
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("regflow: config_invalid: ")
    assert named in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert built == []


def test_make_demo_shows_the_guides_product() -> None:
    """`make demo` (and `make demo-terminal`) run the demo as 次世代社労法務システム."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    root = Path(__file__).resolve().parent.parent
    for target in ("demo", "demo-terminal"):
        dry = subprocess.run(["make", "-n", "-C", str(root), target], capture_output=True,
                             text=True, check=True).stdout
        line = next(line for line in dry.replace("\\\n", " ").splitlines() if "regflow demo" in line)
        assert "--product 次世代社労法務システム" in line.replace("'", "")
