# examples/tutorial.py
import asyncio
import sys
from typing import Any

from actorflow import Runtime, create_hook, get_writable, sleep, step, step_metadata, workflow


@step
async def reserve(order_id: str) -> list[str]:
    return ["tea", "cups"]


@step(retry_delay=0.5)  # retried up to 3 times, half a second apart
async def charge(order_id: str, cents: int) -> str:
    if step_metadata().attempt == 1:  # the first attempt fails, to show a retry
        raise ConnectionError("payment gateway timed out")
    return f"receipt-{order_id}"


@step
async def send_receipt(receipt: str, items: list[str], namespace: str) -> None:
    async with get_writable(namespace) as out:  # a reader sees each line as it is written
        for line in (f"{receipt}:", *items, "thank you"):
            await out.write(line)


@workflow
async def order_flow(order_id: str) -> str:
    items = await reserve(order_id)
    approval: dict[str, Any] = await create_hook(token=f"approve:{order_id}")
    if not approval.get("approved"):
        return "refused"
    receipt = await charge(order_id, 1250)
    await sleep("3s")  # durable: "3d" works the same, across restarts of the process
    await send_receipt(receipt, items, "receipt")
    return receipt


async def main(order_id: str) -> None:
    async with Runtime(workflows=[order_flow]) as rt:  # ./.actorflow/actorflow.db
        run = await rt.start(order_flow, order_id, run_id=f"order-{order_id}")  # twice: one run
        print(f"run {run.id} waits for its approval; from another shell:")
        print(f"  actorflow hooks resume approve:{order_id} --payload '{{\"approved\": true}}'")
        async for line in run.stream("receipt"):  # follows the stream until the run ends
            print(" ", line)
        print("result:", await run.result())


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "o-1"))
