"""Bad input fails at the call: durations Postgres cannot hold, bad task queue names, and
unknown keyword arguments."""

from __future__ import annotations

import pytest

from memflow import Client, Worker, register_activity_worker, workflow
from tests.support import sql

BAD_QUEUES = ["q" * 201, "tab\there", "new\nline", "nul\x00", "bell\x07"]


async def hi_probe(case: str) -> str:
    calls = {
        "sleep": lambda: workflow.sleep_for(1e12),
        "sleep_str": lambda: workflow.sleep_for("1000000 days"),
        "wait": lambda: workflow.wait_for("s", timeout=1e12),
        "child_expire": lambda: workflow.start_child(args=[], workflow_name="hi_probe",
                                                     expire=1e12),
        "child_queue": lambda: workflow.start_child(args=[], workflow_name="hi_probe",
                                                    task_queue="x" * 201),
        "exec_child_queue": lambda: workflow.exec_child(args=[], workflow_name="hi_probe",
                                                        task_queue="bad\nqueue"),
        "hook_queue": lambda: workflow.hook(task_queue="bad\tq", workflow_name="hi_probe"),
        "proxy_queue": lambda: workflow.proxy_activities(task_queue="q" * 500),
        "child_kwarg": lambda: workflow.exec_child(args=[], workflow_name="hi_probe",
                                                   namepsace="x"),
        "start_child_kwarg": lambda: workflow.start_child(args=[], workflow_name="hi_probe",
                                                          namepsace="x"),
        "hook_kwarg": lambda: workflow.hook(task_queue="hi", workflow_name="hi_probe",
                                            namepsace="x"),
        "exec_hook_kwarg": lambda: workflow.exec_hook(task_queue="hi", workflow_name="hi_probe",
                                                      namepsace="x"),
    }
    try:
        calls[case]()
    except (ValueError, TypeError) as err:
        return f"{type(err).__name__}: {err}"
    return "no error"


CASES = {
    "sleep": "ValueError: sleep_for duration", "sleep_str": "ValueError: sleep_for duration",
    "wait": "ValueError: wait_for timeout", "child_expire": "ValueError: expire",
    "child_queue": "ValueError: start_child: task_queue is longer than 200",
    "exec_child_queue": "ValueError: exec_child: task_queue 'bad\\nqueue' holds non-printable",
    "hook_queue": "ValueError: hook: task_queue", "proxy_queue": "ValueError: task_queue is",
    "child_kwarg": "TypeError", "start_child_kwarg": "TypeError", "hook_kwarg": "TypeError",
    "exec_hook_kwarg": "TypeError",
}


async def test_bad_input_inside_workflows(client, dsn, namespace):
    await Worker.create(connection=dsn, namespace=namespace, task_queue="hi",
                        workflow=[hi_probe])
    handles = {case: await client.workflow.start(args=[case], task_queue="hi",
                                                 workflow_name="hi_probe")
               for case in CASES}
    for case, expected in CASES.items():
        out = await handles[case].result(timeout=30)
        assert out.startswith(expected), (case, out)
    # nothing was recorded by the refused calls
    rows = await sql(f'SELECT count(*) FROM "{namespace}".steps')
    assert rows == [(0,)]


async def test_bad_input_from_outside(client, dsn, namespace):
    for bad in BAD_QUEUES:
        with pytest.raises(ValueError, match="task_queue"):
            await client.workflow.start(args=[], task_queue=bad, workflow_name="hi_probe")
        with pytest.raises(ValueError, match="task_queue"):
            await Worker.create(connection=dsn, namespace=namespace, task_queue=bad,
                                workflow=[hi_probe])
        with pytest.raises(ValueError, match="task_queue"):
            await register_activity_worker({"connection": dsn, "namespace": namespace,
                                            "task_queue": bad}, {"a": lambda: 1})
        with pytest.raises(ValueError, match="task_queue"):
            await client.workflow.hook(workflow_id="w", task_queue=bad, workflow_name="x")
        with pytest.raises(ValueError, match="task_queue"):
            await client.workflow.search(bad, None, None, query={"a": "b"})
    for key, value in (("expire", 1e12), ("pending", 1e12), ("expire", "200000 weeks")):
        with pytest.raises(ValueError, match=key):
            await client.workflow.start(args=[], task_queue="hi", workflow_name="hi_probe",
                                        **{key: value})
    with pytest.raises(ValueError, match="maximum_interval"):
        await client.workflow.start(args=[], task_queue="hi", workflow_name="hi_probe",
                                    config={"maximum_interval": 1e12})
    # unknown keyword arguments are a TypeError, never a silent default
    with pytest.raises(TypeError):
        Client(connection=dsn, namepsace=namespace)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        await Worker.create(connection=dsn, namepsace=namespace, task_queue="hi",
                            workflow=[hi_probe])
    with pytest.raises(TypeError):
        await client.workflow.start(args=[], task_queue="hi", workflow_name="hi_probe",
                                    namepsace=namespace)
    with pytest.raises(TypeError):
        await client.workflow.hook(workflow_id="w", task_queue="hi", workflow_name="x",
                                   namepsace=namespace)
    with pytest.raises(TypeError, match="unknown config key"):
        await register_activity_worker({"connection": dsn, "namepsace": namespace,
                                        "task_queue": "hi"}, {"a": lambda: 1})
    handle = client.workflow.get_handle("hi", "hi_probe", "someone")
    with pytest.raises(TypeError):
        client.workflow.get_handle("hi", "hi_probe", "someone", namepsace="x")
    with pytest.raises(TypeError):
        await handle.result(timout=3)
    with pytest.raises(TypeError):
        await handle.interrupt(reson="x")
    # nothing was written
    rows = await sql("SELECT count(*) FROM information_schema.tables WHERE table_schema = %s "
                     "AND table_name = 'workflows'", namespace)
    if rows[0][0]:
        assert await sql(f'SELECT count(*) FROM "{namespace}".workflows') == [(0,)]
