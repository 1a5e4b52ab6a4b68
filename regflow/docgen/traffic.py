"""The generated page of "Watching your flows" (issue 17): the demo's scripted day
(``regflow.reports.traffic.DEMO_DAY``) played through an engine in memory on a manual clock, then its
report as ``regflow report`` prints it and its traffic diagram as ``regflow diagram --traffic``
draws it — written to ``<docs>/gen/watching-demo.md`` by ``regflow.docgen.site``.

Everything the page shows depends only on the script (the clock moves to the script's instants,
flow ids and codes never reach a report), so a fresh run writes the same bytes and
``tests/test_docs_current.py`` can compare it with the checked-in page.
"""

from __future__ import annotations

import re
from datetime import timedelta

from regflow.diagrams.traffic import traffic_svg
from regflow.docgen.markdown import MARKER
from regflow.docgen.markdown import table as _table
from regflow.engine import Engine
from regflow.ground.clock import ManualClock
from regflow.machines import builtin_library
from regflow.reports.formats import as_text
from regflow.reports.funnel import FlowReport, flow_report
from regflow.reports.traffic import DEMO_DAY, PATHS, run_traffic

__all__ = ["PAGE", "demo_report", "traffic_pages"]

PAGE = "watching-demo.md"
FLOW = "registration"
_COMMENT = re.compile(r"<!--.*?-->", re.S)


def demo_report() -> FlowReport:
    """The registration's report of DEMO_DAY (every customer), played in memory."""
    clock = ManualClock(DEMO_DAY.day)
    engine = Engine.from_url("memory://", mail="memory", hasher="fast", clock=clock)
    run_traffic(engine, clock, DEMO_DAY)
    return flow_report(engine.store, FLOW, since=DEMO_DAY.day, until=DEMO_DAY.day + timedelta(days=1))


def traffic_pages() -> dict[str, str]:
    """The generated page, by its path under ``<docs>/gen/``."""
    report = demo_report()
    svg = traffic_svg(builtin_library().latest(FLOW), report, lang="en").decode("utf-8")
    svg = "\n".join(line for line in _COMMENT.sub("", svg[svg.index("<svg"):]).splitlines() if line.strip())
    day = f"{DEMO_DAY.day:%Y-%m-%d}"
    people = [[f"`{path}`", str(DEMO_DAY.people.get(path, 0))] for path in PATHS]
    lines = [
        MARKER, "",
        "# The demo's day, in numbers", "",
        f"The day `regflow traffic` plays ({day}, `regflow.reports.traffic.DEMO_DAY`): "
        f"{DEMO_DAY.total} people start a registration between {DEMO_DAY.first_hour}:00 and "
        f"{DEMO_DAY.last_hour}:00 UTC and take these paths (each path is described in "
        "[Watching your flows](../watching.md#the-demos-day)):", "",
        *_table(["Path", "People"], people),
        "## The report", "",
        f"`regflow report {FLOW} --since {day} --until {DEMO_DAY.day + timedelta(days=1):%Y-%m-%d}` "
        "after `regflow traffic`, every customer:", "",
        "```text", as_text(report, "en"), "```", "",
        "## The diagram", "",
        f"`regflow diagram {FLOW} --traffic --since {day} --until "
        f"{DEMO_DAY.day + timedelta(days=1):%Y-%m-%d} --format svg --lang en`:", "",
        '<div class="regflow-diagram">', svg, "</div>", "",
    ]
    return {PAGE: "\n".join(lines)}
