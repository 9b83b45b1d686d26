"""The /verify page in real headless Chromium: typing a code, scanning a printed QR code, a fake code."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import qrcode
from playwright.sync_api import Browser, Page

from duecourse.domain.verification import display
from tests.integration.test_verification import HOTLINE, LENDER, Home

pytestmark = pytest.mark.browser

GREEN, RED = "rgb(10, 107, 45)", "rgb(165, 14, 14)"  # --ok and --bad in web/static/verify.css


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    yield page
    context.close()
    # A CSP violation (a blocked style or script) is reported on the console: the page must cause none.
    assert problems == []


def _verdict(page: Page) -> tuple[str, str]:
    verdict = page.locator("#verdict")
    colour = verdict.evaluate("e => getComputedStyle(e).color")
    return verdict.inner_text(), colour


def test_typing_a_genuine_code_shows_genuine_with_the_lender(page: Page, base_url: str, live_home: Home) -> None:
    code = live_home.issue("message", "sms")
    page.goto(f"{base_url}/verify")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    page.get_by_label("Verification code").fill(display(code).lower())
    page.get_by_role("button", name="Check").click()
    page.wait_for_url(f"{base_url}/verify?lang=zh")
    text, colour = _verdict(page)
    assert "真实：此联系来自我司" in text and "Genuine: this contact is from us" in text
    assert colour == GREEN
    lender = page.locator("#lender")
    assert LENDER in lender.inner_text() and live_home.container.messages.lender.name["en"] in lender.inner_text()
    assert HOTLINE in page.locator(".hotline").inner_text()


def test_scanning_the_printed_qr_code_opens_a_genuine_answer(
    page: Page, base_url: str, live_home: Home, tmp_path: Path
) -> None:
    code = live_home.issue("notice", "letter")
    image = tmp_path / "qr.png"
    qrcode.make(f"{base_url}/verify?code={display(code)}").save(image)
    scanned = subprocess.run(["zbarimg", "--raw", "-q", str(image)], capture_output=True, text=True, check=True)
    page.goto(scanned.stdout.strip())
    text, colour = _verdict(page)
    assert "Genuine" in text and colour == GREEN
    assert "书面通知" in page.content() and "written notice" in page.content()


def test_a_fake_code_says_do_not_pay_in_chinese_and_english(page: Page, base_url: str, live_home: Home) -> None:
    page.goto(f"{base_url}/verify?lang=en")
    assert page.locator("html").get_attribute("lang") == "en"
    page.get_by_label("Verification code").fill("K7QM-3XZP-9RTA-B2CW")
    page.get_by_label("The phone number this message came to").fill(live_home.phone)
    page.get_by_role("button", name="Check").click()
    text, colour = _verdict(page)
    assert colour == RED
    zh = page.locator('#verdict [lang="zh-CN"]').inner_text()
    en = page.locator('#verdict [lang="en"]').inner_text()
    assert f"非真实：请勿付款，请拨打官方热线 {HOTLINE}" in zh
    assert f"Not genuine: do not pay, call the official hotline {HOTLINE}" in en
    assert text.index("Not genuine") < text.index("非真实"), "?lang=en puts English first"
    assert LENDER not in page.locator("main").inner_text()
    # The Chinese line is drawn with a CJK font (fonts-noto-cjk), not boxes: its glyphs have real width.
    width = page.locator('#verdict [lang="zh-CN"]').evaluate(
        "e => { const r = document.createRange(); r.selectNodeContents(e); return r.getBoundingClientRect().width; }"
    )
    assert width > 200


def test_the_borrower_proves_who_they_are_to_see_what_is_owed(page: Page, base_url: str, live_home: Home) -> None:
    code = live_home.issue("notice", "letter")
    page.goto(f"{base_url}/verify?code={display(code)}&lang=en")
    assert "Genuine" in _verdict(page)[0] and "due now" not in page.content()
    page.get_by_label("Birth date").fill(live_home.birth_date.isoformat())
    page.get_by_label("Last 4 characters of your ID number").fill(live_home.national_id[-4:])
    page.get_by_role("button", name="Show what I owe").click()
    owed = page.locator(".owed").inner_text()
    assert "due now" in owed and "当前应还" in owed and "¥" in owed
    assert "6222 0000 1111 2222" in page.locator(".pay").first.inner_text()
