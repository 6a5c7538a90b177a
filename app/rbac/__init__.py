"""Roles, the permission catalogue, assignments, overrides and the role change log."""
