"""The answers the HTML blueprints share (the pages, the manual, the traffic pages).

Who asks (the engine, the page's language, the sign-in cookie, the viewer), the page chrome
every page carries (its CSRF token included), the links onwards (to sign in, to an ended flow's
next step), the messages (404, 429, and アカウント管理's refusal: 401 without a sign-in, 403 for
a member) and the pages' security headers. The views themselves are in ``regflow.web.pages``,
``regflow.web.manual`` and ``regflow.web.traffic``.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from urllib.parse import urlencode

from flask import current_app, get_flashed_messages, request, session, url_for
from werkzeug.wrappers import Response

from regflow.engine import Engine
from regflow.ground.catalog import DEFAULT_LANGUAGE, LANGUAGES
from regflow.ground.exceptions import Forbidden, NotSignedIn, RateLimited
from regflow.ground.records import Login
from regflow.ground.screens import Snapshot
from regflow.runtime import sessions
from regflow.web.forms import SESSION_COOKIE, Link, Page, Texts, render
from regflow.web.shared import SIGN_IN_COOKIE, engine_of

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _security_headers(response: Response) -> Response:
    """The pages' headers (Content-Security-Policy included), each blueprint's ``after_request``."""
    response.headers.update(SECURITY_HEADERS)
    return response


# ---- who asks ------------------------------------------------------------------------------------


def _engine() -> Engine:
    return engine_of(current_app)


def sign_in_cookie() -> str:
    """The name of this app's sign-in cookie (``create_app(session_cookie=...)``)."""
    return str(current_app.config.get(SIGN_IN_COOKIE, SESSION_COOKIE))


def _signed_in() -> str | None:
    """The sign-in session token this browser sent, if any."""
    return request.cookies.get(sign_in_cookie()) or None


def _lang() -> str:
    """``?lang=`` (remembered), else the remembered one, else Accept-Language, else Japanese."""
    asked = request.args.get("lang")
    if asked in LANGUAGES:
        session["lang"] = asked
        return str(asked)
    kept = session.get("lang")
    if kept in LANGUAGES:
        return str(kept)
    return request.accept_languages.best_match(LANGUAGES) or DEFAULT_LANGUAGE


def _csrf() -> str:
    token = session.get("csrf")
    if not isinstance(token, str):
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def _viewer() -> str | None:
    """Who the session cookie signs in: ``"admin"``, ``"member"`` or nobody."""
    token = _signed_in()
    if not token:
        return None
    try:
        _engine().admin_logins(token)
    except NotSignedIn:
        return None
    except Forbidden:
        return "member"
    return "admin"


def _admin_login(texts: Texts) -> Login | Response:
    """The signed-in admin of a customer; for anyone else the answer of アカウント管理 (the
    admin-only pages' one check)."""
    engine = _engine()
    try:
        with engine.store.transaction(write=False) as tx:
            return sessions.require(tx, _signed_in() or "", engine.clock.now(), admin=True)
    except Forbidden as exc:
        return _not_admin(texts, exc)


def _not_admin(texts: Texts, exc: Forbidden) -> Response:
    """アカウント管理 refused: 401 without a sign-in (``NotSignedIn``), 403 for a member."""
    if isinstance(exc, NotSignedIn):
        return _message(texts, 401, "error.unauthorized_title", "error.unauthorized_text",
                        links=[_sign_in_link(texts)])
    return _message(texts, 403, "error.forbidden_title", "error.forbidden_text", viewer="member")


# ---- pages, links and messages -------------------------------------------------------------------


def _page(texts: Texts, *, viewer: str | None = None, refresh: int | None = None) -> Page:
    other = "en" if texts.lang == "ja" else "ja"
    args = {**request.args.to_dict(), "lang": other} if request.method == "GET" else {"lang": other}
    path = request.script_root + (request.path if request.method == "GET" else "/")
    flashes = tuple((str(item[0]), texts(str(item[1])))
                    for item in get_flashed_messages(with_categories=True) if isinstance(item, tuple))
    return Page(texts=texts, product=_engine().services.product, lang_url=f"{path}?{urlencode(args)}",
                csrf=_csrf(), root=request.script_root, viewer=viewer, flashes=flashes,
                refresh=refresh)


def _html(body: str, status: int = 200) -> Response:
    return Response(body, status=status, mimetype="text/html")


def _onwards(snapshot: Snapshot, texts: Texts, viewer: str | None) -> list[Link]:
    """Where an ended flow leads: the flow it handed over to, back to the admin page or to sign-in."""
    links = []
    if snapshot.continue_with:
        links.append(Link(url_for("pages.flow", flow_id=str(snapshot.continue_with["id"])),
                          texts("screen.continue")))
    if snapshot.id in session.get("admin_flows", []):
        return [*links, Link(url_for("pages.admin"), texts("screen.back_to_admin"))]
    if snapshot.status != "completed":
        links.append(Link(_sign_in_link(texts).href, texts("screen.restart")))
    elif viewer is None:
        links.append(_sign_in_link(texts))
    if viewer == "admin":
        links.append(Link(url_for("pages.admin"), texts("admin_link")))
    return links


def _sign_in_link(texts: Texts) -> Link:
    """The launch of the seat this browser was opened for (the start page when unknown)."""
    seat = session.get("seat")
    href = url_for("pages.home", account=seat) if isinstance(seat, str) else url_for("pages.home")
    return Link(href, texts("screen.to_sign_in"))


def _message(texts: Texts, status: int, title: str, text: str, *, links: Sequence[Link] = (),
             viewer: str | None = None) -> Response:
    body = render("message.html.j2", page=_page(texts, viewer=viewer), title=texts(title),
                  text=texts(text), alert=status >= 400, links=list(links))
    return _html(body, status)


def _too_many(texts: Texts, exc: RateLimited, *, viewer: str | None = None) -> Response:
    """429: a limit across flows (flows started from this client) was reached."""
    response = _message(texts, 429, "error.rate_limited_title", "flash.rate_limited",
                        links=[_sign_in_link(texts)], viewer=viewer)
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


def _not_found(texts: Texts) -> Response:
    return _message(texts, 404, "error.not_found_title", "error.not_found_text",
                    links=[_sign_in_link(texts)])
