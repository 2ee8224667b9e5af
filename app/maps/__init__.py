"""Server-rendered SVG maps of France by department (overseas departments as insets), from a committed data file."""
