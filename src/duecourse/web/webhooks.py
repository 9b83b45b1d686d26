"""Provider callbacks: Infobip's SMS delivery reports become contact events and move the outbox on.

`POST /webhooks/sms/infobip/reports?token=…` — the token is the shared secret we put in the notifyUrl
(adapters/channels/sms_gateway.py `report_token`, derived from the API key); a report without it is
refused with 401. Recording is idempotent, so a report Infobip repeats (or that the pull path already
brought) changes nothing.
"""

from __future__ import annotations

import hmac
import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from duecourse.adapters.channels.sms_gateway import WEBHOOK_PATH, parse_reports, report_token
from duecourse.bootstrap import Container
from duecourse.services.dispatch import record_receipts

router = APIRouter()


@router.post(
    WEBHOOK_PATH,
    responses={
        200: {"description": "Reports recorded (new ones counted by outcome)"},
        400: {"description": "Not a delivery report document"},
        401: {"description": "Missing or wrong token"},
        503: {"description": "No SMS gateway is configured"},
    },
)
async def infobip_reports(request: Request, token: Annotated[str, Query()] = "") -> JSONResponse:
    container: Container = request.app.state.container
    api_key = container.settings.sms_api_key
    if not api_key:
        return JSONResponse({"error": "no SMS gateway is configured"}, status_code=503)
    if not hmac.compare_digest(token.encode(), report_token(api_key).encode()):
        return JSONResponse({"error": "unauthorised"}, status_code=401)
    try:
        body: Any = json.loads(await request.body())
        receipts = parse_reports(body)
    except (ValueError, UnicodeDecodeError) as exc:
        return JSONResponse({"error": f"not a delivery report document: {exc}"}, status_code=400)
    recorded = await run_in_threadpool(
        record_receipts, container.engine, receipts, container.clock(), "provider:infobip"
    )
    return JSONResponse({"received": len(body["results"]), "recorded": recorded})
