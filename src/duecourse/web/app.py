"""The FastAPI application, built from a container (the composition root) — never at import time."""

from __future__ import annotations

from fastapi import FastAPI

from duecourse.bootstrap import Container
from duecourse.web import calls, verify, visits, webhooks


def create_app(container: Container) -> FastAPI:
    app = FastAPI(title="DueCourse", version="0.1.0")
    app.state.container = container
    for module in (verify, calls, visits, webhooks):
        app.include_router(module.router)
    return app
