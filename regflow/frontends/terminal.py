"""A terminal front end that renders any flow's screen model as prompts and a menu.

It knows no flow and no state by name: it shows a snapshot's title, text and messages, asks for
its fields, offers its actions and sends the chosen event through the engine, until the flow is
no longer active. An active screen without actions waits on a timer: it shows when the timer
falls due (local time) and checks again when the person presses Enter, or every ``poll`` seconds
when nobody is there to press it.

The flow token comes with the snapshot that started the flow (and with every later one, a
hand-over's being the new flow's), so each step sends the snapshot it answers; resuming a flow
by its id needs that token again.
"""

from __future__ import annotations

import email
import email.policy
import getpass
import sys
import time
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Protocol, TextIO, runtime_checkable

from regflow.engine import Engine
from regflow.ground.catalog import Catalog, pick_language
from regflow.ground.clock import shown_minute
from regflow.ground.exceptions import (
    EventNotAllowed,
    FlowGone,
    FlowNotFound,
    InvalidContext,
    RateLimited,
    RegflowError,
)
from regflow.ground.screens import Action, Field, Message, Snapshot

Prompt = Callable[[str], str]

# The few words of the terminal itself, (Japanese, English); screens bring their own texts.
CHROME: Mapping[str, tuple[str, str]] = {
    "choose": ("選択してください", "Choose an action"),
    "choice_hint": ("番号を入力（Enter: {default}、q: 中断）", "Enter a number (Enter: {default}, q: quit)"),
    "choice_hint_quit": ("番号を入力（q: 中断）", "Enter a number (q: quit)"),
    "invalid_choice": ("1～{count} の番号を入力してください。", "Enter a number from 1 to {count}."),
    "yes_no": ("y: はい / n: いいえ", "y: yes / n: no"),
    "invalid_yes_no": ("y か n を入力してください。", "Enter y or n."),
    "kept": ("（入力済みのパスワードを保持しています。Enter でそのまま使います）",
             "(the password you typed is kept: press Enter to use it again)"),
    "error": ("エラー", "Error"),
    "warning": ("注意", "Warning"),
    "info": ("お知らせ", "Note"),
    "waiting": ("{time}（{zone}）以降に自動で次へ進みます。",
                "This continues by itself from {time} ({zone})."),
    "wait_prompt": ("Enter: 状況を再確認 / q: 中断 > ", "Enter: check again / q: quit > "),
    "still_waiting": ("まだ処理中です。{time} 以降にもう一度確認してください。",
                     "Still in progress. Check again from {time}."),
    "polling": ("{seconds} 秒ごとに状況を確認します…", "Checking every {seconds} seconds…"),
    "nothing_to_do": ("この画面で行える操作はありません。", "There is nothing to do on this screen."),
    "stopped": ("中断しました（フロー ID: {id}）。", "Stopped (flow id: {id})."),
    "resume": ("続きから再開するには: {command}", "To continue later: {command}"),
    "rate_limited": ("試行の回数が上限に達しました。{seconds} 秒後にもう一度お試しください。",
                     "Too many attempts. Try again in {seconds} s."),
    "mail_file": ("メールを書き出しました: {path}", "Mail written: {path}"),
    "mail_sent": ("メールを送信しました:", "Mail sent:"),
    "mail_head": ("  宛先: {to} / 件名: {subject}", "  To: {to} / Subject: {subject}"),
    "not_allowed": ("この操作は現在行えません（{event}）。画面を更新します。",
                   "That cannot be done now ({event}). Showing the current screen."),
    "gone": ("この手続きはすでに終了しています（{status}）。", "This flow has already ended ({status})."),
    "not_found": ("手続きが見つかりません（{id}）。", "No flow with id {id}."),
    "cannot_start": ("手続きを開始できません: {reason}", "Cannot start: {reason}"),
    "ended": ("手続きは終了しました（{status}）。", "The flow has ended ({status})."),
}
YES, NO = frozenset({"y", "yes", "はい"}), frozenset({"n", "no", "いいえ"})


@runtime_checkable
class _OutboxFolder(Protocol):
    """A mailer that writes ``.eml`` files (``OutboxDirMailer``)."""

    directory: Path

    def files(self) -> list[Path]: ...


@runtime_checkable
class _MessageList(Protocol):
    """A mailer that keeps the messages it sends (``MemoryMailer``)."""

    messages: list[EmailMessage]


class TerminalFrontEnd:
    """Drives flows of ``engine`` in a terminal; input and output are injectable."""

    def __init__(
        self,
        engine: Engine,
        *,
        lang: str | None = "ja",
        input_fn: Prompt = input,
        secret_fn: Prompt = getpass.getpass,
        output: TextIO | None = None,
        poll: float | None = None,
        sleep_fn: Callable[[float], None] = time.sleep,
        timezone: str = "Asia/Tokyo",
        resume_command: str | None = None,
    ) -> None:
        self.engine = engine
        self.lang = pick_language(lang)
        self.input_fn = input_fn
        self.secret_fn = secret_fn
        self.output = output if output is not None else sys.stdout
        self.poll = poll
        self.sleep_fn = sleep_fn
        self.timezone = timezone
        # e.g. "regflow run registration --resume {id} --flow-token={token}": shown when the
        # person stops early ({token} is the flow token, the secret resuming needs).
        self.resume_command = resume_command
        self._chrome = {k: v[1 if self.lang == "en" else 0] for k, v in CHROME.items()}

    def run(self, flow: str, context: Mapping[str, Any]) -> Snapshot | None:
        """Start ``flow`` and drive it; the last snapshot, or None when it could not start."""
        mark = self._mail_mark()
        try:
            snapshot = self.engine.start(flow, context, lang=self.lang)
        except (InvalidContext, FlowNotFound) as exc:
            self._say("cannot_start", reason=self._reason(exc))
            return None
        self._report_mail(mark)
        return self.drive(snapshot)

    def resume(self, flow_id: str, token: str | None = None) -> Snapshot | None:
        """Continue a flow started earlier, given its id and flow token; None when there is no
        such flow (or the token is not its token: the engine tells them apart to nobody)."""
        try:
            snapshot = self.engine.get(flow_id, token=token, lang=self.lang)
        except FlowNotFound:
            self._say("not_found", id=flow_id)
            return None
        return self.drive(snapshot)

    def drive(self, snapshot: Snapshot) -> Snapshot:
        """Render and act until the flow is no longer active or the person stops."""
        try:
            while snapshot.status == "active":
                self._render(snapshot)
                act = self._act if snapshot.screen.actions else self._wait
                following = act(snapshot)
                if following is None:
                    return self._stop(snapshot)
                snapshot = following
        except (EOFError, KeyboardInterrupt):
            self._write("")
            return self._stop(snapshot)
        self._render(snapshot)
        self._say("ended", status=snapshot.status)
        return snapshot

    def _render(self, snapshot: Snapshot) -> None:
        screen = snapshot.screen
        self._write("")
        self._write(f"━━ {screen.title} ━━")
        if screen.text:
            self._write(screen.text)
        names = {f.name for f in screen.fields}
        for message in screen.messages:
            if message.field not in names:
                self._write(self._message_line(message))

    def _act(self, snapshot: Snapshot) -> Snapshot | None:
        screen = snapshot.screen
        data: dict[str, Any] = {}
        for field in screen.fields:
            for message in screen.messages:
                if message.field == field.name:
                    self._write(self._message_line(message))
            data[field.name] = self._ask(field)
        action = self._choose(screen.actions)
        if action is None:
            return None
        mark = self._mail_mark()
        try:
            following = self.engine.send(snapshot, action.event, data, lang=self.lang)
        except EventNotAllowed as exc:
            self._say("not_allowed", event=exc.event)
            return self.engine.get(snapshot, lang=self.lang)
        except FlowGone as exc:
            self._say("gone", status=exc.status)
            return self.engine.get(snapshot, lang=self.lang)
        except RateLimited as exc:
            self._say("rate_limited", seconds=exc.retry_after)
            return self.engine.get(snapshot, lang=self.lang)
        self._report_mail(mark)
        return following

    def _ask(self, field: Field) -> Any:
        default = field.value if field.value not in (None, "") else None
        if field.type == "boolean":
            return self._ask_yes_no(field, default)
        shown = f" [{default}]" if default is not None and field.type != "password" else ""
        kept = self._chrome["kept"] if field.kept else ""
        prompt = f"{field.label}{shown}{kept}: "
        if field.type == "password":
            return self.secret_fn(prompt)  # kept as typed: spaces may be part of a password
        answer = self.input_fn(prompt).strip()
        return default if not answer and default is not None else answer

    def _ask_yes_no(self, field: Field, default: Any) -> bool:
        shown = "" if default is None else (" [y]" if default else " [n]")
        while True:
            answer = _normal(self.input_fn(f"{field.label} ({self._chrome['yes_no']}){shown}: "))
            if not answer and default is not None:
                return bool(default)
            if answer in YES or answer in NO:
                return answer in YES
            self._say("invalid_yes_no")

    def _choose(self, actions: Sequence[Action]) -> Action | None:
        primary = next((i for i, a in enumerate(actions) if a.primary), None)
        self._write(f"{self._chrome['choose']}:")
        for number, action in enumerate(actions, start=1):
            self._write(f"  {number}) {action.label}{' *' if number - 1 == primary else ''}")
        hint = (self._chrome["choice_hint_quit"] if primary is None else
                self._chrome["choice_hint"].format(default=actions[primary].label))
        while True:
            answer = _normal(self.input_fn(f"{hint} > "))
            if not answer and primary is not None:
                return actions[primary]
            if answer == "q":
                return None
            if answer.isdecimal() and 1 <= int(answer) <= len(actions):
                return actions[int(answer) - 1]
            self._say("invalid_choice", count=len(actions))

    def _wait(self, snapshot: Snapshot) -> Snapshot | None:
        """A screen without actions: wait for its next timer, by hand or by polling."""
        if not snapshot.timers:
            self._say("nothing_to_do")
            return None
        due = self._local_time(min(t.at for t in snapshot.timers))
        self._say("waiting", time=due, zone=self.timezone)
        if self.poll is not None:
            self._say("polling", seconds=f"{self.poll:g}")
        while True:
            if self.poll is None:
                if _normal(self.input_fn(self._chrome["wait_prompt"])) == "q":
                    return None
            else:
                self.sleep_fn(self.poll)
            current = self.engine.get(snapshot, lang=self.lang)
            if (current.state, current.status, current.screen, current.timers) != (
                    snapshot.state, snapshot.status, snapshot.screen, snapshot.timers):
                return current
            if self.poll is None:
                self._say("still_waiting", time=due)

    def _stop(self, snapshot: Snapshot) -> Snapshot:
        self._say("stopped", id=snapshot.id)
        if self.resume_command:
            self._say("resume", command=self.resume_command.format(
                id=snapshot.id, token=snapshot.flow_token or ""))
        return snapshot

    def _mail_mark(self) -> int | frozenset[Path]:
        """What the mailer holds now, to tell afterwards what a step sent."""
        mailer = self.engine.mailer
        if isinstance(mailer, _OutboxFolder):
            return frozenset(mailer.files())
        if isinstance(mailer, _MessageList):
            return len(mailer.messages)
        return 0

    def _report_mail(self, mark: int | frozenset[Path]) -> None:
        """Show the mail a step sent, and where it was written, so the person can read its code."""
        mailer = self.engine.mailer
        message: email.message.Message
        if isinstance(mailer, _OutboxFolder) and isinstance(mark, frozenset):
            written = [path for path in mailer.files() if path not in mark]
            if not written:
                return
            self._say("mail_file", path=written[-1].resolve())
            message = email.message_from_bytes(written[-1].read_bytes(), policy=email.policy.default)
        elif isinstance(mailer, _MessageList) and isinstance(mark, int) and len(mailer.messages) > mark:
            self._say("mail_sent")
            message = mailer.messages[-1]
        else:
            return
        self._say("mail_head", to=message.get("To", ""), subject=message.get("Subject", ""))
        body = message.get_body(preferencelist=("plain",)) if isinstance(message, EmailMessage) else None
        if isinstance(body, EmailMessage):
            for line in str(body.get_content()).splitlines():
                self._write(f"  | {line}")

    def _message_line(self, message: Message) -> str:
        mark = "✖" if message.level == "error" else "•"
        label = self._chrome.get(message.level, message.level)
        return f"  {mark} [{label}] {message.text}"

    def _reason(self, exc: RegflowError) -> str:
        """The catalog's text for the error's message id, else the error's own words."""
        return Catalog(self.lang).find(f"message.{exc.message_id}") or str(exc)

    def _local_time(self, instant: datetime) -> str:
        return shown_minute(instant, self.timezone)  # rounded up: never before the instant

    def _say(self, key: str, **params: Any) -> None:
        self._write(self._chrome[key].format(**params))

    def _write(self, text: str) -> None:
        print(text, file=self.output, flush=True)


def _normal(answer: str) -> str:
    """An answer with full-width digits and letters folded (``１`` is ``1``), trimmed, lowercased."""
    return unicodedata.normalize("NFKC", answer).strip().lower()
