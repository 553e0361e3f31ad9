"""The dashboard's safety rules over plain HTTP: the bind check, the token, the Host header,
CSRF on every POST, escaping, and security headers."""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest

from memflow.dashboard import DashboardSettings, check_bind, is_loopback
from tests.dashboard_support import ROOT, DashboardServer, free_port, http
from tests.support import DSN

TOKEN = "s3cret-token-for-tests"


@pytest.fixture(scope="module")
def open_server() -> Iterator[DashboardServer]:
    with DashboardServer() as srv:
        yield srv


@pytest.fixture(scope="module")
def token_server() -> Iterator[DashboardServer]:
    with DashboardServer(token=TOKEN) as srv:
        yield srv


def test_loopback_rule():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("[::1]")
    assert is_loopback("localhost") and is_loopback("127.8.9.10")
    for host in ("0.0.0.0", "::", "192.168.1.5", "example.com", ""):
        assert not is_loopback(host)
        with pytest.raises(ValueError, match="without a token"):
            check_bind(host, None)
        check_bind(host, TOKEN)
    check_bind("127.0.0.1", None)
    for bad in ("short", "has space in it", "semi;colon;token", 12345678):
        with pytest.raises(ValueError, match="8 to 512 characters"):
            DashboardSettings(token=bad)  # type: ignore[arg-type]


async def test_cli_refuses_a_public_interface_without_a_token():
    env = {"MEMFLOW_DATABASE_URL": DSN, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "memflow.cli", "dashboard", "--host", "0.0.0.0", "--port",
        str(free_port()), cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2, (out, err)
    assert b"refusing to serve the dashboard on '0.0.0.0' without a token" in err


def test_every_request_needs_the_token(token_server):
    for path in ("/", "/run?id=x", "/queues", "/schedules", "/static/htmx.min.js",
                 "/static/dashboard.css", "/nope"):
        reply = http(token_server.url() + path.lstrip("/"))
        assert reply.status == 401, path
        assert "unauthorized" in reply.body
    assert http(token_server.url("/", token="wrong-token-xx")).status == 401
    assert http(token_server.url("/"), headers={"Authorization": "Bearer nope"}).status == 401
    assert http(token_server.url("/action/terminate"), data=b"id=x").status == 401
    ok = http(token_server.url("/"), headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status == 200 and "Workflows" in ok.body
    assert http(token_server.url("/queues"), headers={"X-MemFlow-Token": TOKEN}).status == 200


def test_login_link_sets_a_cookie(token_server):
    reply = http(token_server.url("/queues", token=TOKEN, ns="memflow"))
    assert reply.status == 303
    assert reply.headers["location"] == "/queues?ns=memflow"
    cookie = reply.headers["set-cookie"]
    assert cookie.startswith(f"memflow_token={TOKEN};") and "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    after = http(token_server.url("/queues"), headers={"Cookie": f"memflow_token={TOKEN}"})
    assert after.status == 200
    sneaky = http(f"{token_server.base}//evil.example/?token={TOKEN}")
    assert sneaky.status == 303 and sneaky.headers["location"] == "/evil.example/"


def test_a_foreign_host_header_is_refused_without_a_token(open_server):
    assert http(open_server.url("/"), headers={"Host": "evil.example:8233"}).status == 403
    assert http(open_server.url("/"), headers={"Host": "localhost:8233"}).status == 200


def _session(server: DashboardServer) -> tuple[str, str]:
    """A CSRF cookie and the token the page embeds in its forms."""
    page = http(server.url("/"))
    cookie = page.headers["set-cookie"].split(";", 1)[0]
    return cookie, cookie.split("=", 1)[1]


async def test_posts_need_the_csrf_token(open_server, client, namespace):
    await client.workflow.start(args=[], task_queue="q", workflow_name="waiter",
                                workflow_id="victim")
    handle = client.workflow.get_handle(workflow_id="victim")
    cookie, csrf = _session(open_server)
    url = open_server.url("/action/terminate", ns=namespace)
    form = {"id": "victim", "confirmed": "yes"}
    refused = [
        http(url, data=urlencode(form).encode()),                                # no token
        http(url, data=urlencode(form).encode(), headers={"Cookie": cookie}),   # no field
        http(url, data=urlencode({**form, "csrf": "x" * 43}).encode(),
             headers={"Cookie": cookie}),                                        # wrong field
        http(url, data=urlencode({**form, "csrf": csrf}).encode(),
             headers={"Cookie": cookie, "Origin": "http://evil.example"}),       # other site
    ]
    assert [r.status for r in refused] == [403, 403, 403, 403]
    assert (await handle.describe()).status == "running"
    unconfirmed = http(url, data=urlencode({"id": "victim", "csrf": csrf}).encode(),
                       headers={"Cookie": cookie})
    assert unconfirmed.status == 200 and 'id="confirm"' in unconfirmed.body
    assert (await handle.describe()).status == "running"
    done = http(url, data=urlencode({**form, "csrf": csrf}).encode(),
                headers={"Cookie": cookie})
    assert done.status == 303 and "done=terminate" in done.headers["location"]
    assert (await handle.describe()).status == "interrupted"
    again = http(url, data=urlencode({**form, "csrf": csrf}).encode(),
                 headers={"Cookie": cookie})
    assert again.status == 409 and "already interrupted" in again.body


async def test_values_are_escaped_and_headers_set(open_server, client, namespace):
    hostile = '"><script>alert(1)</script><img src=x onerror=alert(2)>'
    await client.workflow.start(args=[hostile], task_queue="q", workflow_name="waiter",
                                workflow_id=hostile, search={"data": {hostile: hostile}})
    await client.workflow.get_handle(workflow_id=hostile).interrupt(reason=hostile)
    for page in (http(open_server.url("/", ns=namespace)),
                 http(open_server.url("/run", ns=namespace, id=hostile)),
                 http(open_server.url("/", ns=namespace, prefix=hostile)),
                 http(open_server.url("/run", ns=namespace, id=hostile + "x"))):
        assert page.status in (200, 404)
        assert "<script>alert" not in page.body and "<img src=x" not in page.body
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.body
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "default-src 'none'" in csp
        assert page.headers["x-frame-options"] == "DENY"
        scripts = re.findall(r"<script[^>]*>", page.body)
        assert scripts == ['<script src="/static/htmx.min.js" defer>']


async def test_bad_filters_and_unknown_namespaces(open_server, client, namespace):
    await client.workflow.start(args=[], task_queue="q", workflow_name="waiter")
    bad = http(open_server.url("/", ns=namespace, status="nope"))
    assert bad.status == 400 and "unknown status" in bad.body
    bad_time = http(open_server.url("/", ns=namespace, since="yesterday"))
    assert bad_time.status == 400 and "not a date and time" in bad_time.body
    invalid = http(open_server.url("/", ns="Robert'); DROP TABLE x;--"))
    assert invalid.status == 400 and "invalid namespace" in invalid.body
    absent = http(open_server.url("/", ns="no_such_namespace_here"))
    assert absent.status == 200 and "has no MemFlow tables" in absent.body
    listed = http(open_server.url("/", ns=namespace))
    assert f'?ns={namespace}"' in listed.body  # the switcher lists the namespace
    missing = http(open_server.url("/run", ns=namespace, id="nobody"))
    assert missing.status == 404 and "No workflow" in missing.body


async def test_cli_serves_with_a_token_on_every_interface():
    port = free_port()
    env = {"MEMFLOW_DATABASE_URL": DSN, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT),
           "MEMFLOW_DASHBOARD_TOKEN": TOKEN}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "memflow.cli", "dashboard", "--host", "0.0.0.0", "--port",
        str(port), cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}/"
        for _ in range(300):
            try:
                reply = await asyncio.to_thread(http, base)
                break
            except OSError:
                await asyncio.sleep(0.1)
        else:
            raise AssertionError("the dashboard did not start")
        assert reply.status == 401
        authorized = await asyncio.to_thread(
            http, base, None, {"Authorization": f"Bearer {TOKEN}"})
        assert authorized.status == 200
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)
