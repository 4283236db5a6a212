"""PostgreSQL goes away during traffic: the service answers 503 quickly (never hangs) and recovers by
itself when the database is back. The outage is a TCP proxy in front of the real server being cut, which
drops live connections and refuses new ones just as a restart does, without disturbing other databases."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest
from sqlalchemy import make_url

from tests.reliability.conftest import Server, free_port


class Proxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", self.port))
        ls.listen(64)
        self._listener = ls
        threading.Thread(target=self._accept, args=(ls,), daemon=True).start()

    def _accept(self, ls: socket.socket) -> None:
        while True:
            try:
                client, _ = ls.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        assert self._listener is not None
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread; close alone would not
        except OSError:
            pass
        self._listener.close()
        with self._lock:
            for c in self._conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                    c.close()
                except OSError:
                    pass
            self._conns.clear()


def test_database_restart_gives_503_then_recovers(server: Server, backend: str) -> None:
    if backend != "postgres":
        pytest.skip("a database server restart applies to PostgreSQL; SQLite is embedded in the process")
    url = make_url(server.database_url)
    proxy = Proxy(url.port or 5432)
    proxy.start()
    key = (
        server.cli(
            "bank",
            "create",
            "--name",
            "Outage bank",
            "--code",
            "OUT",
            "--allow-contracts-without-application",
        )
        .strip()
        .splitlines()[-1]
    )
    server.env["LOANFUND_DATABASE_URL"] = url.set(port=proxy.port).render_as_string(hide_password=False)
    server.start()
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=server.url, timeout=15, headers=headers) as c:
        assert c.get("/api/v1/banks/me").status_code == 200
        proxy.cut()
        statuses = []
        for _ in range(5):
            started = time.monotonic()
            r = c.get("/api/v1/banks/me")
            elapsed = time.monotonic() - started
            statuses.append(r.status_code)
            assert elapsed < 10, "a request hung while the database was down"
            assert r.status_code == 503, r.text
            assert r.json()["error"]["code"] in ("database_unavailable", "database_busy")
            assert "retry-after" in r.headers
        assert c.get("/readyz").status_code == 503
        proxy.start()  # the database is back on the same address
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if c.get("/api/v1/banks/me").status_code == 200:
                break
            time.sleep(0.3)
        assert c.get("/api/v1/banks/me").status_code == 200
        assert c.get("/readyz").status_code == 200
