"""Load tests and benchmarks: black-box over HTTP (wrk, Locust); nothing here imports `app`, `queues` or `surge`."""
