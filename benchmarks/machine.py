"""The machine a run measured on: cores, CPU model, Python, SQLite and PostgreSQL versions.

Numbers from two runs compare only on like machines, so every report states these.
"""

from __future__ import annotations

import os
import platform
import sqlite3
import sys
from pathlib import Path
from typing import Any

import asyncpg

from .stores import postgres_dsn

CPUINFO = Path("/proc/cpuinfo")


def cpu_model(cpuinfo: str | None = None) -> str:
    """The CPU's model name (Linux's ``/proc/cpuinfo``; else what ``platform`` knows)."""
    if cpuinfo is None:
        try:
            cpuinfo = CPUINFO.read_text(errors="replace")
        except OSError:
            cpuinfo = ""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model", "Hardware") and value.strip():
            return value.strip()
    return platform.processor() or platform.machine() or "unknown"


def machine() -> dict[str, Any]:
    """Cores, CPU model, Python and SQLite versions, and the platform."""
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
    }


async def postgres_version(url: str) -> str | None:
    """The PostgreSQL server's version (``SHOW server_version``), or None if it cannot say."""
    try:
        conn = await asyncpg.connect(postgres_dsn(url), timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return None
    try:
        version: str = await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()
    return version
