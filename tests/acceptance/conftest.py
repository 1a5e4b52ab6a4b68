"""Fixtures of the acceptance suite (the guide, ``seeds/000_3e68ff17a30de17d.txt``, as tests).

Engines run on a ManualClock at 2026-03-02 09:00 in Tokyo with the guide's product name and a
configured sender; the demo contract is 281234 (3 licenses, seats abcd8-01..03, Tel
03-1234-5678). The HTML pages are served by a real waitress server and read in Debian's chromium
through Playwright: one browser per test module, a fresh context (a fresh "PC") per tab. Browser
tests are skipped, with the reason, where chromium or playwright is missing; the others still run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

import attrs
import pytest
from guide import CONTRACT, PRODUCT, SENDER, START
from live_server import serving

import regflow
from regflow.web import create_app, wait_for_mail

if TYPE_CHECKING:
    from flask import Flask
    from playwright.sync_api import Browser, BrowserContext, Page

EngineMaker = Callable[..., regflow.Engine]


@pytest.fixture
def clock() -> regflow.ManualClock:
    """2026-03-02 09:00 in Tokyo (after the enforcement date), moved by hand."""
    return regflow.ManualClock(START)


@pytest.fixture
def new_engine(clock: regflow.ManualClock) -> EngineMaker:
    """Make an engine (``memory://`` unless a db URL is given) with the product name, the sender
    and the demo contract; keyword arguments go to ``Engine.from_url``."""

    def make(db: str = "memory://", **options: Any) -> regflow.Engine:
        options.setdefault("clock", clock)
        built = regflow.Engine.from_url(db, mail="memory", hasher="fast", product=PRODUCT,
                                        mail_from=SENDER, **options)
        built.contracts.add(**CONTRACT)
        return built

    return make


@pytest.fixture
def engine(new_engine: EngineMaker) -> regflow.Engine:
    """The engine of the test (in memory)."""
    return new_engine()


@attrs.define
class Site:
    """The pages of one engine on a real server, and the browser tabs opened on them."""

    engine: regflow.Engine
    app: Flask
    base: str
    browser: Browser
    contexts: list[BrowserContext] = attrs.field(factory=list)

    def tab(self) -> Page:
        """A new tab in a new browser profile (another PC): phone-sized, Japanese."""
        context = self.browser.new_context(base_url=self.base, locale="ja-JP",
                                           viewport={"width": 480, "height": 900})
        context.set_default_timeout(10_000)
        self.contexts.append(context)
        return context.new_page()

    def settled(self) -> regflow.Engine:
        """The engine, once the mail of every answer so far was handed to its mailer."""
        assert wait_for_mail(self.app), "the server's mail did not go out within 10 s"
        return self.engine


@pytest.fixture
def serve(chromium: Browser) -> Iterator[Callable[[regflow.Engine], Site]]:
    """Serve an engine's pages (as many as a test needs); stopped after the test."""
    with ExitStack() as stack:
        sites: list[Site] = []

        def start(engine: regflow.Engine) -> Site:
            app = create_app(engine)
            base = stack.enter_context(serving(app))
            site = Site(engine=engine, app=app, base=base, browser=chromium)
            sites.append(site)
            return site

        try:
            yield start
        finally:
            for site in sites:
                for context in site.contexts:
                    context.close()


@pytest.fixture
def site(serve: Callable[[regflow.Engine], Site], engine: regflow.Engine) -> Site:
    """The test engine's pages."""
    return serve(engine)


@pytest.fixture
def page(site: Site) -> Page:
    """A tab on the test engine's pages."""
    return site.tab()
