"""Everything RQ: worker settings, job functions, typed enqueue helpers and the per-job runtime."""
