"""Extra workloads asked for by issue #7: timer lateness (``timers``) and long histories
(``long``). They run only when named, or with ``all --extended``."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from benchmarks.common import base_line, latency_figures, session
from benchmarks.flows import ACTIVITIES, WORKFLOWS, many_steps, sleep_then_stamp

TIMERS_N = 200
TIMER_SECONDS = 1.0
LONG_STEPS = 1000
LONG_SHORT = 100


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
