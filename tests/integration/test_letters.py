"""Letters from a small imported book, on both backends: names and addresses decrypted onto the page, amounts by
component equal to `loan show`'s ledger on the debtor's own day, codes stored as digests, every letter audited
with its SHA-256, and a rolled-back transaction leaves no batch behind."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import textwrap
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, insert, select

from duecourse.adapters.channels.letters import LetterRenderer
from duecourse.adapters.crypto import FieldCipher
from duecourse.adapters.db import tables as t
from duecourse.audit.log import entries, verify
from duecourse.domain.money import format_money, to_minor
from duecourse.domain.verification import CodeSigner, canonical, digest
from duecourse.services.importer import import_book
from duecourse.services.letters import Letters
from duecourse.services.messages import MessageCatalogue
from duecourse.services.reports import loan_state
from duecourse.services.verification import CodeRequest, issue
from duecourse.services.visits import NoticeFacts
from duecourse.strategy import load_strategy
from tests.unit.letters.pdf_tools import FONT_CACHE, pdf_fonts, pdf_pages, pdf_text, qr_codes

ROOT = Path(__file__).resolve().parents[2]
STRATEGY = load_strategy(ROOT / "strategies" / "default.yaml")
MESSAGES = MessageCatalogue.load(ROOT / "templates" / "messages.yaml")
PUBLIC_URL = "https://duecourse.example.cn"
# 20:00 UTC on 31 March: already 1 April in Beijing, still 31 March in London — each debtor's own day counts.
NOW = datetime(2026, 3, 31, 20, 0, tzinfo=UTC)
IMPORTED = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)

# Three monthly instalments of 1,000.00 principal (interest 30.00, 20.00, 10.00; a 5.00 fee with the second),
# due 15 Feb, 15 Mar, 15 Apr 2026; penalty 18.25 % a year on actual/365 = exactly 0.50 a day per 1,000.00.
BOOK = {
    "products.yaml": """
        products:
          HC:
            currency: CNY
            description: hand-checked, default conventions
            conventions: {}
        """,
    "borrowers.csv": """
        borrower_id,name,national_id,birth_date,language,flags,region
        LB1,欧阳娜娜,110101198503120316,1985-03-12,zh-CN,,CN-BJ
        LB2,Olivia Grant,110101199001010011,1990-01-01,en-GB,,CN-BJ
        LB3,司马光,110101197001010015,1970-01-01,zh-CN,,CN-BJ
        """,
    "loans.csv": """
        loan_id,borrower_id,product,currency,principal,annual_rate,penalty_rate,term,start_date,method
        L1-unpaid,LB1,HC,CNY,3000.00,0.12,0.1825,3,2026-01-15,equal_principal
        L2-partial,LB2,HC,CNY,3000.00,0.12,0.1825,3,2026-01-15,equal_principal
        L3-no-address,LB3,HC,CNY,3000.00,0.12,0.1825,3,2026-01-15,equal_principal
        """,
    "instalments.csv": "loan_id,seq,due_date,principal,interest,fee\n"
    + "".join(
        f"{loan},1,2026-02-15,1000.00,30.00,0.00\n{loan},2,2026-03-15,1000.00,20.00,5.00\n"
        f"{loan},3,2026-04-15,1000.00,10.00,0.00\n"
        for loan in ("L1-unpaid", "L2-partial", "L3-no-address")
    ),
    "payments.csv": """
        payment_id,loan_id,value_date,amount,reverses_payment_id,booked_at
        P1,L2-partial,2026-02-15,500.00,,2026-02-15T10:00:00+08:00
        """,
    "contact_points.csv": """
        contact_id,borrower_id,kind,owner,value,latitude,longitude,time_zone,valid,consent
        C1,LB1,address,borrower,北京市朝阳区建国路 88 号 3 单元 501 室,39.90,116.46,Asia/Shanghai,true,true
        C2,LB1,address,employer,北京市海淀区中关村大街 1 号,39.98,116.31,Asia/Shanghai,true,true
        C3,LB2,address,borrower,Flat 2 / 10 Downing Lane / London SW1A 2AA,51.50,-0.12,Europe/London,true,true
        C4,LB3,address,borrower,北京市西城区金融街 1 号,39.91,116.36,Asia/Shanghai,false,true
        C5,LB3,phone,borrower,+8613800138001,,,Asia/Shanghai,true,true
        """,
}


@pytest.fixture
def book(engine: Engine, tmp_path: Path) -> tuple[Engine, FieldCipher]:
    folder = tmp_path / "book"
    folder.mkdir()
    for name, text in BOOK.items():
        (folder / name).write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    cipher = FieldCipher.from_key_file(tmp_path / "key")
    report = import_book(engine, folder, tmp_path / "rejects", cipher, "test", IMPORTED)
    assert report.rejected == 0
    return engine, cipher


@pytest.fixture
def letters(book: tuple[Engine, FieldCipher], tmp_path: Path) -> Letters:
    return Letters(
        cipher=book[1],
        signer=CodeSigner(os.urandom(32)),
        messages=MESSAGES,
        strategy=STRATEGY,
        public_url=PUBLIC_URL,
        letters_dir=tmp_path / "letters",
        renderer=LetterRenderer(ROOT / "templates" / "letters", font_cache=FONT_CACHE),
        visit_hours=(time(9, 0), time(18, 0)),
    )


def _propose(engine: Engine, loan_id: str, channel: str = "letter", template: str = "letter.written_notice") -> int:
    """An allowed outbox row as the daily cycle would have written it."""
    with engine.begin() as conn:
        loan_key = conn.execute(select(t.loan.c.loan_key).where(t.loan.c.loan_id == loan_id)).scalar_one()
        return int(
            conn.execute(
                insert(t.proposed_action)
                .values(
                    idempotency_key=f"2026-03-31:{loan_id}:{template}",
                    as_of=date(2026, 3, 31),
                    loan_key=loan_key,
                    segment="standard",
                    ladder="standard",
                    step="written_notice",
                    action="written_notice",
                    channel=channel,
                    template=template,
                    priority=25,
                    arm="champion",
                    reason="days past due 45 >= 46",
                    compliance_status="allowed",
                    compliance_reason="allowed",
                )
                .returning(t.proposed_action.c.action_key)
            ).scalar_one()
        )


def _flat(text: str) -> str:
    return "".join(text.split())


def test_written_notices_print_the_ledger_amounts_to_the_debtor_address_with_a_stored_code(
    book: tuple[Engine, FieldCipher], letters: Letters, tmp_path: Path
) -> None:
    engine, _ = book
    keys = {loan: _propose(engine, loan) for loan in ("L1-unpaid", "L2-partial", "L3-no-address")}
    sms = _propose(engine, "L1-unpaid", channel="sms", template="sms.overdue_amount_and_date")
    with engine.begin() as conn:
        result = letters.print_written_notices(conn, [*keys.values(), sms], NOW)

    assert result.skipped == {
        keys["L3-no-address"]: "no valid postal address of the borrower",
        sms: "not a letter step: sms sms.overdue_amount_and_date",
    }
    assert set(result.printed) == {keys["L1-unpaid"], keys["L2-partial"]}
    assert result.batch is not None
    folder = result.batch.path
    assert folder.parent == tmp_path / "letters"

    # Beijing's day is 1 April, London's 31 March: the amounts are the ledger's on each debtor's own day.
    expected = {
        "L1-unpaid": (date(2026, 4, 1), "zh", "欧阳娜娜", "北京市朝阳区建国路88号3单元501室"),
        "L2-partial": (date(2026, 3, 31), "en", "Olivia Grant", "Flat2/10DowningLane/LondonSW1A2AA"),
    }
    rows = {
        r["letter_id"]: r for r in csv.DictReader((folder / "manifest.csv").read_text(encoding="utf-8").splitlines())
    }

    def pages_of(loan: str) -> tuple[Path, int, int]:
        """The batch file a loan's letter is printed in, and its first and last page there."""
        row = rows[result.printed[keys[loan]]]
        first = int(row["first_page"])
        return folder / row["file"], first, first + int(row["pages"]) - 1

    for loan, (day, language, name, address) in expected.items():
        pdf, first, last = pages_of(loan)
        flat = _flat(pdf_text(pdf, first, last))
        shown = loan_state(engine, loan, day)  # what `duecourse loan show --as-of` says
        components = [to_minor(shown[c], "CNY") for c in ("due_principal", "due_interest", "due_fee", "due_penalty")]
        for minor in components:
            assert _flat(format_money(minor, "CNY")) in flat, (loan, minor)
        total = sum(components)
        assert _flat(format_money(total, "CNY")) in flat
        assert f"{shown['days_past_due']}天" in flat or f"{shown['days_past_due']}dayspastdue" in flat
        assert name.replace(" ", "") in flat and address in flat
        assert "北京市海淀区中关村大街" not in flat  # the employer's address is never used
        assert _flat(MESSAGES.lender.name[language]) in flat
        assert len(pdf_fonts(pdf)) == 1

        # The printed code is genuine: its digest is stored, tied to the action, the borrower and the loan.
        (url,) = qr_codes(pdf, tmp_path, first, last)
        assert url.startswith(f"{PUBLIC_URL}/verify?code=")
        code = canonical(url.rsplit("=", 1)[1])
        assert code is not None and code in flat.replace("-", "")
        with engine.connect() as conn:
            stored = conn.execute(
                select(t.verification_code).where(t.verification_code.c.code_digest == digest(code))
            ).one()
        assert (stored.purpose, stored.channel, stored.action_key) == ("message", "letter", keys[loan])
        issued, expires = (x if x.tzinfo else x.replace(tzinfo=UTC) for x in (stored.issued_at, stored.expires_at))
        assert (issued, expires - issued) == (NOW, timedelta(days=60))
        assert stored.lender == MESSAGES.lender.name[language]

    # Hand-checked: L1 owes 2,000.00 + 50.00 + 5.00 + penalty 45 x 0.50 + 17 x 0.50 = 31.00 on 1 April.
    l1 = _flat(pdf_text(*pages_of("L1-unpaid")))
    for amount in ("2,000.00 CNY", "50.00 CNY", "5.00 CNY", "31.00 CNY", "2,086.00 CNY", "2026年2月15日"):
        assert _flat(amount) in l1, amount
    # L2 paid 500.00 on 15 Feb: interest 30.00 first, 530.00 principal left at 0.265 -> 0.27 a day.
    l2 = _flat(pdf_text(*pages_of("L2-partial")))
    assert "1,530.00CNY" in l2 and "20.00CNY" in l2

    # The manifest lists both letters with the digest of the file they are in and of their own HTML, and no name.
    assert {r["debtor_ref"] for r in rows.values()} == {"LB1", "LB2"}
    for row in rows.values():
        assert row["file_sha256"] == hashlib.sha256((folder / row["file"]).read_bytes()).hexdigest()
    assert len({r["html_sha256"] for r in rows.values()}) == 2
    assert "欧阳娜娜" not in (folder / "manifest.json").read_text(encoding="utf-8")

    # Every letter audited with its SHA-256, every skip audited with its reason; the chain verifies.
    with engine.connect() as conn:
        audit = [e for e in entries(conn) if e["action"].startswith("letter.")]
        checked, broken = verify(conn)
    printed = {e["entity_id"]: json.loads(e["payload"]) for e in audit if e["action"] == "letter.printed"}
    where = ("file", "first_page", "pages", "html_sha256", "file_sha256")
    assert {k: tuple(str(p[w]) for w in where) for k, p in printed.items()} == {
        k: tuple(r[w] for w in where) for k, r in rows.items()
    }
    assert sorted(e["entity_id"] for e in audit if e["action"] == "letter.not_printed") == sorted(
        [str(keys["L3-no-address"]), str(sms)]
    )
    assert broken is None and checked > 0
    for e in audit:
        assert "欧阳娜娜" not in e["payload"] and "建国路" not in e["payload"]


def test_a_rolled_back_transaction_leaves_no_batch_and_no_code(
    book: tuple[Engine, FieldCipher], letters: Letters, tmp_path: Path
) -> None:
    engine, _ = book
    key = _propose(engine, "L1-unpaid")
    with engine.connect() as conn:
        with conn.begin() as tx:
            result = letters.print_written_notices(conn, [key], NOW)
            assert result.batch is not None and result.batch.path.exists()
            tx.rollback()
        assert not result.batch.path.exists()
        with conn.begin():
            assert conn.execute(select(func.count()).select_from(t.verification_code)).scalar_one() == 0
        # The same connection commits a later batch, which stays.
        with conn.begin():
            kept = letters.print_written_notices(conn, [key], NOW + timedelta(seconds=1))
        assert kept.batch is not None and kept.batch.path.exists()
        with conn.begin() as tx:
            conn.execute(select(1))
            tx.rollback()  # a later rollback on the same connection must not touch the committed batch
        assert kept.batch.path.exists()
    assert sorted(p.name for p in (tmp_path / "letters").iterdir()) == [kept.batch.batch_id]


def test_unknown_actions_are_refused(book: tuple[Engine, FieldCipher], letters: Letters) -> None:
    engine, _ = book
    with engine.begin() as conn, pytest.raises(ValueError, match="no proposed action"):
        letters.print_written_notices(conn, [987654], NOW)


def test_the_pre_visit_notice_prints_the_team_the_window_and_the_visit_code(
    book: tuple[Engine, FieldCipher], letters: Letters, tmp_path: Path
) -> None:
    engine, _ = book
    key = _propose(engine, "L1-unpaid", template="letter.pre_visit_notice")
    with engine.begin() as conn:
        loan_key, borrower_key = conn.execute(
            select(t.loan.c.loan_key, t.loan.c.borrower_key).where(t.loan.c.loan_id == "L1-unpaid")
        ).one()
        code = issue(
            conn,
            letters.signer,
            CodeRequest(
                "notice", "letter", borrower_key, "示例", loan_key=loan_key, action_key=key, reference="visit:V-7"
            ),
            NOW,
        )
        facts = NoticeFacts(
            "V-7",
            key,
            borrower_key,
            loan_key,
            date(2026, 4, 20),
            date(2026, 4, 24),
            (("司马光明", "FA-1021"), ("诸葛亮", "FA-1077")),
            ("contact_failed", "promises_broken"),
        )
        pdf = letters.write_pre_visit_notice(conn, facts, code, NOW)
    text = _flat(pdf_text(pdf))
    for expected in (
        "上门拜访前书面通知",
        "欧阳娜娜",
        "2026年4月20日至2026年4月24日之间的工作日，每日09:00至18:00",
        "司马光明",
        "FA-1021",
        "诸葛亮",
        "FA-1077",
        "2,086.00CNY",
        "拒绝来访人员进入住所",
    ):
        assert expected in text, expected
    assert qr_codes(pdf, tmp_path) == [f"{PUBLIC_URL}/verify?code={'-'.join(code[i : i + 4] for i in (0, 4, 8, 12))}"]
    manifest = json.loads((pdf.parent / "manifest.json").read_text(encoding="utf-8"))
    assert [(r["kind"], r["visit_id"], r["action_key"]) for r in manifest["letters"]] == [
        ("pre_visit_notice", "V-7", key)
    ]
    with engine.connect() as conn:
        (entry,) = [e for e in entries(conn) if e["action"] == "letter.printed"]
    payload = json.loads(entry["payload"])
    assert payload["file_sha256"] == hashlib.sha256(pdf.read_bytes()).hexdigest()  # the notice is its file alone
    assert (payload["first_page"], payload["pages"]) == (1, pdf_pages(pdf))
