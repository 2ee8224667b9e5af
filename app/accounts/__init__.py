"""Accounts: passwordless sign-in by e-mail link, server-side sessions in Redis, roles and the guards on them."""
