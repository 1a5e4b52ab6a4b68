"""Idempotency keys: what tells two requests apart, what is kept of the first answer, replays."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from regflow.ground.exceptions import IdempotencyConflict
from regflow.ground.records import IdempotencyRecord
from regflow.ground.screens import Snapshot
from regflow.runtime import sessions
from regflow.runtime.compiled import CompiledFlow
from regflow.runtime.context import FlowContext, derived_token


def request_hash(compiled: CompiledFlow, event: str, payload: Mapping[str, Any],
                 secret: bytes) -> str:
    """What tells one request from another under the same key. Secret fields (passwords,
    codes) enter only as an HMAC keyed by the engine's secret: a plain fast hash of a password
    kept in the database could be searched offline."""
    hidden = {name for name, field in compiled.definition.fields.items() if field.is_secret}
    shown = {k: (hmac.new(secret, str(v).encode(), hashlib.sha256).hexdigest() if k in hidden
                 else v) for k, v in payload.items()}
    body = json.dumps({"event": event, "data": shown}, sort_keys=True, ensure_ascii=False,
                      default=str)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def remembered(snapshot: Snapshot, ctx: FlowContext) -> dict[str, Any]:
    """The answer as kept for replays: no token of any kind, only a session's id."""
    response = snapshot.to_dict()
    response.pop("flow_token", None)
    if response.pop("session", None) is not None:
        response["session_id"] = ctx.opened_session
    return response


def replay(prior: IdempotencyRecord, request: str, flow_token: str | None) -> Snapshot:
    """The first answer again, or IdempotencyConflict. The tokens it carried are derived again
    from the flow token the caller presented (the store never had them): the session's, and a
    handed-over flow's. Without a flow token (a trusted embedding) they are left out."""
    if prior.request_hash != request:
        raise IdempotencyConflict(f"idempotency key {prior.key!r} was used with another payload")
    response = dict(prior.response)
    session_id = response.pop("session_id", None)
    if flow_token:
        answered = (flow_token if response["id"] == prior.flow_id
                    else derived_token(flow_token, str(response["id"])))
        if isinstance(session_id, str):  # opened by the flow answered (a hand-over's, maybe)
            response["session"] = sessions.token_of(answered, session_id)
        response["flow_token"] = answered
    return Snapshot.from_dict(response)
