"""What the app factory and its blueprints share: the engine an app was made for, config keys."""

from __future__ import annotations

from flask import Flask

from regflow.engine import Engine

SIGN_IN_COOKIE = "regflow.sign_in_cookie"  # app.config key: the sign-in session cookie's name


def engine_of(app: Flask) -> Engine:
    """The engine an app was made for."""
    engine = app.extensions["regflow.engine"]
    assert isinstance(engine, Engine)
    return engine
