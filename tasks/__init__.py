"""Prefect tasks: one per step, wrapping firstlight.services with retries, names and tags."""
