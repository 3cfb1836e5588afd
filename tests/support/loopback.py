"""The tests' loopback HTTP receivers: a handler class served on a free port in a thread."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LoopbackServer:
    """Serves ``handler`` on 127.0.0.1 (a free port) until :meth:`stop`."""

    def __init__(
        self,
        handler: type[BaseHTTPRequestHandler],
        *,
        path: str = "/hooks",
        server_class: type[ThreadingHTTPServer] = ThreadingHTTPServer,
        poll_interval: float = 0.05,
    ) -> None:
        self.path = path
        self.server = server_class(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(poll_interval,), daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
