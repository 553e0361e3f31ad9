"""Extra workloads asked for by issue #7: timer lateness (``timers``) and long histories
(``long``). They run only when named, or with ``all --extended``."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from benchmarks.common import base_line, latency_figures, session
from benchmarks.flows import (
    ACTIVITIES,
    WORKFLOWS,
    many_steps,
    many_steps_continued,
    sleep_then_stamp,
)

TIMERS_N = 200
TIMER_SECONDS = 1.0
LONG_STEPS = 1000
LONG_SHORT = 100
CAN_STEPS = 10_000
CAN_EVERY = 500


async def timers(opts: Any) -> dict[str, Any]:
    """N concurrent workflows each ``await workflow.sleep_for("1s")``: how late do they wake?

    Per workflow, the timer is *due* at the sleep step's ``created_at`` (the commit of the pass
    that scheduled it; the timer task is made visible at that same ``now()`` + 1 s) plus 1 s,
    read with ``handle.export()``. Three lateness figures, each "minus due":

    - ``p50_ms``/``p99_ms``: the wall time an activity called right after the sleep records
      (``time.time()`` on the worker): wake-up, the resumed pass, and one activity dispatch;
    - ``fire_p50_ms``/``fire_p99_ms``: the sleep step's ``completed_at`` (the timer fired);
    - ``resume_p50_ms``/``resume_p99_ms``: the next step's ``created_at`` (the workflow code
      ran again after the sleep and committed its next call).
    """
    n = int(opts.n or TIMERS_N)
    async with session("timers", WORKFLOWS, ACTIVITIES) as s:
        await s.run(sleep_then_stamp, [0.05])
        t0 = time.perf_counter()
        handles = await asyncio.gather(*(s.start(sleep_then_stamp, [TIMER_SECONDS])
                                         for _ in range(n)))
        stamps = await asyncio.gather(*(h.result() for h in handles))
        total = time.perf_counter() - t0
        exports = await asyncio.gather(*(h.export(allow=["timeline"]) for h in handles))
    late, fired, resumed = [], [], []
    for stamp, doc in zip(stamps, exports, strict=True):
        steps = {e["index"]: e for e in doc["timeline"] if e["dimension"] == ""}
        sleep = next(e for e in steps.values() if e["kind"] == "sleep")
        after = steps[sleep["index"] + 1]
        due = sleep["created_at"].timestamp() + TIMER_SECONDS
        late.append(float(stamp) - due)
        fired.append(sleep["completed_at"].timestamp() - due)
        resumed.append(after["created_at"].timestamp() - due)
    out = base_line("timers", n)
    out.update(latency_figures(late), **latency_figures(fired, "fire_"),
               **latency_figures(resumed, "resume_"), max_ms=round(max(late) * 1000, 1),
               total_s=round(total, 3), sleep_s=TIMER_SECONDS)
    return out


async def long(opts: Any) -> dict[str, Any]:
    """One workflow of 100 and of 1,000 sequential activity steps, with the worker's default
    sticky cache and with ``cache_size=0`` (every pass rebuilds the workflow by replay)."""
    top = int(opts.n or LONG_STEPS)
    sizes = sorted({min(LONG_SHORT, top), top})
    out = base_line("long", top)
    out["steps"] = sizes
    for suffix, options in (("", None), ("_cache0", {"cache_size": 0})):
        async with session("long", WORKFLOWS, ACTIVITIES, options) as s:
            assert await s.run(many_steps, [3]) == 3
            for size in sizes:
                t0 = time.perf_counter()
                result = await s.run(many_steps, [size])
                out[f"total_s_{size}{suffix}"] = round(time.perf_counter() - t0, 3)
                if result != size:
                    raise AssertionError(f"long({size}) returned {result!r}")
    return out


async def long_continued(opts: Any) -> dict[str, Any]:
    """``long`` with continue-as-new: one workflow of 10,000 sequential activity steps that
    continues as new every 500 (20 runs), with ``cache_size=0`` (every pass rebuilds the run by
    replay). Each run's history stays at most 500 steps, so the time per step stays flat: the
    figures give it per run (from each run's created/completed times), first against last,
    and, for contrast, one plain 500-step and 1,000-step workflow without continue-as-new
    (whose time per step grows with its length: the replays are quadratic). With ``--n``,
    the total changes and a run holds ``n / 20`` steps (at most 500)."""
    total = int(opts.n or CAN_STEPS)
    every = max(1, min(CAN_EVERY, total // 20))  # 500 for the 10,000 steps; less for --n
    out = base_line("long-can", total)
    out["every"] = every
    async with session("long_can", WORKFLOWS, ACTIVITIES, {"cache_size": 0}) as s:
        assert await s.run(many_steps_continued, [3, 2]) == 3
        t0 = time.perf_counter()
        h = await s.start(many_steps_continued, [total, every])
        assert await h.result() == total
        out["total_s"] = round(time.perf_counter() - t0, 3)
        out["per_step_ms"] = round(out["total_s"] * 1000 / total, 3)
        per_run, run_id = [], h.run_id
        while run_id:
            d = await s.client.workflow.get_handle(workflow_id=h.workflow_id,
                                                   run_id=run_id).describe()
            if d.completed_at is not None and d.created_at is not None:
                per_run.append((d.completed_at - d.created_at).total_seconds() * 1000 / every)
            run_id = d.continued_to
        out["runs"] = len(per_run)
        out["per_step_ms_by_run"] = [round(x, 3) for x in per_run]
        if per_run:
            out["per_step_ms_first_run"] = round(per_run[0], 3)
            out["per_step_ms_last_run"] = round(per_run[-1], 3)
            out["last_over_first"] = round(per_run[-1] / per_run[0], 2)
        for size in (every, 2 * every):
            t0 = time.perf_counter()
            assert await s.run(many_steps, [size]) == size
            took = time.perf_counter() - t0
            out[f"plain_total_s_{size}"] = round(took, 3)
            out[f"plain_per_step_ms_{size}"] = round(took * 1000 / size, 3)
    return out
