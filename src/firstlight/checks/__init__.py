"""Verification and validation of deliveries: checks return findings, never raise on bad data."""
