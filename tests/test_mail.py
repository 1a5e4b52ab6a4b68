"""Mail composition from templates, and the memory and outbox-folder mailers."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import jinja2
import pytest

from regflow.adapters.mailers import MemoryMailer, OutboxDirMailer
from regflow.ground.clock import ManualClock
from regflow.mail.composer import MailComposer

TO = "taro@example.jp"
CODE = "11693810"

PARAMS: dict[str, dict[str, Any]] = {
    "registration_code": {"code": CODE, "email": TO, "minutes": 30, "product": "regflow"},
    "registration_existing": {"email": TO, "product": "regflow"},
    "sign_in_code": {"code": CODE, "email": TO, "minutes": 10, "product": "regflow"},
    "password_reset_code": {"code": CODE, "email": TO, "minutes": 30, "product": "regflow"},
}

SUBJECTS = {
    ("registration_code", "ja"): "regflow アカウント確認コード",
    ("registration_code", "en"): "regflow account verification code",
    ("registration_existing", "ja"): "regflow このメールアドレスは登録済みです",
    ("registration_existing", "en"): "regflow: this email address is already registered",
    ("sign_in_code", "ja"): "regflow サインイン確認コード",
    ("sign_in_code", "en"): "regflow sign-in verification code",
    ("password_reset_code", "ja"): "regflow パスワード再設定コード",
    ("password_reset_code", "en"): "regflow password reset code",
}


def parse(message: EmailMessage | bytes) -> EmailMessage:
    """The message as a receiver sees it: serialised to bytes and parsed back."""
    raw = message if isinstance(message, bytes) else message.as_bytes()
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def text_of(message: EmailMessage, subtype: str) -> str:
    """The decoded body part of that subtype."""
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None
    assert part.get_content_type() == f"text/{subtype}"
    content = part.get_content()
    assert isinstance(content, str)
    return content


@pytest.fixture
def composer() -> MailComposer:
    """A composer over the packaged templates only."""
    return MailComposer()


@pytest.mark.parametrize(("template", "lang"), sorted(SUBJECTS))
def test_every_template_composes_in_both_languages(
    composer: MailComposer, template: str, lang: str
) -> None:
    """Each packaged mail renders in ja and en, survives a round trip, and has both parts."""
    message = composer.compose(template, lang, TO, PARAMS[template])
    raw = message.as_bytes()
    header_block = raw.split(b"\n\n", 1)[0]
    assert header_block.isascii()  # the Japanese subject travels as encoded words
    parsed = parse(message)
    assert parsed["Subject"] == SUBJECTS[(template, lang)]
    assert parsed["To"] == TO
    assert parsed["From"] == "regflow <no-reply@regflow.invalid>"
    assert parsed["Content-Language"] == lang
    assert parsed.get_content_type() == "multipart/alternative"
    plain, html = text_of(parsed, "plain"), text_of(parsed, "html")
    assert TO in plain
    assert f'<html lang="{lang}">' in html
    if "code" in PARAMS[template]:
        assert CODE in plain
        assert "monospace; font-size:32px; font-weight:bold; letter-spacing:6px; " in html
        assert f">{CODE}</span>" in html
    assert "{{" not in plain + html
    assert "\n" not in parsed["Subject"]


def test_japanese_registration_code_reads_like_the_reference_mail(composer: MailComposer) -> None:
    """The Japanese code mail carries the reference wording, the code and the validity."""
    parsed = parse(composer.compose("registration_code", "ja", TO, PARAMS["registration_code"]))
    plain = text_of(parsed, "plain")
    assert (
        "アカウントの検証に次のコードを使用してください。コードが使用できるのは 30 分間のみです。"
        in plain
    )
    assert f"アカウント確認コード: {CODE}" in plain
    assert "コードを要求していない場合は、このメールは無視できます。" in plain


def test_existing_address_notice_says_what_to_do(composer: MailComposer) -> None:
    """The conceal notice says the address is registered, offers sign-in and reset, and no code."""
    params = PARAMS["registration_existing"]
    parsed = parse(composer.compose("registration_existing", "ja", TO, params))
    plain = text_of(parsed, "plain")
    assert "すでにアカウントとして登録されている" in plain
    assert "サインイン" in plain
    assert "パスワードを忘れた方はこちら" in plain
    assert "このメールは無視できます" in plain


def test_date_comes_from_params_only(composer: MailComposer) -> None:
    """A ``date`` param becomes the Date header; without one there is no Date at all."""
    params = PARAMS["sign_in_code"]
    at = datetime(2026, 2, 2, 9, 30, tzinfo=UTC)
    dated = parse(composer.compose("sign_in_code", "ja", TO, {**params, "date": at}))
    assert dated["Date"].datetime == at
    assert parse(composer.compose("sign_in_code", "ja", TO, params))["Date"] is None


def test_naive_date_is_refused(composer: MailComposer) -> None:
    """A naive datetime is a bug in the caller, not something to guess about."""
    params = {**PARAMS["sign_in_code"], "date": datetime(2026, 2, 2, 9, 30)}
    with pytest.raises(ValueError, match="timezone-aware"):
        composer.compose("sign_in_code", "ja", TO, params)


def test_message_id_given_or_generated(composer: MailComposer) -> None:
    """The given Message-ID is used; otherwise a fresh one under regflow.invalid."""
    params = PARAMS["registration_existing"]
    given = composer.compose(
        "registration_existing", "en", TO, params, message_id="<m1@example.jp>"
    )
    assert parse(given)["Message-ID"] == "<m1@example.jp>"
    first = composer.compose("registration_existing", "en", TO, params)["Message-ID"]
    second = composer.compose("registration_existing", "en", TO, params)["Message-ID"]
    assert first != second
    assert first.endswith("@regflow.invalid>")


def test_custom_sender(composer: MailComposer) -> None:
    """The sender given to the composer is the From of every mail, Japanese name included."""
    sender = "社労法務システム <no-reply@example.jp>"
    message = MailComposer(sender=sender).compose(
        "registration_code", "ja", TO, PARAMS["registration_code"]
    )
    assert parse(message)["From"] == sender


def test_unknown_language_falls_back_to_japanese(composer: MailComposer) -> None:
    """A language without a folder gets the Japanese mail; en-US gets the English one."""
    params = PARAMS["registration_code"]
    assert parse(composer.compose("registration_code", "fr", TO, params))["Subject"] == SUBJECTS[
        ("registration_code", "ja")
    ]
    assert parse(composer.compose("registration_code", "en-US", TO, params))["Subject"] == SUBJECTS[
        ("registration_code", "en")
    ]


def test_unknown_template_is_an_error(composer: MailComposer) -> None:
    """A mail that exists in no language raises TemplateNotFound."""
    with pytest.raises(jinja2.TemplateNotFound):
        composer.compose("no_such_mail", "ja", TO, {})


def test_missing_parameter_is_an_error(composer: MailComposer) -> None:
    """A parameter the template needs cannot silently render as blank."""
    with pytest.raises(jinja2.UndefinedError):
        composer.compose("registration_code", "ja", TO, {"email": TO, "product": "regflow"})


def test_html_escapes_parameters_but_text_does_not(composer: MailComposer) -> None:
    """Parameters are escaped in the HTML part only."""
    params = {**PARAMS["registration_existing"], "product": "A&B <Cloud>"}
    parsed = parse(composer.compose("registration_existing", "en", TO, params))
    assert "A&B <Cloud>" in text_of(parsed, "plain")
    html = text_of(parsed, "html")
    assert "A&amp;B &lt;Cloud&gt;" in html
    assert "<Cloud>" not in html


def test_subject_is_one_stripped_line(composer: MailComposer) -> None:
    """Line breaks in parameters cannot break the Subject header."""
    params = {**PARAMS["password_reset_code"], "product": "\r\n reg\nflow"}
    parsed = parse(composer.compose("password_reset_code", "en", TO, params))
    assert parsed["Subject"] == "reg flow password reset code"
    params = {**PARAMS["password_reset_code"], "product": "社労\u3000法務"}
    parsed = parse(composer.compose("password_reset_code", "ja", TO, params))
    assert parsed["Subject"] == "社労\u3000法務 パスワード再設定コード"  # inner spacing kept


def test_user_folder_overrides_a_packaged_template(tmp_path: Path) -> None:
    """A file in a user folder replaces the packaged one at the same path; the rest stays."""
    folder = tmp_path / "mail" / "registration_code" / "ja"
    folder.mkdir(parents=True)
    subject = "【{{ product }}】確認コード {{ code }}\n"
    (folder / "subject.txt.j2").write_text(subject, encoding="utf-8")
    composer = MailComposer(template_dirs=[tmp_path])
    parsed = parse(composer.compose("registration_code", "ja", TO, PARAMS["registration_code"]))
    assert parsed["Subject"] == f"【regflow】確認コード {CODE}"
    assert "コードを要求していない場合は" in text_of(parsed, "plain")  # packaged body still used


def test_memory_mailer_collects_in_order(composer: MailComposer) -> None:
    """MemoryMailer keeps every message sent, in order."""
    mailer = MemoryMailer()
    first = composer.compose("registration_code", "ja", TO, PARAMS["registration_code"])
    second = composer.compose("sign_in_code", "en", TO, PARAMS["sign_in_code"])
    mailer.send(first)
    mailer.send(second)
    assert mailer.messages == [first, second]


def test_outbox_dir_mailer_writes_sorted_parsable_files(
    composer: MailComposer, tmp_path: Path
) -> None:
    """Each message becomes a .eml file that parses back; names sort by sending; no temp left."""
    directory = tmp_path / "nested" / "outbox"
    clock = ManualClock(datetime(2026, 2, 2, 0, 0, tzinfo=UTC))
    mailer = OutboxDirMailer(directory, clock=clock)
    assert directory.is_dir()
    assert mailer.directory == directory
    sent = []
    for index, template in enumerate(["registration_code", "registration_existing"] * 3):
        message = composer.compose(template, "ja", TO, PARAMS[template])
        mailer.send(message)
        sent.append(message["Message-ID"])
        if index % 2:
            clock.advance(1)  # half of the mails share a clock tick with the previous one
    files = mailer.files()
    assert len(files) == len(sent)
    assert [p.name for p in files] == sorted(p.name for p in directory.iterdir())
    assert {p.name for p in directory.iterdir()} == {p.name for p in files}  # no temp files
    assert files[0].name.startswith("20260202T000000.000000Z-")
    parsed = [parse(p.read_bytes()) for p in files]
    assert [m["Message-ID"] for m in parsed] == sent
    assert parsed[0]["Subject"] == SUBJECTS[("registration_code", "ja")]
    assert CODE in text_of(parsed[0], "plain")


def test_outbox_dir_mailer_never_overwrites_the_same_message(tmp_path: Path) -> None:
    """Sending one message twice in the same instant keeps two files."""
    mailer = OutboxDirMailer(tmp_path, clock=ManualClock())
    message = EmailMessage()
    message["Message-ID"] = "<same/../id@example.jp>"
    message.set_content("hello")
    mailer.send(message)
    mailer.send(message)
    names = [p.name for p in mailer.files()]
    assert len(names) == 2
    assert all("/" not in name and ".." not in name for name in names)
