"""How a failure is recorded: its traceback as Python prints it, without the marker lines."""

from __future__ import annotations

import re
import traceback

from actors.program import error_info, traceback_text


def _declined(order: int) -> None:
    raise RuntimeError(f"payment declined for order {order}: the card was refused by the issuer")


def _charge(order: int) -> int:
    return _declined(order) or 0  # type: ignore[func-returns-value]


def _chained() -> BaseException:
    try:
        try:
            _charge(7)
        except RuntimeError as error:
            raise ValueError("the order could not be charged") from error
    except ValueError as error:
        try:
            raise ExceptionGroup("several", [error, KeyError("k")])
        except ExceptionGroup as group:
            return group
    raise AssertionError("unreachable")


MARKERS = re.compile(r"^[\s|]*[~^]+\s*$")
"""A line of ``^`` and ``~`` under a frame's source line (inside a group, after ``|``)."""


def test_the_traceback_is_pythons_without_the_marker_lines() -> None:
    error = _chained()
    python = "".join(traceback.format_exception(error))
    assert any(MARKERS.match(line) for line in python.splitlines())  # Python adds them here
    kept = [line for line in python.splitlines() if not MARKERS.match(line)]
    assert traceback_text(error).splitlines() == kept


def test_error_info_records_message_type_traceback_and_code() -> None:
    error = _chained().exceptions[0]  # type: ignore[attr-defined]
    info = error_info(error, "USER_ERROR")
    assert (info.message, info.type, info.code) == (
        "the order could not be charged",
        "ValueError",
        "USER_ERROR",
    )
    assert info.traceback is not None
    assert "payment declined for order 7" in info.traceback  # the cause is kept
    assert "in _declined" in info.traceback
    assert not any(MARKERS.match(line) for line in info.traceback.splitlines())


def test_an_exception_without_a_message_is_named_by_its_type() -> None:
    info = error_info(KeyError(), "USER_ERROR")
    assert (info.message, info.type) == ("KeyError", "KeyError")
    assert info.traceback == "KeyError\n"
