"""Registering steps and workflows by name."""

from __future__ import annotations

import pytest

from runtime import NameTakenError, Runtime, step, workflow
from runtime.registry import find_step


async def taken_body() -> int:
    return 1


def test_a_second_step_under_a_taken_name_is_an_error_naming_both() -> None:
    @step(name="registry-test:charge")
    async def charge() -> int:
        return 1

    async def charge_again() -> int:
        return 2

    with pytest.raises(NameTakenError) as raised:
        step(name="registry-test:charge")(charge_again)
    message = str(raised.value)
    assert "charge_again" in message and ".charge " in message
    assert "test_registry.py" in message
    assert find_step("registry-test:charge") is charge  # the first stays


def test_a_second_workflow_under_a_taken_name_is_an_error() -> None:
    @workflow(name="registry-test:flow")
    async def flow() -> int:
        return 1

    async def other_flow() -> int:
        return 2

    with pytest.raises(NameTakenError, match="other_flow"):
        workflow(name="registry-test:flow")(other_flow)


def test_the_same_definition_made_again_is_not_a_clash() -> None:
    made = []
    for _ in range(2):  # a function defined in a loop, a test run twice, a module reloaded

        @workflow(name="registry-test:again")
        async def again() -> int:
            return 1

        made.append(again)
    assert made[0] is not made[1]


def test_a_runtime_refuses_two_workflows_of_one_name() -> None:
    one = workflow(name="registry-test:one")(taken_body)

    async def two_body() -> int:
        return 2

    with pytest.raises(NameTakenError):
        Runtime("memory://", workflows=[one, _unregistered(two_body, "registry-test:one")])


def _unregistered(fn, name):  # type: ignore[no-untyped-def]
    """A WorkflowFunction of ``name`` made without going through the global table."""
    from runtime.registry import WorkflowFunction

    made = WorkflowFunction.__new__(WorkflowFunction)
    made.fn = fn
    made.name = name
    return made
