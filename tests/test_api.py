"""The JSON API (SPEC 4.1) over real HTTP: a waitress server on loopback, engines on memory and SQLite.

Every answer the client gets is checked against the OpenAPI document the server publishes: the
status must be documented for the operation and the body must match the documented schema.
The client keeps the ``flow_token`` of every snapshot it is given and sends it back as
``Regflow-Flow-Token`` (SPEC 4.1), as any front end does; ``bare=True`` sends a request without.
After each answer it waits until the server delivered the mail of that request (mail goes out
after the answer, on another thread), so the tests read the mailer deterministically.
"""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

import attrs
import pytest
from flows import PASSWORD, details, last_code, mail_count
from freezegun.api import FrozenDateTimeFactory
from live_server import serving
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate as validate_spec

import regflow
from regflow.web import create_app, wait_for_mail
from regflow.web.openapi import openapi_document

TARO = "taro@example.jp"
HANAKO = "hanako@example.jp"
JIRO = "jiro@example.jp"
JSON = {"Content-Type": "application/json"}
TOKEN = "Regflow-Flow-Token"
LOGIN_KEYS = {"id", "email", "display_name", "account", "role", "ready", "ready_at", "two_factor",
              "sign_in_failures"}


@pytest.fixture(params=["memory", "sqlite"])
def store_kind(request: pytest.FixtureRequest) -> str:
    """The API suite runs on memory and SQLite (the stores' own suites cover PostgreSQL)."""
    return str(request.param)


@attrs.frozen
class Answer:
    """One HTTP answer: status, headers and the parsed JSON body."""

    status: int
    headers: dict[str, str]
    raw: bytes

    @property
    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.raw)

    def header(self, name: str) -> str | None:
        """A header by case-insensitive name."""
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)


class Api:
    """A client of one live server that checks every answer against the published OpenAPI."""

    def __init__(self, base: str, settle: Callable[[], object] = lambda: None) -> None:
        parts = urlsplit(base)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.settle = settle
        self.tokens: dict[str, str] = {}  # flow id → the flow token this client was given
        self.doc: dict[str, Any] = self.send("GET", "/api/openapi.json", check=False).json

    def send(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
             headers: dict[str, str] | None = None, check: bool = True, bare: bool = False) -> Answer:
        """Send a request (``body`` as JSON, or ``raw`` bytes as they are), with the flow's
        token when the path names a flow this client knows (never with ``bare``)."""
        payload = raw if raw is not None else None if body is None else json.dumps(body).encode()
        sent = {**(JSON if payload is not None else {}), **(headers or {})}
        named = re.fullmatch(r"/api/flows/([^/?]+)(?:/events/[^/?]+)?(?:\?.*)?", path)
        if not bare and named and named.group(1) in self.tokens and TOKEN not in sent:
            sent[TOKEN] = self.tokens[named.group(1)]
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            conn.request(method, path, body=payload, headers=sent)
            response = conn.getresponse()
            answer = Answer(response.status, dict(response.getheaders()), response.read())
        finally:
            conn.close()
        self.settle()
        assert answer.header("Content-Type") == ("application/json" if answer.status != 204 else None), answer
        assert answer.header("Content-Language") in ("ja", "en"), answer
        if check:
            self.conforms(method, path, answer)
        self.remember(answer)
        return answer

    def remember(self, answer: Answer) -> None:
        """Keep the flow token of a snapshot in the answer (also inside a 410's body)."""
        body = answer.json if answer.raw else None
        for snap in (body, body.get("snapshot")) if isinstance(body, dict) else ():
            if isinstance(snap, dict) and isinstance(snap.get("flow_token"), str):
                self.tokens[snap["id"]] = snap["flow_token"]

    def conforms(self, method: str, path: str, answer: Answer) -> None:
        """The status is documented for the operation and the body matches its schema."""
        operation = self.operation(method, path.split("?")[0])
        if operation is None:  # unknown routes: the generic error
            self.matches("Error", answer.json)
            return
        responses = operation["responses"]
        assert str(answer.status) in responses, f"{method} {path}: {answer.status} not documented"
        response = responses[str(answer.status)]
        if "$ref" in response:
            response = self.doc["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
        schema = response["content"]["application/json"]["schema"]
        OAS31Validator({**schema, "components": self.doc["components"]}).validate(answer.json)

    def matches(self, schema: str, instance: Any) -> None:
        """``instance`` is valid against a component schema."""
        ref = {"$ref": f"#/components/schemas/{schema}", "components": self.doc["components"]}
        OAS31Validator(ref).validate(instance)

    def operation(self, method: str, path: str) -> dict[str, Any] | None:
        """The documented operation for a concrete path, or None."""
        for template, item in self.doc["paths"].items():
            pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
            if re.fullmatch(pattern, path) and method.lower() in item:
                return dict(item[method.lower()])
        return None

    def start(self, flow: str, context: dict[str, str] | None = None, **kw: Any) -> Answer:
        """POST /api/flows {"flow", "context"}."""
        return self.send("POST", "/api/flows", {"flow": flow, "context": context or {}}, **kw)

    def event(self, flow_id: str, event: str, data: dict[str, Any] | None = None, **kw: Any) -> Answer:
        """POST /api/flows/{id}/events/{event}."""
        return self.send("POST", f"/api/flows/{flow_id}/events/{event}", {"data": data or {}}, **kw)

    def get(self, flow_id: str, **kw: Any) -> Answer:
        """GET /api/flows/{id}."""
        return self.send("GET", f"/api/flows/{flow_id}", **kw)


@pytest.fixture
def app(engine: regflow.Engine) -> Any:
    """The whole app (API and pages) around the test's engine."""
    return create_app(engine)


@pytest.fixture
def api(app: Any) -> Iterator[Api]:
    """A client of the app served by waitress on loopback."""
    with serving(app) as base:
        yield Api(base, settle=lambda: wait_for_mail(app))


def bearer(token: str) -> dict[str, str]:
    """The Authorization header of a session token."""
    return {"Authorization": f"Bearer {token}"}


def register(api: Api, engine: regflow.Engine, account: str, email: str) -> dict[str, Any]:
    """A whole registration through the API; the provisioning snapshot."""
    snap = api.start("registration", {"account": account}).json
    snap = api.event(snap["id"], "submit", {"email": email}).json
    assert snap["state"] == "enter_code", snap["screen"]["messages"]
    snap = api.event(snap["id"], "submit", {"code": last_code(engine)}).json
    assert snap["state"] == "details", snap["screen"]["messages"]
    answer = api.event(snap["id"], "submit", details())
    assert (answer.status, answer.json["state"]) == (200, "provisioning"), answer.json
    return dict(answer.json)


def sign_in(api: Api, account: str, email: str) -> str:
    """Sign in through the API (OK at the link prompt); the session token."""
    snap = api.start("sign_in", {"account": account}).json
    snap = api.event(snap["id"], "submit", {"email": email, "password": PASSWORD}).json
    if snap["state"] == "link_prompt":
        snap = api.event(snap["id"], "submit").json
    assert (snap["state"], snap["status"]) == ("signed_in", "completed"), snap["screen"]["messages"]
    return str(snap["session"])


@pytest.fixture
def team(api: Api, engine: regflow.Engine, frozen: FrozenDateTimeFactory) -> dict[str, str]:
    """Taro (admin, abcd8-01) and Hanako (member, abcd8-02) registered, ready and signed in."""
    register(api, engine, "abcd8-01", TARO)
    register(api, engine, "abcd8-02", HANAKO)
    frozen.tick(timedelta(minutes=10))
    return {"admin": sign_in(api, "abcd8-01", TARO), "member": sign_in(api, "abcd8-02", HANAKO)}


def started(api: Api) -> dict[str, Any]:
    """A fresh registration on abcd8-01 (enter_email)."""
    return dict(api.start("registration", {"account": "abcd8-01"}).json)


# ---- 201, 200, 404 -----------------------------------------------------------------------------

def test_start_answers_201_with_location_and_get_answers_the_same_flow(api: Api) -> None:
    """POST /api/flows/registration: 201, Location names the flow, GET there is 200."""
    answer = api.start("registration", {"account": "abcd8-01"})
    assert answer.status == 201
    snap = answer.json
    assert (snap["flow"], snap["state"], snap["status"]) == ("registration", "enter_email", "active")
    assert answer.header("Location") == f"/api/flows/{snap['id']}"
    assert answer.header("Cache-Control") == "no-store"
    again = api.send("GET", answer.header("Location") or "")
    assert again.status == 200
    assert (again.json["id"], again.json["state"]) == (snap["id"], "enter_email")


def test_unknown_flow_name_and_flow_id_are_404(api: Api) -> None:
    """An unknown flow name, an unknown id (short or absurdly long) answer 404 flow_not_found."""
    assert api.start("no_such_flow").status == 404
    assert api.start("no_such_flow").json["error"] == "flow_not_found"
    for flow_id in ("AAAAAAAAAAAAAAAAAAAAAA", "x" * 300):
        assert (api.get(flow_id).status, api.get(flow_id).json["error"]) == (404, "flow_not_found")
        answer = api.event(flow_id, "submit", {"email": TARO})
        assert (answer.status, answer.json["error"]) == (404, "flow_not_found")


def test_unknown_api_routes_and_methods_answer_json(api: Api) -> None:
    """404 and 405 of unknown /api/ routes are JSON errors, 405 with Allow."""
    missing = api.send("GET", "/api/no/such/route")
    assert (missing.status, missing.json["error"]) == (404, "not_found")
    wrong = api.send("DELETE", "/api/flows/abc")
    assert (wrong.status, wrong.json["error"]) == (405, "method_not_allowed")
    assert "GET" in (wrong.header("Allow") or "")


def test_the_old_start_route_still_starts_but_says_it_is_deprecated(api: Api) -> None:
    """POST /api/flows/{name}: the same 201, with Deprecation and a Link to POST /api/flows."""
    answer = api.send("POST", "/api/flows/registration", {"context": {"account": "abcd8-01"}})
    assert answer.status == 201
    assert (answer.json["flow"], answer.json["state"]) == ("registration", "enter_email")
    assert answer.header("Location") == f"/api/flows/{answer.json['id']}"
    assert answer.header("Deprecation") == "@1796428800"
    assert answer.header("Link") == '</api/flows>; rel="successor-version"'
    assert api.get(answer.json["id"]).status == 200
    assert api.start("registration", {"account": "abcd8-01"}).header("Deprecation") is None
    refused = api.send("POST", "/api/flows/no_such_flow", {})
    assert (refused.status, refused.header("Deprecation")) == (404, "@1796428800")
    assert api.send("GET", f"/api/flows/{answer.json['id']}").header("Deprecation") is None


@pytest.mark.parametrize("body", [
    {}, {"context": {"account": "abcd8-01"}}, {"flow": 1}, {"flow": None},
    {"flow": "registration", "context": {"account": "abcd8-01"}, "extra": 1},
    {"flow": "registration", "context": "abcd8-01"}])
def test_a_start_without_a_flow_name_or_of_another_shape_is_400(api: Api, body: dict[str, Any]) -> None:
    """POST /api/flows needs "flow" (a string) and takes only "flow" and "context"."""
    answer = api.send("POST", "/api/flows", body)
    assert (answer.status, answer.json["error"]) == (400, "bad_request"), answer.json


def test_allow_names_the_documented_methods_of_every_route(api: Api) -> None:
    """OPTIONS and a 405 answer the methods the document lists for the path (HEAD with GET)."""
    for template, item in api.doc["paths"].items():
        path = template.replace("{flow_id}", "AAAAAAAAAAAAAAAAAAAAAA").replace("{event}", "submit")
        documented = {m.upper() for m in item if m in ("get", "post", "put", "patch", "delete")}
        expected = documented | {"OPTIONS"} | ({"HEAD"} if "GET" in documented else set())
        options = api.send("OPTIONS", path, check=False)
        allow = options.header("Allow") or ""
        assert (options.status, options.raw) == (204, b""), template
        assert {m.strip() for m in allow.split(",")} == expected, (template, allow)
        refused = api.send("PUT", path, check=False)
        assert refused.status == 405, template
        assert set(refused.json["allowed"]) == expected, (template, refused.json)


# ---- 422 -------------------------------------------------------------------------------------

def test_invalid_fields_answer_422_with_the_snapshot_and_its_messages(
        api: Api, engine: regflow.Engine) -> None:
    """A bad e-mail: 422, the snapshot stays on enter_email with email_invalid next to the field."""
    snap = started(api)
    answer = api.event(snap["id"], "submit", {"email": "not-an-address"})
    assert answer.status == 422
    body = answer.json
    assert body["state"] == "enter_email"
    assert [(m["id"], m["field"]) for m in body["screen"]["messages"]] == [("email_invalid", "email")]
    assert mail_count(engine) == 0


@pytest.mark.parametrize(("context", "error"), [
    ({}, "context_invalid"),
    ({"account": "   "}, "context_invalid"),
    ({"account": "abcd8-01", "seat": "x"}, "context_invalid"),
    ({"account": "zzzz9-99"}, "account_unknown"),
])
def test_a_bad_context_is_422_naming_the_key(api: Api, context: dict[str, str], error: str) -> None:
    """Missing, blank, unknown keys and unknown accounts: 422 with the id and the field."""
    answer = api.start("registration", context)
    assert answer.status == 422
    assert answer.json["error"] == error
    assert answer.json["field"] == ("seat" if "seat" in context else "account")


# ---- 409, 410 --------------------------------------------------------------------------------

def test_an_event_the_state_does_not_take_is_409_with_allowed(api: Api) -> None:
    """resend_code on enter_email: 409 event_not_allowed listing submit and cancel."""
    snap = started(api)
    answer = api.event(snap["id"], "resend_code")
    assert answer.status == 409
    assert answer.json["error"] == "event_not_allowed"
    assert sorted(answer.json["allowed"]) == ["cancel", "submit"]
    assert (answer.json["state"], answer.json["event"]) == ("enter_email", "resend_code")


def test_an_expired_flow_is_410_at_the_exact_second(api: Api, frozen: FrozenDateTimeFactory) -> None:
    """The server's threads read the frozen clock: 200 one second before the expiry, 410 at it."""
    snap = started(api)
    frozen.tick(timedelta(minutes=60) - timedelta(seconds=1))
    assert api.get(snap["id"]).status == 200
    frozen.tick(timedelta(seconds=1))
    answer = api.get(snap["id"])
    assert answer.status == 410
    body = answer.json
    assert (body["error"], body["status"]) == ("flow_gone", "expired")
    assert (body["snapshot"]["status"], body["snapshot"]["state"]) == ("expired", "expired")
    assert [m["id"] for m in body["snapshot"]["screen"]["messages"]] == ["flow_expired"]
    event = api.event(snap["id"], "submit", {"email": TARO})
    assert (event.status, event.json["error"], event.json["status"]) == (410, "flow_gone", "expired")


def test_other_ended_flows_read_200_but_take_no_events_410(api: Api) -> None:
    """A cancelled flow is still readable (200) and refuses events with 410 and its status."""
    snap = started(api)
    cancelled = api.event(snap["id"], "cancel")
    assert (cancelled.status, cancelled.json["status"]) == (200, "cancelled")
    assert (api.get(snap["id"]).status, api.get(snap["id"]).json["status"]) == (200, "cancelled")
    answer = api.event(snap["id"], "submit", {"email": TARO})
    assert (answer.status, answer.json["error"], answer.json["status"]) == (410, "flow_gone", "cancelled")
    assert answer.json["snapshot"]["status"] == "cancelled"


# ---- 401, 403 --------------------------------------------------------------------------------

def test_admin_listing_needs_the_admins_session(api: Api, team: dict[str, str]) -> None:
    """No, unknown or non-Bearer token: 401 with WWW-Authenticate; a member: 403; the admin: 200."""
    for headers in ({}, bearer("nope.nope"), {"Authorization": f"Basic {team['admin']}"}):
        answer = api.send("GET", "/api/admin/logins", headers=headers)
        assert (answer.status, answer.json["error"]) == (401, "not_signed_in")
        assert (answer.header("WWW-Authenticate") or "").startswith("Bearer")
    member = api.send("GET", "/api/admin/logins", headers=bearer(team["member"]))
    assert (member.status, member.json["error"]) == (403, "forbidden")
    admin = api.send("GET", "/api/admin/logins", headers=bearer(team["admin"]))
    assert admin.status == 200
    assert {row["email"]: row["role"] for row in admin.json} == {TARO: "admin", HANAKO: "member"}
    assert all(set(row) == LOGIN_KEYS for row in admin.json)


def test_admin_flows_need_the_admins_session(api: Api, team: dict[str, str]) -> None:
    """delete_login: 401 without a session, 403 for a member, the admin deletes Hanako."""
    logins = api.send("GET", "/api/admin/logins", headers=bearer(team["admin"])).json
    hanako = next(row["id"] for row in logins if row["email"] == HANAKO)
    unsigned = api.start("delete_login", {"target": hanako})
    assert (unsigned.status, unsigned.json["error"]) == (401, "not_signed_in")
    member = api.start("delete_login", {"target": hanako}, headers=bearer(team["member"]))
    assert (member.status, member.json["error"]) == (403, "forbidden")
    flow = api.start("delete_login", {"target": hanako}, headers=bearer(team["admin"]))
    assert flow.status == 201
    flow_id = flow.json["id"]
    assert api.event(flow_id, "submit").status == 401
    assert api.event(flow_id, "submit", headers=bearer(team["member"])).status == 403
    done = api.event(flow_id, "submit", headers=bearer(team["admin"]))
    assert (done.status, done.json["state"], done.json["status"]) == (200, "done", "completed")
    rows = api.send("GET", "/api/admin/logins", headers=bearer(team["admin"])).json
    assert [row["email"] for row in rows] == [TARO]
    gone = api.send("GET", "/api/admin/logins", headers=bearer(team["member"]))
    assert gone.status == 401  # a deleted login's sessions are dead at once


# ---- 400, 413 --------------------------------------------------------------------------------

BAD_EVENT_BODIES: list[tuple[str, bytes, dict[str, str]]] = [
    ("malformed JSON", b'{"data": {"email": ', JSON),
    ("not an object", b'["submit"]', JSON),
    ("a string", b'"taro@example.jp"', JSON),
    ("data not an object", b'{"data": ["taro@example.jp"]}', JSON),
    ("data null", b'{"data": null}', JSON),
    ("a list value", b'{"data": {"email": ["taro@example.jp"]}}', JSON),
    ("an object value", b'{"data": {"email": {"to": "taro@example.jp"}}}', JSON),
    ("a number value", b'{"data": {"code": 12345678}}', JSON),
    ("NaN", b'{"data": {"email": NaN}}', JSON),
    ("unknown top-level key", b'{"email": "taro@example.jp"}', JSON),
    ("a key beside data", b'{"data": {}, "event": "submit"}', JSON),
    ("a duplicate key", b'{"data": {}, "data": {"email": "taro@example.jp"}}', JSON),
    ("not JSON at all", b"email=taro%40example.jp", {"Content-Type": "application/x-www-form-urlencoded"}),
    ("JSON without its type", b'{"data": {}}', {"Content-Type": "text/plain"}),
    ("invalid UTF-8", b'{"data": {"email": "\xff\xfe"}}', JSON),
    ("an unpaired surrogate", b'{"data": {"email": "\\ud800@example.jp"}}', JSON),
    ("a NUL character", b'{"data": {"email": "taro\\u0000@example.jp"}}', JSON),
    ("nested too deep", b"[" * 20000 + b"]" * 20000, JSON),
    ("a bad Idempotency-Key", b'{"data": {}}', {**JSON, "Idempotency-Key": "has spaces in it"}),
    ("a long Idempotency-Key", b'{"data": {}}', {**JSON, "Idempotency-Key": "k" * 256}),
]


@pytest.mark.parametrize(("case", "raw", "headers"), BAD_EVENT_BODIES, ids=[c[0] for c in BAD_EVENT_BODIES])
def test_a_request_that_is_not_the_json_asked_for_is_400(
        api: Api, engine: regflow.Engine, case: str, raw: bytes, headers: dict[str, str]) -> None:
    """Each malformed event request: 400 bad_request with a detail; the flow is untouched."""
    snap = started(api)
    answer = api.send("POST", f"/api/flows/{snap['id']}/events/submit", raw=raw, headers=headers)
    assert answer.status == 400, case
    assert answer.json["error"] == "bad_request"
    assert answer.json["detail"]
    assert api.get(snap["id"]).json["state"] == "enter_email"
    assert mail_count(engine) == 0


@pytest.mark.parametrize("raw", [
    b'{"context": "abcd8-01"}', b'{"context": {"account": 7}}', b'{"context": {"account": null}}',
    b'{"account": "abcd8-01"}', b"[]", b"{",
])
def test_a_bad_start_body_is_400(api: Api, raw: bytes) -> None:
    """Start bodies of the wrong shape or types: 400 (a well-formed but unusable context is 422)."""
    answer = api.send("POST", "/api/flows/registration", raw=raw)
    assert (answer.status, answer.json["error"]) == (400, "bad_request")


def test_no_body_is_an_empty_object(api: Api) -> None:
    """An event without a body sends no data: cancel needs none."""
    snap = started(api)
    answer = api.send("POST", f"/api/flows/{snap['id']}/events/cancel")
    assert (answer.status, answer.json["status"]) == (200, "cancelled")


def test_an_oversized_body_is_413(api: Api, app: Any) -> None:
    """A body over MAX_CONTENT_LENGTH: 413 body_too_large, as JSON, on both POST routes."""
    limit = app.config["MAX_CONTENT_LENGTH"]
    big = json.dumps({"data": {"email": "x" * limit}}).encode()
    snap = started(api)
    answer = api.send("POST", f"/api/flows/{snap['id']}/events/submit", raw=big)
    assert (answer.status, answer.json["error"]) == (413, "body_too_large")
    big_start = json.dumps({"context": {"account": "y" * limit}}).encode()
    start = api.send("POST", "/api/flows/registration", raw=big_start)
    assert (start.status, start.json["error"]) == (413, "body_too_large")


# ---- 503, 500 --------------------------------------------------------------------------------

def test_a_failing_store_is_503_and_a_fault_is_500_without_details(
        api: Api, engine: regflow.Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Store errors answer 503 with Retry-After, other faults 500; neither leaks its message."""
    snap = started(api)

    def store_down(*args: Any, **kwargs: Any) -> None:
        raise regflow.StoreError("connection to db-7.internal refused")

    monkeypatch.setattr(engine, "get", store_down)
    answer = api.get(snap["id"])
    assert (answer.status, answer.json["error"], answer.header("Retry-After")) == (503, "store_error", "1")
    assert "db-7" not in answer.raw.decode()

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(engine, "get", broken)
    fault = api.get(snap["id"])
    assert (fault.status, fault.json["error"]) == (500, "internal_error")
    assert "secret" not in fault.raw.decode()


# ---- idempotency -----------------------------------------------------------------------------

def test_an_idempotency_key_replays_the_first_answer_and_refuses_another_payload(
        api: Api, engine: regflow.Engine) -> None:
    """Same key and payload: the same body and one mail; same key, other payload: 422."""
    snap = started(api)
    key = {"Idempotency-Key": "9f1c2a7e-submit-email"}
    first = api.event(snap["id"], "submit", {"email": TARO}, headers=key)
    assert (first.status, first.json["state"]) == (200, "enter_code")
    again = api.event(snap["id"], "submit", {"email": TARO}, headers=key)
    assert (again.status, again.json) == (200, first.json)
    assert mail_count(engine) == 1
    other = api.event(snap["id"], "submit", {"email": HANAKO}, headers=key)
    assert (other.status, other.json["error"]) == (422, "idempotency_key_reused")
    assert mail_count(engine) == 1


# ---- languages -------------------------------------------------------------------------------

def test_accept_language_and_lang_pick_the_texts(api: Api) -> None:
    """Japanese by default and for other tags; English by Accept-Language or ?lang=en; else the flow's."""
    default = api.start("registration", {"account": "abcd8-01"})
    english = api.start("registration", {"account": "abcd8-01"},
                        headers={"Accept-Language": "en-US,en;q=0.9,ja;q=0.5"})
    french = api.start("registration", {"account": "abcd8-01"}, headers={"Accept-Language": "fr"})
    assert (default.header("Content-Language"), default.json["lang"]) == ("ja", "ja")
    assert (english.header("Content-Language"), english.json["lang"]) == ("en", "en")
    assert french.header("Content-Language") == "ja"
    assert english.json["screen"]["title"] == "Create an account"
    assert [a["label"] for a in english.json["screen"]["actions"]] == ["Next", "Cancel"]
    assert default.json["screen"]["title"] == "アカウントの作成"
    flow_id = default.json["id"]
    by_query = api.send("GET", f"/api/flows/{flow_id}?lang=en", headers={"Accept-Language": "ja"})
    assert by_query.header("Content-Language") == "en"
    assert by_query.json["screen"]["title"] == "Create an account"
    english_id = english.json["id"]
    kept = api.get(english_id)  # no language asked: the flow's own
    assert (kept.header("Content-Language"), kept.json["screen"]["title"]) == ("en", "Create an account")
    assert api.get(english_id, headers={"Accept-Language": "ja"}).json["lang"] == "ja"
    invalid = api.event(flow_id, "submit", {"email": "nope"}, headers={"Accept-Language": "en"})
    assert invalid.json["screen"]["messages"][0]["text"] == "Enter a valid e-mail address."
    unknown = api.start("registration", {"account": "zzzz9-99"}, headers={"Accept-Language": "en"})
    assert unknown.json["text"] == "This ASP user (account) is not part of any contract."


# ---- a whole journey -------------------------------------------------------------------------

def test_registration_sign_in_and_admin_listing_through_the_api(
        api: Api, engine: regflow.Engine, frozen: FrozenDateTimeFactory) -> None:
    """Sign-in hands over to registration; code, details, provisioning; sign-in, link, listing."""
    sign = api.start("sign_in", {"account": "abcd8-01"}).json
    assert [a["event"] for a in sign["screen"]["actions"]] == ["submit", "create_account", "forgot_password"]
    handed = api.event(sign["id"], "create_account")
    reg = handed.json
    assert (handed.status, reg["flow"], reg["state"]) == (200, "registration", "enter_email")
    assert reg["continue_with"] == {"flow": "registration", "id": reg["id"]}
    assert handed.header("Content-Location") == f"/api/flows/{reg['id']}"
    old = api.get(sign["id"]).json
    assert (old["status"], old["continue_with"]["id"]) == ("completed", reg["id"])

    snap = api.event(reg["id"], "submit", {"email": TARO}).json
    assert snap["state"] == "enter_code"
    assert api.event(reg["id"], "submit", {"code": "00000000"}).status == 422
    snap = api.event(reg["id"], "submit", {"code": last_code(engine)}).json
    assert snap["state"] == "details"
    snap = api.event(reg["id"], "submit", details()).json
    assert (snap["state"], [t["event"] for t in snap["timers"]]) == ("provisioning", ["provisioned"])

    early = api.start("sign_in", {"account": "abcd8-01"}).json
    early = api.event(early["id"], "submit", {"email": TARO, "password": PASSWORD})
    assert (early.status, [m["id"] for m in early.json["screen"]["messages"]]) == (422, ["not_ready"])
    frozen.tick(timedelta(minutes=10))
    assert (api.get(reg["id"]).json["state"], api.get(reg["id"]).json["status"]) == ("ready", "completed")

    flow = api.start("sign_in", {"account": "abcd8-01"}).json
    prompt = api.event(flow["id"], "submit", {"email": TARO, "password": PASSWORD}).json
    assert prompt["state"] == "link_prompt"
    done = api.event(flow["id"], "submit").json
    assert (done["state"], done["status"]) == ("signed_in", "completed")
    logins = api.send("GET", "/api/admin/logins", headers=bearer(done["session"]))
    assert logins.status == 200
    (row,) = logins.json
    assert (row["email"], row["role"], row["account"], row["ready"]) == (TARO, "admin", "abcd8-01", True)
    assert row["display_name"] == details()["display_name"]


# ---- the OpenAPI document --------------------------------------------------------------------

def test_the_openapi_document_is_valid_and_names_every_route_flow_and_event(
        api: Api, app: Any, engine: regflow.Engine) -> None:
    """openapi-spec-validator accepts it; every API route, flow and user event is in it."""
    doc = api.doc
    validate_spec(doc)
    assert doc["openapi"].startswith("3.1")
    assert doc == openapi_document(engine.flows)
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("api."):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        assert path in doc["paths"], path
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            assert method.lower() in doc["paths"][path], (method, path)
    schemas = doc["components"]["schemas"]
    assert {"Snapshot", "Screen", "Field", "Action", "Message", "Timer", "Error", "Login"} <= set(schemas)
    assert schemas["FlowName"]["enum"] == engine.flows.names()
    flows = doc["x-regflow-flows"]
    assert flows["sign_in"]["events"] == [
        "submit", "create_account", "forgot_password", "continue_legacy", "resend_code", "cancel"]
    assert flows["registration"]["states"]["details"]["fields"] == [
        "password", "password_confirm", "customer_id", "display_name", "tel"]
    assert flows["delete_login"]["auth"] == "admin"
    for flow in flows.values():
        assert set(flow["events"]) <= set(schemas["EventName"]["enum"])
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert doc["paths"]["/api/admin/logins"]["get"]["security"] == [{"bearerAuth": []}]


def test_the_openapi_document_has_no_two_alike_templates_and_links_the_flows(api: Api) -> None:
    """No two path templates differ only in their parameters' names; the deprecated start is
    marked; a started flow links to GET and to every event, with its flow token."""
    doc = api.doc
    shapes = [re.sub(r"\{[^}]+\}", "{}", template) for template in doc["paths"]]
    assert len(shapes) == len(set(shapes)), shapes
    assert doc["paths"]["/api/flows/{flow_id}"]["post"]["deprecated"] is True
    assert "deprecated" not in doc["paths"]["/api/flows"]["post"]
    links = doc["paths"]["/api/flows"]["post"]["responses"]["201"]["links"]
    assert links["getFlow"] == {"operationId": "getFlow", "description": "The flow as it is now.",
                                "parameters": {"flow_id": "$response.body#/id",
                                               "header.Regflow-Flow-Token": "$response.body#/flow_token"}}
    events = {link["parameters"]["event"] for name, link in links.items() if name != "getFlow"}
    assert events == set(doc["components"]["schemas"]["EventName"]["enum"])
    for path, method in (("/api/flows/{flow_id}", "get"), ("/api/flows/{flow_id}/events/{event}", "post")):
        assert doc["paths"][path][method]["responses"]["200"]["links"] == links


# ---- flows bound to the client that started them (SPEC 4.1) ----------------------------------

def same_404(answer: Answer, unknown: Answer, flow_id: str, unknown_id: str) -> None:
    """``answer`` (about ``flow_id``) is the 404 that ``unknown`` (about an id that does not
    exist, of the same length) is: status, headers but Date, and body with the id swapped."""
    assert answer.status == unknown.status == 404, (answer, unknown)
    assert answer.json == json.loads(unknown.raw.decode().replace(unknown_id, flow_id))
    assert answer.json["error"] == "flow_not_found"
    assert {k: v for k, v in answer.headers.items() if k != "Date"} == {
        k: v for k, v in unknown.headers.items() if k != "Date"}


def test_the_start_answer_carries_a_flow_token_that_later_answers_repeat(api: Api) -> None:
    """201 has ``flow_token`` (≥128 bits); GET and events with it answer it again."""
    answer = api.start("registration", {"account": "abcd8-01"})
    token = answer.json["flow_token"]
    assert isinstance(token, str)
    assert len(token) >= 22  # 128 bits are 22 characters of URL-safe base64
    assert token != api.start("registration", {"account": "abcd8-01"}).json["flow_token"]
    flow_id = answer.json["id"]
    again = api.get(flow_id, headers={TOKEN: token})
    assert (again.status, again.json["flow_token"]) == (200, token)
    sent = api.event(flow_id, "submit", {"email": TARO}, headers={TOKEN: token})
    assert (sent.status, sent.json["state"], sent.json["flow_token"]) == (200, "enter_code", token)


def test_a_request_without_the_flow_token_or_with_another_is_404_as_for_an_unknown_id(
        api: Api, engine: regflow.Engine) -> None:
    """No header, another flow's token, a made-up or empty one: the 404 of an id that does not
    exist, byte for byte but the id; the flow is untouched and no mail is sent."""
    mine, other = started(api), started(api)
    flow_id = mine["id"]
    unknown_id = "A" * len(flow_id)
    unknown_get = api.get(unknown_id, bare=True)
    unknown_event = api.event(unknown_id, "submit", {"email": TARO}, bare=True)
    for headers in ({}, {TOKEN: other["flow_token"]}, {TOKEN: mine["flow_token"][:-1]},
                    {TOKEN: "x" * 300}, {TOKEN: ""}, {TOKEN.lower(): other["flow_token"]}):
        same_404(api.get(flow_id, headers=headers, bare=True), unknown_get, flow_id, unknown_id)
        event = api.event(flow_id, "submit", {"email": TARO}, headers=headers, bare=True)
        same_404(event, unknown_event, flow_id, unknown_id)
    assert mail_count(engine) == 0
    kept = api.get(flow_id)
    assert (kept.status, kept.json["state"]) == (200, "enter_email")


def test_an_idempotency_key_replays_only_to_the_holder_of_the_token(
        api: Api, engine: regflow.Engine) -> None:
    """The replay of a remembered answer also needs the token: without it, or with another
    flow's, 404 as for an unknown id; with it, the first answer again (token included)."""
    snap, other = started(api), started(api)
    key = {"Idempotency-Key": "replay-needs-the-token"}
    first = api.event(snap["id"], "submit", {"email": TARO}, headers=key)
    assert (first.status, first.json["state"]) == (200, "enter_code")
    unknown_id = "B" * len(snap["id"])
    unknown = api.event(unknown_id, "submit", {"email": TARO}, headers=key, bare=True)
    for headers in (key, {**key, TOKEN: other["flow_token"]}):
        replay = api.event(snap["id"], "submit", {"email": TARO}, headers=headers, bare=True)
        same_404(replay, unknown, snap["id"], unknown_id)
    again = api.event(snap["id"], "submit", {"email": TARO}, headers=key)
    assert (again.status, again.json) == (200, first.json)
    assert again.json["flow_token"] == snap["flow_token"]
    assert mail_count(engine) == 1


def test_a_hand_over_answers_the_new_flows_token(api: Api) -> None:
    """create_account answers the registration's own token: it opens the new flow, the sign-in's
    does not (and the new one does not open the sign-in)."""
    sign = api.start("sign_in", {"account": "abcd8-01"}).json
    reg = api.event(sign["id"], "create_account").json
    assert reg["flow"] == "registration"
    assert reg["flow_token"] not in (None, sign["flow_token"])
    assert api.get(reg["id"], headers={TOKEN: reg["flow_token"]}).status == 200
    assert api.get(reg["id"], headers={TOKEN: sign["flow_token"]}, bare=True).status == 404
    assert api.get(sign["id"], headers={TOKEN: reg["flow_token"]}, bare=True).status == 404
    old = api.get(sign["id"], headers={TOKEN: sign["flow_token"]})
    assert (old.status, old.json["status"]) == (200, "completed")


def test_the_registered_address_signs_in_over_the_api(
        api: Api, engine: regflow.Engine, frozen: FrozenDateTimeFactory) -> None:
    """Issue 12: email_taken takes the password (current_password) and answers a sign-in flow of
    the seat (its own token, continue_with) at the link prompt; OK signs in with a session the
    new flow's token opens. The registration ended handed_over."""
    assert register(api, engine, "abcd8-01", TARO)["state"] == "provisioning"
    frozen.tick(timedelta(minutes=10))
    reg = api.start("registration", {"account": "abcd8-02"}).json
    taken = api.event(reg["id"], "submit", {"email": TARO}).json
    assert taken["state"] == "email_taken"
    assert [(f["name"], f["type"]) for f in taken["screen"]["fields"]] == [("current_password", "password")]
    answer = api.event(reg["id"], "submit", {"current_password": PASSWORD})
    prompt = answer.json
    assert (answer.status, prompt["flow"], prompt["state"]) == (200, "sign_in", "link_prompt")
    assert prompt["continue_with"] == {"flow": "sign_in", "id": prompt["id"]}
    assert prompt["flow_token"] not in (None, reg["flow_token"])
    done = api.event(prompt["id"], "submit").json
    assert (done["state"], done["status"]) == ("signed_in", "completed")
    assert api.send("GET", "/api/admin/logins", headers=bearer(done["session"])).status == 200
    old = api.get(reg["id"]).json
    assert (old["state"], old["status"], old["continue_with"]["id"]) == (
        "handed_over", "completed", prompt["id"])


def test_press_next_again_over_the_api(api: Api, engine: regflow.Engine) -> None:
    """Issue 12 (FAQ 12): retries spent → 422 with transient_error and the password fields
    kept (required false); the same event without them completes (201 → 200 provisioning)."""
    failing = [True]

    class Directory:
        def provision(self, login: Any, *, key: str) -> None:
            if failing[0]:
                raise regflow.TransientError("directory unavailable")

    engine.services.provisioner = Directory()
    reg = api.start("registration", {"account": "abcd8-01"}).json
    api.event(reg["id"], "submit", {"email": TARO})
    assert api.event(reg["id"], "submit", {"code": last_code(engine)}).json["state"] == "details"
    spent = api.event(reg["id"], "submit", details())
    assert spent.status == 422
    assert [m["id"] for m in spent.json["screen"]["messages"]] == ["transient_error"]
    fields = {f["name"]: (f["required"], f["kept"]) for f in spent.json["screen"]["fields"]}
    assert fields["password"] == fields["password_confirm"] == (False, True)
    assert fields["tel"] == (True, False)
    failing[0] = False
    again = api.event(reg["id"], "submit", {k: v for k, v in details().items()
                                             if not k.startswith("password")})
    assert (again.status, again.json["state"]) == (200, "provisioning")


def test_the_sixth_code_mail_to_one_address_in_15_minutes_is_429(
        api: Api, engine: regflow.Engine, frozen: FrozenDateTimeFactory) -> None:
    """SPEC 5: at most 5 code mails per address in 15 minutes, across flows. The sixth
    registration to the address answers 429 rate_limited with Retry-After (900 s: the five were
    sent at one instant) and sends nothing; at 15 minutes one more is allowed."""
    for _ in range(5):
        sent = api.event(started(api)["id"], "submit", {"email": TARO})
        assert (sent.status, sent.json["state"]) == (200, "enter_code")
    assert mail_count(engine) == 5
    sixth = started(api)
    refused = api.event(sixth["id"], "submit", {"email": "Taro@Example.jp"})
    assert refused.status == 429
    assert refused.header("Retry-After") == "900"
    assert refused.json["error"] == "rate_limited"
    assert refused.json["retry_after"] == 900
    assert refused.json["text"] == "試行回数が上限に達しました。しばらくしてからもう一度お試しください。"
    assert refused.json["detail"]
    english = api.event(sixth["id"], "submit", {"email": TARO}, headers={"Accept-Language": "en"})
    assert (english.status, english.json["text"]) == (
        429, "Too many attempts. Please wait a while and try again.")
    assert mail_count(engine) == 5
    assert api.get(sixth["id"]).json["state"] == "enter_email"
    frozen.tick(timedelta(seconds=899))
    late = api.event(sixth["id"], "submit", {"email": TARO})
    assert (late.status, late.header("Retry-After")) == (429, "1")
    frozen.tick(timedelta(seconds=1))
    allowed = api.event(sixth["id"], "submit", {"email": TARO})
    assert (allowed.status, allowed.json["state"]) == (200, "enter_code")
    assert mail_count(engine) == 6


def test_flows_started_per_client_are_limited_with_429(make_engine: Any) -> None:
    """The client address of the request is what the per-client limit counts: with a limit of
    3 starts in 10 minutes the fourth start over HTTP is 429 with Retry-After 600, while
    in-process starts (no client) are not counted."""
    from regflow.runtime.limits import Limits, Rate

    engine = make_engine(limits=Limits(starts=(Rate(3, 600),)))
    app = create_app(engine)
    with serving(app) as base:
        client = Api(base, settle=lambda: wait_for_mail(app))
        for _ in range(3):
            assert client.start("registration", {"account": "abcd8-01"}).status == 201
        for _ in range(5):
            engine.start("registration", {"account": "abcd8-01"})
        refused = client.start("registration", {"account": "abcd8-01"})
        assert (refused.status, refused.json["error"]) == (429, "rate_limited")
        assert refused.header("Retry-After") == "600"
        assert refused.json["retry_after"] == 600


def test_every_api_answer_carries_the_security_headers(api: Api, app: Any) -> None:
    """Frames denied, powerful features off; HSTS only over HTTPS."""
    answers = [api.start("registration", {"account": "abcd8-01"}), api.get("no-such-flow"),
               api.send("GET", "/api/openapi.json", check=False), api.send("GET", "/api/nope")]
    for answer in answers:
        assert answer.header("X-Frame-Options") == "DENY"
        assert answer.header("Permissions-Policy") == (
            "camera=(), microphone=(), geolocation=(), payment=(), usb=()")
        assert answer.header("X-Content-Type-Options") == "nosniff"
        assert answer.header("Strict-Transport-Security") is None
    secure = app.test_client().get("/api/openapi.json", base_url="https://regflow.example")
    assert secure.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert secure.headers["X-Frame-Options"] == "DENY"


class GatedMailer:
    """A mailer that holds every mail until the test opens the gate; it notes when a delivery
    began."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.gate = threading.Event()
        self.began = threading.Event()

    def send(self, message: EmailMessage) -> None:
        """Wait for the gate (at most 10 s), then hand the mail on."""
        self.began.set()
        self.gate.wait(10)
        self.inner.send(message)


def test_mail_goes_out_after_the_answer(engine: regflow.Engine) -> None:
    """An answer never waits for its mail: with a mailer that blocks, the answer to "send a
    code" arrives while the mail is still held; once the mailer lets go, the mail arrives."""
    gated = GatedMailer(engine.relay.mailer)
    engine.relay.mailer = gated
    app = create_app(engine)
    with serving(app) as base:
        client = Api(base)  # no waiting for mail after answers
        snap = client.start("registration", {"account": "abcd8-01"}).json
        began = time.monotonic()
        answer = client.event(snap["id"], "submit", {"email": TARO})
        took = time.monotonic() - began
        assert (answer.status, answer.json["state"]) == (200, "enter_code")
        assert took < 5, took  # the mailer holds the mail for 10 s
        assert gated.began.wait(5)  # delivery was under way, after the answer
        assert mail_count(engine) == 0
        gated.gate.set()
        assert wait_for_mail(app)
        assert mail_count(engine) == 1
        assert last_code(engine)
