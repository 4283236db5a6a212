"""A real webhook receiver on 127.0.0.1 that verifies every message with `standardwebhooks`.

It answers from a script (one status, or status and headers, per request; 200 once the script is used
up) and keeps every message it got, with the secrets it verified against. A message no known secret
verifies is answered 400, as a real receiver would, and kept with `verified_by == []`.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError

Answer = int | tuple[int, dict[str, str]] | tuple[int, dict[str, str], bytes]


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    verified_by: list[str]  # the secrets whose signature matched
    answered: int
    at: float = field(default_factory=time.monotonic)

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def type(self) -> str:
        return str(self.json["type"])


def _spelled_out(answer: Answer) -> tuple[int, dict[str, str], bytes]:
    if isinstance(answer, int):
        return answer, {}, b"ok"
    if len(answer) == 2:
        return answer[0], answer[1], b"ok"
    return answer


class Receiver:
    def __init__(self) -> None:
        self.secrets: list[str] = []
        self.script: deque[Answer] = deque()
        self.received: list[Received] = []
        self.hold: threading.Event | None = None  # set: requests wait for it before answering
        self.arrived = threading.Condition()
        self.delay_s = 0.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                receiver._handle(self, body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def _handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        headers = {k.lower(): v for k, v in handler.headers.items()}
        verified = []
        for secret in self.secrets:
            try:
                Webhook(secret).verify(body, headers)
            except WebhookVerificationError:
                continue
            verified.append(secret)
        with self.arrived:
            answer: Answer = self.script.popleft() if self.script else 200
            hold = self.hold
        status, extra, content = _spelled_out(answer)
        if not verified:
            status, extra, content = 400, {}, b"bad signature"
        with self.arrived:
            self.received.append(Received(headers, body, verified, status))
            self.arrived.notify_all()
        if hold is not None:
            hold.wait(30)
        if self.delay_s:
            time.sleep(self.delay_s)
        try:
            handler.send_response(status)
            for k, v in extra.items():
                handler.send_header(k, v)
            handler.send_header("content-length", str(len(content)))
            handler.end_headers()
            handler.wfile.write(content)
        except OSError:
            pass  # the sender is gone

    def wait_for(self, count: int, timeout: float = 20) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(self.received)} of {count} messages arrived in {timeout} s")
                self.arrived.wait(left)
            return list(self.received)

    def close(self) -> None:
        if self.hold is not None:
            self.hold.set()
        self.server.shutdown()
        self.server.server_close()
