"""The dashboard in a real browser (headless Chromium): list, filters, live refresh, the run
timeline, an action, hostile workflow ids, and no external URLs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from memflow import Client, Worker, workflow
from tests.dashboard_support import DashboardServer, browser, screenshot
from tests.support import DSN, eventually, sql

pytest.importorskip("selenium")
from selenium.common.exceptions import NoAlertPresentException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

HOSTILE_ID = "<img src=x onerror=alert(1)>"
HOSTILE_REASON = "<script>alert('reason')</script> & <b>bold</b>"


async def shout(text: str) -> str:
    return text.upper()


async def fail_once(tag: str) -> str:
    from memflow import activity

    if activity.info().attempt < 2:
        raise RuntimeError(f"first attempt of {tag} fails")
    return f"{tag} ok"


ACTS = workflow.proxy_activities(activities=[shout, fail_once], retry_policy={
    "maximum_attempts": 3, "backoff_coefficient": 1, "maximum_interval": "1s"})


async def note_hook(text: str) -> str:
    await workflow.sleep_for(0.2)
    return await ACTS.shout(text)


async def little_child(n: int) -> int:
    return n * 2


async def pipeline(name: str) -> dict:
    first = await ACTS.shout(name)
    a, b, c = await asyncio.gather(ACTS.shout("a"), ACTS.shout("b"), ACTS.fail_once("c"))
    hooked = await workflow.exec_hook(workflow_name="note_hook", args=["from hook"])
    kid = await workflow.exec_child(args=[21], workflow_name="little_child",
                                    workflow_id=f"kid-of-{name}")
    await workflow.sleep_for(0.2)
    return {"first": first, "branches": [a, b, c], "hook": hooked, "child": kid}


async def chained(n: int) -> int:
    await ACTS.shout(f"run {n}")
    if n > 0:
        workflow.continue_as_new(n - 1)
    return n


async def waiter() -> str:
    return await workflow.wait_for("dashboard-go")


@pytest.fixture(scope="module")
def server() -> Iterator[DashboardServer]:
    with DashboardServer() as srv:
        yield srv


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    d = browser()
    try:
        yield d
    finally:
        d.quit()


def wait_for(driver: Any, css: str, timeout: float = 20) -> Any:
    return WebDriverWait(driver, timeout).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, css)))


def listed_ids(driver: Any) -> list[str]:
    return [a.text for a in driver.find_elements(By.CSS_SELECTOR, "a.run-link")]


def no_alert(driver: Any) -> bool:
    try:
        _ = driver.switch_to.alert
    except NoAlertPresentException:
        return True
    return False


def external_urls(driver: Any, base: str) -> list[str]:
    """Every src/href of the page that does not point at the dashboard itself."""
    found = []
    for el in driver.find_elements(By.CSS_SELECTOR, "[src], [href], [action], [hx-get]"):
        for attr in ("src", "href", "action"):
            value = el.get_attribute(attr)
            if value and urlsplit(value).netloc != urlsplit(base).netloc:
                found.append(f"{attr}={value}")
        hx = el.get_attribute("hx-get")
        if hx and not hx.startswith("/"):
            found.append(f"hx-get={hx}")
    return found


async def start_waiters(client: Client, namespace: str, specs: list[tuple[str, str]]) -> None:
    for workflow_id, queue in specs:
        await client.workflow.start(args=[], task_queue=queue, workflow_name="waiter",
                                    workflow_id=workflow_id, namespace=namespace)


async def test_list_filters_and_live_refresh(server, driver, client, namespace):
    await start_waiters(client, namespace, [("order-1", "orders"), ("order-2", "orders"),
                                            ("mail-1", "mails")])
    await client.workflow.get_handle(workflow_id="order-2").interrupt(reason="stop")
    driver.get(server.url("/", ns=namespace))
    wait_for(driver, "a.run-link")
    assert sorted(listed_ids(driver)) == ["mail-1", "order-1", "order-2"]
    assert driver.find_element(By.ID, "current-ns").text == namespace

    prefix = driver.find_element(By.NAME, "prefix")
    prefix.send_keys("order-")
    driver.find_element(By.ID, "apply-filter").click()
    WebDriverWait(driver, 20).until(lambda d: "prefix=order-" in d.current_url)
    assert sorted(listed_ids(driver)) == ["order-1", "order-2"]

    Select(driver.find_element(By.NAME, "status")).select_by_value("interrupted")
    driver.find_element(By.ID, "apply-filter").click()
    WebDriverWait(driver, 20).until(lambda d: "status=interrupted" in d.current_url)
    assert listed_ids(driver) == ["order-2"]

    driver.get(server.url("/", ns=namespace, queue="mails"))
    wait_for(driver, "a.run-link")
    assert listed_ids(driver) == ["mail-1"]

    driver.get(server.url("/", ns=namespace))
    wait_for(driver, "a.run-link")
    await start_waiters(client, namespace, [("late-arrival", "orders")])
    WebDriverWait(driver, 30).until(lambda d: "late-arrival" in listed_ids(d))
    assert external_urls(driver, server.base) == []


async def test_paging_goes_through_every_run(server, driver, client, namespace):
    await start_waiters(client, namespace, [(f"p-{i:03d}", "q") for i in range(120)])
    driver.get(server.url("/", ns=namespace))
    seen: list[str] = []
    for _ in range(5):
        wait_for(driver, "a.run-link")
        seen += listed_ids(driver)
        nxt = driver.find_elements(By.ID, "next-page")
        if not nxt:
            break
        nxt[0].click()
        WebDriverWait(driver, 20).until(lambda d: "after_id=" in d.current_url)
    assert sorted(seen) == [f"p-{i:03d}" for i in range(120)]
    assert len(seen) == 120


async def test_run_page_timeline(server, driver, client, namespace):
    worker = await Worker.create(connection=DSN, task_queue="flows", namespace=namespace,
                                 workflow=[pipeline, note_hook, little_child])
    handle = await client.workflow.start(args=["ann"], task_queue="flows",
                                         workflow_name="pipeline", workflow_id="pipeline-ann",
                                         search={"data": {"customer": "ann"}})
    result = await handle.result(timeout=60)
    assert result["branches"] == ["A", "B", "c ok"]
    await worker.stop()

    driver.get(server.url("/run", ns=namespace, id="pipeline-ann"))
    wait_for(driver, "#steps")
    assert driver.find_element(By.ID, "workflow-id").text == "pipeline-ann"
    assert driver.find_element(By.CSS_SELECTOR, "#run-summary .badge").text == "completed"
    assert '"c ok"' in driver.find_element(By.ID, "run-result").text
    rows = driver.find_elements(By.CSS_SELECTOR, "#steps tr.step")
    cells = [[td.text for td in r.find_elements(By.TAG_NAME, "td")] for r in rows]
    kinds = [c[2] for c in cells]
    assert kinds.count("activity") >= 5 and "exec_hook" in kinds and "exec_child" in kinds
    assert any(c[1].startswith("hook note_hook") for c in cells), cells
    retried = [c for c in cells if c[3] == "fail_once"]
    assert retried and retried[0][4] == "done" and retried[0][5] == "2"  # status, attempts
    assert {c[5] for c in cells if c[3] == "shout"} == {"1"}
    # the three gathered activities overlap in time: they are drawn in lanes side by side
    lanes = driver.find_elements(By.CSS_SELECTOR, "#lanes .lane")
    assert sum(1 for lane in lanes if lane.text.startswith("main")) >= 3
    assert driver.find_element(By.CSS_SELECTOR, "#search-fields").text == "customer ann"
    child = driver.find_element(By.CSS_SELECTOR, "a.child-link")
    assert child.text == "kid-of-ann"
    assert external_urls(driver, server.base) == []
    screenshot(driver, "dashboard-run", height=1450)
    child.click()
    wait_for(driver, "#parent-link")
    assert driver.find_element(By.ID, "workflow-id").text == "kid-of-ann"
    assert driver.find_element(By.ID, "parent-link").text == "pipeline-ann"

    await start_waiters(client, namespace, [(f"order-{i}", "orders") for i in range(1, 6)])
    await client.workflow.get_handle(workflow_id="order-2").interrupt(reason="stop")
    driver.get(server.url("/", ns=namespace))
    wait_for(driver, "a.run-link")
    badges = [b.text for b in driver.find_elements(By.CSS_SELECTOR, "table.runs .badge")]
    assert sorted(set(badges)) == ["completed", "interrupted", "running"]
    screenshot(driver, "dashboard-list", height=760)


async def test_the_runs_of_a_continue_as_new_chain(server, driver, client, namespace):
    """The status filter "continued" lists a chain's earlier runs; each run's page shows that
    run (its own steps) and links to the runs before and after it."""
    worker = await Worker.create(connection=DSN, task_queue="chains", namespace=namespace,
                                 workflow=chained)
    handle = await client.workflow.start(args=[2], task_queue="chains", workflow_name="chained",
                                         workflow_id="chain-1")
    assert await handle.result(timeout=60) == 0
    await worker.stop()
    first = (await handle.describe()).first_run_id

    driver.get(server.url("/", ns=namespace, status="continued"))
    wait_for(driver, "a.run-link")
    assert listed_ids(driver) == ["chain-1", "chain-1"]
    links = [a.get_attribute("href") for a in driver.find_elements(By.CSS_SELECTOR, "a.run-link")]
    assert any(f"run={first}" in link for link in links), links

    driver.get(server.url("/run", ns=namespace, id="chain-1", run=first))
    wait_for(driver, "#steps")
    assert driver.find_element(By.CSS_SELECTOR, "#run-summary .badge").text == "continued"
    assert '"RUN 2"' in driver.find_element(By.ID, "steps").text
    assert driver.find_elements(By.ID, "continued-from") == []
    driver.find_element(By.ID, "continued-to").click()  # the second run
    wait_for(driver, "#continued-from")
    assert '"RUN 1"' in driver.find_element(By.ID, "steps").text
    driver.find_element(By.ID, "continued-to").click()  # the last run, the id's current one
    wait_for(driver, "#run-result")
    assert driver.find_element(By.CSS_SELECTOR, "#run-summary .badge").text == "completed"
    assert driver.find_elements(By.ID, "continued-to") == []
    assert external_urls(driver, server.base) == []


async def waiting(namespace: str, workflow_id: str) -> Worker:
    """A worker running ``waiter``, once the run ``workflow_id`` has recorded its wait."""
    worker = await Worker.create(connection=DSN, task_queue="q", namespace=namespace,
                                 workflow=waiter)
    await eventually(lambda: sql(
        f'SELECT 1 FROM "{namespace}".steps s JOIN "{namespace}".workflows w USING (run_id) '
        "WHERE w.workflow_id = %s AND s.kind = 'wait'", workflow_id), timeout=30)
    return worker


async def test_terminate_from_the_browser(server, driver, client, namespace):
    await start_waiters(client, namespace, [("to-stop", "q")])
    worker = await waiting(namespace, "to-stop")
    handle = client.workflow.get_handle(workflow_id="to-stop")
    driver.get(server.url("/run", ns=namespace, id="to-stop"))
    wait_for(driver, "#terminate")
    assert driver.find_element(By.CSS_SELECTOR, "#waits").text.startswith("wait dashboard-go")
    driver.find_element(By.CSS_SELECTOR, "input[name=reason]").send_keys(HOSTILE_REASON)
    driver.find_element(By.ID, "terminate").click()
    wait_for(driver, "#confirm")
    assert (await handle.describe()).status == "running"  # nothing happens before confirming
    assert HOSTILE_REASON in driver.page_source.replace("&lt;", "<").replace(
        "&gt;", ">").replace("&amp;", "&").replace("&#39;", "'")
    driver.find_element(By.ID, "confirm").click()
    wait_for(driver, "#done")
    assert (await handle.describe()).status == "interrupted"
    assert driver.find_element(By.CSS_SELECTOR, "#run-summary .badge").text == "interrupted"
    assert HOSTILE_REASON in driver.find_element(By.ID, "run-error").text
    assert no_alert(driver)
    assert driver.find_elements(By.ID, "terminate") == []
    await worker.stop()


async def test_signal_from_the_browser(server, driver, client, namespace):
    await start_waiters(client, namespace, [("to-signal", "q")])
    worker = await waiting(namespace, "to-signal")
    driver.get(server.url("/run", ns=namespace, id="to-signal"))
    wait_for(driver, "#send-signal")
    assert driver.find_element(By.NAME, "signal_id").get_attribute("value") == "dashboard-go"
    driver.find_element(By.NAME, "data").send_keys('{"go": true}')
    driver.find_element(By.ID, "send-signal").click()
    wait_for(driver, "#confirm").click()
    wait_for(driver, "#done")
    result = await client.workflow.get_handle(workflow_id="to-signal").result(timeout=60)
    await worker.stop()
    assert result == {"go": True}


async def test_hostile_workflow_id_is_shown_as_text(server, driver, client, namespace):
    await start_waiters(client, namespace, [(HOSTILE_ID, "q")])
    await client.workflow.get_handle(workflow_id=HOSTILE_ID).interrupt(reason=HOSTILE_REASON)
    driver.get(server.url("/", ns=namespace))
    wait_for(driver, "a.run-link")
    time.sleep(0.5)
    assert no_alert(driver)
    assert listed_ids(driver) == [HOSTILE_ID]
    assert driver.find_elements(By.CSS_SELECTOR, "main img") == []
    driver.find_element(By.CSS_SELECTOR, "a.run-link").click()
    wait_for(driver, "#workflow-id")
    time.sleep(0.5)
    assert no_alert(driver)
    assert driver.find_element(By.ID, "workflow-id").text == HOSTILE_ID
    assert HOSTILE_REASON in driver.find_element(By.ID, "run-error").text
    assert driver.find_elements(By.CSS_SELECTOR, "main img, main script, main b.bold") == []
    assert external_urls(driver, server.base) == []


async def test_queue_and_schedule_pages(server, driver, client, namespace):
    await start_waiters(client, namespace, [("queued-1", "billing"), ("queued-2", "billing")])
    driver.get(server.url("/queues", ns=namespace))
    table = wait_for(driver, "#queues")
    row = [r.text for r in table.find_elements(By.CSS_SELECTOR, "tbody tr")
           if r.text.startswith("billing ")]
    assert row and row[0].split()[1] == "2"
    assert external_urls(driver, server.base) == []
    driver.get(server.url("/schedules", ns=namespace))
    wait_for(driver, "h1")
    if getattr(client, "schedule", None) is None:
        assert driver.find_element(By.ID, "no-schedules").text.startswith("No schedules")
    assert external_urls(driver, server.base) == []


async def test_run_page_refreshes_live_and_pages_steps(server, driver, client, namespace):
    await start_waiters(client, namespace, [("long-run", "q")])
    run_id = (await sql(f'SELECT run_id FROM "{namespace}".workflows '
                        "WHERE workflow_id = 'long-run'"))[0][0]
    await sql(f"""INSERT INTO "{namespace}".steps (run_id, dim, idx, kind, name, status,
                  created_at, completed_at)
                  SELECT %s, '', i, 'activity', 'step', 'done', now(), now()
                    FROM generate_series(0, 1199) i""", run_id)
    driver.get(server.url("/run", ns=namespace, id="long-run"))
    wait_for(driver, "#more-steps")
    assert len(driver.find_elements(By.CSS_SELECTOR, "#steps tr.step")) == 500
    driver.find_element(By.CSS_SELECTOR, "#more-steps a").click()
    WebDriverWait(driver, 20).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "#steps tr.step")) == 1000)
    driver.find_element(By.CSS_SELECTOR, "#more-steps a").click()
    WebDriverWait(driver, 20).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "#steps tr.step")) == 1200)
    assert driver.find_elements(By.ID, "more-steps") == []
    # read in one go: the live refresh may swap elements between two WebDriver calls
    idxs = [int(t) for t in driver.execute_script(
        "return [...document.querySelectorAll('#steps td.num:first-child')]"
        ".map(td => td.textContent.trim())")]
    assert idxs == list(range(1200))
    # the status card polls while the run is live: it turns without a reload
    await client.workflow.get_handle(workflow_id="long-run").interrupt(reason="enough")
    WebDriverWait(driver, 30, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: d.find_element(By.CSS_SELECTOR, "#run-summary .badge").text == "interrupted")


async def test_namespace_switcher(server, driver, client, namespace):
    other = Client(connection=DSN, namespace=f"{namespace}_b")
    await start_waiters(client, namespace, [("in-first-namespace", "q")])
    try:
        await other.workflow.start(args=[], task_queue="q", workflow_name="waiter",
                                   workflow_id="in-other-namespace")
        driver.get(server.url("/", ns=namespace))
        wait_for(driver, ".ns-switch summary").click()
        links = {a.text: a for a in driver.find_elements(By.CSS_SELECTOR, ".ns-switch a")}
        assert namespace in links and f"{namespace}_b" in links
        links[f"{namespace}_b"].click()
        WebDriverWait(driver, 20).until(
            lambda d: d.find_element(By.ID, "current-ns").text == f"{namespace}_b")
        assert listed_ids(driver) == ["in-other-namespace"]
    finally:
        await sql(f'DROP SCHEMA IF EXISTS "{namespace}_b" CASCADE')
