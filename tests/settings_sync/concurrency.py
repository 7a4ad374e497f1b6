"""Waiting for other connections, threads and processes in tests of races: poll the state
another connection can see, hold rows locked from a connection of the test's own, and find the
backends waiting for a lock (PostgreSQL). Never sleeps for a fixed time: every wait is for a
condition, bounded by ``TIMEOUT``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager

from django.db import connection, transaction

#: Upper bound of every wait (a lock, a worker, a thread): a hang fails, it never blocks CI.
TIMEOUT = 30


def wait_for(condition: Callable[[], object], what: str, timeout: float = TIMEOUT):
    """Poll ``condition`` (state in another process or connection) until it is truthy."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"Timed out after {timeout} s waiting for {what}.")
        time.sleep(0.02)
    return result


def waiting_backends() -> list[tuple[int, str, list[int]]]:
    """Backends of the test database waiting for a lock: (pid, application name, blockers)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, application_name, pg_blocking_pids(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND cardinality(pg_blocking_pids(pid)) > 0"
        )
        return cursor.fetchall()


def in_thread(pool: ThreadPoolExecutor, function: Callable, *args, **kwargs) -> Future:
    """Call ``function`` in a thread (its own database connection, closed afterwards)."""

    def call():
        try:
            return function(*args, **kwargs)
        finally:
            connection.close()

    return pool.submit(call)


@contextmanager
def rows_locked(queryset) -> Iterator[int]:
    """Hold ``SELECT … FOR UPDATE`` on the rows of ``queryset`` from another connection (as a
    concurrent request would) until the block exits; yields the pid of that backend."""
    locked, release = threading.Event(), threading.Event()
    holder: dict[str, int] = {}

    def hold() -> None:
        with transaction.atomic():
            holder["rows"] = len(list(queryset.select_for_update()))
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                holder["pid"] = cursor.fetchone()[0]
            locked.set()
            release.wait(4 * TIMEOUT)  # a safety net only: the test releases it

    with ThreadPoolExecutor(max_workers=1) as pool:
        held = in_thread(pool, hold)
        held.add_done_callback(lambda _: locked.set())  # a failure to lock wakes the test too
        try:
            locked.wait(TIMEOUT)
            if held.done():
                held.result()  # raises what went wrong
            assert holder.get("rows"), "nothing was locked"
            yield holder["pid"]
        finally:
            release.set()
            held.result(TIMEOUT)


def waiting_behind(holder: int, application_name: str | None = None) -> int | None:
    """The pid of a backend (of that application) waiting for a lock ``holder`` holds."""
    for pid, name, blockers in waiting_backends():
        if holder in blockers and application_name in (None, name):
            return pid
    return None
