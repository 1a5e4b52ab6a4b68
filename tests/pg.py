"""PostgreSQL for tests: a store URL on a fresh schema of the local server, or a skip.

The server is ``postgresql://postgres@127.0.0.1:5432/test`` unless ``REGFLOW_TEST_POSTGRES``
names another. ``postgres_url()`` skips the calling test (one line: why) when psycopg 3 is
not installed or the server does not answer; ``drop_schema(url)`` removes what the test made.
"""

from __future__ import annotations

import functools
import os
import secrets
from urllib.parse import parse_qs, urlsplit

import pytest

SERVER = os.environ.get("REGFLOW_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@functools.cache
def _unavailable() -> str | None:
    """Why PostgreSQL tests cannot run here, or None when they can (asked once per run)."""
    try:
        import psycopg
    except ImportError:
        return "psycopg 3 is not installed (pip install 'psycopg[binary]')"
    try:
        with psycopg.connect(SERVER, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"PostgreSQL at {SERVER} unreachable: {first_line}"
    return None


def postgres_url() -> str:
    """A store URL on a fresh, randomly named schema; skips the test without a server."""
    reason = _unavailable()
    if reason is not None:
        pytest.skip(reason)
    return f"{SERVER}?schema=regflow_test_{secrets.token_hex(6)}"


def schema_of(url: str) -> str:
    """The ``schema`` query parameter of a store URL."""
    return parse_qs(urlsplit(url).query)["schema"][0]


def drop_schema(url: str) -> None:
    """Drop the URL's schema and everything in it (the store's connections should be closed)."""
    import psycopg

    with psycopg.connect(SERVER, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema_of(url)}" CASCADE')
