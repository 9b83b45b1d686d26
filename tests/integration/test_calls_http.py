"""The call queue's HTTP API on both backends: the routes translate to the service and back, refusals are
400 with the reason, an unknown task 404, and a promise's amount travels as a decimal string."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from duecourse.bootstrap import Container
from duecourse.services.calls import create_call_tasks
from duecourse.settings import Settings
from duecourse.web.app import create_app
from tests.integration.test_calls import NOW, ROOT, build_book


@pytest.fixture
def client(migrated_url: str, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings.from_env(
        {
            "DUECOURSE_HOME": str(tmp_path / "home"),
            "DUECOURSE_DATABASE_URL": migrated_url,
            "DUECOURSE_RULES": str(ROOT / "rules"),
            "DUECOURSE_MESSAGES": str(ROOT / "templates" / "messages.yaml"),
            "DUECOURSE_STRATEGY": str(ROOT / "strategies" / "default.yaml"),
        }
    )
    container = Container(settings, clock=lambda: NOW)
    actions = build_book(container.engine, tmp_path, container.cipher)
    with container.engine.begin() as conn:
        create_call_tasks(conn, actions, NOW)
    with TestClient(create_app(container)) as c:
        yield c
    container.engine.dispose()


def test_an_agent_claims_a_call_reveals_the_number_and_records_a_promise(client: TestClient) -> None:
    listed = client.get("/api/calls").json()
    assert listed and all(r["due"] for r in listed)
    order = [(r["priority"], r["scheduled_at"], r["task_key"]) for r in listed]
    assert order == sorted(order)

    claimed = client.post("/api/calls/next", json={"agent": "A1"})
    assert claimed.status_code == 200
    script = claimed.json()["script"]
    assert script["task_key"] == listed[0]["task_key"] and len(script["code"]) == 19
    assert sum(ch.isdigit() for ch in script["phone"]) == 4
    task = script["task_key"]

    refused = client.post(f"/api/calls/{task}/reveal", json={"agent": "A2"})
    assert refused.status_code == 400 and "not claimed by A2" in refused.json()["detail"]["error"]
    phone = client.post(f"/api/calls/{task}/reveal", json={"agent": "A1"}).json()["phone"]
    assert phone.endswith(script["phone"][-4:]) and phone != script["phone"]

    as_float = client.post(
        f"/api/calls/{task}/outcome",
        json={"agent": "A1", "result": "promise_to_pay", "amount": 1200.5, "date": "2026-10-05"},
    )
    assert as_float.status_code == 422
    too_far = client.post(
        f"/api/calls/{task}/outcome",
        json={"agent": "A1", "result": "promise_to_pay", "amount": "1200.00", "date": "2027-01-05"},
    )
    assert too_far.status_code == 400 and "horizon" in too_far.json()["detail"]["error"]
    done = client.post(
        f"/api/calls/{task}/outcome",
        json={"agent": "A1", "result": "promise_to_pay", "amount": "1200.00", "date": "2026-10-05", "note": "payday"},
    )
    assert done.status_code == 200
    body = done.json()
    assert (body["state"], body["result"]) == ("closed", "promise_to_pay")

    shown = client.get(f"/api/calls/{task}").json()
    assert shown["state"] == "closed" and shown["phone"] == script["phone"]
    assert shown["promises"] == [
        {
            "promise_id": body["promise_id"],
            "amount": 120000,
            "currency": "CNY",
            "due_date": "2026-10-05",
            "state": "open",
        }
    ]
    assert task not in [r["task_key"] for r in client.get("/api/calls").json()]
    assert task in [r["task_key"] for r in client.get("/api/calls", params={"include_closed": True}).json()]


def test_unknown_tasks_and_results_are_answered_not_crashed_on(client: TestClient) -> None:
    assert client.get("/api/calls/999999").status_code == 404
    assert client.post("/api/calls/999999/outcome", json={"agent": "A1", "result": "no_answer"}).status_code == 404
    assert client.post("/api/calls/1/outcome", json={"agent": "A1", "result": "maybe"}).status_code == 422
    assert client.post("/api/calls/next", json={}).status_code == 422


def test_every_body_endpoint_declares_its_400(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    posts = {p: ops["post"] for p, ops in paths.items() if p.startswith("/api/calls") and "post" in ops}
    assert set(posts) == {
        "/api/calls/next",
        "/api/calls/{task_key}/reveal",
        "/api/calls/{task_key}/release",
        "/api/calls/{task_key}/outcome",
    }
    assert all("400" in op["responses"] for op in posts.values())
