"""The README's code runs, so that the README cannot rot.

Every ```python block of README.md runs in a fresh directory, in a process of its own, unless
the line just before it is a marker comment ``<!-- readme-test: KIND (why) -->``:

- ``pytest``: a test file (its first line, ``# test_x.py``, names it), run with pytest.
- ``is examples/FILE``: the block is that file, character for character; the tutorial's
  commands run it.
- ``after the tutorial``: a test file run with pytest in the tutorial's directory, once the
  tutorial's commands have run.
- ``type-check``: checked with ``mypy --strict`` only (it needs what is not installed).
- ``served``: an ASGI app, checked with ``mypy --strict``, then served by uvicorn in another
  process while the test calls each of its routes.

The tutorial's shell commands run as written: a directory stands for ``~/shop``, ``actorflow``
is this checkout's command line, and the hook is resumed while the tutorial's script waits.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from mypy import api

import actorflow

from .scripts import cli_command, script_env

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"
MARK = re.compile(r"<!-- readme-test: (?P<kind>[^(]+?)(?: \((?P<why>.+)\))? -->")
KINDS = ("pytest", "is examples/", "after the tutorial", "type-check", "served")
TUTORIAL = "Tutorial: five minutes"


@dataclass(frozen=True)
class Block:
    """A fenced code block of the README, with the section it is in and its marker."""

    language: str
    code: str
    section: str
    line: int
    kind: str = ""
    why: str = ""

    @property
    def name(self) -> str:
        return f"{self.section} (line {self.line})"


def read_blocks(text: str) -> list[Block]:
    """The fenced blocks of ``text`` (an indented fence too), in order."""
    blocks: list[Block] = []
    lines = text.splitlines()
    section = ""
    previous = ""
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("## ") or line.startswith("### "):
            section = line.lstrip("#").strip()
        if line.strip().startswith("```"):
            indent = len(line) - len(line.lstrip())
            start = index + 1
            index += 1
            while not lines[index].strip().startswith("```"):
                index += 1
            code = "\n".join(row[indent:] for row in lines[start:index]) + "\n"
            mark = MARK.fullmatch(previous.strip())
            blocks.append(
                Block(
                    line.strip()[3:],
                    code,
                    section,
                    start,
                    mark["kind"] if mark else "",
                    (mark["why"] or "") if mark else "",
                )
            )
        elif line.strip():
            previous = line
        index += 1
    return blocks


BLOCKS = read_blocks(README.read_text())
PYTHON = [block for block in BLOCKS if block.language == "python"]
RUNNABLE = [block for block in PYTHON if block.kind in ("", "pytest")]


def env() -> dict[str, str]:
    """A script's environment: this checkout on the path, the default store."""
    return {k: v for k, v in script_env().items() if k != "ACTORFLOW_STORE"}


def run(command: list[str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        command, cwd=cwd, env=env(), capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"{shlex.join(command)}:\n{done.stdout}\n{done.stderr}"
    return done


def test_the_readme_has_python_blocks_and_few_markers() -> None:
    assert len(PYTHON) >= 10
    marked = [block for block in PYTHON if block.kind]
    for block in marked:
        assert block.kind.startswith(KINDS), f"{block.name}: unknown marker {block.kind!r}"
        if block.kind != "pytest":
            assert block.why, f"{block.name}: say why the block is not run on its own"
    assert len([block for block in marked if block.kind == "type-check"]) <= 1
    assert len(marked) <= 5


@pytest.mark.slow
def test_the_first_example_runs_in_seconds(tmp_path: Path) -> None:
    first = PYTHON[0]
    assert "asyncio.run(main())" in first.code and not first.kind
    started = time.monotonic()
    done = run([sys.executable, "example.py"], write(tmp_path, "example.py", first.code))
    assert time.monotonic() - started < 20
    assert "receipt-o-1" in done.stdout


def write(directory: Path, name: str, code: str) -> Path:
    (directory / name).write_text(code)
    return directory


def run_tests(block: Block, directory: Path) -> subprocess.CompletedProcess[str]:
    """Run the test file ``block`` is (its first line, ``# test_x.py``, names it) with pytest."""
    name = block.code.splitlines()[0].removeprefix("# ")
    assert re.fullmatch(r"test_\w+\.py", name), f"{block.name}: the first line is # test_x.py"
    (directory / name).write_text(block.code)
    return run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", name], directory)


@pytest.mark.slow
@pytest.mark.parametrize("block", RUNNABLE, ids=lambda block: block.name)
def test_a_python_block_runs(block: Block, tmp_path: Path) -> None:
    if block.kind == "pytest":
        done = run_tests(block, tmp_path)
        assert " passed" in done.stdout and "skipped" not in done.stdout
    else:
        run([sys.executable, "example.py"], write(tmp_path, "example.py", block.code))


def test_the_blocks_that_are_files_are_those_files() -> None:
    files = [block for block in PYTHON if block.kind.startswith("is examples/")]
    assert [block.kind for block in files] == [
        "is examples/tutorial.py",
        "is examples/test_tutorial.py",
    ]
    for block in files:
        assert block.code == (ROOT / block.kind.removeprefix("is ")).read_text()


class Shell:
    """Runs the tutorial's commands as a reader would, ``~`` being ``home``."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.cwd = ROOT
        self.script: subprocess.Popen[str] | None = None
        self.ran: list[str] = []

    def path(self, word: str) -> Path:
        return self.home / word[2:] if word.startswith("~/") else self.cwd / word

    def line(self, line: str) -> None:
        words = shlex.split(line, comments=True)
        while words:
            end = words.index("&&") if "&&" in words else len(words)
            self.command(words[:end])
            words = words[end + 1 :]

    def command(self, words: list[str]) -> None:
        self.ran.append(shlex.join(words))
        out = None
        if ">" in words:
            out = self.path(words[words.index(">") + 1])
            words = words[: words.index(">")]
        match words:
            case ["mkdir", *paths]:
                for path in paths:
                    if path != "-p":
                        self.path(path).mkdir(parents=True, exist_ok=True)
            case ["cp", *sources, target]:
                for source in sources:
                    shutil.copy(self.path(source), self.path(target))
            case ["cd", path]:
                self.cwd = self.path(path)
            case ["python", "tutorial.py", *args]:
                self.script = subprocess.Popen(
                    [sys.executable, "tutorial.py", *args],
                    cwd=self.cwd,
                    env=env(),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
            case ["python", *args]:
                run([sys.executable, *args], self.cwd)
            case ["actorflow", "hooks", "resume", *_]:
                self.resume(words[1:])
            case ["actorflow", *args]:
                done = run(cli_command(*args), self.cwd)
                if out is not None:
                    out.write_text(done.stdout)
            case _:
                raise AssertionError(f"the tutorial's shell does not know {words}")

    def resume(self, args: list[str]) -> None:
        """Resume the hook as soon as the script's run has it, then let the script end."""
        deadline = time.monotonic() + 30
        while (
            done := subprocess.run(
                cli_command(*args), cwd=self.cwd, env=env(), capture_output=True, text=True
            )
        ).returncode != 0:
            # until the script has made its store, and its run the hook
            assert "HookNotFoundError" in done.stderr or "no actorflow store" in done.stderr, (
                done.stderr
            )
            assert time.monotonic() < deadline, "the hook was never created"
            time.sleep(0.2)
        assert self.script is not None, "resume before the script started"
        stdout, _ = self.script.communicate(timeout=60)
        assert self.script.returncode == 0, stdout
        assert "result: receipt-o-1" in stdout, stdout


@pytest.mark.slow
def test_the_tutorial_runs_as_written(tmp_path: Path) -> None:
    shell = Shell(tmp_path)
    commands = [block for block in BLOCKS if block.section == TUTORIAL and block.language == "sh"]
    later = [block for block in BLOCKS if block.kind == "after the tutorial"]
    try:
        for block in [*commands, *(b for b in later if b.language == "sh")]:
            for line in block.code.splitlines():
                if line.strip() and not line.strip().startswith("#"):
                    shell.line(line)
    finally:
        if shell.script is not None and shell.script.poll() is None:
            shell.script.kill()
            shell.script.wait()
    assert any(ran.startswith("actorflow runs show") for ran in shell.ran)
    assert any(ran.startswith("actorflow runs events") for ran in shell.ran)
    for block in later:
        if block.language == "python":
            assert "1 passed" in run_tests(block, shell.cwd).stdout


def web_app_example() -> str:
    """The Python block of the README's "In a web app" section."""
    (block,) = [block for block in PYTHON if block.section == "In a web app"]
    assert block.kind == "served"
    return block.code


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


def http(method: str, url: str, body: bytes | None = None, **headers: str) -> tuple[int, str]:
    """One request; its status and body (an error status is returned, not raised)."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


KEY = {"Idempotency-Key": "approval-1"}


@pytest.mark.slow
def test_the_web_app_example_serves_its_routes(tmp_path: Path) -> None:
    (tmp_path / "tickets.py").write_text(web_app_example())
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}/tickets"
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "tickets:app", "--port", str(port), "--no-access-log"],
        cwd=tmp_path,
        env={**env(), "ACTORFLOW_STORE": f"sqlite:///{tmp_path / 'tickets.db'}"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:  # until it answers: an unknown ticket's reply is a 404
            try:
                status, _ = http("GET", f"{base}/none/reply")
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "no server"
                time.sleep(0.1)
        assert status == 404
        status, body = http("POST", f"{base}/7")
        assert status == 202 and json.loads(body) == {"run_id": "ticket-7"}
        assert http("POST", f"{base}/7")[1] == body  # a retried request: the same run
        status, body = http("GET", f"{base}/7/reply")  # follows the stream until it closes
        words = [json.loads(line[6:]) for line in body.splitlines() if line.startswith("data: ")]
        assert status == 200 and words == ["Thanks", "for", "writing", "in.", {}]
        approval = b'{"ok": true}'
        assert http("POST", f"{base}/7/approval", approval)[0] == 400  # no Idempotency-Key
        for _ in range(2):  # the client's retry records nothing more
            deadline = time.monotonic() + 10
            while (answer := http("POST", f"{base}/7/approval", approval, **KEY))[0] == 404:
                assert time.monotonic() < deadline, "the run never waited for its approval"
                time.sleep(0.05)
            assert answer == (200, '{"run_id":"ticket-7"}')
        assert http("POST", f"{base}/8/approval", approval, **KEY)[0] == 404
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=30)
    assert "Traceback" not in output, output


KINDS_OF_INSTRUMENT = {
    "counter": "Counter",
    "histogram": "Histogram",
    "up_down_counter": "Up-down counter",
}


def test_the_conventions_readme_lists_every_telemetry_name_with_its_kind() -> None:
    from conventions import otel

    readme = (ROOT / "conventions" / "README.md").read_text()
    for constant in otel.__all__:
        if constant != "REFERENCE_NAMES":
            row = f"| `{constant}` | `{getattr(otel, constant)}` |"
            assert row in readme, f"conventions/README.md has no row {row}"
    telemetry = (ROOT / "runtime" / "telemetry.py").read_text()
    made = re.findall(r"create_(counter|histogram|up_down_counter)\(\s*otel\.(\w+)", telemetry)
    assert len(made) == len([name for name in otel.__all__ if name.startswith("METRIC_")])
    for kind, constant in made:
        row = f"| `{constant}` | `{getattr(otel, constant)}` | {KINDS_OF_INSTRUMENT[kind]}"
        assert row in readme, f"conventions/README.md: {constant} is a {kind}"
    for theirs, ours in otel.REFERENCE_NAMES.items():
        assert f"| `{theirs}` | `{ours}` |" in readme


def test_the_readme_names_every_metric_as_the_conventions_do() -> None:
    from conventions import otel

    section = README.read_text().split("\n## OpenTelemetry\n", 1)[1].split("\n## ", 1)[0]
    bullet = section.split("- Metrics:", 1)[1].split("\n\n", 1)[0]
    named = set(re.findall(r"`([a-z.]+)`", bullet))
    for alternatives in re.findall(r"`([a-z.]+)\.((?:[a-z]+\|)+[a-z]+)`", bullet):
        named |= {f"{alternatives[0]}.{last}" for last in alternatives[1].split("|")}
    metrics = {getattr(otel, name) for name in otel.__all__ if name.startswith("METRIC_")}
    assert metrics <= named, f"the README's metrics lack {metrics - named}"
    assert "`workflow.actors.live` and `workflow.actors.passivated` (up-down counters)" in bullet


def test_every_relative_link_of_the_readmes_is_a_file_of_the_repository() -> None:
    """Links and images (the benchmark plots) must point at files a clone has: an ignored
    or unwritten file would show as a broken image."""
    targets = []
    for readme in (README, *sorted(ROOT.glob("*/README.md")), ROOT / "benchmarks" / "RESULTS.md"):
        text = readme.read_text()
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if "://" in target or target.startswith(("#", "mailto:")):
                continue
            targets.append((readme, target.split("#")[0]))
    assert any(t.endswith(".png") for _, t in targets), "the plots are linked"
    tracked = set(
        subprocess.run(
            ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.split()
    )
    missing = [
        f"{readme.relative_to(ROOT)}: {target}"
        for readme, target in targets
        if (readme.parent / target).resolve().relative_to(ROOT.resolve()).as_posix() not in tracked
        and not (readme.parent / target).resolve().is_dir()
    ]
    assert missing == []


def test_the_conventions_readme_type_checks_as_it_says(tmp_path: Path) -> None:
    """The conventions README's blocks, in order as one module, under ``mypy --strict``:
    exactly the lines it marks as errors (``# error``, ``# mypy: error``) fail."""
    blocks = read_blocks((ROOT / "conventions" / "README.md").read_text())
    code = "".join(block.code for block in blocks if block.language == "python")
    lines = code.splitlines()
    expected = {n for n, line in enumerate(lines, 1) if re.search(r"#( mypy:)? error\b", line)}
    assert len(expected) >= 4, "the conventions README lost its type-check examples"
    path = write(tmp_path, "conventions_readme.py", code) / "conventions_readme.py"
    out, _, _ = api.run(
        ["--strict", "--no-incremental", "--cache-dir", str(tmp_path / "c"), str(path)]
    )
    errors = {int(m) for m in re.findall(r"conventions_readme\.py:(\d+): error", out)}
    assert errors == expected, f"mypy's errors are on lines {sorted(errors)}:\n{out}"
