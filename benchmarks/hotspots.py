"""Profile W1: ``python -m benchmarks.hotspots [--n 500] [--no-profiler] [--out DIR]``.

Runs W1 (same worker, same driver, same warm-up) while it

- counts, per workflow, the SQL statements the process sends (grouped by statement), the
  explicit transactions, the pipelines and the connection-pool checkouts, by wrapping psycopg
  methods in this process only (the library itself is untouched);
- samples the Python stack with ``pyinstrument`` (when installed) and lists the functions with
  the most own time, and the memflow functions with the most total time.

The text report goes to stdout; pyinstrument's full tree to ``DIR/w1-profile.txt``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import psycopg_pool

from benchmarks.common import session
from benchmarks.flows import ACTIVITIES, WORKFLOWS, three_steps


class Counters:
    """What the wrapped psycopg methods saw while ``on``."""

    def __init__(self) -> None:
        self.on = False
        self.statements: collections.Counter[str] = collections.Counter()
        self.pipelined = 0
        self.transactions = 0
        self.pipelines = 0
        self.checkouts = 0


COUNTERS = Counters()
_SCHEMA = re.compile(r'"bench_[a-z0-9_]+"')


def _key(query: Any) -> str:
    text = query if isinstance(query, str) else str(query)
    text = _SCHEMA.sub("{s}", " ".join(text.split()))
    return text[:110]


@contextlib.contextmanager
def instrumented() -> Iterator[Counters]:
    """Wrap psycopg's cursor execute, transaction, pipeline and the pool's getconn."""
    cursor_execute = psycopg.AsyncCursor.execute
    transaction = psycopg.AsyncConnection.transaction
    pipeline = psycopg.AsyncConnection.pipeline
    getconn = psycopg_pool.AsyncConnectionPool.getconn

    async def execute(self: Any, query: Any, params: Any = None, **kw: Any) -> Any:
        if COUNTERS.on:
            COUNTERS.statements[_key(query)] += 1
            if getattr(self.connection, "_pipeline", None) is not None:
                COUNTERS.pipelined += 1
        return await cursor_execute(self, query, params, **kw)

    def tx(self: Any, *a: Any, **kw: Any) -> Any:
        if COUNTERS.on:
            COUNTERS.transactions += 1
        return transaction(self, *a, **kw)

    def pipe(self: Any, *a: Any, **kw: Any) -> Any:
        if COUNTERS.on:
            COUNTERS.pipelines += 1
        return pipeline(self, *a, **kw)

    async def checkout(self: Any, *a: Any, **kw: Any) -> Any:
        if COUNTERS.on:
            COUNTERS.checkouts += 1
        return await getconn(self, *a, **kw)

    psycopg.AsyncCursor.execute = execute  # type: ignore[method-assign]
    psycopg.AsyncConnection.transaction = tx  # type: ignore[method-assign]
    psycopg.AsyncConnection.pipeline = pipe  # type: ignore[method-assign]
    psycopg_pool.AsyncConnectionPool.getconn = checkout  # type: ignore[method-assign]
    try:
        yield COUNTERS
    finally:
        psycopg.AsyncCursor.execute = cursor_execute  # type: ignore[method-assign]
        psycopg.AsyncConnection.transaction = transaction  # type: ignore[method-assign]
        psycopg.AsyncConnection.pipeline = pipeline  # type: ignore[method-assign]
        psycopg_pool.AsyncConnectionPool.getconn = getconn  # type: ignore[method-assign]


async def run_w1(n: int, profiler: Any) -> float:
    """W1 with the counters (and the profiler) on for the measured part only."""
    async with session("w1", WORKFLOWS, ACTIVITIES) as s:
        await s.run(three_steps, ["warm"])
        COUNTERS.on = True
        if profiler is not None:
            profiler.start()
        t0 = time.perf_counter()

        async def one(i: int) -> None:
            await (await s.start(three_steps, [f"w{i}"])).result()
        await asyncio.gather(*(one(i) for i in range(n)))
        total = time.perf_counter() - t0
        if profiler is not None:
            profiler.stop()
        COUNTERS.on = False
    return total


def _frames(frame: Any) -> Iterator[Any]:
    stack = [frame]
    while stack:
        f = stack.pop()
        yield f
        stack.extend(f.children)


def profile_tables(profiler: Any, top: int) -> str:
    """Top functions by own time, and memflow functions by total time (not double-counted)."""
    root = profiler.last_session.root_frame()
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    for f in _frames(root):
        name = f"{f.function} ({f.file_path_short}:{f.line_no})"
        own[name] += f.total_self_time
        if "memflow" in (f.file_path or "") and not _has_ancestor_named(f, name):
            total[name] += f.time
    whole = root.time or 1.0
    lines = [f"sampled {whole:.2f}s", "", "top own time:"]
    lines += [f"  {t / whole:6.1%}  {k}" for k, t in own.most_common(top)]
    lines += ["", "memflow functions by total (inclusive) time:"]
    lines += [f"  {t / whole:6.1%}  {k}" for k, t in total.most_common(top)]
    return "\n".join(lines)


def _has_ancestor_named(frame: Any, name: str) -> bool:
    p = frame.parent
    while p is not None:
        if f"{p.function} ({p.file_path_short}:{p.line_no})" == name:
            return True
        p = p.parent
    return False


def main(argv: list[str] | None = None) -> None:
    """Run the profile and print the report."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.hotspots")
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--no-profiler", action="store_true")
    p.add_argument("--out", default="/tmp/memflow-hotspots")
    opts = p.parse_args(sys.argv[1:] if argv is None else argv)
    profiler = None
    if not opts.no_profiler:
        try:
            from pyinstrument import Profiler
            profiler = Profiler(interval=0.0005, async_mode="disabled")
        except ImportError:
            print("pyinstrument is not installed: statement counts only", file=sys.stderr)
    with instrumented() as c:
        total = asyncio.run(run_w1(opts.n, profiler))
    n = opts.n
    print(f"W1 n={n}: {total:.3f}s, {n / total:.1f} workflows/s")
    stmts = sum(c.statements.values())
    print(f"per workflow: {stmts / n:.2f} statements ({c.pipelined / n:.2f} of them pipelined), "
          f"{c.transactions / n:.2f} explicit transactions, {c.pipelines / n:.2f} pipelines, "
          f"{c.checkouts / n:.2f} pool checkouts")
    print("estimated round trips per workflow (unpipelined statements + pipelines + "
          f"BEGIN/COMMIT): {(stmts - c.pipelined + c.pipelines + 2 * c.transactions) / n:.2f}")
    print("\nstatements per workflow:")
    for key, count in c.statements.most_common():
        print(f"  {count / n:6.2f}  {key}")
    if profiler is not None:
        out = Path(opts.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "w1-profile.txt").write_text(profiler.output_text(unicode=False, color=False))
        print("\n" + profile_tables(profiler, opts.top))
        print(f"\nfull tree: {out / 'w1-profile.txt'}")


if __name__ == "__main__":
    main()
