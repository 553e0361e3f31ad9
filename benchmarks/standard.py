"""W1-W4: the four workloads of ``shared/BENCHMARKS.md``, exactly as defined there.

Each runs one worker (default settings) and the driver in this process, in a fresh namespace.
Before the clock starts, the worker is up and one workflow of the same shape has run (a warm-up:
imports done, the connection pool open); that workflow is not counted.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from benchmarks.common import (
    base_line,
    count_pending_waits,
    latency_figures,
    session,
    three_step_batch,
    wait_until,
)
from benchmarks.floor import commit_rate
from benchmarks.flows import (
    ACTIVITIES,
    WORKFLOWS,
    fan_out,
    one_step,
    three_steps,
    wait_signal,
)
from benchmarks.pgstat import CommitMeter
from memflow import MemFlow

W1_N = 500
W2_FANOUT = 100
W3_RUNS = 50
W4_N = 200
W1_FLOOR_SECONDS = 2.0


async def w1(opts: Any) -> dict[str, Any]:
    """N workflows of 3 sequential activities, started at once, then awaited."""
    n = int(opts.n or W1_N)
    meter = CommitMeter()
    async with session("w1", WORKFLOWS, ACTIVITIES) as s:
        assert await s.run(three_steps, ["warm"]) == "c:b:a:warm"
        await meter.start()

        total, done = await three_step_batch(s, three_steps, n, "W1")
        await MemFlow.shutdown()  # close the pool so its backends flush their statistics
        commits = await meter.stop()
    out = base_line("W1", n)
    wps = n / total
    out.update(total_s=round(total, 3), workflows_per_s=round(wps, 1),
               **latency_figures([lat for lat, _, _ in done]))
    per_wf = commits["commits_net"] / n
    out.update(commits_per_workflow=round(per_wf, 2),
               write_xacts_per_workflow=round(commits["write_xacts"] / n, 2),
               idle_commit_per_s=round(commits["idle_commit_per_s"], 1))
    floor_seconds = W1_FLOOR_SECONDS if opts.floor_seconds is None else opts.floor_seconds
    if floor_seconds > 0:
        floor = await commit_rate(8, float(floor_seconds))
        out.update(pg_commit_per_s=round(floor, 1),
                   floor_share=round(wps * per_wf / floor, 3),
                   write_floor_share=round(wps * commits["write_xacts"] / n / floor, 3))
    return out


async def w2(opts: Any) -> dict[str, Any]:
    """One workflow running 100 activities in parallel and summing their results."""
    fan = int(opts.n or W2_FANOUT)
    expected = fan * (fan - 1) // 2
    async with session("w2", WORKFLOWS, ACTIVITIES) as s:
        assert await s.run(fan_out, [fan]) == expected
        t0 = time.perf_counter()
        result = await s.run(fan_out, [fan])
        total = time.perf_counter() - t0
    if result != expected:
        raise AssertionError(f"W2 returned {result!r}, expected {expected}")
    out = base_line("W2", fan)
    out.update(total_s=round(total, 3))
    return out


async def w3(opts: Any) -> dict[str, Any]:
    """50 runs, one after another, of a workflow with 1 activity."""
    runs = int(opts.runs or opts.n or W3_RUNS)
    latencies = []
    async with session("w3", WORKFLOWS, ACTIVITIES) as s:
        assert await s.run(one_step, ["warm"]) == "warm"
        for i in range(runs):
            began = time.perf_counter()
            result = await s.run(one_step, [f"r{i}"])
            latencies.append(time.perf_counter() - began)
            if result != f"r{i}":
                raise AssertionError(f"W3 run {i} returned {result!r}")
    out = base_line("W3", runs)
    out.update(latency_figures(latencies), mean_ms=round(sum(latencies) / runs * 1000, 1))
    return out


async def w4(opts: Any) -> dict[str, Any]:
    """N workflows each waiting for its own signal; once all wait, every signal is sent.

    A signal counts as *sent* when ``client.workflow.signal`` returns (it is committed); all
    are sent at once (``asyncio.gather``). The clock stops at the last result.
    """
    n = int(opts.n or W4_N)
    async with session("w4", WORKFLOWS, ACTIVITIES) as s:
        warm = await s.start(wait_signal, ["warm"])
        await s.client.workflow.signal("warm", "ok")
        assert await warm.result() == "ok"

        handles = await asyncio.gather(*(s.start(wait_signal, [f"sig-{i}"])
                                         for i in range(n)))
        ready_t0 = time.perf_counter()
        await wait_until(lambda: _all_waiting(s.namespace, n), timeout=60 + n * 0.05)
        ready_s = time.perf_counter() - ready_t0

        async def result_of(i: int) -> float:
            result = await handles[i].result()
            if result != {"i": i}:
                raise AssertionError(f"W4 workflow {i} returned {result!r}")
            return time.perf_counter()

        async def send(i: int) -> float:
            await s.client.workflow.signal(f"sig-{i}", {"i": i})
            return time.perf_counter()

        waiters = [asyncio.ensure_future(result_of(i)) for i in range(n)]
        await asyncio.sleep(0.5)  # let every result() subscribe and read once, off the clock
        sent = await asyncio.gather(*(send(i) for i in range(n)))
        last_result = max(await asyncio.gather(*waiters))
    out = base_line("W4", n)
    out.update(total_s=round(last_result - max(sent), 3),
               first_to_last_s=round(last_result - min(sent), 3),
               send_s=round(max(sent) - min(sent), 3), all_waiting_s=round(ready_s, 3))
    return out


async def _all_waiting(namespace: str, n: int) -> bool:
    return await count_pending_waits(namespace) >= n
