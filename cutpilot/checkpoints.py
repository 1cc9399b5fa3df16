"""Where planner threads are checkpointed: SQLite under CUTPILOT_HOME by default, or Postgres when
CUTPILOT_CHECKPOINT_URL is a `postgresql://` URL (LangGraph's own PostgresSaver), so a thread started on one machine
can be resumed on another. `open_checkpointer` and `close` are the only ways in and out of a connection.
"""

from __future__ import annotations

import sqlite3
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cutpilot.errors import InputError
from cutpilot.settings import Settings

if TYPE_CHECKING:
    from langgraph.checkpoint.base import BaseCheckpointSaver

    Checkpointer = BaseCheckpointSaver[Any]
else:
    Checkpointer = Any

PG_SCHEMES = ("postgresql", "postgres")
_SETUP_LOCK_KEY = 0x63757470  # pg_advisory_lock key: two processes never run the migrations at once
_set_up: set[str] = set()
_set_up_lock = threading.Lock()


def postgres_url(settings: Settings) -> str | None:
    """The configured Postgres URL, or None for the SQLite default; anything else is refused in one line."""
    url = (settings.checkpoint_url or "").strip()
    if not url:
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a non-numeric port raises here, not at connect time
    except ValueError as e:
        raise InputError(f"CUTPILOT_CHECKPOINT_URL is not a valid URL ({e}): {redact(url)}") from None
    if parts.scheme not in PG_SCHEMES:
        raise InputError("CUTPILOT_CHECKPOINT_URL must be a postgresql://user:pass@host:port/db URL (unset it for "
                         f"the SQLite default), got {redact(url)!r}")
    return url


def redact(url: str) -> str:
    """The URL with any password masked, for messages and logs."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return parts._replace(netloc=netloc).geturl()
    except ValueError:
        return "<unparseable URL>"


def connect_postgres(url: str, **kwargs: Any) -> Any:
    """A psycopg connection, or an InputError that names the server (never the password) in one line."""
    import psycopg

    try:
        return psycopg.connect(url, connect_timeout=10, **kwargs)
    except (psycopg.Error, ValueError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise InputError(f"cannot connect to Postgres at {redact(url)}: {first}") from None


def open_checkpointer(settings: Settings) -> Checkpointer:
    """The checkpointer for this home's planner threads; its tables are created once per process and URL."""
    url = postgres_url(settings)
    if url is None:
        from langgraph.checkpoint.sqlite import SqliteSaver

        conn = sqlite3.connect(str(settings.path("checkpoints.sqlite")), check_same_thread=False)
        return SqliteSaver(conn)
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg import Connection
    from psycopg.rows import DictRow, dict_row
    from psycopg_pool import ConnectionPool, PoolTimeout

    # autocommit + no prepared statements + dict rows: what PostgresSaver expects (and safe behind pgbouncer)
    kwargs: dict[str, Any] = {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}
    with _set_up_lock:
        if url not in _set_up:
            with connect_postgres(url, **kwargs) as conn:  # also the one-line error for a bad URL or server
                conn.execute("SELECT pg_advisory_lock(%s)", (_SETUP_LOCK_KEY,))
                PostgresSaver(conn).setup()
                conn.execute("SELECT pg_advisory_unlock(%s)", (_SETUP_LOCK_KEY,))
            _set_up.add(url)
    # a pool, not one connection: a server restart or a dropped connection costs a reconnect, not the session
    pool: ConnectionPool[Connection[DictRow]] = ConnectionPool(
        url, min_size=1, max_size=4, open=False, num_workers=1, kwargs={**kwargs, "connect_timeout": 10},
        check=ConnectionPool.check_connection)
    try:
        pool.open(wait=True, timeout=30.0)
    except PoolTimeout:
        pool.close()
        raise InputError(f"cannot connect to Postgres at {redact(url)}: no connection within 30 s") from None
    return PostgresSaver(pool)


def close(checkpointer: Any) -> None:
    """Close the sqlite3 connection or the psycopg pool behind a checkpointer that `open_checkpointer` made."""
    conn = getattr(checkpointer, "conn", None)
    if conn is not None:
        conn.close()
