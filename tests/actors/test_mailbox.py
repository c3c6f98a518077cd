"""The mailbox: order, one wake per park, and what closing keeps and refuses."""

from __future__ import annotations

from actors.mailbox import Mailbox


class Waker:
    def __init__(self) -> None:
        self.woken = 0

    def wake(self) -> None:
        self.woken += 1


def test_messages_come_out_in_the_order_they_were_put() -> None:
    box: Mailbox[int] = Mailbox()
    assert box.put(1) and box.put(2)
    assert len(box) == 2
    assert box.take_all() == [1, 2]
    assert box.take_all() == [] and not box


def test_a_parked_reader_is_woken_once_by_the_next_put() -> None:
    box: Mailbox[str] = Mailbox()
    waker = Waker()
    box.waker = waker
    box.put("a")
    box.put("b")  # the reader was told already: a second put wakes nothing twice
    assert waker.woken == 1 and box.waker is None
    assert box.take_all() == ["a", "b"]


def test_a_put_without_a_parked_reader_wakes_nobody() -> None:
    box: Mailbox[int] = Mailbox()
    waker = Waker()
    box.put(1)
    box.waker = waker
    box.waker = None  # the reader took it back before anything was put
    box.put(2)
    assert waker.woken == 0 and box.take_all() == [1, 2]


def test_closing_refuses_new_messages_but_keeps_those_already_put() -> None:
    box: Mailbox[int] = Mailbox()
    waker = Waker()
    box.put(1)
    box.waker = waker
    box.close()
    assert not box.put(2)
    assert waker.woken == 0 and box.waker is None
    assert box.take_all() == [1]
    assert box.take_all() == []
