"""Registering steps and workflows by name."""

from __future__ import annotations

import sys

import pytest

from runtime import NameTakenError, Runtime, WorkflowNotRegisteredError, step, workflow
from runtime.registry import default_name, find_step, main_module_name


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


class _Spec:
    def __init__(self, name: str) -> None:
        self.name = name


class _Main:
    def __init__(self, spec: _Spec | None, file: str | None) -> None:
        self.__spec__ = spec
        if file is not None:
            self.__file__ = file


@pytest.mark.parametrize(
    ("spec", "file", "name"),
    [
        (_Spec("orders"), "/srv/app/orders.py", "orders"),  # python -m orders
        (_Spec("shop.orders"), "/srv/app/shop/orders.py", "shop.orders"),  # python -m shop.orders
        (_Spec("shop.__main__"), "/srv/app/shop/__main__.py", "shop.__main__"),  # python -m shop
        (None, "/srv/app/orders.py", "orders"),  # python orders.py
        (None, "orders", "orders"),  # a script without the suffix
        (None, None, "__main__"),  # python -c, a REPL
        (_Spec("__main__"), "/srv/app/__main__.py", "__main__"),  # python app/
    ],
)
def test_the_main_module_is_named_as_it_is_under_import(
    spec: _Spec | None, file: str | None, name: str
) -> None:
    assert main_module_name(_Main(spec, file)) == name


def test_a_function_of_the_main_module_is_named_after_the_script(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "__main__", _Main(None, "/srv/app/orders.py"))

    async def order_flow() -> None: ...

    order_flow.__module__ = "__main__"
    assert default_name(order_flow) == "orders:test_a_function_of_the_main_module_is_named_" + (
        "after_the_script.<locals>.order_flow"
    )


@pytest.mark.anyio
async def test_starting_a_workflow_this_runtime_does_not_host_names_those_it_hosts() -> None:
    one = workflow(name="registry-test:hosted_a")(taken_body)

    async def b() -> int:
        return 2

    two = workflow(name="other:b")(b)
    async with Runtime("memory://", workflows=[one, two]) as rt:
        with pytest.raises(WorkflowNotRegisteredError) as raised:
            await rt.start("orders:b")
    assert str(raised.value) == (
        "workflow 'orders:b' is not registered with this runtime, which hosts "
        "'other:b', 'registry-test:hosted_a' (not 'other:b': a workflow's default name is "
        "module:qualname; give it a fixed one with @workflow(name=...)); pass it in "
        "Runtime(workflows=[...])"
    )
    assert raised.value.hosted == ("other:b", "registry-test:hosted_a")


@pytest.mark.anyio
async def test_a_runtime_hosting_nothing_says_so() -> None:
    async with Runtime("memory://", workflows=[]) as rt:
        with pytest.raises(WorkflowNotRegisteredError, match=", which hosts no workflow;"):
            await rt.start("orders:b")
