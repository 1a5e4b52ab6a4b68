"""The terminal front end renders any screen model and drives flows through the engine."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory

import regflow
from regflow.frontends.terminal import TerminalFrontEnd

START = "2026-03-02 09:00:00"  # UTC; 18:00 in Asia/Tokyo, so the login is ready at 18:10
PASSWORD = "Kx7#mPq2wZ"
DETAILS = (PASSWORD, PASSWORD, "281234", "山田 太郎", "03-1234-5678")
CODE = re.compile(r"(?<![0-9])[0-9]{8}(?![0-9])")
Answer = str | Callable[[], str]


class Script:
    """Answers prompts in order, echoing them to ``output`` as a terminal would; then EOF."""

    def __init__(self, output: io.StringIO, *answers: Answer) -> None:
        self.output = output
        self.answers = list(answers)
        self.prompts: list[str] = []
        self.secret_prompts: list[str] = []

    def ask(self, prompt: str) -> str:
        """A visible prompt: the answer is echoed."""
        self.prompts.append(prompt)
        answer = self._next()
        self.output.write(f"{prompt}{answer}\n")
        return answer

    def ask_secret(self, prompt: str) -> str:
        """A hidden prompt: the answer is not echoed."""
        self.secret_prompts.append(prompt)
        answer = self._next()
        self.output.write(f"{prompt}\n")
        return answer

    def _next(self) -> str:
        if not self.answers:
            raise EOFError
        answer = self.answers.pop(0)
        return answer() if callable(answer) else answer


@pytest.fixture
def frozen() -> Iterator[FrozenDateTimeFactory]:
    """Time frozen at START."""
    with freeze_time(START, tz_offset=0) as factory:
        yield factory


@pytest.fixture
def engine(frozen: FrozenDateTimeFactory) -> regflow.Engine:
    """A memory engine with the demo contract; mail kept in memory."""
    del frozen  # the engine's clock reads the frozen time
    engine = regflow.Engine.from_url("memory://", mail="memory", hasher="fast")
    engine.contracts.add(customer_id="281234", phone="03-1234-5678", licenses=3,
                         accounts=["abcd8-01", "abcd8-02", "abcd8-03"])
    return engine


def code_of(engine: regflow.Engine) -> Callable[[], str]:
    """An answer that reads the code of the newest mail when its prompt comes."""
    def read() -> str:
        mailer: Any = engine.mailer
        body = mailer.messages[-1].get_body(("plain",)).get_content()
        return str(CODE.findall(body)[0])
    return read


def drive(engine: regflow.Engine, *answers: Answer, lang: str = "ja",
          **options: Any) -> tuple[regflow.Snapshot | None, str, Script]:
    """Run a registration for abcd8-01 with scripted answers: (last snapshot, transcript, script)."""
    output = io.StringIO()
    script = Script(output, *answers)
    front = TerminalFrontEnd(engine, lang=lang, input_fn=script.ask, secret_fn=script.ask_secret,
                             output=output, **options)
    snapshot = front.run("registration", {"account": "abcd8-01"})
    return snapshot, output.getvalue(), script


def started(engine: regflow.Engine, monkeypatch: pytest.MonkeyPatch) -> list[regflow.Snapshot]:
    """The snapshots ``engine.start`` answers from now on, each with its flow token: what a test
    needs to act on the flow "elsewhere", as the same person in another window would."""
    answered: list[regflow.Snapshot] = []
    start = engine.start

    def spy(*args: Any, **kwargs: Any) -> regflow.Snapshot:
        snapshot = start(*args, **kwargs)
        answered.append(snapshot)
        return snapshot

    monkeypatch.setattr(engine, "start", spy)
    return answered


@pytest.mark.parametrize(("lang", "words"), [
    ("ja", ("選択してください", "メールを送信しました", "━━ 確認 ━━",
            "アカウントの設定をしています。10分ほどしたらメニュー右上からログインしてください",
            "18:10 以降にログインできます", "メールアドレス [taro@example.jp]: ",
            "アカウントと ASP ユーザーの紐づけが必要です", "サインインしました",
            "手続きは終了しました（completed）")),
    ("en", ("Choose an action", "Mail sent", "━━ Confirmation ━━", "in about 10 minutes",
            "you can sign in from 18:10", "E-mail address [taro@example.jp]: ",
            "linked to the ASP user", "Signed in", "The flow has ended (completed)")),
])
def test_whole_registration(engine: regflow.Engine, frozen: FrozenDateTimeFactory, lang: str,
                            words: tuple[str, ...]) -> None:
    """E-mail, code, details; the dialog's OK (Enter: its only button) goes on to sign-in, the
    address filled in (Enter keeps it, ten minutes later); the password and the link prompt's OK
    sign in (⑦, ⑧)."""
    def later() -> str:
        frozen.tick(600)
        return ""

    snapshot, out, script = drive(engine, "taro@example.jp", "", code_of(engine), "",
                                  *DETAILS, "", "", later, PASSWORD, "", "", lang=lang)
    assert snapshot is not None
    assert (snapshot.flow, snapshot.state, snapshot.status) == ("sign_in", "signed_in", "completed")
    for word in words:
        assert word in out
    assert len(script.secret_prompts) == 3  # both password fields, then the sign-in's
    assert PASSWORD not in out


def test_next_again_keeps_the_password(frozen: FrozenDateTimeFactory) -> None:
    """FAQ 12 in the terminal: the retries spent, the password prompts say it is kept; Enter
    (nothing typed) uses it and the registration completes."""
    del frozen

    class Flaky:
        failing = True

        def provision(self, login: Any, *, key: str) -> None:
            if self.failing:
                raise regflow.TransientError("directory unavailable")

    provisioner = Flaky()
    engine = regflow.Engine.from_url("memory://", mail="memory", hasher="fast",
                                     provisioner=provisioner)
    engine.contracts.add(customer_id="281234", phone="03-1234-5678", licenses=3,
                         accounts=["abcd8-01", "abcd8-02", "abcd8-03"])

    def recovered() -> str:
        provisioner.failing = False
        return ""

    snapshot, out, script = drive(engine, "taro@example.jp", "", code_of(engine), "",
                                  *DETAILS, "", recovered, "", "", "", "", "", "q")
    assert "問題が発生しました。もう一度「次へ」をクリックしてください。" in out
    kept = "（入力済みのパスワードを保持しています。Enter でそのまま使います）"
    assert script.secret_prompts[-2:] == [f"パスワード{kept}: ",
                                          f"パスワードを再入力してください{kept}: "]
    assert snapshot is not None
    assert snapshot.state == "provisioning"


def test_wrong_code_shows_the_error(engine: regflow.Engine) -> None:
    """A wrong code is marked as an error on the code screen; q stops with the flow id."""
    def wrong() -> str:
        return f"{(int(code_of(engine)()) + 1) % 10**8:08d}"

    snapshot, out, _ = drive(engine, "taro@example.jp", "", wrong, "", "", "q")
    assert snapshot is not None
    assert (snapshot.state, snapshot.status) == ("enter_code", "active")
    assert "✖ [エラー] コードが正しくありません" in out
    assert f"中断しました（フロー ID: {snapshot.id}）" in out


def test_field_errors_sit_next_to_their_field(engine: regflow.Engine) -> None:
    """An error with a field is printed just before that field's prompt, with its value kept."""
    _, out, script = drive(engine, "not-an-address", "", "", "q", lang="en")
    assert "  ✖ [Error] Enter a valid e-mail address.\nE-mail address [not-an-address]: " in out
    assert script.prompts[2] == "E-mail address [not-an-address]: "


def test_kept_values_are_defaults(engine: regflow.Engine) -> None:
    """After a contract mismatch the kept values are offered; Enter keeps them."""
    snapshot, out, script = drive(
        engine, "taro@example.jp", "", code_of(engine), "",
        PASSWORD, PASSWORD, "281234", "山田 太郎", "03-9999-9999", "",
        PASSWORD, PASSWORD, "", "", "03-1234-5678", "", "q")
    assert "入力された情報がご契約の内容と一致しません" in out
    assert "CustomerId [281234]: " in script.prompts
    assert snapshot is not None
    assert snapshot.state == "provisioning"


def test_unknown_account_is_a_clean_error(engine: regflow.Engine) -> None:
    """An account on no contract gives the catalog's message and no traceback."""
    output = io.StringIO()
    front = TerminalFrontEnd(engine, input_fn=lambda _: "", output=output)
    assert front.run("registration", {"account": "zzzz9-99"}) is None
    assert output.getvalue().strip() == (
        "手続きを開始できません: この ASP ユーザー（アカウント）はご契約に見つかりません。")


# A screen without actions waits for its timer: no built-in flow has one since the provisioning
# dialog got its OK (issue 12), so a flow of the user's own shows it.
WAITING_FLOW = {
    "name": "batch_job", "version": 1, "initial": "queued",
    "states": {
        "queued": {"after": [{"after": "10m", "event": "run"}], "on": {"run": "done"}},
        "done": {"final": True, "status": "completed"},
    },
    "texts": {"ja": {"screen.batch_job.queued.title": "処理待ち",
                     "screen.batch_job.done.title": "処理が終わりました"}},
}


def test_waiting_screen_can_be_left_and_resumed(engine: regflow.Engine,
                                                frozen: FrozenDateTimeFactory) -> None:
    """At a waiting screen q stops with a resume hint that carries the flow token (the flow's
    secret); later the flow resumes where it was, given its id and that token."""
    engine.flows.add(WAITING_FLOW)
    output = io.StringIO()
    script = Script(output, "", "q")
    front = TerminalFrontEnd(engine, input_fn=script.ask, output=output,
                             resume_command="regflow run batch_job --resume {id} --flow-token={token}")
    snapshot = front.run("batch_job", {})
    out = output.getvalue()
    assert snapshot is not None
    assert snapshot.state == "queued"
    assert snapshot.flow_token
    assert "18:10（Asia/Tokyo）以降に自動で次へ進みます。" in out
    assert "まだ処理中です。18:10 以降にもう一度確認してください。" in out
    assert (f"続きから再開するには: regflow run batch_job --resume {snapshot.id} "
            f"--flow-token={snapshot.flow_token}") in out
    frozen.tick(601)
    output = io.StringIO()
    resumed = TerminalFrontEnd(engine, output=output).resume(snapshot.id, snapshot.flow_token)
    assert resumed is not None
    assert resumed.status == "completed"
    assert "━━ 処理が終わりました ━━" in output.getvalue()


def test_polling_waits_without_input(engine: regflow.Engine, frozen: FrozenDateTimeFactory) -> None:
    """With ``poll`` the waiting screen checks again every interval until the timer fires."""
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        frozen.tick(seconds)

    engine.flows.add(WAITING_FLOW)
    output = io.StringIO()
    front = TerminalFrontEnd(engine, input_fn=Script(output).ask, output=output, poll=120,
                             sleep_fn=sleep)
    snapshot = front.run("batch_job", {})
    assert snapshot is not None
    assert snapshot.status == "completed"
    assert slept == [120] * 5
    assert "120 秒ごとに状況を確認します" in output.getvalue()


def test_event_refused_after_a_change_elsewhere(engine: regflow.Engine,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """When the flow moved meanwhile, the refused event is reported and the new screen shown."""
    flows = started(engine, monkeypatch)

    def back_elsewhere() -> str:
        engine.send(flows[0], "back")
        return "2"  # resend_code, which enter_email does not take

    snapshot, out, _ = drive(engine, "taro@example.jp", "", "", back_elsewhere, "", "q")
    assert "この操作は現在行えません（resend_code）" in out
    assert snapshot is not None
    assert snapshot.state == "enter_email"


def test_flow_ended_elsewhere(engine: regflow.Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """A flow cancelled meanwhile is reported as ended, without a traceback."""
    flows = started(engine, monkeypatch)

    def cancel_elsewhere() -> str:
        engine.send(flows[0], "cancel")
        return ""

    snapshot, out, _ = drive(engine, "taro@example.jp", cancel_elsewhere, lang="en")
    assert "This flow has already ended (cancelled)." in out
    assert snapshot is not None
    assert snapshot.status == "cancelled"
    assert "Traceback" not in out


def test_end_of_input_stops_cleanly(engine: regflow.Engine) -> None:
    """EOF at any prompt stops the front end and returns the flow as it is."""
    snapshot, out, _ = drive(engine)
    assert snapshot is not None
    assert snapshot.status == "active"
    assert out.rstrip().endswith(f"中断しました（フロー ID: {snapshot.id}）。")


def test_resume_of_unknown_flow(engine: regflow.Engine) -> None:
    """Resuming an unknown id says so and returns None."""
    output = io.StringIO()
    assert TerminalFrontEnd(engine, lang="en", output=output).resume("nope") is None
    assert output.getvalue() == "No flow with id nope.\n"


def test_resume_needs_the_flow_token(engine: regflow.Engine) -> None:
    """A flow's id alone, or with another flow's token, resumes nothing: the answer is the
    one for an unknown id (the id is not a secret; the token is)."""
    snapshot, _, _ = drive(engine, "taro@example.jp")
    other = engine.start("registration", {"account": "abcd8-02"})
    assert snapshot is not None
    for token in (None, "", other.flow_token, f"{snapshot.flow_token}x"):
        output = io.StringIO()
        assert TerminalFrontEnd(engine, lang="en", output=output).resume(snapshot.id, token) is None
        assert output.getvalue() == f"No flow with id {snapshot.id}.\n"
    output = io.StringIO()
    front = TerminalFrontEnd(engine, lang="en", input_fn=Script(output).ask, output=output)
    resumed = front.resume(snapshot.id, snapshot.flow_token)  # then end of input: it stops
    assert resumed is not None
    assert resumed.state == "enter_email"


def test_a_hand_over_goes_on_with_the_new_flows_token(engine: regflow.Engine) -> None:
    """create_account on the sign-in screen answers with a registration (and its own token):
    the terminal carries on with it, and its hint names the registration and its token."""
    output = io.StringIO()
    script = Script(output, "", "", "2", "taro@example.jp", "")
    front = TerminalFrontEnd(engine, lang="en", input_fn=script.ask, secret_fn=script.ask_secret,
                             output=output, resume_command="--resume {id} --flow-token={token}")
    snapshot = front.run("sign_in", {"account": "abcd8-01"})
    assert snapshot is not None
    assert (snapshot.flow, snapshot.state) == ("registration", "enter_code")
    assert f"--resume {snapshot.id} --flow-token={snapshot.flow_token}" in output.getvalue()
    assert engine.get(snapshot).state == "enter_code"


def test_code_mails_across_flows_are_limited(engine: regflow.Engine,
                                             frozen: FrozenDateTimeFactory) -> None:
    """The 6th code mail to one address within 15 minutes (engine Limits: 5 per 15 min) is
    refused with the time to wait, not a traceback; the person stays on the code screen."""
    def resend() -> str:
        frozen.tick(61)  # past the flow's own resend interval (60 s)
        return "2"  # resend_code

    per_resend = ("", resend)  # the code prompt left empty, then the action
    snapshot, out, _ = drive(engine, "taro@example.jp", "", *(per_resend * 5), "", "q",
                             lang="en")
    assert snapshot is not None
    assert snapshot.state == "enter_code"
    mailer: Any = engine.mailer
    assert len(mailer.messages) == 5
    waited = 4 * 61 + 61  # the first mail leaves the 15-minute window 900 s after it was sent
    assert f"Too many attempts. Try again in {900 - waited} s." in out
    assert "Traceback" not in out


def test_outbox_mail_path_is_printed(frozen: FrozenDateTimeFactory, tmp_path: Path) -> None:
    """With an outbox folder, the path of the newly written .eml file is printed."""
    engine = regflow.Engine.from_url("memory://", mail=f"outbox:{tmp_path}", hasher="fast")
    engine.contracts.add(customer_id="281234", phone="03-1234-5678", licenses=1,
                         accounts=["abcd8-01"])
    _, out, _ = drive(engine, "taro@example.jp", "")
    found = re.search(r"メールを書き出しました: (\S+\.eml)", out)
    assert found is not None
    assert Path(found.group(1)).is_file()
    assert Path(found.group(1)).parent == tmp_path.resolve()


SURVEY = {
    "name": "survey", "version": 1, "initial": "ask", "context": ["account"],
    "fields": {"agree": {"type": "boolean"}, "nickname": {"type": "text", "required": False}},
    "states": {
        "ask": {"screen": {"fields": ["agree", "nickname"], "actions": ["submit", "cancel"]},
                "on": {"submit": "pause", "cancel": "cancelled"}},
        "pause": {"after": [{"after": "5m", "event": "go"}], "on": {"go": "done"}},
        "done": {"final": True},
    },
}


def test_any_flow_renders(frozen: FrozenDateTimeFactory) -> None:
    """A flow the front end has never heard of runs: yes/no fields, a timer-only state."""
    library = regflow.FlowLibrary()
    library.add(SURVEY)
    engine = regflow.Engine.from_url("memory://", mail="memory", hasher="fast", flows=library)

    def later() -> str:
        frozen.tick(300)
        return ""

    output = io.StringIO()
    script = Script(output, "maybe", "y", "Hana", "", "", later)
    front = TerminalFrontEnd(engine, lang="en", input_fn=script.ask, output=output)
    snapshot = front.run("survey", {"account": "anything"})
    assert snapshot is not None
    assert snapshot.status == "completed"
    out = output.getvalue()
    assert "Enter y or n." in out
    assert "This continues by itself from 18:05 (Asia/Tokyo)." in out
    assert "Still in progress. Check again from 18:05." in out
