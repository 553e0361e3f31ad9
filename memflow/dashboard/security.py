"""Access control for every request: the token, the Host header, CSRF and security headers.

- With a token, every request needs it: an ``Authorization: Bearer`` or ``X-MemFlow-Token``
  header, or the ``memflow_token`` cookie that a ``?token=`` login link sets.
- Without a token (loopback only) the Host header must name a loopback address, which stops
  DNS-rebinding pages from reading the dashboard.
- A per-session CSRF token lives in a cookie; every POST must carry it in its ``csrf`` field,
  and a POST whose ``Origin`` is another site is refused.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from memflow.dashboard.settings import is_loopback

TOKEN_COOKIE = "memflow_token"
CSRF_COOKIE = "memflow_csrf"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
HEADERS = [(b"content-security-policy", CSP.encode()), (b"x-frame-options", b"DENY"),
           (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
           (b"cache-control", b"no-store")]


def _same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and hmac.compare_digest(a.encode(), b.encode())


def _cookie(name: str, value: str) -> bytes:
    return f"{name}={value}; Path=/; HttpOnly; SameSite=Strict".encode()


class GuardMiddleware:
    """Checks the token and the Host header, hands out the CSRF cookie and adds headers."""

    def __init__(self, app: ASGIApp, token: str | None):
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        refused = self._refusal(request)
        if refused is not None:
            await refused(scope, receive, send)
            return
        login = self._login_redirect(request)
        if login is not None:
            await login(scope, receive, send)
            return
        csrf = request.cookies.get(CSRF_COOKIE)
        fresh = not csrf or len(csrf) < 20
        if fresh:
            csrf = secrets.token_urlsafe(32)
        scope.setdefault("state", {})["csrf"] = csrf

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", [])) + HEADERS
                if fresh:
                    headers.append((b"set-cookie", _cookie(CSRF_COOKIE, str(csrf))))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _refusal(self, request: Request) -> Response | None:
        if self.token is None:
            if not is_loopback(_host_name(request.headers.get("host") or "")):
                return PlainTextResponse("forbidden: this dashboard answers on loopback "
                                         "addresses only", status_code=403)
            return None
        given = (request.query_params.get("token") or _bearer(request)
                 or request.headers.get("x-memflow-token") or request.cookies.get(TOKEN_COOKIE))
        if not _same(given, self.token):
            return PlainTextResponse("unauthorized: this dashboard needs its token (open the "
                                     "login link printed at start-up, or send an "
                                     "'Authorization: Bearer' header)", status_code=401,
                                     headers={"www-authenticate": "Bearer"})
        return None

    def _login_redirect(self, request: Request) -> Response | None:
        """``?token=`` on a GET: set the cookie and reload the page without it in the URL."""
        if self.token is None or "token" not in request.query_params:
            return None
        if request.method != "GET":
            return None
        rest = [(k, v) for k, v in parse_qsl(request.url.query, keep_blank_values=True)
                if k != "token"]
        # one leading slash: "//host/..." would send the browser to another site
        target = "/" + request.url.path.lstrip("/") + (f"?{urlencode(rest)}" if rest else "")
        response = RedirectResponse(target, status_code=303)
        response.raw_headers.append((b"set-cookie", _cookie(TOKEN_COOKIE, self.token)))
        return response


def _host_name(header: str) -> str:
    """The host of a Host header, without its port (``[::1]:8233`` -> ``::1``)."""
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def _bearer(request: Request) -> str | None:
    auth = request.headers.get("authorization") or ""
    scheme, _, value = auth.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def check_post(request: Request, form: Any) -> str | None:
    """Why a POST must be refused (None when its CSRF token and origin are right)."""
    origin = request.headers.get("origin")
    if origin and origin != "null":
        if urlsplit(origin).netloc != request.headers.get("host"):
            return "the request came from another site"
    cookie = request.cookies.get(CSRF_COOKIE)
    if not _same(form.get("csrf"), cookie):
        return "the form's CSRF token is missing or stale: reload the page and try again"
    return None

