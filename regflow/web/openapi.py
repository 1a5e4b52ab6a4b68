"""The OpenAPI 3.1 document of the JSON API (SPEC 4.1), built from the engine's definitions.

Flow names, their events, contexts, states and fields come from the loaded definitions, so the
document describes the flows an engine really runs, the user's own included.
"""

from __future__ import annotations

from typing import Any

from regflow.catalog import LANGUAGES
from regflow.definition import FIELD_TYPES, FINAL_STATUSES, FlowDefinition, StateDef
from regflow.library import FlowLibrary

STATUSES = ("active", *FINAL_STATUSES)
IDEMPOTENCY_KEY_PATTERN = "^[!-~]{1,255}$"  # visible ASCII: what survives every HTTP stack
FLOW_TOKEN_HEADER = "Regflow-Flow-Token"  # the flow's secret, on every request after the start
EXAMPLE_CONTEXT = {"account": "abcd8-01", "target": "<a login id from GET /api/admin/logins>"}


def _ref(name: str, group: str = "schemas") -> dict[str, str]:
    return {"$ref": f"#/components/{group}/{name}"}


def _object(properties: dict[str, Any], required: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    """A closed object schema: every property listed is required unless ``required`` says less."""
    return {"type": "object", "properties": properties,
            "required": list(properties) if required is None else required,
            "additionalProperties": False, **extra}


STRING = {"type": "string"}
NULLABLE_STRING = {"type": ["string", "null"]}
INSTANT = {"type": "string", "format": "date-time", "description": "ISO 8601 UTC, with a `Z`."}

SCHEMAS: dict[str, Any] = {
    "Timer": _object({"event": STRING, "at": INSTANT}, description="A pending timer of the flow."),
    "Field": _object({
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
    "Action": _object({"event": STRING, "label": STRING, "primary": {"type": "boolean"}},
                      description="Something the person can do: POST its `event`."),
    "Message": _object({
        "id": {"type": "string", "description": "Stable id, e.g. `code_invalid`, `license_full`."},
        "level": {"enum": ["error", "warning", "info"]}, "text": STRING,
        "field": {"type": ["string", "null"], "description": "The field it is about, if any."},
        "params": {"type": "object"},
    }),
    "Screen": _object({
        "id": STRING, "title": STRING, "text": NULLABLE_STRING,
        "fields": {"type": "array", "items": _ref("Field")},
        "actions": {"type": "array", "items": _ref("Action")},
        "messages": {"type": "array", "items": _ref("Message")},
    }, description="What to show for the flow's current state."),
    "Snapshot": _object({
        "id": {"type": "string", "description": "The flow id (at least 128 random bits)."},
        "flow": _ref("FlowName"), "state": STRING, "status": {"enum": list(STATUSES)},
        "version": {"type": "integer", "description": "The definition version the flow runs on."},
        "expires_at": {**INSTANT, "type": ["string", "null"]},
        "timers": {"type": "array", "items": _ref("Timer")}, "screen": _ref("Screen"),
        "lang": {"enum": list(LANGUAGES)},
        "flow_token": {"type": "string", "description": (
            "The flow's secret (at least 128 bits), given to the client that started it: send it "
            f"as the `{FLOW_TOKEN_HEADER}` header on every later request on this flow. After a "
            "hand-over (`continue_with`) it is the new flow's token. Keep it like a password.")},
        "session": {"type": "string", "description": "A bearer token, once a sign-in completes."},
        "continue_with": _object({"flow": _ref("FlowName"), "id": STRING}, description=(
            "After a hand-over (e.g. `create_account`): the flow this snapshot belongs to.")),
    }, required=["id", "flow", "state", "status", "version", "expires_at", "timers", "screen", "lang"],
        description="Where a flow is and what to show."),
    "Login": _object({
        "id": STRING, "email": {"type": "string", "format": "email"}, "display_name": STRING,
        "account": {"type": ["string", "null"], "description": "The linked account (seat)."},
        "role": {"enum": ["admin", "member"]},
        "ready": {"type": "boolean", "description": "False while provisioning."},
        "ready_at": INSTANT, "two_factor": {"type": "boolean"},
        "sign_in_failures": {"type": "integer", "minimum": 0, "description": (
            "Wrong passwords for the login's address lately, from any client; more than 0: "
            "the admin may start `unlock_login` on it.")},
    }),
    "Error": _object({
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
        "snapshot": _ref("Snapshot"),
    }, required=["error", "detail"]),
    "StartRequest": _object({"context": {
        "type": "object", "additionalProperties": {"type": "string", "maxLength": 128},
        "description": "The flow's context, e.g. `{\"account\": \"abcd8-01\"}`."}}, required=[]),
    "EventRequest": _object({"data": {
        "type": "object", "additionalProperties": {"type": ["string", "boolean", "null"]},
        "description": "The screen's field values by name (a `boolean` field takes true/false)."}},
        required=[]),
}

PARAMETERS: dict[str, Any] = {
    "FlowName": {"name": "flow_name", "in": "path", "required": True, "schema": _ref("FlowName")},
    "FlowId": {"name": "flow_id", "in": "path", "required": True,
               "schema": {"type": "string", "maxLength": 64}},
    "Event": {"name": "event", "in": "path", "required": True, "schema": _ref("EventName")},
    "Lang": {"name": "lang", "in": "query", "required": False, "schema": {"enum": list(LANGUAGES)},
             "description": "The texts' language; wins over Accept-Language."},
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


def _answer(description: str, schema: dict[str, Any], **headers: Any) -> dict[str, Any]:
    return {"description": description, "headers": {**CONTENT_LANGUAGE, **headers},
            "content": {"application/json": {"schema": schema}}}


RESPONSES: dict[str, Any] = {
    "BadRequest": _answer("`bad_request`: the body is not a JSON object of the documented shape "
                          "(malformed, wrong types, unknown keys) or a header is malformed.",
                          _ref("Error")),
    "Unauthorized": _answer("`not_signed_in`: no live session (Bearer token missing, unknown, "
                            "expired or of a deleted login).", _ref("Error"),
                            **{"WWW-Authenticate": {"schema": STRING}}),
    "Forbidden": _answer("`forbidden`: the session is not the customer's admin, the target "
                         "login is another customer's, or the flow was started by another login.",
                         _ref("Error")),
    "NotFound": _answer("`flow_not_found`: no flow with that id, or the request lacks the flow's "
                        f"`{FLOW_TOKEN_HEADER}` (or carries another): one answer for both; or "
                        "no definition with that name.", _ref("Error")),
    "PayloadTooLarge": _answer("`body_too_large`: the body exceeds the app's MAX_CONTENT_LENGTH.",
                               _ref("Error")),
    "TooManyRequests": _answer(
        "`rate_limited`: a limit across flows was reached (code mails or wrong codes per e-mail "
        "address, flows started or events sent per client); `retry_after` and `Retry-After` say "
        "when one more is allowed.", _ref("Error"),
        **{"Retry-After": {"schema": {"type": "string", "pattern": "^[0-9]+$"},
                           "description": "Seconds."}}),
    "Unavailable": _answer("`transient_error`, `concurrent_update` or `store_error`: try again.",
                           _ref("Error"), **{"Retry-After": {"schema": STRING}}),
    "InternalError": _answer("`internal_error`: a fault of the service (it is logged).", _ref("Error")),
}


def _state_events(state: StateDef) -> list[str]:
    """The events a person may send in a state: its screen's actions first, in their order."""
    shown = [a.event for a in state.screen.actions] if state.screen is not None else []
    return list(dict.fromkeys(e for e in (*shown, *state.user_events) if e in state.user_events))


def _flow_events(definition: FlowDefinition) -> list[str]:
    """The events a person may send somewhere in the flow, state by state."""
    return list(dict.fromkeys(e for state in definition.states.values() for e in _state_events(state)))


def _flow_summary(definition: FlowDefinition) -> dict[str, Any]:
    return {
        "description": definition.description, "version": definition.version,
        "context": list(definition.context), "auth": definition.auth,
        "initial": definition.initial, "events": _flow_events(definition),
        "states": {name: {
            "final": state.final, "events": _state_events(state),
            "fields": list(state.screen.fields) if state.screen is not None else [],
            **({"status": state.status or "completed"} if state.final else {}),
        } for name, state in definition.states.items()},
    }


def _flow_table(flows: dict[str, dict[str, Any]]) -> str:
    rows = [f"| `{name}` | {', '.join(f'`{c}`' for c in flow['context']) or '—'} | {flow['auth']} | "
            f"{', '.join(f'`{e}`' for e in flow['events'])} |" for name, flow in flows.items()]
    return "\n".join(["| flow | context | auth | events |", "| --- | --- | --- | --- |", *rows])


def _operations(flows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    language = [_ref("Lang", "parameters"), _ref("AcceptLanguage", "parameters")]
    optional_bearer: list[dict[str, list[str]]] = [{}, {"bearerAuth": []}]
    common = {"400": _ref("BadRequest", "responses"), "401": _ref("Unauthorized", "responses"),
              "403": _ref("Forbidden", "responses"), "404": _ref("NotFound", "responses"),
              "413": _ref("PayloadTooLarge", "responses"), "429": _ref("TooManyRequests", "responses"),
              "500": _ref("InternalError", "responses"),
              "503": _ref("Unavailable", "responses")}
    examples = {name: {"value": {"context": {k: EXAMPLE_CONTEXT.get(k, "…") for k in flow["context"]}}}
                for name, flow in flows.items()}
    return {
        "/api/flows/{flow_name}": {"post": {
            "operationId": "startFlow", "summary": "Start a flow",
            "description": ("Starts a flow on the latest version of its definition. Flows with "
                            "auth `session` or `admin` need `Authorization: Bearer <token>`. The "
                            f"answer's `flow_token` goes as `{FLOW_TOKEN_HEADER}` on every later "
                            "request on the flow; no one else receives it.\n\n"
                            + _flow_table(flows)),
            "parameters": [_ref("FlowName", "parameters"), *language], "security": optional_bearer,
            "requestBody": {"required": False, "content": {"application/json": {
                "schema": _ref("StartRequest"), "examples": examples}}},
            "responses": {
                "201": _answer("The new flow, with its `flow_token`.", _ref("Snapshot"),
                               Location={"schema": STRING, "description": "`/api/flows/{id}`"}),
                "422": _answer("`context_invalid` (or e.g. `account_unknown`); `field` names the "
                               "context key.", _ref("Error")),
                **common},
        }},
        "/api/flows/{flow_id}": {"get": {
            "operationId": "getFlow", "summary": "The flow as it is now (timers due are applied first)",
            "description": ("200 for active flows and for flows that completed, were cancelled "
                            "or failed (their snapshot still matters, e.g. `continue_with`); "
                            "410 `flow_gone` with the snapshot for an expired flow."),
            "parameters": [_ref("FlowId", "parameters"), _ref("FlowToken", "parameters"), *language],
            "responses": {
                "200": _answer("The snapshot.", _ref("Snapshot")),
                "410": _answer("`flow_gone`: the flow expired; `status` and `snapshot` say so.",
                               _ref("Error")),
                "400": common["400"], "404": common["404"], "500": common["500"],
                "503": common["503"]},
        }},
        "/api/flows/{flow_id}/events/{event}": {"post": {
            "operationId": "sendEvent", "summary": "Send an event with the screen's data",
            "description": ("`submit` is every screen's primary action. A hand-over (e.g. "
                            "`create_account`) answers with the new flow's snapshot, whose "
                            "`continue_with` names it (also in `Content-Location`) and whose "
                            "`flow_token` is the new flow's."),
            "parameters": [_ref("FlowId", "parameters"), _ref("Event", "parameters"),
                           _ref("FlowToken", "parameters"), _ref("IdempotencyKey", "parameters"),
                           *language],
            "security": optional_bearer,
            "requestBody": {"required": False, "content": {"application/json": {
                "schema": _ref("EventRequest")}}},
            "responses": {
                "200": _answer("The snapshot after the event.", _ref("Snapshot"),
                               **{"Content-Location": {"schema": STRING}}),
                "409": _answer("`event_not_allowed`; `allowed` lists what the state takes.",
                               _ref("Error")),
                "410": _answer("`flow_gone`: the flow has ended (`status`) and takes no events.",
                               _ref("Error")),
                "422": _answer("A snapshot whose screen carries error messages (invalid fields, "
                               "wrong code...), or the Error `idempotency_key_reused`.",
                               {"oneOf": [_ref("Snapshot"), _ref("Error")]}),
                **common},
        }},
        "/api/admin/logins": {"get": {
            "operationId": "listLogins", "summary": "The logins of the admin's customer",
            "parameters": language, "security": [{"bearerAuth": []}],
            "responses": {
                "200": _answer("The logins.", {"type": "array", "items": _ref("Login")}),
                "400": common["400"], "401": common["401"], "403": common["403"],
                "500": common["500"], "503": common["503"]},
        }},
        "/api/openapi.json": {"get": {
            "operationId": "openapi", "summary": "This document",
            "responses": {"200": {"description": "OpenAPI 3.1", "content": {
                "application/json": {"schema": {"type": "object"}}}}},
        }},
    }


def openapi_document(library: FlowLibrary, *, title: str = "regflow JSON API",
                     version: str = "1") -> dict[str, Any]:
    """The OpenAPI 3.1 document of the JSON API for the flows of ``library``."""
    flows = {name: _flow_summary(library.latest(name)) for name in library.names()}
    events = sorted({e for flow in flows.values() for e in flow["events"]})
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": (
            "Account registration and administration flows (SPEC 4.1). Every answer that is not "
            "an error is a snapshot: the flow's state and the screen to show. Texts are Japanese "
            "unless `Accept-Language` or `?lang=` asks for English.")},
        "paths": _operations(flows),
        "components": {
            "schemas": {
                **SCHEMAS,
                "FlowName": {"type": "string", "enum": list(flows)},
                "EventName": {"type": "string", "enum": events},
            },
            "parameters": PARAMETERS,
            "responses": RESPONSES,
            "securitySchemes": {"bearerAuth": {
                "type": "http", "scheme": "bearer",
                "description": "The `session` of a completed sign-in snapshot."}},
        },
        "x-regflow-flows": flows,
    }
