"""Renfort web application: settings, persistence, everyday domains, pages and JSON API."""
