"""The plans and promises HTTP API with FastAPI's TestClient on both backends: money as exact strings, an offer
beyond an agent's limits refused until decided, a declined one never accepted, unknown ids 404, the audit intact."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from duecourse.audit.log import verify
from duecourse.bootstrap import Container
from duecourse.settings import Settings
from duecourse.web.app import create_app
from tests.integration.test_plans import load_plans_book

NOW = datetime(2026, 4, 20, 3, tzinfo=UTC)  # 11:00 in Shanghai
POLICY = str(Path(__file__).resolve().parents[2] / "policy")


@pytest.fixture
def client(migrated_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, Container]]:
    env = {"DUECOURSE_HOME": str(tmp_path / "home"), "DUECOURSE_DATABASE_URL": migrated_url, "DUECOURSE_POLICY": POLICY}
    settings = Settings.from_env(env)
    container = Container(settings, clock=lambda: NOW)
    load_plans_book(container.engine, container.cipher, tmp_path)
    app = _app(container)
    with TestClient(app) as http:
        yield http, container
    container.engine.dispose()


def _app(container: Container) -> FastAPI:
    return create_app(container)


FINANCES = {
    "monthly_income": {"amount": "15000.00"},
    "essential_expenses": {"amount": "4000.00", "source": "evidenced"},
    "other_debt_payments": {"amount": "1000"},
    "savings": {"amount": "2000", "source": "estimated"},
    "household_size": 2,
    "dependants": 1,
    "region": "CN-11",
    "recorded_by": "agent-7",
}
OFFER = {"loan_id": "P1", "as_of": "2026-04-20", "by": "agent-7", "role": "agent"}


def test_plans_over_http(client: tuple[TestClient, Container]) -> None:
    http, container = client
    as_float = {**FINANCES, "monthly_income": {"amount": 15000.5}}
    assert http.post("/api/plans/finances/PB1", json=as_float).status_code == 422  # a JSON number is refused
    recorded = http.post("/api/plans/finances/PB1", json=FINANCES)
    assert recorded.status_code == 200, recorded.text
    assert recorded.json()["assessment"]["disposable"] == "10000.00"
    shown = http.get("/api/plans/finances/PB1", params={"payment": "2500.00"}).json()
    assert shown["proposed"]["share_of_disposable"] == "0.2500"
    assert http.get("/api/plans/finances/NOBODY").status_code == 404

    options = http.get("/api/plans/options/P1", params={"as_of": "2026-04-20"}).json()
    assert options["outstanding"]["total"] == "6188.00" and options["options"][0]["rank"] == 1
    by_borrower = http.get("/api/plans/borrowers/PB1/options", params={"as_of": "2026-04-20"}).json()
    assert [v["loan_id"] for v in by_borrower] == ["P1"]

    pending = http.post("/api/plans/offers", json={**OFFER, "kind": "settlement", "months": 1}).json()
    assert pending["state"] == "pending_approval"
    refused = http.post(f"/api/plans/{pending['plan_id']}/accept", json={"effective_date": "2026-04-20", "by": "PB1"})
    assert refused.status_code == 400 and "waits for a supervisor" in refused.json()["detail"]["error"]
    declined = http.post(
        f"/api/plans/{pending['plan_id']}/decline", json={"by": "sup-1", "role": "supervisor", "reason": "no evidence"}
    )
    assert declined.json()["state"] == "declined"
    again = http.post(f"/api/plans/{pending['plan_id']}/accept", json={"effective_date": "2026-04-20", "by": "PB1"})
    assert again.status_code == 400 and "declined" in again.json()["detail"]["error"]

    offered = http.post("/api/plans/offers", json={**OFFER, "kind": "suspension", "months": 12}).json()
    assert offered["state"] == "offered"
    accepted = http.post(f"/api/plans/{offered['plan_id']}/accept", json={"effective_date": "2026-04-20", "by": "PB1"})
    assert accepted.status_code == 200, accepted.text
    body = accepted.json()
    # Suspension: interest, penalty and fees waived (60.00 + 98.00 + 30.00), 6,000.00 principal in 12 x 500.00.
    assert body["waived"] == {"interest": "60.00", "penalty": "98.00", "fee": "30.00"}
    assert {r["principal"] for r in body["schedule"]} == {"500.00"} and body["credit_amount"] == "4158.00"
    assert http.get(f"/api/plans/{offered['plan_id']}").json()["state"] == "active"
    assert [p["state"] for p in http.get("/api/plans", params={"borrower_id": "PB1"}).json()] == ["active", "declined"]
    assert http.get("/api/plans/PLAN-NONE").status_code == 404

    promise = {"loan_id": "P2", "amount": "300.50", "due_date": "2026-04-25", "channel": "app", "taken_by": "debtor"}
    taken = http.post("/api/promises", json=promise)
    assert taken.status_code == 200, taken.text
    assert taken.json()["amount"] == "300.50"
    late = http.post("/api/promises", json={**promise, "due_date": "2026-06-01"})
    assert late.status_code == 400 and "horizon" in late.json()["detail"]["error"]
    assert [p["amount"] for p in http.get("/api/promises", params={"borrower_id": "PB1"}).json()] == ["300.50"]
    report = http.get("/api/promises/report", params={"from": "2026-04-01", "to": "2026-04-30"}).json()
    assert report["by_channel"] == [
        {"channel": "app", "promises": 1, "open": 1, "kept": 0, "partly_kept": 0, "broken": 0, "kept_rate": None}
    ]
    with container.engine.connect() as conn:
        assert verify(conn)[1] is None


def test_every_body_endpoint_declares_its_400(client: tuple[TestClient, Container]) -> None:
    http, _ = client
    schema = http.get("/openapi.json").json()["paths"]
    posts = {
        path: ops["post"]
        for path, ops in schema.items()
        if path.startswith(("/api/plans", "/api/promises")) and "post" in ops
    }
    assert len(posts) == 6
    assert all("400" in op["responses"] for op in posts.values())
