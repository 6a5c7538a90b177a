"""Perpetual licenses: keys, device activations, version eligibility, paid upgrades."""
