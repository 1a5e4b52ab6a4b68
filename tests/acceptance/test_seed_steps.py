"""The guide's 設定手順 ① – ⑧ (and what it says before them), one test per statement, from its text.

Where the guide shows a screen, the test reads it in chromium; where it quotes wording, the test
looks for that wording on the screen. docs/seed.md maps every item of the guide to its test.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from flows import (
    CUSTOMER_ID,
    DISPLAY_NAME,
    PASSWORD,
    TEL,
    codes_in,
    details,
    last_code,
    logins_of,
    plain_body,
)
from guide import (
    EMAIL,
    ENGINE_WORDING,
    HANA,
    PRODUCT,
    PROVISIONING,
    SEAT,
    SENDER,
    control,
    field,
    fill_details,
    flow_of,
    heading,
    label_of,
    launch,
    mails,
    open_flow,
    page_text,
    press,
    ready,
    register,
    screen_text,
    session_cookie,
    sign_in,
    to_details,
)

import regflow

if TYPE_CHECKING:
    from conftest import EngineMaker, Site
    from playwright.sync_api import Page

LINK_PROMPT = ("アカウントと ASP ユーザーの紐づけが必要です。"
               "このアカウントを現在使用している ASP ユーザーと紐づけますか？")
PROVISIONING_TEXT = "アカウントの設定をしています。10分ほどしたらメニュー右上からログインしてください"


def _details_error(engine: regflow.Engine, **overrides: str) -> list[tuple[str | None, str]]:
    """Submit 詳細の追加 with some values replaced on a fresh registration: (field, text) of its
    errors; the flow must stay on 詳細の追加."""
    snap = to_details(engine, f"try{len(mails(engine))}@example.jp")
    snap = engine.send(snap, "submit", details(**overrides))
    assert snap.state == "details", (overrides, snap.state)
    return [(m.field, m.text) for m in snap.screen.errors]


def _accepted(engine: regflow.Engine, account: str, email: str, **overrides: str) -> bool:
    """Whether 詳細の追加 with these values moves on to 確認 (a registration of its own)."""
    snap = to_details(engine, email, account)
    return engine.send(snap, "submit", details(**overrides)).state == "provisioning"


# ---- ① the launch ------------------------------------------------------------------------------


def test_step_1_launch_offers_create_account(site: Site, page: Page) -> None:
    """①「事前アカウント登録がされていない状態で、2026 年 2 月 2 日以降社労法務システムへログインを
    すると、下の画面が表示されるので「アカウントをお持ちでない場合、作成できます」をクリックして
    ください。」"""
    launch(page)
    heading(page, "サインイン")
    assert PRODUCT in page_text(page)
    create = control(page, "アカウントをお持ちでない場合、作成できます")
    assert create.is_visible()
    assert control(page, "アカウントなしで続行").count() == 0  # 2026-03-02: past 2026-02-02
    press(page, "アカウントをお持ちでない場合、作成できます")
    assert field(page, "email").is_visible()  # ② follows
    assert field(page, "password").count() == 0


# ---- ② the address -----------------------------------------------------------------------------


def test_step_2_email_field_and_next(site: Site, page: Page) -> None:
    """②「「メールアドレス」欄に、次世代社労法務システムアカウントに紐づける（ログインする）
    メールアドレスを入力し「次へ」をクリックしてください。」"""
    launch(page)
    press(page, "アカウントをお持ちでない場合、作成できます")
    assert "メールアドレス" in label_of(page, "email")
    field(page, "email").fill(EMAIL)
    press(page, "次へ")
    heading(page, "コードの入力")
    mail = mails(site.settled())[-1]
    assert mail["To"] == EMAIL


# ---- ④ the code mail ---------------------------------------------------------------------------


def test_step_4_code_mail_valid_30_minutes(engine: regflow.Engine) -> None:
    """④「入力したメールアドレス宛にアカウント確認コードが届くのでご確認ください。」— the mail:
    「アカウント確認コード」「コードが使用できるのは 30 分間のみです。」「アカウント確認コード:
    11693810」(8 digits)「コードを要求していない場合は、このメールは無視できます。」, from the
    sender to allow (here the configured one, see docs/seed.md)."""
    snap = engine.start("registration", {"account": SEAT})
    engine.send(snap, "submit", {"email": EMAIL})
    (mail,) = mails(engine)
    body = plain_body(mail)
    assert mail["To"] == EMAIL
    assert mail["From"] == SENDER
    assert "アカウント確認コード" in mail["Subject"]
    assert PRODUCT in mail["Subject"]
    assert f"{PRODUCT} のアプリとリソースにアクセスするには" in body
    assert "コードが使用できるのは 30 分間のみです。" in body
    assert re.search(r"アカウント確認コード: ?[0-9]{8}(?![0-9])", body)
    assert len(codes_in(mail)) == 1
    assert "コードを要求していない場合は、このメールは無視できます。" in body


def test_step_4_code_usable_only_30_minutes(engine: regflow.Engine, clock: regflow.ManualClock) -> None:
    """④「コードが使用できるのは 30 分間のみです。」— one second before 30 minutes the code works;
    at 30 minutes it is expired (and a new one can be sent)."""
    early = engine.start("registration", {"account": SEAT})
    early = engine.send(early, "submit", {"email": EMAIL})
    early_code = last_code(engine)
    late = engine.start("registration", {"account": "abcd8-02"})
    late = engine.send(late, "submit", {"email": HANA})
    late_code = last_code(engine)

    clock.advance(30 * 60 - 1)
    assert engine.send(early, "submit", {"code": early_code}).state == "details"
    clock.advance(1)
    expired = engine.send(late, "submit", {"code": late_code})
    assert expired.state == "enter_code"
    assert [m.id for m in expired.screen.errors] == ["code_expired"]
    assert "resend_code" in [a.event for a in expired.screen.actions]


# ---- ⑤ the code screen -------------------------------------------------------------------------


def test_step_5_code_screen_shows_address_and_next(site: Site, page: Page) -> None:
    """⑤「社労法務システム の画面に戻り、メールで届いたアカウント確認コードを入力またはコピーペースト
    し「次へ」をクリックします。」— the screen: 「コードの入力」「sample@aaa.com にコードを送信しました」,
    the code field, 「次へ」."""
    launch(page)
    press(page, "アカウントをお持ちでない場合、作成できます")
    field(page, "email").fill(EMAIL)
    press(page, "次へ")
    heading(page, "コードの入力")
    assert "sample@aaa.com にコードを送信しました" in screen_text(page)
    assert "コードの入力" in label_of(page, "code")
    assert control(page, "次へ").is_visible()
    field(page, "code").click()
    page.keyboard.insert_text(last_code(site.settled()))  # コピーペースト
    press(page, "次へ")
    heading(page, "詳細の追加")


def test_step_5_registered_address_asks_password(site: Site, page: Page) -> None:
    """⑤ < 先に進まない場合 >「すでに登録されているメールアドレスを入力した場合、上の画面が表示され
    ず、パスワードを求める下の画面が表示されます。使用できるメールアドレスは 1 回のみとなります
    ので、一度画面を閉じて、別のメールアドレスでアカウント登録を行って下さい」— the screen:
    「パスワードの入力」, パスワード, 「パスワードを忘れた方はこちら」, 「サインイン」,「この画面が
    出たら別のメールアドレスでやり直してください」."""
    register(site.engine, SEAT, EMAIL)
    sent = len(mails(site.settled()))
    launch(page, "abcd8-02")
    press(page, "アカウントをお持ちでない場合、作成できます")
    field(page, "email").fill(EMAIL)
    press(page, "次へ")
    heading(page, "パスワードの入力")
    text = screen_text(page)
    assert "別のメールアドレスでやり直してください" in text
    assert "使用できるメールアドレスは 1 回のみ" in text
    assert field(page, "current_password").is_visible()
    assert field(page, "current_password").get_attribute("type") == "password"
    assert "パスワード" in label_of(page, "current_password")
    assert control(page, "サインイン").is_visible()
    assert control(page, "パスワードを忘れた方はこちら").is_visible()
    assert control(page, "戻る").is_visible()
    assert len(mails(site.settled())) == sent  # no code to an address already registered


def test_step_5_registered_address_back_to_another_address(site: Site, page: Page) -> None:
    """⑤ < 先に進まない場合 >「…別のメールアドレスでアカウント登録を行って下さい」— back from the
    password screen, another address gets its code."""
    register(site.engine, SEAT, EMAIL)
    launch(page, "abcd8-02")
    press(page, "アカウントをお持ちでない場合、作成できます")
    field(page, "email").fill(EMAIL)
    press(page, "次へ")
    heading(page, "パスワードの入力")
    press(page, "戻る")
    field(page, "email").fill(HANA)
    press(page, "次へ")
    heading(page, "コードの入力")
    assert f"{HANA} にコードを送信しました" in screen_text(page)
    assert mails(site.settled())[-1]["To"] == HANA


def test_step_5_registered_address_right_password_leads_to_link_prompt(
        site: Site, page: Page, clock: regflow.ManualClock) -> None:
    """⑤ < 先に進まない場合 > the password screen asks 「パスワード」 and offers 「サインイン」: whoever
    registered the address before (事前アカウント登録) and never linked it signs in there, and
    ⑧'s prompt follows: 「アカウントと ASP ユーザーの紐づけが必要です。…」 → OK → signed in."""
    ready(site.engine, clock, (SEAT, EMAIL))  # registered, never signed in: not linked
    launch(page)
    press(page, "アカウントをお持ちでない場合、作成できます")
    field(page, "email").fill(EMAIL)
    press(page, "次へ")
    heading(page, "パスワードの入力")
    field(page, "current_password").fill(PASSWORD)
    press(page, "サインイン")
    heading(page, "確認")
    assert LINK_PROMPT in screen_text(page)
    flow_id, token = flow_of(page)
    assert site.engine.get(flow_id, token=token).flow == "sign_in"
    press(page, "OK")
    heading(page, "サインインしました")
    session = session_cookie(page)
    assert session is not None
    (login,) = site.engine.admin_logins(session)
    assert login["account"] == SEAT


def test_step_5_conceal_option_hides_a_registered_address(new_engine: EngineMaker) -> None:
    """⑤ < 先に進まない場合 > — regflow's ``existing_email = "conceal"`` deliberately differs from
    the guide (docs/seed.md): a registered address gets the same 「コードの入力」 screen as any
    other, and its owner a notice instead of a code."""
    engine = new_engine(settings={"registration": {"existing_email": "conceal"}})
    register(engine, SEAT, EMAIL)
    snap = engine.start("registration", {"account": "abcd8-02"})
    snap = engine.send(snap, "submit", {"email": EMAIL})
    assert (snap.state, snap.screen.title) == ("enter_code", "コードの入力")
    assert snap.screen.text == "sample@aaa.com にコードを送信しました"
    notice = mails(engine)[-1]
    assert notice["To"] == EMAIL
    assert codes_in(notice) == []
    assert "登録済み" in notice["Subject"]


# ---- ⑥ 詳細の追加 ------------------------------------------------------------------------------


def test_step_6_details_screen_wording(site: Site, page: Page) -> None:
    """⑥「「詳細の追加」画面が表示されるので以下①～⑤を入力して「次へ」をクリックしてください。」—
    「詳細の追加」「アカウントをセットアップするには、もう少し情報が必要です。」, パスワード,
    パスワードを再入力してください, CustomerId, 表示名, Tel, 「キャンセル」「次へ」."""
    open_flow(page, to_details(site.engine))
    heading(page, "詳細の追加")
    assert "アカウントをセットアップするには、もう少し情報が必要です。" in screen_text(page)
    labels = {name: label_of(page, name)
              for name in ("password", "password_confirm", "customer_id", "display_name", "tel")}
    assert labels["password"].startswith("パスワード")
    assert labels["password_confirm"].startswith("パスワードを再入力してください")
    assert labels["customer_id"].startswith("CustomerId")
    assert labels["display_name"].startswith("表示名")
    assert labels["tel"].startswith("Tel")
    assert control(page, "キャンセル").is_visible()
    assert control(page, "次へ").is_visible()
    fill_details(page)
    press(page, "次へ")
    heading(page, "確認")


def test_step_6_password_at_least_8_characters(engine: regflow.Engine) -> None:
    """⑥ ①「パスワードは以下の条件を満たす文字列です。(1) 8 文字以上」"""
    assert [f for f, _ in _details_error(engine, password="Kx7#mPq")] == ["password"]
    assert _accepted(engine, SEAT, EMAIL, password="Kx7#mPqz")


def test_step_6_password_3_of_4_classes(engine: regflow.Engine) -> None:
    """⑥ ①「(2) 小文字、大文字、数字、記号のうち少なくとも 3 種類を含める」— any three of the four
    pass, two do not."""
    for two in ("kxqmpqzwvt", "kxqmpqzw73", "KXQMPQZW#!", "73915026#!", "kxqmpqzw#!", "KXQMPQZW73"):
        errors = _details_error(engine, password=two)
        assert [f for f, _ in errors] == ["password"], two
        assert "少なくとも 3 種類" in errors[0][1], two
    for account, email, three in (("abcd8-01", "a@example.jp", "Kxqmpqz7"),  # lower upper digit
                                  ("abcd8-02", "b@example.jp", "Kxqmpqz#"),  # lower upper symbol
                                  ("abcd8-03", "c@example.jp", "kxqmpq7#")):  # lower digit symbol
        assert _accepted(engine, account, email, password=three), three
    engine.contracts.add(customer_id="285555", phone="06-1111-2222", licenses=1, accounts=["efgh1-01"])
    assert _accepted(engine, "efgh1-01", "d@example.jp", password="KXQMPQ7#",  # upper digit symbol
                     customer_id="285555", tel="06-1111-2222")


def test_step_6_password_rule_stricter_than_the_guide(engine: regflow.Engine) -> None:
    """⑥ ①「パスワードは以下の条件を満たす文字列です。(1) 8 文字以上 (2) …3 種類を含める」— regflow
    is deliberately stricter (docs/seed.md): passwords of that shape that are common, or that
    contain the address or the customer number, are refused too."""
    refused = {
        "Password1": "このパスワードはよく使われているため使用できません。",
        "Qwerty123!": "このパスワードはよく使われているため使用できません。",
        "Xq281234#z": "パスワードにお客様番号を含めることはできません。",
    }
    for password, text in refused.items():
        assert _details_error(engine, password=password) == [("password", text)], password
    snap = to_details(engine, "sample@aaa.com")
    snap = engine.send(snap, "submit", details(password="Sample@aaa1"))
    assert [(m.field, m.text) for m in snap.screen.errors] == [
        ("password", "パスワードにメールアドレスの一部を含めることはできません。")]


def test_step_6_password_reentry_must_match(engine: regflow.Engine) -> None:
    """⑥ ②「①で入力したパスワードを再入力してください」"""
    errors = _details_error(engine, password=PASSWORD, password_confirm=PASSWORD + "x")
    assert [f for f, _ in errors] == ["password_confirm"]


def test_step_6_customer_number_starts_28_six_digits(engine: regflow.Engine) -> None:
    """⑥ ③「お客様番号を入力してください。」「※お客様番号は 28 から始まる 6 桁の数字です」"""
    for wrong in ("381234", "28123", "2812345", "28123a"):
        errors = _details_error(engine, customer_id=wrong)
        assert errors == [("customer_id", "お客様番号は 28 から始まる 6 桁の数字です。")], wrong
    assert _accepted(engine, SEAT, EMAIL, customer_id=CUSTOMER_ID)


def test_step_6_display_name_1_to_256_characters(engine: regflow.Engine) -> None:
    """⑥ ④「アカント一覧で表示される名を入力してください。・日本語、アルファベット、数字すべて使用
    可能 ・1 文字～256 文字登録可能」"""
    assert [f for f, _ in _details_error(engine, display_name="")] == ["display_name"]
    assert [f for f, _ in _details_error(engine, display_name="山" * 257)] == ["display_name"]
    assert _accepted(engine, "abcd8-01", "a@example.jp", display_name="山田Taro2")
    assert _accepted(engine, "abcd8-02", "b@example.jp", display_name="Y")
    assert _accepted(engine, "abcd8-03", "c@example.jp", display_name="山" * 256)
    names = sorted(row.display_name for row in logins_of(engine))
    assert names == sorted(["山田Taro2", "Y", "山" * 256])


def test_step_6_tel_with_or_without_hyphens(engine: regflow.Engine) -> None:
    """⑥ ⑤「ご契約の電話番号を入力してください。ハイフンあり、なし、どちらでも結構です」"""
    assert _accepted(engine, "abcd8-01", "a@example.jp", tel=TEL)  # 03-1234-5678
    assert _accepted(engine, "abcd8-02", "b@example.jp", tel=TEL.replace("-", ""))


def test_step_6_cancel_ends_registration(engine: regflow.Engine) -> None:
    """⑥「キャンセル 次へ」— キャンセル ends the registration; nothing is registered."""
    snap = engine.send(to_details(engine), "cancel", {})
    assert snap.status == "cancelled"
    assert logins_of(engine) == []


# ---- ⑦ 確認 ------------------------------------------------------------------------------------


def test_step_7_confirmation_dialog_ok_leads_to_sign_in(site: Site, page: Page) -> None:
    """⑦「登録が正常に完了すると「10 分後にログインからログインしてください」と表示される」— the
    dialog 「確認」「アカウントの設定をしています。10分ほどしたらメニュー右上からログインしてくださ
    い」「OK」; here with the exact time (09:10), and OK leads to the sign-in screen."""
    open_flow(page, to_details(site.engine))
    fill_details(page)
    press(page, "次へ")
    heading(page, "確認")
    text = page.locator("p.text").inner_text()
    assert text.startswith(PROVISIONING_TEXT), text
    assert "09:10" in text.removeprefix(PROVISIONING_TEXT)
    assert ENGINE_WORDING not in page_text(page)
    press(page, "OK")
    heading(page, "サインイン")
    assert field(page, "email").input_value() == EMAIL
    flow_id, token = flow_of(page)
    assert site.engine.get(flow_id, token=token).flow == "sign_in"


def test_step_7_ready_time_rounded_up_to_the_minute(engine: regflow.Engine,
                                                    clock: regflow.ManualClock) -> None:
    """⑦「10分ほどしたらメニュー右上からログインしてください」— registered at 09:00:30, the dialog
    names 09:11 (09:10 would be before the account is ready)."""
    clock.advance(30)
    snap = engine.send(to_details(engine), "submit", details())
    assert snap.state == "provisioning"
    text = snap.screen.text or ""
    assert text.startswith(PROVISIONING_TEXT), text
    assert "09:11" in text
    assert "09:10" not in text


def test_step_7_sign_in_only_after_10_minutes(engine: regflow.Engine,
                                              clock: regflow.ManualClock) -> None:
    """⑦「10 分以上経過してからログインをしてください。」— at 9 min 59 s the sign-in is refused
    (still being set up), at 10 minutes it goes on."""
    register(engine)
    clock.advance(PROVISIONING - 1)
    early = engine.start("sign_in", {"account": SEAT})
    early = engine.send(early, "submit", {"email": EMAIL, "password": PASSWORD})
    assert early.state == "credentials"
    assert [m.id for m in early.screen.errors] == ["not_ready"]
    assert "09:10" in early.screen.errors[0].text
    clock.advance(1)
    later = engine.start("sign_in", {"account": SEAT})
    later = engine.send(later, "submit", {"email": EMAIL, "password": PASSWORD})
    assert later.state == "link_prompt"


# ---- ⑧ the link prompt -------------------------------------------------------------------------


def test_step_8_link_prompt_ok_signs_in(site: Site, page: Page, clock: regflow.ManualClock) -> None:
    """⑧「アカント登録したメールアドレスとパスワードでログインをすると「アカウントと ASP ユーザーの
    紐づけが必要です。このアカウントを現在使用している ASP ユーザーと紐づけますか？」と表示される
    ので OK をクリックしてください。社労法務システムにログインしお使いいただけます。」"""
    ready(site.engine, clock, (SEAT, EMAIL))
    launch(page)
    field(page, "email").fill(EMAIL)
    field(page, "password").fill(PASSWORD)
    press(page, "サインイン")
    heading(page, "確認")
    assert LINK_PROMPT in screen_text(page)
    assert control(page, "キャンセル").is_visible()
    assert control(page, "OK").is_visible()
    assert session_cookie(page) is None
    press(page, "OK")
    heading(page, "サインインしました")
    session = session_cookie(page)
    assert session is not None
    (login,) = site.engine.admin_logins(session)
    assert (login["email"], login["account"]) == (EMAIL, SEAT)


def test_step_8_link_prompt_cancel_does_not_sign_in(engine: regflow.Engine,
                                                    clock: regflow.ManualClock) -> None:
    """⑧ the prompt offers 「キャンセル OK」: キャンセル neither links nor signs in."""
    ready(engine, clock, (SEAT, EMAIL))
    snap = engine.start("sign_in", {"account": SEAT})
    snap = engine.send(snap, "submit", {"email": EMAIL, "password": PASSWORD})
    assert snap.state == "link_prompt"
    snap = engine.send(snap, "cancel", {})
    assert snap.state == "credentials"
    assert snap.session is None
    assert [row.account for row in logins_of(engine)] == [None]


def test_steps_1_to_8_in_the_guide_wording(site: Site, page: Page, clock: regflow.ManualClock) -> None:
    """① – ⑧ in one go in the browser: every page names 次世代社労法務システム, writes 「ASP ユーザー」
    as the guide does (with a space) and never shows the engine's own wording (「次の自動処理は」)."""
    seen: list[str] = []

    def look() -> None:
        text = page_text(page)
        seen.append(text)
        assert PRODUCT in text
        assert PRODUCT in page.title()
        assert "ASPユーザー" not in text
        assert ENGINE_WORDING not in text

    launch(page)
    look()
    press(page, "アカウントをお持ちでない場合、作成できます")
    look()
    field(page, "email").fill(EMAIL)
    press(page, "次へ")
    look()
    field(page, "code").fill(last_code(site.settled()))
    press(page, "次へ")
    look()
    fill_details(page)
    press(page, "次へ")
    heading(page, "確認")
    look()
    press(page, "OK")
    heading(page, "サインイン")
    look()
    clock.advance(PROVISIONING)
    field(page, "email").fill(EMAIL)
    field(page, "password").fill(PASSWORD)
    press(page, "サインイン")
    heading(page, "確認")
    look()
    press(page, "OK")
    heading(page, "サインインしました")
    look()
    assert any("ASP ユーザー" in text for text in seen)
    assert [(row.email, row.account) for row in logins_of(site.engine)] == [(EMAIL, SEAT)]


# ---- before the steps ----------------------------------------------------------------------------


def test_setup_once_per_account(engine: regflow.Engine, clock: regflow.ManualClock) -> None:
    """初回設定手順「この操作は各アカウントで最初に 1 度だけ行っていただきます。」— once the ASP user
    is linked, another registration from it is refused."""
    ready(engine, clock, (SEAT, EMAIL))
    sign_in(engine)
    again = engine.start("registration", {"account": SEAT})
    again = engine.send(again, "submit", {"email": HANA})
    assert again.status == "failed"
    assert [m.id for m in again.screen.errors] == ["seat_registered"]
    assert len(logins_of(engine)) == 1


def test_prep_one_address_per_account(engine: regflow.Engine) -> None:
    """ご用意いただくもの「※複数のアカウントをご利用いただいている場合、同一メールアドレスでの
    アカウント登録はできません。」— the address of abcd8-01 gets no code on abcd8-02."""
    register(engine, SEAT, EMAIL)
    sent = len(mails(engine))
    other = engine.start("registration", {"account": "abcd8-02"})
    other = engine.send(other, "submit", {"email": EMAIL.upper()})
    assert other.state == "email_taken"
    assert len(mails(engine)) == sent
    assert len(logins_of(engine)) == 1


def test_prep_free_mail_address_accepted(engine: regflow.Engine) -> None:
    """ご用意いただくもの「※メール受信ができればフリーアドレスでも構いません。」"""
    register(engine, SEAT, "shaho.taro@gmail.com", display_name=DISPLAY_NAME)
    assert [row.email for row in logins_of(engine)] == ["shaho.taro@gmail.com"]
