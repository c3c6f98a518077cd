# examples/test_tutorial.py: the tutorial on a virtual clock
import pytest
from tutorial import order_flow

from runtime.testing import TestRuntime, assert_attempts, assert_steps, assert_waits

pytestmark = pytest.mark.workflows([order_flow])


async def test_an_approved_order_is_charged_and_sends_its_receipt(
    workflow_runtime: TestRuntime,
) -> None:
    rt = workflow_runtime
    run = await rt.start(order_flow, "o-1", run_id="order-o-1")
    await rt.wait_for_hook("approve:o-1")
    await rt.resume_hook("approve:o-1", {"approved": True})
    await rt.advance("1m")  # the retry of charge (0.5 s later), then the sleep (3 s)
    assert await run.result(timeout=5) == "receipt-o-1"
    lines = [line async for line in run.stream("receipt")]
    assert lines == ["receipt-o-1:", "tea", "cups", "thank you"]
    await assert_steps(run, ["reserve", "charge", "send_receipt"])
    await assert_attempts(run, "charge", 2)
    await assert_waits(run, ["3s"])
