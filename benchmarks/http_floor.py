"""The HTTP floor: waitress answering a constant JSON on the JSON API's routes, nothing behind.

    python -m benchmarks.http_floor PORT THREADS

``POST /api/flows`` answers 201 and ``POST /api/flows/<id>/events/<event>`` 200, each with a
fixed snapshot-sized body read once at start; the request body is read and parsed as JSON, as
regflow's views do. Anything else: 404.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from typing import Any

from waitress import serve

SNAPSHOT = json.dumps({
    "id": "floor", "flow": "registration", "version": 1, "state": "enter_email", "status": "active",
    "flow_token": "f" * 43, "screen": {"title": "x" * 40, "fields": [{"name": "email"}],
                                       "actions": ["submit"], "messages": []},
    "links": {"self": "/api/flows/floor", "submit": "/api/flows/floor/events/submit"},
}).encode()


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
    size = int(environ.get("CONTENT_LENGTH") or 0)
    if size:
        json.loads(environ["wsgi.input"].read(size))
    parts = path.strip("/").split("/")
    if method == "POST" and parts == ["api", "flows"]:
        status = "201 Created"
    elif method == "POST" and len(parts) == 5 and parts[:2] == ["api", "flows"] and parts[3] == "events":
        status = "200 OK"
    else:
        start_response("404 Not Found", [("Content-Type", "application/json"), ("Content-Length", "2")])
        return [b"{}"]
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(SNAPSHOT))), ("Cache-Control", "no-store")])
    return [SNAPSHOT]


def main(argv: list[str]) -> int:
    serve(app, host="127.0.0.1", port=int(argv[0]), threads=int(argv[1]), ident="floor", _quiet=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
