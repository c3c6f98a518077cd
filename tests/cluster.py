"""Processes for ownership tests: a private PostgreSQL server to restart, and a ledger of
step bodies kept outside the engine.

The ledger is a file each step body appends a JSON line to when it starts and when it ends
(one ``write`` of a short line, so lines of several processes never interleave). It is the
evidence the tests judge by: which attempt of which step ran where, and when.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class PrivateServer:
    """A throwaway PostgreSQL cluster of one test: it can be restarted or stopped."""

    directory: Path
    port: int
    user: str | None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def ctl(self, *args: str, timeout: float = 60) -> None:
        command = [str(PG_BIN / "pg_ctl"), "-D", str(self.directory / "data"), *args]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=timeout)

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 "
            "-c max_connections=200 -c fsync=off"
        )
        self.ctl("-l", str(self.directory / "server.log"), "-w", "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        self.ctl("-m", mode, "-w", "stop")

    def restart(self, mode: str) -> None:
        """Stop (``fast``: clients are disconnected; ``immediate``: the server crashes) and
        start again on the same port."""
        self.stop(mode)
        self.start()


@contextmanager
def private_postgres() -> Iterator[PrivateServer]:
    """A PostgreSQL server of its own (as an unprivileged user when run as root)."""
    if not (PG_BIN / "initdb").exists():
        raise RuntimeError(f"PostgreSQL binaries not found in {PG_BIN} (set PG_BIN)")
    directory = Path(tempfile.mkdtemp(prefix="actorflow-private-pg-"))
    user = None
    if os.geteuid() == 0:
        user = "postgres"
        shutil.chown(directory, user)
        directory.chmod(0o700)
    server = PrivateServer(directory, free_port(), user)
    initdb = [str(PG_BIN / "initdb"), "-D", str(directory / "data"), "-U", "postgres"]
    initdb += ["-A", "trust", "--no-sync"]
    if user is not None:
        initdb = ["runuser", "-u", user, "--", *initdb]
    subprocess.run(initdb, check=True, capture_output=True, timeout=120)
    server.start()
    try:
        yield server
    finally:
        with suppress(subprocess.SubprocessError):
            server.stop("immediate")
        shutil.rmtree(directory, ignore_errors=True)


# -- the ledger ----------------------------------------------------------------------------

LEDGER_STEP = '''
def record(ledger: str, what: str, **fields: object) -> None:
    """One line, one write: lines of several processes never interleave."""
    import json, os, time
    line = json.dumps({"what": what, "pid": os.getpid(), "t": time.time(), **fields}) + "\\n"
    fd = os.open(ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
'''
"""Source of the ``record`` function the test scripts' steps call."""


@dataclass(frozen=True)
class Entry:
    what: str
    pid: int
    t: float
    fields: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.fields[key]


def read_ledger(path: Path) -> list[Entry]:
    """Every line of the ledger, in the order written."""
    if not path.exists():
        return []
    entries = []
    for line in path.read_text().splitlines():
        data = json.loads(line)
        what, pid, t = data.pop("what"), data.pop("pid"), data.pop("t")
        entries.append(Entry(what, pid, t, data))
    return entries


def overlaps(entries: list[Entry], key: tuple[str, ...]) -> list[tuple[Any, ...]]:
    """The steps (identified by ``key`` fields) whose body ran twice at the same time: an
    attempt started while another attempt of it had started and not ended."""
    running: dict[tuple[Any, ...], int] = {}
    found = []
    for entry in entries:
        ident = tuple(entry[k] for k in key)
        if entry.what == "start":
            if running.get(ident, 0) > 0:
                found.append(ident)
            running[ident] = running.get(ident, 0) + 1
        elif entry.what == "end":
            running[ident] = running.get(ident, 1) - 1
    return found


def wait_for(check: Any, timeout: float, every: float = 0.05) -> None:
    """Poll ``check()`` until true; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s: {check}")
        time.sleep(every)
