"""The two databases behind the SQL review store: what differs between them, and only that."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol

import psycopg
import psycopg_pool

Row = tuple[Any, ...]


class Tx(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement; returns the rows it changed."""
        ...

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None: ...


class Dialect(Protocol):
    name: str
    autoid: str  # DDL of an auto-increment primary key
    blob: str  # DDL of a byte string
    for_update: str  # row lock suffix of a SELECT inside a write transaction
    skip_locked: str  # ... that skips rows another transaction holds
    workers: int  # how many operations may run at once
    transient: tuple[type[Exception], ...]  # errors worth retrying ...

    def fatal(self, exc: Exception) -> bool:
        """... except these: no retry mends them (a full disk, a read-only file)."""
        ...

    def open(self) -> None: ...

    def close(self) -> None: ...

    def transaction(self, *, write: bool) -> AbstractContextManager[Tx]:
        """One transaction, committed when the block ends without an exception."""
        ...

    def lock_migrations(self, tx: Tx) -> None: ...


class _SqliteTx:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._conn.execute(sql, tuple(params)).rowcount

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._conn.executemany(sql, [tuple(r) for r in rows])

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return list(self._conn.execute(sql, tuple(params)).fetchall())

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        row: Row | None = self._conn.execute(sql, tuple(params)).fetchone()
        return row


def _switch_to_wal(conn: sqlite3.Connection, seconds: float) -> None:
    """Switching to WAL needs the database to itself, and SQLite answers "database is locked"
    at once, busy timeout or not, while another process (a second instance starting beside
    this one) holds it. Retry for a while."""
    deadline = time.monotonic() + seconds
    delay = 0.01
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)  # a store worker thread, never the event loop
            delay = min(delay * 2, 0.25)
        else:
            return


class SqliteDialect:
    """One connection used from one worker thread. WAL mode; a write transaction starts with
    BEGIN IMMEDIATE, which takes the write lock up front, so a read-then-write (a claim) cannot
    interleave with another writer, also in another process on the same host."""

    name = "sqlite"
    autoid = "INTEGER PRIMARY KEY AUTOINCREMENT"
    blob = "BLOB"
    for_update = ""
    skip_locked = ""
    workers = 1
    transient: tuple[type[Exception], ...] = (sqlite3.OperationalError,)
    _FATAL = frozenset(
        {"SQLITE_FULL", "SQLITE_READONLY", "SQLITE_CORRUPT", "SQLITE_NOTADB", "SQLITE_CANTOPEN"}
    )

    def fatal(self, exc: Exception) -> bool:
        name = str(getattr(exc, "sqlite_errorname", ""))
        return any(name.startswith(code) for code in self._FATAL)

    def __init__(self, path: Path, busy_timeout_ms: int = 5000) -> None:
        self._path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._conn: sqlite3.Connection | None = None

    def open(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self._path, isolation_level=None, check_same_thread=False, timeout=30
        )
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
        _switch_to_wal(conn, self._busy_timeout_ms / 1000)
        conn.execute("PRAGMA synchronous = FULL")  # a moderator's decision survives power loss
        conn.execute("PRAGMA foreign_keys = ON")
        self._conn = conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator[Tx]:
        if self._conn is None:
            raise sqlite3.OperationalError("the store is not open")
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield _SqliteTx(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def lock_migrations(self, tx: Tx) -> None:
        """BEGIN IMMEDIATE already serialises migrations."""


class _PostgresTx:
    def __init__(self, cur: psycopg.Cursor[Row]) -> None:
        self._cur = cur

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        self._cur.execute(_pg(sql), tuple(params))
        return self._cur.rowcount

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._cur.executemany(_pg(sql), [tuple(r) for r in rows])

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        self._cur.execute(_pg(sql), tuple(params))
        return self._cur.fetchall()

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        self._cur.execute(_pg(sql), tuple(params))
        return self._cur.fetchone()


def _pg(sql: str) -> str:
    """Queries are written with `?` placeholders; psycopg wants `%s`."""
    return sql.replace("%", "%%").replace("?", "%s")


class PostgresDialect:
    """A small connection pool; each operation runs in a worker thread with its own
    connection. Claims use FOR UPDATE SKIP LOCKED, so instances never wait on each other."""

    name = "postgresql"
    autoid = "BIGSERIAL PRIMARY KEY"
    blob = "BYTEA"
    for_update = " FOR UPDATE"
    skip_locked = " FOR UPDATE SKIP LOCKED"
    transient: tuple[type[Exception], ...] = (
        psycopg.OperationalError,
        psycopg_pool.PoolTimeout,
        psycopg.errors.SerializationFailure,
        psycopg.errors.DeadlockDetected,
    )
    _MIGRATION_LOCK = 7_310_431_001

    def fatal(self, exc: Exception) -> bool:
        return isinstance(exc, psycopg.errors.DiskFull | psycopg.errors.ReadOnlySqlTransaction)

    def __init__(self, url: str, pool_size: int = 4, timeout_seconds: float = 10.0) -> None:
        self.workers = pool_size
        self._pool = psycopg_pool.ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            open=False,
            timeout=timeout_seconds,
            # No server-side prepared statements: a plan prepared while the tables were small
            # (a full scan) would be kept as they grow.
            kwargs={
                "autocommit": True,
                "connect_timeout": max(1, int(timeout_seconds)),
                "prepare_threshold": None,
            },
        )
        self._timeout = timeout_seconds

    def open(self) -> None:
        self._pool.open(wait=True, timeout=self._timeout)

    def close(self) -> None:
        self._pool.close()

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator[Tx]:
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            yield _PostgresTx(cur)

    def lock_migrations(self, tx: Tx) -> None:
        tx.fetchone("SELECT pg_advisory_xact_lock(?)", (self._MIGRATION_LOCK,))


def dialect_for(url: str) -> Dialect:
    if url.startswith("sqlite:///"):
        return SqliteDialect(Path(url.removeprefix("sqlite:///")))
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresDialect(url)
    raise ValueError(f"unsupported database URL {url.split(':', 1)[0]}:...")
