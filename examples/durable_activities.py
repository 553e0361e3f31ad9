"""Feature 3 — durable activities and proxies, with automatic retries.

``workflow.proxy_activities`` turns functions into durable steps: each call is queued in
Postgres, run by a worker, retried per its retry policy, and its result recorded once — a
replay never runs a completed activity again. Activities may be ``async def`` or plain
``def`` (run in a thread pool).

    python examples/durable_activities.py

Uses MEMFLOW_DATABASE_URL, else the embedded Postgres; namespace ``example_activities``
(or MEMFLOW_NAMESPACE).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from typing import Any

from memflow import Client, MemFlow, Worker, activity, workflow

NAMESPACE = os.environ.get("MEMFLOW_NAMESPACE", "example_activities")
ATTEMPTS: Counter[str] = Counter()
PRICES = {"ACME": 12.5, "GLOBEX": 40.0, "INITECH": 7.25}


async def fetch_quote(symbol: str) -> dict[str, Any]:
    """A flaky remote call: fails twice per symbol, then answers."""
    ATTEMPTS[symbol] += 1
    if ATTEMPTS[symbol] < 3:
        raise ConnectionError(f"exchange busy (attempt {activity.info().attempt})")
    return {"symbol": symbol, "price": PRICES[symbol]}


def convert(amount: float, rate: float) -> float:
    """A plain (sync) function: runs in a worker thread, never on the event loop."""
    return round(amount * rate, 2)


def audit(total: float) -> None:
    """Always fails: called with throw_on_error=False, so the workflow gets the error back."""
    raise RuntimeError(f"audit service is down (total {total})")


# At module level, proxy_activities registers the functions in this process and types the proxy.
acts = workflow.proxy_activities(
    activities=[fetch_quote, convert],
    retry_policy={"maximum_attempts": 5, "initial_interval": "100ms",
                  "backoff_coefficient": 2, "maximum_interval": "1s"},
    start_to_close_timeout="30s")
best_effort = workflow.proxy_activities(
    activities=[audit], retry_policy={"maximum_attempts": 1, "throw_on_error": False})


async def portfolio(symbols: list[str], eur_rate: float) -> dict[str, Any]:
    """Quote every symbol in parallel, total them, convert, and audit (best effort)."""
    quotes = await asyncio.gather(*(acts.fetch_quote(s) for s in symbols))
    total = sum(q["price"] for q in quotes)
    in_eur = await acts.convert(total, eur_rate)
    audited = await best_effort.audit(total)
    return {"quotes": quotes, "total_usd": total, "total_eur": in_eur,
            "audit": "ok" if audited is None else audited["$error"]["message"]}


async def main() -> None:
    try:
        await Worker.create(task_queue="portfolio", workflow=portfolio, namespace=NAMESPACE)
        client = Client(namespace=NAMESPACE)
        handle = await client.workflow.start(args=[list(PRICES), 0.9], task_queue="portfolio",
                                             workflow_name="portfolio")
        result = await handle.result(timeout=60)
        print("portfolio result:", json.dumps(result, sort_keys=True))
        print("attempts per quote (2 retries each):", dict(sorted(ATTEMPTS.items())))
        steps = (await handle.export())["timeline"]
        print("durable steps:", [f"{s['index']}:{s['name']}" for s in steps])
    finally:
        await MemFlow.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
