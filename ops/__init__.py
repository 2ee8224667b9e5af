"""Local services, run and test commands, deployment files and runbooks."""
