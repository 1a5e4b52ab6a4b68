"""What the acceptance tests share: the guide's data and the moves a reader of the guide makes,
in the browser (launch, read the screen, fill a field, press a button) and through the engine.

The guide is ``../shared/seeds/000_3e68ff17a30de17d.txt`` (ASP アカウント登録手順); its numbers
(① … ⑧, FAQ 1 … 13) name the tests. The site runs on a ManualClock at 2026-03-02 00:00 UTC,
09:00 in Tokyo: after the enforcement date (2026-02-02), so the launch leads only to sign-in or
registration.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

from flows import PASSWORD, details, last_code

import regflow
from regflow.ground.screens import Snapshot

if TYPE_CHECKING:  # playwright is imported by the browser fixtures only (skipped without it)
    from playwright.sync_api import Locator, Page

PRODUCT = "次世代社労法務システム"  # the guide's spelling in its steps (its title says 次世代型…)
SENDER = "次世代社労法務システム <account-security-noreply@shaho.example.jp>"  # --mail-from
START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # 09:00 in Asia/Tokyo
ENFORCEMENT = datetime(2026, 2, 1, 15, 0, tzinfo=UTC)  # 2026-02-02 00:00 in Asia/Tokyo
CONTRACT: dict[str, Any] = {"customer_id": "281234", "phone": "03-1234-5678", "licenses": 3,
                            "accounts": ["abcd8-01", "abcd8-02", "abcd8-03"]}
SEAT = "abcd8-01"
EMAIL = "sample@aaa.com"  # the guide's address on the code screen
HANA = "hana@example.jp"
PROVISIONING = 600  # seconds: 「10分ほどしたら」
ENGINE_WORDING = "次の自動処理は"  # the engine's talk, never on a page shown to an end user


# ---- the browser -------------------------------------------------------------------------------


def launch(page: Page, account: str = SEAT) -> None:
    """Start the ASP application on a seat: it opens the sign-in screen (①)."""
    page.goto(f"/?account={account}")


def heading(page: Page, text: str) -> None:
    """The screen's title (its h1) is ``text``."""
    from playwright.sync_api import expect

    expect(page.locator("h1")).to_have_text(text)


def screen_text(page: Page) -> str:
    """Everything the screen (the card under the product line) shows, as the person reads it."""
    return page.locator("main").inner_text()


def page_text(page: Page) -> str:
    """The whole page as the person reads it (the product line included)."""
    return page.locator("body").inner_text()


def control(page: Page, label: str) -> Locator:
    """The button or link labelled exactly ``label`` (the guide draws some buttons as links)."""
    return page.get_by_role("button", name=label, exact=True).or_(
        page.get_by_role("link", name=label, exact=True))


def press(page: Page, label: str) -> None:
    """Press the button (or link) labelled ``label`` and wait for the next page."""
    with page.expect_navigation():
        control(page, label).click()


def field(page: Page, name: str) -> Locator:
    """The input of a field (``<input id="f-NAME">``)."""
    return page.locator(f"#f-{name}")


def label_of(page: Page, name: str) -> str:
    """The text of a field's label."""
    return page.locator(f"label[for='f-{name}']").inner_text()


def open_flow(page: Page, snap: Snapshot) -> None:
    """Open a flow made in-process in the browser (its token as the launch would have left it)."""
    assert snap.flow_token is not None
    path = f"/flows/{snap.id}"
    page.context.add_cookies([{"name": "regflow_flow", "value": snap.flow_token,
                               "domain": "127.0.0.1", "path": path, "httpOnly": True,
                               "sameSite": "Lax"}])
    page.goto(path)


def flow_of(page: Page) -> tuple[str, str]:
    """The id and token of the flow the page shows (its URL and this browser's cookie for it)."""
    path = "/" + page.url.split("/", 3)[3]
    assert path.startswith("/flows/"), page.url
    flow_id = path.removeprefix("/flows/")
    (token,) = [c["value"] for c in page.context.cookies()
                if c["name"] == "regflow_flow" and c["path"] == path]
    return flow_id, token


def session_cookie(page: Page) -> str | None:
    """The sign-in session this browser holds, if any."""
    found = [c["value"] for c in page.context.cookies() if c["name"] == "regflow_session"]
    return found[0] if found else None


def fill_details(page: Page, **overrides: str) -> None:
    """Fill the five fields of 詳細の追加 (the demo contract's, some replaced)."""
    for name, value in details(**overrides).items():
        field(page, name).fill(value)


def sign_in_page(page: Page, email: str = EMAIL, password: str = PASSWORD,
                 account: str = SEAT) -> None:
    """Launch, type the address and the password, サインイン; OK at the link prompt if it comes."""
    launch(page, account)
    field(page, "email").fill(email)
    field(page, "password").fill(password)
    press(page, "サインイン")
    if page.locator("h1").inner_text() == "確認":
        press(page, "OK")
    heading(page, "サインインしました")


# ---- the engine --------------------------------------------------------------------------------


def to_details(engine: regflow.Engine, email: str = EMAIL, account: str = SEAT) -> Snapshot:
    """A registration in-process up to 詳細の追加."""
    snap = engine.start("registration", {"account": account})
    snap = engine.send(snap, "submit", {"email": email})
    assert snap.state == "enter_code", snap.screen.messages
    snap = engine.send(snap, "submit", {"code": last_code(engine)})
    assert snap.state == "details", snap.screen.messages
    return snap


def register(engine: regflow.Engine, account: str = SEAT, email: str = EMAIL,
             **overrides: str) -> Snapshot:
    """A whole registration in-process; the snapshot after 詳細の追加 (確認, provisioning)."""
    snap = engine.send(to_details(engine, email, account), "submit", details(**overrides))
    assert snap.state == "provisioning", snap.screen.messages
    return snap


def ready(engine: regflow.Engine, clock: regflow.ManualClock, *logins: tuple[str, str]) -> None:
    """Register each (seat, address) in turn (a minute apart), then wait the 10 minutes."""
    for account, email in logins:
        register(engine, account, email)
        clock.advance(60)
    clock.advance(PROVISIONING)


def sign_in(engine: regflow.Engine, email: str = EMAIL, account: str = SEAT,
            password: str = PASSWORD) -> Snapshot:
    """Sign in in-process (OK at the link prompt); the signed-in snapshot, its session with it."""
    snap = engine.start("sign_in", {"account": account})
    snap = engine.send(snap, "submit", {"email": email, "password": password})
    if snap.state == "link_prompt":
        snap = engine.send(snap, "submit", {})
    assert snap.state == "signed_in", snap.screen.messages
    assert snap.session is not None
    return snap


def login_id(engine: regflow.Engine, session: str, email: str) -> str:
    """The id of a login of the admin's customer, from the admin's list."""
    (found,) = [row["id"] for row in engine.admin_logins(session) if row["email"] == email]
    return str(found)


def admin_flow(engine: regflow.Engine, flow: str, session: str, target: str) -> Snapshot:
    """An admin flow on a target login, confirmed (submit on its confirm screen)."""
    snap = engine.start(flow, {"target": target}, session=session)
    assert snap.state == "confirm", snap.screen.messages
    return engine.send(snap, "submit", {}, session=session)


def mails(engine: regflow.Engine) -> list[EmailMessage]:
    """Every mail the engine's memory mailer holds, oldest first."""
    mailer: Any = engine.mailer
    return list(mailer.messages)


def texts(snap: Snapshot) -> list[str]:
    """The texts of the screen's messages."""
    return [m.text for m in snap.screen.messages]
