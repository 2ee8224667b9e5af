"""Emergencies: a coordinator's crisis page (scope, priority missions near the visitor, live counters)."""
