"""The sample workflow of ``actorflow demo``: a few steps, a gather and a short sleep."""

from __future__ import annotations

import asyncio

from .api import sleep, step_metadata
from .registry import step, workflow


@step(name="demo.fetch_order")
async def fetch_order(order_id: str) -> dict[str, object]:
    """Pretend to read an order."""
    return {"order_id": order_id, "items": ["book", "lamp", "mug"], "cents": 4200}


@step(name="demo.reserve")
async def reserve(item: str) -> str:
    """Pretend to reserve one item in the warehouse."""
    await asyncio.sleep(0.01)
    return f"{item}:reserved"


@step(name="demo.charge", max_retries=2, retry_delay=0.05)
async def charge(order_id: str, cents: int) -> str:
    """Pretend to charge a card: the first attempt fails, to show a retry."""
    if step_metadata().attempt == 1:
        raise ConnectionError("payment gateway timed out")
    return f"receipt-{order_id}-{cents}"


@workflow(name="demo.order_flow")
async def order_flow(order_id: str) -> dict[str, object]:
    """Fetch an order, reserve its items in parallel, wait a moment, charge."""
    order = await fetch_order(order_id)
    items = [str(item) for item in order["items"]]  # type: ignore[attr-defined]
    reservations = await asyncio.gather(*(reserve(item) for item in items))
    await sleep(0.2)
    receipt = await charge(order_id, int(order["cents"]))  # type: ignore[call-overload]
    return {"order": order_id, "reserved": list(reservations), "receipt": receipt}
