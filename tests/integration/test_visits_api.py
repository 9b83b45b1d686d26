"""The door-visit HTTP API on both backends, through the app the `duecourse web` command serves: a whole visit
from the cycle's action to its outcome, refusals as 409 with their rules, bad bodies as 400/422, and the
notice's code shown as genuine on /verify with the visiting team's names and badges."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from duecourse.adapters.db import tables as t
from duecourse.audit.log import verify
from duecourse.bootstrap import Container
from duecourse.settings import Settings
from duecourse.web.app import create_app
from tests.integration.test_visits import AS_OF, BJ, PLAN_AT, ROOT, STAFF_CSV, VISIT_DAY, add_debtor
from tests.unit.letters.pdf_tools import qr_codes


class Clock:
    """The app's clock, moved along by the test."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def home(migrated_url: str, tmp_path: Path) -> Iterator[tuple[Container, Clock]]:
    """Settings like production's on a fresh database of the backend under test; the engine closed afterwards."""
    env = {
        "DUECOURSE_HOME": str(tmp_path / "home"),
        "DUECOURSE_DATABASE_URL": migrated_url,
        "DUECOURSE_MESSAGES": str(ROOT / "templates" / "messages.yaml"),
        "DUECOURSE_RULES": str(ROOT / "rules"),
        "DUECOURSE_STRATEGY": str(ROOT / "strategies" / "default.yaml"),
    }
    clock = Clock(PLAN_AT)
    container = Container(Settings.from_env(env), clock=clock)
    yield container, clock
    container.engine.dispose()


def test_a_whole_visit_through_the_api(home: tuple[Container, Clock], tmp_path: Path) -> None:
    container, clock = home
    client = TestClient(create_app(container), client=("203.0.113.20", 40000))
    with container.engine.begin() as conn:
        add_debtor(conn, container.cipher, 1)
    with client:
        imported = client.post(
            "/api/visits/staff/import",
            files={"file": ("staff.csv", STAFF_CSV + "S009,,X,CN-BJ,maybe,field_visit,2026-01-01,2027-01-01\n")},
        )
        assert imported.status_code == 200
        assert imported.json()["accepted"] == 3
        assert {(e["row"], e["field"]) for e in imported.json()["errors"]} >= {(4, "name"), (4, "badge"), (4, "active")}
        staff = client.get("/api/visits/staff", params={"on": "2026-10-08"}).json()
        assert [s["badge"] for s in staff] == ["BJ-FV-0001", "BJ-FV-0002", "BJ-FV-0003"]

        judged = client.get("/api/visits/candidates", params={"as_of": AS_OF.isoformat()}).json()
        assert [(v["eligible"], v["reasons"]) for v in judged] == [(True, [])]
        planned = client.post("/api/visits/plan", json={"as_of": AS_OF.isoformat()}).json()
        (visit_id,) = planned["planned"]
        assert client.post("/api/visits/plan", json={"as_of": AS_OF.isoformat()}).json()["already"] == [visit_id]

        refused = client.post(f"/api/visits/{visit_id}/notice", json={"staff": ["S001"]})
        assert refused.status_code == 409 and refused.json()["detail"]["reasons"][0].startswith("CN.VISIT.STAFF:")
        notice = client.post(f"/api/visits/{visit_id}/notice", json={"staff": ["S001", "S002"]})
        assert notice.status_code == 200, notice.text
        pdf = Path(notice.json()["pdf"])
        (qr,) = qr_codes(pdf, tmp_path)
        assert re.fullmatch(r"http://127\.0\.0\.1:8000/verify\?code=[0-9A-Z]{4}(-[0-9A-Z]{4}){3}", qr)
        page = client.get("/verify", params={"code": qr.split("code=")[1], "lang": "zh"})
        assert page.status_code == 200
        assert "李建国" in page.text and "BJ-FV-0002" in page.text and "赵志强" not in page.text

        delivered = datetime(2026, 9, 24, 10, 0, tzinfo=BJ)
        clock.at = delivered + timedelta(hours=2)
        ok = client.post(
            f"/api/visits/{visit_id}/delivery", json={"delivered_at": delivered.isoformat(), "method": "courier"}
        )
        assert ok.status_code == 200
        assert (
            client.post(f"/api/visits/{visit_id}/delivery", json={"delivered_at": "2026-09-24T10:00:00"}).status_code
            == 422
        )

        clock.at = VISIT_DAY - timedelta(days=3)
        early = client.post(
            f"/api/visits/{visit_id}/schedule", json={"staff": ["S001", "S002"], "start": "2026-09-30T10:00:00+08:00"}
        )
        assert early.status_code == 409
        assert any(r.startswith("HOUSE.VISIT.NOTICE (") for r in early.json()["detail"]["reasons"])
        fine = client.post(
            f"/api/visits/{visit_id}/schedule", json={"staff": ["S001", "S002"], "start": VISIT_DAY.isoformat()}
        )
        assert fine.status_code == 200 and fine.json()["end"] == "2026-10-08T11:00:00+08:00"
        route = client.get("/api/visits/routes", params={"date": "2026-10-08"}).json()
        assert route[0]["team"] == ["S001", "S002"] and [s["visit_id"] for s in route[0]["stops"]] == [visit_id]
        assert route[0]["total_m"] == route[0]["stops"][0]["leg_m"] + route[0]["return_m"] > 0
        assert (
            client.get("/api/visits/routes", params={"date": "2026-10-08", "zone": "Mars/Olympus"}).status_code == 400
        )

        clock.at = VISIT_DAY + timedelta(minutes=10)
        place = {"latitude": 39.9391, "longitude": 116.4336}
        arrived = client.post(
            f"/api/visits/{visit_id}/check-in",
            json={
                "at": (VISIT_DAY + timedelta(minutes=5)).isoformat(),
                **place,
                "identification_shown": True,
                "recording": True,
            },
        )
        assert arrived.status_code == 200 and arrived.json()["distance_to_address_m"] < 50
        files = {"file": ("door.jpg", b"\xff\xd8\xff photo of the door", "image/jpeg")}
        first = client.post(f"/api/visits/{visit_id}/evidence", files=files).json()
        again = client.post(f"/api/visits/{visit_id}/evidence", files=files).json()
        assert first["new_file"] and not again["new_file"] and first["sha256"] == again["sha256"]
        clock.at = VISIT_DAY + timedelta(hours=1)
        left = client.post(
            f"/api/visits/{visit_id}/check-out", json={"at": (VISIT_DAY + timedelta(minutes=45)).isoformat(), **place}
        )
        assert left.status_code == 200
        leak = client.post(
            f"/api/visits/{visit_id}/outcome",
            json={
                "met_debtor": False,
                "third_party_present": True,
                "third_party_note": "told the neighbour about the loan",
            },
        )
        assert leak.status_code == 409 and "CN.THIRDPARTY.NODISCLOSE" in leak.json()["detail"]["reasons"][0]
        assert client.post(f"/api/visits/{visit_id}/outcome", json={"met_debtor": "perhaps"}).status_code == 422
        done = client.post(
            f"/api/visits/{visit_id}/outcome",
            json={
                "met_debtor": True,
                "plan_requested": True,
                "third_party_present": True,
                "third_party_note": "邻居在场",
            },
        )
        assert done.status_code == 200 and done.json()["detail"] == "plan_requested"
        shown = client.get(f"/api/visits/{visit_id}").json()
        assert shown["status"] == "reported" and shown["outcome"]["disclosed_to_third_party"] is False
        assert len(shown["evidence"]) == 1
        assert client.get("/api/visits/V-0000-000000").status_code == 404
    with container.engine.connect() as conn:
        event = conn.execute(select(t.contact_event).where(t.contact_event.c.channel == "visit")).one()
        actors = {
            r.actor for r in conn.execute(select(t.audit_entry.c.actor).where(t.audit_entry.c.entity_id == visit_id))
        }
        assert verify(conn)[1] is None
    assert event.outcome == "conversation" and event.details["detail"] == "plan_requested"
    assert actors == {"api"}
