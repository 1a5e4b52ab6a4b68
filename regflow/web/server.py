"""Serving the web front end on waitress (a production WSGI server), with the relay beside it.

The relay is a loop in a background thread that runs the worker's pass — due timers, queued
mail — every few seconds. It is not where timers live: they are stored with their flows and
applied on every request anyway; the loop only catches flows nobody is looking at.
"""

from __future__ import annotations

import logging
import threading

from waitress import serve as waitress_serve

from regflow.engine import Engine
from regflow.ground.exceptions import ConcurrentUpdate, StoreError, TransientError
from regflow.runtime.retrying import Backoff
from regflow.web import create_app, wait_for_mail

log = logging.getLogger("regflow.web")


class Relay:
    """Runs ``engine.sweep()`` and ``engine.deliver()`` every ``interval`` seconds until stopped."""

    def __init__(self, engine: Engine, interval: float = 5.0) -> None:
        self.engine = engine
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="regflow-relay", daemon=True)

    def start(self) -> Relay:
        """Start the loop."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the loop and wait for the pass in progress."""
        self._stop.set()
        self._thread.join(timeout=30)

    def run_once(self) -> tuple[int, int]:
        """One pass: flows whose timers were applied, mails delivered."""
        return self.engine.sweep(), self.engine.deliver()

    def _run(self) -> None:
        # The loop must outlive a failing pass. The database away or busy (a restart, a
        # fail-over) is expected now and then: one line when it starts, one when it ends, and
        # longer pauses meanwhile. Anything else is a fault worth its traceback.
        backoff = Backoff(initial=self.interval, maximum=max(30.0, self.interval))
        pause = self.interval
        while not self._stop.wait(pause):
            pause = self.interval
            try:
                self.run_once()
            except (TransientError, StoreError, ConcurrentUpdate) as exc:
                pause = backoff.failed()
                if backoff.failures == 1:
                    log.warning("relay pass failed (%s: %s); trying again in %g s, then at most "
                                "every %g s", exc.message_id, " ".join(str(exc).split()), pause,
                                backoff.maximum)
                continue
            except Exception:
                log.exception("relay pass failed; trying again in %s s", self.interval)
                continue
            failed = backoff.succeeded()
            if failed:
                log.warning("relay working again after %d failed pass(es)", failed)


def serve(engine: Engine, *, host: str = "127.0.0.1", port: int = 8000, relay: bool = True,
          relay_interval: float = 5.0, threads: int = 8, trusted_proxies: int = 0) -> None:
    """Serve the HTML pages and the JSON API until interrupted.

    With ``trusted_proxies``, the app's ``ProxyFix`` believes that many proxies' ``X-Forwarded-*``
    headers. waitress would remove those headers before the app sees them (it trusts no proxy
    of its own by default), and every client behind the proxies would then count as the proxy:
    one per-client limit for all of them, and their requests waiting on one lock. So waitress
    is told to leave them to the app then."""
    app = create_app(engine, trusted_proxies=trusted_proxies)
    worker = Relay(engine, relay_interval).start() if relay else None
    try:
        waitress_serve(app, host=host, port=port, threads=threads, ident="regflow",
                       clear_untrusted_proxy_headers=not trusted_proxies)
    finally:
        wait_for_mail(app, timeout=10)  # the mail of answers already sent (else the relay's)
        if worker is not None:
            worker.stop()
