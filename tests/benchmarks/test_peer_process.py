"""Running a peer's script: its store flags, its scratch directory and its result file."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from benchmarks.peers.process import RESULT, run_for_result, store_arguments
from benchmarks.peers.venv import PeerUnavailable


def test_store_flags_name_the_directory_or_the_server_and_schema_prefix(tmp_path: Path) -> None:
    assert store_arguments("sqlite", None, tmp_path, "p") == ["--dir", str(tmp_path)]
    url = "postgresql://u@127.0.0.1:5432/db?schema=mine"
    flags = store_arguments("postgres", url, tmp_path, "bench_x_1")
    assert flags[0] == "--dsn" and "schema" not in flags[1]  # actorflow's own option left out
    assert flags[2:] == ["--schema-prefix", "bench_x_1"]
    with pytest.raises(PeerUnavailable, match="no PostgreSQL URL for DBOS"):
        store_arguments("postgres", None, tmp_path, "bench_x_1")


def test_the_result_a_script_wrote_is_read_and_its_directory_removed() -> None:
    seen: list[Path] = []

    def command(directory: Path, prefix: str) -> list[str]:
        seen.append(directory)
        assert prefix.startswith("bench_t_")
        code = f"open({str(directory / RESULT)!r}, 'w').write('{{\"raw\": [1, 2]}}')"
        return [sys.executable, "-c", code]

    assert asyncio.run(run_for_result("t", "sqlite", None, command, 30)) == {"raw": [1, 2]}
    assert seen and not seen[0].exists()


def test_a_script_that_fails_is_unavailable_and_leaves_no_directory() -> None:
    seen: list[Path] = []

    def command(directory: Path, prefix: str) -> list[str]:
        seen.append(directory)
        return [sys.executable, "-c", "raise SystemExit(3)"]

    with pytest.raises(PeerUnavailable, match="exited with code 3"):
        asyncio.run(run_for_result("t", "sqlite", None, command, 30, "the test script"))
    assert seen and not seen[0].exists()
