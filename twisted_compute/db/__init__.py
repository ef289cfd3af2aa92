"""The database layer: tables, a thread-pool service, queries, migrations."""
