"""What a step of a flow did that anyone can see: the observable outcome approved paths keep
(see ``regflow.testing.approval``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from regflow.engine import Engine
from regflow.ground.screens import Snapshot, iso
from regflow.runtime import limits, sessions
from regflow.runtime.context import derived_token
from regflow.testing.engines import TEMPLATE_HEADER
from regflow.testing.runner import Observation, Player


class Observer:
    """Watches one flow's world on a testing engine, step by step."""

    def __init__(self, engine: Engine, player: Player) -> None:
        self.engine, self.player = engine, player
        self.before = self._world()
        self._mail_mark = len(self._mails())

    def outcome(self, observed: Observation, snapshot: Snapshot, do: Mapping[str, Any] | None
                ) -> dict[str, Any]:
        """The step's observable outcome (``do`` is the step as it ran; None for the start)."""
        after = self._world()
        out: dict[str, Any] = {}
        if do is not None:
            out["do"] = dict(do)
        out.update({
            "at": iso(self.engine.clock.now()), "state": snapshot.state, "status": snapshot.status,
            "messages": [{"id": m.id, "field": m.field, "params": _plain(m.params)}
                         for m in snapshot.screen.messages],
            "timers": [{"event": t.event, "at": iso(t.at)} for t in snapshot.timers],
            "expires_at": iso(snapshot.expires_at),
            "text": snapshot.screen.text,
            "fields": {f.name: f.value for f in snapshot.screen.fields if f.value is not None},
            "actions": [a.event for a in snapshot.screen.actions],
        })
        handed_over = snapshot.continue_with or (self.player.handed_over if do and "event" in do
                                                 else None)
        if handed_over is not None:  # the flow ended there, or the event's answer was another flow
            out["continue_with"] = self._handed_over(handed_over)
        if observed.step.fired is not None:
            out["fired"] = list(observed.step.fired)
        if snapshot.session is not None:
            out["session_opened"] = self._session_login(snapshot.session)
        mails = self._mails()[self._mail_mark:]
        self._mail_mark += len(mails)
        out["mails"] = [{"template": str(m.get(TEMPLATE_HEADER) or m["Subject"]), "to": str(m["To"])}
                        for m in mails]
        out["world"] = _diff(self.before, after)
        self.before = after
        return out

    def _handed_over(self, link: Mapping[str, str]) -> dict[str, Any]:
        """The flow handed over to, as its first screen shows it: its state, its messages and
        what it has filled in (an event handed on with the hand-over shows in them)."""
        token = self.player.flow_token
        new = self.engine.get(link["id"], token=derived_token(token, link["id"]) if token else None)
        return {"flow": new.flow, "state": new.state,
                "messages": [m.id for m in new.screen.messages],
                "fields": {f.name: f.value for f in new.screen.fields if f.value is not None}}

    def _mails(self) -> list[Any]:
        return list(getattr(self.engine.mailer, "messages", []))

    def _session_login(self, token: str) -> str:
        with self.engine.store.transaction() as tx:
            found = sessions.resolve(tx, token, self.engine.clock.now())
        return found[1].email if found is not None else "?"

    def _world(self) -> dict[str, Any]:
        now = self.engine.clock.now()
        flow_id = self.player.flow_id
        with self.engine.store.transaction() as tx:
            customers = tx.contracts.customers()
            logins, live, failures = {}, {}, {}
            since = now - timedelta(hours=1)  # the sign-in flow's lockout_window
            for customer in customers:
                for login in tx.logins.of_customer(customer.customer_id):
                    logins[login.email] = {
                        "customer": login.customer_id, "role": login.role, "account": login.account,
                        "ready_at": iso(login.ready_at), "two_factor": login.two_factor,
                        "display_name": login.display_name, "password": login.password_hash,
                    }
                    live[login.email] = sum(1 for x in tx.sessions.of_login(login.id) if x.expires_at > now)
                    subject = limits.address(self.engine.services.secret, login.email_key)
                    lock = tx.limits.last(limits.SIGN_IN_LOCKOUT, subject, limits.ANY_CLIENT)
                    failures[login.email] = {
                        "failures": tx.limits.count(limits.SIGN_IN_FAILURE, subject, None, since)[0],
                        "locked_until": iso(lock.until) if lock and lock.until and lock.until > now
                        else None}
            codes = {}
            code = tx.codes.latest(flow_id, self.player.flow) if flow_id else None
            if code is not None:  # the flow's current code (a code's purpose is its flow's name)
                codes["current"] = {"id": code.id, "expires_at": iso(code.expires_at),
                                    "wrong_tries": code.wrong_tries, "used": code.used_at is not None,
                                    "void": code.void}
        return {
            "logins": logins, "codes": codes, "sessions": live, "sign_in": failures,
            "licenses": {c.customer_id: f"{sum(1 for x in logins.values() if x['customer'] == c.customer_id)}"
                                        f"/{c.licenses}" for c in customers},
            "two_factor_required": {c.customer_id: c.require_two_factor for c in customers},
        }


def _plain(value: Any) -> Any:
    """JSON values as they are kept (tuples as lists)."""
    return json.loads(json.dumps(value, default=str))


def _diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """What changed between two world views, named by what a reviewer recognises."""
    out: dict[str, Any] = {}
    logins: dict[str, Any] = {}
    for email in sorted(set(before["logins"]) | set(after["logins"])):
        old, new = before["logins"].get(email), after["logins"].get(email)
        if old is None:
            created = {k: v for k, v in new.items() if k != "password"}
            logins[email] = {"created": created}
        elif new is None:
            logins[email] = "deleted"
        else:
            changed = {k: ("changed" if k == "password" else [old[k], new[k]])
                       for k in new if old[k] != new[k]}
            if changed:
                logins[email] = changed
    if logins:
        out["logins"] = logins
    codes: dict[str, Any] = {}
    for purpose in sorted(set(before["codes"]) | set(after["codes"])):  # "current"
        old, new = before["codes"].get(purpose), after["codes"].get(purpose)
        if new is None:
            continue
        if old is None or old["id"] != new["id"]:
            codes[purpose] = {"issued": {"expires_at": new["expires_at"]}}
            if new["void"] or new["used"] or new["wrong_tries"]:
                codes[purpose].update({k: new[k] for k in ("wrong_tries", "used", "void") if new[k]})
            continue
        changed = {k: new[k] for k in ("wrong_tries", "used", "void") if old[k] != new[k]}
        if changed:
            codes[purpose] = changed
    if codes:
        out["codes"] = codes
    sessions = {k: [before["sessions"].get(k, 0), v] for k, v in after["sessions"].items()
                if before["sessions"].get(k, 0) != v}  # live sessions per login (a new login: 0)
    if sessions:
        out["sessions"] = sessions
    quiet = {"failures": 0, "locked_until": None}  # wrong passwords in the last hour, the lockout
    sign_in = {k: {f: [before["sign_in"].get(k, quiet)[f], v[f]] for f in v
                   if before["sign_in"].get(k, quiet)[f] != v[f]}
               for k, v in after["sign_in"].items() if before["sign_in"].get(k, quiet) != v}
    if sign_in:
        out["sign_in"] = sign_in
    for key in ("licenses", "two_factor_required"):
        changed = {k: [before[key].get(k), v] for k, v in after[key].items() if before[key].get(k) != v}
        if changed:
            out[key] = changed
    return out
