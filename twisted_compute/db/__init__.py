"""The database layer: tables, a thread-pool service, one component per
table (its queries), migrations."""
