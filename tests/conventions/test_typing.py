"""The static-typing guarantee: mypy rejects a wrong value for a typed key, and only that.

``typing_cases/wrong_calls.py`` marks every line mypy must reject with ``# E``;
``typing_cases/right_calls.py`` must check clean. Both call a stand-in ``annotate`` with the
runtime's exact overloads (``typing_cases/_annotate_stub.py``); once ``runtime.annotate``
exists, the wrong calls are also checked against it.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
from mypy import api

CASES = Path(__file__).parent / "typing_cases"
ROOT = Path(__file__).parents[2]
STUB_IMPORT = "from ._annotate_stub import annotate"
ERROR = re.compile(r"^(?P<path>.+?):(?P<line>\d+): error: (?P<message>.*)$")


@pytest.fixture(scope="module")
def mypy_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A strict mypy configuration with the repository root on mypy's path."""
    directory = tmp_path_factory.mktemp("mypy")
    config = directory / "mypy.ini"
    config.write_text(
        "[mypy]\n"
        "strict = True\n"
        "python_version = 3.11\n"
        f"mypy_path = {ROOT}\n"
        f"cache_dir = {directory / 'cache'}\n"
    )
    return config


def run_mypy(config: Path, path: Path) -> tuple[dict[int, list[str]], str, int]:
    """Run mypy on ``path``; return its errors in that file by line, the full report, status."""
    stdout, stderr, status = api.run(
        ["--config-file", str(config), "--no-error-summary", "--show-error-codes", str(path)]
    )
    assert status in (0, 1), f"mypy failed to run ({status}):\n{stdout}{stderr}"
    errors: dict[int, list[str]] = {}
    for line in stdout.splitlines():
        match = ERROR.match(line)
        if match and Path(match["path"]).resolve() == path.resolve():
            errors.setdefault(int(match["line"]), []).append(match["message"])
    return errors, stdout + stderr, status


def marked_lines(path: Path) -> set[int]:
    """The numbers of the lines of ``path`` marked ``# E``."""
    lines = path.read_text().splitlines()
    return {n for n, line in enumerate(lines, start=1) if line.rstrip().endswith("# E")}


def check_wrong_calls(config: Path, path: Path) -> None:
    expected = marked_lines(path)
    assert len(expected) >= 40, "the wrong-calls file lost its cases"
    errors, report, status = run_mypy(config, path)
    assert status == 1, report
    missed = sorted(expected - errors.keys())
    unexpected = {n: errors[n] for n in sorted(errors.keys() - expected)}
    assert not missed, f"mypy accepted lines marked '# E': {missed}\n{report}"
    assert not unexpected, f"mypy rejected unmarked lines: {unexpected}\n{report}"


def test_mypy_rejects_every_wrong_call_and_nothing_else(mypy_config: Path) -> None:
    check_wrong_calls(mypy_config, CASES / "wrong_calls.py")


def test_mypy_accepts_every_right_call(mypy_config: Path) -> None:
    errors, report, status = run_mypy(mypy_config, CASES / "right_calls.py")
    assert not errors, report
    assert status == 0, report


def test_wrong_value_for_typed_key_is_an_error_of_the_typed_overload(mypy_config: Path) -> None:
    # The typed-key overload, not a fall-through to the untyped one, is what rejects the call.
    errors, report, _ = run_mypy(mypy_config, CASES / "wrong_calls.py")
    source = (CASES / "wrong_calls.py").read_text().splitlines()
    line = next(
        n
        for n, text in enumerate(source, start=1)
        if 'annotate(Decision.confidence, "high")' in text
    )
    assert any('type parameter "T" of "annotate"' in m for m in errors[line]), report


def test_cases_against_the_real_runtime_annotate(mypy_config: Path, tmp_path: Path) -> None:
    runtime = importlib.import_module("runtime")
    assert hasattr(runtime, "annotate")
    copies = {}
    for name in ("wrong_calls", "right_calls"):
        source = (CASES / f"{name}.py").read_text()
        assert STUB_IMPORT in source
        copies[name] = tmp_path / f"{name}_runtime.py"
        # The same number of lines, so the '# E' marks still line up.
        copies[name].write_text(source.replace(STUB_IMPORT, "from runtime import annotate"))
    check_wrong_calls(mypy_config, copies["wrong_calls"])
    errors, report, _ = run_mypy(mypy_config, copies["right_calls"])
    assert not errors, report
