"""Persistence: declarative base, engine factory and migrations."""
