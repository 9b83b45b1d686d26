"""Browser tests: the real app under uvicorn on a loopback port, driven by Debian's headless Chromium."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, sync_playwright
from sqlalchemy import Engine

from duecourse.web.app import create_app
from tests.integration.test_verification import Home, make_home

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu"]


@pytest.fixture
def live_home(sqlite_engine: Engine, tmp_path: Path) -> Iterator[Home]:
    """A DueCourse home on SQLite with a small demo book (the page does not depend on the database kind)."""
    home = make_home(sqlite_engine.url.render_as_string(hide_password=False), tmp_path)
    yield home
    home.container.engine.dispose()


@pytest.fixture
def base_url(live_home: Home) -> Iterator[str]:
    """The app served by uvicorn in a thread, on a loopback socket bound here (no port race)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(create_app(live_home.container), log_level="warning", server_header=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        threading.Event().wait(0.05)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield chromium
        chromium.close()
