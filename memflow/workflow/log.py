"""``workflow.logger``: a logger for workflow code that knows which run it belongs to and
stays silent while the thread replays code whose effects its history already holds."""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

from memflow.engine.thread import _current


class WorkflowLogger(logging.LoggerAdapter[logging.Logger]):
    """Records carry ``workflow_id``, ``run_id``, ``workflow_name``, ``namespace`` and (in a
    hook thread) ``workflow_dimension`` as ``extra``; nothing is logged while replaying, so a
    record appears once however often the workflow is rebuilt. Outside a workflow it logs
    plainly."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        """Add the running workflow's identity to the record's ``extra``."""
        thread = _current.get()
        if thread is not None:
            extra = {"workflow_id": thread.ref.workflow_id, "run_id": thread.ref.run_id,
                     "workflow_name": thread.name, "namespace": thread.namespace}
            if thread.ref.dim:
                extra["workflow_dimension"] = thread.ref.dim
            extra.update(kwargs.get("extra") or {})
            kwargs["extra"] = extra
        return msg, kwargs

    def isEnabledFor(self, level: int) -> bool:
        """False while the workflow replays; else the logger's own answer."""
        thread = _current.get()
        if thread is not None and thread.replaying:
            return False
        return self.logger.isEnabledFor(level)


logger = WorkflowLogger(logging.getLogger("memflow.workflow"), {})
