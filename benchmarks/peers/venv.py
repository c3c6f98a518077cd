"""Installing a peer engine into its own virtual environment, made once and kept.

The peer never becomes a dependency of actorflow: it lives in a venv of its own, made with
this interpreter's ``venv`` module and filled by that venv's ``pip`` from PyPI. When PyPI
cannot be reached the install fails fast and the caller reports the peer as unavailable.

The venvs go under ``$ACTORFLOW_BENCH_PEERS_DIR`` if set; else, in a clone of the repository,
under ``benchmarks/.peers`` (git-ignored); else (the installed package, whose directory is
no place for a venv) under the user's cache, ``$XDG_CACHE_HOME/actorflow/peers``
(``~/.cache/actorflow/peers``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

PEERS_ENV = "ACTORFLOW_BENCH_PEERS_DIR"
PACKAGE_DIR = Path(__file__).resolve().parents[1]


def peers_dir(package_dir: Path = PACKAGE_DIR, environ: Mapping[str, str] | None = None) -> Path:
    """Where the peers' virtual environments live (see the module's docstring)."""
    env = os.environ if environ is None else environ
    if env.get(PEERS_ENV):
        return Path(env[PEERS_ENV])
    if (package_dir.parent / "pyproject.toml").is_file():  # a clone: benchmarks/ at its root
        return package_dir / ".peers"
    cache = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return cache / "actorflow" / "peers"


DBOS_PACKAGE = "dbos"
DBOS_VERSION = "3.4.0"
INSTALL_TIMEOUT = 900.0


class PeerUnavailable(RuntimeError):
    """The peer could not be installed or run; the message says why."""


@dataclass(frozen=True)
class PeerEnv:
    """A peer installed in a virtual environment."""

    package: str
    version: str
    venv: Path

    @property
    def python(self) -> Path:
        """The venv's interpreter."""
        return self.venv / "bin" / "python"


def installed_version(python: Path, package: str) -> str | None:
    """The version of ``package`` that ``python`` imports, or None."""
    if not python.exists():
        return None
    probe = subprocess.run(
        [str(python), "-c", f"import importlib.metadata as m; print(m.version({package!r}))"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return probe.stdout.strip() if probe.returncode == 0 else None


def _run(command: list[str], what: str, timeout: float) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise PeerUnavailable(f"{what} timed out after {timeout:.0f} s") from None
    if done.returncode != 0:
        lines = [
            line
            for line in (done.stderr + done.stdout).splitlines()
            if line.strip() and "is ignored: it is neither a file nor a directory" not in line
        ]
        tail = " | ".join(lines[-2:]) or f"exit code {done.returncode}"
        raise PeerUnavailable(f"{what} failed: {tail}")


def ensure_peer(
    package: str = DBOS_PACKAGE, version: str = DBOS_VERSION, root: Path | None = None
) -> PeerEnv:
    """The venv ``root/<package>`` with ``package==version``, created or installed if needed
    (``root`` defaults to :func:`peers_dir`).

    Raises :class:`PeerUnavailable` with the reason (e.g. PyPI unreachable) if it cannot.
    """
    env = PeerEnv(package, version, (root or peers_dir()) / package)
    if installed_version(env.python, package) == version:
        return env
    if not env.python.exists():
        env.venv.parent.mkdir(parents=True, exist_ok=True)
        _run(
            [sys.executable, "-m", "venv", str(env.venv)],
            f"creating the virtual environment {env.venv}",
            300,
        )
    _run(
        [
            str(env.python),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--quiet",
            "--timeout",
            "20",
            "--retries",
            "2",
            f"{package}=={version}",
        ],
        f"installing {package}=={version} from PyPI into {env.venv} (is PyPI reachable?)",
        INSTALL_TIMEOUT,
    )
    found = installed_version(env.python, package)
    if found != version:
        raise PeerUnavailable(f"{env.venv} has {package} {found}, not {version}, after install")
    return env
