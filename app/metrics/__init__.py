"""What Prometheus scrapes from the web: `/metrics` (controllers.py, behind OPS_TOKEN), the figures read live at
each scrape (figures.py), and what every web process counts as it serves (http.py, instruments.py), summed over
the processes of the server run (process_files.py)."""
