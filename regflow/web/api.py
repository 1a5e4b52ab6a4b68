"""The JSON API: HTTP in, one engine call, a snapshot or an error out.

The views hold no flow logic; they check that a request is the JSON asked for (or answer 400),
call the engine and translate its answer and its errors into status codes:

- 201 a flow started (``POST /api/flows``; the older ``POST /api/flows/<name>`` is
  deprecated and answers ``Deprecation``); 200 a snapshot (also of a completed, cancelled or failed flow);
- 422 a snapshot whose screen carries errors, a context the flow cannot use, or an
  Idempotency-Key reused with another payload;
- 409 an event the state does not take; 404 no such flow name or id, or a request on a flow
  without its token (header ``Regflow-Flow-Token``) or with another: the very same answer;
- 429 a limit across flows (per address, per client) was reached, with ``Retry-After``;
- 410 an expired flow (GET), or an ended one (events), with its snapshot;
- 401 no live session; 403 a session that may not do it;
- 400 not the JSON asked for; 413 a body over ``MAX_CONTENT_LENGTH``; 503 try again.

Every answer is JSON, also for unknown ``/api/`` routes, with ``Content-Language`` and
``Cache-Control: no-store`` (snapshots carry the flow token, and may carry a session token).
The client address given to the engine's per-client limits is ``request.remote_addr``
(``create_app(trusted_proxies=N)`` makes it the address the proxies saw).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NoReturn

from flask import Blueprint, Response, current_app, request, url_for
from werkzeug.exceptions import BadRequest, HTTPException, MethodNotAllowed, NotFound

from regflow.engine import Engine
from regflow.ground.catalog import DEFAULT_LANGUAGE, LANGUAGES, Catalog, pick_language
from regflow.ground.exceptions import (
    ConcurrentUpdate,
    EventNotAllowed,
    FlowGone,
    FlowNotFound,
    Forbidden,
    IdempotencyConflict,
    IdempotencyKeyInvalid,
    InvalidContext,
    NotSignedIn,
    RateLimited,
    RegflowError,
    StoreError,
    TransientError,
    VersionUnavailable,
)
from regflow.ground.screens import Snapshot
from regflow.web.openapi import FLOW_TOKEN_HEADER, IDEMPOTENCY_KEY_PATTERN, openapi_document
from regflow.web.shared import engine_of

api = Blueprint("api", __name__, url_prefix="/api")

# The first class an error is an instance of decides its status (NotSignedIn before Forbidden).
STATUS_OF: tuple[tuple[type[RegflowError], int], ...] = (
    (FlowNotFound, 404), (FlowGone, 410), (VersionUnavailable, 410), (EventNotAllowed, 409),
    (IdempotencyKeyInvalid, 400), (IdempotencyConflict, 422),
    (InvalidContext, 422), (NotSignedIn, 401), (Forbidden, 403), (RateLimited, 429),
    (ConcurrentUpdate, 503), (TransientError, 503), (StoreError, 503),
)
HTTP_ERROR_IDS = {400: "bad_request", 404: "not_found", 405: "method_not_allowed",
                  413: "body_too_large", 500: "internal_error"}
MAX_IDEMPOTENCY_KEY = 255
# Errors whose text the catalog has not under ``message.`` (no screen shows them) but where the
# pages keep it: used when ``message.<id>`` is missing.
TEXT_FALLBACKS = {"rate_limited": ("web.flash.rate_limited",)}


# ---- views ---------------------------------------------------------------------------------

@api.post("/flows")
def start_flow() -> Response:
    """Start the flow named by ``flow``: 201 with its snapshot (and ``flow_token``, the
    starter's only) and ``Location``."""
    body = _body("flow", "context")
    name = body.get("flow")
    if not isinstance(name, str):
        _refuse("'flow' must be given, as the name of a flow")
    return _start(name, body.get("context", {}))


# Deprecated since issue 13: "/api/flows/<x>" is also the template of a flow by id (GET), which
# OpenAPI cannot tell apart; kept working, with RFC 9745's Deprecation and a Link to its successor.
DEPRECATED_SINCE = "@1796428800"  # 2026-12-05


@api.post("/flows/<flow_id>")
def start_flow_by_name(flow_id: str) -> Response:
    """Deprecated: ``POST /api/flows`` with ``{"flow": name}``; here the path segment is the
    flow's name (the rule shares the template of ``GET /api/flows/<flow_id>``)."""
    return _start(flow_id, _body("context").get("context", {}))


@api.after_request
def deprecated(response: Response) -> Response:
    """Every answer of the deprecated start, errors too, says so."""
    if request.endpoint == "api.start_flow_by_name" and request.method == "POST":
        response.headers["Deprecation"] = DEPRECATED_SINCE
        response.headers["Link"] = f'<{url_for("api.start_flow")}>; rel="successor-version"'
    return response


def _start(flow_name: str, context: Any) -> Response:
    snapshot = _engine().start(flow_name, _strings(context, "context"), session=_bearer(),
                               lang=_asked_lang(), client=request.remote_addr)
    return _snapshot(snapshot, 201, Location=url_for("api.flow", flow_id=snapshot.id))


@api.get("/flows/<flow_id>")
def flow(flow_id: str) -> Response:
    """The flow's snapshot; 410 (with the snapshot) once it expired."""
    snapshot = _engine().get(flow_id, token=_flow_token(), lang=_asked_lang())
    if snapshot.status == "expired":
        return _gone(FlowGone(snapshot.id, snapshot.status), snapshot)
    return _snapshot(snapshot, 200)


@api.post("/flows/<flow_id>/events/<event>")
def send_event(flow_id: str, event: str) -> Response:
    """Send an event: 200 with the snapshot, 422 when its screen carries errors."""
    data = _values(_body("data").get("data", {}), "data")
    snapshot = _engine().send(flow_id, event, data, token=_flow_token(),
                              idempotency_key=_idempotency_key(), session=_bearer(),
                              lang=_asked_lang(), client=request.remote_addr)
    moved = {} if snapshot.id == flow_id else {
        "Content-Location": url_for("api.flow", flow_id=snapshot.id)}  # a hand-over's new flow
    return _snapshot(snapshot, 200 if snapshot.ok else 422, **moved)


@api.get("/admin/logins")
def admin_logins() -> Response:
    """The logins of the admin's customer."""
    return _json(_engine().admin_logins(_bearer() or ""))


@api.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI 3.1 document of this API and of the engine's flows."""
    return _json(openapi_document(_engine().flows))


# ---- errors --------------------------------------------------------------------------------

@api.errorhandler(RegflowError)
def regflow_error(exc: RegflowError) -> Response:
    """An engine error as its status and ``{"error": message_id, ...}``."""
    if isinstance(exc, FlowGone):  # raised only to a caller that showed the flow's token
        return _gone(exc, _engine().get(exc.flow_id, token=_flow_token(), lang=_asked_lang()))
    status = next((code for kind, code in STATUS_OF if isinstance(exc, kind)), 500)
    body = _error(exc.message_id, str(exc) if status < 500 else "the service failed; try again")
    headers: dict[str, str] = {}
    if isinstance(exc, InvalidContext):
        body["field"] = exc.key
    elif isinstance(exc, EventNotAllowed):
        body.update(allowed=exc.allowed, state=exc.state, event=exc.event)
    elif isinstance(exc, NotSignedIn):
        headers["WWW-Authenticate"] = 'Bearer realm="regflow"'
    elif isinstance(exc, RateLimited):
        body["retry_after"] = exc.retry_after
        headers["Retry-After"] = str(exc.retry_after)
    if status == 503:
        headers["Retry-After"] = "1"
    if status >= 500:
        current_app.logger.error("API request failed: %r", exc, exc_info=exc)
    return _json(body, status, **headers)


@api.errorhandler(HTTPException)
def http_error(exc: HTTPException) -> Response:
    """400, 413, 500 ... of the API's views as JSON."""
    return _http_error(exc)


@api.before_app_request
def unrouted() -> Response | None:
    """Unknown ``/api/`` routes and methods answer JSON too (routing fails before any blueprint);
    OPTIONS answers 204 with ``Allow`` and the API's headers."""
    exc = request.routing_exception
    prefix = api.url_prefix or ""
    if not (request.path == prefix or request.path.startswith(prefix + "/")):
        return None
    if isinstance(exc, NotFound | MethodNotAllowed):
        return _http_error(exc)
    if exc is None and request.method == "OPTIONS":
        allow = current_app.make_default_options_response().headers.get("Allow", "OPTIONS")
        response = Response(status=204)
        del response.headers["Content-Type"]  # no body
        response.headers.update(_headers(_lang(), {"Allow": allow}))
        return response
    return None


def _http_error(exc: HTTPException) -> Response:
    code = exc.code or 500
    name = HTTP_ERROR_IDS.get(code) or (exc.name or "error").lower().replace(" ", "_")
    body = _error(name, exc.description or exc.name or name)
    headers = {}
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        body["allowed"] = sorted(exc.valid_methods)
        headers["Allow"] = ", ".join(sorted(exc.valid_methods))
    return _json(body, code, **headers)


def _gone(exc: FlowGone, snapshot: Snapshot) -> Response:
    body = _error(exc.message_id, str(exc), snapshot.lang)
    body.update(status=exc.status, snapshot=snapshot.to_dict())
    return _json(body, 410, lang=snapshot.lang)


def _error(message_id: str, detail: str, lang: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"error": message_id, "detail": detail}
    text = Catalog(lang or _lang()).find(f"message.{message_id}", *TEXT_FALLBACKS.get(message_id, ()))
    if text is not None:
        body["text"] = text
    return body


# ---- requests ------------------------------------------------------------------------------

def _engine() -> Engine:
    return engine_of(current_app)


def _asked_lang() -> str | None:
    """``?lang=`` if given, else the best of ``Accept-Language``; None when the request says
    nothing, so that a flow answers in the language it was started in (Japanese by default)."""
    if "lang" in request.args:
        return pick_language(request.args["lang"])
    if request.accept_languages:  # a header naming only other languages still means Japanese
        return pick_language(request.accept_languages.best_match(LANGUAGES))
    return None


def _lang() -> str:
    """The language of texts that belong to no flow (errors)."""
    return _asked_lang() or DEFAULT_LANGUAGE


def _flow_token() -> str | None:
    """The ``Regflow-Flow-Token`` header; the engine answers a missing or wrong one as it
    answers an unknown flow id."""
    return request.headers.get(FLOW_TOKEN_HEADER) or None


def _bearer() -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def _refuse(detail: str) -> NoReturn:
    raise BadRequest(detail)


def _body(*keys: str) -> dict[str, Any]:
    """The body as a JSON object that has at most ``keys``; no body at all is ``{}``."""
    raw = request.get_data(cache=False)  # beyond MAX_CONTENT_LENGTH: 413
    if not raw.strip():
        return {}
    if not request.is_json:
        _refuse("the body must be JSON, sent as Content-Type: application/json")
    try:
        body = json.loads(raw, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        _refuse(f"the body is not valid JSON: {exc}")
    if not isinstance(body, dict):
        _refuse(f"the body must be a JSON object, like {{\"{keys[-1]}\": {{...}}}}")
    unknown = sorted(set(body) - set(keys))
    if unknown:
        _refuse(f"unknown key(s) {', '.join(map(repr, unknown))}; the body takes only "
                + " and ".join(map(repr, keys)))
    return body


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("a key appears twice in one object")
    return dict(pairs)


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def _strings(value: Any, where: str) -> dict[str, str]:
    """An object of strings (a context)."""
    checked = _values(value, where)
    for key, item in checked.items():
        if not isinstance(item, str):
            _refuse(f"'{where}.{key}' must be a string")
    return checked


def _values(value: Any, where: str) -> dict[str, Any]:
    """An object whose values are strings, booleans or null (a screen's data)."""
    if not isinstance(value, dict):
        _refuse(f"'{where}' must be a JSON object")
    for key, item in value.items():
        _text(key, f"a key of '{where}'")
        if isinstance(item, str):
            _text(item, f"'{where}.{key}'")
        elif item is not None and not isinstance(item, bool):
            _refuse(f"'{where}.{key}' must be a string, a boolean or null, not {type(item).__name__}")
    return value


def _text(text: str, where: str) -> None:
    """Strings no store can keep (NUL, unpaired surrogates) are refused here, not at commit."""
    if "\x00" in text:
        _refuse(f"{where} contains U+0000")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        _refuse(f"{where} contains an unpaired surrogate")


def _idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY or not all("!" <= ch <= "~" for ch in key):
        _refuse(f"Idempotency-Key must match {IDEMPOTENCY_KEY_PATTERN} (visible ASCII)")
    return key


# ---- responses -----------------------------------------------------------------------------

def _snapshot(snapshot: Snapshot, status: int, **headers: str) -> Response:
    return _json(snapshot.to_dict(), status, lang=snapshot.lang, **headers)


def _json(body: Any, status: int = 200, lang: str | None = None, **headers: str) -> Response:
    """A JSON answer, keys in the order they were made, never cached."""
    response = Response(json.dumps(body, ensure_ascii=False, separators=(",", ":")), status,
                        mimetype="application/json")
    response.headers.update(_headers(lang or _lang(), headers))
    return response


def _headers(lang: str, extra: Mapping[str, str]) -> dict[str, str]:
    return {"Content-Language": lang, "Vary": "Accept-Language", "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff", **extra}
