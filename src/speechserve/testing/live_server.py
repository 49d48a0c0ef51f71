"""A real uvicorn server on a free local port in a background thread: for tests and benchmarks that need the
network path (websockets, streaming), not an in-process ASGI transport."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import uvicorn


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    """Poll ``condition`` until true or ``timeout`` seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return condition()
        time.sleep(interval)
    return True


class LiveServer:
    """A real uvicorn server on a free local port, in a background thread of this process."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=5)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        if not wait_until(lambda: self.server.started or not self.thread.is_alive(), timeout=180):
            raise TimeoutError("uvicorn did not start within 180 s")
        if not self.server.started:
            raise RuntimeError("uvicorn failed to start; see the log above")
        startup = self.app.state.startup  # the models load in the background once the port is open
        if not wait_until(lambda: startup.status != "loading", timeout=180) or startup.status != "ok":
            raise RuntimeError(f"the models did not load ({startup.status}); see the log above")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)
        self.sock.close()
