"""``pip install -e .`` is visible to type checkers: mypy outside the clone checks typed keys.

The install goes into a throwaway virtual environment (sharing this interpreter's packages), so
the environment the tests run in is left as it is.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
ERROR = re.compile(r"^(?P<path>[^:]+):(?P<line>\d+): error: (?P<message>.*)$")

WRONG = """\
from actorflow import annotate
from conventions import Decision


def wrong() -> None:
    annotate(Decision.confidence, "high")
"""
RIGHT = """\
import runtime
from actorflow import Decision, annotate


def right() -> None:
    annotate(Decision.confidence, 0.42)
    runtime.annotate(Decision.confidence, 0.5)
"""


def run(command: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MYPYPATH")}
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_mypy_outside_the_clone_checks_typed_keys_after_an_editable_install(
    tmp_path: Path,
) -> None:
    venv = tmp_path / "venv"
    made = run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
        tmp_path,
        60,
    )
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    # As the README says to install: no option, the project's own configuration decides.
    install = [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "-e", str(ROOT)]
    installed = run(install, tmp_path, 120)
    assert installed.returncode == 0, installed.stdout + installed.stderr

    app = tmp_path / "app"
    app.mkdir()
    (app / "wrong.py").write_text(WRONG)
    (app / "right.py").write_text(RIGHT)
    checked = run(
        [
            str(python),
            "-m",
            "mypy",
            "--strict",
            "--no-error-summary",
            "--cache-dir",
            str(tmp_path / "mypy-cache"),
            "wrong.py",
            "right.py",
        ],
        app,
        120,
    )
    report = checked.stdout + checked.stderr
    errors = [m.groupdict() for m in map(ERROR.match, checked.stdout.splitlines()) if m]
    assert checked.returncode == 1, report
    assert [(e["path"], e["line"]) for e in errors] == [("wrong.py", "6")], report
    assert 'type parameter "T" of "annotate"' in errors[0]["message"], report
