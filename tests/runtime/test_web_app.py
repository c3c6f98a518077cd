"""A web app under ``uvicorn --workers 2``: two processes on one store start orders, resume
their approvals from whichever process a request lands on, and run their steps.

The app is a plain ASGI app (no framework): its lifespan enters a ``Runtime``, ``POST
/orders/ID`` starts an order (idempotent by run id), ``POST /approve/ID`` resumes its
approval hook with an idempotency key, ``GET /tracking/ID`` relays the order's stream as
Server-Sent Events (404 for an unknown order). Steps record their side effects in a ledger file
outside the engine: no order is charged or shipped twice, and every order completes.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import anyio
import pytest

from persistence import RunStatus, open_store

from ..cluster import LEDGER_STEP, free_port, read_ledger
from ..scripts import script_env

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

ORDERS = int(os.environ.get("ACTORFLOW_TEST_ORDERS", "2000"))
UVICORN = (sys.executable, "-m", "uvicorn")

APP = (
    textwrap.dedent(
        """
    import asyncio, json, os
    from actorflow import (
        RetryableError, RunNotFoundError, Runtime, create_hook, get_writable, sleep, step,
        step_metadata, workflow,
    )
    """
    )
    + LEDGER_STEP
    + textwrap.dedent(
        """
    LEDGER = os.environ["LEDGER"]

    @step(name="web:charge")
    async def charge(order: str) -> str:
        meta = step_metadata()
        record(LEDGER, "start", run=order, step="charge", attempt=meta.attempt)
        if meta.attempt == 1:
            raise RetryableError("the card network is slow", retry_after=0.01)
        record(LEDGER, "end", run=order, step="charge", attempt=meta.attempt)
        return f"receipt-{order}"

    @step(name="web:ship")
    async def ship(order: str, receipt: str) -> str:
        meta = step_metadata()
        record(LEDGER, "start", run=order, step="ship", attempt=meta.attempt)
        async with get_writable("tracking") as out:
            for index in range(5):
                await out.write(f"{order}:{index}")
        record(LEDGER, "end", run=order, step="ship", attempt=meta.attempt)
        return f"shipped-{order}"

    @workflow(name="web:order")
    async def order_flow(order: str) -> str:
        receipt = await charge(order)
        await sleep(0.05)
        approved = await create_hook(token=f"approve:{order}")
        if approved != "yes":
            return "refused"
        return await ship(order, receipt)

    runtime = Runtime(os.environ["STORE"], workflows=[order_flow], shutdown_grace=5)

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await runtime.__aenter__()
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await runtime.__aexit__(None, None, None)
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        parts = scope["path"].strip("/").split("/")
        status, body = 404, {"error": "not found"}
        if scope["method"] == "GET" and parts == ["health"]:
            status, body = 200, {"ok": True}
        elif scope["method"] == "POST" and len(parts) == 2 and parts[0] == "orders":
            run = await runtime.start(order_flow, parts[1], run_id=f"order-{parts[1]}")
            status, body = 200, {"run_id": run.id}
        elif scope["method"] == "POST" and len(parts) == 2 and parts[0] == "approve":
            run_id = await runtime.resume_hook(
                f"approve:{parts[1]}", "yes", idempotency_key=f"approve:{parts[1]}"
            )
            status, body = 200, {"run_id": run_id}
        elif scope["method"] == "GET" and len(parts) == 2 and parts[0] == "tracking":
            try:  # 404 at once for an unknown order, before the event stream starts
                run = await runtime.get_run(f"order-{parts[1]}", must_exist=True)
            except RunNotFoundError:
                status, body = 404, {"error": "no such order"}
            else:
                headers = [(b"content-type", b"text/event-stream")]
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                async for chunk in run.stream("tracking"):
                    event = f"data: {json.dumps(chunk)}\\n\\n".encode()
                    await send({"type": "http.response.body", "body": event, "more_body": True})
                await send({"type": "http.response.body", "body": b""})
                return
        data = json.dumps(body).encode()
        length = str(len(data)).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", length)]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data})
    """
    )
)


async def request(port: int, method: str, path: str) -> tuple[int, dict[str, object]]:
    """One HTTP/1.1 request on a connection of its own."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            f"{method} {path} HTTP/1.1\r\nHost: app\r\nContent-Length: 0\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        await writer.drain()
        raw = await reader.read()
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    try:
        return status, json.loads(body)
    except ValueError:  # an error page, not JSON
        return status, {"body": body.decode(errors="replace")}


async def call(port: int, method: str, path: str, limit: asyncio.Semaphore) -> dict[str, object]:
    """A request retried (a few times) like a client whose response was lost or refused."""
    async with limit:
        for attempt in range(50):
            try:
                status, body = await request(port, method, path)
            except OSError:
                status, body = 0, {}
            if status == 200:
                return body
            await asyncio.sleep(0.05 * (attempt + 1))
    raise AssertionError(f"{method} {path} kept failing: {status} {body}")


@pytest.mark.parametrize("store_kind", ["sqlite", "postgres"])
async def test_a_web_app_under_two_uvicorn_workers_completes_every_order_once(
    store_url: str, tmp_path: Path
) -> None:
    (tmp_path / "orders_app.py").write_text(APP)
    ledger = tmp_path / "ledger.jsonl"
    port = free_port()
    env = {**script_env(), "STORE": store_url, "LEDGER": str(ledger)}
    env["PYTHONPATH"] = f"{tmp_path}{os.pathsep}{env['PYTHONPATH']}"
    log = (tmp_path / "server.log").open("w")
    command = [*UVICORN, "orders_app:app", "--workers", "2", "--port", str(port)]
    server = subprocess.Popen(
        [*command, "--log-level", "warning"],
        cwd=tmp_path,
        env=env,
        stderr=log,
        start_new_session=True,
    )
    try:
        limit = asyncio.Semaphore(64)
        with anyio.fail_after(30):
            await call(port, "GET", "/health", limit)
        with anyio.fail_after(240):
            await asyncio.gather(
                *[call(port, "POST", f"/orders/{i}", limit) for i in range(ORDERS)]
            )
            await asyncio.gather(
                *[call(port, "POST", f"/approve/{i}", limit) for i in range(ORDERS)]
            )
            statuses = await wait_orders(store_url, ORDERS)
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # uvicorn drains its workers
        server.wait(timeout=60)
        log.close()
    assert statuses == {RunStatus.COMPLETED: ORDERS}
    errors = (tmp_path / "server.log").read_text()
    assert "Task was destroyed" not in errors and "Traceback" not in errors, errors[-3000:]
    entries = read_ledger(ledger)
    ends = Counter((e["run"], e["step"]) for e in entries if e.what == "end")
    assert len(ends) == 2 * ORDERS
    assert set(ends.values()) == {1}  # no order charged or shipped twice
    assert len({e.pid for e in entries}) == 2  # both processes ran steps


@pytest.mark.parametrize("store_kind", ["sqlite", "postgres"])
async def test_a_run_stream_relayed_as_server_sent_events_and_404_for_an_unknown_run(
    store_url: str, tmp_path: Path
) -> None:
    (tmp_path / "orders_app.py").write_text(APP)
    port = free_port()
    env = {**script_env(), "STORE": store_url, "LEDGER": str(tmp_path / "ledger.jsonl")}
    env["PYTHONPATH"] = f"{tmp_path}{os.pathsep}{env['PYTHONPATH']}"
    command = [*UVICORN, "orders_app:app", "--workers", "2", "--port", str(port)]
    server = subprocess.Popen(
        [*command, "--log-level", "warning"], cwd=tmp_path, env=env, start_new_session=True
    )
    try:
        limit = asyncio.Semaphore(8)
        with anyio.fail_after(30):
            await call(port, "GET", "/health", limit)
        with anyio.fail_after(60):
            assert await request(port, "GET", "/tracking/nope") == (
                404,
                {"error": "no such order"},
            )
            await call(port, "POST", "/orders/7", limit)
            # The reader waits on the live tail (in either process) until the step closes it.
            tracking = asyncio.ensure_future(request(port, "GET", "/tracking/7"))
            await asyncio.sleep(0.2)
            await call(port, "POST", "/approve/7", limit)
            status, body = await tracking
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    assert status == 200
    text = str(body["body"])
    assert [f'data: "7:{i}"' in text for i in range(5)] == [True] * 5, text


async def wait_orders(url: str, count: int) -> Counter[RunStatus]:
    store = await open_store(url)
    try:
        while True:
            runs = [await store.get_run(f"order-{i}") for i in range(count)]
            statuses = Counter(r.status for r in runs)
            if all(s.terminal for s in statuses):
                return statuses
            await anyio.sleep(0.5)
    finally:
        await store.close()
