"""The mailbox: order, one wake per wait, and what closing keeps and refuses."""

from __future__ import annotations

import asyncio

import anyio
import pytest

from actors.mailbox import Mailbox

pytestmark = pytest.mark.anyio


async def test_messages_come_out_in_the_order_they_were_put() -> None:
    box: Mailbox[int] = Mailbox()
    assert box.put(1) and box.put(2)
    assert len(box) == 2
    assert await box.wait()
    assert box.take_all() == [1, 2]
    assert box.take_all() == [] and not box


async def test_a_waiting_reader_wakes_when_a_message_is_put() -> None:
    box: Mailbox[str] = Mailbox()
    reader = asyncio.ensure_future(box.wait())
    await asyncio.sleep(0)
    assert not reader.done()
    box.put("a")
    box.put("b")  # a second put before the reader runs wakes nothing twice
    with anyio.fail_after(5):
        assert await reader
    assert box.take_all() == ["a", "b"]


async def test_closing_refuses_new_messages_but_keeps_those_already_put() -> None:
    box: Mailbox[int] = Mailbox()
    box.put(1)
    box.close()
    assert not box.put(2)
    assert await box.wait()
    assert box.take_all() == [1]
    assert not await box.wait()


async def test_closing_wakes_a_waiting_reader_with_false() -> None:
    box: Mailbox[int] = Mailbox()
    reader = asyncio.ensure_future(box.wait())
    await asyncio.sleep(0)
    box.close()
    with anyio.fail_after(5):
        assert await reader is False


async def test_a_cancelled_reader_leaves_the_mailbox_usable() -> None:
    box: Mailbox[int] = Mailbox()
    reader = asyncio.ensure_future(box.wait())
    await asyncio.sleep(0)
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    assert box.put(7)
    with anyio.fail_after(5):
        assert await box.wait()
    assert box.take_all() == [7]
