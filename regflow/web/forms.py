"""What the HTML pages need besides routes: templates, form tokens, field attributes, timing.

Nothing here reads Flask's request globals, so templates can be rendered (and tested) for any
snapshot without a running app.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import cache
from typing import Any

import attrs
import jinja2
from itsdangerous import BadSignature, URLSafeSerializer

from regflow.ground.catalog import Catalog
from regflow.ground.clock import shown_minute
from regflow.ground.screens import Action, Field, Message, Snapshot

SESSION_COOKIE = "regflow_session"  # the default; an app's own is ``sign_in_cookie()``
MAX_REFRESH = 60  # seconds: a waiting page looks again at least this often
FORM_SALT = "regflow.web.form"
INPUT_TYPES = {"email": "email", "password": "password", "tel": "tel"}
NUMERIC_TYPES = {"code", "customer_id"}
DEFAULT_AUTOCOMPLETE = {"email": "email", "password": "new-password", "tel": "tel",
                        "code": "one-time-code"}
LINK_ACTIONS_FROM = 3  # with this many actions or more, the secondary ones become text links


@cache
def environment() -> jinja2.Environment:
    """The pages' own template environment: autoescaped whatever the file suffix."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("regflow", "templates/web"), autoescape=True,
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )


def render(template: str, **context: Any) -> str:
    """A page from one of ``regflow/templates/web``."""
    return environment().get_template(template).render(**context)


class Texts:
    """The chrome texts of one language: ``t("admin.title")`` is ``web.admin.title``."""

    def __init__(self, lang: str) -> None:
        self.catalog = Catalog(lang)
        self.lang = self.catalog.lang

    def __call__(self, key: str, **params: Any) -> str:
        return self.catalog.text(f"web.{key}", **params)


@attrs.frozen
class Page:
    """What every page's layout shows around its content."""

    texts: Texts
    product: str
    lang_url: str  # the same page in the other language
    csrf: str
    root: str = ""  # the mount's prefix (``SCRIPT_NAME``): every link and form starts with it
    viewer: str | None = None  # "admin", "member" (signed in) or None
    flashes: tuple[tuple[str, str], ...] = ()  # (level, text)
    refresh: int | None = None

    @property
    def lang(self) -> str:
        """The page's language."""
        return self.texts.lang

    @property
    def other_lang(self) -> str:
        """The language the switch leads to."""
        return "en" if self.lang == "ja" else "ja"


@attrs.frozen
class FieldView:
    """A field as the template shows it: its input's attributes, hint and errors."""

    field: Field
    attributes: dict[str, str | None]
    errors: tuple[Message, ...]
    hint: str | None

    @property
    def id(self) -> str:
        """The input's id (what its ``<label for>`` names)."""
        return f"f-{self.field.name}"

    @property
    def checkbox(self) -> bool:
        """Booleans are checkboxes."""
        return self.field.type == "boolean"


@attrs.frozen
class Link:
    """A plain link under a screen."""

    href: str
    text: str


def widen_pattern(pattern: str) -> str:
    """A constraint pattern that also takes full-width digits (the engine folds them, NFKC)."""
    out: list[str] = []
    in_class = in_count = False
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if in_class and _digit(ch) and pattern[i + 1:i + 2] == "-" and _digit(pattern[i + 2:i + 3]):
            low, high = ch, pattern[i + 2]
            out.append(f"{low}-{high}{_wide(low)}-{_wide(high)}")
            i += 3
            continue
        if _digit(ch) and not in_count:
            out.append(ch + _wide(ch) if in_class else f"[{ch}{_wide(ch)}]")
        else:
            out.append(ch)
        in_class = (in_class or ch == "[") and ch != "]"
        in_count = (in_count or (ch == "{" and not in_class)) and ch != "}"
        i += 1
    return "".join(out)


def _digit(ch: str) -> bool:
    return len(ch) == 1 and "0" <= ch <= "9"


def _wide(ch: str) -> str:
    return chr(ord(ch) + 0xFEE0)


def field_view(field: Field, errors: Sequence[Message], texts: Texts) -> FieldView:
    """The input attributes of a field, from its type, constraints and autocomplete."""
    limits = field.constraints
    hint = None
    if field.kept:  # FAQ 12: press 次へ again without typing the password again
        hint = texts("screen.password_kept")
    elif "classes" in limits and "min_length" in limits:
        hint = texts("screen.password_hint", min=limits["min_length"], classes=limits["classes"])
    described = [f"f-{field.name}-hint"] if hint else []
    described += [f"f-{field.name}-error-{n}" for n in range(1, len(errors) + 1)]
    attributes: dict[str, str | None] = {
        "id": f"f-{field.name}", "name": field.name,
        "aria-describedby": " ".join(described) or None,
        "aria-invalid": "true" if errors else None,
        "required": "" if field.required and field.type != "boolean" else None,
    }
    if field.type == "boolean":
        attributes.update(type="checkbox", value="on", checked="" if field.value else None)
        return FieldView(field, attributes, tuple(errors), hint)
    exact = limits.get("length")
    pattern = limits.get("pattern")
    numeric = field.type in NUMERIC_TYPES
    attributes.update({
        "type": INPUT_TYPES.get(field.type, "text"),
        "inputmode": "numeric" if numeric else None,
        "autocomplete": ("one-time-code" if field.type == "code"
                         else field.autocomplete or DEFAULT_AUTOCOMPLETE.get(field.type)),
        "maxlength": _number(limits.get("max_length", exact)),
        "minlength": _number(limits.get("min_length", exact)),
        "pattern": widen_pattern(str(pattern)) if pattern else None,
        "spellcheck": "false" if field.type != "text" else None,
        "value": None if field.type == "password" or field.value is None else str(field.value),
    })
    return FieldView(field, attributes, tuple(errors), hint)


def _number(value: Any) -> str | None:
    return str(int(value)) if isinstance(value, int | float) and not isinstance(value, bool) else None


def split_messages(snapshot: Snapshot) -> tuple[list[Message], dict[str, list[Message]]]:
    """The screen's messages: those for the top, and the errors next to each field."""
    names = {f.name for f in snapshot.screen.fields}
    top: list[Message] = []
    by_field: dict[str, list[Message]] = {}
    for message in snapshot.screen.messages:
        if message.field in names and message.level == "error":
            by_field.setdefault(message.field, []).append(message)
        else:
            top.append(message)
    return top, by_field


def split_actions(actions: Sequence[Action]) -> tuple[list[Action], list[Action]]:
    """Buttons (the primary first) and the secondary actions shown as text links."""
    primary = [a for a in actions if a.primary]
    others = [a for a in actions if not a.primary]
    if len(actions) >= LINK_ACTIONS_FROM and primary:
        return primary, others
    return primary + others, []


def form_spec(snapshot: Snapshot, nonce: str) -> dict[str, Any]:
    """What a rendered form carries (signed): the flow, a nonce, its fields and primary events."""
    kinds = {f.name: ("bool" if f.type == "boolean" else "secret" if f.type == "password" else "text")
             for f in snapshot.screen.fields}
    return {"id": snapshot.id, "n": nonce, "f": kinds,
            "p": [a.event for a in snapshot.screen.actions if a.primary]}


def sign_form(secret: str | bytes, spec: Mapping[str, Any]) -> str:
    """The hidden ``form`` value of a spec."""
    return URLSafeSerializer(secret, salt=FORM_SALT).dumps(dict(spec))


def load_form(secret: str | bytes, token: str, flow_id: str) -> dict[str, Any] | None:
    """The spec of a posted form, or None when it was not made by us for this flow."""
    if not token or len(token) > 4096:
        return None
    try:
        spec = URLSafeSerializer(secret, salt=FORM_SALT).loads(token)
    except BadSignature:
        return None
    if not isinstance(spec, dict) or spec.get("id") != flow_id or not isinstance(spec.get("f"), dict):
        return None
    return spec


def form_data(spec: Mapping[str, Any], form: Mapping[str, str], event: str) -> dict[str, Any]:
    """The event's data from a posted form: the rendered fields; secrets only for primary events."""
    data: dict[str, Any] = {}
    for name, kind in spec["f"].items():
        if kind == "bool":
            data[name] = form.get(name) == "on"
        elif kind != "secret" or event in spec.get("p", ()):
            data[name] = form.get(name, "")
    return data


def idempotency_key(csrf: str, nonce: str) -> str:
    """The Idempotency-Key of a rendered form: its nonce, keyed by the browser's CSRF token."""
    mac = hmac.new(csrf.encode(), nonce.encode(), hashlib.sha256).hexdigest()
    return f"web-{mac[:40]}"


def same_token(expected: str | None, given: str | None) -> bool:
    """A constant-time comparison of CSRF tokens; False when either is missing."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def local_time(instant: datetime, zone: str) -> str:
    """``HH:MM`` of an instant in a time zone, rounded up (never earlier than the instant)."""
    return shown_minute(instant, zone)


def next_due(snapshot: Snapshot) -> datetime | None:
    """When something happens to the flow by itself: its next timer, else its expiry."""
    if snapshot.timers:
        return min(t.at for t in snapshot.timers)
    return snapshot.expires_at


def refresh_seconds(snapshot: Snapshot, now: datetime) -> int:
    """Seconds until a waiting page should look again: the next timer, at most a minute."""
    due = next_due(snapshot)
    if due is None:
        return MAX_REFRESH
    return max(1, min(MAX_REFRESH, math.ceil((due - now).total_seconds())))


def parse_instant(text: str) -> datetime:
    """An ISO 8601 instant as the engine writes them (``...Z``)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


_SAFE_ACCOUNT = re.compile(r"[^\x00-\x1f\x7f]{1,128}")


def clean_account(value: str | None) -> str | None:
    """An account as typed or launched with (trimmed), or None when empty or unusable."""
    text = (value or "").strip()
    return text if _SAFE_ACCOUNT.fullmatch(text) else None


def admin_row(number: int, login: Mapping[str, Any], texts: Texts, zone: str) -> dict[str, Any]:
    """One login of ``Engine.admin_logins`` as a row of the アカウント管理 table."""
    is_self = login["role"] == "admin"  # I4: the customer's only admin is the one looking
    ready_at = parse_instant(str(login["ready_at"]))
    return {
        "number": number, "id": login["id"], "name": login["display_name"], "email": login["email"],
        "account": login["account"] or texts("admin.not_linked"), "is_self": is_self,
        "role": texts("admin.role_admin" if is_self else "admin.role_member"),
        "status": texts("admin.ready") if login["ready"]
        else texts("admin.provisioning", time=local_time(ready_at, zone)),
        "two_factor": texts("admin.on" if login["two_factor"] else "admin.off"),
        "can_unlink": not is_self and bool(login["account"]), "can_delete": not is_self,
        "can_transfer": not is_self and bool(login["ready"]),
        # wrong passwords recorded for the login (a lockout, or on the way to one)
        "can_unlock": not is_self and int(login.get("sign_in_failures", 0) or 0) > 0,
    }
