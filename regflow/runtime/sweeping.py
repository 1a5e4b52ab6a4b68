"""Sweeping due flows: apply their timers and expiries, and set aside the flows that fail.

A flow that cannot be caught up — its definition version is not loaded in this process and
declares no migration (a rolling deploy, ``FlowLibrary.retire``), a guard or action of its
timer raises, its step keeps failing — does not stop the pass: it is *set aside*. Its place in
the due index moves later (``FlowTable.defer``), without loading or changing the flow, and the
pass goes on with the next flow (and the worker with the mail). Once the wait is over a sweep
tries the flow again; when it can be stepped, its save puts it back where its timers say.

The wait is one minute the first time, then as long as the flow has already waited past its due
instant, so that it doubles — at most an hour. It is read from the stored flow, so a process
started afresh for each pass (``regflow worker --once`` from cron) backs off as a long-running
one does, and a flow whose definition comes back is late by about twice as long as the
definition was missing (an hour more at most). When the stored flow cannot be read at all, the
wait doubles with each time this process set the flow aside.

Only a failing store ends a pass: when even moving the flow in the index fails, that error is
raised (the flow's own error is its ``__context__``).

Log lines (logger ``regflow.worker``) name flows by ``flow_ref`` (``regflow.runtime.audit``), never by
id, and say why with the error's message id and text, or, for an error that is not regflow's
(it may quote the flow's data), with its type and where it was raised only: a WARNING the first
time this process sets a flow aside, DEBUG when it does again, INFO once it has been stepped.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import PurePath

import attrs

from regflow.ground.exceptions import RegflowError, StoreError
from regflow.ground.ports import Clock, Store
from regflow.ground.records import FlowRecord
from regflow.runtime.audit import flow_ref

log = logging.getLogger("regflow.worker")

FIRST_WAIT = timedelta(minutes=1)
LAST_WAIT = timedelta(hours=1)
REMEMBERED = 10_000  # flows whose set-asides a process keeps count of (the oldest are forgotten)
REASON_CHARS = 300


@attrs.frozen
class SetAside:
    """A flow a sweep could not step and moved later in the due index."""

    flow_id: str
    flow_ref: str  # how logs name it (a digest of the id)
    definition: str  # "registration v2", or "unreadable" when the stored flow could not be read
    reason: str  # "<message id>: <text>", or "<error type> in <function> (<file>:<line>)"
    retry_at: datetime  # when a sweep takes it again
    times: int  # how often this process has set it aside (1: the first time)


@attrs.frozen
class SweepReport:
    """What one sweep did: how many flows changed, which were set aside."""

    changed: int
    set_aside: tuple[SetAside, ...] = ()


def describe(exc: BaseException, flow_id: str) -> str:
    """Why a flow was set aside, for logs and operators: a regflow error's message id and text
    (the flow's id replaced by its ref); for any other error — whose text may quote the flow's
    data or a driver's values — its type and the place it was raised, not its text."""
    if isinstance(exc, RegflowError) and not isinstance(exc, StoreError):
        text = " ".join(str(exc).replace(flow_id, flow_ref(flow_id)).split())
        return f"{exc.message_id}: {text}"[:REASON_CHARS] if text else exc.message_id
    kind = type(exc).__name__
    if isinstance(exc, RegflowError):
        kind = f"{exc.message_id}: {kind}"
    if exc.__cause__ is not None:
        kind += f" from {type(exc.__cause__).__name__}"
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        last = frames[-1]
        kind += f" in {last.name} ({PurePath(last.filename).name}:{last.lineno})"
    return kind[:REASON_CHARS]


def wait_before_retry(times: int, overdue: timedelta | None, *, first: timedelta = FIRST_WAIT,
                      last: timedelta = LAST_WAIT) -> timedelta:
    """How long a flow set aside waits: as long as it has been ``overdue`` (``first`` at
    least), or, when that is unknown, ``first`` doubling with each of its ``times``; ``last``
    at most."""
    if overdue is None:
        overdue = first * 2 ** min(max(times - 1, 0), 30)
    return min(last, max(first, overdue))


class Sweeper:
    """Sweeps an engine's due flows, remembering (in this process, thread-safe) which it set
    aside: how often, for the waits and the logs."""

    def __init__(self, *, first: timedelta = FIRST_WAIT, last: timedelta = LAST_WAIT) -> None:
        self.first = first
        self.last = last
        self._lock = threading.Lock()
        self._times: OrderedDict[str, int] = OrderedDict()

    def sweep(self, store: Store, clock: Clock, catch_up: Callable[[str], bool],
              limit: int) -> SweepReport:
        """Catch up to ``limit`` flows of ``store`` due by ``clock``, earliest first, with
        ``catch_up(flow_id)`` (which applies what fell due and says whether the flow changed);
        set aside those that fail."""
        changed = 0
        set_aside: list[SetAside] = []
        for flow_id in store.due_flows(clock.now(), limit):
            try:
                changed += catch_up(flow_id)
            except Exception as exc:
                entry = self._set_aside(store, clock, flow_id, exc)
                if entry is not None:
                    set_aside.append(entry)
            else:
                self._stepped(flow_id)
        return SweepReport(changed, tuple(set_aside))

    def _set_aside(self, store: Store, clock: Clock, flow_id: str,
                   exc: Exception) -> SetAside | None:
        """Move the flow later in the due index; None when it was not there to move (gone,
        ended, stepped or set aside by another worker meanwhile)."""
        now = clock.now()
        record = _read(store, flow_id)
        with self._lock:
            times = self._times.get(flow_id, 0) + 1
        overdue = None
        if record is not None and record.next_due_at is not None:
            overdue = now - record.next_due_at
        until = now + wait_before_retry(times, overdue, first=self.first, last=self.last)
        with store.transaction() as tx:  # a store that fails here ends the pass
            if not tx.flows.defer(flow_id, now, until):
                return None
        with self._lock:
            self._times[flow_id] = times
            self._times.move_to_end(flow_id)
            while len(self._times) > REMEMBERED:
                self._times.popitem(last=False)
        entry = SetAside(
            flow_id=flow_id, flow_ref=flow_ref(flow_id),
            definition="unreadable" if record is None else f"{record.flow} v{record.version}",
            reason=describe(exc, flow_id), retry_at=until, times=times)
        fields = {"flow_ref": entry.flow_ref, "definition": entry.definition,
                  "reason": entry.reason, "retry_at": until.isoformat(), "times": times}
        log.log(logging.WARNING if times == 1 else logging.DEBUG,
                "flow %(flow_ref)s (%(definition)s) set aside until %(retry_at)s: %(reason)s",
                fields, extra={"regflow": fields})
        return entry

    def _stepped(self, flow_id: str) -> None:
        """Forget a flow this process had set aside, now that it could be stepped."""
        with self._lock:
            times = self._times.pop(flow_id, None)
        if times is not None:
            fields = {"flow_ref": flow_ref(flow_id), "times": times}
            log.info("flow %(flow_ref)s stepped again after being set aside %(times)d time(s)",
                     fields, extra={"regflow": fields})


def _read(store: Store, flow_id: str) -> FlowRecord | None:
    """The stored flow, or None when it is gone or cannot be read."""
    try:
        with store.transaction() as tx:
            return tx.flows.load(flow_id)
    except Exception:  # an unreadable row (or a failing store: the deferral will say)
        return None
