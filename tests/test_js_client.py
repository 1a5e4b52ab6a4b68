"""The JavaScript client (``regflow-client.js``) in chromium: ``regflow/examples/spa.html`` embeds
``<regflow-flow>``, which runs the registration and the sign-in over the JSON API.

The app runs on a real waitress server for an engine on a ManualClock, as in
``test_browser.py``; the example page is served next to it under the pages' policy
``default-src 'self'`` (a route added to the app for the tests).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from chromium import unavailable

if (_why := unavailable()) is not None:
    pytest.skip(_why, allow_module_level=True)

from flask import Flask, Response
from flows import DISPLAY_NAME, PASSWORD, last_code, mail_count, wrong_code
from live_server import serving
from playwright.sync_api import Browser, Locator, Page, Request, Route, expect

import regflow
from regflow.web import create_app, wait_for_mail

START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # 09:00 in Asia/Tokyo
CONTRACT: dict[str, Any] = {"customer_id": "281234", "phone": "03-1234-5678", "licenses": 3,
                            "accounts": ["abcd8-01", "abcd8-02", "abcd8-03"]}
EMAIL = "sample@aaa.com"
PROVISIONING = 600
EXAMPLE = Path(__file__).parent.parent / "regflow" / "examples" / "spa.html"
APPS: dict[int, Flask] = {}


@pytest.fixture
def clock() -> regflow.ManualClock:
    """A clock the tests move by hand."""
    return regflow.ManualClock(START)


@pytest.fixture
def engine(clock: regflow.ManualClock) -> regflow.Engine:
    """An engine in memory with the demo contract."""
    built = regflow.Engine.from_url("memory://", mail="memory", hasher="fast", clock=clock)
    built.contracts.add(**CONTRACT)
    return built


def example_app(engine: regflow.Engine) -> Flask:
    """The app, also serving the example page at ``/spa`` under ``default-src 'self'``."""
    app = create_app(engine)

    def spa() -> Response:
        return Response(EXAMPLE.read_text(encoding="utf-8"), mimetype="text/html",
                        headers={"Content-Security-Policy": "default-src 'self'"})

    app.add_url_rule("/spa", "spa", spa)
    return app


@pytest.fixture
def serve(chromium: Browser, engine: regflow.Engine) -> Iterator[Any]:
    """Opens tabs (Japanese by default) on a real server for the engine; no console complaints."""
    app = APPS[id(engine)] = example_app(engine)
    complaints: list[str] = []
    contexts = []
    with serving(app) as base:

        def open_tab(locale: str = "ja-JP") -> Page:
            context = chromium.new_context(base_url=base, locale=locale)
            context.set_default_timeout(10_000)
            contexts.append(context)
            tab = context.new_page()
            tab.on("console", lambda m: complaints.append(m.text) if m.type in ("error", "warning")
                   and not m.text.startswith("Failed to load resource") else None)
            tab.on("pageerror", lambda error: complaints.append(str(error)))
            return tab

        try:
            yield open_tab
        finally:
            for context in contexts:
                context.close()
            del APPS[id(engine)]
    assert complaints == []


@pytest.fixture
def page(serve: Any) -> Page:
    """A Japanese tab on the example page, its first screen shown."""
    tab: Page = serve()
    tab.goto("/spa")
    heading(tab, "サインイン")
    return tab


def settled(engine: regflow.Engine) -> regflow.Engine:
    """The engine, once the server delivered the mail of every request answered so far."""
    assert wait_for_mail(APPS[id(engine)])
    return engine


def heading(page: Page, text: str) -> None:
    """The element's title is ``text``."""
    expect(page.locator("regflow-flow h2")).to_have_text(text)


def press(page: Page, label: str) -> None:
    """Press the element's button labelled ``label`` exactly."""
    page.locator("regflow-flow").get_by_role("button", name=label, exact=True).click()


def field(page: Page, name: str) -> Locator:
    """The element's input of a field."""
    return page.locator(f"regflow-flow input[name={name}]")


def test_the_client_is_served_and_shipped() -> None:
    """``/static/regflow-client.js`` is the module (JavaScript, no-cache), its types too."""
    engine = regflow.Engine.from_url("memory://", mail="memory", hasher="fast")
    client = create_app(engine).test_client()
    reply = client.get("/static/regflow-client.js")
    assert reply.status_code == 200
    assert reply.mimetype == "text/javascript"
    assert b"customElements.define(\"regflow-flow\"" in reply.data
    assert client.get("/static/regflow-client.d.ts").status_code == 200
    assert client.get("/static/other.js").status_code == 404


def test_registration_and_sign_in_through_the_element(page: Page, engine: regflow.Engine,
                                                      clock: regflow.ManualClock) -> None:
    """Sign-in → 作成 (a hand-over) → e-mail → code (a wrong one first) → details (a 422 with the
    error next to its field, focused) → 確認's OK (a hand-over back) → sign-in → link → signed
    in, with a ``session`` event."""
    page.evaluate("() => { window.sessions = []; document.addEventListener("
                  "'session', (e) => window.sessions.push(e.detail.session)); }")
    press(page, "アカウントをお持ちでない場合、作成できます")
    heading(page, "アカウントの作成")
    expect(field(page, "email")).to_have_attribute("autocomplete", "email")
    expect(page.get_by_label("メールアドレス")).to_have_attribute("type", "email")
    field(page, "email").fill(EMAIL)
    press(page, "次へ")

    heading(page, "コードの入力")
    expect(page.locator("regflow-flow p.text")).to_have_text(f"{EMAIL} にコードを送信しました")
    code = last_code(settled(engine))
    field(page, "code").fill(wrong_code(code))
    press(page, "次へ")
    expect(page.locator("regflow-flow p.msg.error").first).to_contain_text("コードが正しくありません")
    field(page, "code").fill(code)
    press(page, "次へ")

    heading(page, "詳細の追加")
    customer_id = field(page, "customer_id")
    customer_id.fill("２８１２３４")  # full-width digits pass the widened pattern
    assert customer_id.evaluate("box => box.checkValidity()") is True
    customer_id.fill("28123")
    assert customer_id.evaluate("box => box.checkValidity()") is False
    field(page, "password").fill(PASSWORD)
    field(page, "password_confirm").fill("Kx7#mPq2wY")
    customer_id.fill("281234")
    field(page, "display_name").fill(DISPLAY_NAME)
    field(page, "tel").fill("03-1234-5678")
    press(page, "次へ")
    confirm = field(page, "password_confirm")
    expect(confirm).to_have_attribute("aria-invalid", "true")
    expect(confirm).to_be_focused()
    error_id = confirm.get_attribute("aria-describedby")
    assert error_id is not None
    expect(page.locator(f"[id='{error_id.split()[-1]}']")).to_have_text("パスワードが一致しません。")
    expect(customer_id).to_have_value("281234")
    field(page, "password").fill(PASSWORD)
    confirm.fill(PASSWORD)
    press(page, "次へ")

    heading(page, "確認")
    expect(page.locator("regflow-flow button")).to_have_text(["OK"])
    press(page, "OK")  # provisioning's OK hands over to the seat's sign-in
    heading(page, "サインイン")
    expect(field(page, "email")).to_have_value(EMAIL)

    clock.advance(PROVISIONING)
    field(page, "password").fill(PASSWORD)
    press(page, "サインイン")
    heading(page, "確認")
    expect(page.locator("regflow-flow p.text")).to_contain_text("abcd8-01")
    assert page.evaluate("() => window.sessions") == []
    press(page, "OK")
    heading(page, "サインインしました")
    sessions = page.evaluate("() => window.sessions")
    assert len(sessions) == 1
    assert sessions[0]
    assert page.evaluate("() => document.querySelector('regflow-flow').snapshot.session") == sessions[0]


def test_an_event_the_state_does_not_take_refetches(page: Page) -> None:
    """A 409 (``resend_code`` on the e-mail screen): the flow is fetched again and shown."""
    press(page, "アカウントをお持ちでない場合、作成できます")
    heading(page, "アカウントの作成")
    asked: list[tuple[str, str]] = []
    page.on("request", lambda r: asked.append((r.method, r.url.split("?")[0].rsplit("/", 1)[-1])))
    with page.expect_response(lambda r: r.status == 409):
        page.evaluate("() => document.querySelector('regflow-flow').send('resend_code')")
    heading(page, "アカウントの作成")
    expect(page.locator("regflow-flow button").first).to_be_enabled()
    assert asked[0] == ("POST", "resend_code")
    assert asked[1][0] == "GET"


def test_an_ended_flow_shows_its_last_screen(page: Page) -> None:
    """A 410 (an event after the flow was cancelled elsewhere): its snapshot is shown."""
    press(page, "アカウントをお持ちでない場合、作成できます")
    heading(page, "アカウントの作成")
    page.evaluate("() => document.querySelector('regflow-flow').client.send('cancel')")
    field(page, "email").fill(EMAIL)
    with page.expect_response(lambda r: r.status == 410):
        press(page, "次へ")
    expect(page.locator("regflow-flow .regflow")).to_have_attribute("data-status", "cancelled")
    expect(page.locator("regflow-flow button")).to_have_count(0)


def test_a_network_failure_is_retried_with_the_same_key(page: Page, engine: regflow.Engine) -> None:
    """The answer to the first 次へ is lost (the server did it): the retry carries the same
    Idempotency-Key, gets the same answer, and only one code is mailed."""
    press(page, "アカウントをお持ちでない場合、作成できます")
    heading(page, "アカウントの作成")
    keys: list[str | None] = []
    lost: list[bool] = []

    def lose_first_answer(route: Route, request: Request) -> None:
        keys.append(request.headers.get("idempotency-key"))
        if lost:
            route.continue_()
            return
        lost.append(True)
        route.fetch()  # the server answers; the browser never sees it
        route.abort("connectionreset")

    page.route("**/api/flows/*/events/submit*", lose_first_answer)
    field(page, "email").fill(EMAIL)
    press(page, "次へ")
    heading(page, "コードの入力")
    assert len(keys) == 2
    assert keys[0]
    assert keys[0] == keys[1]
    assert mail_count(settled(engine)) == 1


def test_english_from_the_browser_languages(serve: Any) -> None:
    """A browser asking for English gets the screens in English (Accept-Language)."""
    tab: Page = serve("en-US")
    tab.goto("/spa")
    expect(tab.locator("regflow-flow .regflow")).to_have_attribute("lang", "en")
    expect(tab.locator("regflow-flow h2")).to_have_text("Sign in")


NODE_SCRIPT = """
const { RegflowClient } = await import(process.argv[1]);
const client = new RegflowClient({ base: process.argv[2], lang: "en" });
const seen = [];
let snapshot = await client.start("sign_in", { account: "abcd8-01" });
seen.push(snapshot.screen.title);
snapshot = await client.send("create_account");
seen.push(snapshot.flow, client.flow.id === snapshot.id);
snapshot = await client.send("submit", { email: "not an address" });
seen.push(snapshot.screen.messages.map((m) => m.id).join());
try { await client.send("resend_code"); }
catch (error) { seen.push(error.name, error.allowed.sort().join()); }
console.log(JSON.stringify(seen));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="no node to import the module outside a browser")
def test_the_client_without_a_dom(engine: regflow.Engine, tmp_path: Path) -> None:
    """The module imports where there is no DOM (Node): the client starts, follows a hand-over,
    returns a 422's snapshot and rejects a 409 with the allowed events."""
    module = tmp_path / "regflow-client.mjs"
    module.write_bytes((Path(regflow.__file__).parent / "web/static/regflow-client.js").read_bytes())
    with serving(create_app(engine)) as base:
        run = subprocess.run(["node", "--input-type=module", "-e", NODE_SCRIPT, module.as_uri(), base],
                             capture_output=True, text=True, timeout=30, check=True)
    assert json.loads(run.stdout) == ["Sign in", "registration", True, "email_invalid",
                                      "EventNotAllowedError", "cancel,submit"]
