"""The HTML front end (SPEC 4.2) in a real browser: Playwright drives Debian's chromium.

The app runs on a real waitress server for an engine on a ManualClock (2026-03-02 00:00 UTC,
09:00 in Tokyo), so the tests move time past provisioning without sleeping. Flows made in-process
are opened in the browser by giving it their token's cookie, as a launch would have. The server
sends mail after its answers, so the tests wait for it before they read the mailer. Every screen passed
through is saved as a full-page PNG under ``docs/screenshots`` (480×900, scale 1): the pictures of
``docs/screens.md``, rewritten on every run, CI included.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from chromium import unavailable

if (_why := unavailable()) is not None:
    pytest.skip(_why, allow_module_level=True)

from flows import (
    DISPLAY_NAME,
    PASSWORD,
    details,
    last_code,
    mail_count,
    wrong_code,
)
from live_server import serving
from playwright.sync_api import Browser, Cookie, Locator, Page, expect

import regflow
from regflow.ground.screens import Snapshot
from regflow.web import create_app, wait_for_mail

START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # 09:00 in Asia/Tokyo
PRODUCT = "次世代型社労法務システム"
CONTRACT: dict[str, Any] = {"customer_id": "281234", "phone": "03-1234-5678", "licenses": 3,
                            "accounts": ["abcd8-01", "abcd8-02", "abcd8-03"]}
SEAT = "abcd8-01"
EMAIL = "sample@aaa.com"
HANA = "hana@example.jp"
NEW_PASSWORD = "Zr4!tLw9qB"
PROVISIONING = 600
SHOTS = Path(__file__).parent.parent / "docs" / "screenshots"
APPS: dict[int, Any] = {}  # id(engine) → the app serving it (to wait for its mail)


# ---- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def clock() -> regflow.ManualClock:
    """A clock the tests move by hand."""
    return regflow.ManualClock(START)


@pytest.fixture
def engine(clock: regflow.ManualClock) -> regflow.Engine:
    """An engine in memory with the demo contract."""
    built = regflow.Engine.from_url("memory://", mail="memory", hasher="fast", clock=clock,
                                    product=PRODUCT)
    built.contracts.add(**CONTRACT)
    return built


@pytest.fixture
def page(chromium: Browser, engine: regflow.Engine) -> Iterator[Page]:
    """A fresh phone-sized tab (Japanese browser) on a real server for the engine."""
    app = APPS[id(engine)] = create_app(engine)
    with serving(app) as base:
        context = chromium.new_context(base_url=base, viewport={"width": 480, "height": 900},
                                       device_scale_factor=1, locale="ja-JP")
        context.set_default_timeout(10_000)
        tab = context.new_page()
        complaints: list[str] = []  # CSP refusals, invalid patterns, script errors
        tab.on("console", lambda m: complaints.append(m.text) if m.type in ("error", "warning")
               and not m.text.startswith("Failed to load resource") else None)
        tab.on("pageerror", lambda error: complaints.append(str(error)))
        try:
            yield tab
        finally:
            context.close()
            del APPS[id(engine)]
        assert complaints == []


# ---- helpers -------------------------------------------------------------------------------------


def shot(page: Page, name: str) -> None:
    """Save the whole page as ``docs/screenshots/<name>.png``."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / f"{name}.png", full_page=True, animations="disabled", caret="hide")


def heading(page: Page, text: str) -> None:
    """The page's h1 is ``text``."""
    expect(page.locator("h1")).to_have_text(text)


def click(page: Page, target: Locator) -> None:
    """Click something that loads a page (a form's button, a link) and wait for the page."""
    with page.expect_navigation():
        target.click()


def press(page: Page, label: str) -> None:
    """Press the button labelled ``label`` exactly."""
    click(page, page.get_by_role("button", name=label, exact=True))


def field(page: Page, name: str) -> Locator:
    """The input of a field (``<input id="f-NAME">``)."""
    return page.locator(f"#f-{name}")


def session_cookie(page: Page) -> Cookie | None:
    """The browser's sign-in cookie, if it holds one."""
    found = [c for c in page.context.cookies() if c["name"] == "regflow_session"]
    assert len(found) <= 1
    return found[0] if found else None


def launch(page: Page, query: str = "", account: str = SEAT) -> None:
    """Open the page as the ASP application's launch does."""
    page.goto(f"/?account={account}{query}")


def sign_in(page: Page, email: str = EMAIL, password: str = PASSWORD) -> None:
    """From the launch to サインインしました, pressing OK at the link prompt if it comes."""
    launch(page)
    field(page, "email").fill(email)
    field(page, "password").fill(password)
    press(page, "サインイン")
    if page.locator("h1").text_content() == "確認":
        press(page, "OK")
    heading(page, "サインインしました")


def settled(engine: regflow.Engine) -> regflow.Engine:
    """The engine, once the server delivered the mail of every request answered so far."""
    if id(engine) in APPS:
        assert wait_for_mail(APPS[id(engine)])
    return engine


def newest_code(engine: regflow.Engine) -> str:
    """The code of the newest mail, once the server's mail is out."""
    return last_code(settled(engine))


def mails_sent(engine: regflow.Engine) -> int:
    """How many mails were sent, once the server's mail is out."""
    return mail_count(settled(engine))


def to_details(engine: regflow.Engine, email: str, account: str = SEAT) -> Snapshot:
    """A registration in-process up to 詳細の追加 (each call passes the last snapshot, its token
    with it)."""
    snap = engine.start("registration", {"account": account})
    snap = engine.send(snap, "submit", {"email": email})
    snap = engine.send(snap, "submit", {"code": newest_code(engine)})
    assert snap.state == "details", snap.screen.messages
    return snap


def register(engine: regflow.Engine, account: str, email: str, **options: str) -> Snapshot:
    """A whole registration in-process; the snapshot after the details (provisioning)."""
    return engine.send(to_details(engine, email, account), "submit", details(**options))


def open_flow(page: Page, snap: Snapshot) -> None:
    """Open a flow made in-process: the browser gets the flow's cookie, then its page."""
    assert snap.flow_token is not None
    path = f"/flows/{snap.id}"
    page.context.add_cookies([{"name": "regflow_flow", "value": snap.flow_token,
                               "domain": "127.0.0.1", "path": path, "httpOnly": True,
                               "sameSite": "Lax"}])
    page.goto(path)


def ready_login(engine: regflow.Engine, clock: regflow.ManualClock, account: str = SEAT,
                email: str = EMAIL, **options: str) -> None:
    """A login registered through the engine (quicker than the pages) and provisioned."""
    snap = register(engine, account, email, **options)
    assert snap.state == "provisioning", snap.screen.messages
    clock.advance(PROVISIONING)


# ---- the journeys --------------------------------------------------------------------------------


def test_registration_in_japanese(page: Page, engine: regflow.Engine) -> None:
    """Sign-in → 作成 → e-mail → the mailed code → 詳細の追加 (full-width, ー) → 確認 at 09:10."""
    launch(page)
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/flows/[A-Za-z0-9_-]{22}", page.url)  # 303 to the flow
    heading(page, "サインイン")
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    shot(page, "sign_in-credentials")

    press(page, "アカウントをお持ちでない場合、作成できます")
    heading(page, "アカウントの作成")
    shot(page, "registration-enter_email")
    field(page, "email").press_sequentially(EMAIL)
    press(page, "次へ")

    heading(page, "コードの入力")
    expect(page.locator("p.text")).to_have_text(f"{EMAIL} にコードを送信しました")
    shot(page, "registration-enter_code")
    code = newest_code(engine)  # the outbox: engine.mailer.messages[-1]
    field(page, "code").fill(wrong_code(code))
    press(page, "次へ")
    expect(page.locator("p.msg.error")).to_contain_text("コードが正しくありません")
    shot(page, "registration-enter_code-invalid")
    field(page, "code").fill(code)
    press(page, "次へ")

    heading(page, "詳細の追加")
    shot(page, "registration-details")

    def details(password_confirm: str, customer_id: str, moves_on: bool = False) -> None:
        field(page, "password").fill(PASSWORD)
        field(page, "password_confirm").fill(password_confirm)
        field(page, "customer_id").fill(customer_id)
        field(page, "display_name").fill(DISPLAY_NAME)
        field(page, "tel").fill("03ー1234ー5678")
        press(page, "次へ")
        if not moves_on:
            heading(page, "詳細の追加")

    customer_id = field(page, "customer_id")
    for typed, valid in (("２８１２３４", True), ("281234", True), ("381234", False), ("28123", False)):
        customer_id.fill(typed)
        assert customer_id.evaluate("box => box.checkValidity()") is valid, typed  # the pattern
    details("Kx7#mPq2wY", "２８１２３４")  # the confirmation differs
    expect(field(page, "password_confirm")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#f-password_confirm-error-1")).to_have_text("パスワードが一致しません。")
    expect(field(page, "customer_id")).to_have_value("２８１２３４")  # shown again as typed
    shot(page, "registration-details-errors")
    details(PASSWORD, "２８９９９９")  # another customer number: the one generic error
    expect(page.locator("p.msg.error")).to_contain_text("ご契約の内容と一致しません")
    shot(page, "registration-details-mismatch")
    details(PASSWORD, "２８１２３４", moves_on=True)
    heading(page, "確認")

    expect(page.locator("p.text")).to_have_text(  # the guide's dialog (⑦), then the exact time
        "アカウントの設定をしています。10分ほどしたらメニュー右上からログインしてください"
        "（09:10 以降にログインできます）。")
    expect(page.locator("body")).not_to_contain_text("次の自動処理")
    expect(page.get_by_role("button")).to_have_text(["OK"])
    shot(page, "registration-provisioning")
    attempt = engine.start("sign_in", {"account": SEAT})
    attempt = engine.send(attempt, "submit", {"email": EMAIL, "password": PASSWORD})
    assert [m.id for m in attempt.screen.messages] == ["not_ready"]  # the login exists, not yet ready


def test_provisioning_ok_opens_sign_in_and_the_registration_ends_by_itself(
        page: Page, engine: regflow.Engine, clock: regflow.ManualClock) -> None:
    """⑦'s OK: the sign-in screen of the seat, the address filled in; before 09:10 not yet. The
    registration's own page, looked at again at 09:10, says it is complete."""
    launch(page)  # the seat this browser was opened for (the sign-in link at the end)
    snap = register(engine, SEAT, EMAIL)
    open_flow(page, snap)
    heading(page, "確認")
    registration = page.url
    press(page, "OK")
    heading(page, "サインイン")
    expect(field(page, "email")).to_have_value(EMAIL)
    clock.advance(PROVISIONING - 1)
    field(page, "password").fill(PASSWORD)
    press(page, "サインイン")
    expect(page.locator("p.msg.error")).to_have_text(
        "アカウントの設定中です。09:10 以降にサインインしてください。")
    clock.advance(1)
    page.goto(registration)
    heading(page, "アカウント登録が完了しました")
    expect(page.locator("p.text")).to_contain_text("09:10 からサインインできます")
    shot(page, "registration-ready")
    click(page, page.get_by_role("link", name="サインイン画面へ"))
    heading(page, "サインイン")
    assert "/flows/" in page.url


def test_next_again_after_a_passing_failure(page: Page, engine: regflow.Engine) -> None:
    """FAQ 12: the directory fails until the retries are spent: the message, the other fields
    filled in, the password fields empty and not required; 次へ on that page completes."""
    directory = _DirectoryDown()
    engine.services.provisioner = directory
    open_flow(page, to_details(engine, EMAIL, SEAT))
    heading(page, "詳細の追加")
    field(page, "password").fill(PASSWORD)
    field(page, "password_confirm").fill(PASSWORD)
    field(page, "customer_id").fill("281234")
    field(page, "display_name").fill(DISPLAY_NAME)
    field(page, "tel").fill("03-1234-5678")
    press(page, "次へ")
    heading(page, "詳細の追加")
    expect(page.locator("p.msg.error")).to_have_text(
        "問題が発生しました。もう一度「次へ」をクリックしてください。")
    for name in ("password", "password_confirm"):
        expect(field(page, name)).not_to_have_attribute("required", "")
        expect(field(page, name)).to_have_value("")
    expect(field(page, "customer_id")).to_have_value("281234")
    expect(page.locator("#f-password-hint")).to_have_text(
        "入力したパスワードを保持しています。変更しない場合は空欄のまま「次へ」をクリックしてください。")
    shot(page, "registration-details-kept")
    directory.down = False
    press(page, "次へ")
    heading(page, "確認")


class _DirectoryDown:
    """A Provisioner whose directory is down (a transient error) while ``down``."""

    def __init__(self) -> None:
        self.down = True

    def provision(self, login: Any, *, key: str) -> None:
        if self.down:
            raise regflow.TransientError("directory unavailable")


def test_first_sign_in_links_the_seat_and_sets_a_strict_cookie(page: Page, engine: regflow.Engine,
                                                             clock: regflow.ManualClock) -> None:
    """Before ready_at: not yet; then the link prompt, OK, signed in with an HttpOnly Lax cookie."""
    register(engine, SEAT, EMAIL)
    launch(page)
    field(page, "email").fill(EMAIL)
    field(page, "password").fill(PASSWORD)
    press(page, "サインイン")
    heading(page, "サインイン")
    expect(page.locator("p.msg.error")).to_have_text(
        "アカウントの設定中です。09:10 以降にサインインしてください。")
    shot(page, "sign_in-credentials-not_ready")

    clock.advance(PROVISIONING)
    field(page, "password").fill(PASSWORD)  # the e-mail is shown again, the password is not
    expect(field(page, "email")).to_have_value(EMAIL)
    press(page, "サインイン")
    heading(page, "確認")
    expect(page.locator("p.text")).to_contain_text("アカウントと ASP ユーザーの紐づけが必要です。")
    expect(page.locator("p.text")).to_contain_text("abcd8-01")
    assert session_cookie(page) is None  # not signed in before OK
    shot(page, "sign_in-link_prompt")

    press(page, "OK")
    heading(page, "サインインしました")
    expect(page.get_by_role("navigation").get_by_role("link", name="アカウント管理")).to_be_visible()
    shot(page, "sign_in-signed_in")
    cookie = session_cookie(page)
    assert cookie is not None
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    assert cookie["path"] == "/"
    assert page.evaluate("document.cookie") == ""  # scripts see neither cookie
    (login,) = engine.admin_logins(cookie["value"])
    assert (login["email"], login["account"], login["role"]) == (EMAIL, SEAT, "admin")


def test_two_factor_sign_in(page: Page, engine: regflow.Engine, clock: regflow.ManualClock) -> None:
    """二段階認証 turned on from アカウント管理; the next sign-in asks for the mailed code."""
    ready_login(engine, clock)
    sign_in(page)
    click(page, page.get_by_role("navigation").get_by_role("link", name="アカウント管理"))
    heading(page, "アカウント管理")
    press(page, "自分の二段階認証を設定する")
    heading(page, "二段階認証の設定")
    expect(page.get_by_label("二段階認証を有効にする")).not_to_be_checked()
    shot(page, "set_two_factor-confirm")
    page.get_by_label("二段階認証を有効にする").check()
    press(page, "保存する")
    heading(page, "設定を保存しました")
    shot(page, "set_two_factor-done")

    press(page, "サインアウト")
    heading(page, "サインイン")
    expect(page.locator("p.msg.info")).to_have_text("サインアウトしました。")
    assert session_cookie(page) is None
    sent = mails_sent(engine)
    field(page, "email").fill(EMAIL)
    field(page, "password").fill(PASSWORD)
    press(page, "サインイン")
    heading(page, "コードの入力")
    expect(page.locator("p.text")).to_have_text(f"{EMAIL} にコードを送信しました")
    assert mails_sent(engine) == sent + 1
    shot(page, "sign_in-second_factor")
    field(page, "code").fill(newest_code(engine))
    press(page, "次へ")
    heading(page, "サインインしました")
    cookie = session_cookie(page)
    assert cookie is not None
    assert engine.admin_logins(cookie["value"])[0]["two_factor"] is True


def test_admin_transfers_the_admin_role(page: Page, engine: regflow.Engine,
                                        clock: regflow.ManualClock) -> None:
    """アカウント管理 → 管理者にする (花子) → 管理者を変更する → done; the page then refuses."""
    register(engine, SEAT, EMAIL)
    clock.advance(60)  # the list is in order of creation: one instant for both would leave it to ids
    register(engine, "abcd8-02", HANA, display_name="花子")
    clock.advance(PROVISIONING)
    sign_in(page)
    page.goto("/admin")
    heading(page, "アカウント管理")
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0).locator("button")).to_have_count(0)  # nothing on oneself
    hana = rows.filter(has_text=HANA)
    expect(hana.locator("td").nth(1)).to_have_text("なし")
    expect(hana.get_by_role("button")).to_have_text(["削除", "管理者にする"])
    shot(page, "admin-logins")
    page.set_viewport_size({"width": 1120, "height": 900})  # the table whole, as on a desktop
    shot(page, "admin-logins-wide")
    page.set_viewport_size({"width": 480, "height": 900})

    click(page, hana.get_by_role("button", name="管理者にする"))
    heading(page, "管理者の変更")
    expect(page.locator("p.text")).to_contain_text("花子（hana@example.jp）")
    shot(page, "transfer_admin-confirm")
    press(page, "管理者を変更する")
    heading(page, "管理者を変更しました")
    expect(page.locator("ul.after a")).to_have_attribute("href", "/admin")
    shot(page, "transfer_admin-done")

    answer = page.goto("/admin")
    assert answer is not None
    assert answer.status == 403
    heading(page, "アカウント管理を利用できません")
    expect(page.get_by_role("navigation").get_by_role("link", name="アカウント管理")).to_have_count(0)
    shot(page, "admin-forbidden")


def test_english_screens(page: Page) -> None:
    """``?lang=en``: English texts and ``<html lang="en">``, kept on the next screen."""
    launch(page, "&lang=en")
    heading(page, "Sign in")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("button[name=event]")).to_have_text(
        ["Sign in", "No account? Create one", "Forgot your password?"])
    expect(page.get_by_role("link", name="日本語")).to_have_attribute("hreflang", "ja")
    shot(page, "sign_in-credentials-en")
    press(page, "No account? Create one")
    heading(page, "Create an account")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    shot(page, "registration-enter_email-en")


def test_keyboard_reaches_the_fields_and_enter_signs_in(page: Page, engine: regflow.Engine,
                                                        clock: regflow.ManualClock) -> None:
    """Tab reaches the e-mail, then the password; Enter presses the primary action (サインイン)."""
    ready_login(engine, clock)
    launch(page)
    heading(page, "サインイン")
    passed = []  # what Tab stops at before the e-mail: only the header's language link
    for _ in range(5):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "f-email":
            break
        passed.append(page.evaluate("document.activeElement.textContent.trim()"))
    expect(field(page, "email")).to_be_focused()
    assert passed == ["English"]
    page.keyboard.type(EMAIL)
    page.keyboard.press("Tab")
    expect(field(page, "password")).to_be_focused()
    page.keyboard.type(PASSWORD)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    heading(page, "確認")  # the link prompt: the credentials were submitted, not 作成
    expect(page.locator("p.text")).to_contain_text("アカウントと ASP ユーザーの紐づけが必要です。")


def test_email_already_registered(page: Page, engine: regflow.Engine) -> None:
    """An address that has a login: the password prompt of SPEC 2.1.2, then another address."""
    register(engine, SEAT, EMAIL)
    launch(page, account="abcd8-02")
    press(page, "アカウントをお持ちでない場合、作成できます")
    field(page, "email").fill(EMAIL)
    press(page, "次へ")
    heading(page, "パスワードの入力")
    expect(page.locator("p.text")).to_contain_text(f"{EMAIL} はすでに登録されています。")
    expect(page.locator("p.text")).to_contain_text("この画面が出たら別のメールアドレスでやり直してください")
    expect(field(page, "current_password")).to_have_attribute("type", "password")
    expect(page.get_by_role("button", name="パスワードを忘れた方はこちら")).to_be_visible()
    shot(page, "registration-email_taken")
    press(page, "戻る")
    heading(page, "アカウントの作成")


def test_password_reset(page: Page, engine: regflow.Engine, clock: regflow.ManualClock) -> None:
    """パスワードを忘れた方はこちら → e-mail → code → new password → done; it signs in."""
    ready_login(engine, clock)
    launch(page)
    press(page, "パスワードを忘れた方はこちら")
    heading(page, "パスワードのリセット")
    shot(page, "password_reset-enter_email")
    field(page, "email").fill(EMAIL)
    press(page, "次へ")
    heading(page, "コードの入力")
    shot(page, "password_reset-enter_code")
    field(page, "code").fill(newest_code(engine))
    press(page, "次へ")
    heading(page, "新しいパスワード")
    shot(page, "password_reset-new_password")
    field(page, "password").fill(NEW_PASSWORD)
    field(page, "password_confirm").fill(NEW_PASSWORD)
    press(page, "次へ")
    heading(page, "パスワードを変更しました")
    shot(page, "password_reset-done")
    sign_in(page, password=NEW_PASSWORD)


def test_the_remaining_screens(chromium: Browser, page: Page, engine: regflow.Engine,
                               clock: regflow.ManualClock) -> None:
    """The ends of a registration, the other admin flows and, before 2026-02-02, the legacy way."""
    launch(page)  # 作成 → キャンセル
    press(page, "アカウントをお持ちでない場合、作成できます")
    press(page, "キャンセル")
    heading(page, "キャンセルしました")
    shot(page, "registration-cancelled")

    launch(page)  # an hour without activity
    press(page, "アカウントをお持ちでない場合、作成できます")
    heading(page, "アカウントの作成")
    clock.advance(3600)
    page.reload()
    heading(page, "有効期限が切れました")
    shot(page, "registration-expired")

    snap = to_details(engine, EMAIL)  # five contract mismatches
    for _ in range(5):
        snap = engine.send(snap, "submit", details(customer_id="289999"))
    assert snap.state == "failed", snap.screen.messages
    open_flow(page, snap)
    heading(page, "手続きを完了できませんでした")
    expect(page.locator("p.msg.error")).to_have_count(1)
    shot(page, "registration-failed")

    register(engine, SEAT, EMAIL)  # the admin, then 花子 on abcd8-02, linked by her first sign-in
    clock.advance(60)
    register(engine, "abcd8-02", HANA, display_name="花子")
    clock.advance(PROVISIONING)
    attempt = engine.start("sign_in", {"account": "abcd8-02"})
    attempt = engine.send(attempt, "submit", {"email": HANA, "password": PASSWORD})
    assert attempt.state == "link_prompt", attempt.screen.messages
    assert engine.send(attempt, "submit", {}).state == "signed_in"
    sign_in(page)

    def hana_button(label: str) -> None:
        page.goto("/admin")
        heading(page, "アカウント管理")
        click(page, page.locator("tbody tr").filter(has_text=HANA).get_by_role("button", name=label))

    for _ in range(10):  # 花子's address locked out after 10 wrong passwords: ロック解除 appears
        wrong = engine.start("sign_in", {"account": "abcd8-02"})
        engine.send(wrong, "submit", {"email": HANA, "password": "Wrong-pass-1"})
    hana_button("ロック解除")
    heading(page, "ロックの解除")
    expect(page.locator("p.text")).to_contain_text("花子（hana@example.jp）")
    shot(page, "unlock_login-confirm")
    press(page, "ロックを解除する")
    heading(page, "ロックを解除しました")
    shot(page, "unlock_login-done")

    hana_button("紐づけ解除")
    heading(page, "紐づけの解除")
    expect(page.locator("p.text")).to_contain_text("abcd8-02")
    shot(page, "unlink_login-confirm")
    press(page, "紐づけを解除する")
    heading(page, "紐づけを解除しました")
    shot(page, "unlink_login-done")

    hana_button("削除")
    heading(page, "ログイン情報の削除")
    expect(page.locator("p.text")).to_contain_text("花子（hana@example.jp）")
    shot(page, "delete_login-confirm")
    press(page, "削除する")
    heading(page, "ログイン情報を削除しました")
    shot(page, "delete_login-done")

    page.goto("/admin")
    expect(page.locator("tbody tr")).to_have_count(1)
    press(page, "すべてのアカウントの二段階認証を設定する")
    heading(page, "二段階認証の設定（全アカウント）")
    shot(page, "require_two_factor-confirm")
    page.get_by_label("二段階認証を有効にする").check()
    press(page, "保存する")
    heading(page, "設定を保存しました")
    shot(page, "require_two_factor-done")

    early = regflow.Engine.from_url("memory://", mail="memory", hasher="fast", product=PRODUCT,
                                    clock=regflow.ManualClock(datetime(2026, 1, 20, tzinfo=UTC)))
    early.contracts.add(**CONTRACT)
    with serving(create_app(early)) as base:  # before the enforcement date: アカウントなしで続行
        context = chromium.new_context(base_url=base, viewport={"width": 480, "height": 900},
                                       device_scale_factor=1, locale="ja-JP")
        try:
            tab = context.new_page()
            launch(tab)
            heading(tab, "サインイン")
            legacy = tab.get_by_role("button", name="アカウントなしで続行", exact=True)
            expect(legacy).to_be_visible()
            shot(tab, "sign_in-credentials-legacy")
            click(tab, legacy)
            heading(tab, "アカウントなしで続行します")
            shot(tab, "sign_in-legacy")
        finally:
            context.close()


def test_a_flow_opens_only_in_the_browser_that_started_it(chromium: Browser, page: Page) -> None:
    """The launch leaves the flow's token in an HttpOnly, SameSite=Lax cookie for that flow's
    page only; another browser opening the same address gets the page-not-found page."""
    answer = page.goto(f"/?account={SEAT}")
    assert answer is not None
    assert answer.headers["x-frame-options"] == "DENY"
    heading(page, "サインイン")
    path = re.sub(r"^https?://[^/]+", "", page.url)
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "regflow_flow"]
    assert (cookie["path"], cookie["httpOnly"], cookie["sameSite"]) == (path, True, "Lax")
    assert cookie["secure"] is False
    assert page.evaluate("document.cookie") == ""
    base = page.url.removesuffix(path)
    other = chromium.new_context(base_url=base, locale="ja-JP")
    try:
        tab = other.new_page()
        stolen = tab.goto(path)
        assert stolen is not None
        assert stolen.status == 404
        heading(tab, "ページが見つかりません")
    finally:
        other.close()
    page.reload()
    heading(page, "サインイン")
