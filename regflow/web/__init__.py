"""The web front end: the JSON API of SPEC 4.1 and the HTML pages of SPEC 4.2, on Flask.

``create_app(engine)`` returns a Flask application that a user can run as it is or mount
inside an existing WSGI application (e.g. with ``werkzeug.middleware.dispatcher``).
"""

from __future__ import annotations

import secrets
from typing import Any

from flask import Flask, request
from flask.sessions import SecureCookieSessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix

from regflow.engine import Engine


def create_app(engine: Engine, *, secret_key: str | bytes | None = None,
               trusted_proxies: int = 0, **config: Any) -> Flask:
    """A Flask app serving ``engine``: ``/api/...`` (JSON) and the HTML pages.

    Behind ``trusted_proxies`` reverse proxies (TLS terminated there), their
    ``X-Forwarded-*`` headers are believed, so cookies are marked Secure under HTTPS.
    """
    from regflow.web.api import api
    from regflow.web.pages import pages

    app = Flask("regflow.web", template_folder="../templates/web", static_folder=None)
    app.config.update(
        SECRET_KEY=secret_key if secret_key is not None else secrets.token_hex(32),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        MAX_CONTENT_LENGTH=64 * 1024,
        JSON_SORT_KEYS=False,
    )
    app.config.update(config)
    app.url_map.merge_slashes = False  # "//" is a bad request, not a redirect to guess at
    if trusted_proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=trusted_proxies,  # type: ignore[method-assign]
                                x_proto=trusted_proxies, x_host=trusted_proxies)
    app.extensions["regflow.engine"] = engine
    app.session_interface = _SessionInterface()

    app.register_blueprint(api)
    app.register_blueprint(pages)
    return app


class _SessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie (CSRF token, language), marked Secure whenever the request is HTTPS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure


def engine_of(app: Flask) -> Engine:
    """The engine an app was made for."""
    engine = app.extensions["regflow.engine"]
    assert isinstance(engine, Engine)
    return engine
