"""Real HTTP servers for tests: waitress serving an app on 127.0.0.1 in a thread, and
``regflow serve`` in its own process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from waitress.server import create_server


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Serve ``app`` on a free loopback port; yields its base URL (``http://127.0.0.1:PORT``).

    The loop runs in short slices so it can be told to stop before its sockets are closed
    (closing them under a waiting loop makes waitress print "Bad file descriptor").
    """
    server = create_server(app, host="127.0.0.1", port=0, threads=4, clear_untrusted_proxy_headers=True)
    port = server.socket.getsockname()[1]
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            server.asyncore.loop(timeout=0.05, map=server._map, count=1)

    thread = threading.Thread(target=run, name="waitress", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()


def free_port() -> int:
    """A TCP port on loopback that nothing listens on (now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def regflow_command() -> str:
    """The ``regflow`` console script of the running interpreter's environment."""
    return str(Path(sys.executable).parent / "regflow")


@contextmanager
def serve_process(*options: str, env: Mapping[str, str] | None = None,
                  ) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``regflow serve --host 127.0.0.1 --port PORT OPTIONS…`` in its own process (``env``:
    its environment, else this one's); yields its base URL and the process once it accepts
    connections (30 s at most), and stops it afterwards."""
    port = free_port()
    process = subprocess.Popen(
        [regflow_command(), "serve", "--host", "127.0.0.1", "--port", str(port), *options],
        env=dict(os.environ if env is None else env), stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"regflow serve exited with {process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("regflow serve did not start within 30 s") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}", process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
