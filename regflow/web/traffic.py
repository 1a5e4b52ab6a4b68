"""フローの利用状況 (issue 17): the traffic of the flows, for the signed-in admin of a customer,
in アカウント管理.

``GET /admin/traffic`` lists every flow with how many of the customer's flows started, ended
well and dropped off in the period; ``GET /admin/traffic/<flow>`` shows one flow's report (per
state: entered, moved on, stayed, ended or dropped off, time spent) and its diagram with the
traffic drawn on it (``regflow.diagrams.traffic``; the Mermaid text when Graphviz is missing).

The customer is always the admin's own: an admin cannot ask for another's (a ``customer``
parameter naming another answers 403), and an operator, who sees every customer, uses
``regflow diagram FLOW --traffic`` and ``regflow report``. 401 without a sign-in, 403 for a
member, as アカウント管理 itself. The period is ``?since=YYYY-MM-DD&until=YYYY-MM-DD`` (UTC
days, both included; by default the last ``DEFAULT_DAYS`` days up to today, at most
``MAX_DAYS`` days, since every view reads the journal rows of its period). A report holds
counts and durations only: nothing on these pages names a person.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, request
from markupsafe import Markup
from werkzeug.wrappers import Response

from regflow.definitions.model import FlowDefinition
from regflow.diagrams.render import GraphvizFailed
from regflow.diagrams.traffic import DROP_OFF, duration, traffic_mermaid, traffic_svg
from regflow.machines import BUILTIN_FLOWS
from regflow.reports.funnel import FlowReport, flow_report
from regflow.web.answers import _admin_login, _engine, _html, _lang, _message, _page, _security_headers
from regflow.web.forms import Texts, render

__all__ = ["DEFAULT_DAYS", "MAX_DAYS", "traffic"]

traffic = Blueprint("traffic", __name__)

DEFAULT_DAYS = 30
MAX_DAYS = 92  # a quarter at most: each page view reads the journal rows of its period
_COMMENT = re.compile(r"<!--.*?-->", re.S)


@traffic.get("/admin/traffic")
def overview() -> Response:
    """Every flow of the engine: started, completed and dropped off in the period."""
    texts = Texts(_lang())
    customer = _customer(texts)
    if isinstance(customer, Response):
        return customer
    period = _period(texts)
    if isinstance(period, Response):
        return period
    rows = [(name, _summary(_report(name, customer, period))) for name in _flows()]
    return _html(render("traffic.html.j2", page=_page(texts, viewer="admin"), texts=texts,
                        period=_shown(period), query=_query(period), rows=rows, report=None))


@traffic.get("/admin/traffic/<flow>")
def flow(flow: str) -> Response:
    """One flow's report and its traffic diagram."""
    texts = Texts(_lang())
    customer = _customer(texts)
    if isinstance(customer, Response):
        return customer
    if flow not in _flows():
        return _message(texts, 404, "error.not_found_title", "error.not_found_text", viewer="admin")
    period = _period(texts)
    if isinstance(period, Response):
        return period
    definition = _engine().flows.latest(flow)
    report = _report(flow, customer, period)
    svg, mermaid = _diagram(definition, report, texts.lang)
    return _html(render("traffic.html.j2", page=_page(texts, viewer="admin"), texts=texts,
                        period=_shown(period), query=_query(period), rows=[], report=report,
                        summary=_summary(report), states=_states(definition, report), svg=svg,
                        mermaid=mermaid, duration=duration))


traffic.after_request(_security_headers)  # the pages' headers (Content-Security-Policy included)


# ---- who, which flows, when ----------------------------------------------------------------------

def _customer(texts: Texts) -> str | Response:
    """The signed-in admin's customer; the refusal for anyone else (or for another customer)."""
    admin = _admin_login(texts)
    if isinstance(admin, Response):
        return admin
    asked = request.args.get("customer")
    if asked is not None and asked != admin.customer_id:  # an admin sees their own customer only
        return _message(texts, 403, "error.forbidden_title", "error.forbidden_text", viewer="admin")
    return admin.customer_id


def _flows() -> list[str]:
    """The engine's flows: the built-in ones in their order, then the others by name."""
    names = _engine().flows.names()
    return [n for n in BUILTIN_FLOWS if n in names] + [n for n in names if n not in BUILTIN_FLOWS]


def _period(texts: Texts) -> tuple[datetime, datetime] | Response:
    """``[since, until)`` from ``?since=`` and ``?until=`` (UTC days, both included); 400 for
    a bad date, a period that ends before it begins or one longer than ``MAX_DAYS`` days."""
    today = _engine().clock.now().astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    try:
        since = _day(request.args.get("since")) or today - timedelta(days=DEFAULT_DAYS - 1)
        until = (_day(request.args.get("until")) or today) + timedelta(days=1)
    except ValueError:
        return _message(texts, 400, "traffic.bad_period_title", "traffic.bad_period", viewer="admin")
    if since >= until or until - since > timedelta(days=MAX_DAYS):
        return _message(texts, 400, "traffic.bad_period_title", "traffic.bad_period", viewer="admin")
    return since, until


def _day(value: str | None) -> datetime | None:
    if not value:
        return None
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        raise ValueError(value)
    return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)


def _shown(period: tuple[datetime, datetime]) -> dict[str, str]:
    return {"since": f"{period[0]:%Y-%m-%d}", "until": f"{period[1] - timedelta(days=1):%Y-%m-%d}"}


def _query(period: tuple[datetime, datetime]) -> str:
    shown = _shown(period)
    return f"?since={shown['since']}&until={shown['until']}"


# ---- the report ----------------------------------------------------------------------------------

def _report(name: str, customer: str, period: tuple[datetime, datetime]) -> FlowReport:
    return flow_report(_engine().store, _engine().flows.latest(name), since=period[0], until=period[1],
                       customer=customer)


def _summary(report: FlowReport) -> dict[str, int]:
    """Started, completed (reached a final state that is a success) and dropped off."""
    dropped = sum(s.ended.get(status, 0) for s in report.states for status in DROP_OFF
                  if not _final(report, s.state))
    completed = sum(s.ended.get("completed", 0) for s in report.states if _final(report, s.state))
    return {"started": report.started, "completed": completed, "dropped": dropped}


def _final(report: FlowReport, state: str) -> bool:
    return state in report.finals


def _states(definition: FlowDefinition, report: FlowReport) -> list[dict[str, Any]]:
    """A row per state: its name, whether final, and its counts and times."""
    return [{"name": s.state, "final": definition.states[s.state].final, "entered": s.entered,
             "left": s.left, "stayed": s.stayed, "ended": s.ended, "median": s.median_s, "p90": s.p90_s}
            for s in report.states if s.state in definition.states]


def _diagram(definition: FlowDefinition, report: FlowReport, lang: str) -> tuple[Markup | None, str]:
    """The traffic diagram as inline SVG (None without Graphviz) and as Mermaid text."""
    mermaid = traffic_mermaid(definition, report, lang=lang)
    try:
        svg = traffic_svg(definition, report, lang=lang).decode("utf-8")
    except GraphvizFailed:
        return None, mermaid
    svg = _COMMENT.sub("", svg[svg.index("<svg"):])
    return Markup(svg), mermaid  # Graphviz' own output: every text in it is escaped

