"""Letters with every printed field filled, in both languages, for the renderer and print-batch tests."""

from __future__ import annotations

from datetime import date, time

from duecourse.adapters.channels.letters import (
    ComingMeasure,
    Debt,
    Debtor,
    LenderIdentity,
    Letter,
    PlannedVisit,
    PreVisitNotice,
    Verification,
    Visitor,
    WrittenNotice,
)

PUBLIC_URL = "https://verify.example.cn"
CODE = "K7QM3XZP9RTAB2CW"
LENDER = {
    "zh": LenderIdentity(
        "示例消费金融有限公司", "上海市浦东新区世纪大道100号", "400-800-1234", "6222 0000 1111 2222", PUBLIC_URL
    ),
    "en": LenderIdentity(
        "Example Consumer Finance Co., Ltd.",
        "100 Century Avenue, Shanghai",
        "400-800-1234",
        "6222 0000 1111 2222",
        PUBLIC_URL,
    ),
}
DEBTOR = {
    "zh": Debtor("B-000042", "欧阳娜娜", "北京市朝阳区建国路88号3单元501室\n100022"),
    "en": Debtor("B-000042", "Ouyang Nana", "Flat 501, Unit 3, 88 Jianguo Road\nChaoyang, Beijing 100022"),
}
# Components chosen so that every fen shows: a carry in the total and a single-fen penalty.
DEBT = Debt(
    "L-2026-0007",
    "CNY",
    principal=1_234_567,
    interest=2_345,
    penalty=1,
    fees=5_087,
    oldest_due_date=date(2026, 2, 13),
    days_past_due=46,
)
VISIT = PlannedVisit(
    "V-2026-000123",
    ("contact_failed", "promises_broken"),
    date(2026, 4, 20),
    date(2026, 4, 24),
    time(9, 0),
    time(17, 30),
    (Visitor("司马光明", "FA-1021"), Visitor("诸葛亮", "FA-1077")),
)


def written(language: str, letter_id: str = "WN-17", code: str = CODE) -> WrittenNotice:
    return WrittenNotice(
        letter_id=letter_id,
        template="letter.written_notice",
        action_key=17,
        language=language,
        issued_on=date(2026, 3, 31),
        lender=LENDER[language],
        debtor=DEBTOR[language],
        debt=DEBT,
        measure=ComingMeasure("door_visit", date(2026, 4, 15)),
        verification=Verification(code, PUBLIC_URL),
    )


def pre_visit(language: str, letter_id: str = "PV-V-2026-000123", code: str = CODE) -> PreVisitNotice:
    return PreVisitNotice(
        letter_id=letter_id,
        language=language,
        issued_on=date(2026, 4, 1),
        lender=LENDER[language],
        debtor=DEBTOR[language],
        debt=DEBT,
        visit=VISIT,
        verification=Verification(code, PUBLIC_URL),
    )


def every_letter() -> list[Letter]:
    return [written("zh"), written("en"), pre_visit("zh"), pre_visit("en")]
