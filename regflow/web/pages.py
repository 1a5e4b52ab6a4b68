"""The HTML front end: server-rendered pages from the neutral screen model.

Views know snapshots, never flows or states (the admin page excepted, which starts admin flows
by name). Every form carries a CSRF token kept in the Flask session and a signed ``form`` token
(the flow, the rendered fields and a nonce); the nonce keys the Idempotency-Key, so a double
submit or a browser retry of one rendered form acts once. Answers follow Post/Redirect/Get.

The Flask session keeps only: ``csrf``, ``lang`` (after ``?lang=``), ``seat`` (the account the
page was launched for, for "start again") and ``admin_flows`` (recent flows started from
アカウント管理, whose end leads back there). The sign-in session lives in its own cookie; so
does each flow's token (a flow id is not a secret, its token is): ``regflow_flow``,
HttpOnly, SameSite=Lax, its Path the flow's page, so that a browser sends each flow only its
own. A page started in one browser is "not found" in any other. The CSRF token is replaced
whenever a sign-in session begins or ends.

Mounted under a prefix, every link, form action and redirect starts with it (``url_for`` or
``request.script_root``), and every cookie's Path is within it. What every page's answer is built
from (the page chrome, messages, links onwards, the security headers) is in
``regflow.web.answers``, shared with the manual and the traffic pages.
"""

from __future__ import annotations

import secrets

from flask import Blueprint, current_app, flash, redirect, request, session, url_for
from werkzeug.wrappers import Response

from regflow.ground.exceptions import (
    ConcurrentUpdate,
    EventNotAllowed,
    FlowGone,
    FlowNotFound,
    Forbidden,
    IdempotencyConflict,
    InvalidContext,
    NotSignedIn,
    RateLimited,
    RegflowError,
    StoreError,
    TransientError,
    VersionUnavailable,
)
from regflow.ground.screens import Snapshot
from regflow.web.answers import (
    _engine,
    _html,
    _lang,
    _message,
    _not_admin,
    _not_found,
    _onwards,
    _page,
    _security_headers,
    _sign_in_link,
    _signed_in,
    _too_many,
    _viewer,
    sign_in_cookie,
)
from regflow.web.forms import (
    Texts,
    admin_row,
    clean_account,
    field_view,
    form_data,
    form_spec,
    idempotency_key,
    load_form,
    refresh_seconds,
    render,
    same_token,
    sign_form,
    split_actions,
    split_messages,
)

pages = Blueprint("pages", __name__)

LAUNCH_FLOW = "sign_in"  # what the ASP application's launch opens
ADMIN_FLOWS = {  # flow → whether it acts on a target login chosen in the list
    "unlink_login": True, "delete_login": True, "transfer_admin": True, "unlock_login": True,
    "require_two_factor": False, "set_two_factor": False,
}
FLOW_COOKIE = "regflow_flow"
FLOW_COOKIE_MAX_AGE = 4 * 3600  # seconds; renewed by every action (flows expire after 60 min idle)
ADMIN_TRAIL = 20

# ---- pages ---------------------------------------------------------------------------------------


@pages.get("/")
def home() -> Response:
    """The application's launch (``?account=``) starts a sign-in; without one, an explanation."""
    texts = Texts(_lang())
    if "account" not in request.args:
        return _start_page(texts, "", None)
    account = clean_account(request.args.get("account"))
    if account is None:
        return _start_page(texts, "", texts("start.account_required"), 400)
    try:
        snapshot = _engine().start(LAUNCH_FLOW, {"account": account}, lang=texts.lang,
                                   client=request.remote_addr)
    except InvalidContext:
        return _start_page(texts, account, texts("start.account_required"), 400)
    except RateLimited as exc:
        return _too_many(texts, exc)
    session["seat"] = account
    return _keep_token(_see(snapshot.id), snapshot)


@pages.get("/flows/<flow_id>")
def flow(flow_id: str) -> Response:
    """The flow's current screen."""
    texts = Texts(_lang())
    try:
        snapshot = _engine().get(flow_id, token=_flow_token(), lang=texts.lang)
    except FlowNotFound:  # also without this browser's token of the flow, or with another
        return _not_found(texts)
    return _screen(snapshot, texts)


@pages.post("/flows/<flow_id>")
def act(flow_id: str) -> Response:
    """Send the pressed action with the form's fields, then redirect to the answer's page."""
    texts = Texts(_lang())
    if not _csrf_ok():
        return _message(texts, 400, "error.csrf_title", "error.csrf_text")
    secret = current_app.secret_key
    assert secret is not None
    spec = load_form(secret, request.form.get("form", ""), flow_id)
    if spec is None:
        return _message(texts, 400, "error.bad_request_title", "error.bad_request_text")
    event = request.form.get("event", "")
    engine, old = _engine(), _signed_in()
    try:
        answer = engine.send(flow_id, event, form_data(spec, request.form, event),
                             token=_flow_token(),
                             idempotency_key=idempotency_key(session["csrf"], str(spec["n"])),
                             session=old, lang=texts.lang, client=request.remote_addr)
    except FlowNotFound:
        return _not_found(texts)
    except (FlowGone, VersionUnavailable, EventNotAllowed, IdempotencyConflict, Forbidden,
            InvalidContext, RateLimited) as exc:
        flash(_refusal_key(exc), "error")
        return _see(flow_id)
    response = _keep_token(_see(answer.id), answer)  # a hand-over's new flow, or this one again
    if answer.session is not None:
        if old and old != answer.session:
            engine.end_session(old)  # one browser, one sign-in
        response.set_cookie(sign_in_cookie(), answer.session, max_age=engine.services.session_ttl,
                            path=_root_path(), secure=request.is_secure, httponly=True,
                            samesite="Lax")
        _new_csrf()  # a token seen before the sign-in is worth nothing after it
    return response


@pages.get("/admin")
def admin() -> Response:
    """アカウント管理: the logins of the admin's customer, with the admin actions."""
    texts = Texts(_lang())
    try:
        logins = _engine().admin_logins(_signed_in() or "")
    except Forbidden as exc:
        return _not_admin(texts, exc)
    zone = _engine().services.timezone
    rows = [admin_row(number, login, texts, zone) for number, login in enumerate(logins, start=1)]
    return _html(render("admin.html.j2", page=_page(texts, viewer="admin"), rows=rows))


@pages.post("/admin/flows/<name>")
def admin_flow(name: str) -> Response:
    """Start an admin flow with the signed-in session; its confirm screen follows."""
    texts = Texts(_lang())
    if name not in ADMIN_FLOWS:
        return _not_found(texts)
    if not _csrf_ok():
        return _message(texts, 400, "error.csrf_title", "error.csrf_text")
    context = {"target": request.form.get("target", "")} if ADMIN_FLOWS[name] else {}
    try:
        snapshot = _engine().start(name, context, session=_signed_in(),
                                   lang=texts.lang, client=request.remote_addr)
    except NotSignedIn:
        return _message(texts, 401, "error.unauthorized_title", "error.unauthorized_text",
                        links=[_sign_in_link(texts)])
    except Forbidden:
        return _message(texts, 403, "error.forbidden_title", "error.forbidden_text",
                        viewer=_viewer())
    except InvalidContext:
        return _message(texts, 400, "error.bad_request_title", "error.bad_request_text")
    except RateLimited as exc:
        return _too_many(texts, exc, viewer=_viewer())
    trail = [str(i) for i in session.get("admin_flows", []) if isinstance(i, str)]
    session["admin_flows"] = [*trail, snapshot.id][-ADMIN_TRAIL:]
    return _keep_token(_see(snapshot.id), snapshot)


@pages.post("/sign-out")
def sign_out() -> Response:
    """End the sign-in session and forget its cookie."""
    texts = Texts(_lang())
    if not _csrf_ok():
        return _message(texts, 400, "error.csrf_title", "error.csrf_text")
    token = _signed_in()
    if token:
        _engine().end_session(token)
    flash("flash.signed_out", "info")
    _new_csrf()
    response = redirect(_sign_in_link(texts).href, 303)
    response.delete_cookie(sign_in_cookie(), path=_root_path(), secure=request.is_secure,
                           httponly=True, samesite="Lax")
    return response


pages.after_request(_security_headers)


# ---- helpers -------------------------------------------------------------------------------------


def _root_path() -> str:
    """The Path of the cookies every page gets: the mount's prefix, ``/`` at the root."""
    return request.script_root or "/"


def _new_csrf() -> None:
    """Replace the CSRF token (at sign-in and sign-out: one never outlives a change of who is
    signed in). Forms rendered before it no longer post."""
    session["csrf"] = secrets.token_urlsafe(32)


def _flow_token() -> str | None:
    """This browser's token of the flow the request is about (its cookie's Path is the flow's)."""
    return request.cookies.get(FLOW_COOKIE) or None


def _keep_token(response: Response, snapshot: Snapshot) -> Response:
    """Keep the token of the snapshot's flow in this browser: a cookie only that flow's page
    receives, HttpOnly, SameSite=Lax, Secure under HTTPS."""
    if snapshot.flow_token is not None:
        response.set_cookie(FLOW_COOKIE, snapshot.flow_token, max_age=FLOW_COOKIE_MAX_AGE,
                            path=_flow_path(snapshot.id), secure=request.is_secure, httponly=True,
                            samesite="Lax")
    return response


def _flow_path(flow_id: str) -> str:
    return f"{request.script_root}/flows/{flow_id}"


def _csrf_ok() -> bool:
    expected = session.get("csrf")
    return same_token(expected if isinstance(expected, str) else None, request.form.get("csrf_token"))


def _see(flow_id: str) -> Response:
    """303 See Other to a flow's page."""
    return redirect(url_for("pages.flow", flow_id=flow_id), 303)


def _screen(snapshot: Snapshot, texts: Texts) -> Response:
    engine = _engine()
    screen = snapshot.screen
    waiting = snapshot.status == "active" and not screen.actions
    viewer = _viewer()
    page = _page(texts, viewer=viewer,
                 refresh=refresh_seconds(snapshot, engine.clock.now()) if waiting else None)
    top, by_field = split_messages(snapshot)
    buttons, link_actions = split_actions(screen.actions)
    secret = current_app.secret_key
    assert secret is not None
    body = render(
        "screen.html.j2", page=page, screen=screen, flow_id=snapshot.id, top_messages=top,
        fields=[field_view(f, by_field.get(f.name, []), texts) for f in screen.fields],
        buttons=buttons, link_actions=link_actions,
        form_token=sign_form(secret, form_spec(snapshot, secrets.token_urlsafe(16)))
        if screen.actions else None,
        after=[] if snapshot.status == "active" else _onwards(snapshot, texts, viewer),
    )
    return _html(body, 410 if snapshot.status == "expired" else 200)


def _start_page(texts: Texts, account: str, error: str | None, status: int = 200) -> Response:
    body = render("start.html.j2", page=_page(texts, viewer=_viewer()), account=account, error=error)
    return _html(body, status)


@pages.app_errorhandler(TransientError)
@pages.app_errorhandler(StoreError)
@pages.app_errorhandler(ConcurrentUpdate)
def _unavailable(exc: RegflowError) -> Response:
    """503 for a page whose request the database failed (away while it restarts or fails over,
    or busy): try again in a moment. The JSON API answers these itself."""
    current_app.logger.error("page request failed: %r", exc, exc_info=exc)
    texts = Texts(_lang())
    response = _message(texts, 503, "error.unavailable_title", "error.unavailable_text",
                        links=[_sign_in_link(texts)])
    response.headers["Retry-After"] = "1"
    return response


def _refusal_key(exc: Exception) -> str:
    """The flashed text of an event the engine would not take."""
    if isinstance(exc, FlowGone | VersionUnavailable):
        return "flash.gone"
    if isinstance(exc, IdempotencyConflict):
        return "flash.already_sent"
    if isinstance(exc, NotSignedIn):
        return "flash.not_signed_in"
    if isinstance(exc, Forbidden):
        return "flash.forbidden"
    if isinstance(exc, RateLimited):
        return "flash.rate_limited"
    return "flash.not_allowed"
