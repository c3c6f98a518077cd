"""Durable calls as the log records them: how a command is named, compared and identified.

A command (a step call, a sleep, a hook, a child) is confirmed on a replay by the
``*_created`` event at its position: same kind, same step name, same hook token. These
helpers give a command's signature and description, and the same for a logged event, so the
two can be compared and a mismatch reported in words.
"""

from __future__ import annotations

from actors.program import Command, CreateHook, StartChild, StartStep, StartWait
from persistence import events as ev


def describe(command: Command) -> str:
    """A command as a NonDeterminismError names it."""
    if isinstance(command, StartStep):
        return f"a call of step {command.step_name!r}"
    if isinstance(command, StartWait):
        return "a sleep"
    if isinstance(command, CreateHook):
        return f"a hook with token {command.token!r}"
    if isinstance(command, StartChild):
        return f"a child run of workflow {command.workflow_name!r}"
    return repr(command)


def signature(command: Command) -> tuple[str, str]:
    if isinstance(command, StartStep):
        return ("step", command.step_name)
    if isinstance(command, StartWait):
        return ("wait", "")
    if isinstance(command, CreateHook):
        return ("hook", command.token)
    if isinstance(command, StartChild):
        return ("child", command.workflow_name)
    return ("dispose", command.hook_id)


def logged(data: ev.EventData) -> tuple[tuple[str, str], str]:
    """The call a ``*_created`` event records: its signature and a description."""
    if isinstance(data, ev.StepCreated):
        return ("step", data.step_name), f"a call of step {data.step_name!r}"
    if isinstance(data, ev.WaitCreated):
        return ("wait", ""), "a sleep"
    if isinstance(data, ev.HookCreated | ev.HookConflict):
        return ("hook", data.token), f"a hook with token {data.token!r}"
    raise AssertionError(data)


def command_id_of(command: Command) -> str:
    if isinstance(command, StartStep):
        return command.step_id
    if isinstance(command, StartWait):
        return command.wait_id
    if isinstance(command, CreateHook):
        return command.hook_id
    if isinstance(command, StartChild):
        return command.child_id
    return command.hook_id
