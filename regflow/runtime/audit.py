"""The audit trail in the logs: every journaled step, once its transaction has committed.

Two loggers: ``regflow.journal`` (every step, INFO) and ``regflow.security`` (sign-ins,
lockouts, code failures, password resets, admin actions; WARNING when something was refused).
Records carry structured fields in ``record.regflow`` — flow, flow_ref, event, from, to, actor,
at, outcome — and never a submitted value: no password, code, token or address, and not even the
flow's id: ``flow_ref`` is a one-way digest of it (``flow_ref(id)`` finds a flow's lines), so
logs shipped elsewhere hold nothing that names a flow to its API.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from regflow.ground.records import JournalEntry

journal_log = logging.getLogger("regflow.journal")
security_log = logging.getLogger("regflow.security")

# Outcomes worth a security record wherever they happen.
REFUSALS = frozenset({
    "credentials_invalid", "locked_out", "code_invalid", "code_tries_exhausted", "code_void",
    "code_expired", "contract_mismatch", "contract_mismatch_limit", "linked_elsewhere",
    "account_taken", "account_not_yours", "cannot_act_on_self", "not_admin_any_more",
})

_pending: ContextVar[list[tuple[str, bool, JournalEntry]] | None] = ContextVar(
    "regflow_audit", default=None)


def flow_ref(flow_id: str) -> str:
    """The name of a flow in logs: a digest of its (128-bit random) id, which cannot be turned
    back into the id, while support staff who have the id find its lines."""
    return hashlib.sha256(b"regflow.flow\x00" + flow_id.encode("utf-8", "replace")).hexdigest()[:16]


@contextmanager
def collecting() -> Iterator[list[tuple[str, bool, JournalEntry]]]:
    """Collect the steps journaled inside the block (emit them once it has committed)."""
    items: list[tuple[str, bool, JournalEntry]] = []
    token = _pending.set(items)
    try:
        yield items
    finally:
        _pending.reset(token)


def record(flow: str, security: bool, entry: JournalEntry) -> None:
    """Note a journaled step of ``flow`` (``security``: the flow is security-relevant)."""
    items = _pending.get()
    if items is not None:
        items.append((flow, security, entry))


def emit(items: list[tuple[str, bool, JournalEntry]]) -> None:
    """Log committed steps."""
    for flow, security, entry in items:
        fields = {"flow": flow, "flow_ref": flow_ref(entry.flow_id), "event": entry.event,
                  "from": entry.from_state, "to": entry.to_state, "actor": entry.actor,
                  "at": entry.at.isoformat(), "outcome": entry.outcome}
        text = ("%(flow)s %(flow_ref)s %(event)s: %(from)s -> %(to)s by %(actor)s at %(at)s"
                " (%(outcome)s)")
        journal_log.info(text, fields, extra={"regflow": fields})
        refused = entry.outcome in REFUSALS
        if security or refused:
            level = logging.WARNING if refused else logging.INFO
            security_log.log(level, text, fields, extra={"regflow": fields})
