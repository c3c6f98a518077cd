"""The workflows and steps the streams benchmark runs (module level, so they register by name).

Writers stamp ``time.perf_counter()`` just before their first write in ``FIRST_WRITE[key]``
(keys are unique per run), so the harness can time from the first write to the reader. The
data is a fixed byte pattern (:func:`pattern`), so a reader can check every byte it got.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from runtime import (
    WorkflowFunction,
    current_runtime,
    get_writable,
    step,
    workflow,
    workflow_metadata,
)

FIRST_WRITE: dict[str, list[float]] = {}
"""When each writer of a run began writing (``perf_counter``), by the run's key."""


def take_first_writes(key: str) -> list[float]:
    """The first-write times recorded under ``key``, forgetting them."""
    return FIRST_WRITE.pop(key, [])


def pattern(size: int) -> bytes:
    """``size`` bytes of a fixed pattern: 0, 1, …, 255, 0, 1, …"""
    whole, rest = divmod(size, 256)
    return bytes(range(256)) * whole + bytes(range(rest))


def xor_table(mask: int) -> bytes:
    """A ``bytes.translate`` table that XORs every byte with ``mask``."""
    return bytes(b ^ mask for b in range(256))


def pipeline_output(size: int, stages: int) -> bytes:
    """What ``stages`` transforms (XOR with 1, 2, …, stages) make of ``pattern(size)``."""
    mask = 0
    for stage in range(1, stages + 1):
        mask ^= stage
    return pattern(size).translate(xor_table(mask))


@step
async def write_one(key: str, namespace: str) -> int:
    """Write one small chunk to ``namespace`` and close the stream."""
    async with get_writable(namespace) as out:
        FIRST_WRITE.setdefault(key, []).append(time.perf_counter())
        await out.write(b"x")
    return 1


@step
async def write_bytes(key: str, namespace: str, total: int, chunk: int) -> int:
    """Write ``pattern(total)`` to ``namespace`` in ``chunk``-byte chunks, then close it."""
    data = pattern(total)
    async with get_writable(namespace) as out:
        FIRST_WRITE.setdefault(key, []).append(time.perf_counter())
        for offset in range(0, total, chunk):
            await out.write(data[offset : offset + chunk])
    return total


@step
async def transform(source: str, target: str, mask: int) -> int:
    """Copy this run's stream ``source`` to ``target``, each byte XORed with ``mask``."""
    run = current_runtime().get_run(workflow_metadata().run_id)
    table = xor_table(mask)
    count = 0
    async with get_writable(target) as out:
        async for piece in run.stream(source):
            await out.write(piece.translate(table))
            count += len(piece)
    return count


@workflow
async def stream_first_byte(key: str, namespace: str) -> int:
    """A first step that writes one chunk at once: for time to first byte."""
    return await write_one(key, namespace)


@workflow
async def stream_bulk(key: str, total: int, chunk: int) -> int:
    """One step writing ``total`` bytes to the stream ``bulk``: for throughput."""
    return await write_bytes(key, "bulk", total, chunk)


@workflow
async def stream_parallel(key: str, streams: int, total: int, chunk: int) -> int:
    """``streams`` steps at once, each writing ``total`` bytes to its own ``p<i>``."""
    sizes = await asyncio.gather(*[write_bytes(key, f"p{i}", total, chunk) for i in range(streams)])
    return sum(sizes)


@workflow
async def stream_pipeline(key: str, stages: int, total: int, chunk: int) -> int:
    """A writer of ``s0`` and ``stages`` transforms ``s<i-1>`` → ``s<i>``, all at once."""
    counts = await asyncio.gather(
        write_bytes(key, "s0", total, chunk),
        *[transform(f"s{i - 1}", f"s{i}", i) for i in range(1, stages + 1)],
    )
    return counts[-1]


STREAM_WORKFLOWS: list[WorkflowFunction[Any, Any]] = [
    stream_first_byte,
    stream_bulk,
    stream_parallel,
    stream_pipeline,
]
"""Every workflow the streams benchmark hosts."""
