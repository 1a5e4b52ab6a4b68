"""Hostile input over real HTTP (hypothesis): the JSON API and the HTML forms never answer 5xx.

One waitress server for the module, on an engine with a SQLite file (the store that refuses
what it cannot encode) and a ManualClock at 2026-03-02 09:00 UTC. Customer 281234 has taro
(admin, abcd8-01) and hana (member, abcd8-02), signed in; every example gets fresh flows in
the state it aims at, made in-process (with its flow token, which the requests mostly carry as
the API's header or the pages' cookie), then sends one hostile request:

- API: malformed JSON, raw non-UTF-8 bytes, wrong top-level types, strings up to ~100 kB (past
  the 64 KiB limit), control and bidi characters, NUL, lone surrogates escaped in JSON, deep
  nesting, unknown keys, wrong Content-Type, odd Idempotency-Key / Authorization / Accept-Language
  headers, a missing or wrong ``Regflow-Flow-Token``, random flow names, ids and events in the
  path. Every answer is 2xx or 4xx; every 4xx
  is JSON with an ``error`` id, or a 422 snapshot whose screen carries message ids.
- Forms: POST /flows/<id> with random fields and values, url-encoded (also with bytes that are
  not UTF-8), multipart, JSON or plain text, a missing or wrong CSRF or form token, random
  ``event`` values, odd cookies (the flow's token cookie missing or wrong). Every answer is a
  303 or a 4xx.

After every example I1–I4 hold over the store.
"""

from __future__ import annotations

import http.client
import itertools
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, quote_from_bytes, urlencode, urlsplit

import attrs
import pytest
from flows import codes_in
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from live_server import serving

import regflow
from regflow.ground.screens import Snapshot
from regflow.runtime.limits import Limits, Rate
from regflow.testing import check_invariants  # I1–I4 over the whole store
from regflow.web import create_app

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CONTRACT: dict[str, Any] = {"customer_id": "281234", "phone": "03-1234-5678", "licenses": 3,
                            "accounts": ["abcd8-01", "abcd8-02", "abcd8-03"]}
PASSWORD = "Kx7#mPq2wZ"
TARO, HANA = "taro@example.jp", "hana@example.jp"
FLOW_NAMES = ["registration", "sign_in", "password_reset", "unlink_login", "delete_login",
              "transfer_admin", "require_two_factor", "set_two_factor"]
EVENTS = ["submit", "cancel", "back", "resend_code", "create_account", "forgot_password",
          "continue_legacy", "provisioned", "code_timeout", "expire"]
FIELDS = ["email", "code", "password", "password_confirm", "customer_id", "display_name", "tel",
          "enabled", "account", "target", "_login_id", "_messages", "__proto__", ""]
TARGETS = ["registration@enter_email", "registration@enter_code", "registration@details",
           "sign_in@credentials", "sign_in@unknown_seat", "password_reset@enter_email",
           "require_two_factor@confirm", "set_two_factor@confirm", "unlink_login@confirm",
           "cancelled", "unknown"]
SEATS = ["abcd8-01", "abcd8-02", "abcd8-03", "zzzz9-99"]
TOO_BIG = 64 * 1024
TOKEN = "Regflow-Flow-Token"
# Every request comes from 127.0.0.1 and the clock stands still: the per-client limits would
# refuse most of the run. The per-address ones stay as shipped (the fuzz reaches their 429).
LIMITS = Limits(starts=(Rate(1_000_000, 600),), events=(Rate(1_000_000, 600),))
ADDRESSES = itertools.count(1)  # prepared flows mail a fresh address each: no limit in the way
API_SETTINGS = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                               HealthCheck.filter_too_much])
FORM_SETTINGS = settings(API_SETTINGS, max_examples=300)

# ---- strategies: text, JSON values, bodies, headers, paths -----------------------------------

SPECIAL_TEXT = ["\x00", "a\x00b", "\u202e", "\u202etxt.exe", "\u2066x\u2069", "\u200f", "\x1b[2J",
                "\r\n", "\t", "\u3000", "ｔａｒｏ@ｅｘａｍｐｌｅ.jp", "TARO@Example.JP", "２８１２３４",
                "03-1234-5678",
                "１２３４５６７８", PASSWORD, "<script>alert(1)</script>", "{{7*7}}", "' OR 1=1 --",
                "\ud800", "\udfff", "a\udc80b", "\U0001f600", "\ufeff", "\uffff"]
# Any code point, surrogates included: json.dumps escapes them (ensure_ascii) or, encoded with
# surrogatepass, they become byte sequences that are not UTF-8.
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=30) | st.sampled_from(
    SPECIAL_TEXT)
HUGE_TEXT = st.sampled_from([1000, 4096, 4097, 20_000, 60_000, 66_000, 100_000]).map(lambda n: "a" * n)
SCALARS = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
           | ANY_TEXT | HUGE_TEXT)
JSON_VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(ANY_TEXT, inner, max_size=3), max_leaves=8)
FIELD_VALUES = st.one_of(ANY_TEXT, ANY_TEXT, HUGE_TEXT, st.none(), st.booleans(), st.integers(),
                         st.floats(), st.lists(ANY_TEXT, max_size=2), st.dictionaries(ANY_TEXT, ANY_TEXT,
                                                                                       max_size=2))
FIELD_NAMES = st.sampled_from(FIELDS) | ANY_TEXT
FORM_VALUES = st.sampled_from(["jiro@example.jp", TARO, PASSWORD, "12345678", "281234", "03-1234-5678",
                               "山田 太郎", "on", ""])
PLAIN_VALUES = FORM_VALUES | st.booleans()
LATIN1 = st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f")


def mostly(common: st.SearchStrategy[Any], rare: st.SearchStrategy[Any],
           odds: int = 9) -> st.SearchStrategy[Any]:
    """``common`` ``odds`` times out of ``odds + 1``, else ``rare`` (``a | b`` is half and half)."""
    return st.integers(0, odds).flatmap(lambda i: rare if i == 0 else common)


@st.composite
def json_bodies(draw: st.DrawFn, key: str) -> bytes:
    """A body for a route taking ``{key: {...}}``: mostly that shape, else every way a body is wrong."""
    kind = draw(st.sampled_from(["plausible"] * 4 + ["shaped"] * 4 + [
        "wrong_key", "top_level", "raw", "truncated", "nested", "huge", "not_utf8", "special", "empty"]))
    inner = draw(st.dictionaries(FIELD_NAMES, FIELD_VALUES, max_size=5))
    if kind == "plausible":  # the screen's own fields, one of them maybe hostile
        plain = {name: draw(PLAIN_VALUES) for name in draw(st.sets(st.sampled_from(FIELDS[:8]), max_size=5))}
        if draw(st.booleans()):
            plain[draw(FIELD_NAMES)] = draw(FIELD_VALUES)
        return encode(draw, {key: plain})
    if kind == "shaped":
        body: Any = {key: inner}
        if draw(st.booleans()):
            body = {key: draw(JSON_VALUES)} if draw(st.booleans()) else body
        return encode(draw, body)
    if kind == "wrong_key":
        return encode(draw, {draw(st.sampled_from(["data", "context", "Data", "", key + " "])): inner,
                             **draw(st.dictionaries(ANY_TEXT, JSON_VALUES, max_size=2))})
    if kind == "top_level":
        return encode(draw, draw(st.one_of(SCALARS, st.lists(JSON_VALUES, max_size=3))))
    if kind == "raw":
        return draw(st.binary(max_size=300))
    if kind == "truncated":
        whole = encode(draw, {key: inner})
        return whole[:draw(st.integers(0, max(0, len(whole) - 1)))]
    if kind == "nested":
        depth = draw(st.sampled_from([50, 1000, 5000, 30_000, 60_000]))
        opener = draw(st.sampled_from(["[", '{"a":']))
        closer = "]" if opener == "[" else "}"
        core = opener * depth + "1" + closer * depth
        return (f'{{"{key}": {core}}}' if draw(st.booleans()) else core).encode()
    if kind == "huge":
        size = draw(st.sampled_from([TOO_BIG - 100, TOO_BIG - 20, TOO_BIG, TOO_BIG + 1, 70_000, 100_000]))
        name = draw(st.sampled_from(FIELDS))
        prefix = f'{{"{key}": {{"{name}": "'.encode()
        return prefix + b"a" * max(0, size - len(prefix) - 3) + b'"}}'
    if kind == "not_utf8":
        junk = draw(st.sampled_from([b"\xff\xfe", b"\xc3", b"\xed\xa0\x80", b"\xc0\xaf", b"\x80abc",
                                     b"\xf4\x90\x80\x80"]))
        name = draw(st.sampled_from(FIELDS)).encode()
        return b'{"' + key.encode() + b'": {"' + name + b'": "x' + junk + b'"}}'
    if kind == "special":
        return draw(st.sampled_from([
            f'{{"{key}": {{}}, "{key}": {{}}}}', f'{{"{key}": {{"email": NaN}}}}',
            f'{{"{key}": {{"email": Infinity}}}}', f'{{"{key}": {{"email": 1e999}}}}',
            f'{{"{key}": {{"email": {"9" * 5000}}}}}', f'{{"{key}": {{"a": "\\ud800"}}}}',
            f'{{"{key}": {{"email": "\\udfff\\ud800"}}}}', f'{{"{key}": {{"\\u0000": "x"}}}}',
            f'{{"{key}": {{"email": "\\u0000"}}}}', f'{{"{key}": {{"email": "a\\u202eb"}}}}',
            f'\ufeff{{"{key}": {{}}}}', f'{{"{key}": {{"x": 1}} /* comment */}}', "null", '"',
            f"{{'{key}': {{}}}}", f'{{"{key}": {{"email": "a"}}}}garbage',
        ])).encode("utf-8")
    return draw(st.sampled_from([b"", b" ", b"\n\t ", b"\x00"]))


def encode(draw: st.DrawFn, body: Any) -> bytes:
    """JSON as UTF-8 (escaped, or raw with lone surrogates as non-UTF-8 bytes), or UTF-16 / Latin-1."""
    text = json.dumps(body, ensure_ascii=draw(st.booleans()))
    how = draw(st.sampled_from(["utf-8"] * 6 + ["utf-16", "latin-1"]))
    if how == "utf-8":
        return text.encode("utf-8", "surrogatepass")
    return text.encode(how, "replace")


CONTENT_TYPES = st.sampled_from([
    "application/json"] * 6 + [None, "application/json; charset=utf-8", "application/json; charset=latin-1",
                               "application/json; charset=utf-16", "text/plain", "text/json",
                               "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                               "application/vnd.api+json", "application/json;;;", "*/*", "application/",
                               "application/json\t; x=\u00ff"])


@st.composite
def api_headers(draw: st.DrawFn, tokens: dict[str, str], flow_token: str | None = None) -> dict[str, str]:
    """Headers of an API request: Content-Type, Idempotency-Key, Authorization, Accept-Language,
    and (for a request on a flow) mostly the flow's token, else none or a wrong one."""
    headers: dict[str, str] = {}
    if flow_token is not None:
        spoilt = ["missing", "empty", "reversed", "longer", "huge", "text"]
        how = draw(st.sampled_from(["right"] * 8 + spoilt), label="flow token")
        if how != "missing":
            headers[TOKEN] = {"right": flow_token, "empty": "", "reversed": flow_token[::-1],
                              "longer": flow_token + "x", "huge": "x" * 300}.get(how) or draw(
                st.text(LATIN1, max_size=60))
    content_type = draw(mostly(st.just("application/json"), CONTENT_TYPES, 3), label="content type")
    if content_type is not None:
        headers["Content-Type"] = content_type
    odd_keys = st.sampled_from(["k" * 255, "k" * 256, "", " ", "ключ", "a b", "\u00ff\u00fe", "key\t1"])
    key = draw(mostly(st.sampled_from([None, "key-1", "key-2"]), odd_keys | st.text(LATIN1, max_size=300), 3),
               label="idempotency key")
    if key is not None:
        headers["Idempotency-Key"] = key
    token = draw(st.sampled_from([None, "admin", "member", "admin", "garbage"]), label="session")
    if token is not None:
        odd_schemes = st.sampled_from(["bearer", "BEARER", "Basic", "Token", ""])
        scheme = draw(mostly(st.just("Bearer"), odd_schemes, 3), label="scheme")
        value = tokens.get(token) or draw(st.text(LATIN1, max_size=300))
        headers["Authorization"] = draw(mostly(st.just(f"{scheme} {value}"), st.sampled_from(
            [f"{scheme}  {value} ", scheme, f"{scheme} {value}.x", value]), 3), label="authorization")
    lang = draw(mostly(st.sampled_from([None, "ja", "en"]), st.sampled_from(
        ["en-US,en;q=0.5", "xx", "*", ";;;q=x", "ja;q=abc"]) | st.text(LATIN1, max_size=40), 3), label="lang")
    if lang is not None:
        headers["Accept-Language"] = lang
    return headers


PATH_TEXT = st.one_of(
    ANY_TEXT.map(lambda t: quote(t, safe="", errors="surrogatepass")),
    st.binary(min_size=1, max_size=20).map(lambda b: quote_from_bytes(b, safe="")),
    st.sampled_from(["%00", "%ff", "%ed%a0%80", "..", ".", "%2e%2e", "%2F", "a%2Fb", "x" * 300,
                     "AAAAAAAAAAAAAAAAAAAAAA", "%E2%80%AE", "%20submit"]),
)
QUERY = st.sampled_from(["", "", "?lang=en", "?lang=xx", "?lang=%00", "?lang=%ff", "?lang=ja&lang=en",
                         "?x=" + "y" * 5000, "?%ff=%fe"])


# ---- the server and its store ---------------------------------------------------------------

@attrs.define
class Site:
    """The live server, its engine and clock, and the sessions of taro (admin) and hana."""

    base: str
    engine: regflow.Engine
    tokens: dict[str, str]
    logins: dict[str, str]  # e-mail → login id


def all_logins(engine: regflow.Engine) -> list[Any]:
    """Every login of every customer in the store."""
    with engine.store.transaction() as tx:
        return [login for customer in tx.contracts.customers()
                for login in tx.logins.of_customer(customer.customer_id)]


def newest_code(engine: regflow.Engine, address: str) -> str:
    """The code of the newest mail to ``address`` (the server's requests mail others meanwhile,
    from its delivery thread)."""
    mailer: Any = engine.mailer
    mail = [m for m in list(mailer.messages) if m["To"] == address][-1]
    return codes_in(mail)[0]


def enroll(engine: regflow.Engine, seat: str, address: str) -> None:
    """Register a login in-process (accepted, provisioning)."""
    snap = engine.start("registration", {"account": seat})
    snap = engine.send(snap, "submit", {"email": address})
    snap = engine.send(snap, "submit", {"code": newest_code(engine, address)})
    snap = engine.send(snap, "submit", {
        "password": PASSWORD, "password_confirm": PASSWORD, "customer_id": CONTRACT["customer_id"],
        "display_name": "山田 太郎", "tel": CONTRACT["phone"]})
    assert snap.state == "provisioning", snap.screen.messages


def sign_in(engine: regflow.Engine, seat: str, address: str) -> str:
    """Sign in in-process (linking the seat); the session token."""
    snap = engine.start("sign_in", {"account": seat})
    snap = engine.send(snap, "submit", {"email": address, "password": PASSWORD})
    if snap.state == "link_prompt":
        snap = engine.send(snap, "submit")
    assert snap.session, snap.screen.messages
    return snap.session


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """One server for the module, with taro and hana signed in."""
    clock = regflow.ManualClock(START)
    db = tmp_path_factory.mktemp("fuzz-http") / "regflow.db"
    engine = regflow.Engine.from_url(f"sqlite:///{db}", mail="memory", hasher="fast", clock=clock,
                                     limits=LIMITS)
    engine.contracts.add(**CONTRACT)
    enroll(engine, "abcd8-01", TARO)
    enroll(engine, "abcd8-02", HANA)
    clock.advance(601)
    tokens = {"admin": sign_in(engine, "abcd8-01", TARO), "member": sign_in(engine, "abcd8-02", HANA)}
    logins = {login.email: login.id for login in all_logins(engine)}
    try:
        with serving(create_app(engine)) as base:
            yield Site(base, engine, tokens, logins)
    finally:
        engine.store.close()


@attrs.frozen
class Flow:
    """A flow prepared for an example: its id and its token ("" for an id that does not exist)."""

    id: str
    token: str

    @property
    def cookie(self) -> str:
        """The cookie a browser that started the flow holds for its page."""
        return f"regflow_flow={self.token}" if self.token else ""


UNKNOWN = Flow("AAAAAAAAAAAAAAAAAAAAAA", "")


def made(snap: Snapshot) -> Flow:
    """The flow of a snapshot answered in-process (which carries its token)."""
    assert snap.flow_token
    return Flow(snap.id, snap.flow_token)


def prepare(site: Site, target: str) -> Flow:
    """A fresh flow in the state the example aims at (made in-process)."""
    engine = site.engine
    if target == "unknown":
        return UNKNOWN
    if target == "cancelled":
        snap = engine.start("registration", {"account": "abcd8-03"})
        engine.send(snap, "cancel")
        return made(snap)
    name, state = target.split("@")
    if name in ("require_two_factor", "set_two_factor", "unlink_login"):
        context = {"target": site.logins[HANA]} if name == "unlink_login" else {}
        try:
            return made(engine.start(name, context, session=site.tokens["admin"]))
        except regflow.Forbidden:  # an earlier example took taro's session or role away
            return UNKNOWN
    seat = "zzzz9-99" if state == "unknown_seat" else "abcd8-03"
    try:
        snap = engine.start(name, {"account": seat} if name != "password_reset" else {})
    except regflow.InvalidContext:  # a seat no contract has may be refused at once
        assert seat == "zzzz9-99"
        return UNKNOWN
    address = f"jiro{next(ADDRESSES)}@example.jp"
    if state in ("enter_code", "details"):
        snap = engine.send(snap, "submit", {"email": address})
    if state == "details":
        snap = engine.send(snap, "submit", {"code": newest_code(engine, address)})
    assert snap.state == state.replace("unknown_seat", "credentials"), (target, snap.state)
    return made(snap)


def offered_events(site: Site, flow: Flow) -> list[str]:
    """The events a flow's screen offers now (none for an unknown or ended flow)."""
    try:
        return [action.event for action in site.engine.get(flow.id, token=flow.token).screen.actions]
    except regflow.FlowNotFound:
        return []


# ---- HTTP -----------------------------------------------------------------------------------

@attrs.frozen
class Answer:
    """One HTTP answer."""

    status: int
    headers: dict[str, str]
    raw: bytes
    cookies: list[str] = attrs.field(factory=list)  # every Set-Cookie (``headers`` keeps one)

    def header(self, name: str) -> str | None:
        """A header by case-insensitive name."""
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)


def send(site: Site, method: str, path: str, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> Answer:
    """One request on a fresh connection, exactly as given (no encoding of our own)."""
    parts = urlsplit(site.base)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            raw = value.encode("latin-1") if value.isascii() or max(map(ord, value)) < 256 \
                else value.encode("utf-8", "surrogatepass")  # bytes a client should not send
            conn.putheader(name, raw)
        conn.putheader("Content-Length", str(len(body or b"")))
        conn.endheaders(body or b"")
        response = conn.getresponse()
        return Answer(response.status, dict(response.getheaders()), response.read(),
                      response.msg.get_all("Set-Cookie") or [])
    finally:
        conn.close()


def check_api_answer(answer: Answer, what: str) -> None:
    """2xx or 4xx, never 5xx; JSON always; a 4xx names its error (or is a 422 snapshot with ids)."""
    assert answer.status < 500, f"{what}: {answer.status} {answer.raw[:500]!r}"
    assert 200 <= answer.status < 300 or 400 <= answer.status < 500, f"{what}: {answer.status}"
    assert answer.header("Content-Type") == "application/json", (what, answer.headers)
    body = json.loads(answer.raw)
    if answer.status < 400:
        assert isinstance(body, dict | list), what
        return
    assert isinstance(body, dict), (what, body)
    if answer.status == 422 and "screen" in body:
        messages = body["screen"]["messages"]
        assert any(m["level"] == "error" for m in messages), (what, messages)
        assert all(isinstance(m["id"], str) and m["id"] for m in messages), (what, messages)
    else:
        assert isinstance(body.get("error"), str), (what, body)
        assert body["error"], (what, body)
        assert isinstance(body.get("detail"), str), (what, body)


# ---- the JSON API ---------------------------------------------------------------------------

@API_SETTINGS
@given(data=st.data())
def test_api_start_takes_any_body(site: Site, data: st.DataObject) -> None:
    """POST /api/flows/<name>: any name, body and headers give a 201 or a 4xx with an error id."""
    name = data.draw(mostly(st.sampled_from(FLOW_NAMES), PATH_TEXT, 3), label="flow name")
    body = data.draw(json_bodies("context") | st.sampled_from(SEATS).map(
        lambda seat: json.dumps({"context": {"account": seat}}).encode()), label="body")
    headers = data.draw(api_headers(site.tokens), label="headers")
    path = f"/api/flows/{name}{data.draw(QUERY, label='query')}"
    answer = send(site, "POST", path, body, headers)
    event(f"{answer.status} {json.loads(answer.raw).get('error') or json.loads(answer.raw).get('state')}")
    check_api_answer(answer, path)
    check_invariants(site.engine)


@API_SETTINGS
@given(data=st.data())
def test_api_start_by_body_takes_any_body(site: Site, data: st.DataObject) -> None:
    """POST /api/flows: any "flow", body and headers give a 201 or a 4xx with an error id."""
    name = data.draw(mostly(st.sampled_from(FLOW_NAMES), PATH_TEXT | JSON_VALUES, 3), label="flow name")
    body = data.draw(json_bodies("context") | st.sampled_from(SEATS).map(
        lambda seat: json.dumps({"context": {"account": seat}}).encode()), label="body")
    try:
        shaped = json.loads(body)
    except ValueError:
        shaped = None
    if isinstance(shaped, dict) and data.draw(st.booleans(), label="with flow"):
        body = json.dumps({"flow": name, **shaped}).encode()
    headers = data.draw(api_headers(site.tokens), label="headers")
    path = f"/api/flows{data.draw(QUERY, label='query')}"
    answer = send(site, "POST", path, body, headers)
    event(f"{answer.status} {json.loads(answer.raw).get('error') or json.loads(answer.raw).get('state')}")
    check_api_answer(answer, path)
    check_invariants(site.engine)


@API_SETTINGS
@given(data=st.data())
def test_api_events_take_any_body(site: Site, data: st.DataObject) -> None:
    """POST /api/flows/<id>/events/<event>: any flow, event, body and headers give a 200 or a 4xx."""
    flow = prepare(site, data.draw(st.sampled_from(TARGETS), label="target"))
    offered = offered_events(site, flow)
    flow_id = data.draw(mostly(st.just(flow.id), PATH_TEXT), label="flow id")
    event_name = data.draw(mostly(st.sampled_from(offered or EVENTS), st.sampled_from(EVENTS) | PATH_TEXT, 3),
                           label="event")
    body = data.draw(json_bodies("data"), label="body")
    headers = data.draw(api_headers(site.tokens, flow.token), label="headers")
    path = f"/api/flows/{flow_id}/events/{event_name}"
    answer = send(site, "POST", path, body, headers)
    event(f"{answer.status} {json.loads(answer.raw).get('error') or json.loads(answer.raw).get('state')}")
    check_api_answer(answer, path)
    check_invariants(site.engine)


@API_SETTINGS
@given(data=st.data())
def test_api_reads_and_odd_methods(site: Site, data: st.DataObject) -> None:
    """GET a flow or the admin list, or any method on any API route: 2xx or 4xx, JSON."""
    flow = prepare(site, data.draw(st.sampled_from(TARGETS), label="target"))
    flow_id = flow.id
    path = data.draw(st.sampled_from([
        f"/api/flows/{flow_id}", "/api/admin/logins", f"/api/flows/{flow_id}/events/submit",
        "/api/flows/registration", "/api/flows", "/api/openapi.json", "/api/", "/api", "/api/nope",
    ]) | PATH_TEXT.map(lambda p: f"/api/flows/{p}"), label="path") + data.draw(QUERY, label="query")
    method = data.draw(st.sampled_from(["GET"] * 4 + ["POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]),
                       label="method")
    body = data.draw(st.sampled_from([None, b"", b"{}", b"\xff"]), label="body")
    answer = send(site, method, path, body, data.draw(api_headers(site.tokens, flow.token), label="headers"))
    if method == "HEAD":
        assert answer.status < 500, (path, answer.status)
    elif method == "OPTIONS" and answer.status == 204:
        assert answer.header("Allow"), answer.headers
        assert answer.raw == b"", answer.raw
    else:
        check_api_answer(answer, f"{method} {path}")
    check_invariants(site.engine)


# ---- the HTML forms -------------------------------------------------------------------------

HIDDEN = re.compile(r'<input type="hidden" name="(csrf_token|form)" value="([^"]*)">')
BUTTONS = re.compile(r'name="event" value="([^"]*)"')
INPUTS = re.compile(r'<input[^>]*\bname="([^"]+)"')


@attrs.frozen
class Page:
    """A flow's page as a browser holds it: the cookie, the hidden tokens, the buttons."""

    path: str
    cookie: str
    csrf: str
    form: str
    events: list[str]
    inputs: list[str]  # the names of the visible fields


def cookies_of(answer: Answer, held: dict[str, str] | None = None) -> dict[str, str]:
    """The cookies a browser holds for the page after an answer: those it held, updated by the
    answer's (Flask's ``session``, and ``regflow_flow``, the flow's token, for that page)."""
    kept = dict(held or {})
    for header in answer.cookies:
        name, _, value = header.split(";")[0].partition("=")
        kept[name.strip()] = value
    return kept


def cookie_header(cookies: dict[str, str]) -> str:
    """The Cookie header of a browser holding ``cookies``."""
    return "; ".join(f"{name}={value}" for name, value in cookies.items())


def open_page(site: Site, target: str, seat: str) -> Page | None:
    """Open a flow's page in a fresh browser: a launch (sign-in) or a flow made in-process."""
    if target == "launch":
        launch = send(site, "GET", f"/?{urlencode({'account': seat})}")
        assert launch.status < 500, launch.raw[:300]
        if launch.status != 303:
            return None
        path, cookies = urlsplit(launch.header("Location") or "").path, cookies_of(launch)
    else:
        flow = prepare(site, target)
        path, cookies = f"/flows/{flow.id}", {"regflow_flow": flow.token} if flow.token else {}
    page = send(site, "GET", path, headers={"Cookie": cookie_header(cookies)} if cookies else {})
    assert page.status < 500, (path, page.status, page.raw[:300])
    html = page.raw.decode("utf-8")
    hidden = dict(HIDDEN.findall(html))
    cookie = cookie_header(cookies_of(page, cookies))
    if "form" not in hidden:  # a page without actions (ended, unknown)
        return Page(path, cookie, hidden.get("csrf_token", ""), "", [], [])
    inputs = [name for name in INPUTS.findall(html) if name not in ("csrf_token", "form")]
    return Page(path, cookie, hidden["csrf_token"], hidden["form"], BUTTONS.findall(html), inputs)


ASPECTS = ["csrf", "form", "event", "fields", "encoding", "cookie"]


@st.composite
def form_posts(draw: st.DrawFn, page: Page, other: Page | None) -> tuple[bytes, dict[str, str], str]:
    """A POST as a browser sends it, with up to three of its parts (``ASPECTS``) spoiled."""
    size = draw(st.sampled_from([0, 0, 0, 1, 1, 2, 3]), label="how many spoiled")
    spoiled = draw(st.sets(st.sampled_from(ASPECTS), min_size=size, max_size=size), label="spoiled")
    fields: list[tuple[str, str]] = []
    csrf = draw(st.sampled_from(["missing", "wrong", "empty", "random"])) if "csrf" in spoiled else "valid"
    if csrf != "missing":
        fields.append(("csrf_token", {"valid": page.csrf, "wrong": page.csrf[::-1], "empty": ""}.get(
            csrf) or draw(ANY_TEXT)))
    form = draw(st.sampled_from(["missing", "garbage", "other", "huge"])) if "form" in spoiled else "valid"
    if form != "missing":
        fields.append(("form", {"valid": page.form, "other": other.form if other else "x",
                                "huge": "A" * 5000}.get(form) or draw(ANY_TEXT)))
    if "event" not in spoiled and page.events:
        fields.append(("event", draw(st.sampled_from(page.events), label="event")))
    elif draw(st.integers(0, 9)):
        fields.append(("event", draw(st.sampled_from(EVENTS) | ANY_TEXT, label="event")))
        if draw(st.booleans()):
            fields.append(("event", draw(ANY_TEXT)))  # a second event: which one wins is Flask's
    values = (ANY_TEXT | HUGE_TEXT) if "fields" in spoiled else FORM_VALUES
    fields += [(name, draw(values, label=name)) for name in page.inputs]
    if "fields" in spoiled:
        fields += draw(st.lists(st.tuples(FIELD_NAMES, ANY_TEXT | HUGE_TEXT), max_size=4), label="extra")
    encoding = draw(st.sampled_from(["not_utf8", "multipart", "json", "plain", "none", "huge"])
                    if "encoding" in spoiled else st.sampled_from(["urlencoded"] * 3 + ["multipart"]),
                    label="encoding")
    headers = {"Cookie": page.cookie, "Content-Type": "application/x-www-form-urlencoded"}
    if "cookie" in spoiled:
        others = "; ".join(c for c in page.cookie.split("; ") if not c.startswith("regflow_flow="))
        headers["Cookie"] = draw(st.sampled_from([
            "", "session=garbage", "session=", page.cookie, others,  # the flow's token missing
            page.cookie.replace("regflow_flow=", "regflow_flow=x"), f"{others}; regflow_flow="]))
        headers["Cookie"] += "; regflow_session=" + draw(st.sampled_from(["garbage", "", "a.b", "x" * 300]))
    pairs = [(quote(k, safe="", errors="surrogatepass"), quote(v, safe="", errors="surrogatepass"))
             for k, v in fields]
    body = "&".join(f"{k}={v}" for k, v in pairs).encode("ascii")
    if encoding == "not_utf8":
        body += b"&email=%ff%fe&display_name=%ed%a0%80&" + draw(st.binary(max_size=40))
    elif encoding == "multipart":
        boundary = "fuzzboundary"
        parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
                 + value.encode("utf-8", "surrogatepass") + b"\r\n"
                 for (name, _), (_, value) in zip(pairs, fields, strict=True)]
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        if "encoding" in spoiled and draw(st.booleans()):
            # A fraction, not an index: the body's length varies with the page's random
            # tokens, and a draw's bounds must not depend on outside state.
            body = body[:int(len(body) * draw(st.floats(0, 1)))]
        headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
    elif encoding == "json":
        body, headers["Content-Type"] = json.dumps(dict(fields)).encode(), "application/json"
    elif encoding == "plain":
        headers["Content-Type"] = "text/plain"
    elif encoding == "none":
        del headers["Content-Type"]
    elif encoding == "huge":
        body += b"&display_name=" + b"a" * (TOO_BIG + 10)
    return body, headers, ",".join(sorted(spoiled)) or "nothing"


@FORM_SETTINGS
@given(data=st.data())
def test_forms_take_any_post(site: Site, data: st.DataObject) -> None:
    """POST /flows/<id>: any fields, tokens, event, encoding and cookie give a 303 or a 4xx."""
    target = data.draw(st.sampled_from(["launch"] * 6 + TARGETS), label="page")
    page = open_page(site, target, data.draw(st.sampled_from([*SEATS, "zzzz9-99", "zzzz9-99"]), label="seat"))
    if page is None:
        return
    other = open_page(site, "launch", "abcd8-01") if data.draw(st.booleans(), label="other") else None
    body, headers, spoiled = data.draw(form_posts(page, other), label="post")
    path = data.draw(mostly(st.just(page.path), PATH_TEXT.map(lambda p: f"/flows/{p}")), label="path")
    answer = send(site, "POST", path, body, headers)
    event(f"{target}, {spoiled} spoiled → {answer.status}")
    assert answer.status == 303 or 400 <= answer.status < 500, (path, answer.status)
    check_invariants(site.engine)


def test_every_api_error_of_a_fixed_set_is_json(site: Site) -> None:
    """A handful of fixed hostile requests, one per kind, each a 4xx JSON error (a smoke test)."""
    flow = prepare(site, "registration@enter_email")
    path = f"/api/flows/{flow.id}/events/submit"
    cases: list[tuple[bytes, dict[str, str], int]] = [
        (b"{", {"Content-Type": "application/json"}, 400),
        (b'{"data": {"email": "\xff"}}', {"Content-Type": "application/json"}, 400),
        (b"[1]", {"Content-Type": "application/json"}, 400),
        (b'{"data": {}, "x": 1}', {"Content-Type": "application/json"}, 400),
        (b'{"data": {"email": "\\ud800"}}', {"Content-Type": "application/json"}, 400),
        (b'{"data": {"email": "a\\u0000"}}', {"Content-Type": "application/json"}, 400),
        (b"[" * 30_000 + b"]" * 30_000, {"Content-Type": "application/json"}, 400),
        (b'{"data": {"email": "' + b"a" * 70_000 + b'"}}', {"Content-Type": "application/json"}, 413),
        (b'{"data": {}}', {"Content-Type": "text/plain"}, 400),
        (b'{"data": {}}', {"Content-Type": "application/json", "Idempotency-Key": "a b"}, 400),
    ]
    for body, headers, status in cases:
        answer = send(site, "POST", path, body, {**headers, TOKEN: flow.token})
        check_api_answer(answer, repr(body[:40]))
        assert answer.status == status, (body[:40], answer.status, answer.raw[:200])


def test_create_account_from_an_unknown_seat_is_not_a_500(site: Site) -> None:
    """Regression (bug 3): "create an account" on a sign-in page of an unknown seat: 4xx/303, not 500."""
    page = open_page(site, "launch", "zzzz9-99")
    if page is not None:  # the launch was taken: the hand-over must not fail
        assert "create_account" in page.events
        body = urlencode({"csrf_token": page.csrf, "form": page.form, "event": "create_account"}).encode()
        answer = send(site, "POST", page.path, body,
                      {"Cookie": page.cookie, "Content-Type": "application/x-www-form-urlencoded"})
        assert answer.status == 303 or 400 <= answer.status < 500, (answer.status, answer.raw[:200])
    api_flow = prepare(site, "sign_in@unknown_seat")
    api = send(site, "POST", f"/api/flows/{api_flow.id}/events/create_account", b"",
               {TOKEN: api_flow.token} if api_flow.token else {})
    check_api_answer(api, "create_account")
    assert json.loads(api.raw)["error"] in ("account_unknown", "flow_not_found")


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/api/flows/%2Fx"), ("POST", "/api/flows/x/events//submit"), ("POST", "/flows//x"),
])
def test_an_empty_path_segment_is_not_a_redirect(site: Site, method: str, path: str) -> None:
    """Regression (bug 4): ``//`` or ``%2F`` in a path is no HTML 308 (JSON 2xx/4xx; pages 4xx/303)."""
    answer = send(site, method, path, b"{}", {"Content-Type": "application/json"})
    if path.startswith("/api"):
        check_api_answer(answer, f"{method} {path}")
    else:
        assert answer.status == 303 or 400 <= answer.status < 500, (path, answer.status)
