"""``[database]``: where the database is and its connection pool."""

from __future__ import annotations

from twisted_compute.conf.opts import OptGroups, int_opt, str_opt

DATABASE_OPTS = [
    str_opt("connection", "",
            "SQLAlchemy URL of the database; empty means the SQLite file "
            "$state_path/compute.sqlite", secret=True),
    int_opt("max_pool_size", 5, "Database connections (and DB threads); "
            "SQLite always uses one",
            min=1, max=100),
    int_opt("connection_recycle_time", 3600,
            "Seconds after which a pooled connection is replaced", min=1),
    int_opt("query_timeout", 0,
            "Seconds a database query may take, waiting for a database "
            "thread included, before its caller gets an error (0: no "
            "limit); one that is already running still completes, and "
            "commits", min=0),
]


def list_opts() -> OptGroups:
    return [("database", DATABASE_OPTS)]
