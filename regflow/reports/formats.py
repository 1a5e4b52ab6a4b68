"""A report as text (a table labelled in the catalog's language) and as CSV (one row per
figure): what ``regflow report`` prints and the generated docs show."""

from __future__ import annotations

import csv
import io

from regflow.ground.catalog import Catalog
from regflow.reports.funnel import FlowReport

CSV_COLUMNS = ("kind", "state", "event", "target", "key", "value")


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:g} s"


def _pairs(values: dict[str, int]) -> str:
    return ", ".join(f"{key} {n}" for key, n in values.items()) or "-"


def as_text(report: FlowReport, lang: str) -> str:
    """The report as a readable table, labelled in ``lang``."""
    t = Catalog(lang).text
    every = t("report.all")
    shown = report.to_json()
    lines = [
        f"{report.flow}  {t('report.range')}: {shown['since'] or '…'} – {shown['until'] or '…'}  "
        f"{t('report.customer')}: {report.customer or every}",
        f"{t('report.started')}: {report.started}",
        f"{t('report.finals')}: " + (", ".join(
            f"{state} {n} ({report.conversion[state]:.1%})"
            for state, n in report.finals.items() if n) or "-"),
        "",
    ]
    header = (t("report.column.state"), t("report.column.entered"), t("report.column.left"),
              t("report.column.stayed"), t("report.column.ended"), t("report.column.median"),
              t("report.column.p90"))
    rows = [header] + [
        (s.state, str(s.entered), _pairs(s.left), _pairs(s.stayed), _pairs(s.ended),
         _seconds(s.median_s), _seconds(s.p90_s))
        for s in report.states
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines += ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
              for row in rows]
    lines += ["", f"{t('report.messages')}: {_pairs(report.messages)}"]
    return "\n".join(lines)


def as_csv(report: FlowReport) -> str:
    """One row per figure, columns ``CSV_COLUMNS`` (empty where a column does not apply)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerow(("started", "", "", "", "", report.started))
    for state, n in report.finals.items():
        writer.writerow(("final", state, "", "", "count", n))
        writer.writerow(("final", state, "", "", "conversion", f"{report.conversion[state]:.6f}"))
    for s in report.states:
        writer.writerow(("entered", s.state, "", "", "", s.entered))
        for event, n in s.left.items():
            writer.writerow(("left", s.state, event, "", "", n))
        for event, n in s.stayed.items():
            writer.writerow(("stayed", s.state, event, "", "", n))
        for status, n in s.ended.items():
            writer.writerow(("ended", s.state, "", "", status, n))
        for key, value in (("median_s", s.median_s), ("p90_s", s.p90_s)):
            if value is not None:
                writer.writerow(("time", s.state, "", "", key, f"{value:g}"))
    for edge in report.edges:
        writer.writerow(("edge", edge.source, edge.event, edge.target, "", edge.count))
    for message_id, n in report.messages.items():
        writer.writerow(("message", "", "", "", message_id, n))
    return out.getvalue()
