"""The 管理者用操作マニュアル, served from アカウント管理 (the guide: the admin downloads it there).

``GET /admin/manual`` shows it as a page in the page's language (the same rules as every page:
``?lang=``, remembered, else the browser's); ``GET /admin/manual/download`` answers the same
manual as one self-contained HTML file (CSS inline, screenshots as ``data:`` URIs) to save;
``GET /admin/manual/screenshots/<name>`` serves the page's pictures, since its
Content-Security-Policy allows images from the site only. All three are for the signed-in
admin of a customer only, like アカウント管理 itself: 401 without a sign-in, 403 for a member.
"""

from __future__ import annotations

from urllib.parse import quote

from flask import Blueprint, request
from werkzeug.wrappers import Response

from regflow.web.answers import _admin_login, _engine, _html, _lang, _message, _page, _security_headers
from regflow.web.forms import Texts, render
from regflow.web.manual_content import Manual, build_manual, data_uri, screenshot
from regflow.web.pages import ADMIN_FLOWS

manual = Blueprint("manual", __name__)

SHOTS_PATH = "/admin/manual/screenshots"
FILE_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"  # the saved file's own
ASCII_FILENAME = "regflow-admin-manual.html"  # for browsers that cannot read ``filename*``


@manual.get("/admin/manual")
def manual_page() -> Response:
    """The manual as a page of the site, its screenshots served by ``screenshots``."""
    texts = Texts(_lang())
    refused = _refusal(texts)
    if refused is not None:
        return refused
    content = _build(texts)
    body = render("manual.html.j2", page=_page(texts, viewer="admin"), texts=texts, manual=content,
                  src={s.name: f"{request.script_root}{SHOTS_PATH}/{s.name}" for s in content.shots})
    return _html(body)


@manual.get("/admin/manual/download")
def download() -> Response:
    """The manual as one HTML file to save (``Content-Disposition: attachment``)."""
    texts = Texts(_lang())
    refused = _refusal(texts)
    if refused is not None:
        return refused
    content = _build(texts)
    images = {s.name: screenshot(s.name) for s in content.shots}
    body = render("manual_file.html.j2", texts=texts, manual=content, product=_engine().services.product,
                  csp=FILE_CSP, src={name: data_uri(png) for name, png in images.items() if png})
    response = Response(body, mimetype="text/html")
    response.headers["Content-Disposition"] = _attachment(texts("manual.filename"))
    return response


@manual.get(f"{SHOTS_PATH}/<name>")
def screenshots(name: str) -> Response:
    """One of the manual's screenshots (PNG)."""
    texts = Texts(_lang())
    refused = _refusal(texts)
    if refused is not None:
        return refused
    png = screenshot(name)
    if png is None:
        return _message(texts, 404, "error.not_found_title", "error.not_found_text", viewer="admin")
    return Response(png, mimetype="image/png")


manual.after_request(_security_headers)  # the pages' headers: this is one of them


def _refusal(texts: Texts) -> Response | None:
    """The answer of アカウント管理 to anyone but the customer's admin; None for the admin."""
    admin = _admin_login(texts)
    return admin if isinstance(admin, Response) else None


def _build(texts: Texts) -> Manual:
    return build_manual(_engine().flows, ADMIN_FLOWS, texts.lang)


def _attachment(filename: str) -> str:
    """``attachment`` with the file's name for every browser: an ASCII fallback and RFC 5987's
    UTF-8 form (the Japanese name)."""
    fallback = filename if filename.isascii() and '"' not in filename else ASCII_FILENAME
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
