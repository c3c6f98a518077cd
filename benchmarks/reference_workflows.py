"""The reference suite's workflows and steps (module level, so they register by name).

They reproduce the shapes of the reference suite of an event-sourced workflow engine: no
steps, one step, sequential steps, ``asyncio.gather`` and a ``FIRST_COMPLETED`` race of
steps, 10 KB payloads through steps, a small stream transformed to upper case, and 1 MiB
streams through XOR transforms. A step that sleeps does so with ``asyncio.sleep`` in its body:
the sleep is the step's work, not a durable timer; ``sleep_ms=0`` is the same shape with no
work (the engine's own overhead).

Streams are written by steps to namespaces of their run; a step reading another stream reads
it through the Runtime (:func:`_stream_of_run`). The 1 MiB streams carry
:func:`~benchmarks.stream_workflows.pattern`, so a reader can check every byte.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator
from typing import Any

from runtime import (
    WorkflowFunction,
    current_runtime,
    get_writable,
    step,
    workflow,
    workflow_metadata,
)

from .stream_workflows import pattern, transform, write_bytes, xor_table

PAYLOAD_BYTES = 10 * 1024
"""Bytes of the data payload each payload step takes and returns."""
WRITER_KEY = "reference"
"""The key the 1 MiB writers stamp their first write under (the harness drops them)."""
TEXT_CHUNKS = 50
TEXT_CHUNK_BYTES = 100


class WrongStepResultError(ValueError):
    """A workflow of the suite saw a step result it must not get (the run fails with it)."""


def checksum(data: str) -> int:
    """The CRC-32 of ``data`` (UTF-8): what a payload step reports beside the payload."""
    return zlib.crc32(data.encode())


def payload(size: int = PAYLOAD_BYTES) -> str:
    """The payload the payload workflows pass: ``size`` times ``x``."""
    return "x" * size


def text_chunk(index: int, size: int = TEXT_CHUNK_BYTES) -> bytes:
    """Chunk ``index`` of the small stream: ``chunk-NNN-xxx…\\n``, ``size`` bytes."""
    head = f"chunk-{index:03d}-".encode()
    return head + b"x" * (size - len(head) - 1) + b"\n"


def text_stream(chunks: int = TEXT_CHUNKS, size: int = TEXT_CHUNK_BYTES) -> bytes:
    """Every chunk of the small stream, as written."""
    return b"".join(text_chunk(i, size) for i in range(chunks))


def fan_in_mask(index: int) -> int:
    """The XOR mask of transform ``index`` (0-based) in the pipeline and the fan-out: i+1."""
    return (index + 1) % 256


def _stream_of_run(namespace: str) -> AsyncIterator[Any]:
    """This run's stream ``namespace``, read from a step through the Runtime."""
    run = current_runtime().get_run(workflow_metadata().run_id)
    stream: AsyncIterator[Any] = run.stream(namespace)
    return stream


@step
async def do_work(sleep_ms: float) -> int:
    """Sleep ``sleep_ms`` (the step's work), return 42."""
    if sleep_ms:
        await asyncio.sleep(sleep_ms / 1000)
    return 42


@step
async def numbered_work(index: int, sleep_ms: float) -> int:
    """Sleep ``sleep_ms``, return ``index``."""
    if sleep_ms:
        await asyncio.sleep(sleep_ms / 1000)
    return index


@step
async def process_payload(data: str) -> dict[str, Any]:
    """Take a payload and return it, with its length and checksum."""
    return {"data": data, "len": len(data), "checksum": checksum(data)}


@step
async def write_text(namespace: str, chunks: int, size: int, interval_ms: float) -> int:
    """Write the small stream to ``namespace``: ``chunks`` chunks, ``interval_ms`` apart."""
    async with get_writable(namespace) as out:
        for index in range(chunks):
            if index and interval_ms:
                await asyncio.sleep(interval_ms / 1000)
            await out.write(text_chunk(index, size))
    return chunks


@step
async def upper_case(source: str, target: str) -> int:
    """Copy this run's stream ``source`` to ``target`` in upper case; the bytes copied."""
    count = 0
    async with get_writable(target) as out:
        async for piece in _stream_of_run(source):
            await out.write(bytes(piece).upper())
            count += len(piece)
    return count


@step
async def consume_and_verify(namespaces: list[str], masks: list[int], total: int) -> list[int]:
    """Read these streams of this run at once, each expected to be ``pattern(total)`` XORed
    with its mask; ``[bytes read, streams that were exactly right]``."""
    expected = pattern(total)

    async def one(namespace: str, mask: int) -> tuple[int, bool]:
        data = bytearray()
        async for piece in _stream_of_run(namespace):
            data += piece
        return len(data), bytes(data) == expected.translate(xor_table(mask))

    results = await asyncio.gather(*[one(n, m) for n, m in zip(namespaces, masks, strict=True)])
    return [sum(n for n, _ in results), sum(1 for _, ok in results if ok)]


@workflow
async def ref_no_steps(x: int) -> int:
    """No steps: ``x * 2``."""
    return x * 2


@workflow
async def ref_one_step(x: int, sleep_ms: float) -> int:
    """One step (42, after its work) plus ``x``."""
    return await do_work(sleep_ms) + x


@workflow
async def ref_sequential(count: int, sleep_ms: float) -> int:
    """``count`` steps one after another; the count."""
    for _ in range(count):
        await do_work(sleep_ms)
    return count


@workflow
async def ref_gather(count: int, sleep_ms: float) -> int:
    """``count`` steps at once under ``asyncio.gather``; how many results came."""
    results = await asyncio.gather(*[numbered_work(i, sleep_ms) for i in range(count)])
    return len(results)


@workflow
async def ref_race(count: int, sleep_ms: float) -> int:
    """``count`` steps as pending tasks, awaited with ``asyncio.wait(FIRST_COMPLETED)`` until
    none is left; how many finished."""
    pending = {asyncio.ensure_future(numbered_work(i, sleep_ms)) for i in range(count)}
    finished = 0
    while pending:
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        finished += len(done)
    return finished


@workflow
async def ref_payload_sequential(count: int, size: int) -> int:
    """A payload of ``size`` through ``count`` steps, one after another; the last length."""
    data = payload(size)
    last = 0
    for _ in range(count):
        result = await process_payload(data)
        if result["checksum"] != checksum(data):
            raise WrongStepResultError(f"payload checksum {result['checksum']}")
        last = int(result["len"])
    if last != size:
        raise WrongStepResultError(f"the last payload step saw {last} bytes, not {size}")
    return last


@workflow
async def ref_payload_gather(count: int, size: int) -> int:
    """A payload of ``size`` through ``count`` steps at once; how many returned it whole."""
    data = payload(size)
    results = await asyncio.gather(*[process_payload(data) for _ in range(count)])
    whole = sum(1 for r in results if r["len"] == size and r["data"] == data)
    if whole != count:
        raise WrongStepResultError(f"{whole} of {count} payload steps returned it whole")
    return whole


@workflow
async def ref_text_stream(chunks: int, size: int, interval_ms: float) -> int:
    """A step writing the small stream to ``text`` while another copies it to ``upper`` in
    upper case; the bytes copied."""
    counts = await asyncio.gather(
        write_text("text", chunks, size, interval_ms), upper_case("text", "upper")
    )
    return counts[1]


@workflow
async def ref_pipeline(stages: int, total: int, chunk: int) -> int:
    """``pattern(total)`` written to ``s0`` and through ``stages`` XOR transforms (step i
    reads ``s<i-1>``, writes ``s<i>`` XORed with i), all at once; bytes through the last."""
    counts = await asyncio.gather(
        write_bytes(WRITER_KEY, "s0", total, chunk),
        *[transform(f"s{i}", f"s{i + 1}", fan_in_mask(i)) for i in range(stages)],
    )
    return counts[-1]


@workflow
async def ref_parallel_streams(streams: int, total: int, chunk: int) -> list[int]:
    """``streams`` steps each writing ``pattern(total)`` to ``p<i>``, and one step reading
    and checking them all, at once; that step's ``[bytes, streams right]``."""
    names = [f"p{i}" for i in range(streams)]
    writers = asyncio.gather(*[write_bytes(WRITER_KEY, name, total, chunk) for name in names])
    _, verdict = await asyncio.gather(writers, consume_and_verify(names, [0] * streams, total))
    return verdict


@workflow
async def ref_fan_out_fan_in(streams: int, total: int, chunk: int) -> list[int]:
    """``streams`` generators (``g<i>``), as many XOR transforms (``g<i>`` → ``x<i>``, mask
    i+1) and one step reading and checking every ``x<i>``, at once; its verdict."""
    masks = [fan_in_mask(i) for i in range(streams)]
    writers = asyncio.gather(
        *[write_bytes(WRITER_KEY, f"g{i}", total, chunk) for i in range(streams)],
        *[transform(f"g{i}", f"x{i}", masks[i]) for i in range(streams)],
    )
    checker = consume_and_verify([f"x{i}" for i in range(streams)], masks, total)
    _, verdict = await asyncio.gather(writers, checker)
    return verdict


REFERENCE_WORKFLOWS: list[WorkflowFunction[Any, Any]] = [
    ref_no_steps,
    ref_one_step,
    ref_sequential,
    ref_gather,
    ref_race,
    ref_payload_sequential,
    ref_payload_gather,
    ref_text_stream,
    ref_pipeline,
    ref_parallel_streams,
    ref_fan_out_fan_in,
]
"""Every workflow the reference suite hosts."""
