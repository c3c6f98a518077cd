"""Event ids drawn in blocks: each spelled exactly as a lone id, in order, above the floor."""

from __future__ import annotations

import pytest

from persistence import ids


@pytest.mark.parametrize("low", [(1 << 20) - 3, (1 << 30) - 3, 5])
def test_a_block_of_event_ids_spells_each_id_in_full_across_carries(
    monkeypatch: pytest.MonkeyPatch, low: int
) -> None:
    monkeypatch.setattr(ids, "_source", ids._Monotonic())  # a floor far ahead stays local
    floor = (1 << 47) << 80 | low
    block = ids.EventIds(10, [ids.EVENT + ids._ulid_text(floor)])
    drawn = [block() for _ in range(40)]  # past the block of 10: more blocks of 16
    values = [ids._unb32(i[len(ids.EVENT) :]) for i in drawn]
    assert values[:10] == [floor + 1 + i for i in range(10)]
    assert drawn == [ids.EVENT + ids._ulid_text(v) for v in values]
    assert values == sorted(set(values))


def test_event_ids_of_consecutive_blocks_keep_rising() -> None:
    first = ids.EventIds(3, [])
    a = [first() for _ in range(3)]
    second = ids.EventIds(3, [a[-1]])
    b = [second() for _ in range(3)]
    assert a + b == sorted(a + b)
    assert len(set(a + b)) == 6
    assert all(len(i) == len(ids.EVENT) + ids.ULID_LENGTH for i in a + b)
