"""The OpenAPI 3.1 document of the JSON API, built from the engine's definitions.

Flow names, their events, contexts, states and fields come from the loaded definitions, so the
document describes the flows an engine really runs, the user's own included. The parts that do
not depend on the flows are in ``regflow.web.openapi_parts``.
"""

from __future__ import annotations

from typing import Any

from regflow.definitions.library import FlowLibrary
from regflow.definitions.model import FlowDefinition, StateDef
from regflow.web.openapi_parts import (
    CONTEXT_VALUE,
    EXAMPLE_CONTEXT,
    FLOW_TOKEN_HEADER,
    IDEMPOTENCY_KEY_PATTERN,
    PARAMETERS,
    RESPONSES,
    SCHEMAS,
    STRING,
    answer,
    closed_object,
    ref,
)

__all__ = ["FLOW_TOKEN_HEADER", "IDEMPOTENCY_KEY_PATTERN", "openapi_document"]


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


def _start_request(flows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``{"flow", "context"}``: one shape per flow, its context exactly the flow's keys."""
    def shape(name: str, keys: list[str]) -> dict[str, Any]:
        context = closed_object(dict.fromkeys(keys, CONTEXT_VALUE),
                          description=f"The context of `{name}`" + ("." if keys else ": none."))
        return closed_object({"flow": {"const": name}, "context": context},
                       required=["flow", "context"] if keys else ["flow"])
    return {"oneOf": [shape(name, flow["context"]) for name, flow in flows.items()],
            "description": "The flow to start and its context (see `x-regflow-flows`)."}


def _links(flows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """From a snapshot to the flow (GET) and to each event, with the flow's token: how a client
    (or a stateful fuzzer) walks a flow past its start."""
    flow = {"flow_id": "$response.body#/id",
            f"header.{FLOW_TOKEN_HEADER}": "$response.body#/flow_token"}
    events = sorted({e for summary in flows.values() for e in summary["events"]})
    return {"getFlow": {"operationId": "getFlow", "parameters": flow,
                        "description": "The flow as it is now."},
            **{f"event_{event}": {"operationId": "sendEvent", "parameters": {**flow, "event": event},
                                  "description": f"Send `{event}` (when the state takes it)."}
               for event in events}}


def _operations(flows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    language = [ref("Lang", "parameters"), ref("AcceptLanguage", "parameters")]
    optional_bearer: list[dict[str, list[str]]] = [{}, {"bearerAuth": []}]
    common = {"400": ref("BadRequest", "responses"), "401": ref("Unauthorized", "responses"),
              "403": ref("Forbidden", "responses"), "404": ref("NotFound", "responses"),
              "413": ref("PayloadTooLarge", "responses"), "429": ref("TooManyRequests", "responses"),
              "500": ref("InternalError", "responses"),
              "503": ref("Unavailable", "responses")}
    examples = {name: {"value": {"flow": name, "context": {
        k: EXAMPLE_CONTEXT.get(k, "…") for k in flow["context"]}}} for name, flow in flows.items()}
    links = _links(flows)
    started = {
        "201": {**answer("The new flow, with its `flow_token`.", ref("Snapshot"),
                          Location={"schema": STRING, "description": "`/api/flows/{id}`"}),
                "links": links},
        "422": answer("`context_invalid` (or e.g. `account_unknown`); `field` names the "
                       "context key.", ref("Error")),
        **common}
    return {
        "/api/flows": {"post": {
            "operationId": "startFlow", "summary": "Start a flow",
            "description": ("Starts the flow named `flow` on the latest version of its definition. "
                            "Flows with auth `session` need `Authorization: Bearer <token>`, "
                            "flows with auth `admin` the token of the customer's admin "
                            "(`bearerAuth`). The answer's `flow_token` goes as "
                            f"`{FLOW_TOKEN_HEADER}` on every later request on the flow; no one "
                            "else receives it. Its links lead to the flow and to its events.\n\n"
                            + _flow_table(flows)),
            "parameters": language, "security": optional_bearer,
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": ref("StartRequest"), "examples": examples}}},
            "responses": started,
        }},
        "/api/flows/{flow_id}": {"get": {
            "operationId": "getFlow", "summary": "The flow as it is now (timers due are applied first)",
            "description": ("200 for active flows and for flows that completed, were cancelled "
                            "or failed (their snapshot still matters, e.g. `continue_with`); "
                            "410 `flow_gone` with the snapshot for an expired flow."),
            "parameters": [ref("FlowId", "parameters"), ref("FlowToken", "parameters"), *language],
            "responses": {
                "200": {**answer("The snapshot.", ref("Snapshot")), "links": links},
                "410": answer("`flow_gone`: the flow expired; `status` and `snapshot` say so.",
                               ref("Error")),
                "400": common["400"], "404": common["404"], "500": common["500"],
                "503": common["503"]},
        }, "post": {
            "operationId": "startFlowByName", "deprecated": True,
            "summary": "Start a flow named in the path (deprecated: use `POST /api/flows`)",
            "description": ("The older form of `startFlow`: here the path segment is the flow's "
                            "*name* (the template is the one of `getFlow`). It answers as "
                            "`startFlow` does, with `Deprecation` and a `Link` to its successor."),
            "parameters": [{**PARAMETERS["FlowId"], "schema": ref("FlowName"),
                            "description": "The flow's name."}, *language],
            "security": optional_bearer,
            "requestBody": {"required": False, "content": {"application/json": {
                "schema": ref("StartByNameRequest")}}},
            "responses": {**started, "201": {**started["201"], "headers": {
                **started["201"]["headers"],
                "Deprecation": {"schema": STRING, "description": "RFC 9745: since when."},
                "Link": {"schema": STRING, "description": "`</api/flows>; rel=\"successor-version\"`"}}}},
        }},
        "/api/flows/{flow_id}/events/{event}": {"post": {
            "operationId": "sendEvent", "summary": "Send an event with the screen's data",
            "description": ("`submit` is every screen's primary action. A hand-over (e.g. "
                            "`create_account`) answers with the new flow's snapshot, whose "
                            "`continue_with` names it (also in `Content-Location`) and whose "
                            "`flow_token` is the new flow's."),
            "parameters": [ref("FlowId", "parameters"), ref("Event", "parameters"),
                           ref("FlowToken", "parameters"), ref("IdempotencyKey", "parameters"),
                           *language],
            "security": optional_bearer,
            "requestBody": {"required": False, "content": {"application/json": {
                "schema": ref("EventRequest")}}},
            "responses": {
                "200": {**answer("The snapshot after the event.", ref("Snapshot"),
                                  **{"Content-Location": {"schema": STRING}}), "links": links},
                "409": answer("`event_not_allowed`; `allowed` lists what the state takes.",
                               ref("Error")),
                "410": answer("`flow_gone`: the flow has ended (`status`) and takes no events.",
                               ref("Error")),
                "422": answer("A snapshot whose screen carries error messages (invalid fields, "
                               "wrong code...), or the Error `idempotency_key_reused`.",
                               {"oneOf": [ref("Snapshot"), ref("Error")]}),
                **common},
        }},
        "/api/admin/logins": {"get": {
            "operationId": "listLogins", "summary": "The logins of the admin's customer",
            "parameters": language, "security": [{"bearerAuth": []}],
            "responses": {
                "200": answer("The logins.", {"type": "array", "items": ref("Login")}),
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
            "Account registration and administration flows. Every answer that is not "
            "an error is a snapshot: the flow's state and the screen to show. Texts are Japanese "
            "unless `Accept-Language` or `?lang=` asks for English.")},
        "paths": _operations(flows),
        "components": {
            "schemas": {
                **SCHEMAS,
                "FlowName": {"type": "string", "enum": list(flows)},
                "StartRequest": _start_request(flows),
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
