"""Territory pages (departments and communes), the local authorities' city pages and the organisations directory."""
