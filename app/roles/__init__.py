"""Granting and revoking the privileged roles (admin, coordinator, referent), from the command line or the
administration page, each change audited in `role_changes`."""
