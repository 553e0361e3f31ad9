"""The pytest plugin, used from a project with no conftest, in pytest-asyncio's auto and strict
modes: through its installed entry point (a throwaway venv) and with ``-p``."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = "memflow.testing.pytest_plugin"

USER_TESTS = '''
import pytest
from memflow import workflow

async def month_away() -> float:
    return await workflow.sleep_for("30 days")

async def blink() -> float:
    return await workflow.sleep_for(0.05)

MARK
async def test_skipping(memflow_env):
    assert memflow_env.supports_time_skipping
    began = memflow_env.now()
    await memflow_env.worker(task_queue="q", workflow=month_away)
    handle = await memflow_env.client.workflow.start(args=[], task_queue="q",
                                                     workflow_name=month_away)
    assert await handle.result(timeout=60) == 30 * 86400
    assert (memflow_env.now() - began).days >= 30

MARK
async def test_local(memflow_local_env):
    assert not memflow_local_env.supports_time_skipping
    await memflow_local_env.worker(task_queue="q", workflow=blink)
    handle = await memflow_local_env.client.workflow.start(args=[], task_queue="q",
                                                           workflow_name=blink)
    assert await handle.result(timeout=60) == 0.05
'''


def _project(tmp_path: Path, mode: str) -> Path:
    project = tmp_path / f"user_project_{mode}"
    project.mkdir()
    (project / "pytest.ini").write_text(
        f"[pytest]\nasyncio_mode = {mode}\nasyncio_default_fixture_loop_scope = function\n")
    mark = "@pytest.mark.asyncio" if mode == "strict" else ""
    (project / "test_user_workflows.py").write_text(USER_TESTS.replace("MARK", mark))
    assert not list(project.rglob("conftest.py"))
    return project


def _run(python: str, project: Path, *args: str, pythonpath: str | None) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    proc = subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
                          cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 passed" in proc.stdout, proc.stdout


def test_the_entry_point_is_declared() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["entry-points"]["pytest11"] == {PLUGIN: PLUGIN}


@pytest.fixture(scope="module")
def venv_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A throwaway venv (seeing the global packages) with this checkout installed editable."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
                   check=True, timeout=120)
    python = str(venv / "bin" / "python")
    pip = subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "-e", str(ROOT)],
                         capture_output=True, text=True, timeout=300)
    if pip.returncode != 0:
        pytest.skip(f"cannot install the package into a venv here: {pip.stderr[-500:]}")
    return python


def test_fixtures_by_entry_point_without_conftest_auto_mode(venv_python: str,
                                                            tmp_path: Path) -> None:
    _run(venv_python, _project(tmp_path, "auto"), pythonpath=None)


def test_fixtures_by_p_option_strict_mode(tmp_path: Path) -> None:
    _run(sys.executable, _project(tmp_path, "strict"), "-p", PLUGIN, pythonpath=str(ROOT))
