"""The receiver example in the README, run as written against real deliveries: it accepts a message
signed with its secret and refuses one signed with another."""

from __future__ import annotations

import re
import threading
from http.server import HTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from standardwebhooks import Webhook

from loanfund.webhooks.worker import Worker
from tests.factories import Caller

README = Path(__file__).resolve().parents[2] / "README.md"


def _example() -> str:
    text = README.read_text()
    section = text[text.index("**A receiver in Python**") :]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None
    return match.group(1)


@pytest.mark.usefixtures("hook_settings")
def test_the_readme_receiver_verifies_a_signature(
    client: TestClient, bank_a: Caller, worker: Worker, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _example()
    assert len([line for line in code.splitlines() if line.strip()]) <= 11
    setup, serve = code.rstrip().rsplit("\n", 1)
    assert serve.startswith("HTTPServer(")
    servers = []
    answers = []
    for sign_with in ("right", "wrong"):
        url = "http://127.0.0.1:{port}/"
        namespace: dict[str, Any] = {"__name__": "readme_receiver"}
        exec(setup.replace('"whsec_..."', repr("whsec_" + "B" * 43 + "=")), namespace)
        server = HTTPServer(("127.0.0.1", 0), namespace["Receiver"])
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        r = client.post(
            "/api/v1/webhooks/endpoints",
            json={"url": url.format(port=server.server_address[1])},
            headers=bank_a.headers,
        )
        assert r.status_code == 201
        secret = r.json()["secret"]
        # the example's `webhook`, made with this endpoint's secret (or left with another one)
        if sign_with == "right":
            namespace["webhook"] = Webhook(secret)
        client.post(f"/api/v1/webhooks/endpoints/{r.json()['id']}/test", headers=bank_a.headers)
        assert worker.run_once() == 1
        log = client.get(f"/api/v1/webhooks/endpoints/{r.json()['id']}/deliveries", headers=bank_a.headers)
        answers.append(log.json()["items"][0]["attempts"][0])
    for server in servers:
        server.shutdown()
        server.server_close()
    assert answers[0]["status_code"] == 204
    assert "ping msg_" in capsys.readouterr().out
    assert answers[1]["status_code"] is None  # the example raised: no answer, the delivery goes again
