"""Door visits end to end on both backends: staff registry, eligibility, the lifecycle from the cycle's action to
the outcome, every refusal with its rule, evidence by hash, routes, and the audit chain.

The book: debtors in Beijing 75 days past due whom three calls failed to reach, with a cycle `visit` action
each, and three certified collectors (one certification running out on 5 October 2026)."""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Connection, Engine, func, insert, select

from duecourse.adapters.channels.letters import LetterRenderer
from duecourse.adapters.crypto import FieldCipher
from duecourse.adapters.db import tables as t
from duecourse.audit.log import verify
from duecourse.compliance.calendar import HolidayCalendar
from duecourse.compliance.checks.base import CheckContext
from duecourse.compliance.rulebook import load_rulebook
from duecourse.domain.verification import CodeSigner
from duecourse.domain.visits import VisitRefused
from duecourse.services.contacts import ContactEvent, record_contacts
from duecourse.services.letters import Letters
from duecourse.services.messages import MessageCatalogue
from duecourse.services.visits import (
    NoticeWriter,
    OutcomeReport,
    VisitDeps,
    add_evidence,
    approve_vulnerable,
    check_in,
    check_out,
    import_staff,
    issue_notice,
    list_staff,
    load_policy,
    plan_visits_from_actions,
    planned_groups,
    record_delivery,
    report_outcome,
    routes,
    schedule,
    show,
    visit_actions,
    visit_team_for_reference,
)
from duecourse.strategy import load_strategy

ROOT = Path(__file__).resolve().parents[2]
RULES = load_rulebook(ROOT / "rules")
CTX = CheckContext(calendar=HolidayCalendar.load(ROOT / "rules" / "calendars"))
MESSAGES = MessageCatalogue.load(ROOT / "templates" / "messages.yaml")
POLICY = load_policy(ROOT / "policy" / "visits.yaml")
STRATEGY = load_strategy(ROOT / "strategies" / "default.yaml")
RENDERER = LetterRenderer(ROOT / "templates" / "letters")
AS_OF = date(2026, 9, 21)  # a Monday; the notice window then opens on 1 October (3 posting + 7 lead days)
PLAN_AT = datetime(2026, 9, 21, 2, 0, tzinfo=UTC)  # 10:00 in Beijing
STAFF_CSV = """staff_id,name,badge,region,active,certification,issued_on,expires_on
S001,李建国,BJ-FV-0001,CN-BJ,true,field_visit,2025-06-01,2027-05-31
S002,王秀英,BJ-FV-0002,CN-BJ,true,field_visit,2026-01-10,2027-01-09
S003,赵志强,BJ-FV-0003,CN-BJ,true,field_visit,2024-10-06,2026-10-05
"""
# Every rule about the visit itself blocks a cycle proposal that has no team, notice or slot yet.
DEFERRED = (
    "CN.VISIT.ENTRY,CN.VISIT.ID,CN.VISIT.RECORDING,CN.VISIT.STAFF,"
    "HOUSE.VISIT.CERTIFIED,HOUSE.VISIT.LAST_RESORT,HOUSE.VISIT.MIN_BALANCE,HOUSE.VISIT.NOTICE"
)


@dataclass(frozen=True)
class Book:
    borrower_key: int
    loan_key: int
    action_key: int
    address_key: int


def deps(tmp: Path) -> VisitDeps:
    return VisitDeps(
        RULES,
        CTX,
        POLICY,
        FieldCipher.from_key_file(tmp / "data.key"),
        CodeSigner(b"k" * 32),
        MESSAGES,
        tmp / "data",
        "http://127.0.0.1:8000",
    )


def add_debtor(
    conn: Connection,
    cipher: FieldCipher,
    n: int,
    *,
    overdue: int = 600_000,
    days_past_due: int = 75,
    bucket: str = "M3",
    failed_calls: int = 3,
    birth: date = date(1985, 3, 12),
    flags: str = "",
    latitude: float = 39.9390,
    longitude: float = 116.4335,
    as_of: date = AS_OF,
    now: datetime = PLAN_AT,
) -> Book:
    if conn.execute(t.product.select().where(t.product.c.code == "CASH12")).first() is None:
        conn.execute(insert(t.product).values(code="CASH12", currency="CNY", conventions={}))
    b = conn.execute(
        insert(t.borrower).values(
            borrower_id=f"B{n:04d}",
            name_enc=cipher.encrypt("张伟", "borrower.name_enc"),
            national_id_enc=cipher.encrypt("110101198503120316", "borrower.national_id_enc"),
            birth_date=birth,
            language="zh-CN",
            flags=flags,
            region="CN-BJ",
        )
    ).inserted_primary_key[0]
    address = conn.execute(
        insert(t.contact_point).values(
            contact_id=f"C{n:04d}A",
            borrower_key=b,
            kind="address",
            owner="borrower",
            value_enc=cipher.encrypt("北京市东城区东直门南大街 5 号 3 单元 402 室", "contact_point.value_enc"),
            latitude=latitude,
            longitude=longitude,
            time_zone="Asia/Shanghai",
            valid=True,
            consent=True,
        )
    ).inserted_primary_key[0]
    conn.execute(
        insert(t.contact_point).values(
            contact_id=f"C{n:04d}P",
            borrower_key=b,
            kind="phone",
            owner="borrower",
            value_enc=cipher.encrypt("+8613800138001", "contact_point.value_enc"),
            time_zone="Asia/Shanghai",
            valid=True,
            consent=True,
        )
    )
    loan = conn.execute(
        insert(t.loan).values(
            loan_id=f"L{n:04d}",
            borrower_key=b,
            product="CASH12",
            currency="CNY",
            principal=2_400_000,
            annual_rate=0,
            penalty_rate=0,
            term=12,
            start_date=date(2026, 6, 8),
            method="equal_principal",
        )
    ).inserted_primary_key[0]
    # ¥2,000 a month from 8 July, nothing paid: on 21 September three instalments (¥6,000) are 75 days overdue.
    conn.execute(
        insert(t.instalment),
        [
            {"loan_key": loan, "seq": k, "due_date": date(2026 + (5 + k) // 12, (5 + k) % 12 + 1, 8),
             "principal": 200_000, "interest": 0, "fee": 0}
            for k in range(1, 13)
        ],
    )  # fmt: skip
    conn.execute(
        insert(t.delinquency_snapshot).values(
            as_of=as_of,
            loan_key=loan,
            days_past_due=days_past_due,
            bucket=bucket,
            transition="stay",
            overdue_total=overdue,
            outstanding_total=overdue + 400_000,
        )
    )
    action = conn.execute(
        insert(t.proposed_action).values(
            idempotency_key=f"{as_of}:L{n:04d}:door_visit_candidate",
            as_of=as_of,
            loan_key=loan,
            segment="standard",
            ladder="standard",
            step="door_visit_candidate",
            action="door_visit_candidate",
            channel="visit",
            template="visit.agree_a_way_out",
            priority=10,
            arm="champion",
            reason="68-120 days past due, overdue at least 5000.00",
            compliance_status="blocked",
            compliance_reason="missing visit facts",
            compliance_rules=DEFERRED,
            rulebook_version=RULES.version,
        )
    ).inserted_primary_key[0]
    record_contacts(
        conn,
        [
            ContactEvent(f"call:{n}:{i}", b, now - timedelta(days=6 - i), "call", "no_answer", loan_key=loan)
            for i in range(failed_calls)
        ],
        now,
    )
    return Book(int(b), int(loan), int(action), int(address))


def write_staff(tmp: Path, text: str = STAFF_CSV) -> Path:
    path = tmp / "staff.csv"
    path.write_text(text, encoding="utf-8")
    return path


def one_debtor(engine: Engine, cipher: FieldCipher) -> Book:
    with engine.begin() as conn:
        return add_debtor(conn, cipher, 1)


BJ = ZoneInfo("Asia/Shanghai")
DELIVERED = datetime(2026, 9, 24, 10, 0, tzinfo=BJ)
VISIT_DAY = datetime(2026, 10, 8, 10, 0, tzinfo=BJ)  # a Thursday after National Day, inside the window


def _writer(tmp: Path) -> NoticeWriter:
    """The real notice writer (services/letters.py), as the CLI and the API use it."""
    return Letters(
        FieldCipher.from_key_file(tmp / "data.key"),
        CodeSigner(b"k" * 32),
        MESSAGES,
        STRATEGY,
        "http://127.0.0.1:8000",
        tmp / "data" / "letters",
        RENDERER,
        (POLICY.day_start, POLICY.day_end),
    ).write_pre_visit_notice


def _planned(engine: Engine, d: VisitDeps, tmp: Path) -> str:
    with engine.begin() as conn:
        import_staff(conn, d.cipher, write_staff(tmp), PLAN_AT, "hr", "test")
        planned = plan_visits_from_actions(conn, d, visit_actions(conn, RULES, AS_OF), PLAN_AT)
    assert len(planned.planned) == 1
    return planned.planned[0]


def _delivered(engine: Engine, tmp: Path, delivered: datetime = DELIVERED) -> tuple[VisitDeps, str]:
    d = deps(tmp)
    one_debtor(engine, d.cipher)
    visit_id = _planned(engine, d, tmp)
    with engine.begin() as conn:
        issue_notice(conn, d, visit_id, ["S001", "S002", "S003"], PLAN_AT, _writer(tmp))
    with engine.begin() as conn:
        record_delivery(conn, visit_id, delivered, "registered_post", delivered + timedelta(hours=1))
    return d, visit_id


def _schedule(engine: Engine, d: VisitDeps, visit_id: str, team: list[str], start: datetime) -> datetime:
    with engine.begin() as conn:
        return schedule(conn, d, visit_id, team, start, start - timedelta(days=1))


def _status(engine: Engine, visit_id: str) -> str:
    with engine.connect() as conn:
        return str(conn.execute(select(t.visit.c.status).where(t.visit.c.visit_id == visit_id)).scalar_one())


def _actions(engine: Engine, visit_id: str) -> list[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(t.audit_entry.c.action).where(t.audit_entry.c.entity_id == visit_id).order_by(t.audit_entry.c.seq)
        )
        return [r.action for r in rows]


# --- staff ------------------------------------------------------------------------------------------------


def test_staff_import_keeps_good_rows_reports_bad_ones_and_updates_known_staff(engine: Engine, tmp_path: Path) -> None:
    d = deps(tmp_path)
    bad = STAFF_CSV + (
        "S004,,BJ-FV-0004,CN-BJ,true,field_visit,2026-01-01,2027-01-01\n"  # no name
        "S005,周敏,BJ-FV-0001,CN-BJ,true,field_visit,2026-01-01,2027-01-01\n"  # S001's badge
        "S006,孙丽,BJ-FV-0006,Beijing,yes,driving,2026-13-01,2025-01-01\n"  # everything wrong
    )
    with engine.begin() as conn:
        report = import_staff(conn, d.cipher, write_staff(tmp_path, bad), PLAN_AT, "hr", "test")
    assert report.staff == 2 and report.accepted == 2  # S001 and S005 share a badge: both rows refused
    found = {(e.row, e.field) for e in report.errors}
    assert (4, "name") in found and {(1, "badge"), (5, "badge")} <= found
    assert {(6, "region"), (6, "active"), (6, "certification"), (6, "issued_on")} <= found
    assert all(e.file == "staff.csv" for e in report.errors)
    renamed = STAFF_CSV.replace("王秀英", "王秀兰").replace(
        "S002,王秀兰,BJ-FV-0002,CN-BJ,true", "S002,王秀兰,BJ-FV-0002,CN-BJ,false"
    )
    with engine.begin() as conn:
        again = import_staff(conn, d.cipher, write_staff(tmp_path, renamed), PLAN_AT, "hr", "test")
        staff = {s.staff_id: s for s in list_staff(conn, d.cipher, date(2026, 10, 8))}
        stored = conn.execute(select(t.staff.c.name_enc).where(t.staff.c.staff_id == "S002")).scalar_one()
        certs = conn.execute(select(func.count()).select_from(t.staff_certification)).scalar_one()
    assert again.errors == () and set(staff) == {"S001", "S002", "S003"}
    assert staff["S002"].name == "王秀兰" and not staff["S002"].active
    assert "王秀".encode() not in stored  # names are stored encrypted
    assert staff["S003"].certified_until == date(2026, 10, 5)
    assert certs == 3  # importing the same certifications again adds none


# --- eligibility ------------------------------------------------------------------------------------------


def test_eligibility_explains_each_candidate_and_plans_only_the_eligible(engine: Engine, tmp_path: Path) -> None:
    d = deps(tmp_path)
    with engine.begin() as conn:
        books = {
            "worth": add_debtor(conn, d.cipher, 1),
            "small": add_debtor(conn, d.cipher, 2, overdue=150_000),  # ¥1,500: 20% is less than the visit costs
            "early": add_debtor(conn, d.cipher, 3, days_past_due=45, bucket="M2"),
            "reachable": add_debtor(conn, d.cipher, 4, failed_calls=1),
            "elderly": add_debtor(conn, d.cipher, 5, birth=date(1950, 1, 2)),
            "disabled": add_debtor(conn, d.cipher, 6, flags="disabled"),
            "far": add_debtor(conn, d.cipher, 7, latitude=41.5, longitude=118.9),
            "held": add_debtor(conn, d.cipher, 8),
        }
        conn.execute(
            insert(t.hold).values(
                hold_id="H1",
                borrower_key=books["held"].borrower_key,
                kind="dispute",
                start_date=AS_OF,
                pauses_clock=True,
                pauses_outreach=True,
            )
        )
        approve_vulnerable(conn, "B0006", "supervisor:liu", "家属陪同, 同意上门", date(2026, 12, 31), PLAN_AT, "test")
        planned = plan_visits_from_actions(conn, d, visit_actions(conn, RULES, AS_OF), PLAN_AT)
    by_action = {r["action_key"]: r for r in planned.verdicts.to_dicts()}
    reasons = {name: " | ".join(by_action[b.action_key]["reasons"]) for name, b in books.items()}
    assert reasons["worth"] == "" and reasons["disabled"] == ""  # approved by a supervisor
    assert "does not exceed the visit's cost" in reasons["small"]
    assert reasons["early"].startswith("HOUSE.VISIT.LAST_RESORT: 45 days past due, fewer than 60")
    assert "HOUSE.VISIT.LAST_RESORT: 1 failed attempts" in reasons["reachable"]
    assert reasons["elderly"].startswith("HOUSE.VULNERABLE:")
    assert "beyond 60 km" in reasons["far"]
    assert "on hold (dispute)" in reasons["held"]
    worth = by_action[books["worth"].action_key]
    assert worth["office_id"] == "BJ-01" and worth["expected_recovery"] == 120_000  # 20% of ¥6,000 (M3)
    assert worth["cost"] == 36_000 + (2 * 150 * worth["distance_m"] + 500) // 1000
    assert len(planned.planned) == 2
    with engine.begin() as conn:  # planning again is idempotent
        again = plan_visits_from_actions(conn, d, visit_actions(conn, RULES, AS_OF), PLAN_AT)
        audited = conn.execute(select(t.audit_entry.c.action, func.count()).group_by(t.audit_entry.c.action)).all()
    assert again.planned == () and sorted(again.already) == sorted(planned.planned)
    counts = dict((a, n) for a, n in audited)
    assert counts["visit.planned"] == 2 and counts["visit.vulnerable_approved"] == 1
    assert counts["visit.not_planned"] >= 6


# --- scheduling refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "team", "start", "delivered", "rule"),
    [
        (
            "lead time one day short",
            ["S001", "S002"],
            VISIT_DAY,
            datetime(2026, 10, 2, 10, 0, tzinfo=BJ),
            "HOUSE.VISIT.NOTICE",
        ),
        ("one person", ["S001"], VISIT_DAY, DELIVERED, "CN.VISIT.STAFF"),
        ("expired certificate", ["S001", "S003"], VISIT_DAY, DELIVERED, "HOUSE.VISIT.CERTIFIED"),
        ("statutory holiday", ["S001", "S002"], datetime(2026, 10, 5, 10, 0, tzinfo=BJ), DELIVERED, "HOUSE.HOLIDAYS"),
        ("outside daytime", ["S001", "S002"], datetime(2026, 10, 8, 21, 30, tzinfo=BJ), DELIVERED, "HOUSE.HOURS"),
    ],
)
def test_scheduling_is_refused_with_the_rule_that_forbids_it(
    engine: Engine, tmp_path: Path, case: str, team: list[str], start: datetime, delivered: datetime, rule: str
) -> None:
    d, visit_id = _delivered(engine, tmp_path, delivered)
    with pytest.raises(VisitRefused) as refused:
        _schedule(engine, d, visit_id, team, start)
    cited = [r for r in refused.value.reasons if r.startswith(f"{rule} (")]
    assert cited, f"{case}: {refused.value.reasons}"
    assert "DueCourse example lender" in cited[0] or "中国银行业协会" in cited[0]  # the source is named
    assert _status(engine, visit_id) == "notice_delivered"
    # The same team at a lawful slot is accepted once the fault is gone.
    fine = datetime(2026, 10, 9, 10, 0, tzinfo=BJ) if case == "lead time one day short" else VISIT_DAY
    _schedule(engine, d, visit_id, ["S001", "S002"], fine)
    assert _status(engine, visit_id) == "scheduled"


def test_a_make_up_working_day_is_a_working_day_and_a_sunday_is_not(engine: Engine, tmp_path: Path) -> None:
    d, visit_id = _delivered(engine, tmp_path)
    with pytest.raises(VisitRefused, match="2026-10-11 is not a working day"):
        _schedule(engine, d, visit_id, ["S001", "S002"], datetime(2026, 10, 11, 10, 0, tzinfo=BJ))
    end = _schedule(engine, d, visit_id, ["S001", "S002"], datetime(2026, 10, 10, 10, 0, tzinfo=BJ))  # 调休上班
    assert end == datetime(2026, 10, 10, 11, 0, tzinfo=BJ)


def test_only_staff_named_on_the_notice_may_come(engine: Engine, tmp_path: Path) -> None:
    d = deps(tmp_path)
    one_debtor(engine, d.cipher)
    visit_id = _planned(engine, d, tmp_path)
    with engine.begin() as conn, pytest.raises(VisitRefused, match=r"CN\.VISIT\.STAFF: 1 collector"):
        issue_notice(conn, d, visit_id, ["S001"], PLAN_AT, _writer(tmp_path))
    with engine.begin() as conn:
        issue_notice(conn, d, visit_id, ["S001", "S003"], PLAN_AT, _writer(tmp_path))
        record_delivery(conn, visit_id, DELIVERED, "courier", DELIVERED + timedelta(hours=1))
    with pytest.raises(VisitRefused, match="S002 not named on the notice"):
        _schedule(engine, d, visit_id, ["S001", "S002"], VISIT_DAY)


def test_steps_out_of_order_are_refused(engine: Engine, tmp_path: Path) -> None:
    d = deps(tmp_path)
    one_debtor(engine, d.cipher)
    visit_id = _planned(engine, d, tmp_path)
    with pytest.raises(VisitRefused, match="the visit is planned; this step needs it to be notice_delivered"):
        _schedule(engine, d, visit_id, ["S001", "S002"], VISIT_DAY)
    with engine.begin() as conn, pytest.raises(VisitRefused, match="needs it to be scheduled"):
        check_in(
            conn, d, visit_id, VISIT_DAY, 39.939, 116.4335, identification_shown=True, recording=True, now=VISIT_DAY
        )


# --- the whole visit --------------------------------------------------------------------------------------------


def test_a_visit_from_the_cycle_action_to_its_outcome(engine: Engine, tmp_path: Path) -> None:
    d, visit_id = _delivered(engine, tmp_path)
    (pdf,) = (tmp_path / "data" / "letters").rglob("*.pdf")
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, check=True, text=True).stdout
    flat = "".join(text.split())
    assert all(part in flat for part in ("李建国", "BJ-FV-0001", "王秀英", "BJ-FV-0002", "赵志强", "BJ-FV-0003"))
    assert "2026年10月1日" in flat and "2026年10月14日" in flat  # the announced window
    with engine.connect() as conn:
        assert [n for n, _ in visit_team_for_reference(conn, d.cipher, f"visit:{visit_id}")] == [
            "李建国",
            "王秀英",
            "赵志强",
        ]
        assert visit_team_for_reference(conn, d.cipher, "visit:V-0000-000000") == []
        assert visit_team_for_reference(conn, d.cipher, "action:1") == []
        code_ref = conn.execute(select(t.verification_code.c.reference, t.verification_code.c.expires_at)).one()
    assert code_ref.reference == f"visit:{visit_id}"
    _schedule(engine, d, visit_id, ["S001", "S002"], VISIT_DAY)
    arrived = VISIT_DAY + timedelta(minutes=5)
    with engine.begin() as conn, pytest.raises(VisitRefused, match=r"CN\.VISIT\.RECORDING"):
        check_in(conn, d, visit_id, arrived, 39.9391, 116.4336, identification_shown=True, recording=False, now=arrived)
    with engine.begin() as conn:
        away = check_in(
            conn, d, visit_id, arrived, 39.9391, 116.4336, identification_shown=True, recording=True, now=arrived
        )
    assert 0 < away < 50
    recording = b"\x00\x00\x00\x18ftypmp42 body-camera recording"
    with engine.begin() as conn:
        first = add_evidence(conn, d, visit_id, recording, "video/mp4", arrived)
        again = add_evidence(conn, d, visit_id, recording, "video/mp4", arrived)
        photo = add_evidence(conn, d, visit_id, b"\xff\xd8\xff door photo", "image/jpeg", arrived)
    sha = hashlib.sha256(recording).hexdigest()
    assert first == (sha, True) and again == (sha, False) and photo[1]
    stored = d.data_dir / "evidence" / sha[:2] / sha
    assert stored.read_bytes() == recording
    left = VISIT_DAY + timedelta(minutes=40)
    with engine.begin() as conn:
        check_out(conn, visit_id, left, 39.9391, 116.4336, left)
    report = OutcomeReport(
        met_debtor=True,
        promise_amount=300_000,
        promise_date=date(2026, 10, 20),
        third_party_present=True,
        third_party_note="债务人的母亲在场",
    )
    with engine.begin() as conn, pytest.raises(VisitRefused, match="must not carry debt details"):
        report_outcome(conn, d, visit_id, report, left)
    with (
        engine.begin() as conn,
        pytest.raises(VisitRefused, match=r"CN\.THIRDPARTY\.NODISCLOSE: nothing about the debt"),
    ):
        report_outcome(conn, d, visit_id, replace(report, third_party_note=None, disclosed_to_third_party=True), left)
    with engine.begin() as conn:
        outcome = report_outcome(
            conn,
            d,
            visit_id,
            replace(report, third_party_note="母亲在场 (mother present)"),
            left,
        )
    assert outcome["disclosed_to_third_party"] is False and outcome["detail"] == "promise_to_pay"
    with engine.connect() as conn:
        event = conn.execute(
            select(t.contact_event).where(t.contact_event.c.event_id == f"visit:{visit_id}:outcome")
        ).one()
        promise = conn.execute(select(t.promise_to_pay)).one()
        evidence = conn.execute(select(t.visit_evidence.c.sha256, t.visit_evidence.c.size)).all()
        shown = show(conn, d.cipher, visit_id)
        checked, broken = verify(conn)
    assert (event.channel, event.outcome, event.counterpart) == ("visit", "conversation", "debtor")
    assert event.details["promise"] == {"amount": 300_000, "currency": "CNY", "date": "2026-10-20"}
    assert (promise.amount, promise.due_date, promise.channel, promise.state) == (
        300_000,
        date(2026, 10, 20),
        "visit",
        "open",
    )
    assert sorted(evidence) == sorted([(sha, len(recording)), (photo[0], len(b"\xff\xd8\xff door photo"))])
    assert shown["status"] == "reported" and [m["badge"] for m in shown["team"]] == ["BJ-FV-0001", "BJ-FV-0002"]
    assert _actions(engine, visit_id) == [
        "visit.planned",
        "visit.notice_issued",
        "visit.notice_delivered",
        "visit.scheduled",
        "visit.checked_in",
        "visit.evidence_added",
        "visit.evidence_added",
        "visit.checked_out",
        "visit.reported",
    ]
    assert broken is None and checked >= 10


# --- routes ----------------------------------------------------------------------------------------------------


def test_a_team_day_is_one_round_trip_through_every_scheduled_visit(engine: Engine, tmp_path: Path) -> None:
    d = deps(tmp_path)
    spots = [(39.9390, 116.4335), (39.9900, 116.4800), (39.9100, 116.3900), (39.9600, 116.3500)]
    with engine.begin() as conn:
        for n, (lat, lon) in enumerate(spots, start=1):
            add_debtor(conn, d.cipher, n, latitude=lat, longitude=lon)
        import_staff(conn, d.cipher, write_staff(tmp_path), PLAN_AT, "hr", "test")
        planned = plan_visits_from_actions(conn, d, visit_actions(conn, RULES, AS_OF), PLAN_AT).planned
    assert len(planned) == 4
    with engine.connect() as conn:
        groups = planned_groups(conn, d)
    assert [sorted(s.key for s in r.stops) for _, r in groups] == [sorted(planned)]
    for i, visit_id in enumerate(planned):
        with engine.begin() as conn:
            issue_notice(conn, d, visit_id, ["S001", "S002"], PLAN_AT, _writer(tmp_path))
            record_delivery(conn, visit_id, DELIVERED, "registered_post", DELIVERED + timedelta(hours=1))
        _schedule(engine, d, visit_id, ["S001", "S002"], VISIT_DAY + timedelta(hours=i + 1))
    with engine.begin() as conn, pytest.raises(VisitRefused, match="S001 is on visit"):
        schedule(conn, d, planned[0], ["S001", "S002"], VISIT_DAY + timedelta(hours=2, minutes=30), PLAN_AT)
    with engine.connect() as conn:
        day = routes(conn, d, VISIT_DAY.date(), BJ)
    assert len(day) == 1 and day[0].team == ("S001", "S002") and day[0].office.office_id == "BJ-01"
    route = day[0].route
    assert sorted(s.key for s in route.stops) == sorted(planned)
    assert len(route.legs_m) == 5 and route.total_m == sum(route.legs_m) > 0


def test_a_broken_promise_counts_as_remote_contact_failing_and_a_kept_one_does_not(
    engine: Engine, tmp_path: Path
) -> None:
    d = deps(tmp_path)
    with engine.begin() as conn:
        broken, kept = (add_debtor(conn, d.cipher, n, failed_calls=0) for n in (1, 2))
        for n, book in enumerate((broken, kept), start=1):
            conn.execute(
                insert(t.promise_to_pay).values(
                    promise_id=f"P{n}",
                    borrower_key=book.borrower_key,
                    loan_key=book.loan_key,
                    amount=200_000,
                    currency="CNY",
                    due_date=AS_OF - timedelta(days=5),
                    channel="call",
                    taken_by="agent:7",
                    taken_at=PLAN_AT - timedelta(days=12),
                    state="open",
                    event_id=f"call:{n}:promise",
                )
            )
        conn.execute(
            insert(t.payment).values(
                payment_id="PAY1",
                loan_key=kept.loan_key,
                value_date=AS_OF - timedelta(days=6),
                amount=200_000,
                booked_at=PLAN_AT - timedelta(days=6),
            )
        )
        verdicts = {
            r["action_key"]: r
            for r in plan_visits_from_actions(conn, d, visit_actions(conn, RULES, AS_OF), PLAN_AT).verdicts.to_dicts()
        }
    assert verdicts[broken.action_key]["broken_promises"] == 1 and verdicts[broken.action_key]["eligible"]
    assert verdicts[kept.action_key]["broken_promises"] == 0 and not verdicts[kept.action_key]["eligible"]
