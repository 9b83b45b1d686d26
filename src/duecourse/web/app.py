"""The FastAPI application, built from a container (the composition root) — never at import time."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from duecourse import bootstrap
from duecourse.bootstrap import Container
from duecourse.services.verification import LIMITS, Limits
from duecourse.web import calls, plans, verify, visits, webhooks

STATIC: Final = Path(__file__).parent / "static"

# Sent with every response. The pages use no script, no inline style and nothing from another origin,
# so the policy can forbid all of it: an injected tag can neither run nor load anything. `no-referrer`
# keeps a code typed into the URL (/verify?code=…) out of the Referer header of any link followed.
SECURITY_HEADERS: Final = (
    (
        b"content-security-policy",
        b"default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        b"base-uri 'none'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
)
_NO_STORE: Final = (b"cache-control", b"no-store")  # answers about codes and debts are never cached


class SecurityHeaders:
    """Pure ASGI middleware (no per-request task like BaseHTTPMiddleware): adds SECURITY_HEADERS, drops any
    `server` header an inner layer set, and marks everything but static files as not to be stored."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cacheable = str(scope.get("path", "")).startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in SECURITY_HEADERS} | {b"server"}
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                headers.extend(SECURITY_HEADERS)
                if not cacheable:
                    headers.append(_NO_STORE)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(container: Container, limits: Limits = LIMITS) -> FastAPI:
    """The whole HTTP face. Interactive API docs are off: they load scripts from a CDN, which the policy
    above forbids and a public page should not do; the schema stays at /openapi.json."""
    app = FastAPI(title="DueCourse", version="0.1.0", docs_url=None, redoc_url=None)
    app.state.container = container
    app.state.verify_limits = limits
    for module in (verify, calls, visits, plans, webhooks):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(SecurityHeaders)
    return app


def warmed(container: Container) -> Container:
    """Build now what every request needs (migrated engine, keys, the screened message catalogue), so the
    first visitors do not wait a second for it and a broken setting fails at start, not on a request."""
    for part in (container.engine, container.cipher, container.signer, container.messages):
        assert part is not None
    return container


def from_environment() -> FastAPI:
    """The app for settings from the environment: the factory each uvicorn worker process calls."""
    return create_app(warmed(bootstrap.build()))
