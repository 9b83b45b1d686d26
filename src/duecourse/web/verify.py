"""The public /verify page: anyone types or scans a code and learns whether the contact was genuine (issue 4.6).

The page speaks Chinese and English side by side (`?lang=` only chooses which comes first), runs no
script and loads nothing from elsewhere. What it may say is decided in services/verification.py; this
module only turns a `VerificationResult` into HTML or JSON and a 429 when the caller is throttled.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Final
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from duecourse.bootstrap import Container
from duecourse.domain.money import from_minor
from duecourse.services.verification import (
    Identity,
    Owed,
    VerificationResult,
    amounts_owed,
    check,
)
from duecourse.services.visits import visit_team_for_reference

router = APIRouter()
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

# The lender's home time zone: the day a code was issued is printed as the lender's letters date it.
LENDER_ZONE: Final = ZoneInfo("Asia/Shanghai")
LANGS: Final = ("zh", "en")
HTML_LANG: Final = {"zh": "zh-CN", "en": "en"}
MONTHS: Final = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
# SQLite admits one writer at a time, and a thread that finds the file locked sleeps in growing steps
# (the sqlite3 busy handler, up to 100 ms a try) instead of queuing: under load most of a check's time
# went to those sleeps. Every check writes its attempt, so on SQLite the page's threads take turns here.
_SQLITE_WRITER: Final = threading.Lock()
SYMBOL: Final = {"CNY": "¥", "USD": "$", "GBP": "£"}

CHANNEL: Final = {
    "sms": {"zh": "短信", "en": "text message"},
    "email": {"zh": "电子邮件", "en": "e-mail"},
    "letter": {"zh": "信函", "en": "letter"},
    "app_push": {"zh": "App 通知", "en": "app notification"},
    "call": {"zh": "电话", "en": "phone call"},
    "visit": {"zh": "上门拜访", "en": "home visit"},
}
PURPOSE: Final = {
    "message": {"zh": "提醒消息", "en": "reminder"},
    "notice": {"zh": "书面通知", "en": "written notice"},
    "call": {"zh": "电话联系", "en": "phone call"},
    "visit": {"zh": "上门拜访", "en": "home visit"},
}

# Every sentence the page can show, in both languages.
TEXT: Final = {
    "title": {"zh": "核实联系是否真实", "en": "Check that a contact is genuine"},
    "intro": {
        "zh": "请输入短信、信函、电话或上门人员提供的核实码（16 位，如 K7QM-3XZP-9RTA-B2CW）。",
        "en": "Type the verification code from the message, letter, call or visiting staff "
        "(16 characters, like K7QM-3XZP-9RTA-B2CW).",
    },
    "code": {"zh": "核实码", "en": "Verification code"},
    "named": {
        "zh": "收到此消息的手机号，或您的身份证号（选填）",
        "en": "The phone number this message came to, or your ID number (optional)",
    },
    "named_help": {
        "zh": "仅用于发现冒充我司的诈骗活动，不会以明文保存。",
        "en": "Only used to spot scams in our name; never stored in clear.",
    },
    "submit": {"zh": "核实", "en": "Check"},
    "genuine": {"zh": "真实：此联系来自我司", "en": "Genuine: this contact is from us"},
    "not_genuine": {
        "zh": "非真实：请勿付款，请拨打官方热线 {hotline}",
        "en": "Not genuine: do not pay, call the official hotline {hotline}",
    },
    "throttled": {
        "zh": "尝试次数过多，请在 {minutes} 分钟后再试，或拨打官方热线 {hotline}。",
        "en": "Too many attempts. Please try again in {minutes} minutes, or call the official hotline {hotline}.",
    },
    "bad_request": {"zh": "请求无效：缺少核实码。", "en": "Bad request: no verification code was sent."},
    "lender": {"zh": "贷款机构", "en": "Lender"},
    "channel": {"zh": "联系方式", "en": "Channel"},
    "purpose": {"zh": "事由", "en": "Purpose"},
    "issued": {"zh": "发出日期", "en": "Issued on"},
    "expires": {"zh": "有效期至", "en": "Valid until"},
    "hotline": {"zh": "官方热线", "en": "Official hotline"},
    "team": {"zh": "上门人员（姓名与工牌号）", "en": "Visiting staff (name and badge number)"},
    "no_team": {
        "zh": "上门人员尚未安排；来访者请先出示工牌，并可拨打官方热线核实。",
        "en": "No team is assigned yet; ask any visitor for their badge and check it on the official hotline.",
    },
    "prove": {
        "zh": "如您是借款人，可输入出生日期和身份证号后四位查看欠款金额。",
        "en": "If you are the borrower, give your birth date and the last 4 characters of your ID number "
        "to see what you owe.",
    },
    "birth_date": {"zh": "出生日期", "en": "Birth date"},
    "id_last4": {"zh": "身份证号后四位", "en": "Last 4 characters of your ID number"},
    "show_debt": {"zh": "查看欠款", "en": "Show what I owe"},
    "mismatch": {
        "zh": "身份未能确认，因此不显示欠款信息。",
        "en": "We could not confirm who you are, so no account details are shown.",
    },
    "owed": {"zh": "借款 {loan} 当前应还 {amount}", "en": "Loan {loan}: {amount} due now"},
    "since": {"zh": "最早未还到期日：{date}", "en": "Unpaid since {date}"},
    "next": {"zh": "下期 {date} 应还 {amount}", "en": "Next: {amount} due on {date}"},
    "nothing_due": {"zh": "借款 {loan} 目前没有到期未还金额。", "en": "Loan {loan}: nothing is due now."},
    "pay": {
        "zh": "请仅通过官方 App 或官方账户 {account} 还款；任何其他账户都不是我司账户。",
        "en": "Pay only in our official app or to our official account {account}; any other account is not ours.",
    },
    "check_another": {"zh": "核实另一个核实码", "en": "Check another code"},
}


def _container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


def _order(lang: str | None) -> tuple[str, ...]:
    return ("en", "zh") if lang == "en" else LANGS


def _say(key: str, **values: Any) -> dict[str, str]:
    return {lang: TEXT[key][lang].format(**values) for lang in LANGS}


def _day(at: datetime, lang: str) -> str:
    local = at.astimezone(LENDER_ZONE).date()
    if lang == "zh":
        return f"{local.year}年{local.month}月{local.day}日"
    return f"{MONTHS[local.month - 1]} {local.day}, {local.year}"


def _date(day: Any, lang: str) -> str:
    if lang == "zh":
        return f"{day.year}年{day.month}月{day.day}日"
    return f"{MONTHS[day.month - 1]} {day.day}, {day.year}"


def _money(minor: int, currency: str) -> str:
    return f"{SYMBOL.get(currency, currency + ' ')}{from_minor(minor, currency):,}"


def _lender(container: Container, name: str) -> dict[str, str]:
    """The lender as the catalogue names it in both languages, when the code names the catalogue's lender."""
    names = container.messages.lender.name
    return {lang: names.get(lang, name) for lang in LANGS} if name in names.values() else dict.fromkeys(LANGS, name)


def _client(request: Request) -> str:
    # Behind a proxy on loopback, uvicorn has already put the forwarded address here (--proxy-headers).
    return request.client.host if request.client else "unknown"


def _run(
    request: Request, typed: str, named: str | None = None, identity: Identity | None = None
) -> tuple[VerificationResult, list[Owed]]:
    container = _container(request)
    now = container.clock()
    turn: AbstractContextManager[object] = (
        _SQLITE_WRITER if container.engine.dialect.name == "sqlite" else nullcontext()
    )
    with turn, container.engine.begin() as conn:
        result = check(
            conn,
            container.signer,
            typed,
            _client(request),
            now,
            identity,
            cipher=container.cipher,
            named=named,
            limits=request.app.state.verify_limits,
            visit_team=lambda c, reference: visit_team_for_reference(c, container.cipher, reference),
        )
    owed: list[Owed] = []
    if result.identity_proven and result.borrower_key is not None:
        # After the commit: the ledger reads committed data through its own connection.
        owed = amounts_owed(container.engine, result.borrower_key, result.loan_key, now.astimezone(LENDER_ZONE).date())
    return result, owed


def _view(container: Container, result: VerificationResult, owed: list[Owed]) -> dict[str, Any]:
    """Everything the page and the JSON say about one check, in both languages; nothing internal."""
    lender = container.messages.lender
    hotline = lender.hotline
    view: dict[str, Any] = {"status": result.status, "genuine": result.genuine, "hotline": hotline, "code": result.code}
    if result.status == "throttled":
        view["message"] = _say("throttled", minutes=max(1, -(-(result.retry_after or 60) // 60)), hotline=hotline)
        view["retry_after"] = result.retry_after
        return view
    if not result.genuine:
        view["message"] = _say("not_genuine", hotline=hotline)
        return view
    assert result.lender and result.channel and result.purpose and result.issued_at and result.expires_at
    view |= {
        "message": _say("genuine"),
        "lender": _lender(container, result.lender),
        "channel": CHANNEL.get(result.channel, dict.fromkeys(LANGS, result.channel)),
        "purpose": PURPOSE.get(result.purpose, dict.fromkeys(LANGS, result.purpose)),
        "issued_on": {lang: _day(result.issued_at, lang) for lang in LANGS},
        "valid_until": {lang: _day(result.expires_at, lang) for lang in LANGS},
        "is_visit": result.purpose == "visit",
        "visit_team": [{"name": name, "badge": badge} for name, badge in result.visit_team],
        "identity": "proven"
        if result.identity_proven
        else ("mismatch" if result.result == "identity_mismatch" else None),
    }
    if result.identity_proven:
        view["owed"] = [_owed_view(o) for o in owed]
        view["pay"] = _say("pay", account=lender.account)
    return view


def _owed_view(o: Owed) -> dict[str, Any]:
    lines: dict[str, list[str]] = {lang: [] for lang in LANGS}
    for lang in LANGS:
        if o.due == 0:
            lines[lang].append(TEXT["nothing_due"][lang].format(loan=o.loan_id))
        else:
            lines[lang].append(TEXT["owed"][lang].format(loan=o.loan_id, amount=_money(o.due, o.currency)))
        if o.oldest_unpaid_due_date is not None:
            lines[lang].append(TEXT["since"][lang].format(date=_date(o.oldest_unpaid_due_date, lang)))
        if o.next_due_date is not None and o.next_due_amount:
            amount = _money(o.next_due_amount, o.currency)
            lines[lang].append(TEXT["next"][lang].format(date=_date(o.next_due_date, lang), amount=amount))
    return {
        "loan_id": o.loan_id,
        "currency": o.currency,
        "due": str(from_minor(o.due, o.currency)),
        "oldest_unpaid_due_date": o.oldest_unpaid_due_date.isoformat() if o.oldest_unpaid_due_date else None,
        "next_due_date": o.next_due_date.isoformat() if o.next_due_date else None,
        "next_due_amount": None if o.next_due_amount is None else str(from_minor(o.next_due_amount, o.currency)),
        "lines": lines,
    }


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def _respond(request: Request, view: dict[str, Any], lang: str | None, as_json: bool) -> Response:
    status = 429 if view["status"] == "throttled" else 200
    headers = {"Retry-After": str(view["retry_after"])} if status == 429 else None
    if as_json:
        return JSONResponse({k: v for k, v in view.items() if k != "is_visit"}, status_code=status, headers=headers)
    return _page(request, lang, status, headers, result=view)


def _page(
    request: Request, lang: str | None, status: int = 200, headers: dict[str, str] | None = None, **context: Any
) -> HTMLResponse:
    order = _order(lang)
    return templates.TemplateResponse(
        request,
        "verify.html",
        {"t": TEXT, "order": order, "html_lang": HTML_LANG, "primary": order[0], **context},
        status_code=status,
        headers=headers,
    )


Lang = Annotated[str | None, Query(pattern="^(zh|en)$", description="which language comes first: zh or en")]


@router.get("/verify", response_class=HTMLResponse)
def verify_page(request: Request, code: str | None = Query(None, max_length=64), lang: Lang = None) -> Response:
    """The form, or — with `?code=` (the QR code's link) — the answer for that code (JSON if asked for)."""
    if code is None:
        return _page(request, lang)
    result, owed = _run(request, code)
    return _respond(request, _view(_container(request), result, owed), lang, _wants_json(request))


@router.post(
    "/verify",
    response_class=HTMLResponse,
    responses={400: {"description": "No `code` field in the form"}, 429: {"description": "Too many failed checks"}},
)
async def verify_form(request: Request, lang: Lang = None) -> Response:
    """The form's answer. With birth date and the last four of the ID number, the debt is shown as well."""
    form = await request.form()
    code, named = form.get("code"), form.get("named")
    birth, last4 = form.get("birth_date"), form.get("id_last4")
    if not isinstance(code, str) or len(code) > 64:
        view = {"status": "bad_request", "message": _say("bad_request")}
        if _wants_json(request):
            return JSONResponse(view, status_code=400)
        return _page(request, lang, 400, error=view)
    identity = _identity(birth, last4)
    named_text = named.strip()[:64] if isinstance(named, str) and named.strip() else None
    result, owed = await run_in_threadpool(_run, request, code, named_text, identity)
    return _respond(request, _view(_container(request), result, owed), lang, _wants_json(request))


def _identity(birth: object, last4: object) -> Identity | None:
    if not isinstance(birth, str) or not isinstance(last4, str) or not birth or not last4.strip():
        return None
    try:
        return Identity(datetime.strptime(birth, "%Y-%m-%d").date(), last4.strip()[-4:])
    except ValueError:
        return None


@router.get("/api/verify/{code}", responses={429: {"description": "Too many failed checks"}})
def verify_api(request: Request, code: Annotated[str, PathParam(max_length=64)]) -> Response:
    """The same answer as the page, as JSON, for other systems (a call-centre screen, a partner's app)."""
    result, owed = _run(request, code)
    return _respond(request, _view(_container(request), result, owed), None, as_json=True)
