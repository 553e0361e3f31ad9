"""``python -m benchmarks {all,W1,W2,W3,W4,floor,timers,long,long-can,rss,dashboard,
W1-observe,schedules,queries,updates,W1-limited,W1-rate} [--n N] ...``

Prints one JSON line per workload run. The exit status is 1 if any workload failed (its line
then has an ``"error"``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

from benchmarks import (
    dashboard,
    extended,
    floor,
    limited,
    messages,
    observe,
    rss,
    schedules,
    standard,
)

Workload = Callable[[Any], Awaitable[dict[str, Any]]]

WORKLOADS: dict[str, Workload] = {
    "W1": standard.w1,
    "W2": standard.w2,
    "W3": standard.w3,
    "W4": standard.w4,
    "floor": floor.run,
    "timers": extended.timers,
    "long": extended.long,
    "long-can": extended.long_continued,
    "rss": rss.run,
    "dashboard": dashboard.run,
    "W1-observe": observe.w1_observe,
    "schedules": schedules.run,
    "queries": messages.queries,
    "updates": messages.updates,
    "W1-limited": limited.w1_limited,
    "W1-rate": limited.w1_rate,
}
STANDARD = ["W1", "W2", "W3", "W4", "floor"]
EXTENDED = ["timers", "long", "rss", "W1-observe", "schedules", "queries", "updates",
            "W1-limited", "W1-rate"]


def parse(argv: list[str]) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("workloads", nargs="+", metavar="WORKLOAD",
                   help="all, or one or more of: " + ", ".join(WORKLOADS))
    p.add_argument("--n", type=int, default=None,
                   help="override N (W1 workflows, W2 fan-out, W4 workflows, timers "
                        "workflows, long's largest step count, long-can's total steps, rss "
                        "workflows, dashboard runs, "
                        "schedules)")
    p.add_argument("--runs", type=int, default=None,
                   help="W3: sequential runs (default 50); W1-observe: runs per mode (3)")
    p.add_argument("--seconds", type=float, default=None,
                   help="floor: seconds measured per connection count (default 3); "
                        "schedules: seconds of ticks (default 60)")
    p.add_argument("--floor-seconds", type=float, default=None,
                   help="W1: seconds of commit-floor measurement after the run (default 2; "
                        "0 skips it)")
    p.add_argument("--cache-size", type=int, default=None,
                   help="rss: the worker's cache_size (default: the worker's default)")
    p.add_argument("--concurrency", type=int, default=None,
                   help="W1-limited: the queue's concurrency limit (default 50)")
    p.add_argument("--rate", type=int, default=None,
                   help="W1-rate: the queue's starts per second (default 200)")
    p.add_argument("--worker-concurrency", type=int, default=None,
                   help="W1-rate: the worker's concurrency option (default: the worker's)")
    p.add_argument("--extended", action="store_true",
                   help="with `all`: also run timers, long and rss")
    p.add_argument("--repeat", type=int, default=1, help="run each workload this many times")
    p.add_argument("--tracing", action="store_true",
                   help="trace with an OpenTelemetry SDK provider (spans dropped, not sent)")
    p.add_argument("--metrics", action="store_true",
                   help="workers count Prometheus metrics and serve them on a free port")
    opts = p.parse_args(argv)
    names: list[str] = []
    for name in opts.workloads:
        if name == "all":
            names += STANDARD + (EXTENDED if opts.extended else [])
            continue
        match = {k.lower(): k for k in WORKLOADS}.get(name.lower())
        if match is None:
            p.error(f"unknown workload {name!r}; choose from all, {', '.join(WORKLOADS)}")
        names.append(match)
    opts.names = names
    return opts


def main(argv: list[str] | None = None) -> int:
    """Run the workloads named on the command line, one JSON line each."""
    opts = parse(sys.argv[1:] if argv is None else argv)
    failed = False
    for _ in range(max(1, opts.repeat)):
        for name in opts.names:
            try:
                with observe.observing(opts.tracing, opts.metrics):
                    line = asyncio.run(WORKLOADS[name](opts))
                if opts.tracing or opts.metrics:
                    line.update(tracing=opts.tracing, metrics=opts.metrics)
            except Exception as exc:
                failed = True
                traceback.print_exc()
                line = {"workload": name, "error": f"{type(exc).__name__}: {exc}"}
            print(json.dumps(line), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
