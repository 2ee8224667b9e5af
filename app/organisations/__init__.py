"""Organisations: registration, moderation and public showcase."""
