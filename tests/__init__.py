"""twisted-compute's tests (run with trial)."""
