"""Hooks in workflow code: ``await hook`` for the next payload, ``async for`` for all of them.

Payloads reach a hook as ``hook_received`` events, in log order; those that arrive before the
workflow awaits are kept, in order. ``dispose()`` (or leaving a ``with create_hook(...)``
block) releases the token while the run goes on; iteration then ends once the payloads
already received are consumed.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Generator
from types import TracebackType
from typing import TYPE_CHECKING, Any

from persistence import codec

from .errors import HookConflictError

if TYPE_CHECKING:
    from .program import WorkflowProgram


class HookDisposedError(RuntimeError):
    """The hook was disposed and holds no more payloads."""


class WorkflowHook:
    """A hook made by ``create_hook`` in workflow code."""

    def __init__(self, program: WorkflowProgram, hook_id: str, token: str, metadata: Any) -> None:
        self._program = program
        self.hook_id = hook_id
        self.token = token
        self.metadata = metadata
        self._payloads: deque[bytes] = deque()
        self._waiters: deque[asyncio.Future[bytes]] = deque()
        self._conflicting_run_id: str | None = None
        self._disposed = False

    def __repr__(self) -> str:
        return f"<hook {self.token!r}>"

    # -- reading payloads ---------------------------------------------------------------------

    def __await__(self) -> Generator[Any, None, Any]:
        return self.next().__await__()

    async def next(self) -> Any:
        """The next payload (waiting for it if none is kept)."""
        if self._payloads:
            return codec.decode(self._payloads.popleft(), where=f"payload of hook {self.token!r}")
        if self._conflicting_run_id is not None:
            raise HookConflictError(self.token, self._conflicting_run_id)
        if self._disposed:
            raise HookDisposedError(f"hook {self.token!r} was disposed")
        waiter: asyncio.Future[bytes] = self._program.loop.create_future()
        self._waiters.append(waiter)
        data = await waiter
        return codec.decode(data, where=f"payload of hook {self.token!r}")

    def __aiter__(self) -> WorkflowHook:
        return self

    async def __anext__(self) -> Any:
        if self._disposed and not self._payloads:
            raise StopAsyncIteration
        try:
            return await self.next()
        except HookDisposedError:
            raise StopAsyncIteration from None

    @property
    def conflicting_run_id(self) -> str | None:
        """The run that holds this hook's token, if the claim was refused."""
        return self._conflicting_run_id

    # -- releasing ----------------------------------------------------------------------------

    def dispose(self) -> None:
        """Release the token now; the run goes on."""
        if self._disposed:
            return
        self._disposed = True
        self._program.dispose_hook(self)
        self._fail_waiters(HookDisposedError(f"hook {self.token!r} was disposed"))

    def __enter__(self) -> WorkflowHook:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.dispose()

    async def __aenter__(self) -> WorkflowHook:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.dispose()

    # -- called by the program -----------------------------------------------------------------

    def _push(self, payload: bytes) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(payload)
                return
        self._payloads.append(payload)

    def _conflict(self, run_id: str) -> None:
        self._conflicting_run_id = run_id
        self._fail_waiters(HookConflictError(self.token, run_id))

    def _released(self) -> None:
        if not self._disposed:
            self._disposed = True
            self._fail_waiters(HookDisposedError(f"hook {self.token!r} was disposed"))

    def _fail_waiters(self, error: BaseException) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(error)
