"""The ops console: dead letters of the sign-up queue, behind the OPS_TOKEN."""
