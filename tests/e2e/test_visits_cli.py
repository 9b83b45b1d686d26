"""`duecourse visits …` in a subprocess on today's clock: the example staff file, a cycle visit action judged,
planned and noticed (a real PDF), the delivery recorded, a one-person visit too soon refused with its rules,
and the audit chain verifying afterwards."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from duecourse.adapters.crypto import FieldCipher
from duecourse.adapters.db.engine import make_engine
from duecourse.adapters.db.migrate import upgrade
from tests.e2e.conftest import Cli
from tests.integration.test_visits import add_debtor

ROOT = Path(__file__).resolve().parents[2]
BJ = ZoneInfo("Asia/Shanghai")


def test_a_visit_is_planned_noticed_and_refused_from_the_command_line(cli: Cli) -> None:
    cli.home.mkdir(parents=True)
    engine = make_engine(f"sqlite:///{cli.db}")
    upgrade(engine)
    now = datetime.now(UTC)
    today = now.astimezone(BJ).date()
    with engine.begin() as conn:
        add_debtor(conn, FieldCipher.from_key_file(cli.home / "data.key"), 1, as_of=today, now=now)
    engine.dispose()

    imported = cli("visits", "staff", "import", str(ROOT / "examples" / "staff.csv"))
    assert "12 row(s) accepted for 11 staff; 0 problem(s)" in imported.stdout
    listed = cli("visits", "staff", "list", "--on", today.isoformat()).stdout
    assert "李建国" in listed and "BJ-FV-0001" in listed
    judged = cli("visits", "candidates", "--as-of", today.isoformat()).stdout
    assert "yes" in judged and "75 M3" in judged and "6000.00" in judged
    planned = cli("visits", "plan", "--as-of", today.isoformat()).stdout
    visit_id = f"V-{now.year}-000001"
    assert f"planned 1: {visit_id}" in planned

    noticed = cli("visits", "notice", visit_id, "--staff", "S001", "--staff", "S002").stdout
    pdf = Path(noticed.split("notice: ")[1].split()[0])
    assert pdf.read_bytes().startswith(b"%PDF") and "code: " in noticed
    delivered = datetime.now(UTC)
    cli("visits", "deliver", visit_id, "--at", delivered.isoformat(), "--method", "courier")

    too_soon = (delivered.astimezone(BJ) + timedelta(days=3)).replace(hour=10, minute=0, second=0, microsecond=0)
    refused = cli("visits", "schedule", visit_id, "--staff", "S001", "--start", too_soon.isoformat(), expect=1)
    assert "CN.VISIT.STAFF (" in refused.stderr and "HOUSE.VISIT.NOTICE (" in refused.stderr
    assert "status: notice_delivered" in cli("visits", "show", visit_id).stdout
    assert cli("audit", "verify").returncode == 0
