"""Letters read back from the PDF as a debtor and a phone camera would: Chinese text, exact amounts, fonts, QR."""

from __future__ import annotations

import dataclasses
from datetime import date, time
from pathlib import Path

import pytest

from duecourse.adapters.channels.letters import (
    ComingMeasure,
    LetterRenderer,
    PlannedVisit,
    long_date,
)
from tests.unit.letters.pdf_tools import FONT_CACHE, pdf_fonts, pdf_text, qr_codes
from tests.unit.letters.samples import DEBT, DEBTOR, LENDER, PUBLIC_URL, VISIT, every_letter, pre_visit, written

TEMPLATES = Path(__file__).resolve().parents[3] / "templates" / "letters"


@pytest.fixture(scope="module")
def renderer() -> LetterRenderer:
    return LetterRenderer(TEMPLATES, font_cache=FONT_CACHE)


@pytest.fixture(scope="module")
def printed(renderer: LetterRenderer, tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    """Each sample letter rendered once, by (kind, language)."""
    folder = tmp_path_factory.mktemp("letters")
    out = {}
    for letter in every_letter():
        path = folder / f"{letter.kind}-{letter.language}.pdf"
        path.write_bytes(renderer.render_pdf(letter))
        out[letter.kind, letter.language] = path
    return out


def _flat(text: str) -> str:
    """pdftotext keeps the layout: join wrapped lines so a sentence can be searched for whole."""
    return "".join(text.split())


AMOUNTS = ["12,345.67 CNY", "23.45 CNY", "0.01 CNY", "50.87 CNY", "12,420.00 CNY"]


@pytest.mark.parametrize("kind", ["written_notice", "pre_visit_notice"])
@pytest.mark.parametrize("language", ["zh", "en"])
def test_the_letter_reads_back_with_lender_debtor_amounts_and_code(printed, kind, language):
    text = pdf_text(printed[kind, language])
    flat = _flat(text)
    lender, debtor = LENDER[language], DEBTOR[language]
    assert _flat(lender.name) in flat
    assert lender.hotline in text and _flat(lender.official_account) in flat
    assert _flat(debtor.name) in flat
    for line in debtor.postal_address.splitlines():  # the reference table sits beside the address block
        assert _flat(line) in flat, line
    assert DEBT.loan_id in text
    for amount in AMOUNTS:  # every component exact to the fen, and the total
        assert _flat(amount) in flat, amount
    assert "K7QM-3XZP-9RTA-B2CW" in text
    assert _flat(f"{PUBLIC_URL}/verify?code=K7QM-3XZP-9RTA-B2CW") in flat
    assert _flat(long_date(DEBT.oldest_due_date, language)) in flat


def test_chinese_letters_say_it_in_chinese(printed):
    written_zh = _flat(pdf_text(printed["written_notice", "zh"]))
    assert "书面通知" in written_zh and "下一步措施及原因" in written_zh
    assert "2026年2月13日" in written_zh and "已逾期46天" in written_zh
    assert "自2026年4月15日起安排经过培训的工作人员上门" in written_zh  # the coming measure, dated
    assert "本金" in written_zh and "罚息" in written_zh and "合计" in written_zh
    assert "第1页，共1页" in written_zh


def test_the_pre_visit_notice_names_the_window_the_visitors_and_the_rights(printed):
    zh = _flat(pdf_text(printed["pre_visit_notice", "zh"]))
    assert "2026年4月20日至2026年4月24日之间的工作日，每日09:00至17:30" in zh
    for visitor in VISIT.visitors:
        assert visitor.name in zh and visitor.badge in zh
    assert "此前通过短信、电话等方式多次联系未果、此前约定的还款承诺未能履行" in zh
    for right in ("拒绝来访人员进入住所", "出示工作证件", "全程录音录像", "任何人不得收取现金", "投诉"):
        assert right in zh, right
    en = " ".join(pdf_text(printed["pre_visit_notice", "en"]).split())
    assert "between April 20, 2026 and April 24, 2026, between 09:00 and 17:30 local time" in en
    assert "FA-1021" in en and "FA-1077" in en
    for right in (
        "refuse to let the visitors in",
        "ask the visitors for their identification",
        "The visit is recorded",
    ):
        assert right in en, right
    assert "No one may take cash" in en


@pytest.mark.parametrize("kind", ["written_notice", "pre_visit_notice"])
@pytest.mark.parametrize("language", ["zh", "en"])
def test_one_cjk_face_embedded_and_subset(printed, kind, language):
    fonts = pdf_fonts(printed[kind, language])
    assert len(fonts) == 1, fonts  # one face keeps a letter small (stack notes §3.5)
    assert "DueCourse-Letter-SC" in fonts[0]["name"]  # Noto Sans CJK SC, cut to GB 2312
    assert (fonts[0]["emb"], fonts[0]["sub"], fonts[0]["uni"]) == ("yes", "yes", "yes")
    assert printed[kind, language].stat().st_size < 100_000  # the full face made 150-195 KB letters


def test_a_rare_character_in_a_name_prints_from_the_full_face(renderer, tmp_path):
    # 堃 and 喆 are common in given names but not in GB 2312: they come from the system's full Noto Sans CJK SC.
    letter = dataclasses.replace(written("zh"), debtor=dataclasses.replace(DEBTOR["zh"], name="王堃喆"))
    path = tmp_path / "rare.pdf"
    path.write_bytes(renderer.render_pdf(letter))
    assert "王堃喆" in _flat(pdf_text(path))
    names = sorted(f["name"].split("+")[-1] for f in pdf_fonts(path))
    assert names == ["DueCourse-Letter-SC", "Noto-Sans-CJK-SC"]
    assert all(f["emb"] == "yes" for f in pdf_fonts(path))


def test_without_a_font_cache_the_system_face_is_the_one_face(tmp_path):
    path = tmp_path / "system.pdf"
    path.write_bytes(LetterRenderer(TEMPLATES).render_pdf(written("zh")))
    (font,) = pdf_fonts(path)
    assert font["name"].endswith("+Noto-Sans-CJK-SC") and font["emb"] == "yes"
    assert "欧阳娜娜" in _flat(pdf_text(path))


@pytest.mark.parametrize("kind", ["written_notice", "pre_visit_notice"])
def test_the_qr_code_opens_the_verification_page_with_the_code(printed, kind, tmp_path):
    expected = f"{PUBLIC_URL}/verify?code=K7QM-3XZP-9RTA-B2CW"
    for language in ("zh", "en"):
        assert qr_codes(printed[kind, language], tmp_path) == [expected]


def test_rendering_is_deterministic(renderer):
    letter = pre_visit("zh")
    assert renderer.render_pdf(letter) == renderer.render_pdf(letter)


def test_different_codes_give_different_qr_codes(renderer, tmp_path):
    other = "0123456789ABCDEF"
    path = tmp_path / "other.pdf"
    path.write_bytes(renderer.render_pdf(written("zh", code=other)))
    assert qr_codes(path, tmp_path) == [f"{PUBLIC_URL}/verify?code=0123-4567-89AB-CDEF"]


def test_printed_fields_are_escaped_not_interpreted(renderer):
    letter = dataclasses.replace(
        written("en"), debtor=dataclasses.replace(DEBTOR["en"], name='<img src="x">Bobby & "Tables"')
    )
    html = renderer.html(letter)
    assert '<img src="x">' not in html
    assert "&lt;img src=&#34;x&#34;&gt;Bobby &amp; &#34;Tables&#34;" in html


def test_every_measure_has_words_in_both_languages(renderer):
    from duecourse.adapters.channels.letters import MEASURES

    for language in ("zh", "en"):
        texts = set()
        for kind in MEASURES:
            html = renderer.html(dataclasses.replace(written(language), measure=ComingMeasure(kind, None)))
            section = html.split("<h2>", 2)[1]  # the 'what happens next' section
            texts.add(section)
        assert len(texts) == len(MEASURES), language  # each measure says something of its own


def test_long_dates():
    assert long_date(date(2026, 1, 7), "zh") == "2026年1月7日"
    assert long_date(date(2026, 12, 31), "en") == "December 31, 2026"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"language": "fr"}, "zh or en"),
        ({"letter_id": "../etc/passwd"}, "safe file name"),
        ({"measure": ComingMeasure("bailiffs", None)}, "unknown coming measure"),
    ],
)
def test_a_written_notice_refuses_what_it_cannot_print(change, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(written("zh"), **change)


@pytest.mark.parametrize(
    ("visit", "message"),
    [
        (dataclasses.replace(VISIT, reasons=()), "visit reasons"),
        (dataclasses.replace(VISIT, reasons=("debtor_is_rude",)), "visit reasons"),
        (dataclasses.replace(VISIT, window_end=date(2026, 4, 19)), "must not end before"),
        (dataclasses.replace(VISIT, daily_until=time(8, 0)), "must not end before"),
        (dataclasses.replace(VISIT, visitors=()), "who will come"),
    ],
)
def test_a_pre_visit_notice_refuses_an_incomplete_visit(visit: PlannedVisit, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(pre_visit("zh"), visit=visit)


@pytest.mark.parametrize(
    "text",
    [f"{PUBLIC_URL}/verify?code=K7QM-3XZP-9RTA-B2CW", f"{PUBLIC_URL}/verify?code=0123-4567-89AB-CDEF", "x" * 300],
)
def test_the_qr_code_is_the_one_qrcode_would_make(text):
    # The eight masks are scored at once with numpy; each score and so the choice must be qrcode's own.
    import numpy as np
    import qrcode
    import qrcode.util

    from duecourse.adapters.channels.letters import _masks, _penalties, _QrCode

    stock, ours = (kind(error_correction=qrcode.constants.ERROR_CORRECT_M) for kind in (qrcode.QRCode, _QrCode))
    for code in (stock, ours):
        code.add_data(text)
        code.best_fit()
    expected = []
    for mask in range(8):
        stock.makeImpl(True, mask)
        expected.append(qrcode.util.lost_point(stock.modules))
    ours.makeImpl(True, 0)
    placed = np.array(ours.modules, dtype=bool)
    flips = _masks(len(placed)) ^ _masks(len(placed))[0]
    assert _penalties(placed ^ (flips & ours._data_region)).tolist() == expected
    assert ours.best_mask_pattern() == stock.best_mask_pattern() == expected.index(min(expected))
    # The data placed in one step from the placement order: the whole symbol, with every mask, is qrcode's own.
    for mask in range(8):
        stock.makeImpl(False, mask)
        ours.makeImpl(False, mask)
        assert ours.modules == stock.modules, mask
