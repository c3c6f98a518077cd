"""``@workflow`` and ``@step``: the decorators, their options, and the registry by name.

A step called inside a workflow is a durable call (the workflow's event loop records it and
the runtime runs it); called anywhere else it is a plain call of the function, so steps and
workflows can be unit-tested as ordinary coroutines.
"""

from __future__ import annotations

import inspect
import sys
import typing
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property, update_wrapper
from pathlib import Path
from typing import Any, Generic, ParamSpec, TypeVar, overload

from persistence import codec
from persistence.ids import STEP, new_id

from .context import StepMetadata, current_program, current_step, plain_step
from .errors import (
    NameTakenError,
    SerializationError,
    StepNotRegisteredError,
    WorkflowNotRegisteredError,
)

P = ParamSpec("P")
R = TypeVar("R")

_steps: dict[str, StepFunction[Any, Any]] = {}
_workflows: dict[str, WorkflowFunction[Any, Any]] = {}


def _where(fn: Callable[..., Any]) -> str:
    code = getattr(fn, "__code__", None)
    place = f" ({code.co_filename}:{code.co_firstlineno})" if code is not None else ""
    return f"{fn.__module__}.{fn.__qualname__}{place}"


def _same_definition(a: Callable[..., Any], b: Callable[..., Any]) -> bool:
    """The same source definition made again (a module imported twice, a function defined
    inside a test run twice): replacing it is not a clash."""
    code_a, code_b = getattr(a, "__code__", None), getattr(b, "__code__", None)
    if code_a is None or code_b is None:
        return a is b
    return (a.__qualname__, code_a.co_filename, code_a.co_firstlineno) == (
        b.__qualname__,
        code_b.co_filename,
        code_b.co_firstlineno,
    )


def _register(table: dict[str, Any], name: str, item: Any, kind: str) -> None:
    taken = table.get(name)
    if taken is not None and not _same_definition(taken.fn, item.fn):
        raise NameTakenError(
            f"{kind} name {name!r} is already taken by {_where(taken.fn)}; {_where(item.fn)} "
            f"cannot be registered under it too: give one of them another name with "
            f"@{kind}(name=...)"
        )
    table[name] = item


def default_name(fn: Callable[..., Any]) -> str:
    """``module:qualname``, the default name of steps and workflows.

    The module part does not depend on how the code was loaded: for a function of the module
    run as ``__main__`` it is the name that module has under import (see ``main_module_name``),
    so ``python orders.py``, ``python -m orders`` and ``import orders`` name it alike.
    """
    module = fn.__module__
    if module == "__main__":
        module = main_module_name(sys.modules.get("__main__"))
    return f"{module}:{fn.__qualname__}"


def main_module_name(main: Any) -> str:
    """The name the module run as ``__main__`` has under import: ``__spec__.name`` under
    ``python -m`` (``pkg.__main__`` for ``python -m pkg``), else the script's file name
    without ``.py``; ``__main__`` when there is neither (``python -c``, a REPL)."""
    spec = getattr(main, "__spec__", None)
    name = getattr(spec, "name", None)
    if isinstance(name, str) and name and name != "__main__":
        return name
    file = getattr(main, "__file__", None)
    if isinstance(file, str) and file:
        return Path(file).name.removesuffix(".py")
    return "__main__"


@dataclass(frozen=True)
class Signature:
    """How to encode a call's arguments and decode them (and the result) to declared types."""

    fn: Callable[..., Any]

    @cached_property
    def _hints(self) -> dict[str, Any]:
        try:
            return typing.get_type_hints(self.fn)
        except Exception:  # unresolvable annotations: decode to plain values
            return {}

    @cached_property
    def _parameters(self) -> list[tuple[str, Any, bool]]:
        """Per parameter, in order: its name, its type hint (Any if none) and whether it
        is ``*args`` (read once: ``inspect.Parameter``'s attributes are slow properties)."""
        hints = self._hints
        return [
            (p.name, hints.get(p.name, Any), p.kind is inspect.Parameter.VAR_POSITIONAL)
            for p in inspect.signature(self.fn).parameters.values()
        ]

    @cached_property
    def _named(self) -> dict[str, Any]:
        """The type hint of each parameter by name (Any if none)."""
        return {name: hint for name, hint, _ in self._parameters}

    @property
    def return_type(self) -> Any:
        hint = self._hints.get("return", Any)
        return Any if hint is None or hint is type(None) else hint

    def encode(self, args: tuple[Any, ...], kwargs: dict[str, Any], what: str) -> bytes:
        """Encode a call; SerializationError names the argument that cannot be encoded."""
        try:
            return codec.encode([list(args), kwargs], where=what)
        except SerializationError:
            for index, value in enumerate(args):
                codec.encode(value, where=f"argument {index} of {what}")
            for key, value in kwargs.items():
                codec.encode(value, where=f"argument {key!r} of {what}")
            raise

    def decode(self, data: bytes, what: str) -> tuple[list[Any], dict[str, Any]]:
        """Decode a call encoded by :meth:`encode`, converting each argument to its type."""
        raw = codec.decode(data, where=f"arguments of {what}")
        args, kwargs = (raw[0], raw[1]) if isinstance(raw, list) and len(raw) == 2 else ([], {})
        params = self._parameters
        converted: list[Any] = []
        for index, value in enumerate(args):
            if index >= len(params):
                converted.append(value)
                continue
            name, hint, rest = params[index]
            if rest:
                converted.extend(_convert(name, hint, v, what) for v in args[index:])
                break
            converted.append(_convert(name, hint, value, what))
        hints = self._named
        named = {k: _convert(k, hints.get(k, Any), v, what) for k, v in kwargs.items()}
        return converted, named


def _convert(name: str, hint: Any, value: Any, what: str) -> Any:
    """``value`` as the parameter's declared type (as it is if it has none)."""
    if hint is Any:
        return value
    return codec.convert(value, hint, where=f"{name} of {what}")


def _require_async(fn: Callable[..., Any], what: str) -> None:
    if not inspect.iscoroutinefunction(fn):
        raise TypeError(
            f"@{what} needs an async def function, got {fn!r}; run blocking code inside it "
            "with anyio.to_thread.run_sync"
        )


class StepFunction(Generic[P, R]):
    """A function decorated with ``@step``."""

    def __init__(
        self,
        fn: Callable[P, Awaitable[R]],
        name: str | None,
        max_retries: int,
        timeout: float | None,
        retry_delay: float,
    ) -> None:
        _require_async(fn, "step")
        if max_retries < 0:
            raise ValueError(f"max_retries must be 0 or more, got {max_retries}")
        if timeout is not None and timeout <= 0:
            raise ValueError(f"timeout must be positive seconds, got {timeout}")
        self.fn = fn
        self.name = name or default_name(fn)
        self.max_retries = max_retries
        self.timeout = timeout
        self.retry_delay = retry_delay
        self.signature = Signature(fn)
        update_wrapper(self, fn)
        _register(_steps, self.name, self, "step")

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, R]:
        program = current_program()
        if program is not None:
            return program.call_step(self, args, kwargs)
        if current_step() is not None:  # a step calling a step: the outer step's metadata
            return self.fn(*args, **kwargs)  # type: ignore[return-value]
        return self._plain(*args, **kwargs)

    async def _plain(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """A plain call (a test, a script): the body runs once, as attempt 1 of a step with a
        fresh id, so ``step_metadata()`` works in it."""
        started = datetime.now(UTC)
        meta = StepMetadata(self.name, f"{self.name}@{new_id(STEP)}", 1, started)
        token = plain_step.set(meta)
        try:
            return await self.fn(*args, **kwargs)
        finally:
            plain_step.reset(token)

    def __repr__(self) -> str:
        return f"<step {self.name!r}>"


class WorkflowFunction(Generic[P, R]):
    """A function decorated with ``@workflow``."""

    def __init__(self, fn: Callable[P, Awaitable[R]], name: str | None) -> None:
        _require_async(fn, "workflow")
        self.fn = fn
        self.name = name or default_name(fn)
        self.signature = Signature(fn)
        update_wrapper(self, fn)
        _register(_workflows, self.name, self, "workflow")

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, R]:
        return self.fn(*args, **kwargs)  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"<workflow {self.name!r}>"


@overload
def step(fn: Callable[P, Awaitable[R]], /) -> StepFunction[P, R]: ...


@overload
def step(
    *,
    name: str | None = None,
    max_retries: int = 3,
    timeout: float | None = None,
    retry_delay: float = 1.0,
) -> Callable[[Callable[P, Awaitable[R]]], StepFunction[P, R]]: ...


def step(
    fn: Callable[P, Awaitable[R]] | None = None,
    /,
    *,
    name: str | None = None,
    max_retries: int = 3,
    timeout: float | None = None,
    retry_delay: float = 1.0,
) -> StepFunction[P, R] | Callable[[Callable[P, Awaitable[R]]], StepFunction[P, R]]:
    """Declare a step: at-least-once, retried ``max_retries`` times (so 0 means one attempt)
    after ``retry_delay`` seconds, each attempt cancelled after ``timeout`` seconds."""

    def wrap(f: Callable[P, Awaitable[R]]) -> StepFunction[P, R]:
        return StepFunction(f, name, max_retries, timeout, retry_delay)

    return wrap(fn) if fn is not None else wrap


@overload
def workflow(fn: Callable[P, Awaitable[R]], /) -> WorkflowFunction[P, R]: ...


@overload
def workflow(
    *, name: str | None = None
) -> Callable[[Callable[P, Awaitable[R]]], WorkflowFunction[P, R]]: ...


def workflow(
    fn: Callable[P, Awaitable[R]] | None = None, /, *, name: str | None = None
) -> WorkflowFunction[P, R] | Callable[[Callable[P, Awaitable[R]]], WorkflowFunction[P, R]]:
    """Declare a workflow: deterministic orchestration of steps, sleeps and hooks."""

    def wrap(f: Callable[P, Awaitable[R]]) -> WorkflowFunction[P, R]:
        return WorkflowFunction(f, name)

    return wrap(fn) if fn is not None else wrap


def find_step(name: str) -> StepFunction[Any, Any]:
    """The step registered under ``name`` in this process."""
    try:
        return _steps[name]
    except KeyError:
        raise StepNotRegisteredError(name) from None


class Registry:
    """The workflows a runtime hosts, by name; None hosts every ``@workflow`` of the process."""

    def __init__(
        self, workflows: typing.Iterable[WorkflowFunction[Any, Any] | str] | None = None
    ) -> None:
        self._by_name: dict[str, WorkflowFunction[Any, Any]] = {}
        self._all = workflows is None
        for item in workflows or ():
            self.add(item)

    def add(self, item: WorkflowFunction[Any, Any] | str) -> None:
        if isinstance(item, str):
            found = _workflows.get(item)
            if found is None:
                raise WorkflowNotRegisteredError(item)
            item = found
        if not isinstance(item, WorkflowFunction):
            raise TypeError(f"{item!r} is not a @workflow function")
        _register(self._by_name, item.name, item, "workflow")

    def get(self, name: str) -> WorkflowFunction[Any, Any]:
        found = self._by_name.get(name) or (_workflows.get(name) if self._all else None)
        if found is None:
            raise WorkflowNotRegisteredError(name, self.names())
        return found

    def __contains__(self, name: object) -> bool:
        return name in self._by_name or (self._all and name in _workflows)

    def names(self) -> list[str]:
        return sorted({*self._by_name, *(_workflows if self._all else ())})


def is_running_in_workflow() -> bool:
    """Whether the calling code runs on a workflow's deterministic event loop."""
    return current_program() is not None
