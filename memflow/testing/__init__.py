"""The test kit: ``WorkflowEnvironment`` (a fresh namespace, optionally with time skipping),
``ActivityEnvironment`` (run one activity function alone), ``Replayer`` (replay recorded
histories offline, see docs/deploys.md) and a pytest plugin (fixtures ``memflow_env`` and
``memflow_local_env``). See docs/testing.md."""

from memflow.testing.activity_env import ActivityEnvironment
from memflow.testing.environment import WorkflowEnvironment
from memflow.testing.replayer import Replayer, ReplayResult

__all__ = ["ActivityEnvironment", "ReplayResult", "Replayer", "WorkflowEnvironment"]
