"""Volunteers: the sign-up surge path (validate, accept into Redis, drain into PostgreSQL)."""
