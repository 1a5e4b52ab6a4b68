"""Issue 12, points 2, 4 and 5, at the engine (every store): what the guide's screens say and do.

The expected texts are the seed's (../shared/seeds/000_3e68ff17a30de17d.txt) where it gives them:
the provisioning dialog of step ⑦, the password screen of "< 先に進まない場合 >", FAQ 12's "press
Next again", the link prompt of step ⑧ and the enforcement date of step ①. The HTML pages and the
browser are covered by tests/test_pages.py and tests/acceptance/.

Time is frozen at 2026-03-02 09:00:00 UTC (18:00 in Tokyo).
"""

from __future__ import annotations

import json
import random
import re
from datetime import timedelta
from pathlib import Path

import pytest
from flows import (
    PASSWORD,
    EngineFactory,
    action_events,
    details,
    field_errors,
    field_values,
    logins_of,
    mail_count,
    message_ids,
    register,
    stored_flow,
    submit_email,
    to_details,
)
from freezegun.api import FrozenDateTimeFactory
from test_registration import FlakyProvisioner

import regflow
from regflow.ground.catalog import Catalog
from regflow.ground.screens import Snapshot

TARO = "taro@example.jp"
HANA = "hana@example.jp"
SEED_DIALOG = "アカウントの設定をしています。10分ほどしたらメニュー右上からログインしてください"  # ⑦
SEED_LINK_PROMPT = ("アカウントと ASP ユーザーの紐づけが必要です。"
                    "このアカウントを現在使用している ASP ユーザーと紐づけますか？")  # ⑧
LOCALES = Path(__file__).parent.parent / "regflow" / "locales"
TEMPLATES = Path(__file__).parent.parent / "regflow" / "templates"


def _kept(snap: Snapshot) -> dict[str, tuple[bool, bool]]:
    """(required, kept) by field."""
    return {f.name: (f.required, f.kept) for f in snap.screen.fields}


def _spent(make_engine: EngineFactory, **options: object) -> tuple[regflow.Engine, FlakyProvisioner,
                                                                    Snapshot]:
    """An engine whose Provisioner fails until told otherwise, and a registration whose details
    were submitted once: the retries were spent (FAQ 12's message)."""
    provisioner = FlakyProvisioner(failures=None)
    engine = make_engine(provisioner=provisioner, rng=random.Random(3), **options)
    snap = to_details(engine, TARO)
    snap = engine.send(snap, "submit", details())
    assert message_ids(snap) == ["transient_error"]
    return engine, provisioner, snap


WITHOUT_PASSWORDS = {k: v for k, v in details().items() if not k.startswith("password")}


# ---- point 2: FAQ 12, press 次へ again --------------------------------------------------------

def test_after_spent_retries_the_password_is_kept_as_a_hash(make_engine: EngineFactory) -> None:
    """The screen marks both password fields kept and not required; the store has the hash (which
    verifies the password), never the password."""
    engine, _, snap = _spent(make_engine)
    assert _kept(snap) == {"password": (False, True), "password_confirm": (False, True),
                           "customer_id": (True, False), "display_name": (True, False),
                           "tel": (True, False)}
    assert [f.to_dict()["kept"] for f in snap.screen.fields] == [True, True, False, False, False]
    data = stored_flow(engine, snap.id).data
    assert PASSWORD not in json.dumps(data, ensure_ascii=False)
    kept = data["_kept"]
    assert kept["fields"]["password"] == kept["fields"]["password_confirm"]  # one hash for both
    assert engine.services.hasher.verify(kept["fields"]["password"], PASSWORD)
    assert kept["until"] == "2026-03-02T09:10:00Z"  # 10 minutes


def test_next_again_with_the_password_fields_empty_completes_once(make_engine: EngineFactory) -> None:
    """Pressing 次へ on the page as shown (password fields empty, the others as filled in) creates
    one login whose password is the one typed the first time, and no second mail."""
    engine, provisioner, snap = _spent(make_engine)
    sent = mail_count(engine)
    provisioner.recover()
    empty = {**WITHOUT_PASSWORDS, "password": "", "password_confirm": ""}  # as a form posts them
    snap = engine.send(snap, "submit", empty)
    assert (snap.state, message_ids(snap)) == ("provisioning", [])
    logins = logins_of(engine)
    assert len(logins) == 1
    assert engine.services.hasher.verify(logins[0].password_hash, PASSWORD)
    assert mail_count(engine) == sent
    assert "_kept" not in stored_flow(engine, snap.id).data  # gone with the state


def test_next_again_while_still_failing_keeps_the_hash(make_engine: EngineFactory,
                                                        frozen: FrozenDateTimeFactory) -> None:
    """FAQ 12 says press 次へ several times: each spent try renews the 10 minutes."""
    engine, provisioner, snap = _spent(make_engine)
    frozen.tick(timedelta(minutes=8))
    snap = engine.send(snap, "submit", WITHOUT_PASSWORDS)
    assert message_ids(snap) == ["transient_error"]
    assert _kept(snap)["password"] == (False, True)
    frozen.tick(timedelta(minutes=8))  # 16 minutes after the first, 8 after the second
    provisioner.recover()
    snap = engine.send(snap, "submit", WITHOUT_PASSWORDS)
    assert snap.state == "provisioning"


def test_the_kept_password_lasts_ten_minutes(make_engine: EngineFactory,
                                             frozen: FrozenDateTimeFactory) -> None:
    """At 9:59 after the spent try it is used; at 10:00 it is gone: the password is asked again."""
    engine, provisioner, snap = _spent(make_engine)
    provisioner.recover()
    frozen.tick(timedelta(minutes=10))
    assert _kept(engine.get(snap))["password"] == (True, False)
    late = engine.send(snap, "submit", WITHOUT_PASSWORDS)
    assert field_errors(late) == {"password": "field_required", "password_confirm": "field_required"}
    assert "_kept" not in stored_flow(engine, snap.id).data
    assert logins_of(engine) == []


def test_the_kept_password_at_the_last_second(make_engine: EngineFactory,
                                              frozen: FrozenDateTimeFactory) -> None:
    engine, provisioner, snap = _spent(make_engine)
    provisioner.recover()
    frozen.tick(timedelta(minutes=10) - timedelta(seconds=1))
    assert engine.send(snap, "submit", WITHOUT_PASSWORDS).state == "provisioning"


def test_changing_another_field_drops_the_kept_password(make_engine: EngineFactory) -> None:
    """The policy compared the password with the customer number: another number, another check,
    so the password must be typed again."""
    engine, provisioner, snap = _spent(make_engine)
    provisioner.recover()
    changed = engine.send(snap, "submit", {**WITHOUT_PASSWORDS, "display_name": "山田 次郎"})
    assert field_errors(changed) == {"password": "field_required",
                                     "password_confirm": "field_required"}
    assert _kept(changed)["password"] == (True, False)
    assert logins_of(engine) == []
    assert engine.send(changed, "submit", details(display_name="山田 次郎")).state == "provisioning"


def test_a_password_typed_again_replaces_the_kept_one(make_engine: EngineFactory) -> None:
    engine, provisioner, snap = _spent(make_engine)
    provisioner.recover()
    other = "Ame-ga-furu-8"
    half = engine.send(snap, "submit", {**WITHOUT_PASSWORDS, "password": other})
    assert field_errors(half) == {"password_confirm": "field_required"}  # no mixing with the kept
    snap = engine.send(half, "submit", details(password=other))
    assert snap.state == "provisioning"
    assert engine.services.hasher.verify(logins_of(engine)[0].password_hash, other)


def test_cancel_and_start_again_still_works(make_engine: EngineFactory) -> None:
    """The seed's fallback: キャンセル, then the registration from the start."""
    engine, provisioner, snap = _spent(make_engine)
    snap = engine.send(snap, "cancel")
    assert snap.status == "cancelled"
    assert "_kept" not in stored_flow(engine, snap.id).data
    provisioner.recover()
    assert register(engine, "abcd8-01", TARO).state == "provisioning"


def test_a_mismatch_on_the_retry_is_a_mismatch(make_engine: EngineFactory) -> None:
    """The kept password does not skip the contract check."""
    engine, provisioner, snap = _spent(make_engine)
    provisioner.recover()
    wrong = engine.send(snap, "submit", {**WITHOUT_PASSWORDS, "tel": "03-9999-9999"})
    assert message_ids(wrong) == ["field_required", "field_required"]  # another tel: retype
    wrong = engine.send(wrong, "submit", details(tel="03-9999-9999"))
    assert message_ids(wrong) == ["contract_mismatch"]


# ---- point 4: the already-registered address (the guide's password screen) --------------------

def _registered_unlinked(engine: regflow.Engine, frozen: FrozenDateTimeFactory) -> None:
    """taro registered from abcd8-01 and never signed in (so never linked); ready now."""
    assert register(engine, "abcd8-01", TARO).state == "provisioning"
    frozen.tick(timedelta(minutes=10))


def test_email_taken_is_the_guides_password_screen(make_engine: EngineFactory,
                                                   frozen: FrozenDateTimeFactory) -> None:
    engine = make_engine()
    _registered_unlinked(engine, frozen)
    snap = submit_email(engine, TARO, account="abcd8-02")
    assert snap.state == "email_taken"
    assert snap.screen.title == "パスワードの入力"
    assert [(f.name, f.type, f.label, f.required) for f in snap.screen.fields] == [
        ("current_password", "password", "パスワード", True)]
    assert [(a.event, a.label) for a in snap.screen.actions] == [
        ("submit", "サインイン"), ("forgot_password", "パスワードを忘れた方はこちら"),
        ("back", "戻る"), ("cancel", "キャンセル")]
    text = snap.screen.text or ""
    assert "この画面が出たら別のメールアドレスでやり直してください" in text  # the guide's callout
    assert "使用できるメールアドレスは 1 回のみ" in text
    assert snap.screen.fields[0].autocomplete == "current-password"


def test_email_taken_signs_in_a_login_never_linked(make_engine: EngineFactory,
                                                   frozen: FrozenDateTimeFactory) -> None:
    """Registered before, never linked: the password here hands over to the sign-in of this seat,
    which shows the link prompt of ⑧; OK links the seat and signs in."""
    engine = make_engine()
    _registered_unlinked(engine, frozen)
    snap = submit_email(engine, TARO, account="abcd8-02")
    registration_id = snap.id
    snap = engine.send(snap, "submit", {"current_password": PASSWORD})
    assert (snap.flow, snap.state) == ("sign_in", "link_prompt")
    assert snap.continue_with == {"flow": "sign_in", "id": snap.id}
    assert SEED_LINK_PROMPT in (snap.screen.text or "")
    signed_in = engine.send(snap, "submit")
    assert signed_in.state == "signed_in"
    assert signed_in.session
    assert logins_of(engine)[0].account == "abcd8-02"
    stored = stored_flow(engine, registration_id)
    assert (stored.state, stored.status) == ("handed_over", "completed")
    assert PASSWORD not in json.dumps(stored.data, ensure_ascii=False)
    assert PASSWORD not in json.dumps(stored_flow(engine, snap.id).data, ensure_ascii=False)


def test_email_taken_with_a_wrong_password(make_engine: EngineFactory,
                                           frozen: FrozenDateTimeFactory) -> None:
    """A wrong password: the sign-in screen, address filled in, credentials_invalid — and it counts
    toward the lockout like any sign-in: after 10 wrong ones there, the right one is locked out."""
    engine = make_engine()
    _registered_unlinked(engine, frozen)
    for _ in range(10):  # lockout_after = 10
        snap = submit_email(engine, TARO, account="abcd8-02")
        snap = engine.send(snap, "submit", {"current_password": "Not-the-password-1"})
        assert (snap.flow, snap.state, message_ids(snap)) == ("sign_in", "credentials",
                                                              ["credentials_invalid"])
        assert field_values(snap) == {"email": TARO, "password": None}
    snap = engine.start("sign_in", {"account": "abcd8-02"})
    assert message_ids(engine.send(snap, "submit", {"email": TARO, "password": PASSWORD})) == [
        "locked_out"]


def test_email_taken_forgot_password_fills_in_the_address(make_engine: EngineFactory,
                                                          frozen: FrozenDateTimeFactory) -> None:
    engine = make_engine()
    _registered_unlinked(engine, frozen)
    snap = submit_email(engine, TARO, account="abcd8-02")
    snap = engine.send(snap, "forgot_password")
    assert (snap.flow, snap.state) == ("password_reset", "enter_email")
    assert field_values(snap) == {"email": TARO}


def test_email_taken_back_is_the_guides_way(make_engine: EngineFactory,
                                            frozen: FrozenDateTimeFactory) -> None:
    """戻る, another address: the registration goes on."""
    engine = make_engine()
    _registered_unlinked(engine, frozen)
    snap = submit_email(engine, TARO, account="abcd8-02")
    snap = engine.send(snap, "back")
    assert snap.state == "enter_email"
    assert engine.send(snap, "submit", {"email": HANA}).state == "enter_code"


# ---- point 5: the guide's texts, word for word -------------------------------------------------

def test_the_provisioning_dialog_is_the_guides(make_engine: EngineFactory,
                                               frozen: FrozenDateTimeFactory) -> None:
    """⑦: 確認, the guide's sentence, then the exact time (rounded up), and OK."""
    frozen.move_to("2026-03-02 00:00:30")  # 09:00:30 in Tokyo
    engine = make_engine()
    snap = register(engine, "abcd8-01", TARO)
    assert snap.screen.title == "確認"
    assert snap.screen.text == f"{SEED_DIALOG}（09:11 以降にログインできます）。"
    assert [(a.event, a.label) for a in snap.screen.actions] == [("ok", "OK")]


def test_ok_on_the_provisioning_dialog_leads_to_sign_in(make_engine: EngineFactory,
                                                        frozen: FrozenDateTimeFactory) -> None:
    """OK: the sign-in screen of the same seat, the address filled in; the registration itself
    still reaches ready at its own time (OK does not restart its timer)."""
    engine = make_engine()
    snap = register(engine, "abcd8-01", TARO)
    registration = snap
    frozen.tick(timedelta(minutes=4))
    signing = engine.send(snap, "ok")
    assert (signing.flow, signing.state) == ("sign_in", "credentials")
    assert field_values(signing) == {"email": TARO, "password": None}
    assert "create_account" in action_events(signing)
    again = engine.get(registration)
    assert again.state == "provisioning"
    assert [t.at for t in again.timers] == [t.at for t in registration.timers]
    frozen.tick(timedelta(minutes=6))
    assert engine.get(registration).state == "ready"
    snap = engine.send(signing, "submit", {"email": TARO, "password": PASSWORD})
    assert snap.state == "link_prompt"


def test_the_legacy_screen_names_the_enforcement_date(make_engine: EngineFactory,
                                                      frozen: FrozenDateTimeFactory) -> None:
    """Before 2026-02-02 (the guide's ①), continuing without an account names the date."""
    frozen.move_to("2026-02-01 14:59:59")  # 23:59:59 in Tokyo, the last second before
    engine = make_engine()
    snap = engine.start("sign_in", {"account": "abcd8-01"})
    snap = engine.send(snap, "continue_legacy")
    assert snap.state == "legacy"
    assert "2026年2月2日以降は、アカウント登録をしないと社労法務システムにログインできません" in (
        snap.screen.text or "")
    english = engine.get(snap, lang="en")
    assert "From 2026-02-02 on" in (english.screen.text or "")


def test_one_spelling_of_asp_user() -> None:
    """The guide's prose writes 「ASP ユーザー」; every Japanese text and template does too."""
    texts = [(LOCALES / "ja.toml").read_text("utf-8")]
    texts += [p.read_text("utf-8") for p in TEMPLATES.rglob("*.j2")]
    texts += [p.read_text("utf-8") for p in (Path(regflow.__file__).parent / "cli").glob("*.py")]
    for text in texts:
        assert "ASPユーザー" not in text
        assert "ASP ユーザー" in texts[0]


def test_no_engine_wording_for_end_users() -> None:
    """「次の自動処理は…（Asia/Tokyo）の予定です」 is nowhere in what a person reads."""
    for path in [LOCALES / "ja.toml", LOCALES / "en.toml", *TEMPLATES.rglob("*.j2")]:
        text = path.read_text("utf-8")
        assert "次の自動処理" not in text
        assert not re.search(r"next automatic step", text, re.IGNORECASE)


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_the_kept_hint_exists_in_both_languages(lang: str) -> None:
    assert Catalog(lang).find("web.screen.password_kept")


def test_the_flows_end_deletes_the_kept_hash(make_engine: EngineFactory,
                                             frozen: FrozenDateTimeFactory) -> None:
    """Left alone, the registration expires after 60 minutes; nothing of the password stays."""
    engine, _, snap = _spent(make_engine)
    assert "_kept" in stored_flow(engine, snap.id).data
    frozen.tick(timedelta(minutes=60))
    assert engine.get(snap).status == "expired"
    assert "_kept" not in stored_flow(engine, snap.id).data
