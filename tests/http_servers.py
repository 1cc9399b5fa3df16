"""Local HTTP test servers for provider adapters: plain stdlib http.server in a thread on 127.0.0.1.

Real sockets, real HTTP, real timeouts — only the remote model is scripted. Routes map "METHOD /regex" to a
`Reply`, a list of replies (served in order, the last one repeating: "503 then 200" retry scripts) or a callable
that builds a reply from the recorded request.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Reply:
    status: int = 200
    body: bytes | str | dict[str, Any] | list[Any] = b""
    content_type: str | None = None
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> tuple[bytes, str]:
        if isinstance(self.body, dict | list):
            return json.dumps(self.body).encode(), self.content_type or "application/json"
        if isinstance(self.body, str):
            return self.body.encode(), self.content_type or "text/plain; charset=utf-8"
        return self.body, self.content_type or "application/octet-stream"


Handler = Reply | list[Reply] | Callable[[Request], Reply]


class TestServer:
    """`with TestServer({"POST /jobs": Reply(...)}) as srv: srv.url ...`; `srv.requests` records every call."""

    __test__ = False  # not a pytest class

    def __init__(self, routes: dict[str, Handler]) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        for key, handler in routes.items():
            method, pattern = key.split(" ", 1)
            self.routes.append((method.upper(), re.compile(f"^{pattern}$"), handler))
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._httpd is not None
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def count(self, method: str, pattern: str) -> int:
        rx = re.compile(f"^{pattern}$")
        return sum(1 for r in self.requests if r.method == method and rx.match(r.path))

    def _dispatch(self, req: Request) -> Reply:
        with self._lock:
            self.requests.append(req)
            for method, rx, handler in self.routes:
                if method == req.method and rx.match(req.path.split("?", 1)[0]):
                    if isinstance(handler, list):
                        return handler.pop(0) if len(handler) > 1 else handler[0]
                    if isinstance(handler, Reply):
                        return handler
                    break
            else:
                return Reply(404, {"error": f"no route for {req.method} {req.path}"})
        return handler(req)  # callables run outside the lock

    def __enter__(self) -> TestServer:
        server = self

        class _H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # silence stderr
                return

            def _handle(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                req = Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                reply = server._dispatch(req)
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                data, ctype = reply.encoded()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # client gave up (timeout tests)
                    pass

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _H)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()


def job_api(output: bytes, *, polls_before_done: int = 1, fail: str | None = None,
            output_type: str = "video/mp4") -> dict[str, Handler]:
    """Routes of the async job protocol used by `tools.providers.run_job`: POST /jobs → id, GET /jobs/<id> →
    status (queued/running … succeeded|failed), GET /files/<id> → the output bytes."""
    state = {"polls": 0}

    def status(req: Request) -> Reply:
        state["polls"] += 1
        if state["polls"] <= polls_before_done:
            return Reply(200, {"id": "job1", "status": "running"})
        if fail:
            return Reply(200, {"id": "job1", "status": "failed", "error": fail})
        return Reply(200, {"id": "job1", "status": "succeeded", "output_url": "/files/job1"})

    return {
        "POST /jobs": Reply(200, {"id": "job1", "status": "queued"}),
        "GET /jobs/job1": status,
        "GET /files/job1": Reply(200, output, content_type=output_type),
    }
