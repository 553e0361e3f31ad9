"""``Client``: start workflows, send signals, find workflows, get handles."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from memflow import lifecycle, payload
from memflow.connection import Connection
from memflow.durations import parse_duration
from memflow.errors import DuplicateJobError, MemFlowError, WorkflowNotFoundError
from memflow.handle import WorkflowHandle
from memflow.ids import (
    check_concurrency_key,
    check_id,
    check_priority,
    check_queue,
    function_name,
    guid,
)
from memflow.observe import tracing
from memflow.queues import QueueClient
from memflow.retry import RetryPolicy
from memflow.schedules.client import ScheduleClient
from memflow.store import NamespaceStore, start_params, validate_namespace
from memflow.workflow.timeouts import workflow_timeout

DEFAULT_NAMESPACE = "memflow"


class WorkflowClient:
    """``client.workflow``: the workflow operations of a client."""

    def __init__(self, client: Client):
        self._client = client

    async def start(self, args: list[Any] | None = None, task_queue: str | None = None,
                    workflow_name: Any = None, workflow_id: str | None = None,
                    namespace: str | None = None, expire: Any = None,
                    search: dict[str, Any] | None = None, entity: str | None = None,
                    signal_in: bool | None = None, pending: Any = None,
                    config: dict[str, Any] | None = None,
                    id_reuse_policy: str = "allow_duplicate",
                    id_conflict_policy: str = "fail", execution_timeout: Any = None,
                    run_timeout: Any = None, priority: int = 0,
                    concurrency_key: str | None = None, debounce: Any = None
                    ) -> WorkflowHandle:
        """Start a workflow run; returns a handle bound to it.

        ``id_conflict_policy`` says what a live run of ``workflow_id`` means: ``"fail"``
        (``DuplicateJobError``), ``"use_existing"`` (the handle of that run) or
        ``"terminate_existing"`` (it is terminated and this run replaces it);
        ``id_reuse_policy`` what a finished run whose ``expire`` has passed means:
        ``"allow_duplicate"``, ``"allow_duplicate_failed_only"`` (only after a failed,
        interrupted, cancelled or timed-out run) or ``"reject_duplicate"``. The database
        decides, in one statement: racing starts of one id never both win.

        ``execution_timeout`` (the whole workflow) and ``run_timeout`` (this run) — seconds,
        a duration string or a ``timedelta`` — fail the run with ``MemFlowTimeoutError``
        (596, status ``"timed_out"``) when they pass; its exec_child children are cancelled.

        Flow control (docs/flow-control.md): ``priority`` (higher runs first among the
        queue's waiting work), ``concurrency_key`` (counted by the queue's
        ``per_key_concurrency``), ``debounce`` (a duration, with a ``workflow_id``: the run
        waits that long, pending; a start of the same id meanwhile replaces its args and
        restarts the wait instead of failing)."""
        ns_name = validate_namespace(namespace or self._client.namespace)
        _check_policy(id_reuse_policy, "id_reuse_policy", ID_REUSE_POLICIES)
        _check_policy(id_conflict_policy, "id_conflict_policy", ID_CONFLICT_POLICIES)
        if args is None:
            args = []
        if not isinstance(args, list | tuple):
            raise TypeError("args must be a list of the workflow function's arguments")
        queue = check_queue(task_queue)
        name = function_name(workflow_name)
        wf_id = check_id(workflow_id if workflow_id is not None else guid(), "workflow_id")
        args_json = payload.dumps(list(args), "args")
        if search is not None and not isinstance(search, dict):
            raise TypeError("search must be a dict like {'data': {...}}")
        search_data = (search or {}).get("data", {})
        if not isinstance(search_data, dict):
            raise TypeError("search['data'] must be a dict")
        search_json = payload.dumps({str(k): _search_value(v) for k, v in search_data.items()},
                                    "search")
        if config is not None:
            RetryPolicy.of(config)
        config_json = payload.dumps(config or {}, "config")
        expire_s = parse_duration(expire, "expire") if expire is not None else 1.0
        pending_s = parse_duration(pending, "pending") if pending is not None else None
        if entity is not None and not isinstance(entity, str):
            raise TypeError("entity must be a string (the entity type name)")
        timeout_s, timeout_payload = workflow_timeout(execution_timeout, run_timeout, wf_id)
        check_priority(priority)
        check_concurrency_key(concurrency_key)
        debounce_s = None
        if debounce is not None:
            if workflow_id is None:
                raise ValueError("debounce needs a workflow_id: starts of the same id within "
                                 "the window are coalesced")
            if pending_s is not None:
                raise ValueError("debounce and pending cannot be combined")
            debounce_s = parse_duration(debounce, "debounce")
            if debounce_s <= 0:
                raise ValueError(f"debounce must be longer than 0, got {debounce!r}")
        run_id = guid()
        params = start_params(
            workflow_id=wf_id, run_id=run_id, name=name, task_queue=queue,
            status="pending" if pending_s is not None else "running", args_json=args_json,
            entity_type=entity, search_json=search_json, config_json=config_json,
            signal_in=signal_in, expire=expire_s, pending=pending_s,
            id_reuse_policy=id_reuse_policy, id_conflict_policy=id_conflict_policy,
            terminate_error_json=payload.dumps({
                "message": f"workflow {wf_id} was terminated by a new start "
                           "(id_conflict_policy='terminate_existing')",
                "code": 410, "type": "MemFlowInterruptedError", "stack": "", "throw": True}),
            timeout=timeout_s, timeout_payload_json=timeout_payload, priority=priority,
            concurrency_key=concurrency_key, debounce=debounce_s)
        ns = await self._client._namespace(ns_name)
        with tracing.client_span("StartWorkflow", name, {
                "memflow.workflow_id": wf_id, "memflow.run_id": run_id,
                "memflow.task_queue": task_queue}) as span:
            params["trace"] = tracing.carrier_json(span)
            if debounce_s is not None:
                how, bound = "started", await ns.workflows.start_debounced(params)
            else:
                how, bound = await ns.workflows.start(params)
        if how == "duplicate" or bound is None:
            raise DuplicateJobError(wf_id)
        return WorkflowHandle(self._client, ns_name, wf_id, task_queue, name, bound)

    def get_handle(self, task_queue: str | None = None, workflow_name: Any = None,
                   workflow_id: str | None = None, namespace: str | None = None,
                   run_id: str | None = None) -> WorkflowHandle:
        """A handle on the latest run of ``workflow_id``, or bound to its run ``run_id``
        (which stays readable after the id is reused); no I/O."""
        ns_name = validate_namespace(namespace or self._client.namespace)
        name = None if workflow_name is None else function_name(workflow_name)
        if run_id is not None:
            check_id(run_id, "run_id")
        return WorkflowHandle(self._client, ns_name, check_id(workflow_id, "workflow_id"),
                              task_queue, name, run_id)

    async def signal(self, signal_id: str, data: Any = None,
                     namespace: str | None = None) -> None:
        """Send a signal: delivered to the workflows waiting for it, or kept for the first
        ``wait_for`` of that id in the namespace."""
        ns_name = validate_namespace(namespace or self._client.namespace)
        check_id(signal_id, "signal_id")
        data_json = payload.dumps(data, "signal data")
        ns = await self._client._namespace(ns_name)
        with tracing.client_span("SignalWorkflow", None, {
                "memflow.signal_id": signal_id, "memflow.namespace": ns_name}):
            await ns.messages.signal(signal_id, data_json)


    async def hook(self, workflow_id: str, task_queue: str, workflow_name: Any,
                   args: list[Any] | None = None, namespace: str | None = None) -> str:
        """Run ``workflow_name`` as a new thread of the running workflow ``workflow_id``
        (sharing its entity); returns the hook's thread id."""
        ns_name = validate_namespace(namespace or self._client.namespace)
        check_id(workflow_id, "workflow_id")
        check_queue(task_queue)
        name = function_name(workflow_name)
        if args is None:
            args = []
        if not isinstance(args, list | tuple):
            raise TypeError("args must be a list")
        params = {"target_id": workflow_id, "hook_dim": f"~{guid()}", "hook_name": name,
                  "hook_queue": task_queue,
                  "hook_args": payload.dumps(list(args), "args")}
        ns = await self._client._namespace(ns_name)
        dim = await ns.messages.hook(params)
        if dim is None:
            if await ns.workflows.get(workflow_id) is None:
                raise WorkflowNotFoundError(workflow_id)
            raise MemFlowError(f"workflow {workflow_id} does not accept hooks (not running, "
                               "or signal_in=False)")
        return dim

    async def subscribe(self, topic: str, callback: Callable[[Any], Any],
                        namespace: str | None = None) -> Callable[[], None]:
        """Call ``callback(message)`` for each event later emitted to ``topic`` by
        ``workflow.emit``; returns a function that stops the subscription."""
        ns_name = validate_namespace(namespace or self._client.namespace)
        ns = await self._client._namespace(ns_name)
        last = await ns.messages.last_event_id()
        lock = asyncio.Lock()
        loop = asyncio.get_running_loop()

        async def drain() -> None:
            nonlocal last
            async with lock:
                for ev in await ns.messages.events_since(topic, last):
                    last = ev["id"]
                    outcome = callback(ev["message"])
                    if asyncio.iscoroutine(outcome):
                        await outcome

        draining: set[asyncio.Task[None]] = set()

        def wake(_key: str) -> None:
            task = loop.create_task(drain())
            draining.add(task)
            task.add_done_callback(draining.discard)

        unsubscribe = ns.store.notifier.subscribe(ns_name, f"e:{topic}", wake)
        await ns.store.notifier.wait_listening(ns_name)
        return unsubscribe

    async def search(self, task_queue: str | None = None, workflow_name: Any = None,
                     namespace: str | None = None, index: str | None = None, *params: Any,
                     query: dict[str, Any] | None = None, timeout: float = 30.0) -> list[Any]:
        """Find workflows of the namespace (of ``task_queue``/``workflow_name`` when given).

        ``query={"field": "value"}``: the ids of the workflows whose search fields hold all
        those values (as stored: text as is, other values as JSON text), oldest first.
        ``search(q, name, ns, "sql", sql_text, *args)``: the rows (dicts) of a SELECT over
        ``workflows``, with ``$1…``/``%s`` placeholders bound to ``args``; it runs read-only
        within ``timeout`` seconds (see docs/search.md for exactly what it sees).
        """
        from memflow.workflow.search import search_fields

        ns_name = validate_namespace(namespace or self._client.namespace)
        name = None if workflow_name is None else function_name(workflow_name)
        if task_queue is not None and not isinstance(task_queue, str):
            raise TypeError("task_queue must be a string or None")
        if task_queue is not None:
            check_queue(task_queue)
        if index is None:
            if params or query is None:
                raise TypeError("search: give query={'field': 'value'}, or the index 'sql' "
                                "followed by the SQL text and its parameters")
            fields_json = payload.dumps(search_fields((query,), "search query") if query
                                        else {})
            return await (await self._client._namespace(ns_name)).search.search_ids(
                fields_json, task_queue, name)
        if index != "sql" or query is not None:
            raise ValueError(f"search: unknown index {index!r}; use 'sql' (or query=)")
        if not params or not isinstance(params[0], str) or not params[0].strip():
            raise TypeError("search: after 'sql' give the SQL text, then its parameters")
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ValueError("search: timeout must be a positive number of seconds")
        for value in params[1:]:
            if isinstance(value, dict):
                payload.dumps(value, "search parameter")
        ns = await self._client._namespace(ns_name)
        return await ns.sql_search.search_sql(params[0], list(params[1:]), task_queue, name,
                                   float(timeout))


ID_REUSE_POLICIES = ("allow_duplicate", "allow_duplicate_failed_only", "reject_duplicate")
ID_CONFLICT_POLICIES = ("fail", "use_existing", "terminate_existing")


def _check_policy(value: Any, what: str, allowed: tuple[str, ...]) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be one of {', '.join(map(repr, allowed))}")
    if value not in allowed:
        raise ValueError(f"{what} {value!r} is not one of {', '.join(map(repr, allowed))}")


def _search_value(value: Any) -> str:
    return value if isinstance(value, str) else payload.dumps(value, "search value")


class Client:
    """Starts and addresses workflows; cheap to create, connects on first use."""

    def __init__(self, connection: Any = None, namespace: str = DEFAULT_NAMESPACE):
        self._connection = connection
        self.namespace = validate_namespace(namespace)
        self.workflow = WorkflowClient(self)
        self.schedule = ScheduleClient(self)
        self.queue = QueueClient(self)
        self._namespaces: dict[str, NamespaceStore] = {}
        self._lock = asyncio.Lock()
        self._tracked = False

    async def _namespace(self, name: str) -> NamespaceStore:
        ns = self._namespaces.get(name)
        if ns is not None and not ns.store.closed:
            return ns
        async with self._lock:
            conn = await Connection.connect(self._connection)
            store = await conn.store("client")
            ns = await NamespaceStore.open(store, name)
            self._namespaces[name] = ns
            if not self._tracked:
                lifecycle.track(self)
                self._tracked = True
            return ns

    async def close(self) -> None:
        """Forget this client's connections (pools are shared and closed by ``shutdown``)."""
        self._namespaces.clear()
        lifecycle.untrack(self)
        self._tracked = False
