"""The README's "In a web app" example: it compiles, imports what actorflow exports, and
type-checks against actorflow (Starlette, not a dependency, is left unchecked)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from mypy import api

import actorflow

ROOT = Path(__file__).parents[1]


def web_app_example() -> str:
    """The first Python block of the README's "In a web app" section."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## In a web app\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "the section has no Python block"
    return match.group(1)


def test_the_web_app_example_imports_only_what_actorflow_exports() -> None:
    tree = ast.parse(web_app_example())
    imported = [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "actorflow"
        for alias in node.names
    ]
    assert "Runtime" in imported
    assert [name for name in imported if name not in actorflow.__all__] == []
    assert not any(
        isinstance(node, ast.ImportFrom) and node.module in ("runtime", "persistence")
        for node in ast.walk(tree)
    ), "the example imports from actorflow only"


def test_the_web_app_example_type_checks(tmp_path: Path) -> None:
    example = tmp_path / "tickets.py"
    example.write_text(web_app_example())
    config = tmp_path / "mypy.ini"
    config.write_text(
        "[mypy]\nstrict = True\npython_version = 3.11\nignore_missing_imports = True\n"
        f"mypy_path = {ROOT}\ncache_dir = {tmp_path / 'cache'}\n"
    )
    stdout, stderr, status = api.run(["--config-file", str(config), str(example)])
    assert status == 0, stdout + stderr
