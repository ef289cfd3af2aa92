"""What every database component shares.

A component is the way into one table (or a group of tables that belong
together): each method runs its ``def thd(conn)`` query in the DB thread
pool, in one transaction, and returns a Deferred.  The queries
themselves are module-level functions of the component's module, so that
a query of one table can call another table's inside the same
transaction.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

from twisted.internet.defer import Deferred

T = TypeVar("T")


class DBComponent:
    """Runs its module's queries through ``db`` (a
    :class:`~twisted_compute.db.pool.DBService`) at ``priority``."""

    def __init__(self, db, priority: int):
        self.db = db
        self.priority = priority

    def _write(self, thd: Callable[..., T], *args: Any,
               **kwargs: Any) -> Deferred[T]:
        """Run ``thd`` in a transaction that may write (on SQLite it
        takes the write lock at BEGIN)."""
        return self.db.run(thd, *args, priority=self.priority, **kwargs)

    def _read(self, thd: Callable[..., T], *args: Any,
              **kwargs: Any) -> Deferred[T]:
        """Run ``thd`` in a transaction that only reads."""
        return self.db.run(thd, *args, readonly=True,
                           priority=self.priority, **kwargs)
