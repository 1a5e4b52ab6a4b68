"""管理者用操作マニュアル (issue 12): the guide's admin manual, downloaded from アカウント管理.

Served to the customer's signed-in admin only, in Japanese and English, as a page and as one
self-contained file; generated from the admin flows' definitions and the catalog. The expected
texts are the seed's words and the catalog's (the locale files), not the manual's output.

The browser tests (Debian's chromium through Playwright, skipped without them) follow the link
from アカウント管理, and take the manual's screenshots: ``regflow/data/manual/*.png`` are
rewritten on every run, CI included, as ``tests/test_browser.py`` rewrites docs/screenshots.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from flows import PASSWORD, codes_in, details
from live_server import serving

import regflow
from regflow.ground.catalog import Catalog
from regflow.web import create_app
from regflow.web.pages import ADMIN_FLOWS

START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # 09:00 in Asia/Tokyo
PRODUCT = "次世代型社労法務システム"
CONTRACT: dict[str, Any] = {"customer_id": "281234", "phone": "03-1234-5678", "licenses": 3,
                            "accounts": ["abcd8-01", "abcd8-02", "abcd8-03"]}
EMAIL = "sample@aaa.com"
HANA = "hana@example.jp"
JIRO = "jiro@example.jp"
PROVISIONING = 600
SHOTS = Path(regflow.__file__).parent / "data" / "manual"
HEADERS = {  # what every page of the site answers with (tests/test_pages.py)
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}
BUTTONS = {  # the flows' buttons on アカウント管理 (admin.html.j2)
    "unlink_login": "web.admin.unlink", "delete_login": "web.admin.delete",
    "transfer_admin": "web.admin.transfer", "unlock_login": "web.admin.unlock",
    "require_two_factor": "web.admin.require_two_factor", "set_two_factor": "web.admin.set_two_factor",
}
EXPECTED = {
    "ja": {
        "title": "管理者用操作マニュアル",  # the guide's name for it
        "filename": "attachment; filename=\"regflow-admin-manual.html\"; filename*=UTF-8''"
                    "%E7%AE%A1%E7%90%86%E8%80%85%E7%94%A8%E6%93%8D%E4%BD%9C%E3%83%9E%E3%83%8B"
                    "%E3%83%A5%E3%82%A2%E3%83%AB.html",
        "unauthorized": "サインインが必要です", "forbidden": "アカウント管理を利用できません",
        "texts": ["ログイン情報の削除", "紐づけの解除", "管理者の変更", "ロックの解除",
                  "二段階認証の設定（全アカウント）", "削除する", "紐づけを解除する", "管理者を変更する",
                  "管理者自身に対してはこの操作を行えません。先に管理者を変更してください。",
                  "対象のアカウントはすでに削除されています。",
                  "対象のアカウントはまだ設定中のため、管理者にできません。",
                  # the guide's rules for the admin
                  "一番初めにアカウント登録をした方", "マイナンバー-connect、イージア ZERO",
                  "管理者のアカウントでのみ", "新しいメールアドレスで最初からアカウント登録"],
    },
    "en": {
        "title": "Administrator's manual",
        "filename": "attachment; filename=\"regflow-admin-manual.html\"; "
                    "filename*=UTF-8''regflow-admin-manual.html",
        "unauthorized": "Please sign in", "forbidden": "Account management is not available",
        "texts": ["Delete sign-in", "Unlink", "Change the admin", "Unlock sign-in",
                  "Two-step sign-in for all accounts", "That account has already been deleted.",
                  "You cannot do this to your own account. Make someone else the admin first.",
                  "That account is still being set up and cannot become the admin yet.",
                  "The first person to register", "Only the admin's account"],
    },
}


# ---- reading pages -------------------------------------------------------------------------------


class Parsed(HTMLParser):
    """A page's visible text (styles left out), its images, links, sections and first h1."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.images: list[str] = []
        self.links: dict[str, str] = {}  # text → href
        self.sections: list[str] = []
        self.h1 = ""
        self._open: list[str] = []
        self._href: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Note images, links and sections."""
        found = {k: v or "" for k, v in attrs}
        if tag == "img":
            self.images.append(found["src"])
        elif tag == "a":
            self._href = found.get("href")
        elif tag == "section" and "id" in found:
            self.sections.append(found["id"])
        if tag not in ("img", "meta", "input", "br", "link"):
            self._open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        """Close the element."""
        if tag in self._open:
            while self._open.pop() != tag:
                pass
        if tag == "a":
            self._href = None

    def handle_data(self, data: str) -> None:
        """Keep text outside <style>."""
        if "style" in self._open or "title" in self._open:
            return
        self.text.append(data)
        if self._href is not None and data.strip():
            self.links[data.strip()] = self._href
        if self._open and self._open[-1] == "h1" and not self.h1:
            self.h1 = data.strip()

    @property
    def words(self) -> str:
        """The text, whitespace collapsed."""
        return " ".join(" ".join(self.text).split())


# ---- an engine with an admin and a member --------------------------------------------------------


def new_engine(clock: regflow.ManualClock) -> regflow.Engine:
    """An engine in memory with the demo contract."""
    engine = regflow.Engine.from_url("memory://", mail="memory", hasher="fast", clock=clock,
                                     product=PRODUCT)
    engine.contracts.add(**CONTRACT)
    return engine


def register(engine: regflow.Engine, account: str, email: str, **options: str) -> None:
    """A whole registration in-process (each call passes the last snapshot, its token with it)."""
    mailer: Any = engine.mailer
    snap = engine.start("registration", {"account": account})
    snap = engine.send(snap, "submit", {"email": email})
    (code,) = codes_in(mailer.messages[-1])
    snap = engine.send(snap, "submit", {"code": code})
    snap = engine.send(snap, "submit", details(**options))
    assert snap.state == "provisioning", snap.screen.messages


def session_of(engine: regflow.Engine, account: str, email: str) -> str:
    """A sign-in in-process (OK at the link prompt); its session token."""
    snap = engine.start("sign_in", {"account": account})
    snap = engine.send(snap, "submit", {"email": email, "password": PASSWORD})
    if snap.state == "link_prompt":
        snap = engine.send(snap, "submit")
    assert snap.session is not None, snap.screen.messages
    return snap.session


@pytest.fixture
def clock() -> regflow.ManualClock:
    """A clock the tests move by hand."""
    return regflow.ManualClock(START)


@pytest.fixture
def engine(clock: regflow.ManualClock) -> regflow.Engine:
    """The admin (sample@aaa.com on abcd8-01) and 花子 (abcd8-02, linked), both ready."""
    built = new_engine(clock)
    register(built, "abcd8-01", EMAIL)
    clock.advance(60)  # the list is in order of creation
    register(built, "abcd8-02", HANA, display_name="花子")
    clock.advance(PROVISIONING)
    return built


@pytest.fixture
def client(engine: regflow.Engine) -> FlaskClient:
    """A test client of the app, without a sign-in."""
    return create_app(engine).test_client()


def signed_in(client: FlaskClient, engine: regflow.Engine, account: str, email: str) -> FlaskClient:
    """The client with the sign-in cookie of that login."""
    client.set_cookie("regflow_session", session_of(engine, account, email))
    return client


def get(client: FlaskClient, path: str) -> Any:
    """A GET, its body read and closed (the app sends mail after closing an answer)."""
    with client.get(path) as reply:
        reply.get_data()
        return reply


# ---- the routes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_only_the_admin_gets_the_manual(client: FlaskClient, engine: regflow.Engine, lang: str) -> None:
    """Without a sign-in 401, as a member 403 — the page, the download and the pictures alike."""
    paths = [f"/admin/manual?lang={lang}", f"/admin/manual/download?lang={lang}",
             f"/admin/manual/screenshots/admin.{lang}.png?lang={lang}"]
    for path in paths:
        reply = get(client, path)
        assert reply.status_code == 401, path
        assert Parsed(reply.get_data(as_text=True)).h1 == EXPECTED[lang]["unauthorized"]
        assert "Content-Disposition" not in reply.headers
    signed_in(client, engine, "abcd8-02", HANA)
    for path in paths:
        reply = get(client, path)
        assert reply.status_code == 403, path
        assert Parsed(reply.get_data(as_text=True)).h1 == EXPECTED[lang]["forbidden"]
        assert reply.mimetype == "text/html"


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_the_admin_page_links_to_the_manual(client: FlaskClient, engine: regflow.Engine,
                                            lang: str) -> None:
    """アカウント管理 offers the manual (「管理者用操作マニュアル」) and its download."""
    signed_in(client, engine, "abcd8-01", EMAIL)
    page = Parsed(get(client, f"/admin?lang={lang}").get_data(as_text=True))
    assert page.links[EXPECTED[lang]["title"]] == "/admin/manual"
    assert "/admin/manual/download" in page.links.values()


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_the_manual_page_covers_every_admin_flow(client: FlaskClient, engine: regflow.Engine,
                                                 lang: str) -> None:
    """The page in the asked language: the guide's rules, then a section per admin flow with
    its button, screens, buttons and messages as the catalog words them; no placeholder left."""
    signed_in(client, engine, "abcd8-01", EMAIL)
    reply = get(client, f"/admin/manual?lang={lang}")
    assert reply.status_code == 200
    for name, value in HEADERS.items():
        assert reply.headers[name] == value, name
    html = reply.get_data(as_text=True)
    assert f'<html lang="{lang}">' in html
    page = Parsed(html)
    assert page.h1 == EXPECTED[lang]["title"]
    for text in EXPECTED[lang]["texts"]:
        assert text in page.words, text
    assert "{" not in page.words
    assert set(ADMIN_FLOWS) <= set(page.sections)
    catalog = Catalog(lang)
    for flow in ADMIN_FLOWS:
        section = section_text(html, flow)
        definition = engine.flows.latest(flow)
        assert catalog.find(BUTTONS[flow]) in section, flow
        for state in ("confirm", "done"):
            assert catalog.find(f"screen.{flow}.{state}.title") in section, (flow, state)
            for piece in re.split(r"\{[a-z_]+\}", catalog.find(f"screen.{flow}.{state}.text") or ""):
                assert piece.strip() in section, (flow, state, piece)
        assert catalog.find(f"action.{flow}.confirm.submit") in section
        assert catalog.find("action.cancel") in section
        messages = {b.message for s in definition.states.values() for bs in s.on.values() for b in bs
                    if b.message}
        assert messages or flow == "set_two_factor"
        for message in messages:
            assert catalog.find(f"message.{message}") in section, (flow, message)
    assert len(page.images) == 1 + 2 * len(ADMIN_FLOWS)  # アカウント管理, each confirm and done
    for src in page.images:
        assert src.startswith("/admin/manual/screenshots/")
        assert src.endswith(f".{lang}.png")
        picture = get(client, src)
        assert picture.status_code == 200, src
        assert picture.mimetype == "image/png"
        assert picture.get_data().startswith(b"\x89PNG\r\n\x1a\n")
        assert picture.headers["Content-Security-Policy"] == HEADERS["Content-Security-Policy"]


def section_text(html: str, flow: str) -> str:
    """The visible text of a flow's section."""
    found = re.search(rf'<section id="{flow}".*?</section>', html, re.S)
    assert found is not None, flow
    return Parsed(found.group()).words


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_the_download_is_one_self_contained_file(client: FlaskClient, engine: regflow.Engine,
                                                 lang: str) -> None:
    """An attachment named as the guide names it, its pictures and styles inside the file."""
    signed_in(client, engine, "abcd8-01", EMAIL)
    reply = get(client, f"/admin/manual/download?lang={lang}")
    assert reply.status_code == 200
    assert reply.mimetype == "text/html"
    assert reply.headers["Content-Disposition"] == EXPECTED[lang]["filename"]
    for name, value in HEADERS.items():
        assert reply.headers[name] == value, name
    html = reply.get_data(as_text=True)
    page = Parsed(html)
    assert page.h1 == EXPECTED[lang]["title"]
    assert "{" not in page.words
    for text in EXPECTED[lang]["texts"]:
        assert text in page.words, text
    assert set(ADMIN_FLOWS) <= set(page.sections)
    assert "<style>" in html
    assert not re.search(r"<(script|link|iframe)\b", html)
    assert not re.search(r'(src|href)="/', html)  # nothing from the site: the file stands alone
    assert len(page.images) == 1 + 2 * len(ADMIN_FLOWS)
    for src in page.images:
        head, _, data = src.partition(",")
        assert head == "data:image/png;base64"
        assert base64.b64decode(data).startswith(b"\x89PNG\r\n\x1a\n")


def test_only_the_manual_s_pictures_are_served(client: FlaskClient, engine: regflow.Engine) -> None:
    """A name that is not one of the package's screenshots is not found."""
    signed_in(client, engine, "abcd8-01", EMAIL)
    for name in ("intro.ja.md", "nope.ja.png", "..%2F..%2Flocales%2Fja.toml", "admin.fr.png",
                 "ADMIN.ja.png"):
        assert get(client, f"/admin/manual/screenshots/{name}").status_code == 404, name
    assert get(client, "/admin/manual/screenshots/admin.ja.png").status_code == 200


# ---- in chromium ---------------------------------------------------------------------------------




@pytest.fixture
def tab(chromium: Any, engine: regflow.Engine) -> Iterator[Any]:
    """A tab on a real server for the engine, signed in as the admin (its session cookie)."""
    with serving(create_app(engine)) as base:
        context = chromium.new_context(base_url=base, viewport={"width": 480, "height": 900},
                                       device_scale_factor=1, locale="ja-JP", accept_downloads=True)
        context.set_default_timeout(10_000)
        context.add_cookies([{"name": "regflow_session", "value": session_of(engine, "abcd8-01", EMAIL),
                              "domain": "127.0.0.1", "path": "/", "httpOnly": True, "sameSite": "Lax"}])
        page = context.new_page()
        complaints: list[str] = []  # CSP refusals (a picture it blocks), script errors
        page.on("console", lambda m: complaints.append(m.text) if m.type in ("error", "warning")
                and not m.text.startswith("Failed to load resource") else None)  # the favicon
        page.on("pageerror", lambda error: complaints.append(str(error)))
        try:
            yield page
        finally:
            context.close()
        assert complaints == []


def heading(page: Any, text: str) -> None:
    """The page's h1 is ``text``."""
    from playwright.sync_api import expect

    expect(page.locator("h1")).to_have_text(text)


def click(page: Any, target: Any) -> None:
    """Click something that loads a page and wait for it."""
    with page.expect_navigation():
        target.click()


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_the_admin_opens_the_manual_in_a_browser(tab: Any, lang: str, tmp_path: Path) -> None:
    """アカウント管理 → 「管理者用操作マニュアル」: the manual with every picture shown; its
    download link saves the file under the guide's name, and the file shows them too."""
    tab.goto(f"/admin?lang={lang}")
    heading(tab, Catalog(lang).text("web.admin.title"))
    click(tab, tab.get_by_role("link", name=EXPECTED[lang]["title"], exact=True))
    heading(tab, EXPECTED[lang]["title"])
    assert tab.url.endswith("/admin/manual")
    images = tab.locator("img")
    assert images.count() == 1 + 2 * len(ADMIN_FLOWS)
    for n in range(images.count()):  # loaded, so the page's CSP let them in
        assert images.nth(n).evaluate("img => img.complete && img.naturalWidth > 0"), n
    link = tab.locator('a[href="/admin/manual/download"]')
    with tab.expect_download() as saved:
        link.click()
    expected_name = "管理者用操作マニュアル.html" if lang == "ja" else "regflow-admin-manual.html"
    assert saved.value.suggested_filename == expected_name
    file = tmp_path / saved.value.suggested_filename
    saved.value.save_as(file)
    tab.goto(file.as_uri())  # the saved file, opened from disk
    heading(tab, EXPECTED[lang]["title"])
    images = tab.locator("img")
    assert images.count() == 1 + 2 * len(ADMIN_FLOWS)
    for n in range(images.count()):  # inside the file, and let in by its own policy
        assert images.nth(n).evaluate("img => img.complete && img.naturalWidth > 0"), n


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_screenshots_of_the_manual(tab: Any, engine: regflow.Engine, clock: regflow.ManualClock,
                                   lang: str) -> None:
    """アカウント管理 and each admin flow's confirm and done screens, taken again into
    ``regflow/data/manual/`` (the pictures the manual shows)."""
    register(engine, "abcd8-03", JIRO, display_name="次郎")
    clock.advance(PROVISIONING)
    session_of(engine, "abcd8-02", HANA)  # 花子 links her seat; then a wrong password: ロック解除
    wrong = engine.start("sign_in", {"account": "abcd8-02"})
    engine.send(wrong, "submit", {"email": HANA, "password": "Wrong-pass-1"})
    catalog = Catalog(lang)

    def shoot(name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=SHOTS / f"{name}.{lang}.png", full_page=True, animations="disabled",
                       caret="hide")

    tab.set_viewport_size({"width": 1120, "height": 900})
    tab.goto(f"/admin?lang={lang}")
    heading(tab, catalog.text("web.admin.title"))
    hana = tab.locator("tbody tr").filter(has_text=HANA)
    assert hana.get_by_role("button").count() == 4  # every button a login's row can have
    shoot("admin")
    tab.set_viewport_size({"width": 480, "height": 360})  # full page: as tall as the screen is
    for flow, who, check in (("unlock_login", HANA, False), ("unlink_login", HANA, False),
                             ("delete_login", JIRO, False), ("require_two_factor", None, True),
                             ("set_two_factor", None, True), ("transfer_admin", HANA, False)):
        tab.goto("/admin")
        label = catalog.text(BUTTONS[flow])
        scope = tab.locator("tbody tr").filter(has_text=who) if who else tab
        click(tab, scope.get_by_role("button", name=label, exact=True))
        heading(tab, catalog.text(f"screen.{flow}.confirm.title"))
        shoot(f"{flow}-confirm")
        if check:
            tab.get_by_label(catalog.text("field.enabled")).check()
        submit = catalog.text(f"action.{flow}.confirm.submit")
        click(tab, tab.get_by_role("button", name=submit, exact=True))
        heading(tab, catalog.text(f"screen.{flow}.done.title"))
        shoot(f"{flow}-done")
    assert {p.name for p in SHOTS.glob(f"*.{lang}.png")} == {
        f"admin.{lang}.png", *(f"{f}-{s}.{lang}.png" for f in ADMIN_FLOWS for s in ("confirm", "done"))}
