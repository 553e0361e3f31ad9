"""Packaging: the embedded Postgres is an extra, and the README's commands are what CI runs."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import tomllib
from pathlib import Path

import pytest

from memflow import embedded
from memflow.connection import resolve_dsn

ROOT = Path(__file__).resolve().parent.parent


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=\[ ;]", r, maxsplit=1)[0].lower() for r in requirements}


def test_pgserver_is_the_embedded_extra_and_in_dev():
    project = _pyproject()["project"]
    assert "pgserver" not in _names(project["dependencies"])
    assert "pgserver" in _names(project["optional-dependencies"]["embedded"])
    assert "pgserver" in _names(project["optional-dependencies"]["dev"])
    assert "import-linter" in _names(project["optional-dependencies"]["dev"])


def test_readme_commands_install_the_extra_and_match_ci():
    blocks = re.findall(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    demo, tests = blocks[0].strip(), blocks[1].strip()
    assert demo == 'python3 -m pip install -e ".[embedded]" && memflow demo'
    assert '".[dev]"' in tests and "lint-imports" in tests
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1] == tests


@pytest.fixture
def no_pgserver(monkeypatch, tmp_path):
    monkeypatch.delenv("MEMFLOW_DATABASE_URL", raising=False)
    monkeypatch.setenv("MEMFLOW_HOME", str(tmp_path))
    monkeypatch.setitem(sys.modules, "pgserver", None)  # `import pgserver` raises ImportError


async def test_missing_extra_names_the_install_command(no_pgserver, tmp_path):
    with pytest.raises(RuntimeError, match=re.escape("pip install 'memflow[embedded]'")):
        await resolve_dsn(None)
    assert not (tmp_path / "pgdata").exists()
    assert str(tmp_path / "pgdata") not in embedded._servers


async def test_cli_without_the_extra_says_how_to_install_it(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MEMFLOW_DATABASE_URL"}
    env["MEMFLOW_HOME"] = str(tmp_path)
    code = ("import sys; sys.modules['pgserver'] = None; sys.argv[0] = 'memflow'; "
            "from memflow.cli import main; main()")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, "db", "info", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 1
    lines = err.decode().strip().splitlines()
    assert lines[-1].startswith("error: ") and "pip install 'memflow[embedded]'" in lines[-1]


def _top_level_modules() -> set[str]:
    package = ROOT / "memflow"
    names = {p.stem for p in package.glob("*.py") if p.stem != "__init__"}
    names |= {p.name for p in package.iterdir() if (p / "__init__.py").exists()}
    return {f"memflow.{n}" for n in names}


def test_every_module_has_a_layer_and_only_the_store_may_import_psycopg():
    contracts = _pyproject()["tool"]["importlinter"]["contracts"]
    layers = next(c for c in contracts if c["type"] == "layers")["layers"]
    layered = {m.strip().strip("()") for layer in layers for m in re.split(r"[|:]", layer)}
    forbidden = next(c for c in contracts if c["type"] == "forbidden")
    modules = _top_level_modules()
    assert modules - layered == set(), "give these modules a layer in pyproject.toml"
    assert modules - {"memflow.store"} - set(forbidden["source_modules"]) == set(), \
        "add these modules to the psycopg contract's source_modules in pyproject.toml"
