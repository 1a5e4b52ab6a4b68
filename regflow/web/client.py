"""The JavaScript client served at ``/static/``: ``regflow-client.js`` (an ES module) and its
TypeScript declarations ``regflow-client.d.ts``. Single-page applications load it from the same
origin as the API, which a ``default-src 'self'`` Content-Security-Policy allows."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, send_from_directory
from werkzeug.wrappers import Response

STATIC = Path(__file__).parent / "static"
FILES = {"regflow-client.js": "text/javascript", "regflow-client.d.ts": "text/plain"}

client = Blueprint("client", __name__)


@client.get("/static/<any('regflow-client.js', 'regflow-client.d.ts'):name>")
def static_file(name: str) -> Response:
    """One of the client's files (revalidated by its ETag, so an upgrade is seen at once)."""
    response = send_from_directory(STATIC, name, mimetype=FILES[name], max_age=0)
    response.headers["Cache-Control"] = "no-cache"
    return response
