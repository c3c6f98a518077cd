"""The notifier: versioned topics, no lost wake-ups, and bounded memory."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from persistence.notify import Notifier, end_topic, run_topic

pytestmark = pytest.mark.anyio


def test_topics_nobody_waits_on_are_forgotten() -> None:
    notifier = Notifier()
    for index in range(10_000):
        notifier.notify([run_topic(f"r{index}"), end_topic(f"r{index}")])
    assert len(notifier) <= Notifier._PRUNE_ABOVE + 2


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["read", "notify", "prune", "all"]), st.integers(0, 3))))
def test_a_version_read_before_any_change_always_sees_it(
    steps: list[tuple[str, int]],
) -> None:
    """Whatever happens between a reader's version() and its check, a notification of its
    topic after the read makes the version differ (forgetting topics may only add
    spurious differences)."""
    notifier = Notifier()
    topics = [f"t{i}" for i in range(4)]
    read: dict[str, int] = {}
    notified_since: set[str] = set()
    for action, index in steps:
        topic = topics[index]
        if action == "read":
            read[topic] = notifier.version(topic)
            notified_since.discard(topic)
        elif action == "notify":
            notifier.notify([topic])
            notified_since.add(topic)
        elif action == "prune":
            notifier._prune()
        else:
            notifier.notify_all()
            notified_since.update(topics)
        for seen_topic, version in read.items():
            if seen_topic in notified_since:
                assert notifier.version(seen_topic) != version


async def test_a_waiter_is_woken_across_a_prune() -> None:
    notifier = Notifier()
    seen = notifier.version("mine")
    waiting = asyncio.ensure_future(notifier.wait("mine", seen, timeout=5))
    await asyncio.sleep(0)
    for index in range(3 * Notifier._PRUNE_ABOVE):
        notifier.notify([f"other{index}"])
    assert not waiting.done()
    notifier.notify(["mine"])
    assert await waiting is True
    assert len(notifier) <= Notifier._PRUNE_ABOVE + 1
