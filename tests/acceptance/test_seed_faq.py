"""The guide's FAQ (想定される質問集) entries that describe behaviour, one test (or more) each.

FAQ 1 and 2 (ask the project by mail or form) are not behaviour of regflow, and the guide has no
FAQ 10; docs/seed.md says so. FAQ 4, 5, 8, 9, 12 and 13 show or name screens: they are read in
chromium.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from flows import PASSWORD, details, last_code, login_of, logins_of
from guide import (
    CONTRACT,
    EMAIL,
    ENFORCEMENT,
    HANA,
    PRODUCT,
    PROVISIONING,
    SEAT,
    admin_flow,
    control,
    field,
    fill_details,
    flow_of,
    heading,
    launch,
    login_id,
    mails,
    open_flow,
    page_text,
    press,
    ready,
    register,
    screen_text,
    session_cookie,
    sign_in,
    sign_in_page,
    to_details,
)

import regflow
from regflow.ground.records import Login

if TYPE_CHECKING:
    from conftest import EngineMaker, Site
    from playwright.sync_api import Page

PROBLEM = "問題が発生しました。もう一度「次へ」をクリックしてください。"


class DirectoryDown:
    """A provisioner whose directory is down (regflow's transient error) until ``recover()``."""

    def __init__(self) -> None:
        self.down = True
        self.calls = 0

    def recover(self) -> None:
        """From now on every call succeeds."""
        self.down = False

    def provision(self, login: Login, *, key: str) -> None:
        """Fail while the directory is down."""
        self.calls += 1
        if self.down:
            raise regflow.TransientError("directory unavailable")


# ---- FAQ 3 ---------------------------------------------------------------------------------------


def test_faq_03_codes_only_at_registration_and_two_step_sign_in(
        engine: regflow.Engine, clock: regflow.ManualClock) -> None:
    """FAQ 3「次世代社労法務システムに関して、確認コードが送信されるのは以下のタイミングです。
    ●初回アカウント登録時 ●二段階認証設定を行った場合、社労法務システムログイン時に毎回」"""
    register(engine)
    assert [m["To"] for m in mails(engine)] == [EMAIL]  # 初回アカウント登録時
    clock.advance(PROVISIONING)
    session = sign_in(engine).session
    sign_in(engine)
    assert len(mails(engine)) == 1  # no code at sign-in without 二段階認証

    snap = engine.start("set_two_factor", {}, session=session)
    assert engine.send(snap, "submit", {"enabled": True}, session=session).state == "done"
    assert len(mails(engine)) == 1
    for sign_ins in (1, 2):  # ログイン時に毎回
        clock.advance(61)
        snap = engine.start("sign_in", {"account": SEAT})
        snap = engine.send(snap, "submit", {"email": EMAIL, "password": PASSWORD})
        assert snap.state == "second_factor"
        assert len(mails(engine)) == 1 + sign_ins
        assert mails(engine)[-1]["To"] == EMAIL
        assert PRODUCT in mails(engine)[-1]["Subject"]
        assert engine.send(snap, "submit", {"code": last_code(engine)}).state == "signed_in"


# ---- FAQ 4 ---------------------------------------------------------------------------------------


def test_faq_04_license_full_message(site: Site, page: Page) -> None:
    """FAQ 4「詳細の追加画面で入力後に「次へ」をクリックすると「アカウント作成エラー」「登録アカウント
    がいっぱいです。現在の契約数は●アカウントです。」と表示され、アカウント登録ができません。」"""
    site.engine.contracts.add(**{**CONTRACT, "licenses": 2})
    register(site.engine, "abcd8-01", EMAIL)
    register(site.engine, "abcd8-02", HANA)
    open_flow(page, to_details(site.engine, "third@example.jp", "abcd8-03"))
    heading(page, "詳細の追加")
    fill_details(page)
    press(page, "次へ")
    heading(page, "詳細の追加")
    text = screen_text(page)
    assert "アカウント作成エラー" in text
    assert "登録アカウントがいっぱいです。現在の契約数は2アカウントです。" in text
    assert len(logins_of(site.engine)) == 2


# ---- FAQ 5 ---------------------------------------------------------------------------------------


def test_faq_05_back_arrow_corrects_the_address(site: Site, page: Page,
                                                clock: regflow.ManualClock) -> None:
    """FAQ 5「確認コードはすぐに送信されます」「●入力したメールアドレスが違う。コード入力画面に入力
    したメールアドレスが表示されているので、間違いがないか確認してください。間違っていた場合は、
    「←」アイコンをクリックし、ひとつ前の画面に戻って正しいメールアドレスを入力してください。」"""
    launch(page)
    press(page, "アカウントをお持ちでない場合、作成できます")
    field(page, "email").fill("sampel@aaa.com")  # a typo
    press(page, "次へ")
    heading(page, "コードの入力")
    assert "sampel@aaa.com にコードを送信しました" in screen_text(page)
    assert [m["To"] for m in mails(site.settled())] == ["sampel@aaa.com"]  # すぐに
    clock.advance(60)  # 届かない: the person waited for it (one send a minute, see docs/seed.md)
    press(page, "戻る")  # the guide's ←
    assert field(page, "email").is_visible()
    assert field(page, "code").count() == 0
    field(page, "email").fill(EMAIL)
    press(page, "次へ")
    heading(page, "コードの入力")
    assert f"{EMAIL} にコードを送信しました" in screen_text(page)
    assert mails(site.settled())[-1]["To"] == EMAIL
    field(page, "code").fill(last_code(site.engine))
    press(page, "次へ")
    heading(page, "詳細の追加")


def test_faq_05_corrected_address_within_a_minute_waits(engine: regflow.Engine,
                                                        clock: regflow.ManualClock) -> None:
    """FAQ 5「確認コードはすぐに送信されます」…「ひとつ前の画面に戻って正しいメールアドレスを入力して
    ください。」— regflow deliberately sends at most one code a minute per flow (docs/seed.md):
    a corrected address within that minute is told when; then its code goes out at once."""
    snap = engine.start("registration", {"account": SEAT})
    snap = engine.send(snap, "submit", {"email": "sampel@aaa.com"})
    snap = engine.send(snap, "back", {})
    clock.advance(20)
    snap = engine.send(snap, "submit", {"email": EMAIL})
    assert (snap.state, [m.id for m in snap.screen.errors]) == ("enter_email", ["resend_too_soon"])
    assert "40 秒後" in snap.screen.errors[0].text
    clock.advance(40)
    snap = engine.send(snap, "submit", {"email": EMAIL})
    assert snap.state == "enter_code"
    assert mails(engine)[-1]["To"] == EMAIL


def test_faq_05_registered_address_gets_no_code(engine: regflow.Engine) -> None:
    """FAQ 5「届かない場合の原因としては以下が考えられます。…●すでにアカウント登録済のメール
    アドレスである。」"""
    register(engine, SEAT, EMAIL)
    sent = len(mails(engine))
    snap = engine.start("registration", {"account": "abcd8-02"})
    snap = engine.send(snap, "submit", {"email": EMAIL})
    assert snap.state == "email_taken"
    assert len(mails(engine)) == sent


# ---- FAQ 6 ---------------------------------------------------------------------------------------


def test_faq_06_added_account_needs_its_own_registration(engine: regflow.Engine,
                                                         clock: regflow.ManualClock) -> None:
    """FAQ 6「アカウント追加をしたらアカウント登録が必要なのか」「はい、必要です。追加アカウントに
    ログインし、最初にシステムを立ち上げる際にアカウント登録の画面が表示されます。」"""
    ready(engine, clock, (SEAT, EMAIL))
    sign_in(engine)
    engine.contracts.add(**{**CONTRACT, "licenses": 4,
                            "accounts": [*CONTRACT["accounts"], "abcd8-04"]})  # the added account
    launch_04 = engine.start("sign_in", {"account": "abcd8-04"})
    assert "create_account" in [a.event for a in launch_04.screen.actions]
    other = engine.send(launch_04, "submit", {"email": EMAIL, "password": PASSWORD})
    assert other.state == "credentials"  # abcd8-01's login does not open abcd8-04
    assert [m.id for m in other.screen.errors] == ["linked_elsewhere"]
    register(engine, "abcd8-04", HANA)
    clock.advance(PROVISIONING)
    sign_in(engine, HANA, "abcd8-04")
    assert login_of(engine, HANA).account == "abcd8-04"


# ---- FAQ 7 ---------------------------------------------------------------------------------------


def test_faq_07_wrong_customer_id_or_tel_no_account(engine: regflow.Engine) -> None:
    """FAQ 7「アカウント登録完了の条件として、CustomerID（お客様番号）と電話番号のいずれも一致する
    ことが必要となります。どちらかが一致しない場合およびどちらも一致しない場合はエラーになり
    アカウント登録が完了しません。もう一度正しい情報でアカウント登録を行ってください。」"""
    snap = to_details(engine)
    said = set()
    for wrong in ({"customer_id": "289999"}, {"tel": "03-1234-9999"},
                  {"customer_id": "289999", "tel": "03-1234-9999"}):
        snap = engine.send(snap, "submit", details(**wrong))
        assert snap.state == "details", wrong
        assert [m.id for m in snap.screen.errors] == ["contract_mismatch"], wrong
        said.add(snap.screen.errors[0].text)
        assert logins_of(engine) == []
    assert len(said) == 1  # one message: it never tells which of the two was wrong
    assert "アカウント作成エラー" in said.pop()
    assert engine.send(snap, "submit", details()).state == "provisioning"  # 正しい情報で
    assert len(logins_of(engine)) == 1


def test_faq_07_five_mismatches_end_the_registration(engine: regflow.Engine) -> None:
    """FAQ 7「どちらかが一致しない場合…エラーになりアカウント登録が完了しません。」— regflow
    deliberately differs (docs/seed.md): after 5 mismatches in one flow it ends; starting again
    is still possible."""
    snap = to_details(engine)
    for _ in range(4):
        snap = engine.send(snap, "submit", details(tel="03-1234-9999"))
        assert snap.state == "details"
    snap = engine.send(snap, "submit", details(tel="03-1234-9999"))
    assert (snap.state, snap.status) == ("failed", "failed")
    assert [m.id for m in snap.screen.errors] == ["contract_mismatch_limit"]
    assert logins_of(engine) == []
    again = engine.send(to_details(engine, HANA), "submit", details())
    assert again.state == "provisioning"


# ---- FAQ 8 ---------------------------------------------------------------------------------------


def test_faq_08_address_on_sign_in_screen_does_not_register(site: Site, page: Page) -> None:
    """FAQ 8「メールアドレスを入力しているが画面が進まない。」「最初の画面で「アカウントをお持ちで
    ない場合、作成できます」の文字をクリックいただいていますでしょうか。一度画面を閉じてはじめて
    からやり直してください。」"""
    launch(page)
    field(page, "email").fill(EMAIL)
    field(page, "password").fill(PASSWORD)
    press(page, "サインイン")  # typed on the first screen: no account, nothing moves on
    heading(page, "サインイン")
    assert page.locator("p.msg.error").count() == 1
    assert mails(site.settled()) == []
    assert logins_of(site.engine) == []
    launch(page)  # はじめからやり直す
    press(page, "アカウントをお持ちでない場合、作成できます")
    field(page, "email").fill(EMAIL)
    press(page, "次へ")
    heading(page, "コードの入力")


# ---- FAQ 9 ---------------------------------------------------------------------------------------


def test_faq_09_one_registration_signs_in_from_any_pc(site: Site, page: Page,
                                                      clock: regflow.ManualClock) -> None:
    """FAQ 9「PC ごとのアカウント登録は不要です。ひとつのアカウント（abcd1-01 等）に対してひとつの
    メールアドレスで紐づけされるので、別の PC からログインする場合でもアカウント登録したメール
    アドレスとパスワードでログインができます。」"""
    ready(site.engine, clock, (SEAT, EMAIL))
    sign_in_page(page)  # the office PC: links abcd8-01 at the first sign-in
    office = session_cookie(page)
    home = site.tab()  # another PC (its own browser profile)
    launch(home)
    field(home, "email").fill(EMAIL)
    field(home, "password").fill(PASSWORD)
    press(home, "サインイン")
    heading(home, "サインインしました")  # no registration, no second link prompt
    at_home = session_cookie(home)
    assert office is not None
    assert at_home is not None
    assert at_home != office
    for session in (office, at_home):  # both PCs stay signed in
        assert [row["account"] for row in site.engine.admin_logins(session)] == [SEAT]
    assert len(logins_of(site.engine)) == 1


# ---- FAQ 11 --------------------------------------------------------------------------------------


def test_faq_11_email_change_is_delete_then_register_again(engine: regflow.Engine,
                                                           clock: regflow.ManualClock) -> None:
    """FAQ 11「メールアドレスだけを変更することはできませんので、管理者用メニューにて、登録された
    アカウント情報を削除し、新しいメールアドレスで再度一からアカウント登録を行ってください。」"""
    new_address = "hana.new@example.jp"
    ready(engine, clock, (SEAT, EMAIL), ("abcd8-02", HANA))
    admin = sign_in(engine).session or ""
    sign_in(engine, HANA, "abcd8-02")
    assert "change_email" not in engine.flows.names()  # no change of the address alone
    refused = engine.start("registration", {"account": "abcd8-02"})  # not before the deletion
    refused = engine.send(refused, "submit", {"email": new_address})
    assert [m.id for m in refused.screen.errors] == ["seat_registered"]

    assert admin_flow(engine, "delete_login", admin, login_id(engine, admin, HANA)).state == "done"
    register(engine, "abcd8-02", new_address)  # 再度一から
    clock.advance(PROVISIONING)
    sign_in(engine, new_address, "abcd8-02")
    assert login_of(engine, new_address).account == "abcd8-02"
    gone = engine.start("sign_in", {"account": "abcd8-02"})
    gone = engine.send(gone, "submit", {"email": HANA, "password": PASSWORD})
    assert [m.id for m in gone.screen.errors] == ["credentials_invalid"]


# ---- FAQ 12 --------------------------------------------------------------------------------------


def test_faq_12_problem_occurred_press_next_again(serve: Callable[[regflow.Engine], Site],
                                                  new_engine: EngineMaker, tmp_path: Path) -> None:
    """FAQ 12「問題が発生しました。…」とエラーメッセージが表示された「このような画面が表示された
    ら、「次へ」ボタンを何度かクリックしてください。クリックしていくとアカウント登録が完了します。」
    — on 詳細の追加, without typing the password again; one login, no password in the database."""
    database = tmp_path / "regflow.db"
    directory = DirectoryDown()
    engine = new_engine(f"sqlite:///{database}", provisioner=directory)
    site = serve(engine)
    page = site.tab()
    open_flow(page, to_details(engine))
    fill_details(page)
    for _ in range(2):  # 何度かクリック: still failing
        press(page, "次へ")
        heading(page, "詳細の追加")
        assert PROBLEM in screen_text(page)
        assert logins_of(engine) == []
        for name in ("password", "password_confirm"):  # kept: the browser lets 次へ through empty
            assert field(page, name).get_attribute("required") is None, name
    flow_id, token = flow_of(page)
    shown = {f["name"]: f for f in engine.get(flow_id, token=token).to_dict()["screen"]["fields"]}
    for name in ("password", "password_confirm"):
        assert (shown[name].get("kept"), shown[name]["required"]) == (True, False), shown[name]
    assert directory.calls == 6  # the engine's retries, spent twice

    directory.recover()
    press(page, "次へ")  # the page as shown: the password is not typed again
    heading(page, "確認")
    assert len(logins_of(engine)) == 1
    assert directory.calls == 7
    engine.store.close()
    for stored in tmp_path.glob("regflow.db*"):  # the file and its journal, if any
        assert PASSWORD.encode() not in stored.read_bytes(), stored.name


def test_faq_12_cancel_and_start_again(serve: Callable[[regflow.Engine], Site],
                                       new_engine: EngineMaker) -> None:
    """FAQ 12「それでも完了しない場合は、一度アカウント登録画面をキャンセルまたは×で閉じて、再度
    社労法務システムを立ち上げなおしてください。」"""
    directory = DirectoryDown()
    site = serve(new_engine(provisioner=directory))
    page = site.tab()
    launch(page)
    open_flow(page, to_details(site.engine))
    fill_details(page)
    press(page, "次へ")
    assert PROBLEM in screen_text(page)
    press(page, "キャンセル")
    heading(page, "キャンセルしました")
    directory.recover()

    launch(page)  # 立ち上げなおす
    press(page, "アカウントをお持ちでない場合、作成できます")
    field(page, "email").fill(EMAIL)
    press(page, "次へ")
    heading(page, "コードの入力")
    field(page, "code").fill(last_code(site.settled()))
    press(page, "次へ")
    heading(page, "詳細の追加")
    fill_details(page)
    press(page, "次へ")
    heading(page, "確認")
    assert [row.email for row in logins_of(site.engine)] == [EMAIL]


# ---- FAQ 13 --------------------------------------------------------------------------------------


def test_faq_13_no_use_without_account_from_enforcement_date(new_engine: EngineMaker) -> None:
    """FAQ 13「アカウント登録をせずに社労法務システムを使い続けることはできるか。」「できません。
    次世代型社労法務システムの仕様上、アカウント登録は必ずしていただく必要があります。」— and ①
    「2026 年 2 月 2 日以降」: until then the way without an account exists, from then on not."""
    before = new_engine(clock=regflow.ManualClock(ENFORCEMENT - timedelta(seconds=1)))
    snap = before.start("sign_in", {"account": SEAT})
    assert "continue_legacy" in [a.event for a in snap.screen.actions]

    at = new_engine(clock=regflow.ManualClock(ENFORCEMENT))
    snap = at.start("sign_in", {"account": SEAT})
    assert [a.event for a in snap.screen.actions if a.event == "continue_legacy"] == []
    with pytest.raises(regflow.EventNotAllowed):
        at.send(snap, "continue_legacy", {})
    assert at.get(snap).state == "credentials"


def test_faq_13_before_the_date_the_way_without_account_names_it(
        serve: Callable[[regflow.Engine], Site], new_engine: EngineMaker) -> None:
    """FAQ 13 with ①「2026 年 2 月 2 日以降社労法務システムへログインをすると、下の画面が表示され
    る」: before that date the sign-in screen still lets one go on without an account, and says
    until when (2026年2月2日)."""
    early = new_engine(clock=regflow.ManualClock(datetime(2026, 1, 20, tzinfo=UTC)))
    page = serve(early).tab()
    launch(page)
    heading(page, "サインイン")
    press(page, "アカウントなしで続行")
    assert "2026年2月2日" in screen_text(page)
    assert PRODUCT in page_text(page)
    assert control(page, "アカウントなしで続行").count() == 0
