"""Door visits (issue 4, point 5): staff registry, eligibility, the visit lifecycle and routes, over the database."""

from __future__ import annotations

from sqlalchemy import Connection, select

from duecourse.adapters.crypto import FieldCipher
from duecourse.adapters.db import tables as t

REFERENCE_PREFIX = "visit:"


def visit_team_for_reference(conn: Connection, cipher: FieldCipher, reference: str) -> list[tuple[str, str]]:
    """(name, badge) of each member of the team of the visit a verification code refers to ("visit:<visit_id>").

    Empty when the reference is not a visit, the visit is unknown, or no team is scheduled yet.
    """
    if not reference.startswith(REFERENCE_PREFIX):
        return []
    visit_id = reference.removeprefix(REFERENCE_PREFIX)
    rows = conn.execute(
        select(t.staff.c.name_enc, t.staff.c.badge)
        .select_from(
            t.visit.join(t.visit_team, t.visit_team.c.visit_key == t.visit.c.visit_key).join(
                t.staff, t.staff.c.staff_key == t.visit_team.c.staff_key
            )
        )
        .where(t.visit.c.visit_id == visit_id)
        .order_by(t.staff.c.badge)
    ).all()
    return [(cipher.decrypt(r.name_enc, "staff.name_enc"), str(r.badge)) for r in rows]
