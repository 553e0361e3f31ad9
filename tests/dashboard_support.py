"""Helpers for the dashboard tests: an in-process server on a free loopback port, plain HTTP
requests, and headless Chromium (Debian's chromium + chromium-driver, nothing downloaded)."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from memflow.dashboard import DashboardSettings, create_app
from tests.support import DSN

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = os.environ.get("MEMFLOW_SCREENSHOTS") == "1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DashboardServer:
    """uvicorn serving the dashboard in a thread of its own (its own event loop)."""

    def __init__(self, token: str | None = None, namespace: str = "memflow"):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        settings = DashboardSettings(database_url=DSN, namespace=namespace, host="127.0.0.1",
                                     port=self.port, token=token)
        config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=self.port,
                                log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> DashboardServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the dashboard server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(15)

    def url(self, path: str = "/", **params: str) -> str:
        from urllib.parse import urlencode

        return self.base + path + (f"?{urlencode(params)}" if params else "")


@dataclass
class Reply:
    status: int
    body: str
    headers: dict[str, str] = field(default_factory=dict)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def http(url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> Reply:
    """One request, redirects not followed; any status is returned, not raised."""
    opener = urllib.request.build_opener(_NoRedirect)
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with opener.open(request, timeout=30) as resp:
            return Reply(resp.status, resp.read().decode(), dict(resp.headers.items()))
    except urllib.error.HTTPError as err:
        return Reply(err.code, err.read().decode(), dict(err.headers.items()))


def browser() -> Any:
    """Headless Chromium through selenium, using the system's binaries."""
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.skip("chromium and chromium-driver are not installed (.ci/run installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000", "--disable-extensions", "--no-first-run"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    return driver


def screenshot(driver: Any, name: str, height: int | None = None) -> None:
    """Save docs/img/<name>.png, only when MEMFLOW_SCREENSHOTS=1 (so CI never rewrites it)."""
    if not SCREENSHOTS:
        return
    if height:
        driver.set_window_size(1400, height)
    out = ROOT / "docs" / "img" / f"{name}.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(out))
    driver.set_window_size(1400, 1000)
