"""Mounted under a prefix (WSGI, ASGI, behind a proxy), the pages keep to it; processes agree.

The WSGI and ASGI hosts are the examples of docs/web.md, run as they are written there.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask, session
from live_server import serve_process, serving
from pg import drop_schema, postgres_url
from test_pages import CONTRACT, EMAIL, PASSWORD, SEAT, SERVED, Browser, Reply, fill, form_of, press

import regflow
from regflow.definitions.validation import email_key
from regflow.ground.records import Login
from regflow.runtime.context import new_id
from regflow.web import create_app

ROOT = Path(__file__).parent.parent
BLOCK = re.compile(r"```python\n(.*?)```", re.S)
PREFIX = "/accounts"
FLOW_PAGE = re.compile(r"/accounts/flows/[A-Za-z0-9_-]{22}")


def docs_example(marker: str, **names: Any) -> dict[str, Any]:
    """Run the docs/web.md example that contains ``marker`` (with ``names`` given); its names."""
    (block,) = [b for b in BLOCK.findall((ROOT / "docs" / "web.md").read_text("utf-8")) if marker in b]
    namespace: dict[str, Any] = {"__name__": "__docs__", **names}
    exec(compile(block, "docs/web.md", "exec"), namespace)
    return namespace


def seed_admin(engine: regflow.Engine) -> None:
    """A ready admin login of the demo customer, linked to SEAT (a sign-in completes at once)."""
    now = datetime.now(UTC)
    login = Login(id=new_id(), customer_id=CONTRACT["customer_id"], email=EMAIL,
                  email_key=email_key(EMAIL), password_hash=engine.services.hasher.hash(PASSWORD),
                  display_name="sample", role="admin", two_factor=False,
                  ready_at=now - timedelta(minutes=1), account=SEAT,
                  created_at=now - timedelta(minutes=11))
    with engine.store.transaction() as tx:
        tx.logins.insert(login)


def within_prefix(page: Reply) -> None:
    """Every link and form of a page stays under the prefix."""
    targets = [a.attrs["href"] for a in page.doc.all("a") if not a.attrs["href"].startswith("#")]
    targets += [f.attrs["action"] for f in page.doc.all("form")]
    assert targets
    for target in targets:
        assert target.startswith(f"{PREFIX}/"), target


def attributes(header: str) -> dict[str, str]:
    """A Set-Cookie header's attributes, lower-case names."""
    return {k.strip().lower(): v for k, _, v in (part.partition("=") for part in header.split(";")[1:])}


# ---- WSGI: the docs' DispatcherMiddleware example on a real server ---------------------------------


@pytest.fixture
def host() -> Iterator[str]:
    """The docs' WSGI example (a Flask host) with a sign-in of its own, served for real."""
    names = docs_example("DispatcherMiddleware")
    yours: Flask = names["yours"]
    yours.secret_key = "the host's own key"

    @yours.get("/login")
    def login() -> str:
        session["user"] = "host-user"
        return "ok"

    @yours.get("/whoami")
    def whoami() -> str:
        return str(session.get("user", "nobody"))

    engine: regflow.Engine = names["engine"]
    seed_admin(engine)
    with serving(yours) as url:
        SERVED[url] = yours.wsgi_app.mounts[PREFIX]  # type: ignore[attr-defined]
        try:
            yield url
        finally:
            del SERVED[url]


def test_pages_launch_sign_in_admin_and_sign_out_under_the_prefix(host: str) -> None:
    """Launch, forms, redirects, links, アカウント管理, the manual and sign-out keep to /accounts;
    the cookies are regflow_*, scoped to it; the host's own ``session`` survives."""
    base = host
    browser = Browser(base)
    assert browser.request("/login").status == 200
    host_cookie = browser.cookie("session")
    assert host_cookie is not None
    assert host_cookie.path == "/"

    launched = browser.request(f"{PREFIX}/?account={SEAT}")
    assert launched.status == 303
    assert FLOW_PAGE.fullmatch(launched.location), launched.location
    assert attributes(launched.cookies("regflow_page")[0])["path"] == PREFIX
    assert attributes(launched.cookies("regflow_flow")[0])["path"] == launched.location
    assert not launched.cookies("session")
    page = browser.go(launched.location)
    assert page.status == 200
    within_prefix(page)
    assert page.doc.one("form", method="post").attrs["action"] == launched.location

    answer = press(browser, page, "submit", email=EMAIL, password=PASSWORD)
    assert answer.status == 303
    assert FLOW_PAGE.fullmatch(answer.location)
    (sign_in,) = answer.cookies("regflow_session")
    assert attributes(sign_in)["path"] == PREFIX
    page = browser.go(answer.location)
    assert page.status == 200
    within_prefix(page)
    assert page.doc.one("nav").all("a", href=f"{PREFIX}/admin")

    admin = browser.go(f"{PREFIX}/admin")
    assert admin.status == 200
    within_prefix(admin)
    manual = browser.go(f"{PREFIX}/admin/manual")
    assert manual.status == 200
    within_prefix(manual)
    shots = [img.attrs["src"] for img in manual.doc.all("img")]
    assert all(src.startswith(f"{PREFIX}/admin/manual/screenshots/") for src in shots)
    if shots:  # a PNG: not through Browser.request, which reads text
        with browser.opener.open(base + shots[0], timeout=10) as picture:
            assert (picture.status, picture.headers["Content-Type"]) == (200, "image/png")

    form = form_of(admin, action=f"{PREFIX}/sign-out")
    out = browser.request(form.attrs["action"], fill(form))
    assert out.status == 303
    assert urlsplit(out.headers["Location"]).path == f"{PREFIX}/"
    assert attributes(out.cookies("regflow_session")[0])["path"] == PREFIX
    assert browser.cookie("regflow_session") is None
    assert browser.go(out.headers["Location"].removeprefix(base)).status == 200

    assert browser.cookie("session") is not None
    assert browser.cookie("session").value == host_cookie.value  # type: ignore[union-attr]
    assert browser.request("/whoami").body == "host-user"


def test_the_api_location_carries_the_prefix(host: str) -> None:
    """``POST /accounts/api/flows/sign_in`` answers a Location under the prefix."""
    base = host
    req = urllib.request.Request(f"{base}{PREFIX}/api/flows/sign_in", method="POST",
                                 data=json.dumps({"context": {"account": SEAT}}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 201
        assert resp.headers["Location"].startswith(f"{PREFIX}/api/flows/")


# ---- behind a reverse proxy: X-Forwarded-Prefix ------------------------------------------------------


@pytest.mark.parametrize("trusted", [0, 1])
def test_x_forwarded_prefix_is_believed_only_from_trusted_proxies(trusted: int) -> None:
    """With ``trusted_proxies``, redirects, forms and cookies follow X-Forwarded-Prefix; without,
    the header is ignored."""
    engine = regflow.Engine.from_url("memory://", mail="memory", hasher="fast")
    engine.contracts.add(**CONTRACT)
    # no cookie jar: it would match the cookies' Paths against the path behind the proxy
    client = create_app(engine, trusted_proxies=trusted).test_client(use_cookies=False)
    headers = {"X-Forwarded-Prefix": PREFIX, "X-Forwarded-For": "203.0.113.9"}
    launched = client.get(f"/?account={SEAT}", headers=headers)
    assert launched.status_code == 303
    expected = PREFIX if trusted else ""
    assert re.fullmatch(f"{expected}/flows/[A-Za-z0-9_-]{{22}}", launched.headers["Location"])
    page_cookie = [h for h in launched.headers.getlist("Set-Cookie") if h.startswith("regflow_page=")]
    assert attributes(page_cookie[0])["path"] == (PREFIX if trusted else "/")
    jar = "; ".join(h.split(";", 1)[0] for h in launched.headers.getlist("Set-Cookie"))
    page = client.get(launched.headers["Location"].removeprefix(expected),
                      headers={**headers, "Cookie": jar})
    assert page.status_code == 200
    assert f'action="{launched.headers["Location"]}"' in page.get_data(as_text=True)


# ---- ASGI: the docs' Starlette example ----------------------------------------------------------------


async def _asgi_get(app: Any, path: str, query: str = "",
                    cookie: str = "") -> tuple[int, list[tuple[str, str]], str]:
    """One GET through an ASGI app: status, headers, body."""
    headers = [(b"host", b"example.jp")] + ([(b"cookie", cookie.encode())] if cookie else [])
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
             "query_string": query.encode(), "headers": headers,
             "client": ("127.0.0.1", 50000), "server": ("example.jp", 80)}
    incoming = [{"type": "http.request", "body": b"", "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return (start["status"], [(k.decode(), v.decode()) for k, v in start["headers"]],
            body.decode("utf-8"))


def test_the_docs_asgi_example_mounts_the_pages_under_the_prefix() -> None:
    """In Starlette through a2wsgi: redirect, form action, links and cookies under /accounts."""
    pytest.importorskip("a2wsgi")
    pytest.importorskip("starlette")
    engine = regflow.Engine.from_url("memory://", mail="memory", hasher="fast")
    engine.contracts.add(**CONTRACT)
    asgi = docs_example("a2wsgi", engine=engine, create_app=create_app)["asgi"]
    status, headers, body = asyncio.run(_asgi_get(asgi, "/"))
    assert (status, body) == (200, "your application")
    status, headers, _ = asyncio.run(_asgi_get(asgi, f"{PREFIX}/", f"account={SEAT}"))
    assert status == 303
    location = dict(headers)["location"]
    assert FLOW_PAGE.fullmatch(location)
    cookies = [v for k, v in headers if k == "set-cookie"]
    paths = {c.split("=", 1)[0]: attributes(c)["path"] for c in cookies}
    assert paths == {"regflow_flow": location, "regflow_page": PREFIX}
    jar = "; ".join(c.split(";", 1)[0] for c in cookies)
    status, _, page = asyncio.run(_asgi_get(asgi, location, cookie=jar))
    assert status == 200
    assert f'action="{location}"' in page
    assert 'href="/' not in page.replace(f'href="{PREFIX}/', "")


# ---- several `regflow serve` processes on one database ------------------------------------------------


@contextmanager
def _serve(db: str, folder: Path) -> Iterator[str]:
    """``regflow serve`` on ``db`` (no REGFLOW_SECRET: the store's shared secret); its base URL."""
    env = {k: v for k, v in os.environ.items() if k != "REGFLOW_SECRET"}
    with serve_process("--db", db, "--mail", f"outbox:{folder / 'outbox'}", "--hasher", "fast",
                       "--no-relay", env=env) as (base, _):
        yield base


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_form_from_one_process_posts_to_another(kind: str, tmp_path: Path) -> None:
    """Two ``regflow serve`` on one database: a page fetched from A, its form posted to B → 303."""
    db = f"sqlite:///{tmp_path / 'regflow.db'}" if kind == "sqlite" else postgres_url()
    try:
        seeding = regflow.Engine.from_url(db, mail="memory", hasher="fast")
        seeding.contracts.add(**CONTRACT)
        seeding.store.close()
        with _serve(db, tmp_path / "a") as a, _serve(db, tmp_path / "b") as b:
            browser = Browser(a)
            launched = browser.request(f"/?account={SEAT}")
            assert launched.status == 303
            page = browser.go(launched.location)
            assert page.status == 200
            browser.base = b  # cookies are per host, not per port: B gets A's
            answer = press(browser, page, "create_account")
            assert answer.status == 303, answer.body
            onwards = browser.go(answer.location)
            assert onwards.status == 200
            browser.base = a  # and back: A takes B's form
            answer = press(browser, onwards, "submit", email="mounted@example.jp")
            assert answer.status == 303, answer.body
    finally:
        if kind == "postgresql":
            drop_schema(db)


def test_the_cookie_names_are_settable() -> None:
    """``create_app(session_cookie=, page_cookie=)`` names the sign-in and Flask cookies."""
    engine = regflow.Engine.from_url("memory://", mail="memory", hasher="fast")
    engine.contracts.add(**CONTRACT)
    seed_admin(engine)
    client = create_app(engine, session_cookie="acct_signin", page_cookie="acct_page").test_client()
    launched = client.get(f"/?account={SEAT}")
    assert {h.split("=", 1)[0] for h in launched.headers.getlist("Set-Cookie")} == {
        "regflow_flow", "acct_page"}
    page = client.get(launched.headers["Location"]).get_data(as_text=True)
    posted = {name: value for name, value in re.findall(r'name="([^"]+)" value="([^"]*)"', page)
              if name in ("csrf_token", "form")}
    answer = client.post(launched.headers["Location"],
                         data={**posted, "email": EMAIL, "password": PASSWORD, "event": "submit"})
    assert answer.status_code == 303
    assert [h for h in answer.headers.getlist("Set-Cookie") if h.startswith("acct_signin=")]
    assert client.get_cookie("regflow_session") is None
    assert client.get("/admin").status_code == 200
