"""Payloads decoded by type hints (pydantic's TypeAdapter): datetime, Enum, UUID, Decimal,
``dict[str, T]`` and nested dataclasses round-trip through workflow and activity arguments and
results."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import uuid

from memflow import Client, Worker, workflow
from memflow.payload import decode_as


class Tier(enum.Enum):
    GOLD = "gold"
    SILVER = "silver"


@dataclasses.dataclass
class Line:
    sku: uuid.UUID
    price: decimal.Decimal


@dataclasses.dataclass
class Order:
    placed: datetime.datetime
    tier: Tier
    lines: dict[str, Line]


def audit(order: Order) -> Order:
    assert isinstance(order.placed, datetime.datetime) and isinstance(order.tier, Tier)
    assert all(isinstance(line.sku, uuid.UUID) for line in order.lines.values())
    return dataclasses.replace(order, tier=Tier.GOLD)


acts = workflow.proxy_activities(activities=[audit])


async def typed_flow(order: Order) -> Order:
    assert isinstance(order.lines["a"].price, decimal.Decimal)
    return await acts.audit(order)


async def test_typed_values_round_trip_through_a_workflow(client: Client, dsn: str,
                                                          namespace: str) -> None:
    await Worker.create(connection=dsn, task_queue="typed", workflow=typed_flow,
                        namespace=namespace)
    order = Order(datetime.datetime(2026, 12, 2, 4, 0, tzinfo=datetime.UTC), Tier.SILVER,
                  {"a": Line(uuid.uuid4(), decimal.Decimal("19.99"))})
    handle = await client.workflow.start(args=[order], task_queue="typed",
                                         workflow_name="typed_flow")
    result = decode_as(await handle.result(timeout=30), Order)
    assert result == dataclasses.replace(order, tier=Tier.GOLD)


def test_values_the_hint_does_not_describe_pass_unchanged() -> None:
    assert decode_as(5, str) == 5
    assert decode_as({"x": "1"}, dict[str, int]) == {"x": 1}
    assert decode_as("not a date", datetime.datetime) == "not a date"
