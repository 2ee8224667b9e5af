"""The coordinators' live dashboard `/coordination`: per emergency, sign-ups per minute, the queues, missions and
places, coverage by department per 1,000 inhabitants, and dispatch runs with their outcomes; refreshed by polling."""
