"""The HTML front end (SPEC 4.2) over real HTTP: a waitress server, urllib and a cookie jar.

The engine runs on a ManualClock (2026-03-02 09:00 UTC, 18:00 in Tokyo), so the tests move time
past provisioning without touching the server's threads. Pages are parsed into a small tree and
driven like a browser: every POST is the form the page rendered, with its hidden inputs, and the
cookie jar keeps each flow's token in the cookie the server scoped to that flow's page. After
each answer the browser waits until the server delivered that request's mail (which goes out
after the answer, on another thread), so the tests read the mailer deterministically.
"""

from __future__ import annotations

import dataclasses
import functools
import http.cookiejar
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.message import Message as MailHeaders
from html.parser import HTMLParser
from typing import Any

import attrs
import pytest
from flows import DISPLAY_NAME, PASSWORD, TEL, codes_in, details
from live_server import serving

import regflow
from regflow.ground.records import FlowRecord
from regflow.ground.screens import Snapshot
from regflow.machines import BUILTIN_FLOWS
from regflow.runtime.presenter import present
from regflow.web import create_app, wait_for_mail
from regflow.web.forms import Link, Page, Texts, field_view, render, split_actions, split_messages

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CONTRACT: dict[str, Any] = {"customer_id": "281234", "phone": "03-1234-5678", "licenses": 3,
                            "accounts": ["abcd8-01", "abcd8-02", "abcd8-03"]}
SEAT = "abcd8-01"
EMAIL = "sample@aaa.com"
HANA = "hana@example.jp"
PROVISIONING = 600
VOID = frozenset({"input", "meta", "br", "link", "img", "hr"})
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
}
SERVED: dict[str, Any] = {}  # base URL → the app it serves (to wait for its mail)


# ---- a small HTML tree and a browser -------------------------------------------------------------


@dataclasses.dataclass(eq=False)
class Node:
    """An element: its tag, attributes, children and text."""

    tag: str
    attrs: dict[str, str]
    children: list[Node | str] = dataclasses.field(default_factory=list)
    parent: Node | None = dataclasses.field(default=None, repr=False)

    @property
    def text(self) -> str:
        """Its text content, whitespace collapsed."""
        parts = [c if isinstance(c, str) else c.text for c in self.children]
        return " ".join(" ".join(parts).split())

    def all(self, tag: str, **wanted: str) -> list[Node]:
        """Descendants with that tag (``*`` for any) and those attribute values."""
        found = []
        for child in self.children:
            if isinstance(child, Node):
                if (tag in ("*", child.tag)
                        and all(child.attrs.get(k.rstrip("_").replace("_", "-")) == v
                                for k, v in wanted.items())):
                    found.append(child)
                found += child.all(tag, **wanted)
        return found

    def one(self, tag: str, **wanted: str) -> Node:
        """The only descendant matching."""
        found = self.all(tag, **wanted)
        assert len(found) == 1, f"expected one <{tag} {wanted}>, found {len(found)}"
        return found[0]


class TreeBuilder(HTMLParser):
    """Builds a Node tree (void elements closed at once)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = self.current = Node("#root", {})

    def handle_starttag(self, tag: str, attributes: list[tuple[str, str | None]]) -> None:
        """Open an element."""
        node = Node(tag, {k: v or "" for k, v in attributes}, parent=self.current)
        self.current.children.append(node)
        if tag not in VOID:
            self.current = node

    def handle_endtag(self, tag: str) -> None:
        """Close the nearest open element with that tag."""
        node: Node | None = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data: str) -> None:
        """Keep text."""
        self.current.children.append(data)


@attrs.frozen
class Reply:
    """An HTTP answer: status, headers, body and its parsed tree."""

    status: int
    headers: MailHeaders
    body: str
    url: str

    @functools.cached_property
    def doc(self) -> Node:
        """The parsed page (once)."""
        builder = TreeBuilder()
        builder.feed(self.body)
        return builder.root

    @property
    def location(self) -> str:
        """The redirect target's path."""
        return urllib.parse.urlsplit(self.headers["Location"]).path

    def cookies(self, name: str) -> list[str]:
        """The Set-Cookie headers for a cookie name."""
        return [v for v in self.headers.get_all("Set-Cookie", []) if v.startswith(f"{name}=")]


class NoRedirects(urllib.request.HTTPRedirectHandler):
    """Let the test see every 303."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        """Never follow."""
        return


class Browser:
    """A cookie jar and the last page, talking to one server."""

    def __init__(self, base: str, accept_language: str | None = None) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), NoRedirects())
        self.accept_language = accept_language

    def request(self, path: str, form: list[tuple[str, str]] | None = None) -> Reply:
        """One request: GET, or POST of a url-encoded form."""
        data = None if form is None else urllib.parse.urlencode(form).encode()
        req = urllib.request.Request(self.base + path, data=data)
        if self.accept_language:
            req.add_header("Accept-Language", self.accept_language)
        try:
            with self.opener.open(req, timeout=10) as resp:
                reply = Reply(resp.status, resp.headers, resp.read().decode(), resp.url)
        except urllib.error.HTTPError as err:
            reply = Reply(err.code, err.headers, err.read().decode(), err.url)
        if self.base in SERVED:
            assert wait_for_mail(SERVED[self.base])
        return reply

    def go(self, path: str, form: list[tuple[str, str]] | None = None) -> Reply:
        """A request, following redirects (GET) to the final page."""
        reply = self.request(path, form)
        for _ in range(5):
            if reply.status not in (301, 302, 303):
                return reply
            reply = self.request(reply.location)
        raise AssertionError("too many redirects")

    def cookie(self, name: str) -> http.cookiejar.Cookie | None:
        """A cookie the jar holds."""
        return next((c for c in self.jar if c.name == name), None)


def form_of(page: Reply, event: str | None = None, action: str | None = None) -> Node:
    """The page's POST form with a button for ``event`` (or posting to ``action``)."""
    for form in page.doc.all("form", method="post"):
        if (event is None or form.all("button", name="event", value=event)) and (
                action is None or form.attrs["action"] == action):
            return form
    raise AssertionError(f"no form for {event or action} on the page")


def fill(form: Node, event: str | None = None, **values: str) -> list[tuple[str, str]]:
    """What a browser posts: hidden and typed inputs, checked boxes, the pressed button."""
    posted = []
    for field in form.all("input"):
        name, kind = field.attrs.get("name"), field.attrs.get("type", "text")
        if name is None:
            continue
        if kind == "checkbox":
            if values.get(name, "checked" in field.attrs and "on"):
                posted.append((name, "on"))
        else:
            posted.append((name, values.get(name, field.attrs.get("value", ""))))
    if event is not None:
        posted.append(("event", event))
    return posted


def press(browser: Browser, page: Reply, event: str, **values: str) -> Reply:
    """Fill the page's form, press the button of ``event``; the raw answer (a 303)."""
    form = form_of(page, event)
    return browser.request(form.attrs["action"], fill(form, event, **values))


def title(page: Reply) -> str:
    """The page's h1."""
    return page.doc.one("h1").text


def buttons(page: Reply) -> dict[str, str]:
    """The labels of the page's action buttons, by event."""
    return {b.attrs["value"]: b.text for b in page.doc.all("button", name="event")}


def field(page: Reply, name: str) -> Node:
    """The input of a field."""
    return page.doc.one("input", name=name)


def mails(engine: regflow.Engine) -> list[Any]:
    """The mails sent so far."""
    mailer: Any = engine.mailer
    return list(mailer.messages)


def newest_code(engine: regflow.Engine) -> str:
    """The code of the newest mail."""
    (code,) = codes_in(mails(engine)[-1])
    return code


def assert_secure_headers(reply: Reply) -> None:
    """Every HTML page carries the security headers."""
    for name, value in HEADERS.items():
        assert reply.headers[name] == value, name
    assert reply.headers["Strict-Transport-Security"] is None  # plain HTTP


@contextmanager
def served(app: Any) -> Iterator[str]:
    """``serving(app)``, known to the browsers (they wait for its mail after each answer)."""
    with serving(app) as url:
        SERVED[url] = app
        try:
            yield url
        finally:
            del SERVED[url]


def register(engine: regflow.Engine, account: str, email: str, *,
             display_name: str = DISPLAY_NAME) -> Snapshot:
    """A whole registration in-process (each call passes the last snapshot: its token with it)."""
    snap = engine.start("registration", {"account": account})
    snap = engine.send(snap, "submit", {"email": email})
    (code,) = codes_in(mails(engine)[-1])
    snap = engine.send(snap, "submit", {"code": code})
    snap = engine.send(snap, "submit", details(display_name=display_name))
    assert snap.state == "provisioning", snap.screen.messages
    return snap


def flow_cookies(reply: Reply) -> dict[str, dict[str, str]]:
    """The ``regflow_flow`` cookies a reply sets, by Path: their value and attributes."""
    found = {}
    for header in reply.cookies("regflow_flow"):
        value, *rest = [part.strip() for part in header.split(";")]
        attributes = {k.lower(): v for k, _, v in (part.partition("=") for part in rest)}
        found[attributes["path"]] = {"value": value.split("=", 1)[1], **attributes}
    return found


# ---- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def clock() -> regflow.ManualClock:
    """A clock the tests move by hand."""
    return regflow.ManualClock(START)


@pytest.fixture
def engine(clock: regflow.ManualClock) -> regflow.Engine:
    """An engine in memory with the demo contract."""
    built = regflow.Engine.from_url("memory://", mail="memory", hasher="fast", clock=clock,
                                    product="次世代型社労法務システム")
    built.contracts.add(**CONTRACT)
    return built


@pytest.fixture
def base(engine: regflow.Engine) -> Iterator[str]:
    """The URL of a real server for the engine."""
    with served(create_app(engine)) as url:
        yield url


@pytest.fixture
def browser(base: str) -> Browser:
    """A browser with an empty cookie jar."""
    return Browser(base)


def launch(browser: Browser, account: str = SEAT, query: str = "") -> Reply:
    """Open the page as the ASP application's launch does; the sign-in page."""
    reply = browser.request(f"/?account={account}{query}")
    assert reply.status == 303, reply.body
    assert re.fullmatch(r"/flows/[A-Za-z0-9_-]{22}", reply.location)
    return browser.go(reply.location)


def registered(browser: Browser, engine: regflow.Engine, clock: regflow.ManualClock) -> Reply:
    """A whole registration of EMAIL through the forms, waited out; the sign-in page again."""
    page = browser.go(press(browser, launch(browser), "create_account").location)
    page = browser.go(press(browser, page, "submit", email=EMAIL).location)
    page = browser.go(press(browser, page, "submit", code=newest_code(engine)).location)
    page = browser.go(press(browser, page, "submit", password=PASSWORD, password_confirm=PASSWORD,
                            customer_id="281234", display_name=DISPLAY_NAME, tel=TEL).location)
    clock.advance(PROVISIONING)
    page = browser.go(page.url.removeprefix(browser.base))
    (onwards,) = page.doc.one("ul", class_="after").all("a")
    return browser.go(onwards.attrs["href"])


def signed_in(browser: Browser, engine: regflow.Engine, clock: regflow.ManualClock) -> Reply:
    """Register, sign in and link the seat through the forms; the signed-in page."""
    page = registered(browser, engine, clock)
    page = browser.go(press(browser, page, "submit", email=EMAIL, password=PASSWORD).location)
    return browser.go(press(browser, page, "submit").location)


# ---- over HTTP -----------------------------------------------------------------------------------


def test_launch_opens_the_sign_in_page_of_the_seed(browser: Browser) -> None:
    """``/?account=`` redirects (303) to a sign-in page with the seed's labels, done accessibly."""
    page = launch(browser)
    assert page.status == 200
    assert page.doc.one("html").attrs["lang"] == "ja"
    assert title(page) == "サインイン"
    assert page.doc.one("header").all("span", class_="product")[0].text == "次世代型社労法務システム"
    assert list(buttons(page).values()) == [
        "サインイン", "アカウントをお持ちでない場合、作成できます", "パスワードを忘れた方はこちら"]
    primary = page.doc.one("button", value="submit")
    assert primary.attrs["class"] == "primary"
    assert "formnovalidate" not in primary.attrs
    assert all("formnovalidate" in b.attrs for b in page.doc.all("button", class_="link"))
    for name, kind, complete in (("email", "email", "email"),
                                 ("password", "password", "current-password")):
        box = field(page, name)
        assert (box.attrs["type"], box.attrs["autocomplete"]) == (kind, complete)
        assert "required" in box.attrs
        assert page.doc.one("label", for_=box.attrs["id"]).text.startswith(
            {"email": "メールアドレス", "password": "パスワード"}[name])
    assert field(page, "email").attrs["maxlength"] == "254"
    assert page.doc.one("input", name="csrf_token").attrs["type"] == "hidden"
    assert page.doc.one("a", hreflang="en").text == "English"
    assert_secure_headers(page)


def test_start_page_without_account_explains_and_offers_a_demo_form(browser: Browser) -> None:
    """``/`` says the page is opened from the application and has a small account form."""
    page = browser.go("/")
    assert page.status == 200
    assert title(page) == "社労法務システムから開いてください"
    form = page.doc.one("form", method="get")
    assert page.doc.one("label", for_="f-account")
    assert form.one("input", name="account")
    assert_secure_headers(page)
    assert browser.request("/?account=%20").status == 400


def test_whole_registration_through_the_forms(browser: Browser, engine: regflow.Engine,
                                              clock: regflow.ManualClock) -> None:
    """Seed steps ①–⑦ as pages: e-mail, the code from the mail, 詳細の追加, 確認, then ready."""
    answer = press(browser, launch(browser), "create_account", email="", password="")
    assert answer.status == 303
    page = browser.go(answer.location)
    assert title(page) == "アカウントの作成"
    assert list(buttons(page)) == ["submit", "cancel"]
    page = browser.go(press(browser, page, "submit", email=EMAIL).location)
    assert title(page) == "コードの入力"
    assert "sample@aaa.com にコードを送信しました" in page.doc.one("p", class_="text").text
    code = field(page, "code")
    assert (code.attrs["inputmode"], code.attrs["autocomplete"]) == ("numeric", "one-time-code")
    assert code.attrs["pattern"] == "[0-9０-９]{8}"
    assert code.attrs["maxlength"] == "8"
    assert buttons(page)["submit"] == "次へ"
    assert all("formnovalidate" in page.doc.one("button", value=e).attrs
               for e in ("resend_code", "back", "cancel"))

    page = browser.go(press(browser, page, "submit", code=newest_code(engine)).location)
    assert title(page) == "詳細の追加"
    assert "アカウントをセットアップするには、もう少し情報が必要です。" in page.body
    labels = {n: str(page.doc.one("label", for_=f"f-{n}").children[0]).strip()
              for n in ("password", "password_confirm", "customer_id", "display_name", "tel")}
    assert labels == {"password": "パスワード", "password_confirm": "パスワードを再入力してください",
                      "customer_id": "CustomerId", "display_name": "表示名", "tel": "Tel"}
    completes = {n: field(page, n).attrs.get("autocomplete")
                 for n in ("password", "password_confirm", "display_name", "tel")}
    assert completes == {"password": "new-password", "password_confirm": "new-password",
                         "display_name": "name", "tel": "tel"}
    assert field(page, "tel").attrs["type"] == "tel"
    assert field(page, "customer_id").attrs["pattern"] == "[2２][8８][0-9０-９]{4}"
    assert field(page, "password").attrs["minlength"] == "8"
    assert list(buttons(page).values()) == ["次へ", "キャンセル"]

    page = browser.go(press(browser, page, "submit", password=PASSWORD, password_confirm=PASSWORD,
                            customer_id="２８１２３４", display_name=DISPLAY_NAME, tel=TEL).location)
    assert title(page) == "確認"
    text = page.doc.one("p", class_="text").text
    assert text.startswith("アカウントの設定をしています。10分ほどしたらメニュー右上からログインしてください")
    assert "18:10 以降にログインできます" in text  # 09:10 UTC in Asia/Tokyo
    assert "次の自動処理" not in page.body
    assert "Asia/Tokyo" not in page.body
    assert not page.doc.all("meta", http_equiv="refresh")  # a dialog: it waits for its OK
    assert buttons(page) == {"ok": "OK"}
    provisioning = page.url.removeprefix(browser.base)

    sign_in = browser.go(press(browser, page, "ok").location)  # ⑦'s OK: back to sign-in
    assert title(sign_in) == "サインイン"
    assert field(sign_in, "email").attrs["value"] == EMAIL
    assert "value" not in field(sign_in, "password").attrs
    clock.advance(PROVISIONING - 1)
    assert title(browser.go(provisioning)) == "確認"  # still setting up, OK or not
    clock.advance(1)
    page = browser.go(provisioning)
    assert title(page) == "アカウント登録が完了しました"
    assert not page.doc.all("meta", http_equiv="refresh")
    assert [a.attrs["href"] for a in page.doc.one("ul", class_="after").all("a")] == [
        f"/?account={SEAT}"]


def test_next_again_after_spent_retries_completes_with_the_page_as_shown(
        browser: Browser, clock: regflow.ManualClock) -> None:
    """FAQ 12: the Provisioner fails until the retries are spent: 問題が発生しました。もう一度「次へ」を
    クリックしてください。, the other fields filled in, the password fields empty and not required
    (their password is kept as a hash). Pressing 次へ on that page as it is completes, once."""
    provisioner = _Flaky()
    engine = regflow.Engine.from_url("memory://", mail="memory", hasher="fast", clock=clock,
                                     provisioner=provisioner)
    engine.contracts.add(**CONTRACT)
    with served(create_app(engine)) as url:
        browser = Browser(url)
        page = browser.go(press(browser, launch(browser), "create_account").location)
        page = browser.go(press(browser, page, "submit", email=EMAIL).location)
        page = browser.go(press(browser, page, "submit", code=newest_code(engine)).location)
        page = browser.go(press(browser, page, "submit", password=PASSWORD, password_confirm=PASSWORD,
                                customer_id="281234", display_name=DISPLAY_NAME, tel=TEL).location)
        assert title(page) == "詳細の追加"
        assert page.doc.one("p", role="alert").text == (
            "問題が発生しました。もう一度「次へ」をクリックしてください。")
        for name in ("password", "password_confirm"):
            assert "required" not in field(page, name).attrs
            assert "value" not in field(page, name).attrs
        assert "入力したパスワードを保持しています" in page.body
        assert field(page, "customer_id").attrs["value"] == "281234"
        provisioner.failing = False
        page = browser.go(press(browser, page, "submit").location)  # the page as shown
        assert title(page) == "確認"
        with engine.store.transaction() as tx:
            logins = list(tx.logins.of_customer("281234"))
        assert len(logins) == 1
        assert engine.services.hasher.verify(logins[0].password_hash, PASSWORD)


class _Flaky:
    """A Provisioner that fails (transiently) while ``failing``."""

    def __init__(self) -> None:
        self.failing = True

    def provision(self, login: Any, *, key: str) -> None:
        if self.failing:
            raise regflow.TransientError("directory unavailable")


def test_sign_in_with_the_link_prompt_sets_a_strict_cookie(browser: Browser, engine: regflow.Engine,
                                                          clock: regflow.ManualClock) -> None:
    """Seed step ⑧: the link prompt (キャンセル / OK); OK signs in with an HttpOnly, Lax cookie."""
    page = registered(browser, engine, clock)
    page = browser.go(press(browser, page, "submit", email=EMAIL, password=PASSWORD).location)
    assert title(page) == "確認"
    assert "アカウントと ASP ユーザーの紐づけが必要です。" in page.body
    assert buttons(page) == {"submit": "OK", "cancel": "キャンセル"}
    answer = press(browser, page, "submit")
    assert answer.status == 303
    (cookie,) = answer.cookies("regflow_session")
    attributes = {part.strip().split("=")[0].lower(): part for part in cookie.split(";")[1:]}
    assert {"httponly", "path", "max-age", "samesite"} <= set(attributes)
    assert attributes["samesite"].strip() == "SameSite=Lax"
    assert attributes["max-age"].strip() == "Max-Age=43200"
    assert "secure" not in attributes
    page = browser.go(answer.location)
    assert title(page) == "サインインしました"
    assert page.doc.one("nav").all("a", href="/admin")[0].text == "アカウント管理"
    assert page.doc.one("ul", class_="after").all("a", href="/admin")
    token = browser.cookie("regflow_session")
    assert token is not None
    assert token.value == cookie.split(";")[0].split("=", 1)[1]
    (login,) = engine.admin_logins(token.value)
    assert (login["email"], login["account"], login["role"]) == (EMAIL, SEAT, "admin")


def test_admin_page_lists_logins_and_a_transfer_works(browser: Browser, engine: regflow.Engine,
                                                      clock: regflow.ManualClock) -> None:
    """アカウント管理 lists the customer's logins; 管理者にする → confirm → done moves the role."""
    signed_in(browser, engine, clock)
    register(engine, "abcd8-02", HANA, display_name="花子")
    page = browser.go("/admin")
    assert page.status == 200
    assert title(page) == "アカウント管理"
    rows = page.doc.one("tbody").all("tr")
    cells = {r.one("th").text: [td.text for td in r.all("td")] for r in rows}
    assert cells[f"{DISPLAY_NAME} （あなた）"][:5] == [EMAIL, SEAT, "管理者", "利用できます", "無効"]
    assert cells["花子"][:5] == [HANA, "なし", "一般", "設定中（18:20 以降）", "無効"]
    assert not rows[0].all("form")  # not for oneself
    hana = rows[1]
    assert [b.text for b in hana.all("button")] == ["削除"]  # not ready: no transfer yet
    clock.advance(PROVISIONING)
    page = browser.go("/admin")
    hana = page.doc.one("tbody").all("tr")[1]
    assert [b.text for b in hana.all("button")] == ["削除", "管理者にする"]
    form = form_of(page, action="/admin/flows/transfer_admin")
    answer = browser.request(form.attrs["action"], fill(form))
    assert answer.status == 303
    page = browser.go(answer.location)
    assert title(page) == "管理者の変更"
    assert "花子（hana@example.jp）" in page.body
    page = browser.go(press(browser, page, "submit").location)
    assert title(page) == "管理者を変更しました"
    assert [a.attrs["href"] for a in page.doc.one("ul", class_="after").all("a")] == ["/admin"]
    roles = {row["email"]: row["role"] for row in engine_admin_list(engine, HANA)}
    assert roles == {EMAIL: "member", HANA: "admin"}
    assert browser.go("/admin").status == 403


def engine_admin_list(engine: regflow.Engine, email: str) -> list[dict[str, Any]]:
    """The admin list as seen by a fresh sign-in of ``email`` (no link prompt: already linked)."""
    snap = engine.start("sign_in", {"account": "abcd8-02"})
    snap = engine.send(snap, "submit", {"email": email, "password": PASSWORD})
    if snap.state == "link_prompt":
        snap = engine.send(snap, "submit")
    assert snap.session is not None
    return engine.admin_logins(snap.session)


def test_admin_page_needs_an_admin_session(base: str, browser: Browser, engine: regflow.Engine,
                                           clock: regflow.ManualClock) -> None:
    """No cookie → 401 page; a member's cookie → 403 page; starting an admin flow likewise."""
    anonymous = browser.go("/admin")
    assert anonymous.status == 401
    assert title(anonymous) == "サインインが必要です"
    assert_secure_headers(anonymous)
    signed_in(browser, engine, clock)
    register(engine, "abcd8-02", HANA)
    clock.advance(PROVISIONING)
    member = Browser(base)
    page = launch(member, "abcd8-02")
    page = member.go(press(member, page, "submit", email=HANA, password=PASSWORD).location)
    page = member.go(press(member, page, "submit").location)
    assert title(page) == "サインインしました"
    assert not page.doc.all("a", href="/admin")
    assert member.go("/admin").status == 403
    target = engine.admin_logins(str(browser.cookie("regflow_session").value))[0]["id"]  # type: ignore[union-attr]
    csrf = page.doc.one("input", name="csrf_token").attrs["value"]
    assert member.request("/admin/flows/delete_login",
                          [("csrf_token", csrf), ("target", target)]).status == 403


def test_csrf_missing_or_wrong_is_refused_and_nothing_happens(browser: Browser,
                                                              engine: regflow.Engine) -> None:
    """A POST without the CSRF token, or with another, gets the 400 page and sends nothing."""
    page = browser.go(press(browser, launch(browser), "create_account").location)
    form = form_of(page, "submit")
    posted = fill(form, "submit", email=EMAIL)
    for changed in ([p for p in posted if p[0] != "csrf_token"],
                    [(k, "forged" if k == "csrf_token" else v) for k, v in posted],
                    [(k, "ｘ" if k == "csrf_token" else v) for k, v in posted]):
        reply = browser.request(form.attrs["action"], changed)
        assert reply.status == 400
        assert title(reply) == "送信を受け付けられませんでした"
        assert reply.doc.one("p", role="alert")
        assert_secure_headers(reply)
    assert mails(engine) == []
    assert title(browser.go(page.url.removeprefix(browser.base))) == "アカウントの作成"
    assert browser.request("/sign-out", [("csrf_token", "forged")]).status == 400
    assert browser.request("/admin/flows/set_two_factor", []).status == 400


def test_double_submit_of_one_form_acts_once(browser: Browser, engine: regflow.Engine) -> None:
    """The same rendered form posted twice (same nonce) sends one mail and answers alike."""
    page = browser.go(press(browser, launch(browser), "create_account").location)
    form = form_of(page, "submit")
    posted = fill(form, "submit", email=EMAIL)
    first = browser.request(form.attrs["action"], posted)
    second = browser.request(form.attrs["action"], posted)
    assert first.status == second.status == 303
    assert first.location == second.location
    assert len(mails(engine)) == 1
    page = browser.go(first.location)
    assert title(page) == "コードの入力"
    assert not page.doc.all("p", role="alert")
    fresh = browser.go(press(browser, page, "resend_code").location)  # a new render, a new nonce
    assert fresh.doc.one("p", role="alert").text.startswith("コードの再送信は")
    changed = [(k, "other@aaa.com" if k == "email" else v) for k, v in posted]
    third = browser.go(browser.request(form.attrs["action"], changed).location)
    alerts = [p.text for p in third.doc.all("p", role="alert")]
    assert "このフォームはすでに送信されています。画面の内容をご確認ください。" in alerts
    assert len(mails(engine)) == 1


def test_an_event_the_screen_does_not_take_is_flashed_not_a_500(browser: Browser,
                                                                engine: regflow.Engine) -> None:
    """A forged or stale event redirects back to the page with the catalog's message."""
    page = browser.go(press(browser, launch(browser), "create_account").location)
    form = form_of(page, "submit")
    for event in ("resend_code", "no such event", ""):
        answer = browser.request(form.attrs["action"], fill(form, event, email=EMAIL))
        assert answer.status == 303
        again = browser.go(answer.location)
        alert = again.doc.one("p", role="alert")
        assert alert.text == "この操作は現在行えません。画面の内容をご確認ください。"
        assert title(again) == "アカウントの作成"
        form = form_of(again, "submit")
    assert mails(engine) == []
    forged = [(k, "x" if k == "form" else v) for k, v in fill(form, "submit", email=EMAIL)]
    refused = browser.request(form.attrs["action"], forged)
    assert refused.status == 400
    assert title(refused) == "送信を受け付けられませんでした"
    assert mails(engine) == []


def test_the_session_cookie_is_secure_over_https(engine: regflow.Engine,
                                                 clock: regflow.ManualClock) -> None:
    """Behind HTTPS the session and flow cookies also carry Secure (the WSGI scheme says so),
    and every answer HSTS."""
    register(engine, SEAT, EMAIL)
    clock.advance(PROVISIONING)
    snap = engine.start("sign_in", {"account": SEAT})
    snap = engine.send(snap, "submit", {"email": EMAIL, "password": PASSWORD})
    client = create_app(engine).test_client()
    assert snap.flow_token is not None
    client.set_cookie("regflow_flow", snap.flow_token, domain="regflow.example",
                      path=f"/flows/{snap.id}")
    page = client.get(f"/flows/{snap.id}", base_url="https://regflow.example")
    assert page.status_code == 200
    assert page.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    body = page.get_data(as_text=True)
    form = {name: re.search(rf'name="{name}" value="([^"]+)"', body).group(1)  # type: ignore[union-attr]
            for name in ("csrf_token", "form")}
    answer = client.post(f"/flows/{snap.id}", data={**form, "event": "submit"},
                         base_url="https://regflow.example")
    assert answer.status_code == 303
    (cookie,) = [v for v in answer.headers.getlist("Set-Cookie") if v.startswith("regflow_session=")]
    assert "Secure" in cookie
    assert "HttpOnly" in cookie
    (flow,) = [v for v in answer.headers.getlist("Set-Cookie") if v.startswith("regflow_flow=")]
    assert "Secure" in flow
    assert "HttpOnly" in flow
    assert answer.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


def test_english_by_query_and_by_accept_language(base: str, browser: Browser) -> None:
    """``?lang=en`` switches to English and is remembered; Accept-Language picks it too."""
    page = launch(browser, query="&lang=en")
    assert page.doc.one("html").attrs["lang"] == "en"
    assert title(page) == "Sign in"
    assert list(buttons(page).values()) == ["Sign in", "No account? Create one", "Forgot your password?"]
    assert page.doc.one("a", hreflang="ja").text == "日本語"
    page = browser.go(press(browser, page, "create_account").location)
    assert title(page) == "Create an account"
    assert page.doc.one("html").attrs["lang"] == "en"
    page = browser.go(urllib.parse.urlsplit(page.doc.one("a", hreflang="ja").attrs["href"]).path
                      + "?lang=ja")
    assert title(page) == "アカウントの作成"
    english = Browser(base, accept_language="en-US,en;q=0.9,ja;q=0.5")
    assert title(launch(english)) == "Sign in"
    assert Browser(base, accept_language="fr").go("/").doc.one("html").attrs["lang"] == "ja"


def test_field_errors_sit_next_to_their_field(browser: Browser) -> None:
    """A refused e-mail shows its error under the input, tied by aria-describedby."""
    page = browser.go(press(browser, launch(browser), "create_account").location)
    page = browser.go(press(browser, page, "submit", email="not-an-address").location)
    box = field(page, "email")
    assert box.attrs["aria-invalid"] == "true"
    assert box.attrs["value"] == "not-an-address"
    error = page.doc.one("span", id=box.attrs["aria-describedby"])
    assert error.attrs["role"] == "alert"
    assert error.text == "メールアドレスの形式が正しくありません。"
    assert error.parent is box.parent
    assert not page.doc.all("p", class_="msg error")


def test_unknown_and_expired_flows(browser: Browser, clock: regflow.ManualClock) -> None:
    """An unknown id gets the 404 page; a flow left for an hour the 410 page with a restart link."""
    missing = browser.go("/flows/no-such-flow")
    assert missing.status == 404
    assert title(missing) == "ページが見つかりません"
    assert_secure_headers(missing)
    page = launch(browser)
    assert browser.request(page.url.removeprefix(browser.base) + "x", []).status == 400  # CSRF first
    clock.advance(3601)
    expired = browser.go(page.url.removeprefix(browser.base))
    assert expired.status == 410
    assert title(expired) == "有効期限が切れました"
    assert expired.doc.one("ul", class_="after").one("a").attrs["href"] == f"/?account={SEAT}"
    answer = press(browser, page, "submit", email=EMAIL, password=PASSWORD)
    assert answer.status == 303
    again = browser.go(answer.location)
    alerts = [p.text for p in again.doc.all("p", role="alert")]
    assert alerts == ["この手続きはすでに終了しています。",
                      "手続きの有効期限が切れました。最初からやり直してください。"]


def test_sign_out_ends_the_session(browser: Browser, engine: regflow.Engine,
                                   clock: regflow.ManualClock) -> None:
    """サインアウト ends the engine's session, clears the cookie and opens the sign-in again."""
    page = signed_in(browser, engine, clock)
    token = str(browser.cookie("regflow_session").value)  # type: ignore[union-attr]
    form = form_of(page, action="/sign-out")
    answer = browser.request("/sign-out", fill(form))
    assert answer.status == 303
    assert answer.headers["Location"].endswith(f"/?account={SEAT}")
    assert browser.cookie("regflow_session") is None
    with pytest.raises(regflow.NotSignedIn):
        engine.admin_logins(token)
    page = browser.go(answer.headers["Location"].removeprefix(browser.base))
    assert title(page) == "サインイン"
    assert "サインアウトしました。" in page.body


# ---- flows bound to the browser that started them (SPEC 4.1, 4.2) ----------------------------


def test_a_flow_page_is_bound_to_the_browser_that_started_it(base: str, browser: Browser,
                                                            engine: regflow.Engine) -> None:
    """The launch keeps the flow's token in an HttpOnly, SameSite=Lax cookie for that flow's
    page only; another browser (no cookie) gets the 404 page of an unknown id on GET and POST,
    even with a form the first browser was shown, and nothing happens to the flow."""
    started = browser.request(f"/?account={SEAT}")
    assert started.status == 303
    flow_path = started.location
    (cookie,) = flow_cookies(started).values()
    assert cookie["path"] == flow_path
    assert {"httponly", "max-age", "samesite"} <= set(cookie)
    assert (cookie["samesite"], cookie["max-age"]) == ("Lax", "14400")
    assert "secure" not in cookie
    assert len(cookie["value"]) >= 22  # ≥128 bits
    page = browser.go(flow_path)
    assert title(page) == "サインイン"
    kept = browser.cookie("regflow_flow")
    assert kept is not None
    assert kept.path == flow_path
    assert title(browser.go(flow_path + "x")) == "ページが見つかりません"  # another path: no cookie

    other = Browser(base)
    unknown = other.go("/flows/" + "A" * len(flow_path.removeprefix("/flows/")))
    stolen = other.go(flow_path)
    assert (stolen.status, title(stolen)) == (unknown.status, title(unknown)) == (
        404, "ページが見つかりません")
    assert_secure_headers(stolen)
    own = launch(other)  # a CSRF token of its own, then the first browser's form
    form = form_of(page, "create_account")
    posted = [(k, own.doc.one("input", name="csrf_token").attrs["value"] if k == "csrf_token" else v)
              for k, v in fill(form, "create_account")]
    refused = other.request(flow_path, posted)
    assert (refused.status, title(refused)) == (404, "ページが見つかりません")
    assert not flow_cookies(refused)
    assert title(browser.go(flow_path)) == "サインイン"  # still there, untouched
    answer = press(browser, page, "create_account")
    assert title(browser.go(answer.location)) == "アカウントの作成"


def test_a_hand_over_keeps_the_new_flows_token_in_its_own_cookie(browser: Browser) -> None:
    """create_account answers a cookie for the registration's page; both flows stay readable
    by this browser, each with its own token."""
    page = launch(browser)
    sign_in_path = urllib.parse.urlsplit(page.url).path
    answer = press(browser, page, "create_account")
    assert answer.status == 303
    cookies = flow_cookies(answer)
    assert list(cookies) == [answer.location] != [sign_in_path]
    assert cookies[answer.location]["httponly"] == ""
    assert cookies[answer.location]["samesite"] == "Lax"
    assert title(browser.go(answer.location)) == "アカウントの作成"
    ended = browser.go(sign_in_path)
    assert ended.status == 200
    assert ended.doc.one("ul", class_="after").all("a")[0].attrs["href"] == answer.location
    tokens = {c.path: c.value for c in browser.jar if c.name == "regflow_flow"}
    assert set(tokens) == {sign_in_path, answer.location}
    assert len(set(tokens.values())) == 2


def test_the_csrf_token_changes_at_sign_in_and_at_sign_out(browser: Browser, engine: regflow.Engine,
                                                           clock: regflow.ManualClock) -> None:
    """A CSRF token seen before signing in does not post after it, nor one seen before signing out."""
    page = registered(browser, engine, clock)
    page = browser.go(press(browser, page, "submit", email=EMAIL, password=PASSWORD).location)
    assert title(page) == "確認"  # the link prompt
    before = page.doc.one("input", name="csrf_token").attrs["value"]
    answer = press(browser, page, "submit")
    assert answer.cookies("regflow_session")
    page = browser.go(answer.location)
    assert title(page) == "サインインしました"
    during = page.doc.one("input", name="csrf_token").attrs["value"]
    assert during != before
    stale = browser.request("/sign-out", [("csrf_token", before)])
    assert (stale.status, title(stale)) == (400, "送信を受け付けられませんでした")
    assert browser.cookie("regflow_session") is not None
    answer = browser.request("/sign-out", [("csrf_token", during)])
    assert answer.status == 303
    page = browser.go(answer.headers["Location"].removeprefix(browser.base))
    assert title(page) == "サインイン"
    after = page.doc.one("input", name="csrf_token").attrs["value"]
    assert after not in (before, during)
    assert browser.request("/sign-out", [("csrf_token", during)]).status == 400


def test_a_limit_reached_is_flashed_on_the_flow_page(browser: Browser, engine: regflow.Engine) -> None:
    """SPEC 5: five code mails to an address in 15 minutes (here sent in-process); the sixth,
    from a page, is refused with the catalog's message and the page stays as it was."""
    for _ in range(5):
        snap = engine.start("registration", {"account": SEAT})
        assert engine.send(snap, "submit", {"email": EMAIL}).state == "enter_code"
    page = browser.go(press(browser, launch(browser), "create_account").location)
    answer = press(browser, page, "submit", email=EMAIL)
    assert answer.status == 303
    assert answer.location == urllib.parse.urlsplit(page.url).path
    again = browser.go(answer.location)
    assert title(again) == "アカウントの作成"
    alerts = [p.text for p in again.doc.all("p", role="alert")]
    assert alerts == ["試行回数が上限に達しました。しばらくしてからもう一度お試しください。"]
    assert len(mails(engine)) == 5
    english = browser.go(press(browser, again, "submit", email=EMAIL).location + "?lang=en")
    assert [p.text for p in english.doc.all("p", role="alert")] == [
        "Too many attempts. Please wait a while and try again."]


def test_too_many_launches_from_one_client_answer_429(clock: regflow.ManualClock) -> None:
    """With a limit of 2 flows started per client in 10 minutes, the third launch is the 429
    page with Retry-After; so is an admin flow started past it."""
    from regflow.runtime.limits import Limits, Rate

    engine = regflow.Engine.from_url("memory://", mail="memory", hasher="fast", clock=clock,
                                     limits=Limits(starts=(Rate(2, 600),)))
    engine.contracts.add(**CONTRACT)
    with served(create_app(engine)) as url:
        browser = Browser(url)
        launch(browser)
        launch(browser)
        refused = browser.request(f"/?account={SEAT}")
        assert refused.status == 429
        assert refused.headers["Retry-After"] == "600"
        assert title(refused) == "しばらくしてからお試しください"
        assert refused.doc.one("p", role="alert").text == (
            "試行回数が上限に達しました。しばらくしてからもう一度お試しください。")
        assert not flow_cookies(refused)
        assert_secure_headers(refused)
        clock.advance(600)
        assert browser.request(f"/?account={SEAT}").status == 303


def test_an_admin_unlocks_a_login_with_wrong_passwords(browser: Browser, engine: regflow.Engine,
                                                      clock: regflow.ManualClock) -> None:
    """A login with wrong passwords gets ロック解除 in アカウント管理; unlock_login's confirm
    and done follow, and the wrong passwords are forgotten (no button any more)."""
    signed_in(browser, engine, clock)
    register(engine, "abcd8-02", HANA, display_name="花子")
    clock.advance(PROVISIONING)
    page = browser.go("/admin")
    hana = page.doc.one("tbody").all("tr")[1]
    assert "ロック解除" not in [b.text for b in hana.all("button")]
    attempt = engine.start("sign_in", {"account": "abcd8-02"})
    attempt = engine.send(attempt, "submit", {"email": HANA, "password": PASSWORD + "x"})
    assert [m.id for m in attempt.screen.messages] == ["credentials_invalid"]
    page = browser.go("/admin")
    hana = page.doc.one("tbody").all("tr")[1]
    assert [b.text for b in hana.all("button")] == ["削除", "管理者にする", "ロック解除"]
    assert not page.doc.one("tbody").all("tr")[0].all("form")
    form = form_of(page, action="/admin/flows/unlock_login")
    answer = browser.request(form.attrs["action"], fill(form))
    assert answer.status == 303
    assert list(flow_cookies(answer)) == [answer.location]
    page = browser.go(answer.location)
    assert title(page) == "ロックの解除"
    assert "花子（hana@example.jp）" in page.body
    page = browser.go(press(browser, page, "submit").location)
    assert title(page) == "ロックを解除しました"
    assert [a.attrs["href"] for a in page.doc.one("ul", class_="after").all("a")] == ["/admin"]
    hana = browser.go("/admin").doc.one("tbody").all("tr")[1]
    assert [b.text for b in hana.all("button")] == ["削除", "管理者にする"]


def test_every_answer_carries_the_security_headers(browser: Browser) -> None:
    """Pages, redirects, the 404 of an unknown route and the API: frames denied, features off."""
    for reply in (browser.request(f"/?account={SEAT}"), browser.request("/no/such/route"),
                  browser.request("/api/openapi.json"), browser.request("/admin")):
        assert reply.headers["X-Frame-Options"] == "DENY", reply.url
        assert reply.headers["Permissions-Policy"] == (
            "camera=(), microphone=(), geolocation=(), payment=(), usb=()")
        assert reply.headers["Strict-Transport-Security"] is None


def test_mail_written_by_a_page_arrives_after_its_answer(engine: regflow.Engine) -> None:
    """The answer to "send the code" does not wait for the mail: with a mailer that holds it,
    the 303 comes while the mail is held; let go, the mail arrives."""
    held, began = threading.Event(), threading.Event()
    inner = engine.relay.mailer

    class Gate:
        def send(self, message: Any) -> None:
            began.set()
            held.wait(10)
            inner.send(message)

    engine.relay.mailer = Gate()
    app = create_app(engine)
    with serving(app) as url:  # not ``served``: this browser does not wait for the mail
        browser = Browser(url)
        page = browser.go(press(browser, launch(browser), "create_account").location)
        clock = time.monotonic()
        answer = press(browser, page, "submit", email=EMAIL)
        assert answer.status == 303
        assert time.monotonic() - clock < 5  # the mailer holds the mail for 10 s
        assert began.wait(5)
        assert mails(engine) == []
        held.set()
        assert wait_for_mail(app)
    assert [m["To"] for m in mails(engine)] == [EMAIL]


# ---- templates, without a server -----------------------------------------------------------------


def sample_records(engine: regflow.Engine) -> Iterator[FlowRecord]:
    """A record in every state of every built-in flow, with data for its texts and messages."""
    data = {"account": SEAT, "email": EMAIL, "target": "x", "target_name": "花子",
            "target_email": HANA, "target_account": "abcd8-02", "ready_at_local": "18:10"}
    for name in BUILTIN_FLOWS:
        definition = engine.flows.latest(name)
        for state_name, state in definition.states.items():
            screen = state.screen
            fields = screen.fields if screen is not None else ()
            messages: list[dict[str, Any]] = [
                {"id": "field_required", "level": "error", "field": f, "params": {}} for f in fields]
            messages += [{"id": "code_resent", "level": "info", "field": None, "params": {}},
                         {"id": "transient_error", "level": "error", "field": None, "params": {}}]
            yield FlowRecord(
                id=f"{name}-{state_name}", flow=name, version=definition.version, state=state_name,
                status=(state.status or "completed") if state.final else "active",
                data={**data, "_messages": messages, "_continue_with": {"flow": name, "id": "n"}},
                timers=[("tick", START + timedelta(minutes=5))], expires_at=START + timedelta(hours=1),
                created_at=START, updated_at=START)


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_every_template_renders_for_every_screen(lang: str) -> None:
    """screen, admin, message and start templates render for all built-in states in both languages."""
    engine = regflow.Engine.from_url("memory://", mail="memory", hasher="fast")
    texts = Texts(lang)
    page = Page(texts=texts, product="次世代型社労法務システム", lang_url="/?lang=x", csrf="c",
                viewer="admin", flashes=(("error", texts("flash.gone")),), refresh=30)
    seen = 0
    for record in sample_records(engine):
        snapshot = present(engine.compiled(record.flow), record, lang)
        top, by_field = split_messages(snapshot)
        buttons_, links = split_actions(snapshot.screen.actions)
        html = render(
            "screen.html.j2", page=page, screen=snapshot.screen, flow_id=snapshot.id,
            top_messages=top, fields=[field_view(f, by_field.get(f.name, []), texts)
                                      for f in snapshot.screen.fields],
            buttons=buttons_, link_actions=links, form_token="t" if snapshot.screen.actions else None,
            next_step=texts("screen.next_step", time="18:10", zone="Asia/Tokyo"),
            after=[Link("/", texts("screen.restart"))])
        assert f'<html lang="{lang}">' in html
        assert snapshot.screen.title in html
        assert "{" not in snapshot.screen.title
        for f in snapshot.screen.fields:
            assert f'for="f-{f.name}"' in html
            assert f'aria-describedby="f-{f.name}' in html
        seen += 1
    assert seen >= 30
    rows = [{"number": 1, "id": "a", "name": "<b>太郎</b>", "email": EMAIL, "account": SEAT,
             "is_self": True, "role": "r", "status": "s", "two_factor": "t", "can_unlink": False,
             "can_delete": False, "can_transfer": False, "can_unlock": False},
            {"number": 2, "id": "b", "name": "花子", "email": HANA, "account": "-", "is_self": False,
             "role": "r", "status": "s", "two_factor": "t", "can_unlink": True, "can_delete": True,
             "can_transfer": True, "can_unlock": True}]
    admin = render("admin.html.j2", page=page, rows=rows)
    assert "&lt;b&gt;太郎&lt;/b&gt;" in admin
    assert admin.count('name="target"') == 4
    assert 'action="/admin/flows/unlock_login"' in admin
    message = render("message.html.j2", page=page, title="<t>", text="x", alert=True, links=[])
    assert "&lt;t&gt;" in message
    start = render("start.html.j2", page=page, account='"><script>', error=texts("start.account_required"))
    assert "<script>" not in start
    assert 'aria-describedby="f-account-error-1"' in start
