"""The neutral screen model every front end renders: fields, actions, messages.

A snapshot is what the engine answers to ``start``, ``send`` and ``get``; ``to_dict()`` is its JSON
form. Nothing here knows HTML, terminals or HTTP.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs


def iso(instant: datetime | None) -> str | None:
    """ISO 8601 UTC with a ``Z``, as every time in a snapshot."""
    if instant is None:
        return None
    return instant.isoformat().replace("+00:00", "Z")


@attrs.frozen
class Message:
    """Something to tell the person: an error next to a field, or a notice for the screen."""

    id: str
    level: str  # "error" | "warning" | "info"
    text: str
    field: str | None = None
    params: dict[str, Any] = attrs.field(factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {"id": self.id, "level": self.level, "text": self.text,
                "field": self.field, "params": dict(self.params)}


@attrs.frozen
class Field:
    """An input the screen asks for."""

    name: str
    type: str  # text | email | password | code | tel | customer_id | boolean
    label: str
    required: bool
    value: Any = None
    constraints: dict[str, Any] = attrs.field(factory=dict)
    autocomplete: str | None = None
    kept: bool = False  # a password kept (as a hash) from a try that failed for a passing
    #   reason: leave it empty to use it again (then not required)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {"name": self.name, "type": self.type, "label": self.label,
                "required": self.required, "value": self.value,
                "constraints": dict(self.constraints), "autocomplete": self.autocomplete,
                "kept": self.kept}


@attrs.frozen
class Action:
    """Something the person can do; ``event`` is what a front end sends."""

    event: str
    label: str
    primary: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {"event": self.event, "label": self.label, "primary": self.primary}


@attrs.frozen
class Screen:
    """What to show for the flow's current state."""

    id: str
    title: str
    text: str | None = None
    fields: tuple[Field, ...] = ()
    actions: tuple[Action, ...] = ()
    messages: tuple[Message, ...] = ()

    @property
    def errors(self) -> tuple[Message, ...]:
        """The messages of level ``error``."""
        return tuple(m for m in self.messages if m.level == "error")

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {"id": self.id, "title": self.title, "text": self.text,
                "fields": [f.to_dict() for f in self.fields],
                "actions": [a.to_dict() for a in self.actions],
                "messages": [m.to_dict() for m in self.messages]}


@attrs.frozen
class Timer:
    """A pending timer of the flow."""

    event: str
    at: datetime

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {"event": self.event, "at": iso(self.at)}


@attrs.frozen
class Snapshot:
    """Where a flow is and what to show, as of the moment it was taken."""

    id: str
    flow: str
    state: str
    status: str
    version: int
    expires_at: datetime | None
    timers: tuple[Timer, ...]
    screen: Screen
    session: str | None = None
    continue_with: dict[str, str] | None = None
    lang: str = "ja"
    flow_token: str | None = None  # only in answers to the client holding it

    @property
    def ok(self) -> bool:
        """False when the screen carries an error (HTTP 422)."""
        return not self.screen.errors

    def to_dict(self) -> dict[str, Any]:
        """The JSON snapshot."""
        out: dict[str, Any] = {
            "id": self.id, "flow": self.flow, "state": self.state, "status": self.status,
            "version": self.version, "expires_at": iso(self.expires_at),
            "timers": [t.to_dict() for t in self.timers], "screen": self.screen.to_dict(),
            "lang": self.lang,
        }
        if self.flow_token is not None:
            out["flow_token"] = self.flow_token
        if self.session is not None:
            out["session"] = self.session
        if self.continue_with is not None:
            out["continue_with"] = dict(self.continue_with)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Snapshot:
        """Rebuild a snapshot from its JSON (used to replay idempotent answers)."""
        screen = data["screen"]
        return cls(
            id=data["id"], flow=data["flow"], state=data["state"], status=data["status"],
            version=data["version"],
            expires_at=_parse(data["expires_at"]),
            timers=tuple(Timer(t["event"], _parse_required(t["at"])) for t in data["timers"]),
            screen=Screen(
                id=screen["id"], title=screen["title"], text=screen.get("text"),
                fields=tuple(Field(**f) for f in screen["fields"]),
                actions=tuple(Action(**a) for a in screen["actions"]),
                messages=tuple(Message(**m) for m in screen["messages"]),
            ),
            session=data.get("session"), continue_with=data.get("continue_with"),
            lang=data.get("lang", "ja"), flow_token=data.get("flow_token"),
        )


def _parse(text: str | None) -> datetime | None:
    return None if text is None else _parse_required(text)


def _parse_required(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
