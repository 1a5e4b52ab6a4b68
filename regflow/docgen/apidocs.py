"""The generated JSON API reference page (from the OpenAPI document) and the changelog page."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from regflow.docgen.markdown import MARKER
from regflow.docgen.markdown import code as _code
from regflow.docgen.markdown import codes as _codes
from regflow.docgen.markdown import table as _table


def _resolve(document: Mapping[str, Any], item: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = item.get("$ref")
    if not isinstance(ref, str):
        return item
    found: Any = document
    for part in ref.removeprefix("#/").split("/"):
        found = found[part]
    return _resolve(document, found) if isinstance(found, Mapping) else item


def _schema(schema: Mapping[str, Any]) -> str:
    """A schema in a few words: ``Snapshot``, ``string or null``, ``array of Field``, ``one of a, b``."""
    ref = schema.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    if "oneOf" in schema:
        return " or ".join(_schema(s) for s in schema["oneOf"])
    if "enum" in schema:
        return "one of " + _codes(schema["enum"])
    kind = schema.get("type", "any")
    text = " or ".join(kind) if isinstance(kind, list) else str(kind)
    if text == "array" and isinstance(schema.get("items"), Mapping):
        text = f"array of {_schema(schema['items'])}"
    if isinstance(schema.get("additionalProperties"), Mapping):
        text += f" of {_schema(schema['additionalProperties'])}"
    extras = [f"{k} {_code(schema[k])}" for k in ("format", "pattern", "maxLength") if k in schema]
    return text + (f" ({', '.join(extras)})" if extras else "")


def _branch(schema: Mapping[str, Any]) -> str:
    """One shape of a ``oneOf`` of objects: ``flow`` = `x`, ``context`` with keys `a`, `b`."""
    parts = []
    for key, value in schema.get("properties", {}).items():
        if "const" in value:
            parts.append(f"{_code(key)} = {_code(value['const'])}")
        elif isinstance(value.get("properties"), Mapping):
            parts.append(f"{_code(key)} with {_codes(value['properties'], 'no keys')}")
        else:
            parts.append(f"{_code(key)}: {_schema(value)}")
    return ", ".join(parts)


def _links(answer: Mapping[str, Any]) -> str:
    """The links of an answer: the operations they lead to and what they carry over."""
    links = answer.get("links", {})
    targets = _codes(dict.fromkeys(link["operationId"] for link in links.values()))
    carried = {name: value for link in links.values() for name, value in link["parameters"].items()
               if isinstance(value, str) and value.startswith("$")}
    return f"{targets} ({', '.join(f'{_code(k)} ← {_code(v)}' for k, v in carried.items())})"


def _cell(markdown: str) -> str:
    """Markdown that is already markup (the document's descriptions), fit for one table cell."""
    return " ".join(markdown.split()).replace("|", "\\|")


def api_page(document: Mapping[str, Any]) -> str:
    """The OpenAPI document as a page: every operation, then every schema."""
    out = [MARKER, "", "# JSON API reference", "",
           _cell(document["info"]["description"]), "",
           f"Generated from the OpenAPI {document['openapi']} document of the built-in flows, "
           "[`openapi.json`](openapi.json); a running service serves its own at `GET /api/openapi.json` "
           "(with your flows too). [The web front end and the JSON API](../web.md) shows it in use, "
           "[writing your own front end](../frontends.md) what to do with the answers.", ""]
    for path, operations in document["paths"].items():
        for method, op in operations.items():
            out += [f"## `{method.upper()} {path}`", "", f"**{op['summary']}.**", ""]
            if op.get("deprecated"):
                out += ["*Deprecated.*", ""]
            if op.get("description"):
                out += [op["description"], ""]
            params = [_resolve(document, p) for p in op.get("parameters", [])]
            if params:
                out += _table(["parameter", "in", "required", "schema", "meaning"], [
                    [_code(p["name"]), p["in"], "yes" if p.get("required") else "no",
                     _schema(p.get("schema", {})), _cell(p.get("description", ""))] for p in params])
            body = op.get("requestBody")
            if body is not None:
                schema = body["content"]["application/json"]["schema"]
                out += [f"Body (JSON, {'required' if body.get('required') else 'optional'}): "
                        f"{_schema(schema)}.", ""]
            if "security" in op:
                schemes = document["components"].get("securitySchemes", {})
                needs = ["none" if not choice else " and ".join(
                    "a bearer token (`Authorization: Bearer <token>`)"
                    if schemes.get(name, {}).get("scheme") == "bearer" else _code(name)
                    for name in choice) for choice in op["security"]]
                out += [f"Authentication: {', or '.join(needs)}.", ""]
            rows = []
            for status, answer in op["responses"].items():
                answer = _resolve(document, answer)
                content = answer.get("content", {}).get("application/json", {})
                rows.append([status, _cell(answer["description"]),
                             _schema(content["schema"]) if "schema" in content else "—"])
            out += _table(["status", "when", "body"], rows)
            out += [f"Links from the {status}: {_links(answer)}.\n" for status, answer in
                    op["responses"].items() if "links" in answer]
    out += ["## Schemas", ""]
    for name, schema in document["components"]["schemas"].items():
        out += [f"### {name}", ""]
        if schema.get("description"):
            out += [_cell(schema["description"]), ""]
        properties = schema.get("properties")
        if isinstance(properties, Mapping):
            required = set(schema.get("required", []))
            out += _table(["property", "schema", "required", "meaning"], [
                [_code(key), _schema(value), "yes" if key in required else "no",
                 _cell(value.get("description", ""))] for key, value in properties.items()])
        elif "oneOf" in schema and all("properties" in branch for branch in schema["oneOf"]):
            out += ["One of:", "", *(f"- {_branch(branch)}" for branch in schema["oneOf"]), ""]
        else:
            out += [_schema(schema) + ".", ""]
    return "\n".join(out).rstrip("\n") + "\n"


def changelog_page(text: str) -> str:
    """CHANGELOG.md as a page of the site; its links into ``docs/`` made relative to ``gen/``."""
    body = re.sub(r"\]\((?:\./)?docs/", "](../", text)
    return f"{MARKER}\n\n{body.rstrip()}\n"
