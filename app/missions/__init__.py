"""Missions: what organisations offer, their lifecycle and the public search."""
