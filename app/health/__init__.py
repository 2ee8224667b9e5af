"""Health, readiness and metrics endpoints for load balancers, ops and Prometheus."""
