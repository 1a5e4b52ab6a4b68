"""The fixed parts of the OpenAPI document (``regflow.web.openapi``): the schemas, parameters
and answers that do not depend on which flows an engine runs, and the helpers that build them.
"""

from __future__ import annotations

from typing import Any

from regflow.definitions.model import FIELD_TYPES, FINAL_STATUSES
from regflow.ground.catalog import LANGUAGES

STATUSES = ("active", *FINAL_STATUSES)
IDEMPOTENCY_KEY_PATTERN = "^[!-~]{1,255}$"  # visible ASCII: what survives every HTTP stack
FLOW_TOKEN_HEADER = "Regflow-Flow-Token"  # the flow's secret, on every request after the start
EXAMPLE_CONTEXT = {"account": "abcd8-01", "target": "<a login id from GET /api/admin/logins>"}


def ref(name: str, group: str = "schemas") -> dict[str, str]:
    """A ``$ref`` to a component."""
    return {"$ref": f"#/components/{group}/{name}"}


def closed_object(properties: dict[str, Any], required: list[str] | None = None,
                  **extra: Any) -> dict[str, Any]:
    """A closed object schema: every property listed is required unless ``required`` says less."""
    return {"type": "object", "properties": properties,
            "required": list(properties) if required is None else required,
            "additionalProperties": False, **extra}


STRING = {"type": "string"}
NULLABLE_STRING = {"type": ["string", "null"]}
INSTANT = {"type": "string", "format": "date-time", "description": "ISO 8601 UTC, with a `Z`."}

NO_NUL = "^[^\\u0000]*$"  # the API refuses U+0000 (400): no store keeps it
# A context value: 1 to 128 characters, not only white space, without U+0000.
CONTEXT_VALUE = {"type": "string", "minLength": 1, "maxLength": 128,
                 "pattern": "^[^\\u0000]*[^\\u0000\\s][^\\u0000]*$"}
CONTEXT = {"type": "object", "additionalProperties": CONTEXT_VALUE, "propertyNames": {"pattern": NO_NUL},
           "description": "The flow's context, e.g. `{\"account\": \"abcd8-01\"}`."}

SCHEMAS: dict[str, Any] = {
    "Timer": closed_object({"event": STRING, "at": INSTANT}, description="A pending timer of the flow."),
    "Field": closed_object({
        "name": STRING, "type": {"enum": list(FIELD_TYPES)}, "label": STRING,
        "required": {"type": "boolean"},
        "value": {"type": ["string", "boolean", "null"],
                  "description": "What was typed before (never for passwords and codes)."},
        "constraints": {"type": "object"}, "autocomplete": NULLABLE_STRING,
        "kept": {"type": "boolean", "description": (
            "A password kept (as a hash, never in plain text, for 10 minutes) after a step "
            "answered `transient_error`: send the event again with the other fields as they "
            "were and this one left out to use it (`required` is then false); send it typed to "
            "replace it. Changing another field drops it.")},
    }, description="An input the screen asks for; send it in `data` under `name`."),
    "Action": closed_object({"event": STRING, "label": STRING, "primary": {"type": "boolean"}},
                      description="Something the person can do: POST its `event`."),
    "Message": closed_object({
        "id": {"type": "string", "description": "Stable id, e.g. `code_invalid`, `license_full`."},
        "level": {"enum": ["error", "warning", "info"]}, "text": STRING,
        "field": {"type": ["string", "null"], "description": "The field it is about, if any."},
        "params": {"type": "object"},
    }),
    "Screen": closed_object({
        "id": STRING, "title": STRING, "text": NULLABLE_STRING,
        "fields": {"type": "array", "items": ref("Field")},
        "actions": {"type": "array", "items": ref("Action")},
        "messages": {"type": "array", "items": ref("Message")},
    }, description="What to show for the flow's current state."),
    "Snapshot": closed_object({
        "id": {"type": "string", "description": "The flow id (at least 128 random bits)."},
        "flow": ref("FlowName"), "state": STRING, "status": {"enum": list(STATUSES)},
        "version": {"type": "integer", "description": "The definition version the flow runs on."},
        "expires_at": {**INSTANT, "type": ["string", "null"]},
        "timers": {"type": "array", "items": ref("Timer")}, "screen": ref("Screen"),
        "lang": {"enum": list(LANGUAGES)},
        "flow_token": {"type": "string", "description": (
            "The flow's secret (at least 128 bits), given to the client that started it: send it "
            f"as the `{FLOW_TOKEN_HEADER}` header on every later request on this flow. After a "
            "hand-over (`continue_with`) it is the new flow's token. Keep it like a password.")},
        "session": {"type": "string", "description": "A bearer token, once a sign-in completes."},
        "continue_with": closed_object({"flow": ref("FlowName"), "id": STRING}, description=(
            "After a hand-over (e.g. `create_account`): the flow this snapshot belongs to.")),
    }, required=["id", "flow", "state", "status", "version", "expires_at", "timers", "screen", "lang"],
        description="Where a flow is and what to show."),
    "Login": closed_object({
        "id": STRING, "email": {"type": "string", "format": "email"}, "display_name": STRING,
        "account": {"type": ["string", "null"], "description": "The linked account (seat)."},
        "role": {"enum": ["admin", "member"]},
        "ready": {"type": "boolean", "description": "False while provisioning."},
        "ready_at": INSTANT, "two_factor": {"type": "boolean"},
        "sign_in_failures": {"type": "integer", "minimum": 0, "description": (
            "Wrong passwords for the login's address lately, from any client; more than 0: "
            "the admin may start `unlock_login` on it.")},
    }),
    "Error": closed_object({
        "error": {"type": "string", "description": (
            "Stable id: `bad_request`, `not_found`, `method_not_allowed`, `body_too_large`, "
            "`flow_not_found`, `flow_gone`, `event_not_allowed`, `idempotency_key_reused`, "
            "`context_invalid` (or the context's own id such as `account_unknown`), "
            "`not_signed_in`, `forbidden`, `rate_limited`, `concurrent_update`, "
            "`transient_error`, `store_error`, `internal_error`.")},
        "detail": {"type": "string", "description": "For developers, in English."},
        "text": {"type": "string", "description": "For people, in the response's language."},
        "field": {"type": ["string", "null"], "description": "The context key at fault (422)."},
        "allowed": {"type": "array", "items": STRING, "description": "Events the state takes (409)."},
        "state": {"type": "string", "description": "The flow's state (409)."},
        "event": {"type": "string", "description": "The event refused (409)."},
        "status": {"enum": list(FINAL_STATUSES), "description": "How the flow ended (410)."},
        "retry_after": {"type": "integer", "minimum": 1, "description": (
            "Seconds until the limit allows one more (429; also the `Retry-After` header).")},
        "snapshot": ref("Snapshot"),
    }, required=["error", "detail"]),
    "StartByNameRequest": closed_object({"context": CONTEXT}, required=[]),
    "EventRequest": closed_object({"data": {
        "type": "object", "propertyNames": {"pattern": NO_NUL},
        "additionalProperties": {"type": ["string", "boolean", "null"], "pattern": NO_NUL},
        "description": "The screen's field values by name (a `boolean` field takes true/false)."}},
        required=[]),
}

PARAMETERS: dict[str, Any] = {
    "FlowId": {"name": "flow_id", "in": "path", "required": True,
               "schema": {"type": "string", "maxLength": 64}},
    "Event": {"name": "event", "in": "path", "required": True, "schema": ref("EventName")},
    "Lang": {"name": "lang", "in": "query", "required": False,
             "schema": {"type": "string", "examples": list(LANGUAGES)},
             "description": "The texts' language, `ja` or `en` (others: `ja`); wins over Accept-Language."},
    "AcceptLanguage": {"name": "Accept-Language", "in": "header", "required": False,
                       "schema": STRING, "description": (
                           "`ja` or `en` (other languages: `ja`). Without it and without `?lang=`, "
                           "a flow answers in the language it was started in (new flows: `ja`).")},
    "FlowToken": {
        "name": FLOW_TOKEN_HEADER, "in": "header", "required": True,
        "schema": {"type": "string", "maxLength": 256},
        "description": ("The `flow_token` of the answer that started the flow (or handed over "
                        "to it). Without it, or with another, the answer is 404 `flow_not_found`, "
                        "exactly as for an id that does not exist."),
    },
    "IdempotencyKey": {
        "name": "Idempotency-Key", "in": "header", "required": False,
        "schema": {"type": "string", "pattern": IDEMPOTENCY_KEY_PATTERN},
        "description": ("The same key with the same payload replays the first answer; with "
                        "another payload it is refused (422 `idempotency_key_reused`)."),
    },
}

CONTENT_LANGUAGE = {"Content-Language": {"schema": {"enum": list(LANGUAGES)},
                                         "description": "The language of the texts."}}


def answer(description: str, schema: dict[str, Any], **headers: Any) -> dict[str, Any]:
    """A JSON answer with ``Content-Language`` and ``headers``."""
    return {"description": description, "headers": {**CONTENT_LANGUAGE, **headers},
            "content": {"application/json": {"schema": schema}}}


RESPONSES: dict[str, Any] = {
    "BadRequest": answer("`bad_request`: the body is not a JSON object of the documented shape "
                          "(malformed, wrong types, unknown keys) or a header is malformed.",
                          ref("Error")),
    "Unauthorized": answer("`not_signed_in`: no live session (Bearer token missing, unknown, "
                            "expired or of a deleted login).", ref("Error"),
                            **{"WWW-Authenticate": {"schema": STRING}}),
    "Forbidden": answer("`forbidden`: the session is not the customer's admin, the target "
                         "login is another customer's, or the flow was started by another login.",
                         ref("Error")),
    "NotFound": answer("`flow_not_found`: no flow with that id, or the request lacks the flow's "
                        f"`{FLOW_TOKEN_HEADER}` (or carries another): one answer for both; or "
                        "no definition with that name.", ref("Error")),
    "PayloadTooLarge": answer("`body_too_large`: the body exceeds the app's MAX_CONTENT_LENGTH.",
                               ref("Error")),
    "TooManyRequests": answer(
        "`rate_limited`: a limit across flows was reached (code mails or wrong codes per e-mail "
        "address, flows started or events sent per client); `retry_after` and `Retry-After` say "
        "when one more is allowed.", ref("Error"),
        **{"Retry-After": {"schema": {"type": "string", "pattern": "^[0-9]+$"},
                           "description": "Seconds."}}),
    "Unavailable": answer("`transient_error`, `concurrent_update` or `store_error`: try again.",
                           ref("Error"), **{"Retry-After": {"schema": STRING}}),
    "InternalError": answer("`internal_error`: a fault of the service (it is logged).", ref("Error")),
}
