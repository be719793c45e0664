"""Verification and validation of deliveries: each check returns findings, never raises on bad data."""
