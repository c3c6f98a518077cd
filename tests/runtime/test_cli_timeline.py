"""The time axis of ``actorflow runs show``: lanes folded from events, drawn to scale."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from persistence import ErrorInfo, Event
from persistence import events as ev
from runtime.cli_timeline import draw, failed_attempts, lanes

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float, data: ev.EventData, cid: str | None = None) -> Event:
    return Event(
        event_id=f"evnt_{seconds}_{ev.event_type_of(data)}",
        run_id="wrun_x",
        event_type=ev.event_type_of(data),
        correlation_id=cid,
        data=data,
        created_at=T0 + timedelta(seconds=seconds),
    )


BOOM = ErrorInfo(message="gateway timed out", type="ConnectionError")

RUN = [
    at(0, ev.RunCreated(workflow_name="w", input=b"")),
    at(0, ev.RunStarted()),
    at(0, ev.StepCreated(step_name="a", input=b"", position=0), "s1"),
    at(0, ev.StepStarted(), "s1"),
    at(1, ev.StepCompleted(result=b""), "s1"),
    at(1, ev.StepCreated(step_name="b", input=b"", position=1), "s2"),
    at(1, ev.StepStarted(), "s2"),
    at(2, ev.StepRetrying(error=BOOM, retry_after=T0 + timedelta(seconds=3)), "s2"),
    at(3, ev.StepStarted(), "s2"),
    at(4, ev.StepCompleted(result=b""), "s2"),
    at(4, ev.WaitCreated(resume_at=T0 + timedelta(seconds=8), position=2), "w1"),
    at(8, ev.WaitCompleted(), "w1"),
    at(8, ev.HookCreated(token="go", position=3), "h1"),
    at(9, ev.HookReceived(payload=b"", token="go"), "h1"),
    at(10, ev.RunCompleted(output=b"")),
]


def test_each_step_sleep_and_hook_is_a_row_scaled_to_the_run() -> None:
    # 20 columns for 10 s: half a second each
    assert draw(RUN, now=T0 + timedelta(days=1), width=0).splitlines() == [
        " " * 10 + "0" + "10.00 s".rjust(19),
        "a        |###                 |  1 attempt, 1.00 s",
        "b        |  xxx.###           |  2 attempts, 3.00 s",
        "sleep    |        ---------   |  4.00 s",
        "hook go  |                --*-|  1 payload",
    ]


def test_a_run_that_has_not_ended_is_drawn_up_to_now() -> None:
    running = RUN[:7]  # b's first attempt is running
    text = draw(running, now=T0 + timedelta(seconds=5), width=0).splitlines()
    assert text[0].endswith("5.00 s (now)")
    assert text[2] == "b     |    ################|  running, 1 attempt, 4.00 s"


def test_failed_attempts_name_the_step_the_error_and_the_retry() -> None:
    assert failed_attempts(RUN) == [
        "b attempt 1: ConnectionError: gateway timed out (retried after 1.00 s)"
    ]
    failing = [
        *RUN[:7],
        at(2, ev.StepFailed(error=BOOM, attempts=1), "s2"),
        at(2, ev.RunFailed(error=BOOM)),
    ]
    assert failed_attempts(failing) == [
        "b attempt 1: ConnectionError: gateway timed out (failed for good)"
    ]
    (_, b) = lanes(failing)
    assert b.status == "failed" and [a.outcome for a in b.attempts] == ["failed"]


def test_an_attempt_that_never_reported_is_abandoned_when_the_next_starts() -> None:
    restarted = [*RUN[:7], at(3, ev.StepStarted(), "s2"), at(4, ev.StepCompleted(result=b""), "s2")]
    (_, b) = lanes(restarted)
    assert [a.outcome for a in b.attempts] == ["abandoned", "completed"]
    assert [s.mark for s in b.spans] == ["x", "#"]


def test_open_lanes_end_with_a_cancelled_run() -> None:
    cancelled = [*RUN[:13], at(9, ev.RunCancelled(reason="no"))]
    *_, hook = lanes(cancelled)
    assert hook.status == "released" and hook.spans[0].end == T0 + timedelta(seconds=9)
    item = hook.as_json()
    assert item["kind"] == "hook" and item["payloads_at"] == []


def test_a_rerun_adds_rows_for_its_generation() -> None:
    rerun = [
        *RUN,
        at(11, ev.RunRerun(generation=1, from_position=1)),
        at(11, ev.StepCreated(step_name="b", input=b"", position=1, generation=1), "s3"),
        at(11, ev.StepStarted(), "s3"),
    ]
    found = lanes(rerun)
    assert found[-1].label == "b (generation 1)" and found[-1].status == "running"
    assert "(now)" in draw(rerun, now=T0 + timedelta(seconds=12)).splitlines()[0]


def test_no_events() -> None:
    assert draw([], now=T0) == "(no events)"


def test_a_sleep_and_a_hook_still_waiting_say_so() -> None:
    sleeping = draw(RUN[:11], now=T0 + timedelta(seconds=5), width=0).splitlines()
    assert sleeping[-1].endswith("|  sleeping, 1.00 s")
    hooked = draw(RUN[:13], now=T0 + timedelta(seconds=9), width=0).splitlines()
    assert hooked[-1].endswith("-|  0 payloads, open")
