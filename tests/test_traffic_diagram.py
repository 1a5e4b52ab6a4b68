"""The traffic diagram (issue 17): scripted traffic (``regflow.reports.traffic``) driven through a real
engine, its report drawn on the flow's diagram — in DOT, SVG and Mermaid, by ``regflow diagram
--traffic`` on an SQLite file, and on the admin's traffic page on memory and SQLite.

Every expected number is derived from the script's declared people per path (``SCRIPT``), by
the paths' definitions in ``regflow/traffic.py`` — never read back from a report.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from chromium import launched
from flask.testing import FlaskClient
from flows import logins_of
from live_server import serving

import regflow
from regflow.diagrams.dot import to_dot
from regflow.diagrams.mermaid import mermaid_text, to_mermaid
from regflow.diagrams.traffic import traffic_dot, traffic_mermaid, traffic_svg
from regflow.machines import builtin_library
from regflow.reports.funnel import flow_report
from regflow.reports.traffic import PASSWORD, PHONE, TrafficScript, run_traffic
from regflow.web import create_app

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "docs" / "screenshots"
REGISTRATION = builtin_library().latest("registration")
SCRIPT = TrafficScript(
    day=datetime(2026, 1, 5, tzinfo=UTC), customer="281001", full_customer="281099", tag="a",
    people={"finish": 5, "wrong_code": 2, "contract_mismatch": 1, "license_full": 1,
            "cancel_at_email": 2, "cancel_at_code": 1, "cancel_at_details": 1, "code_expires": 2,
            "abandon_at_details": 1})
OTHER = TrafficScript(  # a second customer in the same store, the next day
    day=datetime(2026, 1, 6, tzinfo=UTC), customer="281002", full_customer="281098", tag="b",
    people={"finish": 3, "cancel_at_code": 4, "code_expires": 1})


def expected(script: TrafficScript, *, own: bool) -> dict[str, int]:
    """What the script's paths make of the registration flow: of its customer only (``own``:
    the license_full people belong to its full customer) or of both its customers."""
    full = 0 if own else script.count("license_full")
    at_email = script.total - script.count("license_full") + full
    ready = script.count("finish", "wrong_code", "contract_mismatch")
    return {
        "started": at_email,
        "email_to_code": at_email - script.count("cancel_at_email"),
        "cancel_at_email": script.count("cancel_at_email"),
        "wrong_code": script.count("wrong_code"),
        "code_timeout": script.count("code_expires"),
        "code_to_details": at_email - script.count("cancel_at_email", "cancel_at_code", "code_expires"),
        "cancel_at_code": script.count("cancel_at_code"),
        "expired_at_code": script.count("code_expires"),
        "details_stays": script.count("contract_mismatch") + full,
        "cancel_at_details": script.count("cancel_at_details") + full,
        "expired_at_details": script.count("abandon_at_details"),
        "ready": ready,
        "cancelled": script.count("cancel_at_email", "cancel_at_code", "cancel_at_details") + full,
        "expired": script.count("code_expires", "abandon_at_details"),
    }


def new_engine(url: str) -> tuple[regflow.Engine, regflow.ManualClock]:
    """An engine on ``url`` with a manual clock at the script's day."""
    clock = regflow.ManualClock(SCRIPT.day)
    return regflow.Engine.from_url(url, mail="memory", hasher="fast", clock=clock), clock


@pytest.fixture(scope="module")
def played() -> Iterator[regflow.Engine]:
    """SCRIPT, then OTHER, played through one engine in memory."""
    engine, clock = new_engine("memory://")
    run_traffic(engine, clock, SCRIPT)
    run_traffic(engine, clock, OTHER)
    return engine


def plain(markup: str) -> str:
    """The text of a DOT HTML-like label, whitespace collapsed."""
    text = re.sub(r"<[^>]*>", " ", markup).replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    return " ".join(text.split())


def statement(dot: str, head: str) -> str:
    """The one DOT statement (a line) that begins with ``head``."""
    found = [line.strip() for line in dot.splitlines() if line.strip().startswith(head)]
    assert len(found) == 1, (head, found)
    return found[0]


# ---- the drawings --------------------------------------------------------------------------------


def test_dot_carries_the_scripts_counts(played: regflow.Engine) -> None:
    """Of customer 281001: each arrow's label ends in its count, the stays' counts are in their
    boxes, shared cancel and the inactivity expiry name theirs per state; drop-offs marked."""
    want = expected(SCRIPT, own=True)
    report = flow_report(played.store, REGISTRATION, customer=SCRIPT.customer)
    dot = traffic_dot(REGISTRATION, report, lang="en")
    assert statement(dot, '"__start__" -> "enter_email"').endswith(
        f'[weight=10, label=<{want["started"]} started>, penwidth=5];')
    width = round(0.8 + 4.2 * want["email_to_code"] / want["started"], 2)  # the start is the busiest
    assert plain(statement(dot, '"enter_email" -> "enter_code"')).endswith(
        f"send_code × {want['email_to_code']} >, weight=10, penwidth=1.6, penwidth={width:g}];")
    assert f"use_code × {want['code_to_details']} " in plain(statement(dot, '"enter_code" -> "details"'))
    assert f"create_login × {want['ready']} " in plain(statement(dot, '"details" -> "provisioning"'))
    assert f"provisioned × {want['ready']} " in plain(statement(dot, '"provisioning" -> "ready"'))
    code_box = plain(statement(dot, '"enter_code" [label='))
    assert f"Σ submit × {want['wrong_code']} " in code_box
    assert f"code_expired × {want['code_timeout']} " in code_box
    assert "Σ resend_code × 0 " in code_box
    assert f"Σ submit × {want['details_stays']} " in plain(statement(dot, '"details" [label='))
    cancel = plain(statement(dot, '"shared_cancel_cancelled" ['))
    assert (f"enter_email × {want['cancel_at_email']} email_taken × 0 enter_code / void_code × "
            f"{want['cancel_at_code']} details × {want['cancel_at_details']}") in cancel
    assert f"label=<cancel × {want['cancelled']}>" in statement(dot, '"shared_cancel_cancelled" ->')
    expiry = plain(statement(dot, '"expiry" ['))
    assert f"enter_code × {want['expired_at_code']} details × {want['expired_at_details']}" in expiry
    assert f"label=<× {want['expired']}>" in statement(dot, '"expiry" -> "expired"')
    ready_box = plain(statement(dot, '"ready" [label='))
    share = 100 * want["ready"] / want["started"]
    assert f"{want['ready']} ended here ({share:.1f} % of started)" in ready_box
    for state in ("enter_email", "enter_code", "details"):  # people dropped off there: a red frame
        assert statement(dot, f'"{state}" [label=').endswith('color="#c50f1f", penwidth=2.2];'), state
    for state in ("cancelled", "expired"):
        assert statement(dot, f'"{state}" [label=').endswith('fillcolor="#fde7e9", color="#c50f1f"];')
    for state in ("email_taken", "handed_over", "failed"):  # nobody came: grey
        assert statement(dot, f'"{state}" [label=').endswith(
            'fillcolor="#f4f4f4", color="#bbbbbb", fontcolor="#8a8886"];'), state
    dropped = want["cancel_at_code"] + want["expired_at_code"]
    assert f"{dropped} dropped off (cancelled {want['cancel_at_code']}, expired {want['expired_at_code']})" \
        in code_box


def test_widths_follow_the_counts(played: regflow.Engine) -> None:
    """The busiest arrow (the start) is 5 points wide; every other in proportion; an arrow
    nobody took is grey and thinnest."""
    want = expected(SCRIPT, own=True)
    dot = traffic_dot(REGISTRATION, flow_report(played.store, REGISTRATION, customer=SCRIPT.customer))
    width = 0.8 + 4.2 * want["ready"] / want["started"]
    assert f"penwidth={round(width, 2):g}" in statement(dot, '"details" -> "provisioning"')
    assert 'penwidth=0.8, color="#bbbbbb"' in statement(dot, '"details → email_taken" -> "details"')


def test_mermaid_carries_the_scripts_counts(played: regflow.Engine) -> None:
    """The same numbers in Mermaid: in the edges' labels, the boxes' lines and the notes; marks
    as classes."""
    want = expected(SCRIPT, own=True)
    text = traffic_mermaid(REGISTRATION, flow_report(played.store, REGISTRATION, customer=SCRIPT.customer),
                           lang="en")
    lines = text.splitlines()

    def edge(source: str, target: str) -> str:
        (found,) = [line for line in lines if line.strip().startswith(f"s_{source} --> s_{target} :")]
        return found

    assert f"    [*] --> s_enter_email : {want['started']} started" in lines
    assert edge("enter_email", "enter_code").endswith(mermaid_text(f"send_code × {want['email_to_code']}"))
    assert edge("enter_code", "details").endswith(mermaid_text(f"use_code × {want['code_to_details']}"))
    assert edge("provisioning", "ready").endswith(mermaid_text(f"× {want['ready']}"))
    stays, mismatches = want["wrong_code"], want["details_stays"]
    assert "    s_enter_code : " + mermaid_text(f"Σ submit × {stays}") in lines
    assert "    s_details : " + mermaid_text(f"Σ submit × {mismatches}") in lines
    assert "    n_shared0 --> s_cancelled : " + mermaid_text(f"cancel × {want['cancelled']}") in lines
    assert "    n_expiry --> s_expired : " + mermaid_text(f"× {want['expired']}") in lines
    assert "    n_expiry : " + mermaid_text(f"details × {want['expired_at_details']}") in lines
    assert "    class s_enter_email,s_enter_code,s_details dropoff" in lines
    assert "    class s_cancelled,s_expired lost" in lines
    assert "    class s_email_taken,s_handed_over,s_failed unreached" in lines
    assert "linkStyle" not in text  # state diagrams cannot style one edge (mermaid-js/mermaid#1352)


def test_mermaid_parses(played: regflow.Engine) -> None:
    """Mermaid's own parser accepts the traffic diagram (when tools/mermaid is installed)."""
    parser = ROOT / "tools" / "mermaid"
    if not (parser / "node_modules" / "mermaid").is_dir():
        pytest.skip("tools/mermaid not installed (npm ci --prefix tools/mermaid): Mermaid syntax not checked")
    text = traffic_mermaid(REGISTRATION, flow_report(played.store, REGISTRATION))
    done = subprocess.run(["node", str(parser / "parse.mjs")], input=text, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr


def test_svg_renders_through_graphviz(played: regflow.Engine) -> None:
    """Graphviz draws the traffic DOT: the counts are texts of the SVG."""
    want = expected(SCRIPT, own=True)
    try:
        svg = traffic_svg(REGISTRATION, flow_report(played.store, REGISTRATION, customer=SCRIPT.customer))
    except regflow.diagrams.render.GraphvizMissing:
        pytest.skip("Graphviz (dot) not installed: SVG not checked")
    root = ElementTree.fromstring(svg)
    texts = [" ".join((t.text or "").split()) for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert f"{want['started']} started" in texts
    assert f"Σ submit × {want['wrong_code']}" in texts
    assert f"cancel × {want['cancelled']}" in texts


def test_no_report_no_change() -> None:
    """Without traffic the diagrams stay as they are: the overlay is only the counts' way in."""
    store = regflow.Engine.from_url("memory://", mail="memory", hasher="fast").store
    empty = flow_report(store, REGISTRATION)
    assert "× " not in to_dot(REGISTRATION)
    assert "× " not in to_mermaid(REGISTRATION)
    dot = traffic_dot(REGISTRATION, empty)
    assert "0 started" in dot
    assert 'color="#c50f1f"' not in dot  # nothing dropped off where nothing happened


# ---- the command ----------------------------------------------------------------------------------


def regflow_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``regflow ARGS`` as a real process."""
    return subprocess.run([sys.executable, "-m", "regflow", *args], capture_output=True, text=True,
                          timeout=120, check=False, cwd=ROOT)


def test_command_draws_an_sqlite_files_traffic(tmp_path: Path) -> None:
    """``regflow diagram registration --traffic`` on an SQLite file the script filled: every
    customer, or one with ``--customer``; a day with no traffic counts nothing."""
    url = f"sqlite:///{tmp_path / 'traffic.db'}"
    engine, clock = new_engine(url)
    run_traffic(engine, clock, SCRIPT)
    engine.store.close()
    every, own = expected(SCRIPT, own=False), expected(SCRIPT, own=True)
    done = regflow_cli("diagram", "registration", "--traffic", "--db", url, "--format", "dot", "--lang", "en")
    assert done.returncode == 0, done.stderr
    assert f"Σ submit × {every['details_stays']}" in plain(statement(done.stdout, '"details" [label='))
    assert f"label=<cancel × {every['cancelled']}>" in statement(done.stdout, '"shared_cancel_cancelled" ->')
    done = regflow_cli("diagram", "registration", "--traffic", "--db", url, "--customer", SCRIPT.customer,
                       "--since", "2026-01-05", "--until", "2026-01-06")
    assert done.returncode == 0, done.stderr
    assert f"    [*] --> s_enter_email : {own['started']} started" in done.stdout.splitlines()
    assert "customer 281001" in done.stdout
    done = regflow_cli("diagram", "registration", "--traffic", "--db", url, "--since", "2026-01-06")
    assert "    [*] --> s_enter_email : 0 started" in done.stdout.splitlines()


@pytest.mark.parametrize(("args", "message_id"), [
    (["registration", "--since", "2026-01-05"], "usage"),
    (["--overview", "--traffic"], "usage"),
    (["registration", "--traffic", "--db", "memory://", "--since", "yesterday"], "report_range_invalid"),
    (["registration", "--traffic", "--db", "memory://", "--since", "2026-01-06", "--until", "2026-01-05"],
     "report_range_invalid"),
])
def test_command_refuses_bad_traffic_options(args: list[str], message_id: str) -> None:
    """A traffic option without ``--traffic``, ``--traffic`` with ``--overview`` (``usage``); a
    bad date or range, as ``regflow report`` says it: one line, exit 2."""
    done = regflow_cli("diagram", *args)
    assert done.returncode == 2, args
    assert done.stderr.startswith(f"regflow: {message_id}: "), (args, done.stderr)
    assert len(done.stderr.splitlines()) == 1


# ---- the admin page -------------------------------------------------------------------------------


class Page(HTMLParser):
    """A page's h1, visible text and the texts of its inline SVG."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.h1 = ""
        self.text: list[str] = []
        self.svg: list[str] = []
        self._open: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Open an element."""
        if tag not in ("meta", "input", "br", "link"):
            self._open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        """Close an element."""
        if tag in self._open:
            while self._open.pop() != tag:
                pass

    def handle_data(self, data: str) -> None:
        """Keep the text; the SVG's apart."""
        if "style" in self._open or "title" in self._open:
            return
        (self.svg if "svg" in self._open else self.text).append(data)
        if self._open and self._open[-1] == "h1" and not self.h1:
            self.h1 = data.strip()

    @property
    def words(self) -> str:
        """The text outside the SVG, whitespace collapsed."""
        return " ".join(" ".join(self.text).split())


def session_of(engine: regflow.Engine, login: Any, seat: str) -> str:
    """A sign-in of ``login`` on ``seat`` (OK at the link prompt); its session token."""
    snap = engine.start("sign_in", {"account": seat})
    snap = engine.send(snap, "submit", {"email": login.email, "password": PASSWORD})
    if snap.state == "link_prompt":
        snap = engine.send(snap, "submit")
    assert snap.session is not None, snap.screen.messages
    return snap.session


@pytest.fixture(params=["memory", "sqlite"])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[regflow.Engine, FlaskClient]]:
    """Both scripts played into one store (memory or an SQLite file); the app and a client."""
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'site.db'}"
    engine, clock = new_engine(url)
    run_traffic(engine, clock, SCRIPT)
    run_traffic(engine, clock, OTHER)
    yield engine, create_app(engine).test_client()
    engine.store.close()


def get(client: FlaskClient, path: str) -> Any:
    """A GET, its body read and closed."""
    with client.get(path) as reply:
        reply.get_data()
        return reply


def signed_in_as(engine: regflow.Engine, client: FlaskClient, role: str) -> None:
    """The client signed in as customer 281001's admin or as one of its members."""
    login = next(found for found in sorted(logins_of(engine, SCRIPT.customer), key=lambda x: x.created_at)
                 if found.role == role)
    seat = f"s{SCRIPT.customer}-01"  # the script's one seat, which the admin's sign-in links
    if role != "admin":  # a seat of its own for the member to link
        seat = f"s{SCRIPT.customer}-02"
        engine.contracts.add(SCRIPT.customer, PHONE, 1_000_000, [f"s{SCRIPT.customer}-01", seat])
    client.set_cookie("regflow_session", session_of(engine, login, seat))


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_the_admin_sees_their_customers_numbers_only(site: tuple[regflow.Engine, FlaskClient],
                                                     lang: str) -> None:
    """The list and the registration's page show customer 281001's script only, though the
    store holds 281002's (and the full customer's) traffic too; the diagram is drawn in."""
    engine, client = site
    want = expected(SCRIPT, own=True)
    signed_in_as(engine, client, "admin")
    listing = get(client, f"/admin/traffic?lang={lang}&since=2026-01-01&until=2026-01-31")
    assert listing.status_code == 200
    words = Page(listing.get_data(as_text=True)).words
    assert f"registration {want['started']} {want['ready']} {want['cancelled'] + want['expired']}" in words
    reply = get(client, f"/admin/traffic/registration?lang={lang}&since=2026-01-01&until=2026-01-31")
    assert reply.status_code == 200
    assert reply.headers["Content-Security-Policy"].startswith("default-src 'self'")
    page = Page(reply.get_data(as_text=True))
    row = re.search(r"enter_code (\d+) ", page.words)
    assert row is not None
    assert int(row.group(1)) == want["email_to_code"]
    svg = " ".join(" ".join(page.svg).split())
    if svg:  # Graphviz is here
        assert f"{want['started']} started" in svg
        assert f"cancel × {want['cancelled']}" in svg
        assert "customer 281001" in svg
    else:
        assert mermaid_text(f"cancel × {want['cancelled']}") in page.words
    assert "281002" not in reply.get_data(as_text=True)
    assert "@example.jp" not in reply.get_data(as_text=True)  # no address anywhere
    assert "@example.jp" not in listing.get_data(as_text=True)


def test_the_admin_page_links_to_traffic(site: tuple[regflow.Engine, FlaskClient]) -> None:
    """アカウント管理 links to the traffic page."""
    engine, client = site
    signed_in_as(engine, client, "admin")
    html = get(client, "/admin?lang=ja").get_data(as_text=True)
    assert '<a href="/admin/traffic">手続きの利用状況</a>' in html


def test_only_the_admin_of_the_customer(site: tuple[regflow.Engine, FlaskClient]) -> None:
    """401 signed out, 403 for a member, 403 for another customer's numbers; a bad period 400."""
    engine, client = site
    for path in ("/admin/traffic", "/admin/traffic/registration"):
        assert get(client, path).status_code == 401, path
    signed_in_as(engine, client, "member")
    for path in ("/admin/traffic", "/admin/traffic/registration"):
        assert get(client, path).status_code == 403, path
    signed_in_as(engine, client, "admin")
    assert get(client, f"/admin/traffic?customer={OTHER.customer}").status_code == 403
    assert get(client, f"/admin/traffic/registration?customer={OTHER.customer}").status_code == 403
    assert get(client, f"/admin/traffic?customer={SCRIPT.customer}").status_code == 200
    assert get(client, "/admin/traffic?since=2026-02-01&until=2026-01-01").status_code == 400
    # at most 92 days, both included (a quarter): 2026-01-01 .. 2026-04-02 is 92 days
    assert get(client, "/admin/traffic?since=2026-01-01&until=2026-04-02").status_code == 200
    assert get(client, "/admin/traffic?since=2026-01-01&until=2026-04-03").status_code == 400
    assert get(client, "/admin/traffic?since=yesterday").status_code == 400
    assert get(client, "/admin/traffic/no_such_flow").status_code == 404


@pytest.mark.parametrize("site", ["memory"], indirect=True)  # one store is enough for the browser
def test_the_page_in_chromium(site: tuple[regflow.Engine, FlaskClient]) -> None:
    """The registration's traffic page in chromium: the diagram is shown whole in the card; a
    screenshot for the docs (docs/screenshots/admin-traffic.png)."""
    engine, _ = site
    login = next(f for f in logins_of(engine, SCRIPT.customer) if f.role == "admin")
    token = session_of(engine, login, f"s{SCRIPT.customer}-01")
    with launched() as browser, serving(create_app(engine)) as url:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.add_cookies([{"name": "regflow_session", "value": token, "url": url}])
        tab = context.new_page()
        tab.goto(f"{url}/admin/traffic/registration?lang=en&since=2026-01-05&until=2026-01-05")
        box = tab.evaluate("""() => {
            const svg = document.querySelector('.diagram svg');
            const card = document.querySelector('main.card').getBoundingClientRect();
            if (!svg) return null;
            const r = svg.getBoundingClientRect();
            return {left: r.left, right: r.right, cardLeft: card.left, cardRight: card.right, width: r.width};
        }""")
        if box is not None:
            assert box["width"] > 300
            assert box["cardLeft"] <= box["left"]
            assert box["right"] <= box["cardRight"] + 0.5
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=str(SCREENSHOTS / "admin-traffic.png"), full_page=False)
