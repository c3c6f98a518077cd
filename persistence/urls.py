"""Store URLs: which store a URL names, and the embedded default."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final
from urllib.parse import parse_qsl, urlsplit

from .errors import InvalidStoreURLError

DEFAULT_URL: Final = "sqlite:///.actorflow/actorflow.db"
ENV_VAR: Final = "ACTORFLOW_STORE"


def resolve_url(url: str | None) -> str:
    """``url``, or ``$ACTORFLOW_STORE``, or the embedded default, in that order."""
    if url:
        return url
    return os.environ.get(ENV_VAR) or DEFAULT_URL


def scheme_of(url: str) -> str:
    """The store kind a URL names: ``memory``, ``sqlite`` or ``postgresql``."""
    if "://" not in url:
        raise InvalidStoreURLError(
            f"store URL {url!r} has no scheme; use memory://, sqlite:///path.db or "
            "postgresql://user@host:port/db"
        )
    scheme = url.split("://", 1)[0].lower()
    if scheme in ("postgres", "postgresql"):
        return "postgresql"
    if scheme in ("memory", "sqlite"):
        return scheme
    raise InvalidStoreURLError(
        f"unknown store scheme {scheme!r} in {url!r}; use memory://, sqlite:///path.db or "
        "postgresql://user@host:port/db"
    )


def sqlite_path(url: str) -> tuple[Path, dict[str, str]]:
    """The file path and options of a ``sqlite:///relative`` or ``sqlite:////absolute`` URL."""
    if not url.lower().startswith("sqlite:///"):
        raise InvalidStoreURLError(
            f"malformed SQLite URL {url!r}: use sqlite:///relative/path.db or "
            "sqlite:////absolute/path.db"
        )
    rest = url[len("sqlite:///") :]
    path, _, query = rest.partition("?")
    if not path:
        raise InvalidStoreURLError(f"SQLite URL {url!r} names no file")
    try:
        options = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
    except ValueError as exc:
        raise InvalidStoreURLError(f"malformed options in SQLite URL {url!r}: {exc}") from None
    return Path(path), options


def redact(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def postgres_parts(url: str) -> tuple[str, dict[str, str]]:
    """The connection URL (without actorflow's own options) and those options.

    actorflow's options are ``schema`` (default ``actorflow``), ``min_size``, ``max_size``.
    """
    parts = urlsplit(url)
    shown = redact(url)
    if not parts.hostname and "host=" not in parts.query:
        raise InvalidStoreURLError(f"PostgreSQL URL {shown!r} names no host")
    try:
        query = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError as exc:
        message = f"malformed options in PostgreSQL URL {shown!r}: {exc}"
        raise InvalidStoreURLError(message) from None
    ours = {k: v for k, v in query if k in ("schema", "min_size", "max_size")}
    for key, value in ours.items():
        if not value:
            raise InvalidStoreURLError(f"option {key!r} of PostgreSQL URL {shown!r} is empty")
    theirs = "&".join(f"{k}={v}" for k, v in query if k not in ours)
    clean = parts._replace(query=theirs).geturl()
    return clean, ours
