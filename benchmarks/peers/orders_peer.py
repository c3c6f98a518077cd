"""DBOS beside the orders suite: ``dbos_orders.py`` run in DBOS's venv, once per round.

The script runs the shop order as DBOS documents its API (see its docstring) on a fresh system
database (a new SQLite file, or a new PostgreSQL schema dropped here afterwards) and writes its
raw samples, ``[CPU seconds, wall seconds]`` per repetition, which the orders suite summarizes
with the code that summarizes its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .process import RESULT, run_for_result, store_arguments
from .venv import PeerEnv, PeerUnavailable

SCRIPT = Path(__file__).resolve().parent / "dbos_orders.py"
RUN_TIMEOUT = 3600.0
"""A round of 1,000 orders took DBOS minutes on a small machine; more than this is a hang."""


def command_line(
    env: PeerEnv,
    kind: str,
    postgres: str | None,
    orders: int,
    repeat: int,
    directory: Path,
    prefix: str,
) -> list[str]:
    """The script's command line: ``repeat`` times ``orders`` orders on ``kind``."""
    command = [str(env.python), str(SCRIPT), "--store", kind]
    command += ["--orders", str(orders), "--repeat", str(repeat)]
    command += ["--out", str(directory / RESULT)]
    return [*command, *store_arguments(kind, postgres, directory, prefix)]


def parse_result(result: Mapping[str, Any], orders: int) -> list[tuple[float, float]]:
    """The (CPU seconds, wall seconds) per repetition in the script's JSON;
    :class:`PeerUnavailable` saying why if DBOS did not run them."""
    not_run = dict(result.get("not_run", {}))
    if "orders" in not_run:
        raise PeerUnavailable(f"DBOS orders failed: {not_run['orders']}")
    raw = dict(result.get("raw", {}))
    if int(raw.get("orders", -1)) != orders:
        raise PeerUnavailable(f"the DBOS script ran {raw.get('orders')} orders, not {orders}")
    samples = [(float(cpu), float(wall)) for cpu, wall in raw.get("samples", [])]
    if not samples:
        raise PeerUnavailable("the DBOS script wrote no samples")
    if any(cpu <= 0 or wall <= 0 for cpu, wall in samples):
        raise PeerUnavailable(f"the DBOS script wrote a sample that is not positive: {samples}")
    return samples


async def run_dbos_orders(
    env: PeerEnv, kind: str, postgres: str | None, orders: int, repeat: int
) -> list[tuple[float, float]]:
    """Run ``dbos_orders.py`` on ``kind``; its samples, or :class:`PeerUnavailable` if it
    fails or hangs."""

    def command(directory: Path, prefix: str) -> list[str]:
        return command_line(env, kind, postgres, orders, repeat, directory, prefix)

    what = "the DBOS orders script"
    result = await run_for_result("doso", kind, postgres, command, RUN_TIMEOUT, what)
    return parse_result(result, orders)
