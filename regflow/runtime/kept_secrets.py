"""Passwords kept as hashes when a step could not be done for a passing reason (FAQ 12).

When a step's retries of a transient failure (e.g. the Provisioner) are spent, the person is
told 「問題が発生しました。もう一度「次へ」をクリックしてください。」. The page shown again has its other
fields filled in, but a password is never sent back to a browser, nor kept in plain text. So the
step keeps what is already safe to keep: the password's hash (as a login stores it), for
``KEEP_FOR``, bound to the other fields as they were sent. Pressing 次へ again with the password
fields left empty uses the kept hash; typing a password again replaces it; changing another
field drops it (the password policy compared the password with those fields). Entering another
state, and the flow's end, delete it.

``flow.data["_kept"]``: ``{"until": ISO instant, "fields": {name: hash}, "others": HMAC}``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timedelta
from typing import Any

from regflow.definitions.model import ScreenDef
from regflow.ground.records import FlowRecord
from regflow.runtime.compiled import CompiledFlow
from regflow.runtime.context import FlowContext

KEEP_FOR = timedelta(minutes=10)
KEY = "_kept"


def password_fields(compiled: CompiledFlow, screen: ScreenDef) -> list[str]:
    """The screen's password fields (codes are secrets too, but one is never worth keeping)."""
    fields = compiled.definition.fields
    return [name for name in screen.fields if fields[name].type == "password"]


def keep(compiled: CompiledFlow, ctx: FlowContext, screen: ScreenDef, data: dict[str, Any],
         clean: dict[str, Any]) -> None:
    """Retries spent after ``data`` validated to ``clean``: keep its passwords as hashes (one
    hash per distinct value: a password and its confirmation cost one), or renew the time of
    those kept before when they were used again."""
    names = password_fields(compiled, screen)
    typed = {name: str(clean[name]) for name in names if name in clean}
    if typed:
        hashes: dict[str, str] = {}
        kept = {name: hashes.setdefault(value, ctx.services.hasher.hash(value))
                for name, value in typed.items()}
    elif ctx.kept:
        kept = dict(ctx.kept)
    else:
        return
    ctx.data[KEY] = {"until": _iso(ctx.now + KEEP_FOR), "fields": kept,
                     "others": _others(ctx, screen, names, data)}


def usable(compiled: CompiledFlow, ctx: FlowContext, screen: ScreenDef,
           data: dict[str, Any]) -> dict[str, str]:
    """The kept hashes this submit may use instead of typed passwords: none typed, the other
    fields as they were, in time. Kept hashes that can no longer be used are deleted."""
    found = ctx.data.get(KEY)
    if not isinstance(found, dict):
        return {}
    names = password_fields(compiled, screen)
    if _expired(found, ctx.now) or _others(ctx, screen, names, data) != found.get("others"):
        ctx.data.pop(KEY, None)
        return {}
    if any(_typed(data.get(name)) for name in names):
        return {}
    fields = found.get("fields")
    return {str(k): str(v) for k, v in fields.items()} if isinstance(fields, dict) else {}


def shown(flow: FlowRecord, now: datetime | None) -> set[str]:
    """The fields whose password is kept (for the screen: not required now)."""
    found = flow.data.get(KEY)
    if not isinstance(found, dict) or (now is not None and _expired(found, now)):
        return set()
    fields = found.get("fields")
    return set(fields) if isinstance(fields, dict) else set()


def _typed(value: Any) -> bool:
    return _sent(value) is not None


def _sent(value: Any) -> Any:
    """A field's value as sent, trimmed; None when left empty (an empty input or none)."""
    if isinstance(value, str):
        return value.strip() or None
    return value


def _others(ctx: FlowContext, screen: ScreenDef, names: list[str], data: dict[str, Any]) -> str:
    """A keyed digest of the screen's other fields as sent (trimmed)."""
    values = {name: _sent(data.get(name)) for name in screen.fields if name not in names}
    body = json.dumps(values, sort_keys=True, ensure_ascii=False, default=str).encode()
    return hmac.new(ctx.services.secret or b"regflow.kept", body, hashlib.sha256).hexdigest()


def _expired(found: dict[str, Any], now: datetime) -> bool:
    until = found.get("until")
    if not isinstance(until, str):
        return True
    return datetime.fromisoformat(until.replace("Z", "+00:00")) <= now


def _iso(instant: datetime) -> str:
    return instant.isoformat().replace("+00:00", "Z")
